//! The superloop's state machine. `Device::poll(now, board)` does one step of work and returns
//! the time by which it wants to be polled again; every state change goes through
//! [`Device::go`], which logs `old => new` and tells the board. A state is entered only after the
//! I/O that justifies it succeeded. The table and diagram are in docs/esp-client.md.

use core::fmt::Write as _;
use core::task::Poll;

use embedded_io::{Error as _, Read, ReadReady, Write, WriteReady};
use embedded_storage::nor_flash::ReadNorFlash;
use wire_format::device_config::{ConfigError, DeviceConfig, Endpoint, Layout};

use crate::app::command::Commands;
use crate::app::telemetry::Telemetry;
use crate::app::{Apps, Ctx};
use crate::backoff::Backoff;
use crate::board::{Board, ConnectError, NetStatus, Server, TlsMaterial, Transport};
use crate::clock::{self, TimeFloor};
use crate::command::FmtBuf;
use crate::mqtt::{
    Connect, DecodeError, EncodeError, Event, QoS, Sent, Session, SessionConfig, SessionError, Will,
};
use crate::ota::{Ota, Running};
use crate::settings::*;

/// The states, with what each one waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Power-on: read the persisted time.
    Boot,
    /// Read and check the config sector.
    LoadConfig,
    /// The config is missing or corrupt: stop here (terminal, watchdog still fed).
    ConfigInvalid(ConfigError),
    /// Join the network, until `deadline`.
    NetworkUp { deadline: u64 },
    /// Ask the time source, until `deadline` (then go on with the floor).
    TimeSync { deadline: u64 },
    /// TCP + TLS handshake started; polling the transport until it is done or `deadline`.
    TlsConnect { deadline: u64 },
    /// CONNECT sent, waiting for CONNACK.
    MqttConnect { deadline: u64 },
    /// SUBSCRIBE sent, waiting for SUBACK.
    Subscribe { deadline: u64 },
    /// Serving: telemetry, commands, keep-alive.
    Online,
    /// A step failed; retry from `NetworkUp` at `until`.
    Backoff { until: u64, cause: Failure },
}

/// [`State`] without its data: what transcripts compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Boot,
    LoadConfig,
    ConfigInvalid,
    NetworkUp,
    TimeSync,
    TlsConnect,
    MqttConnect,
    Subscribe,
    Online,
    Backoff,
}

impl State {
    pub fn kind(&self) -> StateKind {
        match self {
            State::Boot => StateKind::Boot,
            State::LoadConfig => StateKind::LoadConfig,
            State::ConfigInvalid(_) => StateKind::ConfigInvalid,
            State::NetworkUp { .. } => StateKind::NetworkUp,
            State::TimeSync { .. } => StateKind::TimeSync,
            State::TlsConnect { .. } => StateKind::TlsConnect,
            State::MqttConnect { .. } => StateKind::MqttConnect,
            State::Subscribe { .. } => StateKind::Subscribe,
            State::Online => StateKind::Online,
            State::Backoff { .. } => StateKind::Backoff,
        }
    }
}

impl core::fmt::Display for StateKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            State::ConfigInvalid(e) => write!(f, "ConfigInvalid ({e})"),
            State::Backoff { until, cause } => write!(f, "Backoff until {until} ms ({cause})"),
            other => write!(f, "{}", other.kind()),
        }
    }
}

/// Why the device left a connected state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NetworkTimeout,
    NetworkFailed,
    Connect(ConnectError),
    /// TCP + TLS not established within `connect_timeout_ms`.
    ConnectTimeout,
    /// The transport closed or failed (broker gone, TLS alert, reset).
    Closed,
    ConnAckTimeout,
    /// CONNACK with a non-zero return code.
    Refused(u8),
    SubAckTimeout,
    SubscribeRefused,
    PingTimeout,
    /// A QoS 1 PUBLISH went unacknowledged after every retransmission.
    AckTimeout,
    Protocol(DecodeError),
    /// A well-formed packet that makes no sense in this state (e.g. PUBACK before CONNACK).
    UnexpectedPacket,
    Encode(EncodeError),
    /// The transport took no byte of a waiting packet for `ping_timeout_ms`.
    SendStalled,
}

