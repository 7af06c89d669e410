//! The superloop's state machine. `Device::poll(now, board)` does one step of work and returns
//! the time by which it wants to be polled again; every state change goes through
//! [`Device::go`], which logs `old => new` and tells the board. A state is entered only after the
//! I/O that justifies it succeeded. The table and diagram are in docs/esp-client.md.

use core::fmt::Write as _;
use core::task::Poll;

use embedded_io::{Error as _, Read, ReadReady};
use embedded_storage::nor_flash::ReadNorFlash;
use wire_format::device_config::{ConfigError, DeviceConfig};

use crate::backoff::Backoff;
use crate::board::{
    AvrError, AvrLink, Board, ConnectError, NetStatus, Server, TlsMaterial, Transport,
};
use crate::clock::{self, TimeFloor};
use crate::command::{self, Command, FmtBuf, Json};
use crate::mqtt::{self, Connect, DecodeError, EncodeError, Packet, Publish, QoS, Subscribe, Will};
use crate::settings::*;
use crate::txqueue::TxQueue;

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
    /// Telemetry skipped because every in-flight slot was busy.
    pub telemetry_dropped: u32,
    pub retransmits: u32,
    pub commands: u32,
    /// Incoming packets larger than [`RX_BUF`], skipped.
    pub oversized: u32,
}

/// A QoS 1 PUBLISH awaiting PUBACK.
#[derive(Clone, Copy)]
struct Inflight {
    /// 0: free.
    pkid: u16,
    len: usize,
    sent_at: u64,
    retries: u8,
    /// Whether the packet still has to be queued for the transport.
    send: Pending,
    buf: [u8; INFLIGHT_BUF],
}

/// What an in-flight slot still has to send.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Queued (or written); waiting for PUBACK.
    Nothing,
    /// Never sent yet: queue it as soon as the transmit queue has room.
    First,
    /// Send again with DUP when there is room, without counting a retry (new connection, or a
    /// retransmission that found the queue full).
    Again,
}

const FREE: Inflight = Inflight {
    pkid: 0,
    len: 0,
    sent_at: 0,
    retries: 0,
    send: Pending::Nothing,
    buf: [0; INFLIGHT_BUF],
};

/// What a received packet means to the machine, copied out of the receive buffer.
#[derive(Debug, Clone, Copy)]
enum Incoming {
    ConnAck {
        code: u8,
    },
    PubAck {
        pkid: u16,
    },
    SubAck {
        refused: bool,
    },
    PingResp,
    Command {
        pkid: u16,
        name: [u8; CMD_NAME_BUF],
        name_len: usize,
        payload: [u8; CMD_PAYLOAD_BUF],
        payload_len: usize,
    },
    /// A PUBLISH we do not act on (outside `cmd/`, or a name too long); still acknowledged.
    Other {
        pkid: u16,
    },
}

/// The receive side: a byte buffer with framing and oversize skipping.
struct Rx {
    buf: [u8; RX_BUF],
    len: usize,
    /// Bytes of an oversized packet still to discard.
    skip: usize,
}

/// The device core. About 10 KiB (`RAM_BUDGET`); keep it in a `static` on the chip.
pub struct Device {
    settings: Settings,
    state: State,
    config: [u8; CONFIG_BUF],
    /// `devices/<id>/`, filled by `LoadConfig`.
    prefix: FmtBuf<TOPIC_BUF>,
    telemetry_period_ms: u64,
    rx: Rx,
    /// Encoded packets waiting for the transport to take them.
    tx: TxQueue<TX_BUF>,
    /// When the transport last took bytes (or the queue was last empty).
    tx_progress: u64,
    inflight: [Inflight; MAX_INFLIGHT],
    next_pkid: u16,
    last_tx: u64,
    ping_sent: Option<u64>,
    next_telemetry: u64,
    telemetry_seq: u32,
    reboot_at: Option<u64>,
    backoff: Backoff,
    time: TimeFloor,
    persisted_time: Option<u64>,
    stats: Stats,
}

/// PUBACK's length: the room `online` keeps in the transmit queue before it reads a packet.
const PUBACK_LEN: usize = 4;
/// Writes an orderly shutdown tries (without blocking) to get `offline` and DISCONNECT out.
const SHUTDOWN_WRITES: usize = 16;

fn io_failure<E>(_: E) -> Failure {
    Failure::Closed
}

