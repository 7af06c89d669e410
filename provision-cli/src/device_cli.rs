//! The clap layer of `provision device ...`: one type per command that only parses and turns
//! into library options; printing in the report functions here.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use provision::device_config::{self, ConfigOptions, ConfigReport};
use provision::export::{self, ExportOptions, Format, Output};
use provision::{device, reload, retained_status, Error};

use crate::lifecycle_cli;

use crate::lifecycle_cli::print_json;

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Issue a certificate and key for one or more devices (all or none)
    #[command(after_help = "\
Device ids match [a-z0-9][a-z0-9-]{0,62}: the id is the certificate CN, the MQTT username and
a topic level, so + # / $ and upper case are refused.

Examples:
  provision device add kitchen-sensor-1
  provision device add porch-1 porch-2 porch-3
  provision device add --from-file ids.txt    # one id per line, # comments
  provision device add --replace porch-2      # a revoked id, issued a new identity on purpose
  provision device add porch-4 --apply        # RabbitMQ: also imports its user (rabbitmqctl)")]
    Add(AddArgs),
    /// A new key and certificate for a device; the previous one is revoked
    #[command(after_help = "\
Examples:
  provision device renew kitchen-sensor-1
  provision device renew porch-1 --keep-old    # the old certificate stays valid for now...
  provision device revoke porch-1 --previous   # ...until the device runs with the new one

Then write the device's config again (provision device config) and flash it. Without
--keep-old the device cannot connect until it has the new identity.")]
    Renew(lifecycle_cli::DeviceRenewArgs),
    /// List devices: id, serial, status, not-after
    #[command(after_help = "Examples:\n  provision device list\n  provision device list --json")]
    List {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show one device
    #[command(after_help = "Examples:\n  provision device show kitchen-sensor-1 --json")]
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device: re-sign the CRL, deny it in the ACL, reload the broker
    #[command(after_help = "\
Examples:
  provision device revoke kitchen-sensor-1 --reload-pid $(pidof mosquitto)
  provision device revoke kitchen-sensor-1 --reload-cmd 'systemctl reload mosquitto'
  provision device revoke kitchen-sensor-1   # prints what to run
  provision device revoke porch-1 --previous # only the certificate `renew --keep-old` kept
  provision device revoke porch-1 --apply    # RabbitMQ: also deletes its user (rabbitmqctl)

Copy <dir>/broker/crl.pem and acl to the broker first if it runs elsewhere. After a reload it did
itself, revoke clears the device's retained status as the operator (its Last Will is denied, so
`online` would stay); otherwise it prints the mosquitto_pub command that does.")]
    Revoke(RevokeArgs),
    /// Write the device's flashable config blob (WiFi, broker, CA, its certificate and key)
    #[command(after_help = "\
The blob holds the device's private key: it is written 0600. Layout and the esptool command
that flashes it: docs/device-config.md.

Examples:
  provision device config kitchen-sensor-1 --wifi-ssid home --wifi-password-file wifi.txt -o kitchen.bin
  provision device config porch-1 --wifi-ssid home --broker-host mqtt.home.lan --broker-port 8883 --pin-broker -o porch.bin
  provision device config --from-file ids.txt --out-dir blobs/ --wifi-ssid home   # many at once
  provision device config hall-1 --wifi-ssid home --broker n1.lan:8883 --broker n2.lan:8883 -o hall.bin
  esptool --chip esp8266 write-flash 0x3F9000 kitchen.bin      # 4 MiB flash

Without --broker the device gets every endpoint `provision broker` recorded (a cluster's list
starting at a different node per device). Every broker host must be a name or address the broker
certificate carries. A warning says when the blob carries no OTA keys (`provision ota keygen`
first).")]
    Config(ConfigArgs),
    /// Export a device's identity for other firmwares, or the broker's fingerprints
    #[command(after_help = "\
Examples:
  provision device export kitchen-1 --format pem -o kitchen-1/          # ca.crt kitchen-1.crt kitchen-1.key
  provision device export kitchen-1 --format der -o kitchen-1/          # ca.der kitchen-1.der kitchen-1.key.der
  provision device export kitchen-1 --format arduino -o provision_identity.h
  provision device export kitchen-1 --format fingerprint                # broker SHA-1/SHA-256, SPKI SHA-256

