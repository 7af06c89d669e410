//! The config `provision broker` writes, proven against a real Mosquitto 2.0 with clients no one
//! here wrote (mosquitto_pub/sub, openssl s_client) and with rumqttc over rustls.
//!
//! ACL denials are silent in Mosquitto (a denied subscribe still gets its SUBACK, a denied
//! publish its PUBACK), so "refused" for topics means "nothing arrives" while a control message
//! on the same broker, in the same window, does arrive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_testkit::{mosquitto_client_args, rumqttc_client, Broker, Identity, Pki};
use rumqttc::{Event, Packet, QoS};

/// A `mosquitto_sub` whose output lines arrive on a channel.
struct Sub {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Sub {
    /// Subscribes and returns once the broker acknowledged the subscription.
    fn start(pki: &Pki, broker: &Broker, who: &Identity, topic: &str) -> Sub {
        // stdbuf: mosquitto_sub block-buffers stdout into a pipe; we need each line as it comes.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(mosquitto_client_args(pki, broker, Some(who)))
            .args(["-d", "-v", "-W", "20", "-t", topic])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub (apt-get install mosquitto-clients)");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sub = Sub { child, lines };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.lines.recv_timeout(left) {
                Ok(l) if l.contains("received SUBACK") => return sub,
                Ok(_) => {}
                Err(_) => panic!("mosquitto_sub never got its SUBACK:\n{}", broker.log()),
            }
        }
    }

    /// Message lines ("topic payload") received within `wait`.
    fn messages(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if !line.starts_with("Client ") && !line.starts_with("Subscribed") {
                got.push(line);
            }
        }
        got
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(pki: &Pki, broker: &Broker, who: Option<&Identity>, topic: &str, msg: &str) -> Output {
    Command::new("mosquitto_pub")
        .args(mosquitto_client_args(pki, broker, who))
        .args(["-q", "1", "-t", topic, "-m", msg])
        .output()
        .expect("mosquitto_pub")
}

fn assert_published(out: Output) {
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_refused(out: Output, what: &str) {
    assert!(
        !out.status.success(),
        "{what}: mosquitto_pub succeeded but must be refused"
    );
}

/// `openssl s_client` handshake as `who` with extra flags; returns (success, output).
fn s_client(pki: &Pki, broker: &Broker, who: Option<&Identity>, flags: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", broker.port()))
        .arg("-CAfile")
        .arg(pki.ca_cert())
        .args(["-verify_return_error", "-servername", "localhost"])
        .args(flags);
    if let Some(id) = who {
        cmd.arg("-cert").arg(&id.cert).arg("-key").arg(&id.key);
    }
    // s_client finishes the handshake, then reads stdin; an MQTT PINGREQ-free EOF closes it.
    let out = cmd.stdin(Stdio::null()).output().expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // With TLS 1.3 the server's refusal of a client cert can arrive after "CONNECTED"; only a
    // completed handshake that the server did not abort counts.
    let ok = out.status.success() && text.contains("Verification: OK") && !text.contains("alert");
    (ok, text)
}

const QUIET: Duration = Duration::from_secs(2);

#[test]
fn device_and_operator_exchange_within_the_device_subtree() {
    // One identity is one connection (the broker makes the client id the certificate's name):
    // the operator that watches and the one that commands are two identities.
    let pki = Pki::new(&["dev-a"]);
    provision::operator::add(pki.path(), "_ops-cli", 30).expect("operator add");
    let broker = Broker::start(&pki);
    let dev = pki.device("dev-a");
    let commander = Identity {
        cert: pki.path().join("operator/_ops-cli.crt"),
        key: pki.path().join("operator/_ops-cli.key"),
    };

    // The operator sees the device's telemetry.
    let op_sub = Sub::start(&pki, &broker, &pki.operator(), "devices/+/telemetry");
    assert_published(publish(
        &pki,
        &broker,
        Some(&dev),
        "devices/dev-a/telemetry",
        "t=21.5",
    ));
    assert_eq!(
        op_sub.messages(QUIET),
        vec!["devices/dev-a/telemetry t=21.5"]
    );

    // The device reads its own command topic.
    let dev_sub = Sub::start(&pki, &broker, &dev, "devices/dev-a/cmd/#");
    assert_published(publish(
        &pki,
        &broker,
        Some(&commander),
        "devices/dev-a/cmd/led",
        "on",
    ));
    assert_eq!(dev_sub.messages(QUIET), vec!["devices/dev-a/cmd/led on"]);
}

/// Drives a sync rumqttc connection on its own thread (requests only go out while it is
/// polled) and hands its incoming packets to the test.
fn drive(mut conn: rumqttc::Connection) -> mpsc::Receiver<Packet> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(p)) => {
                    if tx.send(p).is_err() {
                        break;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(_) => break,
            }
        }
    });
    rx
}

