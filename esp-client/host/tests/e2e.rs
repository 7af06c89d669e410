//! The host device (the real `esp-client-host` binary) against a real Mosquitto configured by
//! `provision broker`, with an operator client (rumqttc over rustls) that no device code wrote.
//!
//! Mosquitto's ACL denials are silent, and a refused TLS 1.3 client shows up only after the
//! handshake, so "stays out" is asserted as "never reaches Online and nothing arrives".

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use broker_testkit::{rumqttc_client, Broker, Pki};
use provision::device_config::ConfigOptions;
use rumqttc::{Event, Packet, QoS};
use support::DeviceProc;

const ID: &str = "dev-1";

/// Writes `<pki>/<id>.flash` with `provision device config`.
fn config(pki: &Pki, id: &str, host: Option<&str>, port: Option<u16>) -> PathBuf {
    pki.write_config(&ConfigOptions {
        broker_host: host.map(str::to_string),
        broker_port: port,
        ..pki.config_options(id, &format!("{id}.flash"))
    })
}

/// An operator subscribed to `devices/#`; publishes arrive as (topic, payload).
struct Operator {
    client: rumqttc::Client,
    msgs: Receiver<(String, String)>,
}

impl Operator {
    fn connect(pki: &Pki, broker: &Broker) -> Operator {
        let (client, mut conn) = rumqttc_client(
            "operator-e2e",
            broker.port(),
            &pki.ca_cert(),
            &pki.operator(),
        );
        client.subscribe("devices/#", QoS::AtLeastOnce).unwrap();
        let (tx, msgs) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for event in conn.iter() {
                match event {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = String::from_utf8_lossy(&p.payload).into_owned();
                        if tx.send((p.topic.clone(), payload)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // rumqttc reconnects on the next iteration (broker restarts).
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("operator subscribed");
        Operator { client, msgs }
    }

    /// The next message on `topic` whose payload contains `needle`.
    fn wait_for(&self, topic: &str, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.msgs.recv_timeout(left) {
                Ok((t, p)) if t == topic && p.contains(needle) => return Some(p),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    fn command(&self, name: &str, payload: &str) {
        let topic = format!("devices/{ID}/cmd/{name}");
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .unwrap();
    }
}

const T: Duration = Duration::from_secs(15);

#[test]
fn telemetry_commands_and_last_will() {
    let pki = Pki::new(&[ID]);
    let broker = Broker::start(&pki);
    let op = Operator::connect(&pki, &broker);
    let flash = config(&pki, ID, None, None);
    let mut dev = DeviceProc::start(&flash, &[]);
    dev.expect("Subscribe => Online", T);

    let status = format!("devices/{ID}/status");
    let telemetry = format!("devices/{ID}/telemetry");
    assert!(
        op.wait_for(&status, "online", T).is_some(),
        "no online status"
    );
    let sample = op.wait_for(&telemetry, "\"adc\":[", T).expect("telemetry");
    assert!(
        sample.contains("\"ports\":{\"b\":0,\"c\":0,\"d\":0}"),
        "{sample}"
    );

    // A command sets PC1 on the AVR (through the SPI driver and the slave engine); the answer
    // comes back, and the next telemetry shows the pin high.
    op.command("set-pin", "pin=9 level=1 req=e2e-1");
    let reply = op
        .wait_for(&format!("devices/{ID}/reply/set-pin"), "e2e-1", T)
        .expect("reply");
    assert_eq!(reply, r#"{"req":"e2e-1","ok":true,"pin":9,"level":1}"#);
    assert!(
        op.wait_for(&telemetry, "\"c\":2", T).is_some(),
        "pin not visible in telemetry"
    );
    op.command("read-adc", "channel=2 req=e2e-2");
    let reply = op
        .wait_for(&format!("devices/{ID}/reply/read-adc"), "e2e-2", T)
        .expect("adc reply");
    assert!(
        reply.contains("\"ok\":true,\"channel\":2,\"value\":"),
        "{reply}"
    );
    op.command("set-pin", "pin=2 level=1 req=e2e-3");
    let reply = op
        .wait_for(&format!("devices/{ID}/reply/set-pin"), "e2e-3", T)
        .expect("refusal");
    assert!(
        reply.contains("\"ok\":false,\"error\":\"AVR refused the request: the pin is not free"),
        "PB2 is the SPI link's own pin: {reply}"
    );

    // SIGKILL: no goodbye from the device, so the broker publishes its Last Will.
    dev.kill();
    assert!(
        op.wait_for(&status, "offline", T).is_some(),
        "the Last Will did not fire"
    );
}

#[test]
fn reconnects_by_itself_after_a_broker_restart_and_stops_cleanly() {
    let pki = Pki::new(&[ID]);
    let mut broker = Broker::start(&pki);
    let flash = config(&pki, ID, None, None);
    let mut dev = DeviceProc::start(&flash, &["--tls13"]);
    dev.expect("Subscribe => Online", T);

    broker.restart();
    dev.expect("Online => Backoff", T);
    dev.expect("Subscribe => Online", Duration::from_secs(20));
    let op = Operator::connect(&pki, &broker);
    let telemetry = format!("devices/{ID}/telemetry");
    assert!(
        op.wait_for(&telemetry, "\"seq\":", T).is_some(),
        "no telemetry after the restart"
    );

    // SIGTERM: the device says offline itself and disconnects (exit 0).
    let status = dev.terminate();
    assert!(status.success(), "{status}\n{}", dev.log());
    assert!(op
        .wait_for(&format!("devices/{ID}/status"), "offline", T)
        .is_some());
    // From the channel, not `dev.log()`: the reader thread may not have caught up with the
    // exited child's last lines yet (the channel closes once it has read them all).
    dev.expect("stopping: saying offline", T);
}

#[test]
fn a_revoked_device_stays_out() {
    let pki = Pki::new(&[ID, "dev-2"]);
    let broker = Broker::start(&pki);
    let flash = config(&pki, "dev-2", None, None);
    provision::device::revoke(pki.path(), "dev-2").expect("revoke");
    broker.reload();
    let op = Operator::connect(&pki, &broker);
    let dev = DeviceProc::start(&flash, &[]);
    dev.expect("TlsConnect => Backoff", T);
    assert!(
        !dev.wait_for("=> Online", Duration::from_secs(5)),
        "revoked device got in:\n{}",
        dev.log()
    );
    assert!(op
        .wait_for("devices/dev-2/status", "online", Duration::from_secs(1))
        .is_none());
    // The broker refused it during the handshake (TLS 1.2: the alert comes before any MQTT).
    assert!(dev.log().contains("TLS handshake failed"), "{}", dev.log());
    drop(dev);

    // With TLS 1.3 the refusal arrives only after the client's handshake is done: the device
    // gets as far as sending CONNECT, and the broker closes instead of answering.
    let dev = DeviceProc::start(&flash, &["--tls13"]);
    dev.expect("MqttConnect => Backoff", T);
    assert!(
        !dev.wait_for("=> Online", Duration::from_secs(4)),
        "{}",
        dev.log()
    );
    assert!(op
        .wait_for("devices/dev-2/status", "online", Duration::from_secs(1))
        .is_none());
}

#[test]
fn a_config_naming_another_ca_refuses_the_broker() {
    let pki = Pki::new(&[ID]);
    let broker = Broker::start(&pki);
    // Same device id, but issued by a different CA (with the same name, so only the signature
    // check can tell): the device trusts only that one.
    let other = Pki::new(&[ID]);
    let flash = config(&other, ID, Some("localhost"), Some(broker.port()));
    let dev = DeviceProc::start(&flash, &[]);
    dev.expect("TlsConnect => Backoff", T);
    assert!(
        !dev.wait_for("=> MqttConnect", Duration::from_secs(4)),
        "{}",
        dev.log()
    );
    let log = dev.log();
    assert!(
        log.contains("broker certificate refused") && log.contains("invalid peer certificate"),
        "{log}"
    );
    // Nothing reached the broker beyond a failed handshake.
    assert!(
        !broker.log().contains(&format!("as {ID}")),
        "{}",
        broker.log()
    );
}

#[test]
fn a_corrupt_config_stops_with_a_clear_error() {
    let pki = Pki::new(&[ID]);
    let flash = config(&pki, ID, Some("localhost"), Some(8883));
    let mut bytes = std::fs::read(&flash).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&flash, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_esp-client-host"))
        .arg("--flash")
        .arg(&flash)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LoadConfig => ConfigInvalid (config blob is corrupt: CRC-32"),
        "{err}"
    );
    assert!(err.contains("provision device config"), "{err}");
}

#[test]
fn a_pinned_broker_key_is_checked() {
    let pki = Pki::new(&[ID]);
    let _broker = Broker::start(&pki);
    let output = pki.write_config(&ConfigOptions {
        pin_broker: true,
        ..pki.config_options(ID, "pinned.flash")
    });
    let dev = DeviceProc::start(&output, &[]);
    dev.expect("Subscribe => Online", T);
    drop(dev);

    // The same blob with one bit of the pin flipped (CRC recomputed: a well-formed config
    // that pins some other key): the CA check alone would pass, the pin must not.
    let blob = std::fs::read(&output).unwrap();
    let cfg = wire_format::device_config::DeviceConfig::parse(&blob).unwrap();
    let mut pin = *cfg.broker_pin.expect("pin present");
    pin[0] ^= 1;
    let other = wire_format::device_config::DeviceConfig {
        broker_pin: Some(&pin),
        ..cfg
    };
    let mut buf = vec![0u8; other.blob_len()];
    other.emit(&mut buf).unwrap();
    let wrong = pki.path().join("wrong-pin.flash");
    std::fs::write(&wrong, &buf).unwrap();
    let dev = DeviceProc::start(&wrong, &[]);
    dev.expect("TlsConnect => Backoff", T);
    assert!(
        !dev.wait_for("=> MqttConnect", Duration::from_secs(3)),
        "{}",
        dev.log()
    );
    let log = dev.log();
    assert!(
        log.contains("broker certificate refused")
            && log.contains("ApplicationVerificationFailure"),
        "{log}"
    );
}

#[test]
fn a_retained_reboot_from_mosquitto_pub_does_not_loop_the_device() {
    let pki = Pki::new(&[ID]);
    // A second operator identity: the broker allows one connection per certificate.
    let mistaken = pki.add_operator("_ops-pub");
    let broker = Broker::start(&pki);
    let op = Operator::connect(&pki, &broker);
    // The operator's mistake, with a client no one here wrote: `-r` on a command.
    let out = Command::new("mosquitto_pub")
        .args(broker_testkit::mosquitto_client_args(
            &pki,
            &broker,
            Some(&mistaken),
        ))
        .args(["-q", "1", "-r", "-t", &format!("devices/{ID}/cmd/reboot")])
        .args(["-m", "req=oops"])
        .output()
        .expect("mosquitto_pub");
    assert!(out.status.success(), "{out:?}");
    let dev = DeviceProc::start(&config(&pki, ID, None, None), &[]);
    dev.expect("Subscribe => Online", T);
    let reply = op
        .wait_for(&format!("devices/{ID}/reply/reboot"), "oops", T)
        .unwrap_or_else(|| panic!("no reply; device log:\n{}", dev.log()));
    assert!(
        reply.contains(r#""ok":false"#) && reply.contains("retained"),
        "{reply}"
    );
    // A few seconds later: still the one connection, no reboot.
    std::thread::sleep(Duration::from_secs(3));
    let log = dev.log();
    assert_eq!(log.matches("=> Online").count(), 1, "{log}");
    assert!(!log.contains("rebooting"), "{log}");
}
