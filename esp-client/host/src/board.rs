//! The host board: Linux in the roles of the ESP8266's peripherals. The same board runs the
//! `esp-client-host` program (logging to the terminal, OTA slots in its flash file) and each
//! device of a fleet (`esp-fleet`: quiet, no OTA), and counts its connections for the fleet's
//! report.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use esp_client::board::{AvrLink, Board, NetStatus};
use esp_client::machine::{Failure, State, StateKind};

use crate::avr::{host_avr, HostAvr};
use crate::flash::{FileFlash, OTA_LAYOUT};
use crate::tls::TlsTransport;

/// Host simulation aid: an OTA image that begins with these bytes never runs (the host port
/// resets at once when the loader boots it), so rollback can be tested end to end. Only the
/// host port looks for it.
pub const CRASH_MARKER: &[u8; 24] = b"ESP-CLIENT-HOST:CRASHES!";

/// Where a board's log lines go.
enum Voice {
    /// The program's terminal: every line on stderr, with the seconds since start.
    Console,
    /// One device of a fleet: `[name] line` on stderr, only when `verbose`.
    Member { name: String, verbose: bool },
}

/// A board's connections, as the fleet reports them.
#[derive(Debug, Default)]
pub struct Connections {
    /// When the current run of connection attempts began (first `TlsConnect` since online).
    connecting_since: Option<u64>,
    /// Milliseconds from the first attempt to `Online`, one per connection.
    pub latencies: Vec<u64>,
    /// Times (ms) at which a TLS handshake completed.
    pub handshakes: Vec<u64>,
    pub online: bool,
}

impl Connections {
    fn transition(&mut self, now_ms: u64, from: &State, to: &State) {
        match to.kind() {
            StateKind::TlsConnect if self.connecting_since.is_none() => {
                self.connecting_since = Some(now_ms)
            }
            StateKind::MqttConnect => self.handshakes.push(now_ms),
            StateKind::Online => {
                self.online = true;
                if let Some(t) = self.connecting_since.take() {
                    self.latencies.push(now_ms - t);
                }
            }
            _ => {}
        }
        if from.kind() == StateKind::Online {
            self.online = false;
        }
    }
}

/// `A` is the AVR: by default the in-process slave engine; a test puts the real firmware in
/// simavr there.
pub struct HostBoard<A = HostAvr> {
    start: Instant,
    pub tls: TlsTransport,
    pub flash: FileFlash,
    pub avr: A,
    /// `--no-time-source`: behave like a device whose SNTP never answers.
    pub time_source: bool,
    /// The flash file holds OTA slots and the loader step runs at every (re)boot.
    ota: bool,
    voice: Voice,
    /// xorshift64* state for the backoff's jitter.
    rng: u64,
    pub connections: Connections,
    pub resets: u32,
    /// The slot the loader step chose at the last (re)boot, and how.
    pub booted: Option<esp_client::ota::Boot>,
    /// Milliseconds since start at the last watchdog feed (read by the watchdog thread).
    pub fed: Arc<AtomicU64>,
    said_network: bool,
}

impl HostBoard {
    /// With the AVR served in-process.
    pub fn new(flash: FileFlash, tls: TlsTransport, time_source: bool) -> Self {
        HostBoard::with_avr(flash, tls, time_source, host_avr().0)
    }

    /// One device of a fleet: its clock counts from the fleet's `start`, it logs as `[name]`
    /// only when `verbose`, has no OTA, always a time source, and its jitter comes from `seed`
    /// (non-zero), so devices differ from each other as real chips do.
    pub fn fleet_member(
        name: String,
        start: Instant,
        flash: FileFlash,
        tls: TlsTransport,
        seed: u64,
        verbose: bool,
    ) -> Self {
        let mut board = HostBoard::assemble(start, flash, tls, host_avr().0);
        board.voice = Voice::Member { name, verbose };
        board.rng = seed;
        board
    }
}

impl<A: AvrLink> HostBoard<A> {
    pub fn with_avr(flash: FileFlash, tls: TlsTransport, time_source: bool, avr: A) -> Self {
        let mut board = HostBoard::assemble(Instant::now(), flash, tls, avr);
        board.time_source = time_source;
        board.ota = true;
        board.loader();
        board
    }

