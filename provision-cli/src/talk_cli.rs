//! `provision watch` and `provision cmd`: argument parsing and printing only.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use provision::client::{ConnectOptions, DEFAULT_OPERATOR};
use provision::cmd::{self, CmdOptions, Reply};
use provision::watch::{self, WatchEvent, WatchOptions};
use provision::Error;

/// How to reach the broker, shared by every command that talks to devices.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Operator identity to connect as (`provision init` made _operator)
    #[arg(long, env = "PROVISION_OPERATOR", default_value = DEFAULT_OPERATOR, value_name = "NAME")]
    pub operator: String,
    /// Broker to connect to, overriding the one `provision broker` configured (default: its
    /// endpoints in order, the next one when one fails); HOST must be a name or address in the
    /// broker's certificate
    #[arg(long, env = "PROVISION_BROKER", value_name = "HOST:PORT")]
    pub broker: Option<String>,
}

impl ConnectArgs {
    pub fn into_options(self, dir: &Path) -> ConnectOptions {
        ConnectOptions {
            operator: self.operator,
            broker: self.broker,
            ..ConnectOptions::new(dir)
        }
    }
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Devices to follow (default: every device)
    pub ids: Vec<String>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Stop after this many messages
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl WatchArgs {
    pub fn into_options(self, dir: &Path) -> (WatchOptions, bool) {
        (
            WatchOptions {
                connect: self.connect.into_options(dir),
                ids: self.ids,
                count: self.count,
            },
            self.json,
        )
    }
}

#[derive(Args, Debug)]
pub struct CmdArgs {
    /// Device id
    pub id: String,
    /// Command name (docs/topics.md lists what the device knows: set-pin, read-adc, reboot)
    pub name: String,
    /// Arguments as key=value
    #[arg(value_name = "KEY=VALUE")]
    pub args: Vec<String>,
    /// Seconds to wait for the reply
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Print the device's reply as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl CmdArgs {
    pub fn into_options(self, dir: &Path) -> (CmdOptions, bool) {
        (
            CmdOptions {
                connect: self.connect.into_options(dir),
                id: self.id,
                name: self.name,
                args: self.args,
                timeout: Duration::from_secs(self.timeout),
            },
            self.json,
        )
    }
}

pub fn run_watch(dir: &Path, args: WatchArgs) -> Result<(), Error> {
    let (opts, json) = args.into_options(dir);
    let mut out = std::io::stdout().lock();
    watch::watch(&opts, |event| report_watch(&mut out, &event, json))
}

/// A line on stderr; a closed stderr is no reason to stop (or to panic, as `eprintln!` would).
fn note(text: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Prints one watch event; `false` (stop) when stdout is gone (`provision watch | head`).
fn report_watch(out: &mut impl Write, event: &WatchEvent, json: bool) -> bool {
    match event {
        WatchEvent::Connected { broker, operator } => {
            note(format_args!(
                "watching on {broker} as {operator} (Ctrl-C stops)"
            ));
            true
        }
        WatchEvent::Disconnected(why) => {
            note(format_args!("connection lost ({why}); reconnecting"));
            true
        }
        WatchEvent::Reconnected { broker } => {
            note(format_args!("reconnected to {broker}"));
            true
        }
        WatchEvent::Message(m) => {
            let line = if json {
                watch::render_json(m)
            } else {
                watch::render_line(m)
            };
            writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
        }
    }
}

pub fn run_cmd(dir: &Path, args: CmdArgs) -> Result<(), Error> {
    let (opts, json) = args.into_options(dir);
    let reply = cmd::send(&opts)?;
    report_reply(&reply, json);
    if reply.ok {
        Ok(())
    } else {
        Err(Error::DeviceRefused {
            id: reply.id.clone(),
            what: format!("cmd/{}", reply.name),
            reason: reply.error().unwrap_or("no reason given").to_string(),
        })
    }
}

fn report_reply(reply: &Reply, json: bool) {
    if json {
        println!("{}", reply.json);
    } else if reply.ok {
        let fields: Vec<String> = reply
            .json
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "ok" && *k != "req")
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={}", watch::printable(s)),
                v => format!("{k}={}", watch::printable(&v.to_string())),
            })
            .collect();
        println!("{} {}: ok {}", reply.id, reply.name, fields.join(" "));
    }
}