fn next_matching<T>(rx: &mpsc::Receiver<Packet>, what: &str, f: impl Fn(Packet) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(p) => {
                if let Some(t) = f(p) {
                    return t;
                }
            }
            Err(e) => panic!("no {what}: {e}"),
        }
    }
}

fn suback(rx: &mpsc::Receiver<Packet>) {
    next_matching(rx, "SUBACK", |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
}

fn publish_received(rx: &mpsc::Receiver<Packet>) -> (String, String) {
    next_matching(rx, "PUBLISH", |p| match p {
        Packet::Publish(p) => Some((p.topic, String::from_utf8(p.payload.to_vec()).unwrap())),
        _ => None,
    })
}

#[test]
fn rumqttc_over_rustls_device_reaches_the_operator() {
    let pki = Pki::new(&["dev-r"]);
    let broker = Broker::start(&pki);
    let (op, op_conn) = rumqttc_client("operator", broker.port(), &pki.ca_cert(), &pki.operator());
    let op_rx = drive(op_conn);
    op.subscribe("devices/+/telemetry", QoS::AtLeastOnce)
        .unwrap();
    let (dev, dev_conn) =
        rumqttc_client("dev-r", broker.port(), &pki.ca_cert(), &pki.device("dev-r"));
    let dev_rx = drive(dev_conn);
    dev.subscribe("devices/dev-r/cmd/#", QoS::AtLeastOnce)
        .unwrap();
    suback(&op_rx);
    suback(&dev_rx);

    dev.publish(
        "devices/dev-r/telemetry",
        QoS::AtLeastOnce,
        false,
        "adc0=512",
    )
    .unwrap();
    op.publish("devices/dev-r/cmd/reboot", QoS::AtLeastOnce, false, "now")
        .unwrap();
    assert_eq!(
        publish_received(&op_rx),
        ("devices/dev-r/telemetry".into(), "adc0=512".into())
    );
    assert_eq!(
        publish_received(&dev_rx),
        ("devices/dev-r/cmd/reboot".into(), "now".into())
    );
}

#[test]
fn handshake_with_a_client_cert_succeeds_and_without_one_is_refused() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    // Control: the same s_client call with a device cert completes TLS 1.2 with our suite.
    let (ok, text) = s_client(&pki, &broker, Some(&pki.device("dev-a")), &["-tls1_2"]);
    assert!(ok, "valid handshake failed:\n{text}");
    assert!(
        text.contains("ECDHE-ECDSA-AES128-GCM-SHA256")
            || text.contains("ECDHE-ECDSA-AES256-GCM-SHA384"),
        "{text}"
    );

    let (ok, text) = s_client(&pki, &broker, None, &["-tls1_2"]);
    assert!(!ok, "handshake without client cert was accepted:\n{text}");
    assert!(
        broker.log().contains("peer did not return a certificate"),
        "{}",
        broker.log()
    );
}

#[test]
fn old_tls_versions_are_refused() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let dev = pki.device("dev-a");
    for flag in ["-tls1", "-tls1_1"] {
        // SECLEVEL=0 lets OpenSSL 3 offer the old protocol at all: the refusal must be the broker's.
        let (ok, text) = s_client(
            &pki,
            &broker,
            Some(&dev),
            &[flag, "-cipher", "DEFAULT:@SECLEVEL=0"],
        );
        assert!(!ok, "{flag} accepted:\n{text}");
        assert!(
            text.contains("protocol version") || text.contains("unsupported protocol"),
            "{flag} refused for another reason:\n{text}"
        );
    }
}

#[test]
fn cert_from_another_ca_is_refused() {
    let pki = Pki::new(&["dev-a"]);
    let other = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let op_sub = Sub::start(&pki, &broker, &pki.operator(), "devices/+/telemetry");
    assert_refused(
        publish(
            &pki,
            &broker,
            Some(&other.device("dev-a")),
            "devices/dev-a/telemetry",
            "forged",
        ),
        "foreign CA",
    );
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.device("dev-a")),
        "devices/dev-a/telemetry",
        "real",
    ));
    assert_eq!(op_sub.messages(QUIET), vec!["devices/dev-a/telemetry real"]);
}