    /// The parts, without OTA, logging to the terminal.
    fn assemble(start: Instant, flash: FileFlash, tls: TlsTransport, avr: A) -> Self {
        HostBoard {
            start,
            tls,
            flash,
            avr,
            time_source: true,
            ota: false,
            voice: Voice::Console,
            rng: rand::random::<u64>() | 1,
            connections: Connections::default(),
            resets: 0,
            booted: None,
            fed: Arc::new(AtomicU64::new(0)),
            said_network: false,
        }
    }
}

impl<A: AvrLink> HostBoard<A> {
    /// What the ESP8266's loader does before it jumps to an image: the shared boot decision,
    /// with the trial boot counted (or the rollback recorded) first. An image that begins with
    /// [`CRASH_MARKER`] "crashes before its own code runs": the next boot follows at once (a
    /// simulation aid for rollback tests; a real image has no such bytes).
    fn loader(&mut self) {
        for _ in 0..=esp_client::ota::MAX_TRIAL_BOOTS {
            let b = esp_client::ota::boot(&mut self.flash, &OTA_LAYOUT);
            self.booted = Some(b);
            self.log(format_args!("loader: boot slot {} ({:?})", b.slot, b.kind));
            let start = OTA_LAYOUT.slot(b.slot).image;
            let mut head = [0u8; CRASH_MARKER.len()];
            let crashes =
                embedded_storage::nor_flash::ReadNorFlash::read(&mut self.flash, start, &mut head)
                    .is_ok()
                    && head == *CRASH_MARKER;
            if !crashes {
                return;
            }
            self.log(format_args!(
                "loader: the image in slot {} crashes at start (host simulation marker); resetting",
                b.slot
            ));
        }
    }

    /// A hardware-watchdog stand-in: a thread that ends the process if the superloop stops
    /// feeding for `limit` (a hung core must not look alive to the broker).
    pub fn start_watchdog(&self, limit: Duration) {
        let fed = self.fed.clone();
        let start = self.start;
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = start.elapsed().as_millis() as u64;
            if now.saturating_sub(fed.load(Ordering::Relaxed)) > limit.as_millis() as u64 {
                eprintln!("watchdog: the superloop did not run for {limit:?}; resetting (exit 3)");
                std::process::exit(3);
            }
        });
    }
}

impl<A: AvrLink> Board for HostBoard<A> {
    type Transport = TlsTransport;
    type Flash = FileFlash;
    type Avr = A;

    fn now_ms(&mut self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    fn transport(&mut self) -> &mut TlsTransport {
        &mut self.tls
    }
    fn flash(&mut self) -> &mut FileFlash {
        &mut self.flash
    }
    fn avr(&mut self) -> &mut A {
        &mut self.avr
    }
    fn random_u32(&mut self) -> u32 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
    fn network(&mut self, ssid: &str, _password: &str) -> NetStatus {
        if !self.said_network {
            self.said_network = true;
            self.log(format_args!(
                "network: the host's (WiFi SSID {ssid:?} from the config is for the chip)"
            ));
        }
        NetStatus::Up
    }
    fn time_source(&mut self) -> Option<u64> {
        if !self.time_source {
            return None;
        }
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
    fn feed_watchdog(&mut self) {
        let now = self.now_ms();
        self.fed.store(now, Ordering::Relaxed);
    }
    fn reset(&mut self) {
        self.resets += 1;
        if self.ota {
            self.loader();
        }
    }
    fn ota_layout(&self) -> Option<&'static esp_client::ota::Layout> {
        self.ota.then_some(&OTA_LAYOUT)
    }
    fn log(&mut self, line: core::fmt::Arguments<'_>) {
        match &self.voice {
            Voice::Console => {
                let t = self.start.elapsed().as_secs_f64();
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "[{t:9.3} s] {line}");
            }
            Voice::Member {
                name,
                verbose: true,
            } => eprintln!("[{name}] {line}"),
            Voice::Member { .. } => {}
        }
    }
    fn transition(&mut self, now_ms: u64, from: &State, to: &State) {
        self.connections.transition(now_ms, from, to);
        let detail = match to {
            State::Backoff {
                cause: Failure::Connect(_) | Failure::ConnectTimeout | Failure::Closed,
                ..
            } => self
                .tls
                .last_error
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        self.log(format_args!("{from} => {to}{detail}"));
    }
}
