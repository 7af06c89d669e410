//! The state machine on virtual time with a fake board, compared with expected transcripts. The
//! fake broker speaks MQTT through rumqttc's codec (an independent implementation), so every byte
//! the core sends is parsed by someone else's code.

use core::task::Poll;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use crate::ota::sim::SimFlash;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4 as r;
use rumqttc::mqttbytes::QoS as RQoS;
use wire_format::device_config::{Brokers, DeviceConfig, Endpoint};

use crate::board::*;
use crate::machine::{Device, Failure, State, StateKind, StateKind::*};
use crate::settings::{Settings, RAM_BUDGET};

const BUILD_TIME: u64 = 1_760_000_000;
const SOURCE_TIME: u64 = 1_770_000_000;
const ID: &str = "kitchen-sensor-1";

#[derive(Default)]
struct FakeAvr {
    ports: [u8; 3],
    adc: [u16; 8],
    silent: bool,
}

impl AvrLink for FakeAvr {
    fn set_pin(&mut self, pin: u8, high: bool) -> Result<(), AvrError> {
        if self.silent {
            return Err(AvrError::NoResponse);
        }
        let (port, bit) = (pin as usize / 8, pin % 8);
        let p = self.ports.get_mut(port).ok_or(AvrError::Refused(2))?;
        if high {
            *p |= 1 << bit;
        } else {
            *p &= !(1 << bit);
        }
        Ok(())
    }
    fn read_ports(&mut self) -> Result<[u8; 3], AvrError> {
        if self.silent {
            return Err(AvrError::NoResponse);
        }
        Ok(self.ports)
    }
    fn read_adc(&mut self, channel: u8) -> Result<u16, AvrError> {
        self.adc
            .get(channel as usize)
            .copied()
            .ok_or(AvrError::Refused(3))
    }
}

/// What the fake broker does.
struct BrokerScript {
    up: bool,
    tls: Result<(), ConnectError>,
    connack_code: u8,
    answer_puback: bool,
    answer_ping: bool,
    /// Send a PUBACK before the CONNACK (a broken broker).
    puback_before_connack: bool,
    /// `poll_connect` answers `Pending` this many times before the handshake result.
    handshake_polls: u32,
    /// The handshake never completes (a peer that accepts TCP and then dribbles).
    handshake_hangs: bool,
    /// The transport takes at most this many bytes per write (TCP window, TLS record space).
    write_chunk: usize,
    /// `write_ready` says "would block".
    write_blocked: bool,
    /// Close the connection right after sending SUBACK (a broker that breaks every session).
    break_after_suback: bool,
    /// The broker certificate's validity: a handshake at a time floor outside it fails as
    /// the board's TLS would (expired or not yet valid).
    cert_valid: (u64, u64),
    /// Broker endpoints (hosts) that are down: TCP refused.
    dead: Vec<&'static str>,
    /// Broker endpoints (hosts) that answer CONNECT with "not authorized".
    refusing: Vec<&'static str>,
}

/// The broker side of the connection, speaking through rumqttc's codec.
#[derive(Default)]
struct Conn {
    /// `poll_connect` calls left before the handshake ends.
    handshake_left: u32,
    established: bool,
    to_device: Vec<u8>,
    from_device: BytesMut,
    closed_by_broker: bool,
}

struct FakeNet {
    script: BrokerScript,
    conn: Option<Conn>,
    /// Every packet the device sent, in order, across connections.
    received: Vec<r::Packet>,
    /// Retained messages, as the broker would hold them.
    retained: Vec<(String, Vec<u8>)>,
    connects: Vec<TlsSeen>,
}

#[derive(Debug, Clone, PartialEq)]
struct TlsSeen {
    host: String,
    port: u16,
    time_floor: u64,
}

impl embedded_io::ErrorType for FakeNet {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for FakeNet {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let c = self
            .conn
            .as_mut()
            .ok_or(embedded_io::ErrorKind::NotConnected)?;
        let n = buf.len().min(c.to_device.len());
        buf[..n].copy_from_slice(&c.to_device[..n]);
        c.to_device.drain(..n);
        Ok(n) // 0 after the broker closed: EOF
    }
}

impl embedded_io::ReadReady for FakeNet {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        let c = self
            .conn
            .as_ref()
            .ok_or(embedded_io::ErrorKind::NotConnected)?;
        Ok(!c.to_device.is_empty() || c.closed_by_broker)
    }
}

impl embedded_io::WriteReady for FakeNet {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        self.conn
            .as_ref()
            .filter(|c| c.established)
            .ok_or(embedded_io::ErrorKind::NotConnected)?;
        Ok(!self.script.write_blocked)
    }
}

impl embedded_io::Write for FakeNet {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        assert!(
            !self.script.write_blocked,
            "write after write_ready said no"
        );
        let chunk = self.script.write_chunk;
        let c = self
            .conn
            .as_mut()
            .filter(|c| c.established)
            .ok_or(embedded_io::ErrorKind::NotConnected)?;
        if c.closed_by_broker {
            return Err(embedded_io::ErrorKind::BrokenPipe);
        }
        let n = buf.len().min(chunk);
        c.from_device.extend_from_slice(&buf[..n]);
        self.serve();
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Transport for FakeNet {
    fn connect_start(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Result<(), ConnectError> {
        self.close();
        self.connects.push(TlsSeen {
            host: server.host.to_string(),
            port: server.port,
            time_floor: tls.time_floor_unix,
        });
        self.conn = Some(Conn {
            handshake_left: self.script.handshake_polls,
            ..Conn::default()
        });
        Ok(())
    }
    fn poll_connect(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Poll<Result<(), ConnectError>> {
        let seen = self
            .connects
            .last()
            .expect("poll_connect before connect_start")
            .clone();
        assert_eq!((seen.host.as_str(), seen.port), (server.host, server.port));
        assert_eq!(
            tls.time_floor_unix, seen.time_floor,
            "the same material every poll"
        );
        let c = self.conn.as_mut().expect("poll_connect after close");
        assert!(!c.established, "poll_connect after the handshake");
        if self.script.handshake_hangs {
            return Poll::Pending;
        }
        if c.handshake_left > 0 {
            c.handshake_left -= 1;
            return Poll::Pending;
        }
        let (from, until) = self.script.cert_valid;
        let r = if !self.script.up || self.script.dead.contains(&server.host) {
            Err(ConnectError::Tcp)
        } else if !(from..=until).contains(&seen.time_floor) {
            Err(ConnectError::ServerCertificate)
        } else {
            self.script.tls
        };
        match r {
            Ok(()) => c.established = true,
            Err(_) => self.conn = None,
        }
        Poll::Ready(r)
    }
    fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            if c.established && !c.closed_by_broker {
                self.fire_will();
            }
        }
    }
}

impl FakeNet {
    fn send(&mut self, p: r::Packet) {
        let c = self.conn.as_mut().unwrap();
        let mut b = BytesMut::new();
        p.write(&mut b, 1 << 20).unwrap();
        c.to_device.extend_from_slice(&b);
    }

