//! A real three-node RabbitMQ 3.10 cluster on loopback, started from the files `provision broker
//! --engine rabbitmq` wrote, attacked the way the Mosquitto tests attack one Mosquitto, with
//! clients no one here wrote (mosquitto_pub/sub, openssl s_client) and with our own.
//!
//! One cluster serves every test of this file (starting one takes 15 s to a minute); each test
//! uses its own devices. Tests that kill or restart a node take the cluster for themselves.
//! The host device itself failing over when its node is killed is `esp-client-host`'s
//! `tests/cluster_failover.rs`.
//!
//! Unlike Mosquitto, RabbitMQ closes the connection on a denied publish or subscribe, so
//! "refused" for topics means "the client is disconnected and nothing arrives", while a control
//! message on the same cluster, in the same window, does arrive.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use broker_testkit::rabbitmq::{self, Cluster, NodeFiles, SharedCluster};
use broker_testkit::{free_port, Identity, MosquittoSub, Pki};

/// Every device the tests use; each test has its own.
const DEVICES: &[&str] = &[
    "dev-tel",
    "dev-cmd",
    "dev-ca",
    "dev-tls",
    "dev-pw",
    "dev-pw2",
    "dev-rd",
    "dev-rd2",
    "dev-wr",
    "dev-wr2",
    "dev-sess",
    "dev-thief",
    "dev-rev",
    "dev-rev2",
    "dev-kill",
];

/// Operator identities, one per concurrent operator client (besides `_operator`).
const OPERATORS: &[&str] = &["_ops-cmd", "_ops-kill"];

