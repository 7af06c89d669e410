//! `provision ota push` and `provision ota status`: argument parsing and printing only (the work
//! is in `provision::ota_push`).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use provision::ota_push::{
    self, DeviceOtaStatus, DeviceResult, Outcome, PushEvent, PushOptions, Source,
};
use provision::Error;

use crate::talk_cli::ConnectArgs;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Signed bundle (`provision ota build`)
    pub bundle: PathBuf,
    /// Device to update (repeatable)
    #[arg(long = "device", value_name = "ID", required = true)]
    pub devices: Vec<String>,
    /// Devices updated at the same time
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Seconds each device may take, from the offer to its final status
    #[arg(long, default_value_t = 900, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Send the bundle without checking its signature here first (the devices still check
    /// everything before they erase anything)
    #[arg(long)]
    pub no_verify: bool,
    /// One JSON result per device and line
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl PushArgs {
    pub fn into_options(self, dir: &Path) -> (PushOptions, bool) {
        (
            PushOptions {
                connect: self.connect.into_options(dir),
                bundle: self.bundle,
                devices: self.devices,
                parallel: usize::from(self.parallel),
                timeout: Duration::from_secs(self.timeout),
                verify: !self.no_verify,
            },
            self.json,
        )
    }
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Devices (default: every device in service)
    pub ids: Vec<String>,
    /// Seconds to wait for the devices' answers
    #[arg(long, default_value_t = 3.0, value_name = "SECS", value_parser = parse_wait)]
    pub timeout: f64,
    /// JSON array
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run_push(dir: &Path, args: PushArgs) -> Result<(), Error> {
    let (opts, json) = args.into_options(dir);
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let results = ota_push::push(&opts, |e| progress.event(e))?;
    progress.finish();
    report_results(&results, json);
    let failed = results
        .iter()
        .filter(|r| r.outcome != Outcome::Confirmed)
        .count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::UpdateFailed {
            failed,
            total: results.len(),
        })
    }
}

/// Progress on stderr: a bar per device on a terminal, plain lines otherwise.
struct Progress {
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    /// Plain mode: the last tenth of the download printed per device.
    tenths: BTreeMap<String, u32>,
}

impl Progress {
    fn new(terminal: bool) -> Progress {
        Progress {
            multi: terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: BTreeMap::new(),
            tenths: BTreeMap::new(),
        }
    }