impl Failure {
    /// The failure says nothing about the broker endpoint (the network itself is down): the
    /// device stays on its endpoint and waits the growing delay.
    pub fn is_network(&self) -> bool {
        matches!(self, Failure::NetworkTimeout | Failure::NetworkFailed)
    }
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Failure::NetworkTimeout => write!(f, "network did not come up in time"),
            Failure::NetworkFailed => write!(f, "network refused (SSID or password?)"),
            Failure::Connect(e) => write!(f, "{e}"),
            Failure::ConnectTimeout => write!(f, "TCP + TLS connect timed out"),
            Failure::SendStalled => write!(f, "the connection took no bytes (send stalled)"),
            Failure::Closed => write!(f, "connection closed"),
            Failure::ConnAckTimeout => write!(f, "no CONNACK"),
            Failure::Refused(code) => write!(f, "broker refused CONNECT (return code {code})"),
            Failure::SubAckTimeout => write!(f, "no SUBACK"),
            Failure::SubscribeRefused => write!(f, "broker refused the subscription"),
            Failure::PingTimeout => write!(f, "no PINGRESP"),
            Failure::AckTimeout => write!(f, "PUBLISH not acknowledged"),
            Failure::Protocol(e) => write!(f, "{e}"),
            Failure::UnexpectedPacket => write!(f, "packet out of order for this state"),
            Failure::Encode(e) => write!(f, "{e}"),
        }
    }
}

/// Counters for telemetry and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub connects: u32,
    pub telemetry_sent: u32,
    /// Telemetry samples the broker acknowledged.
    pub telemetry_acked: u32,
    /// Telemetry skipped because every in-flight slot was busy.
    pub telemetry_dropped: u32,
    pub retransmits: u32,
    pub commands: u32,
    /// Incoming packets larger than [`RX_BUF`], skipped.
    pub oversized: u32,
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Protocol(e) => Failure::Protocol(e),
            SessionError::Encode(e) => Failure::Encode(e),
            SessionError::PingTimeout => Failure::PingTimeout,
            SessionError::AckTimeout => Failure::AckTimeout,
            SessionError::SendStalled => Failure::SendStalled,
            SessionError::Unexpected => Failure::UnexpectedPacket,
        }
    }
}

/// Packets handled per poll at most: a flood cannot starve the timers.
const EVENTS_PER_POLL: usize = 8;
/// Writes an orderly shutdown tries (without blocking) to get `offline` and DISCONNECT out.
const SHUTDOWN_WRITES: usize = 16;

fn io_failure<E>(_: E) -> Failure {
    Failure::Closed
}

/// The config sector as read at boot, with where its fields lie: checked once by `LoadConfig`,
/// then viewed in constant time (no re-parse, no CRC over 4 KiB per poll).
pub(crate) struct Config {
    blob: [u8; CONFIG_BUF],
    layout: Option<Layout>,
}

impl Config {
    pub(crate) fn get(&self) -> Option<DeviceConfig<'_>> {
        self.layout.map(|l| l.view(&self.blob))
    }
}

/// What one received packet asks of the lifecycle, once the session lets go of it.
enum Step {
    Nothing,
    ConnAck(u8),
    SubAck {
        refused: bool,
    },
    /// A PUBLISH (already dispatched) arrived while waiting for SUBACK: the session is up.
    EarlyPublish,
    Unexpected,
}

/// The device core: the connection lifecycle (this module), the MQTT session
/// ([`crate::mqtt::Session`]) and the applications ([`crate::app`]). About 10 KiB
/// (`RAM_BUDGET`); keep it in a `static` on the chip.
pub struct Device {
    settings: Settings,
    state: State,
    config: Config,
    /// `devices/<id>/`, filled by `LoadConfig`.
    prefix: FmtBuf<TOPIC_BUF>,
    session: Session,
    apps: Apps,
    backoff: Backoff,
    /// The broker endpoint (index in the config's list) the device is on or connecting to.
    endpoint: u8,
    /// Endpoints that failed since this round began; the failure that completes a round waits
    /// the backoff's growing delay, the others only a hop (docs/esp-client.md).
    round_failures: u8,
    /// Online since; the backoff resets once this is `stable_after_ms` ago.
    online_since: Option<u64>,
    time: TimeFloor,
    persisted_time: Option<u64>,
    /// The floor the current connection attempt is validated at, and when it was taken.
    connect_floor: (u64, u64),
    /// CONNECTs sent (the one counter the lifecycle keeps; [`Device::stats`] asks the rest).
    connects: u32,
}

