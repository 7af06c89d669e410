//! `esp-fleet --dir DIR`: runs every `DIR/*.flash` or `*.bin` (one `provision device config` blob
//! each) as
//! its own device core in this one process, against the broker each config names, and reports
//! how the fleet does: devices online, telemetry sent and acknowledged, connect latency
//! percentiles, the peak rate of TLS handshakes. Ctrl-C / SIGTERM (or `--seconds`) stops every
//! device in order (`offline`, DISCONNECT) and prints the final report.
//! Exit codes: 0 stopped, 1 bad arguments or files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use esp_client_host::fleet::Fleet;
use esp_client_host::settings;

/// Runs a fleet of simulated devices (the ESP8266 core, one per flash file) in one process.
#[derive(Parser)]
#[command(name = "esp-fleet", version)]
struct Args {
    /// Directory of flash images, one per device (`*.flash` or `*.bin`, from `provision device
    /// config`; `--from-file ... --out-dir DIR` writes them all).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Stop after this many seconds (default: run until Ctrl-C / SIGTERM).
    #[arg(long)]
    seconds: Option<u64>,
    /// Print a progress line this often, seconds (0: only the final report).
    #[arg(long, default_value_t = 5)]
    report_every: u64,
    /// Print the final report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Log every device's transitions on stderr.
    #[arg(long)]
    verbose: bool,
    /// TCP + TLS connect timeout, milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,
    /// Longest backoff between reconnection attempts, milliseconds.
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1_000..))]
    max_backoff_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut s = settings();
    s.connect_timeout_ms = args.timeout_ms;
    s.backoff.cap_ms = args.max_backoff_ms;
    // A thousand devices in one thread: poll each every 100 ms at most when idle.
    s.idle_poll_ms = 100;
    let mut fleet = match Fleet::open(&args.dir, s, args.verbose) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "hint: write one config per device with \
                 `provision device config --from-file IDS --out-dir DIR --wifi-ssid lab`"
            );
            return ExitCode::from(1);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("error: installing signal handlers: {e}");
            return ExitCode::from(1);
        }
    }
    eprintln!(
        "esp-fleet: {} devices from {}",
        fleet.members.len(),
        args.dir.display()
    );
    let every = match args.report_every {
        0 => Duration::MAX,
        n => Duration::from_secs(n),
    };
    fleet.run(
        &stop,
        args.seconds.map(Duration::from_secs),
        every,
        |r, t| eprintln!("{}", r.line(t)),
    );
    let t = fleet.elapsed().as_secs_f64();
    let report = fleet.shutdown();
    eprintln!("{}", report.line(t));
    if args.json {
        println!("{}", report.json());
    }
    ExitCode::SUCCESS
}