    /// Parses and answers whole packets from the device.
    fn serve(&mut self) {
        loop {
            let c = self.conn.as_mut().unwrap();
            let p = match r::Packet::read(&mut c.from_device, 1 << 20) {
                Ok(p) => p,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => return,
                Err(e) => panic!("device sent bytes rumqttc refuses: {e:?}"),
            };
            self.received.push(p.clone());
            match p {
                r::Packet::Connect(_) => {
                    if self.script.puback_before_connack {
                        self.send(r::Packet::PubAck(r::PubAck::new(1)));
                    }
                    let host = self.connects.last().map(|c| c.host.as_str());
                    let refusing = self.script.refusing.iter().any(|h| Some(*h) == host);
                    let code = match self.script.connack_code {
                        0 if !refusing => r::ConnectReturnCode::Success,
                        _ => r::ConnectReturnCode::NotAuthorized,
                    };
                    self.send(r::Packet::ConnAck(r::ConnAck::new(code, false)));
                }
                r::Packet::Subscribe(s) => {
                    let codes = s
                        .filters
                        .iter()
                        .map(|f| r::SubscribeReasonCode::Success(f.qos))
                        .collect();
                    self.send(r::Packet::SubAck(r::SubAck::new(s.pkid, codes)));
                    // Retained messages matching the filter follow, with RETAIN set.
                    for f in &s.filters {
                        let prefix = f.path.trim_end_matches('#');
                        let matching: Vec<_> = self
                            .retained
                            .iter()
                            .filter(|(t, _)| t.starts_with(prefix))
                            .cloned()
                            .collect();
                        for (topic, payload) in matching {
                            let mut p = r::Publish::new(topic, RQoS::AtLeastOnce, payload);
                            p.retain = true;
                            p.pkid = 88;
                            self.send(r::Packet::Publish(p));
                        }
                    }
                    if self.script.break_after_suback {
                        self.conn.as_mut().unwrap().closed_by_broker = true;
                        self.fire_will();
                    }
                }
                r::Packet::Publish(p) => {
                    if p.retain {
                        self.retained.retain(|(t, _)| *t != p.topic);
                        self.retained.push((p.topic.clone(), p.payload.to_vec()));
                    }
                    if p.qos == RQoS::AtLeastOnce && self.script.answer_puback {
                        self.send(r::Packet::PubAck(r::PubAck::new(p.pkid)));
                    }
                }
                r::Packet::PingReq if self.script.answer_ping => self.send(r::Packet::PingResp),
                r::Packet::Disconnect => {
                    // Clean disconnect: no Will.
                    self.conn.as_mut().unwrap().closed_by_broker = true;
                }
                _ => {}
            }
        }
    }

    fn fire_will(&mut self) {
        let will = self.received.iter().rev().find_map(|p| match p {
            r::Packet::Connect(c) => c.last_will.clone(),
            _ => None,
        });
        if let Some(w) = will {
            self.retained.retain(|(t, _)| *t != w.topic);
            self.retained.push((w.topic, w.message.to_vec()));
        }
    }

    /// The broker process dies: the connection drops, and the Will fires.
    fn crash(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            c.closed_by_broker = true;
        }
        self.fire_will();
        self.script.up = false;
    }

    /// One node of a cluster dies: its session drops (the Will fires) and it refuses TCP.
    fn crash_node(&mut self, host: &'static str) {
        let on_it = self.connects.last().is_some_and(|c| c.host == host);
        if let Some(c) = self.conn.as_mut().filter(|_| on_it) {
            c.closed_by_broker = true;
            self.fire_will();
        }
        self.script.dead.push(host);
    }

    /// The hosts of every connection attempt, in order.
    fn hosts(&self) -> Vec<&str> {
        self.connects.iter().map(|c| c.host.as_str()).collect()
    }

    fn retained(&self, topic: &str) -> Option<&[u8]> {
        self.retained
            .iter()
            .find(|(t, _)| t == topic)
            .map(|(_, m)| &m[..])
    }