impl Device {
    pub fn new(settings: Settings) -> Self {
        Device {
            settings,
            state: State::Boot,
            config: Config {
                blob: [0xFF; CONFIG_BUF],
                layout: None,
            },
            prefix: FmtBuf::new(),
            session: Session::new(SessionConfig {
                keep_alive_s: settings.keep_alive_s,
                ping_timeout_ms: settings.ping_timeout_ms,
                ack_timeout_ms: settings.ack_timeout_ms,
                max_retransmits: settings.max_retransmits,
            }),
            apps: Apps {
                telemetry: Telemetry::new(settings.adc_channels),
                commands: Commands::new(settings.reboot_grace_ms),
                ota: Ota::new(),
            },
            backoff: Backoff::new(settings.backoff),
            endpoint: 0,
            round_failures: 0,
            online_since: None,
            time: TimeFloor::new(settings.build_time_unix, None, 0),
            persisted_time: None,
            connect_floor: (0, 0),
            connects: 0,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The counters, from the session and the applications that keep them.
    pub fn stats(&self) -> Stats {
        let session = self.session.stats();
        let telemetry = &self.apps.telemetry;
        Stats {
            connects: self.connects,
            telemetry_sent: telemetry.sent,
            telemetry_acked: telemetry.acked,
            telemetry_dropped: telemetry.dropped,
            retransmits: session.retransmits,
            commands: self.apps.commands.count,
            oversized: session.oversized,
        }
    }

    /// The time floor certificates are validated against, at `now`.
    pub fn time_floor(&self, now: u64) -> u64 {
        self.time.at(now)
    }

    /// The image running now, from its slot's signed header (`None` on a board without OTA).
    pub fn ota_running(&self) -> Option<Running> {
        self.apps.ota.running()
    }

    /// The config as loaded (only after `LoadConfig` succeeded).
    pub fn config(&self) -> Option<DeviceConfig<'_>> {
        self.config.get()
    }

    /// The broker endpoint the device is connected or connecting to (or tries next, in
    /// `Backoff`), from the config (only after `LoadConfig` succeeded).
    pub fn endpoint(&self) -> Option<Endpoint<'_>> {
        self.config.get()?.brokers.get(usize::from(self.endpoint))
    }

    /// The one place the state changes.
    fn go<B: Board>(&mut self, board: &mut B, now: u64, new: State) {
        let old = self.state;
        board.transition(now, &old, &new);
        self.state = new;
    }

    /// A connected step failed: drop the connection and wait. A failure at the broker moves to
    /// the next endpoint: at once (after a short hop) while the round of endpoints is not
    /// complete, after the growing backoff delay when every endpoint failed once. With one
    /// endpoint every failure completes a round. A network failure stays on the endpoint.
    fn fail<B: Board>(&mut self, board: &mut B, now: u64, cause: Failure) {
        board.transport().close();
        self.online_since = None;
        let count = self.config.layout.map_or(1, |l| l.broker_count()).max(1) as u8;
        let random = board.random_u32();
        let delay = if cause.is_network() {
            self.backoff.next_delay_ms(random)
        } else {
            self.endpoint = (self.endpoint + 1) % count;
            self.round_failures += 1;
            if self.round_failures < count {
                self.backoff.hop_delay_ms(random)
            } else {
                self.round_failures = 0;
                self.backoff.next_delay_ms(random)
            }
        };
        self.go(
            board,
            now,
            State::Backoff {
                until: now + delay,
                cause,
            },
        );
    }

    /// One step of work. Returns when the core wants to be polled again at the latest.
    pub fn poll<B: Board>(&mut self, now: u64, board: &mut B) -> u64 {
        board.feed_watchdog();
        // The updater's timers run in every state: a trial image that never gets online still
        // resets, so the loader can count its next trial boot.
        let ota_next = self.apps.ota.tick(now);
        if self.apps.ota.reboot_due() {
            self.reboot(board, now, "ota");
            return now;
        }
        self.step(now, board).min(ota_next.max(now))
    }

