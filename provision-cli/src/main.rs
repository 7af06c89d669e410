//! `provision`: a thin clap layer over the `provision` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use provision::Error;

mod device_cli;
mod lifecycle_cli;
mod ota_cli;
mod ota_push_cli;
mod rabbitmq_cli;
mod setup_cli;
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
    Init(setup_cli::InitArgs),
    /// Issue the broker's server certificate and write a hardened Mosquitto (or RabbitMQ) folder
    #[command(after_help = "\
Examples:
  provision broker --host mqtt.home.lan --ip 192.168.1.1
  provision broker --host localhost --ip 127.0.0.1 --port 8883 --bind 127.0.0.1
  provision broker --host router.lan --install-dir /etc/mosquitto
  provision broker --engine rabbitmq --node rabbit-1=mq1.lan:8883 --node rabbit-2=mq2.lan:8883
  provision broker --engine rabbitmq --nodes 3 --host localhost --port 8883   # one machine

The folder <dir>/broker/ holds mosquitto.conf, acl, ca.crt, server.crt, server.key, crl.pem.
Copy it to --install-dir (default: where it is) and start mosquitto -c mosquitto.conf.
With --engine rabbitmq it holds definitions/, crl/ and nodes/<name>/ for each node, and the
install steps (INSTALL; docs/broker-setup.md).
`provision broker renew` issues a new certificate for the same names before this one expires.")]
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Broker(setup_cli::BrokerArgs),
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
    Device(device_cli::DeviceCommand),
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

Lists the CA, broker, operators, devices and the CRL (past its next update Mosquitto refuses
every client). Exit codes: 0 nothing expires within --warn-days, 10 something in service does
(or has expired), others as for every command. Revoked devices are listed but never count.")]
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
        Command::Init(a) => a.run(&dir)?,
        Command::Broker(a) => a.run(&dir)?,
        Command::Device(cmd) => cmd.run(&dir)?,
        Command::Ota(cmd) => ota_cli::run(&dir, cmd)?,
        Command::Watch(args) => talk_cli::run_watch(&dir, args)?,
        Command::Cmd(args) => talk_cli::run_cmd(&dir, args)?,
        Command::Status(a) => return a.run(&dir),
        Command::Operator(cmd) => cmd.run(&dir)?,
        Command::Completions(a) => a.run(Cli::command())?,
        Command::Man(a) => a.run(Cli::command(), &dir)?,
    }
    Ok(ExitCode::SUCCESS)
}
