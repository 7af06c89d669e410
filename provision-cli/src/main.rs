//! `provision`: a thin clap layer over the `provision` library.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use provision::{broker, device, init, reload, Error};

mod device_cli;
mod lifecycle_cli;
mod ota_cli;
mod ota_push_cli;
mod shell_cli;
mod talk_cli;

#[derive(Parser)]
#[command(
    name = "provision",
    version,
    about = "Certificates, broker config, device identities and signed firmware for ESP8266 devices on MQTT",
    after_help = "\
Examples:
  provision init --ca-name \"Home CA\"
  provision broker --host mqtt.home.lan --ip 192.168.1.1
  provision device add kitchen-sensor-1
  provision device revoke kitchen-sensor-1 --reload-pid $(pidof mosquitto)
  provision status --warn-days 60       # from cron: exit 10 when something expires soon
  provision watch kitchen-sensor-1
  provision cmd kitchen-sensor-1 set-pin pin=9 level=1

Exit codes: 0 ok, 2 usage, 3 invalid input, 4 conflicting state (exists, missing, revoked),
5 corrupt registry or key, 6 I/O, 7 certificate, 8 broker reload, 9 OTA bundle rejected,
10 a certificate expires within --warn-days (provision status), 11 broker unreachable,
12 TLS with the broker failed, 13 broker refused the operator, 14 device did not answer in
time, 15 device refused or failed, 16 an update did not confirm on every device."
)]
struct Cli {
    /// Provisioning directory holding the CA, registry and issued files
    #[arg(long, global = true, env = "PROVISION_DIR", default_value = "certs")]
    dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the root CA, the operator identity, an empty CRL and the registry
    #[command(after_help = "\
Examples:
  provision init
  provision --dir /srv/pki init --ca-name \"Garden CA\" --days 3650
  provision init --force      # replace the CA; the old one is moved to backup-<time>/")]
    Init {
        /// Common name of the CA certificate
        #[arg(long, default_value = "provision root CA")]
        ca_name: String,
        /// CA lifetime in days
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Operator certificate lifetime in days
        #[arg(long, default_value_t = provision::renew::DEFAULT_SERVICE_DAYS)]
        operator_days: u32,
        /// Replace an existing CA, moving it and everything it signed to a timestamped backup
        #[arg(long)]
        force: bool,
    },
    /// Issue the broker's server certificate and write a hardened Mosquitto folder
    #[command(after_help = "\
Examples:
  provision broker --host mqtt.home.lan --ip 192.168.1.1
  provision broker --host localhost --ip 127.0.0.1 --port 8883 --bind 127.0.0.1
  provision broker --host router.lan --install-dir /etc/mosquitto

The folder <dir>/broker/ holds mosquitto.conf, acl, ca.crt, server.crt, server.key, crl.pem.
Copy it to --install-dir (default: where it is) and start mosquitto -c mosquitto.conf.
`provision broker renew` issues a new certificate for the same names before this one expires.")]
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Broker(BrokerArgs),
    /// Add, list, show and revoke devices
    #[command(
        subcommand,
        after_help = "\
Examples:
  provision device add kitchen-sensor-1
  provision device list --json
  provision device config kitchen-sensor-1 --wifi-ssid home -o kitchen.bin
  provision device revoke kitchen-sensor-1 --reload-pid $(pidof mosquitto)"
    )]
    Device(DeviceCommand),
    /// Signing keys and signed firmware bundles (OTA format v1)
    #[command(
        subcommand,
        after_help = "\
Examples:
  provision ota keygen
  provision ota build app.bin --version 1.2.0 --target esp8266 --security-counter 3 -o app.bundle
  provision ota verify app.bundle --min-counter 3
  provision ota inspect app.bundle --json"
    )]
    Ota(ota_cli::OtaCommand),
    /// Follow devices: telemetry, status (online/offline), command replies, update status
    #[command(after_help = "\
Examples:
  provision watch                      # every device
  provision watch kitchen-sensor-1 porch-1
  provision watch --json | jq .payload
  provision watch --broker mqtt.home.lan:8883 --operator _ops-laptop

Connects as the operator (mutual TLS, the broker's certificate checked against the CA and the
host name) to the broker `provision broker` configured. Reconnects by itself; Ctrl-C stops.")]
    Watch(talk_cli::WatchArgs),
    /// Send one command to a device and print its reply (exit 15 when the reply is not ok)
    #[command(after_help = "\
Examples:
  provision cmd kitchen-sensor-1 set-pin pin=9 level=1
  provision cmd kitchen-sensor-1 read-adc channel=0 --json
  provision cmd kitchen-sensor-1 reboot --timeout 30

The commands the device knows, their arguments and replies: docs/topics.md.
Exit codes: 0 the device answered ok, 14 no answer in time, 15 the device refused or failed.")]
    Cmd(talk_cli::CmdArgs),
    /// Every certificate in service with its expiry; exit 10 when one expires within --warn-days
    #[command(after_help = "\
Examples:
  provision status
  provision status --warn-days 60 --json
  0 7 * * * provision --dir /srv/pki status --warn-days 45 >/dev/null || echo renew | mail me