Private keys are written 0600 and never printed unless -o - --key-to-stdout asks for it.
How Tasmota, ESPHome and Arduino sketches use them: docs/other-firmwares.md.")]
    Export(ExportArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// Device ids
    ids: Vec<String>,
    /// Read more ids from a file
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Certificate lifetime in days
    #[arg(long, default_value_t = device::DEFAULT_DEVICE_DAYS)]
    days: u32,
    /// Issue revoked ids again (their old certificates stay revoked); active ids are refused
    #[arg(long)]
    replace: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sync: crate::rabbitmq_cli::SyncArgs,
}

#[derive(Args)]
pub struct RevokeArgs {
    id: String,
    /// Revoke only the previous certificate that `device renew --keep-old` left valid
    #[arg(long)]
    previous: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// Send SIGHUP to this broker process after revoking
    // Checked by clap, before the revocation is written: 0 and negatives would signal groups.
    #[arg(long, conflicts_with = "reload_cmd", value_parser = clap::value_parser!(i32).range(1..))]
    reload_pid: Option<i32>,
    /// Run this command to reload the broker after revoking
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    reload_cmd: Option<String>,
    /// After the reload, the operator connection that clears the device's retained status
    #[command(flatten)]
    connect: crate::talk_cli::ConnectArgs,
    #[command(flatten)]
    sync: crate::rabbitmq_cli::SyncArgs,
}

impl DeviceCommand {
    pub fn run(self, dir: &Path) -> Result<(), Error> {
        match self {
            DeviceCommand::Add(AddArgs {
                mut ids,
                from_file,
                days,
                replace,
                json,
                sync,
            }) => {
                if let Some(f) = from_file {
                    ids.extend(device::read_id_file(&f)?);
                }
                sync.check(dir)?;
                let added = device::add_with(dir, &ids, days, replace)?;
                let say = |text: &str| {
                    if json {
                        eprintln!("{text}")
                    } else {
                        println!("{text}")
                    }
                };
                if json {
                    lifecycle_cli::print_json(&added);
                } else {
                    for d in &added {
                        println!(
                            "added {} (serial {}, valid until {})",
                            d.id,
                            d.serial,
                            d.not_after.date()
                        );
                    }
                    if added.len() > 1 {
                        println!("{} devices added", added.len());
                    }
                }
                let ids = added.into_iter().map(|d| d.id).collect();
                sync.finish(dir, provision::rabbitmq_sync::Change::Added(ids), &say)?;
            }
            DeviceCommand::List { json } => {
                let devices = device::list(dir)?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&devices).expect("serializes")
                    );
                } else if devices.is_empty() {
                    println!(
                        "no devices in {}; add one with `provision device add ID` (another \
                         directory: --dir or PROVISION_DIR)",
                        provision::error::absolute(dir).display()
                    );
                } else {
                    println!("{:<30} {:<32} {:<8} NOT-AFTER", "ID", "SERIAL", "STATUS");
                    for d in devices {
                        println!(
                            "{:<30} {:<32} {:<8} {}",
                            d.id,
                            d.serial,
                            d.status.to_string(),
                            d.not_after.date()
                        );
                    }
                }
            }
            DeviceCommand::Show { id, json } => {
                let d = device::show(dir, &id)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&d).expect("serializes"));
                } else {
                    println!("id:         {}", d.id);
                    println!("status:     {}", d.status);
                    println!("serial:     {}", d.serial);
                    println!("not before: {}", rfc3339(d.not_before));
                    println!("not after:  {}", rfc3339(d.not_after));
                    if let Some(at) = d.revoked_at {
                        println!("revoked at: {}", rfc3339(at));
                    }
                    println!("cert:       {}", d.cert.display());
                    println!("key:        {}", d.key.display());
                }
            }
            DeviceCommand::Renew(a) => a.run(dir)?,
            DeviceCommand::Revoke(RevokeArgs {
                id,
                previous,
                json,
                reload_pid,
                reload_cmd,
                connect,
                sync,
            }) => {
                check_connect_args(dir, &connect)?;
                sync.check(dir)?;
                let rabbitmq = crate::rabbitmq_cli::is_rabbitmq(dir);
                if rabbitmq && (reload_pid.is_some() || reload_cmd.is_some()) {
                    return Err(Error::InvalidInput(
                        "--reload-pid and --reload-cmd reload Mosquitto; this directory's broker \
                         is RabbitMQ, which reads the new CRL by itself: pass --apply to delete \
                         the device's user (or run the command printed)"
                            .into(),
                    ));
                }
                let r = if previous {
                    device::revoke_previous(dir, &id)?
                } else {
                    device::revoke(dir, &id)?
                };
                let registry = &r.registry;
                let reload_hint =
                    || reload::manual_reload_hint(registry.broker.as_ref().map(|b| b.platform));
                if json {
                    lifecycle_cli::print_json(&r);
                } else {
                    println!(
                        "revoked {} (serial {}); CRL number {}",
                        r.device.id,
                        r.serials.join(", "),
                        r.crl_number
                    );
                }
                // With --json, stdout holds only the JSON; the advice goes to stderr.
                let say = |text: &str| {
                    if json {
                        eprintln!("{text}")
                    } else {
                        println!("{text}")
                    }
                };
                if !r.broker_updated {
                    say(&format!(
                        "no broker folder here: copy {} to your broker",
                        dir.join("crl.pem").display()
                    ));
                }
                if rabbitmq {
                    let change = if previous {
                        provision::rabbitmq_sync::Change::Crl
                    } else {
                        provision::rabbitmq_sync::Change::Revoked(id.clone())
                    };
                    let applied = sync.applies();
                    sync.finish_in(dir, Some(registry), change, &say)?;
                    if !previous {
                        if applied {
                            // The operators may now write its status: clear it on every node.
                            clear_status(dir, registry, &id, connect, &say);
                        } else {
                            crate::rabbitmq_cli::clear_status_hint(
                                registry, dir, &id, &connect, &say,
                            );
                        }
                    }
                    return Ok(());
                }
                let how = match (reload_pid, reload_cmd) {
                    (Some(pid), _) => Some(reload::Reload::Pid(pid)),
                    (None, Some(cmd)) => Some(reload::Reload::Command(cmd)),
                    (None, None) => None,
                };
                match how {
                    Some(how) => {
                        if let Err(e) = reload::reload(&how) {
                            // The revocation is written either way: say how to finish it by hand.
                            eprintln!(
                            "the revocation of {id} is recorded, but the broker was not reloaded.\n{}",
                            reload_hint()
                        );
                            return Err(e);
                        }
                        say("broker reloaded: the CRL refuses new connections and the ACL denies it every topic");
                        say("note: an already-open connection stays up until the broker restarts");
                        if !previous {
                            clear_status(dir, registry, &id, connect, &say);
                        }
                    }
                    None => {
                        say(&reload_hint());
                        if !previous {
                            say(&format!(
                                "After the reload, clear its retained status (its Last Will is \
                                 denied, so `online` would stay):\n  {}",
                                retained_status::clear_status_commands_in(
                                    Some(registry),
                                    dir,
                                    &id,
                                    &connect.operator,
                                    connect.broker.as_deref()
                                )
                                .join("\n  ")
                            ));
                        }
                    }
                }
            }
            DeviceCommand::Config(a) => a.run(dir)?,
            DeviceCommand::Export(a) => a.run(dir)?,
        }
        Ok(())
    }
}