    fn step<B: Board>(&mut self, now: u64, board: &mut B) -> u64 {
        match self.state {
            State::Boot => {
                let mut rec = [0u8; clock::record::LEN];
                self.persisted_time = match board.flash().read(self.settings.state_offset, &mut rec)
                {
                    Ok(()) => clock::parse_record(&rec),
                    Err(_) => None,
                };
                self.time = TimeFloor::new(self.settings.build_time_unix, self.persisted_time, now);
                self.apps.ota.boot(board, self.settings.ota, now);
                self.go(board, now, State::LoadConfig);
                now
            }
            State::LoadConfig => {
                self.load_config(board, now);
                now
            }
            State::ConfigInvalid(_) => now + 1_000,
            State::NetworkUp { deadline } => {
                let status = match self.config.get() {
                    Some(cfg) => board.network(cfg.wifi_ssid, cfg.wifi_password),
                    None => NetStatus::Failed,
                };
                match status {
                    NetStatus::Up if self.time.synced() => self.start_connect(board, now),
                    NetStatus::Up => {
                        let deadline = now + self.settings.time_sync_timeout_ms;
                        self.go(board, now, State::TimeSync { deadline })
                    }
                    NetStatus::Pending if now >= deadline => {
                        self.fail(board, now, Failure::NetworkTimeout)
                    }
                    NetStatus::Pending => return deadline.min(now + 100),
                    NetStatus::Failed => self.fail(board, now, Failure::NetworkFailed),
                }
                now
            }
            State::TimeSync { deadline } => {
                if let Some(source) = board.time_source() {
                    // Not persisted: only a handshake validated at it makes it trusted.
                    self.time.sync(source, now);
                    self.start_connect(board, now);
                } else if now >= deadline {
                    let floor = self.time.at(now);
                    board.log(format_args!(
                        "no time source: validating certificates at the floor {floor}"
                    ));
                    self.start_connect(board, now);
                } else {
                    return deadline.min(now + 100);
                }
                now
            }
            State::TlsConnect { deadline } => match self.poll_connect(board, now) {
                Ok(true) => now,
                Ok(false) if now >= deadline => {
                    self.fail(board, now, Failure::ConnectTimeout);
                    now
                }
                Ok(false) => deadline.min(now + self.settings.idle_poll_ms),
                Err(f) => {
                    self.fail(board, now, f);
                    now
                }
            },
            State::MqttConnect { .. } | State::Subscribe { .. } | State::Online => {
                match self.connected(board, now) {
                    Ok(next) => next,
                    Err(f) => {
                        self.fail(board, now, f);
                        now
                    }
                }
            }
            State::Backoff { until, .. } => {
                if now < until {
                    return until;
                }
                let deadline = now + self.settings.network_timeout_ms;
                self.go(board, now, State::NetworkUp { deadline });
                now
            }
        }
    }

    fn load_config<B: Board>(&mut self, board: &mut B, now: u64) {
        let read = board
            .flash()
            .read(self.settings.config_offset, &mut self.config.blob);
        let layout = match read {
            Ok(()) => Layout::of(&self.config.blob),
            Err(_) => Err(ConfigError::Truncated {
                need: CONFIG_BUF,
                have: 0,
            }),
        };
        match layout {
            Ok(layout) => {
                self.config.layout = Some(layout);
                let cfg = layout.view(&self.config.blob);
                self.prefix.clear();
                // Cannot overflow: ids are at most 63 bytes (checked by parse).
                let _ = write!(self.prefix, "devices/{}/", cfg.device_id);
                self.apps.telemetry.period_ms = u64::from(cfg.telemetry_period_s) * 1000;
                board.log(format_args!("config: device {}", cfg.device_id));
                let deadline = now + self.settings.network_timeout_ms;
                self.go(board, now, State::NetworkUp { deadline });
            }
            Err(e) => {
                self.config.layout = None;
                board.log(format_args!("config error: {e}"));
                self.go(board, now, State::ConfigInvalid(e));
            }
        }
    }

    /// Persists the trusted floor if it moved far enough since the last record (flash wear).
    fn persist_time<B: Board>(&mut self, board: &mut B, now: u64) {
        use embedded_storage::nor_flash::NorFlash;
        let t = self.time.trusted(now);
        if self
            .persisted_time
            .is_some_and(|p| t < p + clock::record::MIN_STEP_S)
        {
            return;
        }
        let off = self.settings.state_offset;
        let erase_len = B::Flash::ERASE_SIZE as u32;
        let rec = clock::emit_record(t);
        let flash = board.flash();
        let ok = flash.erase(off, off + erase_len).is_ok() && flash.write(off, &rec).is_ok();
        if ok {
            self.persisted_time = Some(t);
        } else {
            board.log(format_args!("could not persist the time floor"));
        }
    }

