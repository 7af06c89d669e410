//! The clap layer of the certificate lifecycle: `status`, the `renew` commands and
//! `operator`. Each command is an `Args` type that only parses; the work is in the library
//! (`provision::status`, `provision::renew`) and the printing in the report functions here.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use provision::renew::{self, RenewReport, DEFAULT_SERVICE_DAYS};
use provision::status::{self, StatusReport, DEFAULT_WARN_DAYS};
use provision::{device, Error};

/// Exit code of `provision status` when a certificate in service expires within --warn-days
/// (or has expired). Distinct from every error code, so a monitor can tell "act soon" from
/// "status could not run".
pub const EXIT_EXPIRING: u8 = 10;

#[derive(Args)]
pub struct StatusArgs {
    /// Warn about (and exit 10 for) certificates that expire within this many days
    #[arg(long, default_value_t = DEFAULT_WARN_DAYS)]
    warn_days: u32,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

impl StatusArgs {
    pub fn run(self, dir: &Path) -> Result<ExitCode, Error> {
        let report = status::status(dir, self.warn_days)?;
        if self.json {
            print_json(&report);
        } else {
            print_status(&report);
        }
        Ok(if report.needs_attention() {
            ExitCode::from(EXIT_EXPIRING)
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn print_status(r: &StatusReport) {
    println!(
        "{:<9} {:<30} {:<32} {:<10} {:>9}  STATE",
        "KIND", "NAME", "SERIAL", "NOT-AFTER", "DAYS-LEFT"
    );
    for e in &r.entries {
        println!(
            "{:<9} {:<30} {:<32} {:<10} {:>9}  {}",
            e.kind.to_string(),
            e.name,
            e.serial,
            e.not_after.date(),
            e.days_left,
            e.state
        );
    }
    if r.needs_attention() {
        println!(
            "{} certificate(s) expire within {} days or have expired: renew them \
             (provision device renew ID, provision broker renew, provision operator renew)",
            r.attention, r.warn_days
        );
    } else {
        println!("nothing expires within {} days", r.warn_days);
    }
}

#[derive(Args)]
pub struct DeviceRenewArgs {
    /// Device id
    id: String,
    /// Lifetime of the new certificate in days
    #[arg(long, default_value_t = device::DEFAULT_DEVICE_DAYS)]
    days: u32,
    /// Leave the previous certificate valid until `provision device revoke ID --previous`
    #[arg(long)]
    keep_old: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

impl DeviceRenewArgs {
    pub fn run(self, dir: &Path) -> Result<(), Error> {
        let r = renew::device(dir, &self.id, self.days, self.keep_old)?;
        if self.json {
            print_json(&r);
            return Ok(());
        }
        print_renewed(&r);
        if r.previous_revoked {
            println!(
                "the previous certificate is revoked: the device connects again once it has \
                 the new one"
            );
        } else {
            println!(
                "the previous certificate stays valid; once the device runs with the new one: \
                 provision device revoke {} --previous",
                r.subject
            );
        }
        println!(
            "write its config again: provision device config {} --wifi-ssid ... -o {}.bin",
            r.subject, r.subject
        );
        crate::rabbitmq_cli::crl_changed(dir, &|t| println!("{t}"))
    }
}

#[derive(Args)]
pub struct BrokerRenewArgs {
    /// Lifetime of the new certificate in days
    #[arg(long, default_value_t = DEFAULT_SERVICE_DAYS)]
    days: u32,
    /// Keep the broker's key: devices that pinned it (--pin-broker) still connect
    #[arg(long)]
    keep_key: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

impl BrokerRenewArgs {
    pub fn run(self, dir: &Path) -> Result<(), Error> {
        let r = renew::broker(dir, self.days, self.keep_key)?;
        if self.json {
            print_json(&r);
            return Ok(());
        }
        print_renewed(&r);
        if !r.key_kept {
            println!(
                "new key: devices configured with --pin-broker must get a new config \
                 (or renew with --keep-key)"
            );
        }
        if crate::rabbitmq_cli::is_rabbitmq(dir) {
            println!(
                "copy server.crt, server.key (owner rabbitmq, 0600) and crl/ from {} to every \
                 node's install folder and restart the nodes one at a time",
                dir.join("broker").display()
            );
        } else {
            println!(
                "copy server.crt, server.key and crl.pem from {} to the broker and restart it",
                dir.join("broker").display()
            );
        }
        Ok(())
    }
}

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// A new operator identity (its own certificate, key and ACL block): one per tool or person
    #[command(after_help = "\
The name is the certificate CN and MQTT user name: `_` then lower-case letters, digits and `-`.
The broker ties the MQTT client id to it, so two tools using one identity at once close each
other's session: give each its own and pass it as --operator NAME.

Examples:
  provision operator add _ops-laptop
  provision operator add _ci --days 90 --json
  provision watch --operator _ops-laptop")]
    Add(OperatorAddArgs),
    /// A new key and certificate for an operator identity; the previous one is revoked
    #[command(after_help = "\
Examples:
  provision operator renew
  provision operator renew _operator --days 365 --json")]
    Renew(OperatorRenewArgs),
}

#[derive(Args)]
pub struct OperatorAddArgs {
    /// Operator name, e.g. _ops-laptop
    name: String,
    /// Certificate lifetime in days
    #[arg(long, default_value_t = provision::operator::DEFAULT_OPERATOR_DAYS)]
    days: u32,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sync: crate::rabbitmq_cli::SyncArgs,
}

#[derive(Args)]
pub struct OperatorRenewArgs {
    /// Operator name
    #[arg(default_value = provision::pki::OPERATOR_CN)]
    name: String,
    /// Lifetime of the new certificate in days
    #[arg(long, default_value_t = DEFAULT_SERVICE_DAYS)]
    days: u32,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

impl OperatorCommand {
    pub fn run(self, dir: &Path) -> Result<(), Error> {
        match self {
            OperatorCommand::Add(a) => {
                a.sync.check(dir)?;
                let r = provision::operator::add(dir, &a.name, a.days)?;
                if a.json {
                    print_json(&r);
                } else {
                    println!(
                        "added operator {} (serial {}, valid until {})",
                        r.name,
                        r.serial,
                        r.not_after.date()
                    );
                    println!("certificate: {}", r.cert.display());
                    println!("key:         {} (mode 0600)", r.key.display());
                }
                let say = |text: &str| {
                    if a.json {
                        eprintln!("{text}")
                    } else {
                        println!("{text}")
                    }
                };
                if r.broker_updated && crate::rabbitmq_cli::is_rabbitmq(dir) {
                    return a.sync.finish(
                        dir,
                        provision::rabbitmq_sync::Change::Added(vec![r.name.clone()]),
                        &say,
                    );
                }
                let hint = if r.broker_updated {
                    format!(
                        "its ACL block is in {}: copy it to the broker and reload it \
                         (kill -HUP $(pidof mosquitto), or systemctl reload mosquitto)",
                        dir.join("broker/acl").display()
                    )
                } else {
                    "no broker folder here yet: `provision broker` writes its ACL block".into()
                };
                if a.json {
                    eprintln!("{hint}");
                } else {
                    println!("{hint}");
                }
            }
            OperatorCommand::Renew(a) => {
                let r = renew::operator(dir, &a.name, a.days)?;
                if a.json {
                    print_json(&r);
                } else {
                    print_renewed(&r);
                    println!("the previous certificate is revoked");
                    crate::rabbitmq_cli::crl_changed(dir, &|t| println!("{t}"))?;
                }
            }
        }
        Ok(())
    }
}

fn print_renewed(r: &RenewReport) {
    println!(
        "renewed {} (serial {}, valid until {}); previous serial {}",
        r.subject,
        r.serial,
        r.not_after.date(),
        r.previous_serial
    );
    println!("certificate: {}", r.cert.display());
    println!("key:         {}", r.key.display());
    if let Some(n) = r.crl_number {
        println!("CRL number {n}");
    }
}

pub fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializes")
    );
}