Exit codes: 0 nothing expires within --warn-days, 10 something in service does (or has
expired), others as for every command. Revoked devices are listed but never count.")]
    Status(lifecycle_cli::StatusArgs),
    /// Operator identities (the certificate `provision` itself uses on MQTT)
    #[command(subcommand, after_help = "Examples:\n  provision operator renew")]
    Operator(lifecycle_cli::OperatorCommand),
    /// Print a shell completion script
    #[command(after_help = "\
Examples:
  provision completions bash > ~/.local/share/bash-completion/completions/provision
  provision completions zsh > ~/.zfunc/_provision      # with fpath+=~/.zfunc before compinit
  provision completions fish > ~/.config/fish/completions/provision.fish")]
    Completions(shell_cli::CompletionsArgs),
    /// Write the man pages (provision.1 and one per subcommand)
    #[command(after_help = "\
Examples:
  provision man --out-dir ~/.local/share/man/man1 && man provision-device-renew
  provision man | man -l -")]
    Man(shell_cli::ManArgs),
}

#[derive(Args)]
struct BrokerArgs {
    /// DNS name clients use to reach the broker (repeatable; the first is the CN)
    #[arg(long = "host", required = true)]
    hosts: Vec<String>,
    /// IP address clients use to reach the broker (repeatable)
    #[arg(long = "ip")]
    ips: Vec<IpAddr>,
    /// TLS port of the listener
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// Address the listener binds to (default: all)
    #[arg(long)]
    bind: Option<String>,
    /// Absolute directory the files will be installed in; the config's paths point there
    #[arg(long)]
    install_dir: Option<PathBuf>,
    /// Server certificate lifetime in days
    #[arg(long, default_value_t = 825)]
    days: u32,
    /// The broker's system: the config's shape and the install steps printed
    #[arg(long, value_enum, default_value_t = PlatformArg::Plain)]
    platform: PlatformArg,
    /// Largest MQTT packet the broker accepts (default and minimum: the device's 2048-byte
    /// receive buffer); raise it only for other clients of a shared broker
    #[arg(long)]
    max_packet_size: Option<u32>,
    /// The broker's existing main config to check our drop-in against (default with
    /// --platform debian: /etc/mosquitto/mosquitto.conf when it exists here)
    #[arg(long)]
    existing_config: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    action: Option<BrokerAction>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PlatformArg {
    /// A standalone mosquitto.conf
    Plain,
    /// OpenWRT 23.05 with mosquitto-ssl (procd, syslog, sysupgrade, firewall)
    Openwrt,
    /// A conf.d drop-in for Debian 12 that leaves other listeners their settings
    Debian,
}

impl From<PlatformArg> for provision::registry::Platform {
    fn from(p: PlatformArg) -> Self {
        match p {
            PlatformArg::Plain => Self::Plain,
            PlatformArg::Openwrt => Self::Openwrt,
            PlatformArg::Debian => Self::Debian,
        }
    }
}

#[derive(Subcommand)]
enum BrokerAction {
    /// A new server certificate for the same names and addresses; the previous one is revoked
    #[command(after_help = "\
Examples:
  provision broker renew
  provision broker renew --keep-key --days 825   # devices that pinned the key keep working

Writes <dir>/broker/server.crt, server.key and crl.pem; mosquitto.conf and the ACL stay.")]
    Renew(lifecycle_cli::BrokerRenewArgs),
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Issue a certificate and key for one or more devices (all or none)
    #[command(after_help = "\
Device ids match [a-z0-9][a-z0-9-]{0,62}: the id is the certificate CN, the MQTT username and
a topic level, so + # / $ and upper case are refused.

Examples:
  provision device add kitchen-sensor-1
  provision device add porch-1 porch-2 porch-3
  provision device add --from-file ids.txt    # one id per line, # comments
  provision device add --replace porch-2      # a revoked id, issued a new identity on purpose")]
    Add {
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
    },
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

Copy <dir>/broker/crl.pem and acl to the broker first if it runs elsewhere.")]
    Revoke {
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
    },
    /// Write the device's flashable config blob (WiFi, broker, CA, its certificate and key)
    #[command(after_help = "\
The blob holds the device's private key: it is written 0600. Layout and the esptool command
that flashes it: docs/device-config.md.

Examples:
  provision device config kitchen-sensor-1 --wifi-ssid home --wifi-password-file wifi.txt -o kitchen.bin
  provision device config porch-1 --wifi-ssid home --broker-host mqtt.home.lan --broker-port 8883 --pin-broker -o porch.bin
  provision device config --from-file ids.txt --out-dir blobs/ --wifi-ssid home   # many at once
  esptool --chip esp8266 write-flash 0x3F9000 kitchen.bin      # 4 MiB flash

--broker-host must be a name or address the broker certificate carries. A warning says when
the blob carries no OTA keys (`provision ota keygen` first).")]
    Config(device_cli::ConfigArgs),
    /// Export a device's identity for other firmwares, or the broker's fingerprints
    #[command(after_help = "\
Examples:
  provision device export kitchen-1 --format pem -o kitchen-1/          # ca.crt kitchen-1.crt kitchen-1.key
  provision device export kitchen-1 --format der -o kitchen-1/          # ca.der kitchen-1.der kitchen-1.key.der
  provision device export kitchen-1 --format arduino -o provision_identity.h
  provision device export kitchen-1 --format fingerprint                # broker SHA-1/SHA-256, SPKI SHA-256

Private keys are written 0600 and never printed unless -o - --key-to-stdout asks for it.
How Tasmota, ESPHome and Arduino sketches use them: docs/other-firmwares.md.")]
    Export(device_cli::ExportArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => shell_cli::safe_suggestions(e, &Cli::command()).exit(),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let dir = cli.dir;
    match cli.command {
        Command::Init {
            ca_name,
            days,
            operator_days,
            force,
        } => {
            let report = init::init(
                &dir,
                &init::InitOptions {
                    ca_name,
                    days,
                    operator_days,
                    force,
                },
            )?;
            if let Some(b) = &report.backup {
                println!("previous CA moved to {}", b.display());
            }
            let ca = &report.registry.ca;
            println!(
                "created CA {:?} (serial {}, valid until {}) in {}",
                ca.name,
                ca.cert.serial,
                ca.cert.not_after.date(),
                dir.display()
            );
            println!(
                "operator identity: {}",
                dir.join("operator/operator.crt").display()
            );
            println!("next: provision broker --host <name>");
        }
        Command::Broker(BrokerArgs {
            action: Some(BrokerAction::Renew(a)),
            ..
        }) => a.run(&dir)?,
        Command::Broker(a) => {
            let report = broker::configure(
                &dir,
                &broker::BrokerOptions {
                    hosts: a.hosts,
                    ips: a.ips,
                    port: a.port,
                    bind: a.bind,
                    install_dir: a.install_dir,
                    days: a.days,
                    platform: a.platform.into(),
                    max_packet_size: a.max_packet_size,
                    existing_config: a.existing_config,
                },
            )?;
            let b = &report.record;
            if a.json {
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
                lifecycle_cli::print_json(b);
                return Ok(ExitCode::SUCCESS);
            }
            let folder = dir.join("broker");
            println!(
                "broker certificate for {} (serial {}, valid until {})",
                b.hosts.join(", "),
                b.cert.serial,
                b.cert.not_after.date()
            );
            println!(
                "wrote {}/{{mosquitto.conf,acl,ca.crt,server.crt,server.key,crl.pem}} for {}",
                folder.display(),
                b.platform
            );
            if let Some(checked) = &report.checked {
                if report.warnings.is_empty() {
                    println!(
                        "checked {}: our drop-in leaves its other settings as they are",
                        checked.display()
                    );
                }
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
            } else if b.platform == provision::registry::Platform::Debian {
                eprintln!(
                    "note: no existing Mosquitto config here to check; on the broker run this with \
                     --existing-config /etc/mosquitto/mosquitto.conf, or see docs/broker-setup.md"
                );
            }
            print!("{}", broker::install_steps(b, &folder));
        }
        Command::Device(cmd) => run_device(&dir, cmd)?,
        Command::Ota(cmd) => ota_cli::run(&dir, cmd)?,
        Command::Watch(args) => talk_cli::run_watch(&dir, args)?,
        Command::Cmd(args) => talk_cli::run_cmd(&dir, args)?,
        Command::Status(a) => return a.run(&dir),
        Command::Operator(cmd) => cmd.run(&dir)?,
        Command::Completions(a) => a.run(Cli::command())?,
        Command::Man(a) => a.run(Cli::command())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn run_device(dir: &std::path::Path, cmd: DeviceCommand) -> Result<(), Error> {
    match cmd {
        DeviceCommand::Add {
            mut ids,
            from_file,
            days,
            replace,
            json,
        } => {
            if let Some(f) = from_file {
                ids.extend(device::read_id_file(&f)?);
            }
            let added = device::add_with(dir, &ids, days, replace)?;
            if json {
                lifecycle_cli::print_json(&added);
                return Ok(());
            }
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
        DeviceCommand::List { json } => {
            let devices = device::list(dir)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&devices).expect("serializes")
                );
            } else if devices.is_empty() {
                println!("no devices; add one with `provision device add ID`");
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
        DeviceCommand::Revoke {
            id,
            previous,
            json,
            reload_pid,
            reload_cmd,
        } => {
            let r = if previous {
                let (serials, crl) = device::revoke_previous(dir, &id)?;
                device::RevokeReport {
                    device: device::show(dir, &id)?,
                    crl_number: crl.number,
                    broker_updated: crl.broker_updated,
                    serials,
                }
            } else {
                device::revoke(dir, &id)?
            };
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
                            reload::manual_reload_hint_for(dir)
                        );
                        return Err(e);
                    }
                    say("broker reloaded: the CRL refuses new connections and the ACL denies it every topic");
                    say("note: an already-open connection stays up until the broker restarts");
                }
                None => say(&reload::manual_reload_hint_for(dir)),
            }
        }
        DeviceCommand::Config(a) => a.run(dir)?,
        DeviceCommand::Export(a) => a.run(dir)?,
    }
    Ok(())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
