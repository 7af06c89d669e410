//! The clap layer of `provision init` and `provision broker`: `Args` types that parse and turn
//! into library options; printing in their `run` functions.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use provision::{broker, init, Error};

use crate::lifecycle_cli;

#[derive(Args)]
pub struct InitArgs {
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
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

impl InitArgs {
    pub fn into_options(self) -> init::InitOptions {
        init::InitOptions {
            ca_name: self.ca_name,
            days: self.days,
            operator_days: self.operator_days,
            force: self.force,
        }
    }

    pub fn run(self, dir: &Path) -> Result<(), Error> {
        let json = self.json;
        let report = init::init(dir, &self.into_options())?;
        if json {
            lifecycle_cli::print_json(&serde_json::json!({
                "dir": provision::error::absolute(dir),
                "ca": report.registry.ca,
                "operator": report.registry.operator,
                "backup": report.backup,
            }));
            return Ok(());
        }
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
        Ok(())
    }
}

#[derive(Args)]
pub struct BrokerArgs {
    /// DNS name clients use to reach the broker (repeatable; the first is the CN)
    #[arg(long = "host", required_unless_present = "nodes")]
    hosts: Vec<String>,
    /// The broker software: one Mosquitto, or a RabbitMQ cluster (--node or --nodes)
    #[arg(long, value_enum, default_value_t = EngineArg::Mosquitto)]
    engine: EngineArg,
    /// RabbitMQ: a node and the endpoint of its MQTT TLS listener, NAME=HOST:PORT (repeatable;
    /// its host goes into the broker certificate)
    #[arg(long = "node", value_name = "NAME=HOST:PORT", value_parser = parse_node_arg,
          conflicts_with = "node_count")]
    nodes: Vec<provision::registry::NodeRecord>,
    /// RabbitMQ: N nodes rabbit-1..N, one per --host at --port, or all on the one --host at
    /// --port, --port+1, ...
    #[arg(long = "nodes", value_name = "N")]
    node_count: Option<u32>,
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

fn parse_node_arg(s: &str) -> Result<provision::registry::NodeRecord, String> {
    broker::parse_node(s).map_err(|e| match e {
        Error::InvalidInput(m) => m,
        e => e.to_string(),
    })
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineArg {
    /// Mosquitto 2.0, one process (--platform plain|openwrt|debian)
    Mosquitto,
    /// RabbitMQ 3.10 with its MQTT plugin, one node or a cluster
    Rabbitmq,
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
pub enum BrokerAction {
    /// A new server certificate for the same names and addresses; the previous one is revoked
    #[command(after_help = "\
Examples:
  provision broker renew
  provision broker renew --keep-key --days 825   # devices that pinned the key keep working

Writes <dir>/broker/server.crt, server.key and crl.pem; mosquitto.conf and the ACL stay.")]
    Renew(lifecycle_cli::BrokerRenewArgs),
}

impl BrokerArgs {
    pub fn into_options(self) -> broker::BrokerOptions {
        broker::BrokerOptions {
            hosts: self.hosts,
            ips: self.ips,
            port: self.port,
            bind: self.bind,
            install_dir: self.install_dir,
            days: self.days,
            platform: self.platform.into(),
            max_packet_size: self.max_packet_size,
            existing_config: self.existing_config,
            engine: match self.engine {
                EngineArg::Mosquitto => provision::registry::Engine::Mosquitto,
                EngineArg::Rabbitmq => provision::registry::Engine::Rabbitmq,
            },
            nodes: self.nodes,
            node_count: self.node_count,
        }
    }

    pub fn run(mut self, dir: &Path) -> Result<(), Error> {
        if let Some(BrokerAction::Renew(a)) = self.action.take() {
            return a.run(dir);
        }
        let json = self.json;
        let report = broker::configure(dir, &self.into_options())?;
        let b = &report.record;
        if json {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            lifecycle_cli::print_json(b);
            return Ok(());
        }
        let folder = dir.join("broker");
        let names: Vec<String> = b
            .hosts
            .iter()
            .cloned()
            .chain(b.ips.iter().map(|ip| ip.to_string()))
            .collect();
        println!(
            "broker certificate for {} (serial {}, valid until {})",
            names.join(", "),
            b.cert.serial,
            b.cert.not_after.date()
        );
        if b.engine == provision::registry::Engine::Rabbitmq {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "wrote {}/{{ca.crt,server.crt,server.key,crl.pem,crl/,definitions/,INSTALL}} \
                 and nodes/{{{}}}/ for RabbitMQ",
                folder.display(),
                b.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            print!("{}", broker::install_steps(b, &folder));
            return Ok(());
        }
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
        Ok(())
    }
}