    fn publishes(&self, suffix: &str) -> Vec<r::Publish> {
        let topic = format!("devices/{ID}/{suffix}");
        self.received
            .iter()
            .filter_map(|p| match p {
                r::Packet::Publish(p) if p.topic == topic => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// The broker hands the device a message on `topic` (QoS 1).
    fn deliver(&mut self, topic: &str, payload: &[u8], retain: bool) {
        let mut p = r::Publish::new(topic, RQoS::AtLeastOnce, payload.to_vec());
        p.retain = retain;
        p.pkid = 66;
        self.send(r::Packet::Publish(p));
    }

    fn command(&mut self, name: &str, payload: &str) {
        let mut p = r::Publish::new(
            format!("devices/{ID}/cmd/{name}"),
            RQoS::AtLeastOnce,
            payload,
        );
        p.pkid = 77;
        self.send(r::Packet::Publish(p));
    }
}

struct FakeBoard {
    net: FakeNet,
    flash: SimFlash,
    avr: FakeAvr,
    rng: u32,
    network: NetStatus,
    time_source: Option<u64>,
    watchdog_feeds: u64,
    resets: u32,
    transcript: Vec<StateKind>,
    causes: Vec<Failure>,
    backoff_delays: Vec<u64>,
    log: Vec<String>,
    /// The OTA layout in `flash` (`None`: the board does not update over the air).
    ota: Option<&'static crate::ota::Layout>,
}

impl Board for FakeBoard {
    type Transport = FakeNet;
    type Flash = SimFlash;
    type Avr = FakeAvr;
    fn now_ms(&mut self) -> u64 {
        unreachable!("the test drives time")
    }
    fn transport(&mut self) -> &mut FakeNet {
        &mut self.net
    }
    fn flash(&mut self) -> &mut SimFlash {
        &mut self.flash
    }
    fn avr(&mut self) -> &mut FakeAvr {
        &mut self.avr
    }
    fn ota_layout(&self) -> Option<&'static crate::ota::Layout> {
        self.ota
    }
    fn random_u32(&mut self) -> u32 {
        self.rng = self.rng.wrapping_mul(1_103_515_245).wrapping_add(12345);
        self.rng >> 8
    }
    fn network(&mut self, ssid: &str, password: &str) -> NetStatus {
        assert_eq!((ssid, password), ("home", "secret-pass"));
        self.network
    }
    fn time_source(&mut self) -> Option<u64> {
        self.time_source
    }
    fn feed_watchdog(&mut self) {
        self.watchdog_feeds += 1;
    }
    fn reset(&mut self) {
        self.resets += 1;
    }
    fn log(&mut self, line: core::fmt::Arguments<'_>) {
        self.log.push(line.to_string());
    }
    fn transition(&mut self, now_ms: u64, from: &State, to: &State) {
        self.log(format_args!("[{now_ms} ms] {from} => {to}"));
        self.transcript.push(to.kind());
        if let State::Backoff { until, cause } = to {
            self.causes.push(*cause);
            self.backoff_delays.push(until - now_ms);
        }
    }
}

fn config_blob() -> Vec<u8> {
    config_blob_with(&[Endpoint {
        host: "broker.local",
        port: 8883,
    }])
}

fn config_blob_with(brokers: &[Endpoint<'_>]) -> Vec<u8> {
    config_blob_session(brokers, false)
}

fn config_blob_session(brokers: &[Endpoint<'_>], persistent_session: bool) -> Vec<u8> {
    let cfg = DeviceConfig {
        device_id: ID,
        wifi_ssid: "home",
        wifi_password: "secret-pass",
        brokers: Brokers::new(brokers).unwrap(),
        telemetry_period_s: 30,
        ca_cert_der: b"\x30\x03ca!",
        client_cert_der: b"\x30\x03crt",
        client_key_der: b"\x30\x03key",
        broker_pin: None,
        ota_keys: &[],
        persistent_session,
    };
    let mut buf = vec![0u8; 4096];
    let n = cfg.emit(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn board() -> FakeBoard {
    board_with(config_blob())
}

/// The three nodes of a cluster, as a config names them.
const NODES: [Endpoint<'static>; 3] = [
    Endpoint {
        host: "node-1.local",
        port: 8883,
    },
    Endpoint {
        host: "node-2.local",
        port: 8884,
    },
    Endpoint {
        host: "node-3.local",
        port: 8885,
    },
];

fn board_with(blob: Vec<u8>) -> FakeBoard {
    let mut flash = vec![0xFF; 8192];
    flash[..blob.len()].copy_from_slice(&blob);
    FakeBoard {
        net: FakeNet {
            script: BrokerScript {
                up: true,
                tls: Ok(()),
                connack_code: 0,
                answer_puback: true,
                answer_ping: true,
                puback_before_connack: false,
                handshake_polls: 2,
                handshake_hangs: false,
                write_chunk: usize::MAX,
                write_blocked: false,
                break_after_suback: false,
                cert_valid: (0, u64::MAX),
                dead: Vec::new(),
                refusing: Vec::new(),
            },
            conn: None,
            received: Vec::new(),
            retained: Vec::new(),
            connects: Vec::new(),
        },
        flash: SimFlash::with(flash),
        avr: FakeAvr {
            ports: [0b0000_0001, 0, 0b1000_0000],
            adc: [512, 1023, 0, 7, 0, 0, 0, 0],
            silent: false,
        },
        rng: 1,
        network: NetStatus::Up,
        time_source: Some(SOURCE_TIME),
        watchdog_feeds: 0,
        resets: 0,
        transcript: vec![Boot],
        causes: Vec::new(),
        backoff_delays: Vec::new(),
        log: Vec::new(),
        ota: None,
    }
}

/// A board with OTA slots after its config and state sectors (blank: no image installed yet).
fn ota_board() -> FakeBoard {
    let mut b = board();
    let layout: &'static crate::ota::Layout = std::boxed::Box::leak(std::boxed::Box::new(
        crate::ota::Layout::compact(8192, 4 * crate::ota::SECTOR),
    ));
    b.flash.mem.resize(layout.end() as usize, 0xFF);
    b.ota = Some(layout);
    b
}

fn settings() -> Settings {
    Settings {
        build_time_unix: BUILD_TIME,
        ..Settings::default()
    }
}

/// Drives the device on virtual time from `*now` to `until`, polling when it asks to be.
fn run(dev: &mut Device, b: &mut FakeBoard, now: &mut u64, until: u64) {
    let mut same = 0;
    while *now < until {
        let next = dev.poll(*now, b);
        if next <= *now {
            same += 1;
            assert!(
                same < 100,
                "the core asks to be polled again at once, forever: {:?}",
                dev.state()
            );
        } else {
            same = 0;
            *now = next.min(until);
        }
    }
}

const CONNECTING: [StateKind; 4] = [NetworkUp, TlsConnect, MqttConnect, Subscribe];

fn boot_to_online() -> Vec<StateKind> {
    vec![
        Boot,
        LoadConfig,
        NetworkUp,
        TimeSync,
        TlsConnect,
        MqttConnect,
        Subscribe,
        Online,
    ]
}

#[test]
fn happy_path() {
    let mut b = board();
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 95_000);
    assert_eq!(b.transcript, boot_to_online());

    let connect = match &b.net.received[0] {
        r::Packet::Connect(c) => c.clone(),
        other => panic!("first packet {other:?}"),
    };
    assert_eq!(
        (
            connect.client_id.as_str(),
            connect.keep_alive,
            connect.clean_session
        ),
        (ID, 60, true)
    );
    let will = connect.last_will.unwrap();
    assert_eq!(
        (will.topic.as_str(), &will.message[..], will.retain),
        ("devices/kitchen-sensor-1/status", &b"offline"[..], true)
    );
    // Without an OTA layout the update is off: the commands' filter is the whole subscription.
    let r::Packet::Subscribe(sub) = &b.net.received[1] else {
        panic!("{:?}", b.net.received[1]);
    };
    let filters: Vec<_> = sub.filters.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(filters, ["devices/kitchen-sensor-1/cmd/#"]);
    assert_eq!(
        b.net.retained("devices/kitchen-sensor-1/status"),
        Some(&b"online"[..])
    );

    // Telemetry at 0, 30 and 60 and 90 s, with the AVR's pins and ADC.
    let t = b.net.publishes("telemetry");
    assert_eq!(t.len(), 4);
    let first = std::str::from_utf8(&t[0].payload).unwrap();
    assert_eq!(
        first,
        r#"{"seq":1,"uptime_s":0,"ports":{"b":1,"c":0,"d":128},"adc":[512,1023,0,7],"dropped":0,"retransmits":0}"#
    );
    assert!(t
        .iter()
        .all(|p| p.qos == RQoS::AtLeastOnce && !p.retain && !p.dup));

    // The time came from the source, was used for TLS and persisted.
    assert_eq!(b.net.connects[0].time_floor, SOURCE_TIME);
    assert_eq!(
        (b.net.connects[0].host.as_str(), b.net.connects[0].port),
        ("broker.local", 8883)
    );
    assert_eq!(
        crate::clock::parse_record(&b.flash.mem[4096..]),
        Some(SOURCE_TIME)
    );
    assert!(b.watchdog_feeds > 1000);
    assert_eq!(dev.stats().telemetry_sent, 4);
    assert_eq!(dev.stats().telemetry_acked, 4);
}

#[test]
fn keepalive_pings_when_idle_and_a_silent_broker_is_dropped() {
    let mut b = board();
    let mut dev = Device::new(Settings {
        keep_alive_s: 10,
        ..settings()
    });
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 25_000);
    let pings = b
        .net
        .received
        .iter()
        .filter(|p| matches!(p, r::Packet::PingReq))
        .count();
    assert_eq!(pings, 2, "PINGREQ at 10 s and 20 s of silence");
    assert_eq!(b.transcript, boot_to_online());

    // Telemetry at 30 s is traffic; the next PINGREQ goes out at 40 s and is never answered.
    b.net.script.answer_ping = false;
    run(&mut dev, &mut b, &mut now, 52_000);
    assert_eq!(b.causes, [Failure::PingTimeout]);
    assert_eq!(
        &b.transcript[8..],
        &[
            Backoff,
            NetworkUp,
            TlsConnect,
            MqttConnect,
            Subscribe,
            Online
        ]
    );
}

#[test]
fn broker_down_at_boot() {
    let mut b = board();
    b.net.script.up = false;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 20_000);
    b.net.script.up = true;
    run(&mut dev, &mut b, &mut now, 90_000);

    let mut want = vec![Boot, LoadConfig, NetworkUp, TimeSync, TlsConnect, Backoff];
    let retries = b.causes.len();
    for _ in 1..retries {
        want.extend([NetworkUp, TlsConnect, Backoff]);
    }
    want.extend(CONNECTING);
    want.push(Online);
    assert_eq!(b.transcript, want);
    assert!(b
        .causes
        .iter()
        .all(|c| *c == Failure::Connect(ConnectError::Tcp)));
    // Ceilings 1, 2, 4, 8, 16 s with equal jitter: at least 4 and at most 5 failures fit in 20 s.
    assert!((4..=5).contains(&retries), "{:?}", b.backoff_delays);
    for (i, d) in b.backoff_delays.iter().enumerate() {
        let ceiling = 1000u64 << i;
        assert!((ceiling / 2..=ceiling).contains(d), "delay {i} = {d}");
    }
}

#[test]
fn tls_refused_backs_off_up_to_the_cap_and_never_sends_mqtt() {
    let mut b = board();
    b.net.script.tls = Err(ConnectError::ServerCertificate);
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 600_000);
    assert_eq!(
        &b.transcript[..6],
        &[Boot, LoadConfig, NetworkUp, TimeSync, TlsConnect, Backoff]
    );
    for w in b.transcript[6..].chunks(3) {
        assert_eq!(w, &[NetworkUp, TlsConnect, Backoff][..w.len()]);
    }
    assert!(b.net.received.is_empty(), "no MQTT byte without TLS");
    assert!(b
        .causes
        .iter()
        .all(|c| *c == Failure::Connect(ConnectError::ServerCertificate)));
    let last = *b.backoff_delays.last().unwrap();
    assert!((30_000..=60_000).contains(&last), "capped at 60 s: {last}");
    assert!(
        b.backoff_delays.len() < 20,
        "{} attempts in 10 minutes",
        b.backoff_delays.len()
    );
}