fn cluster() -> &'static SharedCluster {
    rabbitmq::shared(|| {
        let pki = Pki::new(DEVICES);
        for o in OPERATORS {
            pki.add_operator(o);
        }
        // The nodes' files as users get them: `provision broker --engine rabbitmq`.
        let mut cmd = assert_cmd::Command::cargo_bin("provision").unwrap();
        cmd.arg("--dir").arg(pki.path()).args([
            "broker",
            "--engine",
            "rabbitmq",
            "--host",
            "localhost",
        ]);
        for i in 1..=3 {
            cmd.args(["--node", &format!("rabbit-{i}=127.0.0.1:{}", free_port())]);
        }
        let out = cmd.output().unwrap();
        if !out.status.success() {
            return Err(format!(
                "provision broker --engine rabbitmq failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let cluster = Cluster::start(&NodeFiles::generated(pki.path())?)?;
        Ok((pki, cluster))
    })
}

fn operator(c: &SharedCluster, name: &str) -> Identity {
    Identity {
        cert: c.pki.path().join(format!("operator/{name}.crt")),
        key: c.pki.path().join(format!("operator/{name}.key")),
    }
}

/// mosquitto_pub/sub arguments for node `node` as `who` with client id `id`.
fn args(c: &SharedCluster, node: usize, who: Option<&Identity>, id: Option<&str>) -> Vec<String> {
    let mut a = vec![
        "-h".to_string(),
        "localhost".into(),
        "-p".into(),
        c.cluster.mqtt_port(node).to_string(),
        "--cafile".into(),
        c.pki.ca_cert().display().to_string(),
    ];
    if let Some(w) = who {
        a.extend([
            "--cert".into(),
            w.cert.display().to_string(),
            "--key".into(),
            w.key.display().to_string(),
        ]);
    }
    if let Some(id) = id {
        a.extend(["-i".into(), id.into()]);
    }
    a
}

fn publish_with(
    c: &SharedCluster,
    node: usize,
    who: Option<&Identity>,
    id: Option<&str>,
    extra: &[&str],
    topic: &str,
    msg: &str,
) -> Output {
    Command::new("mosquitto_pub")
        .args(args(c, node, who, id))
        .args(extra)
        .args(["-q", "1", "-t", topic, "-m", msg])
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)")
}

fn publish(
    c: &SharedCluster,
    node: usize,
    who: &Identity,
    id: &str,
    topic: &str,
    msg: &str,
) -> Output {
    publish_with(c, node, Some(who), Some(id), &[], topic, msg)
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

/// A QoS 1 `mosquitto_sub` on node `node`, returned once subscribed.
fn subscribe(
    c: &SharedCluster,
    node: usize,
    who: &Identity,
    id: &str,
    topic: &str,
) -> MosquittoSub {
    let mut a = args(c, node, Some(who), Some(id));
    a.extend(["-q".into(), "1".into(), "-t".into(), topic.into()]);
    MosquittoSub::start(&a, || c.cluster.log_tail(node, 30))
}

/// An operator subscriber on node `node` to the telemetry of `devices` (the tests run side by
/// side: a wildcard would see the others' devices).
fn operator_sub(c: &SharedCluster, node: usize, devices: &[&str]) -> MosquittoSub {
    let id = format!("_operator-{}", free_port());
    let mut a = args(c, node, Some(&c.pki.operator()), Some(&id));
    a.extend(["-q".into(), "1".into()]);
    for d in devices {
        a.extend(["-t".into(), format!("devices/{d}/telemetry")]);
    }
    MosquittoSub::start(&a, || c.cluster.log_tail(node, 30))
}

/// `openssl s_client` handshake with node `node`; returns (success, output).
fn s_client(
    c: &SharedCluster,
    node: usize,
    who: Option<&Identity>,
    flags: &[&str],
) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", c.cluster.mqtt_port(node)))
        .arg("-CAfile")
        .arg(c.pki.ca_cert())
        .args(["-verify_return_error", "-servername", "localhost"])
        .args(flags);
    if let Some(id) = who {
        cmd.arg("-cert").arg(&id.cert).arg("-key").arg(&id.key);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = out.status.success() && text.contains("Verification: OK") && !text.contains("alert");
    (ok, text)
}

const QUIET: Duration = Duration::from_secs(3);

#[test]
fn the_cluster_runs_three_nodes_without_guest() {
    let c = cluster();
    let _g = c.read();
    for i in 0..3 {
        let users = c.cluster.ctl_ok(i, &["list_users", "-q"]).unwrap();
        assert!(
            users.contains("dev-tel") && users.contains("_operator"),
            "{users}"
        );
        assert!(
            !users
                .lines()
                .any(|l| l.split_whitespace().next() == Some("guest")),
            "guest must not exist:\n{users}"
        );
    }
    let status = c
        .cluster
        .ctl_ok(1, &["cluster_status", "--formatter", "json"])
        .unwrap();
    for i in 0..3 {
        assert!(status.contains(&c.cluster.node_name(i)), "{status}");
    }
}

#[test]
fn telemetry_from_a_device_on_node_3_reaches_the_operator_on_node_1() {
    let c = cluster();
    let _g = c.read();
    let op = operator_sub(c, 0, &["dev-tel"]);
    let dev = c.pki.device("dev-tel");
    assert_published(publish(
        c,
        2,
        &dev,
        "dev-tel",
        "devices/dev-tel/telemetry",
        "t=21.5",
    ));
    let got = op.messages_until(QUIET * 3, 1);
    assert_eq!(got, vec!["devices/dev-tel/telemetry t=21.5"]);
}

#[test]
fn a_command_via_node_2_reaches_the_device_on_node_1() {
    let c = cluster();
    let _g = c.read();
    let dev = c.pki.device("dev-cmd");
    let sub = subscribe(c, 0, &dev, "dev-cmd", "devices/dev-cmd/cmd/#");
    let ops = operator(c, "_ops-cmd");
    assert_published(publish(
        c,
        1,
        &ops,
        "_ops-cmd-1",
        "devices/dev-cmd/cmd/led",
        "on",
    ));
    assert_eq!(
        sub.messages_until(QUIET * 3, 1),
        vec!["devices/dev-cmd/cmd/led on"]
    );
}

#[test]
fn handshakes_without_a_certificate_or_with_old_tls_are_refused_on_every_node() {
    let c = cluster();
    let _g = c.read();
    let dev = c.pki.device("dev-tls");
    for node in 0..3 {
        // Control: the same call with a device certificate completes TLS 1.2 with our suite.
        let (ok, text) = s_client(c, node, Some(&dev), &["-tls1_2"]);
        assert!(ok, "node {node}: valid handshake failed:\n{text}");
        assert!(
            text.contains("ECDHE-ECDSA-AES128-GCM-SHA256")
                || text.contains("ECDHE-ECDSA-AES256-GCM-SHA384"),
            "{text}"
        );
        let (ok, text) = s_client(c, node, None, &["-tls1_2"]);
        assert!(
            !ok,
            "node {node}: handshake without a client cert accepted:\n{text}"
        );
        for flag in ["-tls1", "-tls1_1"] {
            // SECLEVEL=0 lets OpenSSL 3 offer the old protocol at all: the refusal is the node's.
            let (ok, text) = s_client(
                c,
                node,
                Some(&dev),
                &[flag, "-cipher", "DEFAULT:@SECLEVEL=0"],
            );
            assert!(!ok, "node {node}: {flag} accepted:\n{text}");
            assert!(
                text.contains("protocol version") || text.contains("unsupported protocol"),
                "node {node}: {flag} refused for another reason:\n{text}"
            );
        }
        // TLS 1.3 is not offered either: the ESP8266 speaks 1.2, and so does the cluster.
        let (ok, text) = s_client(c, node, Some(&dev), &["-tls1_3"]);
        assert!(!ok, "node {node}: TLS 1.3 accepted:\n{text}");
    }
    // And the stock client without a certificate fails to connect.
    assert_refused(
        publish_with(
            c,
            0,
            None,
            Some("dev-tls"),
            &[],
            "devices/dev-tls/telemetry",
            "anon",
        ),
        "no certificate",
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let c = cluster();
    let _g = c.read();
    let other = Pki::new(&["dev-ca"]);
    let op = operator_sub(c, 1, &["dev-ca"]);
    assert_refused(
        publish(
            c,
            1,
            &other.device("dev-ca"),
            "dev-ca",
            "devices/dev-ca/telemetry",
            "forged",
        ),
        "foreign CA",
    );
    let (ok, text) = s_client(c, 1, Some(&other.device("dev-ca")), &["-tls1_2"]);
    assert!(!ok, "foreign CA handshake accepted:\n{text}");
    assert_published(publish(
        c,
        1,
        &c.pki.device("dev-ca"),
        "dev-ca",
        "devices/dev-ca/telemetry",
        "real",
    ));
    assert_eq!(
        op.messages_until(QUIET * 3, 1),
        vec!["devices/dev-ca/telemetry real"]
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let c = cluster();
    let _g = c.read();
    let reg = provision::store::read_registry(c.pki.path())
        .unwrap()
        .unwrap();
    let key = std::fs::read_to_string(c.pki.path().join("ca/ca.key")).unwrap();
    let ca = provision::pki::Ca::load(&reg.ca, &key).unwrap();
    let now = provision::pki::now();
    // Named like a device the cluster knows: only the dates are wrong.
    let issued = ca
        .issue_between(
            provision::pki::Leaf::Client { cn: "dev-tls" },
            now - time::Duration::days(20),
            now - time::Duration::days(1),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let old = Identity {
        cert: dir.path().join("old.crt"),
        key: dir.path().join("old.key"),
    };
    std::fs::write(&old.cert, issued.cert_pem).unwrap();
    std::fs::write(&old.key, issued.key_pem).unwrap();
    for node in 0..3 {
        let (ok, text) = s_client(c, node, Some(&old), &["-tls1_2"]);
        assert!(
            !ok && text.contains("certificate expired"),
            "node {node}:\n{text}"
        );
    }
    assert_refused(
        publish(c, 2, &old, "dev-tls", "devices/dev-tls/telemetry", "x"),
        "expired cert",
    );
}

#[test]
fn plaintext_mqtt_gets_no_connack() {
    let c = cluster();
    let _g = c.read();
    // A minimal MQTT 3.1.1 CONNECT (clean session, keepalive 60, client id "p").
    let connect = [
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'p',
    ];
    for node in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", c.cluster.mqtt_port(node))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&connect).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        assert!(
            !reply.starts_with(&[0x20, 0x02]),
            "node {node}: plaintext CONNECT got a CONNACK: {reply:02x?}"
        );
    }
    // And the stock client without TLS fails.
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &c.cluster.mqtt_port(0).to_string()])
        .args(["-t", "x", "-m", "y"])
        .output()
        .unwrap();
    assert_refused(out, "plaintext mosquitto_pub");
}

#[test]
fn a_password_in_connect_does_not_change_who_the_certificate_says() {
    let c = cluster();
    let _g = c.read();
    let op = operator_sub(c, 0, &["dev-pw", "dev-pw2"]);
    let dev = c.pki.device("dev-pw");
    let spy_target = c.pki.device("dev-pw2");
    let cmd_sub = subscribe(c, 0, &spy_target, "dev-pw2", "devices/dev-pw2/cmd/#");
    // guest/guest, another device's name, the operator's name: none may become that user.
    for (user, pass) in [
        ("guest", "guest"),
        ("dev-pw2", ""),
        ("dev-pw2", "x"),
        ("_operator", "x"),
    ] {
        let mut extra = vec!["-u", user];
        if !pass.is_empty() {
            extra.extend(["-P", pass]);
        }
        // As the other device: its telemetry.
        publish_with(
            c,
            0,
            Some(&dev),
            Some("dev-pw"),
            &extra,
            "devices/dev-pw2/telemetry",
            "forged",
        );
        // As the operator: a command to another device.
        publish_with(
            c,
            0,
            Some(&dev),
            Some("dev-pw"),
            &extra,
            "devices/dev-pw2/cmd/unlock",
            "forged",
        );
    }
    // And no password at all as guest, without a certificate.
    assert_refused(
        publish_with(
            c,
            0,
            None,
            None,
            &["-u", "guest", "-P", "guest"],
            "devices/dev-pw2/cmd/x",
            "g",
        ),
        "guest without certificate",
    );
    // Control: the real device's telemetry and the real operator's command arrive.
    // (Another client id: the same one would take over the subscriber's connection.)
    assert_published(publish(
        c,
        0,
        &spy_target,
        "dev-pw2-pub",
        "devices/dev-pw2/telemetry",
        "real",
    ));
    assert_published(publish(
        c,
        0,
        &operator(c, "_ops-cmd"),
        "_ops-cmd-pw",
        "devices/dev-pw2/cmd/unlock",
        "real",
    ));
    assert_eq!(op.messages(QUIET), vec!["devices/dev-pw2/telemetry real"]);
    assert_eq!(
        cmd_sub.messages(QUIET),
        vec!["devices/dev-pw2/cmd/unlock real"]
    );
    let users = c.cluster.ctl_ok(0, &["list_users", "-q"]).unwrap();
    assert!(!users.contains("guest"), "{users}");
}

#[test]
fn a_device_cannot_read_another_devices_topics() {
    let c = cluster();
    let _g = c.read();
    let spy = c.pki.device("dev-rd");
    // The subscriptions are refused: the connection is closed, no SUBACK for the topic.
    for topic in [
        "devices/dev-rd2/#",
        "devices/dev-rd2/cmd/#",
        "devices/+/telemetry",
        "#",
    ] {
        let out = Command::new("mosquitto_sub")
            .args(args(c, 1, Some(&spy), Some("dev-rd")))
            .args(["-q", "1", "-t", topic, "-W", "3", "-C", "1", "-v"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && text.is_empty(),
            "{topic}: {} {text}",
            out.status
        );
    }
    // Meanwhile a spy that is subscribed to its own topics sees nothing of dev-rd2's traffic.
    let own = subscribe(c, 2, &spy, "dev-rd", "devices/dev-rd/cmd/#");
    let op = operator_sub(c, 0, &["dev-rd", "dev-rd2"]);
    assert_published(publish(
        c,
        0,
        &c.pki.device("dev-rd2"),
        "dev-rd2",
        "devices/dev-rd2/telemetry",
        "secret",
    ));
    assert_published(publish(
        c,
        1,
        &operator(c, "_ops-cmd"),
        "_ops-cmd-rd",
        "devices/dev-rd2/cmd/x",
        "cmd",
    ));
    assert_eq!(
        op.messages_until(QUIET * 2, 1),
        vec!["devices/dev-rd2/telemetry secret"]
    );
    assert!(own.messages(Duration::from_millis(500)).is_empty());
}

#[test]
fn a_device_cannot_publish_into_another_devices_subtree() {
    let c = cluster();
    let _g = c.read();
    let b_cmd = subscribe(
        c,
        2,
        &c.pki.device("dev-wr2"),
        "dev-wr2",
        "devices/dev-wr2/cmd/#",
    );
    let op = operator_sub(c, 0, &["dev-wr", "dev-wr2"]);
    let evil = c.pki.device("dev-wr");
    // Denied publishes close the connection: no PUBACK, mosquitto_pub fails.
    for (topic, msg) in [
        ("devices/dev-wr2/cmd/unlock", "evil"),
        ("devices/dev-wr2/telemetry", "fake"),
        ("devices/dev-wr/cmd/self", "own cmd"),
        ("devices/dev-wr/telemetry/../x", "odd"),
    ] {
        assert_refused(publish(c, 1, &evil, "dev-wr", topic, msg), topic);
    }
    // Control: the operator's command does arrive, the device's own telemetry too.
    assert_published(publish(
        c,
        1,
        &operator(c, "_ops-cmd"),
        "_ops-cmd-wr",
        "devices/dev-wr2/cmd/unlock",
        "real",
    ));
    assert_published(publish(
        c,
        1,
        &evil,
        "dev-wr",
        "devices/dev-wr/telemetry",
        "mine",
    ));
    assert_eq!(
        b_cmd.messages(QUIET),
        vec!["devices/dev-wr2/cmd/unlock real"]
    );
    assert_eq!(op.messages(QUIET), vec!["devices/dev-wr/telemetry mine"]);
}

#[test]
fn reusing_another_devices_client_id_does_not_take_its_queued_session() {
    let c = cluster();
    let _g = c.read();
    let owner = c.pki.device("dev-sess");
    let thief = c.pki.device("dev-thief");
    // dev-sess subscribes with a persistent session, then goes away.
    let mut a = args(c, 0, Some(&owner), Some("dev-sess"));
    a.extend(
        [
            "-c",
            "-q",
            "1",
            "-t",
            "devices/dev-sess/cmd/#",
            "-W",
            "3",
            "-C",
            "1",
            "-v",
        ]
        .map(String::from),
    );
    let first = Command::new("mosquitto_sub")
        .args(&a)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        first.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    // The operator commands it while it is away: queued for it, in a quorum queue.
    assert_published(publish(
        c,
        1,
        &operator(c, "_ops-cmd"),
        "_ops-cmd-sess",
        "devices/dev-sess/cmd/secret",
        "queued",
    ));
    // dev-thief connects with dev-sess's client id and a persistent session, on every node.
    for node in 0..3 {
        let mut t = args(c, node, Some(&thief), Some("dev-sess"));
        t.extend(
            [
                "-c",
                "-q",
                "1",
                "-t",
                "devices/dev-sess/cmd/#",
                "-W",
                "3",
                "-C",
                "1",
                "-v",
            ]
            .map(String::from),
        );
        let out = Command::new("mosquitto_sub")
            .args(&t)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.stdout.is_empty(),
            "node {node}: the thief got: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // Nor by subscribing only to its own topics with that client id.
        let mut t = args(c, node, Some(&thief), Some("dev-sess"));
        t.extend(
            [
                "-c",
                "-q",
                "1",
                "-t",
                "devices/dev-thief/cmd/#",
                "-W",
                "2",
                "-C",
                "1",
                "-v",
            ]
            .map(String::from),
        );
        let out = Command::new("mosquitto_sub")
            .args(&t)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.stdout.is_empty(),
            "node {node}: the thief got: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Control: the owner comes back, on another node, and gets its message.
    let mut a = args(c, 2, Some(&owner), Some("dev-sess"));
    a.extend(
        [
            "-c",
            "-q",
            "1",
            "-t",
            "devices/dev-sess/cmd/#",
            "-W",
            "10",
            "-C",
            "1",
            "-v",
        ]
        .map(String::from),
    );
    let back = Command::new("mosquitto_sub")
        .args(&a)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&back.stdout).trim(),
        "devices/dev-sess/cmd/secret queued"
    );
}

/// Runs a `mosquitto_sub` to completion: a persistent session (`-c`) as `who` with client id
/// `id` on node `node`, until `count` messages or `wait` seconds; returns the message lines.
fn persistent_sub(
    c: &SharedCluster,
    node: usize,
    who: &Identity,
    id: &str,
    topic: &str,
    count: usize,
    wait: u32,
) -> Vec<String> {
    let out = Command::new("mosquitto_sub")
        .args(args(c, node, Some(who), Some(id)))
        .args(["-c", "-q", "1", "-v", "-t", topic])
        .args(["-C", &count.to_string(), "-W", &wait.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The operator's own client (`provision watch` and `provision cmd` use it) on node `node`.
fn operator_client(
    c: &SharedCluster,
    node: usize,
    name: &str,
    filter: &str,
) -> provision::client::Client {
    let mut opts = provision::client::ConnectOptions::new(c.pki.path());
    opts.operator = name.into();
    opts.broker = Some(format!("localhost:{}", c.cluster.mqtt_port(node)));
    provision::client::Client::connect(&opts, &[filter.to_string()]).expect("operator connects")
}

/// Messages ("topic payload") the operator client receives within `wait`, up to `count`.
fn client_messages(
    client: &provision::client::Client,
    wait: Duration,
    count: usize,
) -> Vec<String> {
    let deadline = std::time::Instant::now() + wait;
    let mut got = Vec::new();
    while got.len() < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some(provision::client::Event::Message(m)) = client.recv_timeout(left).unwrap() {
            got.push(format!(
                "{} {}",
                m.topic,
                String::from_utf8_lossy(&m.payload)
            ));
        }
    }
    got
}

#[test]
fn kill_9_of_the_devices_node_loses_nothing_acknowledged() {
    let c = cluster();
    let _g = c.exclusive();
    let dev = c.pki.device("dev-kill");
    let ops = operator(c, "_ops-kill");
    // The operator's own client watches from node 1; the device lives on node 3.
    let watch = operator_client(c, 0, "_operator", "devices/dev-kill/telemetry");
    // The device's persistent session, subscribed to its commands, on node 3.
    assert!(persistent_sub(c, 2, &dev, "dev-kill", "devices/dev-kill/cmd/#", 1, 2).is_empty());
    let device_sub = {
        let mut a = args(c, 2, Some(&dev), Some("dev-kill"));
        a.extend(["-c", "-q", "1", "-t", "devices/dev-kill/cmd/#"].map(String::from));
        MosquittoSub::start(&a, || c.cluster.log_tail(2, 30))
    };
    for i in 1..=3 {
        assert_published(publish(
            c,
            2,
            &dev,
            "dev-kill-pub",
            "devices/dev-kill/telemetry",
            &format!("before-{i}"),
        ));
    }
    assert_published(publish(
        c,
        1,
        &ops,
        "_ops-kill",
        "devices/dev-kill/cmd/n",
        "0",
    ));
    assert_eq!(
        device_sub.messages_until(QUIET * 3, 1),
        vec!["devices/dev-kill/cmd/n 0"]
    );

    c.cluster.kill(2);
    let killed = std::time::Instant::now();
    // Commands sent through the surviving nodes while the device's node is dead. Until the
    // queue's new leader is elected, a publish is refused by closing the connection (RabbitMQ
    // 3.10's MQTT plugin on a quorum queue's nack): not acknowledged, so the sender retries.
    let mut refused = 0;
    for i in 1..=5 {
        loop {
            let out = publish(
                c,
                1,
                &ops,
                "_ops-kill",
                "devices/dev-kill/cmd/n",
                &i.to_string(),
            );
            if out.status.success() {
                break;
            }
            refused += 1;
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no publish acknowledged 60 s after the kill\n{}",
                c.cluster.log_tail(1, 30)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    eprintln!(
        "5 commands acknowledged {:.2} s after the kill ({refused} refused first)",
        killed.elapsed().as_secs_f64()
    );
    // The device reconnects to another node with the same session and gets every one of them
    // (a refused attempt may have been queued too: duplicates are allowed, losses are not).
    let got = persistent_sub(
        c,
        1,
        &dev,
        "dev-kill",
        "devices/dev-kill/cmd/#",
        5 + refused,
        10,
    );
    // At least once: command 0 comes again when the kill beat its acknowledgement to the queue,
    // and a retried publish may arrive twice; every one of 1..=5 must be there.
    let unique: std::collections::BTreeSet<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|m| *m != "devices/dev-kill/cmd/n 0")
        .collect();
    let want: Vec<String> = (1..=5)
        .map(|i| format!("devices/dev-kill/cmd/n {i}"))
        .collect();
    let want: std::collections::BTreeSet<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(unique, want, "{got:?}\n{}", c.cluster.log_tail(1, 30));
    // Its telemetry goes on through node 2.
    assert_published(publish(
        c,
        1,
        &dev,
        "dev-kill-pub",
        "devices/dev-kill/telemetry",
        "after",
    ));
    let seen = client_messages(&watch, QUIET * 3, 4);
    assert_eq!(
        seen,
        ["before-1", "before-2", "before-3", "after"]
            .map(|m| format!("devices/dev-kill/telemetry {m}"))
    );
    drop(device_sub);

    // The node comes back and rejoins; the cluster is whole again for the other tests.
    let t = std::time::Instant::now();
    c.cluster.restart(2).unwrap();
    eprintln!("node 3 rejoined in {:.1} s", t.elapsed().as_secs_f64());
    assert_published(publish(
        c,
        2,
        &dev,
        "dev-kill-pub",
        "devices/dev-kill/telemetry",
        "home",
    ));
    assert_eq!(
        client_messages(&watch, QUIET * 3, 1),
        vec!["devices/dev-kill/telemetry home"]
    );
}

/// `provision device revoke ID --apply` against the cluster (rabbitmqctl reaches the nodes
/// through the cluster's epmd and cookie): the CRL replaced in the nodes' hash dir, the user
/// deleted, which closes its open sessions on every node.
fn revoke_on_the_cluster(c: &SharedCluster, id: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--dir")
        .arg(c.pki.path())
        .args(["device", "revoke", id, "--apply"])
        .envs(c.cluster.ctl_env())
        .env("PROVISION_RABBITMQCTL", rabbitmq::RABBITMQCTL)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "device revoke --apply failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let crl = std::fs::read_dir(c.pki.path().join("broker/crl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "r0"))
        .expect("the CRL in hash-dir form");
    assert_eq!(
        std::fs::read(&crl).unwrap(),
        std::fs::read(c.pki.path().join("crl.pem")).unwrap(),
        "the nodes' CRL is not the new one"
    );
    for node in 0..3 {
        let users = c.cluster.ctl_ok(node, &["list_users", "-q"]).unwrap();
        assert!(
            !users
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id)),
            "{id} is still a user on node {node}:\n{users}"
        );
    }
}