#[test]
fn expired_cert_is_refused() {
    let pki = Pki::new(&[]);
    // An expired device certificate from our own CA, written next to the others.
    let reg = provision::store::read_registry(pki.path())
        .unwrap()
        .unwrap();
    let key = std::fs::read_to_string(pki.path().join("ca/ca.key")).unwrap();
    let ca = provision::pki::Ca::load(&reg.ca, &key).unwrap();
    let now = provision::pki::now();
    let issued = ca
        .issue_between(
            provision::pki::Leaf::Client { cn: "dev-old" },
            now - time::Duration::days(20),
            now - time::Duration::days(1),
        )
        .unwrap();
    let dir = pki.path().join("devices/dev-old");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("device.crt"), issued.cert_pem).unwrap();
    std::fs::write(dir.join("device.key"), issued.key_pem).unwrap();

    let broker = Broker::start(&pki);
    let out = publish(
        &pki,
        &broker,
        Some(&pki.device("dev-old")),
        "devices/dev-old/telemetry",
        "x",
    );
    assert_refused(out, "expired cert");
    let (ok, text) = s_client(&pki, &broker, Some(&pki.device("dev-old")), &["-tls1_2"]);
    assert!(!ok && text.contains("certificate expired"), "{text}");
}

#[test]
fn revoked_cert_is_refused_after_revoke_and_reload_and_an_open_session_is_cut_off() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    // revoke connects as an operator to clear dev-b's retained status: its own identity, so
    // the subscriber below (as _operator) keeps its connection.
    pki.add_operator("_ops-revoke");
    let broker = Broker::start(&pki);
    let op_sub = Sub::start(&pki, &broker, &pki.operator(), "devices/+/telemetry");

    // dev-b is connected before it is revoked.
    let (b, b_conn) = rumqttc_client("dev-b", broker.port(), &pki.ca_cert(), &pki.device("dev-b"));
    let _b_rx = drive(b_conn);
    b.publish("devices/dev-b/telemetry", QoS::AtLeastOnce, false, "before")
        .unwrap();
    assert_eq!(
        op_sub.messages(QUIET),
        vec!["devices/dev-b/telemetry before"]
    );

    let reloads = broker.log().matches("Reloading config").count();
    assert_cmd::Command::cargo_bin("provision")
        .unwrap()
        .arg("--dir")
        .arg(pki.path())
        .args([
            "device",
            "revoke",
            "dev-b",
            "--operator",
            "_ops-revoke",
            "--reload-pid",
        ])
        .arg(broker.pid().to_string())
        .assert()
        .success();
    broker.wait_for_reload(reloads);

    // A new connection is refused by the CRL.
    assert_refused(
        publish(
            &pki,
            &broker,
            Some(&pki.device("dev-b")),
            "devices/dev-b/telemetry",
            "after",
        ),
        "revoked cert",
    );
    let (ok, text) = s_client(&pki, &broker, Some(&pki.device("dev-b")), &["-tls1_2"]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    // The session that was open is denied by the ACL: its messages no longer arrive,
    // while dev-a's still do.
    b.publish(
        "devices/dev-b/telemetry",
        QoS::AtLeastOnce,
        false,
        "lingering",
    )
    .unwrap();
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.device("dev-a")),
        "devices/dev-a/telemetry",
        "ok",
    ));
    assert_eq!(op_sub.messages(QUIET), vec!["devices/dev-a/telemetry ok"]);
}

#[test]
fn plaintext_mqtt_on_the_tls_port_gets_no_connack() {
    let pki = Pki::new(&[]);
    let broker = Broker::start(&pki);
    // A minimal MQTT 3.1.1 CONNECT (clean session, keepalive 60, client id "p").
    let connect = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'p',
    ];
    let mut s = TcpStream::connect(("127.0.0.1", broker.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&connect).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(
        !reply.starts_with(&[0x20, 0x02]),
        "plaintext CONNECT got a CONNACK: {reply:02x?}"
    );
    // And the stock client without TLS fails.
    let out = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port().to_string(),
            "-t",
            "x",
            "-m",
            "y",
        ])
        .output()
        .unwrap();
    assert_refused(out, "plaintext mosquitto_pub");
}

#[test]
fn anonymous_client_is_refused() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let op_sub = Sub::start(&pki, &broker, &pki.operator(), "devices/+/telemetry");
    // TLS with the right CA but no certificate, claiming a username: still refused.
    let out = Command::new("mosquitto_pub")
        .args(mosquitto_client_args(&pki, &broker, None))
        .args(["-u", "dev-a", "-t", "devices/dev-a/telemetry", "-m", "anon"])
        .output()
        .unwrap();
    assert_refused(out, "anonymous");
    assert!(op_sub.messages(QUIET).is_empty());
}

#[test]
fn a_device_cannot_read_another_devices_topics() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let broker = Broker::start(&pki);
    let spy = Sub::start(&pki, &broker, &pki.device("dev-a"), "devices/dev-b/#");
    let spy_wild = Sub::start(&pki, &broker, &pki.device("dev-a"), "devices/+/telemetry");
    let op_sub = Sub::start(&pki, &broker, &pki.operator(), "devices/+/telemetry");
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.device("dev-b")),
        "devices/dev-b/telemetry",
        "secret",
    ));
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.operator()),
        "devices/dev-b/cmd/x",
        "cmd",
    ));
    // Control: the message exists.
    assert_eq!(
        op_sub.messages(QUIET),
        vec!["devices/dev-b/telemetry secret"]
    );
    assert!(spy.messages(QUIET).is_empty());
    assert!(spy_wild.messages(Duration::from_millis(200)).is_empty());
}