#[test]
fn broker_restart_while_online() {
    let mut b = board();
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 40_000);
    assert_eq!(b.transcript, boot_to_online());
    b.net.crash();
    assert_eq!(
        b.net.retained("devices/kitchen-sensor-1/status"),
        Some(&b"offline"[..])
    );
    run(&mut dev, &mut b, &mut now, 45_000);
    b.net.script.up = true;
    run(&mut dev, &mut b, &mut now, 120_000);

    let mut want = boot_to_online();
    want.push(Backoff);
    for _ in 1..b.causes.len() {
        want.extend([NetworkUp, TlsConnect, Backoff]);
    }
    want.extend(CONNECTING);
    want.push(Online);
    assert_eq!(b.transcript, want);
    assert_eq!(b.causes[0], Failure::Closed);
    assert_eq!(
        b.net.retained("devices/kitchen-sensor-1/status"),
        Some(&b"online"[..])
    );
    assert_eq!(dev.stats().connects, 2);
}

#[test]
fn time_source_missing() {
    let mut b = board();
    b.time_source = None;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 15_000);
    assert_eq!(b.transcript, boot_to_online());
    // Validated at build time + the 10 s spent waiting for the source.
    assert_eq!(b.net.connects[0].time_floor, BUILD_TIME + 10);
    assert!(b.log.iter().any(|l| l.contains("no time source")));
    // The floor (build time + uptime) is persisted once online, then again after an hour.
    let rec = || crate::clock::parse_record(&b.flash.mem[4096..]);
    assert_eq!(rec(), Some(BUILD_TIME + 10));
    run(&mut dev, &mut b, &mut now, 3_620_000);
    let later = crate::clock::parse_record(&b.flash.mem[4096..]).unwrap();
    assert!(
        (BUILD_TIME + 3_610..=BUILD_TIME + 3_620).contains(&later),
        "{later}"
    );

    // A later boot with a persisted time later than the build uses that instead.
    let mut b = board();
    b.time_source = None;
    b.flash.mem[4096..4112].copy_from_slice(&crate::clock::emit_record(SOURCE_TIME));
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 15_000);
    assert_eq!(b.net.connects[0].time_floor, SOURCE_TIME + 10);
}

#[test]
fn corrupt_config_halts_cleanly() {
    for damage in [
        |f: &mut Vec<u8>| f[40] ^= 0x01,
        |f: &mut Vec<u8>| f[..4096].fill(0xFF),
        |f: &mut Vec<u8>| f[6] = 20,
    ] {
        let mut b = board();
        damage(&mut b.flash.mem);
        let mut dev = Device::new(settings());
        let mut now = 0;
        run(&mut dev, &mut b, &mut now, 60_000);
        assert_eq!(b.transcript, [Boot, LoadConfig, ConfigInvalid]);
        assert!(b.net.connects.is_empty());
        assert!(b.watchdog_feeds >= 60, "still feeding the watchdog");
        assert!(b.log.iter().any(|l| l.contains("config")), "{:?}", b.log);
        assert!(dev.config().is_none());
    }
}