    fn line(&self, text: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn bar(&mut self, device: &str, total: u32) -> Option<&ProgressBar> {
        let multi = self.multi.as_ref()?;
        Some(self.bars.entry(device.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(u64::from(total)));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>20} [{bar:30}] {bytes:>9}/{total_bytes:9} {msg}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            bar.set_prefix(device.to_string());
            bar
        }))
    }

    fn event(&mut self, e: PushEvent) {
        match e {
            PushEvent::Connected { broker, operator } => {
                self.line(format!("connected to {broker} as {operator}"))
            }
            PushEvent::Offered { device, repeat } => {
                if let Some(bar) = self.bar(&device, 0) {
                    bar.set_message(if repeat { "offered again" } else { "offered" });
                } else {
                    self.line(format!(
                        "{device}: offered{}",
                        if repeat { " again" } else { "" }
                    ));
                }
            }
            PushEvent::Progress {
                device,
                received,
                total,
            } => {
                if let Some(bar) = self.bar(&device, total) {
                    bar.set_length(u64::from(total));
                    if u64::from(received) > bar.position() {
                        bar.set_position(u64::from(received));
                    }
                } else {
                    let tenth = if total == 0 {
                        10
                    } else {
                        (u64::from(received) * 10 / u64::from(total)) as u32
                    };
                    let last = self.tenths.entry(device.clone()).or_insert(0);
                    if tenth > *last {
                        *last = tenth;
                        self.line(format!("{device}: sent {received} of {total} bytes"));
                    }
                }
            }
            PushEvent::Phase { device, status } => {
                let text = format!(
                    "{} (running {} from slot {})",
                    status.phase, status.running, status.running_slot
                );
                if let Some(bar) = self.bar(&device, status.image_len) {
                    bar.set_message(text);
                } else {
                    self.line(format!("{device}: {text}"));
                }
            }
            PushEvent::Note { device, text } => match device {
                Some(d) => self.line(format!("{d}: {text}")),
                None => self.line(text),
            },
            PushEvent::Done(r) => {
                let text = outcome_text(&r);
                if let Some(bar) = self.bar(&r.device, 0) {
                    bar.finish_with_message(text);
                } else {
                    self.line(format!("{}: {text}", r.device));
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

fn outcome_text(r: &DeviceResult) -> String {
    let running = match (r.running_version.as_deref(), r.running_slot.as_deref()) {
        (Some(v), Some(s)) => format!(", running {v} from slot {s}"),
        (Some(v), None) => format!(", running {v}"),
        _ => String::new(),
    };
    match (&r.outcome, &r.reason) {
        (Outcome::Confirmed, _) => format!("confirmed {}{running}", r.bundle_version),
        (o, Some(why)) => format!("{}: {why}{running}", o.name()),
        (o, None) => format!("{}{running}", o.name()),
    }
}

fn report_results(results: &[DeviceResult], json: bool) {
    for r in results {
        if json {
            println!("{}", serde_json::to_string(r).expect("serializes"));
        } else {
            println!(
                "{} {} ({} bytes sent, {:.1} s)",
                r.device,
                outcome_text(r),
                r.bytes_sent,
                r.seconds
            );
        }
    }
}

fn parse_wait(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds from 0.1 to 3600")),
    }
}

pub fn run_status(dir: &Path, args: StatusArgs) -> Result<(), Error> {
    let connect = args.connect.into_options(dir);
    let timeout = Duration::from_secs_f64(args.timeout);
    let found = ota_push::status(&connect, &args.ids, timeout)?;
    report_status(&found, timeout, args.json);
    Ok(())
}

fn report_status(found: &[DeviceOtaStatus], timeout: Duration, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(found).expect("serializes")
        );
        return;
    }
    if found.is_empty() {
        println!("no device to ask");
        return;
    }
    println!(
        "{:<24} {:<10} {:<10} {:<4} {:<16} {:<10} {:<6} FROM",
        "DEVICE", "CONN", "RUNNING", "SLOT", "STATE", "BUNDLE", "FLOOR"
    );
    for d in found {
        // Answered: online now. Otherwise what the broker retained, if it says offline;
        // else just that no answer came.
        let conn = match (d.answered, d.connection.as_deref()) {
            (true, _) => "online",
            (false, Some("offline")) => "offline",
            (false, _) => "no-answer",
        };
        let from = match d.ota_from {
            Some(Source::Live) => "live",
            Some(Source::Retained) => "retained",
            None => "-",
        };
        match &d.ota {
            Some(s) => {
                let state = match (s.percent, s.reason) {
                    (Some(p), _) => format!("{} {p}%", s.state),
                    (_, Some(r)) => format!("{} ({r})", s.state),
                    _ => s.state.to_string(),
                };
                println!(
                    "{:<24} {:<10} {:<10} {:<4} {:<16} {:<10} {:<6} {from}",
                    d.device,
                    conn,
                    s.running_version,
                    s.running_slot,
                    state,
                    s.bundle_version.as_deref().unwrap_or("-"),
                    s.security_floor
                );
            }
            None => println!(
                "{:<24} {:<10} {:<10} {:<4} {:<16} {:<10} {:<6} -",
                d.device, conn, "-", "-", "no report", "-", "-"
            ),
        }
    }
    let silent = found.iter().filter(|d| !d.answered).count();
    if silent > 0 {
        println!(
            "{silent} of {} did not answer within {:.1} s (not connected, or firmware without \
             OTA); FROM retained: the last report the broker kept, which on a cluster only the \
             node the device used has",
            found.len(),
            timeout.as_secs_f64()
        );
    }
}