impl Device {
    pub fn new(settings: Settings) -> Self {
        Device {
            settings,
            state: State::Boot,
            config: [0xFF; CONFIG_BUF],
            prefix: FmtBuf::new(),
            telemetry_period_ms: 0,
            rx: Rx {
                buf: [0; RX_BUF],
                len: 0,
                skip: 0,
            },
            tx: TxQueue::new(),
            tx_progress: 0,
            inflight: [FREE; MAX_INFLIGHT],
            next_pkid: 1,
            last_tx: 0,
            ping_sent: None,
            next_telemetry: 0,
            telemetry_seq: 0,
            reboot_at: None,
            backoff: Backoff::new(settings.backoff),
            time: TimeFloor::new(settings.build_time_unix, None, 0),
            persisted_time: None,
            stats: Stats::default(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The time floor certificates are validated against, at `now`.
    pub fn time_floor(&self, now: u64) -> u64 {
        self.time.at(now)
    }

    /// The config as loaded (only after `LoadConfig` succeeded).
    pub fn config(&self) -> Option<DeviceConfig<'_>> {
        match self.state {
            State::Boot | State::LoadConfig | State::ConfigInvalid(_) => None,
            _ => DeviceConfig::parse(&self.config).ok(),
        }
    }

    /// The one place the state changes.
    fn go<B: Board>(&mut self, board: &mut B, now: u64, new: State) {
        let old = self.state;
        board.transition(now, &old, &new);
        self.state = new;
    }

    /// A connected step failed: drop the connection and wait.
    fn fail<B: Board>(&mut self, board: &mut B, now: u64, cause: Failure) {
        board.transport().close();
        self.rx.len = 0;
        self.rx.skip = 0;
        self.tx.clear();
        self.ping_sent = None;
        let delay = self.backoff.next_delay_ms(board.random_u32());
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
        match self.state {
            State::Boot => {
                let mut rec = [0u8; clock::record::LEN];
                self.persisted_time = match board.flash().read(self.settings.state_offset, &mut rec)
                {
                    Ok(()) => clock::parse_record(&rec),
                    Err(_) => None,
                };
                self.time = TimeFloor::new(self.settings.build_time_unix, self.persisted_time, now);
                self.go(board, now, State::LoadConfig);
                now
            }
            State::LoadConfig => {
                self.load_config(board, now);
                now
            }
            State::ConfigInvalid(_) => now + 1_000,
            State::NetworkUp { deadline } => {
                let status = match DeviceConfig::parse(&self.config) {
                    Ok(cfg) => board.network(cfg.wifi_ssid, cfg.wifi_password),
                    Err(e) => {
                        self.go(board, now, State::ConfigInvalid(e));
                        return now;
                    }
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
                    self.time.sync(source, now);
                    self.persist_time(board, now);
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
            State::MqttConnect { deadline } | State::Subscribe { deadline } => {
                if let Err(f) = self.pump(board, now) {
                    self.fail(board, now, f);
                    return now;
                }
                self.await_ack(board, now, deadline)
            }
            State::Online => match self.online(board, now) {
                Ok(next) => next,
                Err(f) => {
                    self.fail(board, now, f);
                    now
                }
            },
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
            .read(self.settings.config_offset, &mut self.config);
        let parsed = match read {
            Ok(()) => {
                DeviceConfig::parse(&self.config).map(|c| (c.device_id.len(), c.telemetry_period_s))
            }
            Err(_) => Err(ConfigError::Truncated {
                need: CONFIG_BUF,
                have: 0,
            }),
        };
        match parsed {
            Ok((_, period_s)) => {
                self.prefix.clear();
                let id = DeviceConfig::parse(&self.config)
                    .map(|c| c.device_id)
                    .unwrap_or("");
                // Cannot overflow: ids are at most 63 bytes (checked by parse).
                let _ = write!(self.prefix, "devices/{id}/");
                self.telemetry_period_ms = u64::from(period_s) * 1000;
                board.log(format_args!("config: device {id}"));
                let deadline = now + self.settings.network_timeout_ms;
                self.go(board, now, State::NetworkUp { deadline });
            }
            Err(e) => {
                board.log(format_args!("config error: {e}"));
                self.go(board, now, State::ConfigInvalid(e));
            }
        }
    }

    /// Persists the floor if it moved far enough since the last record (flash wear).
    fn persist_time<B: Board>(&mut self, board: &mut B, now: u64) {
        use embedded_storage::nor_flash::NorFlash;
        let t = self.time.at(now);
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

    fn topic<'t>(&self, out: &'t mut FmtBuf<TOPIC_BUF>, suffix: &str) -> Result<&'t str, Failure> {
        out.clear();
        write!(out, "{}{suffix}", self.prefix.as_str())
            .map_err(|_| Failure::Encode(EncodeError::BadTopic))?;
        Ok(out.as_str())
    }

    /// Offers the transmit queue to the transport. Fails when it took nothing of a waiting
    /// packet for `ping_timeout_ms` (a peer that stopped reading).
    fn pump<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        if self.tx.is_empty() {
            self.tx_progress = now;
            return Ok(());
        }
        let n = self
            .tx
            .write_to(board.transport())
            .map_err(|_| Failure::Closed)?;
        if n > 0 || self.tx.is_empty() {
            self.tx_progress = now;
        } else if now >= self.tx_progress + self.settings.ping_timeout_ms {
            return Err(Failure::SendStalled);
        }
        Ok(())
    }

    /// Queues one packet (encoded by `emit`) and offers it to the transport. `Ok(false)`: no
    /// room in the queue now.
    fn send<B: Board>(
        &mut self,
        board: &mut B,
        now: u64,
        emit: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> Result<bool, Failure> {
        if self.tx.is_empty() {
            self.tx_progress = now;
        }
        if !self.tx.push_with(emit).map_err(Failure::Encode)? {
            return Ok(false);
        }
        self.last_tx = now;
        self.pump(board, now)?;
        Ok(true)
    }

    /// A packet the protocol cannot go on without (CONNECT, SUBSCRIBE): no room is a failure.
    fn send_now<B: Board>(
        &mut self,
        board: &mut B,
        now: u64,
        emit: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> Result<(), Failure> {
        match self.send(board, now, emit)? {
            true => Ok(()),
            false => Err(Failure::SendStalled),
        }
    }

    /// The server and TLS material from the config, with the floor at `now`.
    fn endpoint(&self, now: u64) -> Result<(Server<'_>, TlsMaterial<'_>), Failure> {
        let cfg = DeviceConfig::parse(&self.config).map_err(|_| Failure::NetworkFailed)?;
        let tls = TlsMaterial {
            ca_der: cfg.ca_cert_der,
            client_cert_der: cfg.client_cert_der,
            client_key_der: cfg.client_key_der,
            broker_pin: cfg.broker_pin,
            time_floor_unix: self.time.at(now),
        };
        let server = Server {
            host: cfg.broker_host,
            port: cfg.broker_port,
        };
        Ok((server, tls))
    }

    /// Starts TCP + TLS and enters `TlsConnect` with the connect deadline.
    fn start_connect<B: Board>(&mut self, board: &mut B, now: u64) {
        let started = self.endpoint(now).and_then(|(server, tls)| {
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

    /// Polls the handshake; once done, sends CONNECT with the retained Last Will and enters
    /// `MqttConnect`. `Ok(false)`: still in progress.
    fn poll_connect<B: Board>(&mut self, board: &mut B, now: u64) -> Result<bool, Failure> {
        let (server, tls) = self.endpoint(now)?;
        match board.transport().poll_connect(server, &tls) {
            Poll::Pending => return Ok(false),
            Poll::Ready(r) => r.map_err(Failure::Connect)?,
        }
        self.rx.len = 0;
        self.rx.skip = 0;
        self.tx.clear();
        let cfg = DeviceConfig::parse(&self.config).map_err(|_| Failure::NetworkFailed)?;
        let mut will_topic = FmtBuf::new();
        let will = Will {
            topic: self.topic(&mut will_topic, "status")?,
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
        };
        let connect = Connect {
            client_id: cfg.device_id,
            keep_alive_s: self.settings.keep_alive_s,
            clean_session: true,
            will: Some(will),
        };
        self.stats.connects += 1;
        if self.tx.is_empty() {
            self.tx_progress = now;
        }
        self.tx
            .push_with(|b| connect.emit(b))
            .map_err(Failure::Encode)?;
        self.last_tx = now;
        self.pump(board, now)?;
        let deadline = now + self.settings.connack_timeout_ms;
        self.go(board, now, State::MqttConnect { deadline });
        Ok(true)
    }

    /// `MqttConnect` and `Subscribe`: wait for the one ack that moves on.
    fn await_ack<B: Board>(&mut self, board: &mut B, now: u64, deadline: u64) -> u64 {
        loop {
            let packet = match self.receive(board) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(f) => {
                    self.fail(board, now, f);
                    return now;
                }
            };
            let step = match (self.state, packet) {
                (State::MqttConnect { .. }, Incoming::ConnAck { code: 0 }) => {
                    self.subscribe(board, now)
                }
                (State::MqttConnect { .. }, Incoming::ConnAck { code }) => {
                    Err(Failure::Refused(code))
                }
                (State::Subscribe { .. }, Incoming::SubAck { refused: true, .. }) => {
                    Err(Failure::SubscribeRefused)
                }
                (State::Subscribe { .. }, Incoming::SubAck { .. }) => self.enter_online(board, now),
                // A retained command can arrive right behind the SUBACK: serve it online.
                (State::Subscribe { .. }, Incoming::Command { .. } | Incoming::Other { .. }) => {
                    self.enter_online(board, now)
                        .and_then(|()| self.handle(board, now, packet))
                }
                (_, other) => {
                    board.log(format_args!("unexpected {other:?} while connecting"));
                    Err(Failure::UnexpectedPacket)
                }
            };
            if let Err(f) = step {
                self.fail(board, now, f);
                return now;
            }
            if matches!(self.state, State::Online) {
                return now;
            }
        }
        let (timeout, failure) = match self.state {
            State::MqttConnect { .. } => (deadline, Failure::ConnAckTimeout),
            _ => (deadline, Failure::SubAckTimeout),
        };
        if now >= timeout {
            self.fail(board, now, failure);
            return now;
        }
        timeout.min(now + self.settings.idle_poll_ms)
    }

    fn subscribe<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        let mut filter = FmtBuf::new();
        let filters = [(self.topic(&mut filter, "cmd/#")?, QoS::AtLeastOnce)];
        let pkid = self.alloc_pkid();
        let sub = Subscribe {
            pkid,
            filters: &filters,
        };
        self.send_now(board, now, |b| sub.emit(b))?;
        let deadline = now + self.settings.suback_timeout_ms;
        self.go(board, now, State::Subscribe { deadline });
        Ok(())
    }

    fn enter_online<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        self.go(board, now, State::Online);
        self.backoff.reset();
        self.ping_sent = None;
        self.next_telemetry = now;
        // Unacknowledged publishes from the last connection go out again (as DUP).
        for slot in self.inflight.iter_mut().filter(|s| s.pkid != 0) {
            if slot.send == Pending::Nothing {
                slot.send = Pending::Again;
            }
            slot.retries = 0;
        }
        self.publish(board, now, "status", b"online", true)?;
        Ok(())
    }

    /// Queues every in-flight publish that is due, in slot order, as far as the queue has room.
    fn send_inflight<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        for i in 0..MAX_INFLIGHT {
            let s = &mut self.inflight[i];
            if s.pkid == 0 || s.send == Pending::Nothing {
                continue;
            }
            if s.send == Pending::Again {
                Publish::set_dup(&mut s.buf[..s.len]);
            }
            if self.tx.is_empty() {
                self.tx_progress = now;
            }
            if !self.tx.push(&s.buf[..s.len]) {
                break;
            }
            if s.send == Pending::Again {
                self.stats.retransmits += 1;
            }
            s.send = Pending::Nothing;
            s.sent_at = now;
            self.last_tx = now;
        }
        self.pump(board, now)
    }

    fn alloc_pkid(&mut self) -> u16 {
        loop {
            let id = self.next_pkid;
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            if !self.inflight.iter().any(|s| s.pkid == id) {
                return id;
            }
        }
    }

    /// QoS 1 PUBLISH to `devices/<id>/<suffix>`, kept for retransmission. `Ok(false)` if every
    /// in-flight slot is busy (the caller decides whether that matters).
    fn publish<B: Board>(
        &mut self,
        board: &mut B,
        now: u64,
        suffix: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<bool, Failure> {
        let Some(slot) = self.inflight.iter().position(|s| s.pkid == 0) else {
            return Ok(false);
        };
        let pkid = self.alloc_pkid();
        let mut topic = FmtBuf::new();
        let topic = self.topic(&mut topic, suffix)?;
        let p = Publish {
            topic,
            payload,
            qos: QoS::AtLeastOnce,
            retain,
            dup: false,
            pkid,
        };
        let s = &mut self.inflight[slot];
        s.len = p.emit(&mut s.buf).map_err(Failure::Encode)?;
        s.pkid = pkid;
        s.sent_at = now;
        s.retries = 0;
        s.send = Pending::First;
        self.send_inflight(board, now)?;
        Ok(true)
    }

    /// Reads whatever the transport has and returns the next whole packet, if any.
    fn receive<B: Board>(&mut self, board: &mut B) -> Result<Option<Incoming>, Failure> {
        loop {
            if self.rx.skip == 0 {
                if let Some(p) = self.take_frame(board)? {
                    return Ok(Some(p));
                }
            }
            let t = board.transport();
            if !t.read_ready().map_err(io_failure)? {
                return Ok(None);
            }
            let rx = &mut self.rx;
            if rx.skip > 0 {
                let mut scratch = [0u8; 64];
                let want = rx.skip.min(scratch.len());
                let n = match t.read(&mut scratch[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == embedded_io::ErrorKind::Interrupted => return Ok(None),
                    Err(_) => return Err(Failure::Closed),
                };
                if n == 0 {
                    return Err(Failure::Closed);
                }
                rx.skip -= n;
                continue;
            }
            let n = match t.read(&mut rx.buf[rx.len..]) {
                Ok(n) => n,
                Err(e) if e.kind() == embedded_io::ErrorKind::Interrupted => return Ok(None),
                Err(_) => return Err(Failure::Closed),
            };
            if n == 0 {
                return Err(Failure::Closed);
            }
            rx.len += n;
        }
    }

    /// Cuts one packet off the front of the receive buffer.
    fn take_frame<B: Board>(&mut self, board: &mut B) -> Result<Option<Incoming>, Failure> {
        let rx = &mut self.rx;
        let Some((_, total)) = mqtt::frame_len(&rx.buf[..rx.len]).map_err(Failure::Protocol)?
        else {
            return Ok(None);
        };
        if total > RX_BUF {
            // Too big to ever hold: drop it and carry on, rather than lose the connection to
            // one oversized (possibly retained) message.
            board.log(format_args!(
                "{}",
                DecodeError::TooLarge {
                    len: total,
                    max: RX_BUF
                }
            ));
            self.stats.oversized += 1;
            rx.skip = total - rx.len;
            rx.len = 0;
            return Ok(None);
        }
        if rx.len < total {
            return Ok(None);
        }
        let incoming = match Packet::parse(&rx.buf[..total]).map_err(Failure::Protocol)? {
            Packet::ConnAck { code, .. } => Incoming::ConnAck { code },
            Packet::PubAck { pkid } => Incoming::PubAck { pkid },
            Packet::SubAck { pkid, codes, count } => {
                let _ = pkid; // one SUBSCRIBE in flight at a time
                Incoming::SubAck {
                    refused: codes[..count].contains(&mqtt::consts::SUBACK_FAILURE),
                }
            }
            Packet::PingResp => Incoming::PingResp,
            Packet::Publish(p) => {
                let cmd = p
                    .topic
                    .strip_prefix(self.prefix.as_str())
                    .and_then(|t| t.strip_prefix("cmd/"));
                match cmd {
                    // A payload too long to keep still gets a reply (an error) by name.
                    Some(name) if name.len() <= CMD_NAME_BUF => {
                        let kept = p.payload.len().min(CMD_PAYLOAD_BUF);
                        let mut c = Incoming::Command {
                            pkid: p.pkid,
                            name: [0; CMD_NAME_BUF],
                            name_len: name.len(),
                            payload: [0; CMD_PAYLOAD_BUF],
                            payload_len: p.payload.len(),
                        };
                        if let Incoming::Command {
                            name: n,
                            payload: pl,
                            ..
                        } = &mut c
                        {
                            n[..name.len()].copy_from_slice(name.as_bytes());
                            pl[..kept].copy_from_slice(&p.payload[..kept]);
                        }
                        c
                    }
                    _ => Incoming::Other { pkid: p.pkid },
                }
            }
        };
        rx.buf.copy_within(total..rx.len, 0);
        rx.len -= total;
        Ok(Some(incoming))
    }

    /// One poll while online.
    fn online<B: Board>(&mut self, board: &mut B, now: u64) -> Result<u64, Failure> {
        self.pump(board, now)?;
        // Bounded: a flood of packets cannot starve the timers below. A packet is taken only
        // while its acknowledgement fits the transmit queue (back-pressure to the broker).
        for _ in 0..8 {
            if self.tx.free() < PUBACK_LEN {
                break;
            }
            match self.receive(board)? {
                Some(packet) => self.handle(board, now, packet)?,
                None => break,
            }
        }
        if let Some(at) = self.reboot_at {
            let replied = self.inflight.iter().all(|s| s.pkid == 0);
            if replied || now >= at {
                self.reboot(board, now)?;
                return Ok(now);
            }
        }
        if now >= self.next_telemetry {
            self.telemetry(board, now)?;
            self.next_telemetry = now + self.telemetry_period_ms;
            // The floor keeps moving while the device runs: persist it (at most hourly), so a
            // reboot without a time source starts from recent time, not from the last sync.
            self.persist_time(board, now);
        }
        for s in self.inflight.iter_mut() {
            if s.pkid == 0
                || s.send != Pending::Nothing
                || now < s.sent_at + self.settings.ack_timeout_ms
            {
                continue;
            }
            if s.retries >= self.settings.max_retransmits {
                return Err(Failure::AckTimeout);
            }
            s.retries += 1;
            s.send = Pending::Again;
        }
        self.send_inflight(board, now)?;
        match self.ping_sent {
            Some(at) if now >= at + self.settings.ping_timeout_ms => {
                return Err(Failure::PingTimeout)
            }
            Some(_) => {}
            None => {
                let idle = now >= self.last_tx + u64::from(self.settings.keep_alive_s) * 1000;
                if idle && self.send(board, now, mqtt::emit_pingreq)? {
                    self.ping_sent = Some(now);
                }
            }
        }
        Ok(self.next_telemetry.min(now + self.settings.idle_poll_ms))
    }

    fn handle<B: Board>(
        &mut self,
        board: &mut B,
        now: u64,
        packet: Incoming,
    ) -> Result<(), Failure> {
        match packet {
            Incoming::PubAck { pkid } => {
                for s in self.inflight.iter_mut().filter(|s| s.pkid == pkid) {
                    s.pkid = 0;
                }
            }
            Incoming::PingResp => self.ping_sent = None,
            Incoming::Other { pkid } => self.ack(board, now, pkid)?,
            Incoming::Command {
                pkid,
                name,
                name_len,
                payload,
                payload_len,
            } => {
                self.ack(board, now, pkid)?;
                self.stats.commands += 1;
                let name = core::str::from_utf8(&name[..name_len]).unwrap_or("?");
                let kept = payload_len.min(CMD_PAYLOAD_BUF);
                self.command(board, now, name, &payload[..kept], payload_len)?;
            }
            other => board.log(format_args!("ignoring {other:?} while online")),
        }
        Ok(())
    }

    fn ack<B: Board>(&mut self, board: &mut B, now: u64, pkid: u16) -> Result<(), Failure> {
        if pkid != 0 {
            // `online` reads a packet only while the queue has room for this.
            self.send_now(board, now, |b| mqtt::emit_puback(pkid, b))?;
        }
        Ok(())
    }

    /// Runs a command and publishes its reply on `reply/<name>`.
    fn command<B: Board>(
        &mut self,
        board: &mut B,
        now: u64,
        name: &str,
        payload: &[u8],
        payload_len: usize,
    ) -> Result<(), Failure> {
        let mut reply = FmtBuf::<PAYLOAD_BUF>::new();
        let _ = reply.write_str("{");
        if let Some(req) = command::request_id(payload) {
            let _ = write!(reply, "\"req\":\"{req}\",");
        }
        let parsed = if payload_len > payload.len() {
            Err(command::CommandError::TooLong {
                len: payload_len,
                max: CMD_PAYLOAD_BUF,
            })
        } else {
            command::parse(name, payload)
        };
        let result: Result<(), AvrError> = match parsed {
            Ok(Command::SetPin { pin, high }) => board.avr().set_pin(pin, high).map(|()| {
                let _ = write!(
                    reply,
                    "\"ok\":true,\"pin\":{pin},\"level\":{}",
                    u8::from(high)
                );
            }),
            Ok(Command::ReadAdc { channel }) => board.avr().read_adc(channel).map(|v| {
                let _ = write!(reply, "\"ok\":true,\"channel\":{channel},\"value\":{v}");
            }),
            Ok(Command::Reboot) => {
                let _ = write!(reply, "\"ok\":true,\"rebooting\":true");
                self.reboot_at = Some(now + self.settings.reboot_grace_ms);
                Ok(())
            }
            Err(e) => {
                let mut msg = FmtBuf::<96>::new();
                let _ = write!(msg, "{e}");
                let _ = write!(reply, "\"ok\":false,\"error\":{}", Json(msg.as_str()));
                Ok(())
            }
        };
        if let Err(e) = result {
            let mut msg = FmtBuf::<96>::new();
            let _ = write!(msg, "{e}");
            let _ = write!(reply, "\"ok\":false,\"error\":{}", Json(msg.as_str()));
        }
        let _ = reply.write_str("}");
        board.log(format_args!("cmd/{name} -> {}", reply.as_str()));
        let mut suffix = FmtBuf::<{ 6 + CMD_NAME_BUF }>::new();
        let _ = write!(suffix, "reply/{name}");
        if !self.publish(board, now, suffix.as_str(), reply.as_bytes(), false)? {
            board.log(format_args!(
                "reply to cmd/{name} dropped: every in-flight slot is busy"
            ));
        }
        Ok(())
    }

    /// Publishes one telemetry sample: port levels and ADC channels from the AVR.
    fn telemetry<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        self.telemetry_seq += 1;
        let mut out = FmtBuf::<PAYLOAD_BUF>::new();
        let _ = write!(
            out,
            "{{\"seq\":{},\"uptime_s\":{}",
            self.telemetry_seq,
            now / 1000
        );
        let mark = out.len();
        let sample = (|| -> Result<(), AvrError> {
            let [b, c, d] = board.avr().read_ports()?;
            let _ = write!(
                out,
                ",\"ports\":{{\"b\":{b},\"c\":{c},\"d\":{d}}},\"adc\":["
            );
            for ch in 0..self.settings.adc_channels {
                let v = board.avr().read_adc(ch)?;
                let _ = write!(out, "{}{v}", if ch == 0 { "" } else { "," });
            }
            let _ = out.write_str("]");
            Ok(())
        })();
        if let Err(e) = sample {
            // An error halfway (say the third ADC channel) would leave `"adc":[1,2` open.
            out.truncate(mark);
            let mut msg = FmtBuf::<96>::new();
            let _ = write!(msg, "{e}");
            let _ = write!(out, ",\"avr_error\":{}", Json(msg.as_str()));
        }
        let s = self.stats;
        let _ = write!(
            out,
            ",\"dropped\":{},\"retransmits\":{}}}",
            s.telemetry_dropped, s.retransmits
        );
        if self.publish(board, now, "telemetry", out.as_bytes(), false)? {
            self.stats.telemetry_sent += 1;
        } else {
            self.stats.telemetry_dropped += 1;
        }
        Ok(())
    }

    /// Reboot command: say goodbye, then reset. On the host the board returns and the core
    /// starts again from `Boot`.
    fn reboot<B: Board>(&mut self, board: &mut B, now: u64) -> Result<(), Failure> {
        self.shutdown(board, now);
        board.log(format_args!("rebooting on command"));
        board.reset();
        self.go(board, now, State::Boot);
        let settings = self.settings;
        *self = Device::new(settings);
        Ok(())
    }

    /// Orderly stop (reboot command, Ctrl-C on the host): if connected, publish the retained
    /// "offline" ourselves (a clean DISCONNECT suppresses the Will), send DISCONNECT, close.
    pub fn shutdown<B: Board>(&mut self, board: &mut B, now: u64) {
        if matches!(self.state, State::Online | State::Subscribe { .. }) {
            let mut topic = FmtBuf::new();
            if let Ok(topic) = self.topic(&mut topic, "status") {
                let p = Publish {
                    topic,
                    payload: b"offline",
                    qos: QoS::AtMostOnce,
                    retain: true,
                    dup: false,
                    pkid: 0,
                };
                let _ = self.send(board, now, |b| p.emit(b));
            }
        }
        if matches!(
            self.state,
            State::Online | State::Subscribe { .. } | State::MqttConnect { .. }
        ) {
            let _ = self.send(board, now, mqtt::emit_disconnect);
            // Best effort without blocking: whatever the transport takes right now.
            for _ in 0..SHUTDOWN_WRITES {
                if self.tx.is_empty() || self.tx.write_to(board.transport()).is_err() {
                    break;
                }
            }
        }
        board.transport().close();
    }
}