#[test]
fn commands_set_pins_read_adc_and_answer() {
    let mut b = board();
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 1_000);
    b.net.command("set-pin", "pin=9 level=1 req=r1");
    run(&mut dev, &mut b, &mut now, 1_100);
    assert_eq!(b.avr.ports[1], 0b10);
    b.net.command("read-adc", "channel=1");
    b.net.command("set-pin", "pin=9");
    b.net.command("fly", "");
    run(&mut dev, &mut b, &mut now, 1_200);
    let replies: Vec<(String, String)> = b
        .net
        .received
        .iter()
        .filter_map(|p| match p {
            r::Packet::Publish(p) if p.topic.contains("/reply/") => Some((
                p.topic.clone(),
                String::from_utf8(p.payload.to_vec()).unwrap(),
            )),
            _ => None,
        })
        .collect();
    let base = "devices/kitchen-sensor-1/reply";
    assert_eq!(
        replies,
        [
            (
                format!("{base}/set-pin"),
                r#"{"req":"r1","ok":true,"pin":9,"level":1}"#.to_string()
            ),
            (
                format!("{base}/read-adc"),
                r#"{"ok":true,"channel":1,"value":1023}"#.to_string()
            ),
            (
                format!("{base}/set-pin"),
                r#"{"ok":false,"error":"missing argument level="}"#.to_string()
            ),
            (
                format!("{base}/fly"),
                r#"{"ok":false,"error":"unknown command \"fly\""}"#.to_string()
            ),
        ]
    );
    // Every QoS 1 command was acknowledged.
    let acks = b
        .net
        .received
        .iter()
        .filter(|p| matches!(p, r::Packet::PubAck(a) if a.pkid == 77))
        .count();
    assert_eq!(acks, 4);
    assert_eq!(dev.stats().commands, 4);

    b.avr.silent = true;
    b.net.command("set-pin", "pin=9 level=0");
    run(&mut dev, &mut b, &mut now, 1_300);
    let last = b.net.publishes("reply/set-pin").pop().unwrap();
    assert_eq!(
        &last.payload[..],
        br#"{"ok":false,"error":"AVR did not answer"}"#
    );
}

#[test]
fn reboot_command_says_offline_and_boots_again() {
    let mut b = board();
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 1_000);
    b.net.command("reboot", "req=x");
    run(&mut dev, &mut b, &mut now, 1_100);
    assert_eq!(b.resets, 1);
    assert_eq!(
        b.net.publishes("reply/reboot")[0].payload,
        &br#"{"req":"x","ok":true,"rebooting":true}"#[..]
    );
    // Retained "offline" just before the clean DISCONNECT (which suppresses the Will), then
    // "online" again after the reboot.
    let status: Vec<(&[u8], bool)> = b
        .net
        .received
        .iter()
        .filter_map(|p| match p {
            r::Packet::Publish(p) if p.topic.ends_with("/status") => {
                Some((&p.payload[..], p.retain))
            }
            r::Packet::Disconnect => Some((&b"DISCONNECT"[..], false)),
            _ => None,
        })
        .collect();
    assert_eq!(
        status,
        [
            (&b"online"[..], true),
            (&b"offline"[..], true),
            (&b"DISCONNECT"[..], false),
            (&b"online"[..], true)
        ]
    );
    run(&mut dev, &mut b, &mut now, 2_000);
    let mut want = boot_to_online();
    want.extend(boot_to_online());
    assert_eq!(b.transcript, want);
    assert_eq!(
        b.net.retained("devices/kitchen-sensor-1/status"),
        Some(&b"online"[..])
    );
}

#[test]
fn unacknowledged_publishes_are_retransmitted_then_the_link_is_dropped() {
    let mut b = board();
    b.net.script.answer_puback = false;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 19_000);
    // status + first telemetry, each sent once and retransmitted at 5, 10, 15 s with DUP.
    let t = b.net.publishes("telemetry");
    assert_eq!(t.len(), 4);
    assert!(!t[0].dup && t[1..].iter().all(|p| p.dup && p.pkid == t[0].pkid));
    assert_eq!(dev.stats().retransmits, 6);
    run(&mut dev, &mut b, &mut now, 21_000);
    assert_eq!(b.causes, [Failure::AckTimeout]);

    // After reconnecting, the pending messages go out again and are acknowledged.
    b.net.script.answer_puback = true;
    run(&mut dev, &mut b, &mut now, 25_000);
    assert_eq!(*b.transcript.last().unwrap(), Online);
    let t = b.net.publishes("telemetry");
    assert!(
        t[4..].iter().any(|p| p.dup && p.pkid == t[0].pkid),
        "the unacknowledged sample again, as DUP"
    );
    assert!(dev.stats().retransmits >= 7);
}

#[test]
fn refused_connect_and_oversized_packets() {
    let mut b = board();
    b.net.script.connack_code = 5;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 1_000);
    assert!(!b.causes.is_empty() && b.causes.iter().all(|c| *c == Failure::Refused(5)));
    assert!(!b.transcript.contains(&Subscribe));
    b.net.script.connack_code = 0;
    b.net.script.puback_before_connack = true;
    let before = b.causes.len();
    run(&mut dev, &mut b, &mut now, 8_000);
    assert!(
        b.causes[before..].contains(&Failure::UnexpectedPacket),
        "{:?}",
        b.causes
    );
    b.net.script.puback_before_connack = false;
    run(&mut dev, &mut b, &mut now, 30_000);
    assert_eq!(*b.transcript.last().unwrap(), Online);

    // A 3000-byte command cannot fit the receive buffer: skipped with an error, link kept.
    let mut big = r::Publish::new(
        format!("devices/{ID}/cmd/set-pin"),
        RQoS::AtMostOnce,
        vec![b'x'; 3000],
    );
    big.pkid = 0;
    b.net.send(r::Packet::Publish(big));
    b.net.command("read-adc", "channel=0");
    let before = b.transcript.len();
    run(&mut dev, &mut b, &mut now, 30_200);
    assert_eq!(b.transcript.len(), before, "no reconnect");
    assert_eq!(dev.stats().oversized, 1);
    assert!(b
        .log
        .iter()
        .any(|l| l.contains("exceeds the 2048-byte receive buffer")));
    assert_eq!(b.net.publishes("reply/read-adc").len(), 1);

    // A command that fits the receive buffer but not the command buffer is refused by name.
    b.net.command("set-pin", &"x".repeat(200));
    run(&mut dev, &mut b, &mut now, 30_300);
    let last = b.net.publishes("reply/set-pin").pop().unwrap();
    assert_eq!(
        &last.payload[..],
        br#"{"ok":false,"error":"payload of 200 bytes exceeds the 128-byte command buffer"}"#
    );
}

#[test]
fn network_that_never_comes_up_times_out_and_retries() {
    let mut b = board();
    b.network = NetStatus::Pending;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 40_000);
    assert_eq!(
        b.transcript,
        [Boot, LoadConfig, NetworkUp, Backoff, NetworkUp]
    );
    assert_eq!(b.causes, [Failure::NetworkTimeout]);
    b.network = NetStatus::Up;
    run(&mut dev, &mut b, &mut now, 41_000);
    assert_eq!(*b.transcript.last().unwrap(), Online);
}

