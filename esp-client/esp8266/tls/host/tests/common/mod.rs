//! Shared by the broker tests: a provisioned directory and a real Mosquitto from `provision
//! broker`, the device's material as DER, and a handshake / MQTT driver over the chip's TLS.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker_testkit::{Broker, Pki};
use esp8266_tls::{Fault, Session, StartError};
use esp_client::board::TlsMaterial;
use esp_client::mqtt::{self, Connect, Packet, Publish, QoS, Subscribe};

pub const DEVICE: &str = "dev1";

pub fn der(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .unwrap_or_else(|e| panic!("{}: not PEM: {e}", path.display()));
    pem.contents
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The device's material as the core hands it to the board.
pub struct Material {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub pin: Option<[u8; 32]>,
    pub floor: u64,
}

impl Material {
    pub fn of(pki: &Pki, device: &str) -> Material {
        let id = pki.device(device);
        Material {
            ca: der(&pki.ca_cert()),
            cert: der(&id.cert),
            key: der(&id.key),
            pin: None,
            floor: now_unix(),
        }
    }

    pub fn tls(&self) -> TlsMaterial<'_> {
        TlsMaterial {
            ca_der: &self.ca,
            client_cert_der: &self.cert,
            client_key_der: &self.key,
            broker_pin: self.pin.as_ref(),
            time_floor_unix: self.floor,
        }
    }
}

/// A provisioned directory with one device and a running broker.
pub struct Setup {
    pub pki: Pki,
    pub broker: Broker,
}

impl Setup {
    pub fn new() -> Setup {
        let pki = Pki::new(&[DEVICE]);
        let broker = Broker::start(&pki);
        Setup { pki, broker }
    }

    pub fn broker_cert_der(&self) -> Vec<u8> {
        der(&self.pki.path().join("broker/server.crt"))
    }
}

/// Why a connection did not get to application data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Start(StartError),
    Fault(Fault),
}

/// TCP to the broker and the whole handshake, by polling (as the chip does).
pub fn handshake(port: u16, host: &str, m: &Material) -> Result<Session, Refused> {
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("tcp connect");
    let seed: [u8; 32] = rand::random();
    let tls = m.tls();
    let mut s = Session::start(sock, host, &tls, &seed).map_err(Refused::Start)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match s.poll_handshake(&tls) {
            Some(Ok(())) => return Ok(s),
            Some(Err(f)) => return Err(Refused::Fault(f)),
            None => {}
        }
        assert!(
            Instant::now() < deadline,
            "handshake did not finish in 20 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn write_all(s: &mut Session, m: &Material, mut data: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let tls = m.tls();
    while !data.is_empty() {
        match s.write(&tls, data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("write: {e} ({:?})", s.fault()),
        }
        assert!(Instant::now() < deadline, "write stalled");
    }
    // Let the records leave.
    for _ in 0..50 {
        s.pump(&tls);
    }
}

/// Reads one MQTT packet (any size) within `timeout`; `None` on timeout, panics on close.
pub fn read_packet(s: &mut Session, m: &Material, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let tls = m.tls();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Some((_, total)) = mqtt::frame_len(&buf).expect("valid MQTT framing") {
            if buf.len() >= total {
                assert_eq!(buf.len(), total, "read past one packet");
                return Some(buf);
            }
        }
        // Read at most up to the end of the current packet.
        let want = match mqtt::frame_len(&buf).unwrap() {
            Some((_, total)) => (total - buf.len()).min(chunk.len()),
            None => 1,
        };
        match s.read(&tls, &mut chunk[..want]) {
            Ok(0) => panic!("session closed: {:?}", s.fault()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// MQTT CONNECT as the core sends it; returns the CONNACK code.
pub fn mqtt_connect(s: &mut Session, m: &Material, client_id: &str) -> u8 {
    let mut buf = [0u8; 256];
    let n = Connect {
        client_id,
        keep_alive_s: 30,
        clean_session: true,
        will: None,
    }
    .emit(&mut buf)
    .unwrap();
    write_all(s, m, &buf[..n]);
    let p = read_packet(s, m, Duration::from_secs(10)).expect("CONNACK");
    match Packet::parse(&p).unwrap() {
        Packet::ConnAck { code, .. } => code,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// QoS 1 PUBLISH and its PUBACK.
pub fn mqtt_publish(s: &mut Session, m: &Material, topic: &str, payload: &[u8], retain: bool) {
    let mut buf = vec![0u8; payload.len() + topic.len() + 16];
    let n = Publish {
        topic,
        payload,
        qos: QoS::AtLeastOnce,
        retain,
        dup: false,
        pkid: 7,
    }
    .emit(&mut buf)
    .unwrap();
    write_all(s, m, &buf[..n]);
    let p = read_packet(s, m, Duration::from_secs(10)).expect("PUBACK");
    assert_eq!(Packet::parse(&p).unwrap(), Packet::PubAck { pkid: 7 });
}

pub fn mqtt_subscribe(s: &mut Session, m: &Material, filter: &str) {
    let mut buf = [0u8; 256];
    let n = Subscribe {
        pkid: 3,
        filters: &[(filter, QoS::AtLeastOnce)],
    }
    .emit(&mut buf)
    .unwrap();
    write_all(s, m, &buf[..n]);
    let p = read_packet(s, m, Duration::from_secs(10)).expect("SUBACK");
    match Packet::parse(&p).unwrap() {
        Packet::SubAck { pkid: 3, codes, .. } => assert!(codes[0] <= 1, "refused: {codes:?}"),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// `mosquitto_sub` as the operator: the first message on `topic` within 10 s.
pub fn operator_receives(setup: &Setup, topic: &str) -> Option<Vec<u8>> {
    let out = Command::new("mosquitto_sub")
        .args(broker_testkit::mosquitto_client_args(
            &setup.pki,
            &setup.broker,
            Some(&setup.pki.operator()),
        ))
        .args(["-t", topic, "-C", "1", "-W", "10", "-N"])
        .output()
        .expect("run mosquitto_sub (apt-get install mosquitto-clients)");
    if out.status.success() {
        Some(out.stdout)
    } else {
        None
    }
}

/// `mosquitto_pub` as the operator.
pub fn operator_publishes(setup: &Setup, topic: &str, payload_file: &Path) {
    let st = Command::new("mosquitto_pub")
        .args(broker_testkit::mosquitto_client_args(
            &setup.pki,
            &setup.broker,
            Some(&setup.pki.operator()),
        ))
        .args(["-t", topic, "-q", "1", "-f"])
        .arg(payload_file)
        .status()
        .expect("run mosquitto_pub (apt-get install mosquitto-clients)");
    assert!(st.success(), "mosquitto_pub failed");
}