    /// The current endpoint and the TLS material from the config, validated at `floor`. The
    /// board's TLS checks the broker certificate against this endpoint's host.
    fn target(&self, floor: u64) -> Result<(Server<'_>, TlsMaterial<'_>), Failure> {
        let cfg = self.config.get().ok_or(Failure::NetworkFailed)?;
        let endpoint = cfg
            .brokers
            .get(usize::from(self.endpoint))
            .ok_or(Failure::NetworkFailed)?;
        let tls = TlsMaterial {
            ca_der: cfg.ca_cert_der,
            client_cert_der: cfg.client_cert_der,
            client_key_der: cfg.client_key_der,
            broker_pin: cfg.broker_pin,
            time_floor_unix: floor,
        };
        let server = Server {
            host: endpoint.host,
            port: endpoint.port,
        };
        Ok((server, tls))
    }

    /// Starts TCP + TLS and enters `TlsConnect` with the connect deadline.
    // Not inlined into `poll` (nor `poll_connect`): with both inside it, LLVM's Xtensa backend
    // fails to compile the LX106 build ("cannot scavenge register without an emergency spill
    // slot"; `cargo test -p esp8266-board --test firmware` catches it).
    #[inline(never)]
    fn start_connect<B: Board>(&mut self, board: &mut B, now: u64) {
        self.connect_floor = (self.time.at(now), now);
        let count = self.config.layout.map_or(1, |l| l.broker_count());
        if count > 1 {
            if let Some(e) = self.endpoint() {
                board.log(format_args!(
                    "broker {}:{} (endpoint {} of {count})",
                    e.host,
                    e.port,
                    self.endpoint + 1
                ));
            }
        }
        let started = self.target(self.connect_floor.0).and_then(|(server, tls)| {
            board
                .transport()
                .connect_start(server, &tls)
                .map_err(Failure::Connect)
        });
        match started {
            Ok(()) => {
                let deadline = now + self.settings.connect_timeout_ms;
                self.go(board, now, State::TlsConnect { deadline });
            }
            Err(f) => self.fail(board, now, f),
        }
    }