#[test]
fn an_avr_error_halfway_through_a_sample_still_sends_valid_json() {
    // Channel 8 does not exist: the fake refuses it after channels 0..=7 were read.
    let mut b = board();
    let mut dev = Device::new(Settings {
        adc_channels: 9,
        ..settings()
    });
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 1_000);
    let t = b.net.publishes("telemetry");
    assert_eq!(
        std::str::from_utf8(&t[0].payload).unwrap(),
        r#"{"seq":1,"uptime_s":0,"avr_error":"AVR refused the request: the request's length byte is wrong for its command","dropped":0,"retransmits":0}"#
    );
}

#[test]
fn ram_budget() {
    let size = core::mem::size_of::<Device>();
    std::println!("Device: {size} bytes");
    assert!(
        size <= RAM_BUDGET,
        "Device is {size} bytes, budget {RAM_BUDGET}"
    );
}

/// A board whose broker never finishes a TLS handshake, and a device that gives one 3 s.
fn hanging_handshake() -> (FakeBoard, Device) {
    let mut b = board();
    b.net.script.handshake_hangs = true;
    let dev = Device::new(Settings {
        connect_timeout_ms: 3_000,
        ..settings()
    });
    (b, dev)
}

#[test]
fn a_handshake_that_never_ends_is_cut_at_the_core_deadline() {
    let (mut b, mut dev) = hanging_handshake();
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 3_500);
    assert_eq!(
        b.transcript,
        [Boot, LoadConfig, NetworkUp, TimeSync, TlsConnect, Backoff]
    );
    assert_eq!(b.causes, [Failure::ConnectTimeout]);
    let entered = log_time(&b, "=> TlsConnect").unwrap();
    let failed = log_time(&b, "=> Backoff").unwrap();
    assert_eq!(failed - entered, 3_000, "{:?}", b.log);
    assert!(b.net.conn.is_none(), "the attempt was closed");
    // The handshake completes on a later attempt.
    b.net.script.handshake_hangs = false;
    run(&mut dev, &mut b, &mut now, 10_000);
    assert_eq!(*b.transcript.last().unwrap(), Online);
}

#[test]
fn a_transport_that_takes_a_few_bytes_at_a_time_still_gets_whole_packets() {
    let mut b = board();
    b.net.script.write_chunk = 7;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 1_000);
    b.net.command("read-adc", "channel=1");
    run(&mut dev, &mut b, &mut now, 61_000);
    assert_eq!(b.transcript, boot_to_online());
    // rumqttc parsed every packet: CONNECT, SUBSCRIBE, status, 3 samples, PUBACK, reply.
    assert_eq!(b.net.publishes("telemetry").len(), 3);
    assert_eq!(b.net.publishes("reply/read-adc").len(), 1);
    assert_eq!(dev.stats().retransmits, 0);
}

#[test]
fn a_transport_that_stops_taking_bytes_is_dropped() {
    let mut b = board();
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 1_000);
    b.net.script.write_blocked = true;
    // The next sample (30 s) waits in the queue; the transport never takes a byte of it.
    run(&mut dev, &mut b, &mut now, 45_000);
    assert_eq!(b.causes, [Failure::SendStalled]);
    // Online at t0, the sample at t0 + 30 s, cut ping_timeout_ms (10 s) later.
    let t0 = log_time(&b, "=> Online").unwrap();
    assert_eq!(log_time(&b, "=> Backoff"), Some(t0 + 40_000), "{:?}", b.log);
}

/// Virtual time of the first transition log line containing `what`.
fn log_time(b: &FakeBoard, what: &str) -> Option<u64> {
    let line = b.log.iter().find(|l| l.contains(what))?;
    line.strip_prefix('[')?.split(' ').next()?.parse().ok()
}

#[test]
fn a_retained_command_is_not_run() {
    // One `mosquitto_pub -r` by the operator: the broker hands it to every new subscription.
    let mut b = board();
    let topic = format!("devices/{ID}/cmd/reboot");
    b.net.retained.push((topic, b"req=loop".to_vec()));
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 60_000);
    assert_eq!(b.resets, 0, "no reboot loop");
    assert_eq!(b.transcript, boot_to_online());
    let replies = b.net.publishes("reply/reboot");
    assert_eq!(replies.len(), 1);
    assert_eq!(
        std::str::from_utf8(&replies[0].payload).unwrap(),
        r#"{"req":"loop","ok":false,"error":"a retained command is not run (clear it: publish an empty retained message to its topic)"}"#
    );
    // The same command sent live still works.
    b.net.command("reboot", "");
    run(&mut dev, &mut b, &mut now, 61_000);
    assert_eq!(b.resets, 1);
}

#[test]
fn a_broker_that_breaks_every_session_after_suback_meets_a_growing_backoff() {
    let mut b = board();
    b.net.script.break_after_suback = true;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 60_000);
    // Each session reaches Online and is cut at once: that is no healthy connection, so the
    // backoff keeps growing (1, 2, 4, 8, 16 s ceilings) instead of a flat 1 s storm.
    assert!(
        b.causes.iter().all(|c| *c == Failure::Closed),
        "{:?}",
        b.causes
    );
    let n = b.backoff_delays.len();
    assert!(
        (5..=7).contains(&n),
        "{n} reconnects in 60 s: {:?}",
        b.backoff_delays
    );
    for (i, d) in b.backoff_delays.iter().enumerate() {
        let ceiling = (1000u64 << i).min(60_000);
        assert!((ceiling / 2..=ceiling).contains(d), "delay {i} = {d}");
    }
    // A connection that stays up for `stable_after_ms` resets it: the next failure waits
    // from the first ceiling again.
    b.net.script.break_after_suback = false;
    let before = b.backoff_delays.len();
    run(&mut dev, &mut b, &mut now, 200_000);
    assert_eq!(b.backoff_delays.len(), before);
    assert_eq!(*b.transcript.last().unwrap(), Online);
    b.net.crash();
    b.net.script.up = true;
    run(&mut dev, &mut b, &mut now, 210_000);
    let d = b.backoff_delays[before];
    assert!((500..=1000).contains(&d), "{d}");
}

#[test]
fn the_backoff_delay_counts_from_the_failure() {
    let (mut b, mut dev) = hanging_handshake();
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 6_000);
    let started = log_time(&b, "=> TlsConnect").unwrap();
    let failed = log_time(&b, "=> Backoff").unwrap();
    let retried = log_time(&b, "=> NetworkUp").map(|_| ());
    assert_eq!(failed, started + 3_000);
    let again = b
        .log
        .iter()
        .filter(|l| l.contains("=> NetworkUp"))
        .nth(1)
        .and_then(|l| l.strip_prefix('[')?.split(' ').next()?.parse::<u64>().ok())
        .unwrap();
    assert!(retried.is_some());
    assert!(
        (failed + 500..=failed + 1_000).contains(&again),
        "retry at {again}, failure at {failed}"
    );
}