#[test]
fn revoking_a_device_refuses_it_everywhere_and_cuts_its_open_session() {
    let c = cluster();
    let _g = c.read();
    let op = operator_sub(c, 0, &["dev-rev", "dev-rev2"]);
    let (client, mut conn) = broker_testkit::rumqttc_client(
        "dev-rev",
        c.cluster.mqtt_port(1),
        &c.pki.ca_cert(),
        &c.pki.device("dev-rev"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            let end = ev.is_err();
            if tx.send(ev.map_err(|e| e.to_string())).is_err() || end {
                break;
            }
        }
    });
    client
        .publish(
            "devices/dev-rev/telemetry",
            rumqttc::QoS::AtLeastOnce,
            false,
            "before",
        )
        .unwrap();
    assert_eq!(
        op.messages_until(QUIET * 3, 1),
        vec!["devices/dev-rev/telemetry before"]
    );
    while rx.try_recv().is_ok() {}

    let t = std::time::Instant::now();
    revoke_on_the_cluster(c, "dev-rev");
    // The open session is cut.
    let cut = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Err(e)) => break e,
            Ok(Ok(_)) => {}
            Err(_) => panic!("dev-rev's session stayed open 10 s after the revocation"),
        }
    };
    eprintln!(
        "session cut {:.2} s after revoke: {cut}",
        t.elapsed().as_secs_f64()
    );
    // New handshakes are refused by the CRL on every node.
    for node in 0..3 {
        let (ok, text) = s_client(c, node, Some(&c.pki.device("dev-rev")), &["-tls1_2"]);
        assert!(
            !ok && text.contains("certificate revoked"),
            "node {node}:\n{text}"
        );
    }
    // Another device is unaffected.
    assert_published(publish(
        c,
        2,
        &c.pki.device("dev-rev2"),
        "dev-rev2",
        "devices/dev-rev2/telemetry",
        "ok",
    ));
    assert_eq!(op.messages(QUIET), vec!["devices/dev-rev2/telemetry ok"]);
}