/// Refuses a malformed `--broker` or an operator this directory has no identity for before
/// anything is revoked: the status clearing (or the command printed for it) would otherwise fall
/// back to the registry's broker or the default operator without a word.
fn check_connect_args(dir: &Path, connect: &crate::talk_cli::ConnectArgs) -> Result<(), Error> {
    if let Some(b) = connect.broker.as_deref() {
        provision::client::BrokerAddr::parse(b)?;
    }
    let (cert, _) = provision::layout::Layout::new(dir).operator_identity(&connect.operator)?;
    // `_operator` is made by `init`: without it the directory itself is missing, which the
    // revocation reports in its own words.
    if connect.operator != provision::pki::OPERATOR_CN && !cert.is_file() {
        return Err(Error::InvalidInput(format!(
            "--operator {}: no such operator in {} (add it with `provision operator add {}`)",
            connect.operator,
            dir.display(),
            connect.operator
        )));
    }
    Ok(())
}

/// Clears a revoked device's retained status through the operator client, at every endpoint of
/// the broker (a cluster keeps retained messages per node); where an endpoint cannot be reached
/// or has not applied the new ACL, says so and prints the command for it instead.
fn clear_status(
    dir: &Path,
    registry: &provision::registry::Registry,
    id: &str,
    connect: crate::talk_cli::ConnectArgs,
    say: &dyn Fn(&str),
) {
    let commands = retained_status::clear_status_commands_in(
        Some(registry),
        dir,
        id,
        &connect.operator,
        connect.broker.as_deref(),
    );
    let topic = retained_status::status_topic(id);
    let opts = connect.into_options(dir);
    let within = std::time::Duration::from_secs(5);
    let results = match retained_status::clear_status_in(&opts, registry, id, within) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "warning: could not clear its retained status ({e}). Run, where the broker is \
                 reachable:\n  {}",
                commands.join("\n  ")
            );
            return;
        }
    };
    let several = results.len() > 1;
    let mut cleared = Vec::new();
    for (i, (addr, result)) in results.iter().enumerate() {
        let command = commands.get(i).map(String::as_str).unwrap_or_default();
        let at = if several {
            format!(" at {addr}")
        } else {
            String::new()
        };
        match result {
            Ok(true) => cleared.push(addr.to_string()),
            Ok(false) => eprintln!(
                "warning: {topic} is still retained{at}: the broker has not applied the new ACL. \
                 Once it has, run:\n  {command}"
            ),
            Err(e) => eprintln!(
                "warning: could not clear its retained status{at} ({e}). Run, where the broker \
                 is reachable:\n  {command}"
            ),
        }
    }
    if !cleared.is_empty() {
        let on = if several {
            format!(" on {}", cleared.join(", "))
        } else {
            String::new()
        };
        say(&format!("cleared its retained status ({topic}){on}"));
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[derive(Args)]
pub struct ConfigArgs {
    /// Device id (or --from-file for many)
    #[arg(required_unless_present = "from_file", conflicts_with = "from_file")]
    id: Option<String>,
    /// Write one blob per id listed in this file (one per line, # comments) into --out-dir
    #[arg(long, requires = "out_dir")]
    from_file: Option<PathBuf>,
    /// With --from-file: the directory for the blobs, named <id>.bin
    #[arg(long, requires = "from_file")]
    out_dir: Option<PathBuf>,
    /// WiFi network name
    #[arg(long)]
    wifi_ssid: String,
    /// File whose first line is the WiFi password (omit for an open network)
    #[arg(long)]
    wifi_password_file: Option<PathBuf>,
    /// A broker endpoint the device connects to, HOST:PORT ([v6]:PORT); repeat it for the nodes
    /// of a cluster (at most 4, tried in this order). Default: every endpoint `provision broker`
    /// recorded, starting at a different node for different devices. Each host must be a name
    /// or address in the broker certificate
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_endpoint,
          conflicts_with_all = ["broker_host", "broker_port"])]
    broker: Vec<(String, u16)>,
    /// One broker endpoint by name (default: the broker's first); must be a name or address in
    /// the broker certificate
    #[arg(long)]
    broker_host: Option<String>,
    /// That endpoint's TLS port (default: the broker's first endpoint's port)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    broker_port: Option<u16>,
    /// Seconds between telemetry samples
    #[arg(long, default_value_t = device_config::DEFAULT_PERIOD_S)]
    telemetry_period: u32,
    /// Also pin the broker's public key (from <dir>/broker/server.crt)
    #[arg(long)]
    pin_broker: bool,
    /// Output file
    #[arg(
        short,
        long,
        required_unless_present = "from_file",
        conflicts_with = "from_file"
    )]
    output: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