#[test]
fn a_spoofed_time_costs_one_connect_and_is_never_persisted() {
    // An unauthenticated time source answers far in the future: the broker's certificate
    // (valid from build time to the real time plus ten years) looks expired at that time.
    let spoofed = 4_000_000_000;
    let mut b = board();
    b.time_source = Some(spoofed);
    b.net.script.cert_valid = (BUILD_TIME - 86_400, SOURCE_TIME + 315_360_000);
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 10_000);
    let rec = |b: &FakeBoard| crate::clock::parse_record(&b.flash.mem[4096..]);
    assert_eq!(b.net.connects[0].time_floor, spoofed);
    assert_eq!(
        b.causes,
        [Failure::Connect(ConnectError::ServerCertificate)]
    );
    assert!(
        b.log.iter().any(|l| l.contains("time source")),
        "{:?}",
        b.log
    );
    // The retry validates at the floor the device can vouch for, and gets through.
    assert!(b.net.connects[1].time_floor < BUILD_TIME + 10);
    assert_eq!(*b.transcript.last().unwrap(), Online);
    run(&mut dev, &mut b, &mut now, 3_700_000);
    let persisted = rec(&b).unwrap();
    assert!(persisted < BUILD_TIME + 3_700, "{persisted}");

    // After a reboot the spoofed time is gone: no lasting damage.
    let mut dev = Device::new(settings());
    b.time_source = None;
    let mut now = 0;
    let before = b.net.connects.len();
    run(&mut dev, &mut b, &mut now, 20_000);
    assert!(b.net.connects[before].time_floor < BUILD_TIME + 4_000);
    assert_eq!(*b.transcript.last().unwrap(), Online);
}

#[test]
fn a_source_time_is_persisted_only_after_a_handshake_validated_at_it() {
    let mut b = board();
    b.net.script.handshake_hangs = true;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 5_000);
    assert_eq!(b.net.connects[0].time_floor, SOURCE_TIME);
    let rec = |b: &FakeBoard| crate::clock::parse_record(&b.flash.mem[4096..]);
    assert_eq!(
        rec(&b),
        None,
        "nothing persisted before a handshake succeeded"
    );
    b.net.script.handshake_hangs = false;
    run(&mut dev, &mut b, &mut now, 60_000);
    assert_eq!(*b.transcript.last().unwrap(), Online);
    // Confirmed by the handshake: persisted, as the floor the handshake was validated at.
    let p = rec(&b).unwrap();
    assert!((SOURCE_TIME..SOURCE_TIME + 60).contains(&p), "{p}");
}

#[test]
fn the_state_table_and_diagram_in_the_docs_name_every_state() {
    const ALL: [StateKind; 10] = [
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
    ];
    // A new state fails to compile here until it is added above (and to the docs).
    for k in ALL {
        match k {
            Boot | LoadConfig | ConfigInvalid | NetworkUp | TimeSync | TlsConnect | MqttConnect
            | Subscribe | Online | Backoff => {}
        }
    }
    let doc = include_str!("../../docs/esp-client.md");
    let table: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("| `")).collect();
    let diagram = &doc[doc.find("stateDiagram-v2").expect("the state diagram")..];
    let diagram = &diagram[..diagram.find("```").unwrap()];
    for k in ALL {
        let name = k.to_string();
        assert!(
            table.iter().any(|row| row.starts_with(&name)
                && !row[name.len()..].starts_with(|c: char| c.is_alphanumeric())),
            "docs/esp-client.md: no table row for {name}"
        );
        assert!(
            diagram.contains(&format!("{name} -->")) || diagram.contains(&format!("--> {name}")),
            "docs/esp-client.md: {name} is not in the diagram"
        );
    }
    // Every row of the state table names a state.
    let start = doc.find("| state | does |").unwrap();
    let rows = doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    for row in rows {
        let name: String = row[3..]
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        assert!(
            ALL.iter().any(|k| k.to_string() == name),
            "docs/esp-client.md names a state the code lacks: {row}"
        );
    }
}

/// The hop between endpoints within a round: `BackoffConfig::hop_ms`.
const HOP_MS: u64 = 500;

#[test]
fn first_endpoint_dead_the_second_is_used() {
    let mut b = board_with(config_blob_with(&NODES[..2]));
    b.net.script.dead.push("node-1.local");
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 5_000);
    let mut want = vec![Boot, LoadConfig, NetworkUp, TimeSync, TlsConnect, Backoff];
    want.extend(CONNECTING);
    want.push(Online);
    assert_eq!(b.transcript, want);
    assert_eq!(b.causes, [Failure::Connect(ConnectError::Tcp)]);
    // The second node at once (a hop, not the backoff), at its own host and port: the board's
    // TLS checks the certificate against the name it connects to.
    assert!(b.backoff_delays[0] <= HOP_MS, "{:?}", b.backoff_delays);
    let seen: Vec<_> = b
        .net
        .connects
        .iter()
        .map(|c| (c.host.as_str(), c.port))
        .collect();
    assert_eq!(seen, [("node-1.local", 8883), ("node-2.local", 8884)]);
    assert_eq!(dev.endpoint(), Some(NODES[1]));
    assert!(
        b.log
            .iter()
            .any(|l| l == "broker node-2.local:8884 (endpoint 2 of 2)"),
        "{:?}",
        b.log
    );
    assert!(!b.net.publishes("telemetry").is_empty());

    // A node that refuses CONNECT (CONNACK 5) is passed over the same way.
    let mut b = board_with(config_blob_with(&NODES[..2]));
    b.net.script.refusing.push("node-1.local");
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 5_000);
    assert_eq!(b.causes, [Failure::Refused(5)]);
    assert_eq!(b.net.hosts(), ["node-1.local", "node-2.local"]);
    assert_eq!(*b.transcript.last().unwrap(), Online);
}

#[test]
fn a_session_lost_on_node_2_goes_back_to_trying_the_others() {
    let mut b = board_with(config_blob_with(&NODES));
    b.net.script.dead.push("node-1.local");
    let mut dev = Device::new(settings());
    let mut now = 0;
    // Online on node 2, for longer than `stable_after_ms`.
    run(&mut dev, &mut b, &mut now, 40_000);
    assert_eq!(b.net.hosts(), ["node-1.local", "node-2.local"]);
    assert_eq!(dev.endpoint(), Some(NODES[1]));
    let sent_on_2 = b.net.publishes("telemetry").len();
    assert!(sent_on_2 >= 2);

    // Node 2 dies, node 3 too; node 1 is back.
    b.net.script.dead.clear();
    b.net.crash_node("node-2.local");
    b.net.crash_node("node-3.local");
    assert_eq!(
        b.net.retained("devices/kitchen-sensor-1/status"),
        Some(&b"offline"[..])
    );
    let before = b.backoff_delays.len();
    run(&mut dev, &mut b, &mut now, 45_000);
    assert_eq!(
        b.net.hosts(),
        [
            "node-1.local",
            "node-2.local",
            "node-3.local",
            "node-1.local"
        ]
    );
    assert_eq!(
        b.causes[1..],
        [Failure::Closed, Failure::Connect(ConnectError::Tcp)]
    );
    // Two hops: the round (node 2 lost, node 3 down) is not complete when node 1 answers.
    assert!(
        b.backoff_delays[before..].iter().all(|d| *d <= HOP_MS),
        "{:?}",
        b.backoff_delays
    );
    assert_eq!(*b.transcript.last().unwrap(), Online);
    assert_eq!(dev.endpoint(), Some(NODES[0]));
    assert_eq!(
        b.net.retained("devices/kitchen-sensor-1/status"),
        Some(&b"online"[..])
    );
    // Telemetry goes on, on node 1.
    run(&mut dev, &mut b, &mut now, 100_000);
    assert!(b.net.publishes("telemetry").len() >= sent_on_2 + 2);
    assert_eq!(b.net.hosts().len(), 4, "no reconnect while node 1 serves");
}

