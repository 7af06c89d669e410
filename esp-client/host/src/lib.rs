//! The esp-client core as a Linux program (the "host port"): the same `Device::poll` superloop
//! as on the ESP8266, over a host board: rustls mutual TLS, a file-backed flash image, the AVR
//! served in-process by the avr-slave protocol engine. docs/esp-client.md, "Host port".

pub mod avr;
pub mod board;
pub mod flash;
pub mod fleet;
pub mod tls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use esp_client::board::{AvrLink, Board};
use esp_client::machine::{Device, State};
use esp_client::settings::Settings;

/// Firmware build time (build.rs), the lowest time floor.
pub const BUILD_TIME_UNIX: u64 = match u64::from_str_radix(env!("ESP_BUILD_TIME_UNIX"), 10) {
    Ok(t) => t,
    Err(_) => 0,
};

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped on request (Ctrl-C / SIGTERM) after an orderly shutdown.
    Stopped,
    /// The config sector was missing or corrupt (the device's terminal error state).
    ConfigInvalid(String),
}

/// The superloop: poll, sleep until the core's next deadline or the broker's next bytes (or a
/// stop request).
pub fn run<A: AvrLink>(
    device: &mut Device,
    board: &mut board::HostBoard<A>,
    stop: &AtomicBool,
) -> Exit {
    loop {
        let now = board.now_ms();
        let next = device.poll(now, board);
        if let State::ConfigInvalid(e) = device.state() {
            return Exit::ConfigInvalid(e.to_string());
        }
        if stop.load(Ordering::Relaxed) {
            let now = board.now_ms();
            board.log(format_args!("stopping: saying offline and disconnecting"));
            device.shutdown(board, now);
            return Exit::Stopped;
        }
        let now = board.now_ms();
        if next > now {
            // Until the deadline or until the broker sends something, whichever comes first.
            board
                .tls
                .wait_readable(Duration::from_millis((next - now).min(50)));
        }
    }
}

/// The host's settings: the core's defaults plus the build time.
pub fn settings() -> Settings {
    Settings {
        build_time_unix: BUILD_TIME_UNIX,
        ..Settings::default()
    }
}