impl ConfigArgs {
    /// One [`ConfigOptions`] per device.
    pub fn into_options(self) -> Result<Vec<ConfigOptions>, Error> {
        let one = |id: String, output: PathBuf| ConfigOptions {
            id,
            wifi_ssid: self.wifi_ssid.clone(),
            wifi_password_file: self.wifi_password_file.clone(),
            brokers: self.broker.clone(),
            broker_host: self.broker_host.clone(),
            broker_port: self.broker_port,
            telemetry_period_s: self.telemetry_period,
            pin_broker: self.pin_broker,
            output,
        };
        match (&self.id, &self.output, &self.from_file, &self.out_dir) {
            (Some(id), Some(out), None, None) => Ok(vec![one(id.clone(), out.clone())]),
            (None, None, Some(file), Some(dir)) => Ok(device::read_id_file(file)?
                .into_iter()
                .map(|id| {
                    let out = dir.join(format!("{id}.bin"));
                    one(id, out)
                })
                .collect()),
            _ => Err(Error::InvalidInput(
                "give ID -o FILE, or --from-file IDS --out-dir DIR".into(),
            )),
        }
    }

    pub fn run(self, dir: &Path) -> Result<(), Error> {
        let json = self.json;
        if let Some(d) = &self.out_dir {
            if !d.is_dir() {
                return Err(Error::InvalidInput(format!(
                    "--out-dir {} is not a directory",
                    d.display()
                )));
            }
        }
        let reports = device_config::write_configs(dir, &self.into_options()?)?;
        for w in reports.iter().flat_map(|r| &r.warnings) {
            eprintln!("warning: {w}");
        }
        if json {
            print_json(&reports);
        } else {
            for r in &reports {
                print_config(r);
            }
            if reports.len() > 1 {
                println!("{} blobs written", reports.len());
            }
        }
        Ok(())
    }
}