#[test]
fn every_endpoint_dead_the_backoff_grows_per_round_without_a_busy_loop() {
    let mut b = board_with(config_blob_with(&NODES));
    b.net.script.up = false;
    let mut dev = Device::new(settings());
    let mut now = 0;
    // `run` fails on a poll loop that never sleeps.
    run(&mut dev, &mut b, &mut now, 600_000);
    let d = &b.backoff_delays;
    assert!(b
        .causes
        .iter()
        .all(|c| *c == Failure::Connect(ConnectError::Tcp)));
    // Per round: two hops to the next node, then the growing delay (1, 2, 4, ... 60 s).
    for (round, r) in d.chunks(3).enumerate() {
        assert!(
            r[..r.len().min(2)].iter().all(|h| *h <= HOP_MS),
            "round {round}: {r:?}"
        );
        if let Some(wait) = r.get(2) {
            let ceiling = (1000u64 << round).min(60_000);
            assert!(
                (ceiling / 2..=ceiling).contains(wait),
                "round {round}: {wait} outside the ceiling {ceiling}"
            );
        }
    }
    // Three nodes cost three attempts per delay: 10 minutes are 13 to 20 rounds.
    let rounds = d.len() / 3;
    assert!((13..=20).contains(&rounds), "{rounds} rounds: {d:?}");
    // The nodes in turn, the rotation continuing across rounds.
    let hosts = b.net.hosts();
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(*h, NODES[i % 3].host);
    }
    // One node back: the device finds it within one round's delay.
    b.net.script.up = true;
    b.net.script.dead = vec!["node-1.local", "node-3.local"];
    run(&mut dev, &mut b, &mut now, 680_000);
    assert_eq!(*b.transcript.last().unwrap(), Online);
    assert_eq!(dev.endpoint(), Some(NODES[1]));
}

#[test]
fn a_network_failure_stays_on_the_endpoint() {
    let mut b = board_with(config_blob_with(&NODES[..2]));
    b.network = NetStatus::Pending;
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 40_000);
    assert_eq!(b.causes, [Failure::NetworkTimeout]);
    assert!((500..=1000).contains(&b.backoff_delays[0]));
    b.network = NetStatus::Up;
    run(&mut dev, &mut b, &mut now, 41_000);
    assert_eq!(b.net.hosts(), ["node-1.local"]);
    assert_eq!(*b.transcript.last().unwrap(), Online);
}

#[test]
fn an_ota_query_is_answered_live_with_the_current_report_and_a_retained_one_is_not() {
    use wire_format::ota_proto::{Phase, Query, Status};
    let mut b = ota_board();
    let mut dev = Device::new(settings());
    let mut now = 0;
    run(&mut dev, &mut b, &mut now, 5_000);
    assert_eq!(b.transcript, boot_to_online());
    assert!(
        matches!(&b.net.received[1], r::Packet::Subscribe(s)
            if s.filters.iter().any(|f| f.path == format!("devices/{ID}/ota/down/+"))),
        "the device subscribes to its OTA down topics"
    );
    let status_topic = format!("devices/{ID}/ota/up/status");
    let reports = b.net.publishes("ota/up/status");
    assert_eq!(reports.len(), 1, "the report at start-up");
    assert!(reports[0].retain);
    let retained = b.net.retained(&status_topic).expect("retained").to_vec();
    assert_eq!(Status::parse(&retained).unwrap().phase, Phase::Idle);

    // A live query: one answer, the current report, QoS 1, not retained.
    let query = format!("devices/{ID}/ota/down/query");
    b.net.deliver(&query, &Query.to_bytes(), false);
    b.net.deliver(&query, &Query.to_bytes(), false);
    run(&mut dev, &mut b, &mut now, 6_000);
    let reports = b.net.publishes("ota/up/status");
    assert_eq!(reports.len(), 2, "two queries in one read: one answer");
    let answer = &reports[1];
    assert_eq!((answer.qos, answer.retain), (RQoS::AtLeastOnce, false));
    assert_eq!(&answer.payload[..], &retained[..]);
    assert_eq!(b.net.retained(&status_topic), Some(&retained[..]));
    // Both queries were acknowledged.
    let acks = b
        .net
        .received
        .iter()
        .filter(|p| matches!(p, r::Packet::PubAck(a) if a.pkid == 66))
        .count();
    assert_eq!(acks, 2);

    // A retained query (left on a broker by someone) is not answered; neither is a malformed one.
    b.net.deliver(&query, &Query.to_bytes(), true);
    b.net.deliver(&query, &[1, 5, 1, 0], false);
    b.net.deliver(&query, &[1, 5, 0], false);
    run(&mut dev, &mut b, &mut now, 7_000);
    assert_eq!(b.net.publishes("ota/up/status").len(), 2);
    assert!(b.log.iter().any(|l| l == "ota: retained message ignored"));
    assert!(
        b.log
            .iter()
            .any(|l| l == "ota: query dropped: reserved field is not zero"),
        "{:?}",
        b.log
    );

    // Asked again later: answered again.
    b.net.deliver(&query, &Query.to_bytes(), false);
    run(&mut dev, &mut b, &mut now, 8_000);
    assert_eq!(b.net.publishes("ota/up/status").len(), 3);
    assert_eq!(b.transcript, boot_to_online(), "no reconnect on the way");
}

#[test]
fn a_clusters_config_asks_for_a_persistent_session() {
    for persistent in [false, true] {
        let mut b = board_with(config_blob_session(&NODES, persistent));
        let mut dev = Device::new(settings());
        let mut now = 0;
        run(&mut dev, &mut b, &mut now, 2_000);
        assert_eq!(*b.transcript.last().unwrap(), Online);
        let connect = match &b.net.received[0] {
            r::Packet::Connect(c) => c.clone(),
            other => panic!("first packet {other:?}"),
        };
        assert_eq!(connect.clean_session, !persistent);
    }
}