    /// Polls the handshake; once done, queues CONNECT with the retained Last Will and enters
    /// `MqttConnect`. `Ok(false)`: still in progress.
    #[inline(never)]
    fn poll_connect<B: Board>(&mut self, board: &mut B, now: u64) -> Result<bool, Failure> {
        let (floor, at) = self.connect_floor;
        let (server, tls) = self.target(floor)?;
        match board.transport().poll_connect(server, &tls) {
            Poll::Pending => return Ok(false),
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(ConnectError::ServerCertificate)) if self.time.unconfirmed(at) => {
                // Maybe the certificate is bad, maybe the unauthenticated time source lied
                // (far future: everything looks expired). Do not trust that answer again.
                let trusted = self.time.trusted(now);
                board.log(format_args!(
                    "broker certificate refused at the time source's {floor}: \
                     not trusting that answer; validating at the floor {trusted} from now on"
                ));
                self.time.reject_source();
                return Err(Failure::Connect(ConnectError::ServerCertificate));
            }
            Poll::Ready(Err(e)) => return Err(Failure::Connect(e)),
        }
        // The broker's chain is valid at `floor`: that time is trusted now, and persisted.
        self.time.confirm(floor, at);
        self.persist_time(board, now);
        let cfg = self.config.get().ok_or(Failure::NetworkFailed)?;
        let mut will_topic = FmtBuf::<TOPIC_BUF>::new();
        write!(will_topic, "{}status", self.prefix.as_str())
            .map_err(|_| Failure::Encode(EncodeError::BadTopic))?;
        let connect = Connect {
            client_id: cfg.device_id,
            keep_alive_s: self.settings.keep_alive_s,
            // A cluster's config asks for a persistent session: its subscription queue is then
            // replicated and survives the node the device was on (docs/esp-client.md).
            clean_session: !cfg.persistent_session,
            will: Some(Will {
                topic: will_topic.as_str(),
                payload: b"offline",
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
        };
        self.session
            .connect(now, &connect)
            .map_err(Failure::Encode)?;
        self.connects += 1;
        self.transmit(board, now)?;
        let deadline = now + self.settings.connack_timeout_ms;
        self.go(board, now, State::MqttConnect { deadline });
        Ok(true)
    }

    /// Offers the session's waiting bytes to the transport, as far as it takes them now.
    fn transmit<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        let t = board.transport();
        loop {
            let pending = self.session.tx_pending();
            if pending.is_empty() || !t.write_ready().map_err(io_failure)? {
                return Ok(());
            }
            let n = match t.write(pending) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == embedded_io::ErrorKind::Interrupted => return Ok(()),
                Err(_) => return Err(Failure::Closed),
            };
            self.session.tx_written(now, n);
        }
    }

    /// Reads what the transport has into the session's receive buffer. `Ok(true)`: got bytes.
    fn receive<B: Board>(&mut self, board: &mut B) -> Result<bool, Failure> {
        let t = board.transport();
        if !t.read_ready().map_err(io_failure)? {
            return Ok(false);
        }
        let buf = self.session.rx_buffer();
        if buf.is_empty() {
            return Ok(false);
        }
        match t.read(buf) {
            Ok(0) => Err(Failure::Closed),
            Ok(n) => {
                self.session.rx_filled(n);
                Ok(true)
            }
            Err(e) if e.kind() == embedded_io::ErrorKind::Interrupted => Ok(false),
            Err(_) => Err(Failure::Closed),
        }
    }

    /// `MqttConnect`, `Subscribe` and `Online`: move bytes, handle packets, run the timers.
    fn connected<B: Board>(&mut self, board: &mut B, now: u64) -> Result<u64, Failure> {
        self.transmit(board, now)?;
        let mut handled = 0;
        while handled < EVENTS_PER_POLL {
            let got = self.receive(board)?;
            match self.next_step(board, now)? {
                None if got => continue,
                None => break,
                Some(step) => {
                    handled += 1;
                    self.on_step(board, now, step)?;
                    // Acks and answers go out before the next packet is read.
                    if matches!(self.state, State::Boot) {
                        break;
                    }
                    self.transmit(board, now)?;
                }
            }
        }
        let next = match self.state {
            State::MqttConnect { deadline } if now >= deadline => {
                return Err(Failure::ConnAckTimeout)
            }
            State::Subscribe { deadline } if now >= deadline => return Err(Failure::SubAckTimeout),
            State::MqttConnect { deadline } | State::Subscribe { deadline } => deadline,
            State::Online => self.online(board, now)?,
            // A step above rebooted the device.
            _ => return Ok(now),
        };
        self.transmit(board, now)?;
        Ok(next.min(now + self.settings.idle_poll_ms))
    }

    /// Takes the next packet from the session; a PUBLISH is dispatched to its application
    /// here, while it still borrows the receive buffer.
    fn next_step<B: Board>(&mut self, board: &mut B, now: u64) -> Result<Option<Step>, Failure> {
        let Some((event, out)) = self.session.next_event(now)? else {
            return Ok(None);
        };
        let step = match event {
            Event::ConnAck { code, .. } => match self.state {
                State::MqttConnect { .. } => Step::ConnAck(code),
                _ => Step::Unexpected,
            },
            Event::SubAck { refused, .. } => match self.state {
                State::Subscribe { .. } => Step::SubAck { refused },
                _ => Step::Nothing,
            },
            Event::Oversized { len } => {
                board.log(format_args!(
                    "{}",
                    DecodeError::TooLarge { len, max: RX_BUF }
                ));
                Step::Nothing
            }
            Event::Publish(msg) => {
                let early = matches!(self.state, State::Subscribe { .. });
                let mut ctx = Ctx {
                    board,
                    out,
                    prefix: self.prefix.as_str(),
                    config: &self.config,
                    now,
                };
                let suffix = msg.topic.strip_prefix(ctx.prefix).unwrap_or("");
                self.apps.on_publish(&mut ctx, suffix, &msg)?;
                if early {
                    Step::EarlyPublish
                } else {
                    Step::Nothing
                }
            }
        };
        Ok(Some(step))
    }

    fn on_step<B: Board>(&mut self, board: &mut B, now: u64, step: Step) -> Result<(), Failure> {
        match step {
            Step::Nothing => Ok(()),
            Step::ConnAck(0) => self.subscribe(board, now),
            Step::ConnAck(code) => Err(Failure::Refused(code)),
            Step::SubAck { refused: true } => Err(Failure::SubscribeRefused),
            Step::SubAck { .. } | Step::EarlyPublish => {
                self.enter_online(board, now);
                Ok(())
            }
            Step::Unexpected => Err(Failure::UnexpectedPacket),
        }
    }

    fn subscribe<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        let mut topics = [const { FmtBuf::<TOPIC_BUF>::new() }; Apps::FILTERS];
        let mut n = 0;
        let mut fits = true;
        self.apps.filters(|filter| {
            fits &= write!(topics[n], "{}{filter}", self.prefix.as_str()).is_ok();
            n += 1;
        });
        if !fits {
            return Err(Failure::Encode(EncodeError::BadTopic));
        }
        let filters = topics.each_ref().map(|t| (t.as_str(), QoS::AtLeastOnce));
        self.session
            .subscribe(now, &filters[..n])
            .map_err(Failure::Encode)?
            .ok_or(Failure::SendStalled)?;
        self.transmit(board, now)?;
        let deadline = now + self.settings.suback_timeout_ms;
        self.go(board, now, State::Subscribe { deadline });
        Ok(())
    }

    /// The applications and the context they run in, borrowed apart from the rest of the
    /// device.
    fn apps<'a, B: Board>(&'a mut self, board: &'a mut B, now: u64) -> (&'a mut Apps, Ctx<'a, B>) {
        let ctx = Ctx {
            board,
            out: self.session.sender(),
            prefix: self.prefix.as_str(),
            config: &self.config,
            now,
        };
        (&mut self.apps, ctx)
    }

    fn enter_online<B: Board>(&mut self, board: &mut B, now: u64) {
        self.go(board, now, State::Online);
        self.online_since = Some(now);
        // Unacknowledged publishes from the last connection go out again (as DUP), first.
        self.session.resume(now);
        let (apps, mut ctx) = self.apps(board, now);
        // The one place a trial image is confirmed (by the update's `on_online`): CONNACK and
        // SUBACK are in.
        apps.on_online(&mut ctx);
        match ctx.publish("status", b"online", QoS::AtLeastOnce, true) {
            Ok(Sent::Queued { .. }) => {}
            Ok(Sent::Busy) => ctx
                .board
                .log(format_args!("status online not sent: the queue is full")),
            Err(e) => ctx.board.log(format_args!("status online not sent: {e}")),
        }
    }

    /// One poll while online: the session's timers, then each application's.
    fn online<B: Board>(&mut self, board: &mut B, now: u64) -> Result<u64, Failure> {
        let mut next = self.session.poll(now)?;
        if let Some(since) = self.online_since {
            let stable = since + self.settings.stable_after_ms;
            if now >= stable {
                self.backoff.reset();
                self.round_failures = 0;
                self.online_since = None;
            } else {
                next = next.min(stable);
            }
        }
        if self
            .apps
            .commands
            .reboot_due(now, self.session.sender().all_acked())
        {
            self.reboot(board, now, "command");
            return Ok(now);
        }
        let (apps, mut ctx) = self.apps(board, now);
        next = next.min(apps.poll(&mut ctx)?);
        // The floor keeps moving while the device runs: persist it (at most hourly), so a
        // reboot without a time source starts from recent time, not from the last sync.
        self.persist_time(board, now);
        Ok(next)
    }

    /// Reboot command: say goodbye, then reset. On the host the board returns and the core
    /// starts again from `Boot`.
    fn reboot<B: Board>(&mut self, board: &mut B, now: u64, why: &str) {
        self.shutdown(board, now);
        board.log(format_args!("rebooting on {why}"));
        board.reset();
        self.go(board, now, State::Boot);
        let settings = self.settings;
        *self = Device::new(settings);
    }

    /// Orderly stop (reboot command, Ctrl-C on the host): if connected, publish the retained
    /// "offline" ourselves (a clean DISCONNECT suppresses the Will), send DISCONNECT, close.
    pub fn shutdown<B: Board>(&mut self, board: &mut B, now: u64) {
        if matches!(self.state, State::Online | State::Subscribe { .. }) {
            let (_, mut ctx) = self.apps(board, now);
            let _ = ctx.publish("status", b"offline", QoS::AtMostOnce, true);
        }
        if matches!(
            self.state,
            State::Online | State::Subscribe { .. } | State::MqttConnect { .. }
        ) {
            self.session.disconnect(now);
            // Best effort without blocking: whatever the transport takes right now.
            for _ in 0..SHUTDOWN_WRITES {
                if self.session.tx_pending().is_empty() || self.transmit(board, now).is_err() {
                    break;
                }
            }
        }
        board.transport().close();
    }
}