/// `--broker HOST:PORT`, as the operator tools parse it.
fn parse_endpoint(s: &str) -> Result<(String, u16), String> {
    provision::client::BrokerAddr::parse(s)
        .map(|a| (a.host, a.port))
        .map_err(|e| e.to_string())
}

fn print_config(r: &ConfigReport) {
    let brokers: Vec<String> = r
        .brokers
        .iter()
        .map(|e| {
            provision::client::BrokerAddr {
                host: e.host.clone(),
                port: e.port,
            }
            .to_string()
        })
        .collect();
    println!(
        "wrote {} ({} bytes, mode 0600: it holds the device key): device {}, broker {}, {} OTA key(s){}{}",
        r.output.display(),
        r.bytes,
        r.id,
        brokers.join(" then "),
        r.ota_keys,
        if r.pinned { ", broker key pinned" } else { "" },
        if r.persistent_session { ", persistent session" } else { "" }
    );
    println!(
        "flash it: esptool --chip esp8266 write-flash 0x3F9000 {}   (4 MiB flash; see docs/device-config.md)",
        provision::shell_word(&r.output.display().to_string())
    );
}

#[derive(Args)]
pub struct ExportArgs {
    /// Device id
    id: String,
    /// pem | der | arduino | fingerprint
    #[arg(long, value_parser = parse_format)]
    format: Format,
    /// Directory (pem, der) or header file (arduino); `-` prints pem or arduino to stdout,
    /// which needs --key-to-stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Allow `-o -` to print the private key
    #[arg(long)]
    key_to_stdout: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| format!("expected one of: {}", Format::NAMES.join(", ")))
}

impl ExportArgs {
    pub fn into_options(self) -> Result<ExportOptions, Error> {
        let output = match (&self.output, self.format) {
            (_, Format::Fingerprint) => {
                if self.output.is_some() {
                    return Err(Error::InvalidInput(
                        "--format fingerprint prints to stdout; drop -o".into(),
                    ));
                }
                None
            }
            (None, _) => {
                return Err(Error::InvalidInput(
                    "-o is required: a directory for pem and der, a file for arduino".into(),
                ))
            }
            (Some(p), _) if p.as_os_str() == "-" => {
                if !self.key_to_stdout {
                    return Err(Error::InvalidInput(
                        "the export holds the device's private key: pass --key-to-stdout to \
                         print it, or -o a file"
                            .into(),
                    ));
                }
                Some(Output::Stdout)
            }
            (Some(p), _) => Some(Output::Path(p.clone())),
        };
        Ok(ExportOptions {
            id: self.id,
            format: self.format,
            output,
        })
    }

    pub fn run(self, dir: &Path) -> Result<(), Error> {
        let json = self.json;
        let r = export::export(dir, &self.into_options()?)?;
        if let Some(text) = &r.stdout {
            print!("{text}");
            return Ok(());
        }
        if json {
            print_json(&r);
            return Ok(());
        }
        if let Some(f) = &r.fingerprints {
            println!("broker certificate {}", f.certificate.display());
            println!("SHA-1 fingerprint:   {}", f.sha1);
            println!("SHA-256 fingerprint: {}", f.sha256);
            println!("SPKI SHA-256:        {}", f.spki_sha256);
            println!(
                "(certificate fingerprints change with every `provision broker renew`; the SPKI \
                 one only with a new key)"
            );
        }
        for (i, f) in r.files.iter().enumerate() {
            let secret = i + 1 == r.files.len();
            println!(
                "wrote {}{}",
                f.display(),
                if secret {
                    " (0600: it holds the private key)"
                } else {
                    ""
                }
            );
        }
        Ok(())
    }
}