#[test]
fn a_device_cannot_publish_into_another_devices_subtree() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let broker = Broker::start(&pki);
    let b_cmd = Sub::start(&pki, &broker, &pki.device("dev-b"), "devices/dev-b/cmd/#");
    let op_sub = Sub::start(&pki, &broker, &pki.operator(), "devices/+/telemetry");
    // Publishes are "accepted" (silent ACL denial) but must not be delivered.
    publish(
        &pki,
        &broker,
        Some(&pki.device("dev-a")),
        "devices/dev-b/cmd/unlock",
        "evil",
    );
    publish(
        &pki,
        &broker,
        Some(&pki.device("dev-a")),
        "devices/dev-b/telemetry",
        "fake",
    );
    // Control: the operator's command does arrive.
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.operator()),
        "devices/dev-b/cmd/unlock",
        "real",
    ));
    assert_eq!(b_cmd.messages(QUIET), vec!["devices/dev-b/cmd/unlock real"]);
    assert!(op_sub.messages(Duration::from_millis(200)).is_empty());
}

#[test]
fn a_provisioning_dir_with_a_space_in_its_path_works() {
    // mosquitto.conf has no quoting; Mosquitto 2.0 reads a path option to the end of its line.
    let pki = Pki::with_prefix("provision test ", &["dev-s"]);
    assert!(pki.path().to_string_lossy().contains(' '));
    let broker = Broker::start(&pki);
    let conf = std::fs::read_to_string(pki.path().join("broker/mosquitto.conf")).unwrap();
    assert!(conf.contains(&format!("acl_file {}/broker/acl\n", pki.path().display())));
    let op_sub = Sub::start(&pki, &broker, &pki.operator(), "devices/+/telemetry");
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.device("dev-s")),
        "devices/dev-s/telemetry",
        "spaced",
    ));
    assert_eq!(
        op_sub.messages(QUIET),
        vec!["devices/dev-s/telemetry spaced"]
    );
    // The ACL and the CRL are read from there too: another device's subtree stays closed.
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.device("dev-s")),
        "devices/dev-x/telemetry",
        "forged",
    ));
    assert!(op_sub.messages(Duration::from_millis(500)).is_empty());
}

/// A fleet's CRL: 10,000 revoked devices (recorded through the library, as if revoked one by
/// one over the years) and one revoked with the CLI, which signs them all. OpenSSL verifies the
/// CRL and counts every entry; Mosquitto loads it, lets an active device in and refuses the
/// revoked one.
#[test]
fn a_crl_with_ten_thousand_entries_verifies_and_loads_in_mosquitto() {
    const REVOKED: usize = 10_000;
    let pki = Pki::new(&["dev-a", "dev-b"]);
    {
        let store = provision::store::Store::open(pki.path()).unwrap();
        let mut reg = store.registry().unwrap();
        let now = provision::pki::now();
        let template = reg.devices["dev-a"].cert.clone();
        for i in 0..REVOKED {
            let mut cert = template.clone();
            cert.serial = format!("7E{i:030X}");
            reg.devices.insert(
                format!("gone-{i}"),
                provision::registry::DeviceRecord {
                    status: provision::registry::DeviceStatus::Revoked,
                    cert,
                    revoked_at: Some(now),
                },
            );
        }
        let mut tx = store.transaction();
        store.stage_registry(&mut tx, &reg).unwrap();
        tx.commit().unwrap();
    }
    assert_cmd::Command::cargo_bin("provision")
        .unwrap()
        .arg("--dir")
        .arg(pki.path())
        .args(["device", "revoke", "dev-b"])
        .assert()
        .success();

    // `provision broker` puts the CRL, and the ACL denying all 10,001, in the broker folder.
    let broker = Broker::start(&pki);
    let crl = pki.path().join("broker/crl.pem");
    assert_eq!(
        std::fs::read(&crl).unwrap(),
        std::fs::read(pki.path().join("crl.pem")).unwrap()
    );
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&crl)
        .arg("-CAfile")
        .arg(pki.ca_cert())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("verify OK"), "{err}");
    assert_eq!(text.matches("Serial Number:").count(), REVOKED + 1);
    assert_published(publish(
        &pki,
        &broker,
        Some(&pki.device("dev-a")),
        "devices/dev-a/telemetry",
        "still in",
    ));
    assert_refused(
        publish(
            &pki,
            &broker,
            Some(&pki.device("dev-b")),
            "devices/dev-b/telemetry",
            "revoked",
        ),
        "revoked cert",
    );
}
