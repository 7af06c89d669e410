//! `esp-client-host --flash dev.flash`: runs the device core on Linux against a real broker.
//! Exit codes: 0 stopped by Ctrl-C/SIGTERM, 1 bad arguments or flash file, 2 device config
//! missing or corrupt, 3 watchdog.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use esp_client::machine::Device;
use esp_client_host::board::HostBoard;
use esp_client_host::flash::FileFlash;
use esp_client_host::tls::TlsTransport;
use esp_client_host::{run, settings, Exit};

/// Runs the ESP8266 firmware core on this machine: config from a flash image, mutual TLS with
/// rustls, MQTT to the broker named in the config (failing over between its endpoints when it
/// names several), the AVR simulated in-process.
#[derive(Parser)]
#[command(name = "esp-client-host", version)]
struct Args {
    /// Flash image: the config blob from `provision device config` (padded to 8 KiB by the
    /// first flash write; the second 4 KiB sector keeps the persisted time).
    #[arg(long, value_name = "FILE")]
    flash: PathBuf,
    /// Offer TLS 1.3 too (the ESP8266 speaks TLS 1.2 only, so that is the default).
    #[arg(long)]
    tls13: bool,
    /// Act as if SNTP never answered: certificates are validated at max(build time, persisted).
    #[arg(long)]
    no_time_source: bool,
    /// MQTT keep-alive in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(5..))]
    keep_alive: u16,
    /// ADC channels read into each telemetry sample (0..N).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=8))]
    adc_channels: u8,
    /// TCP connect and TLS handshake timeout, milliseconds (the core's connect deadline; the
    /// superloop keeps running and feeding the watchdog while a connect is in progress).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,
    /// Longest backoff between reconnection attempts, milliseconds (at least the first delay,
    /// 1000: less would hammer the broker in a tight loop).
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1_000..))]
    max_backoff_ms: u64,
}

/// Watchdog limit: the loop never blocks (but for name resolution), so this only fires on a hang.
const WATCHDOG_S: u64 = 30;

fn main() -> ExitCode {
    let args = Args::parse();
    match main_inner(args) {
        Ok(Exit::Stopped) => ExitCode::SUCCESS,
        Ok(Exit::ConfigInvalid(e)) => {
            eprintln!("error: the device config is unusable: {e}");
            eprintln!("hint: write one with `provision device config ID ... -o FILE`");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn main_inner(args: Args) -> anyhow::Result<Exit> {
    let flash = FileFlash::open(&args.flash)
        .with_context(|| format!("opening flash image {}", args.flash.display()))?;
    let tls = TlsTransport::new(args.tls13);
    let mut board = HostBoard::new(flash, tls, !args.no_time_source);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    board.start_watchdog(Duration::from_secs(WATCHDOG_S));
    let mut s = settings();
    s.keep_alive_s = args.keep_alive;
    s.adc_channels = args.adc_channels;
    s.connect_timeout_ms = args.timeout_ms;
    s.backoff.cap_ms = args.max_backoff_ms;
    let mut device = Box::new(Device::new(s));
    Ok(run(&mut device, &mut board, &stop))
}
