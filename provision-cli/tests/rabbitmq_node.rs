//! One real RabbitMQ node run unchanged from the files `provision broker --engine rabbitmq`
//! wrote (free loopback ports, started and stopped by the test), with clients no one here wrote
//! (mosquitto_pub/sub, openssl): the certificate is the identity, the ACL holds, and `device
//! add|revoke --apply` and `operator add --apply` keep the node in step.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use broker_testkit::rabbitmq::{Cluster, NodeFiles};
use broker_testkit::{free_port, Identity, MosquittoSub, Pki};

struct Node {
    pki: Pki,
    cluster: Cluster,
    port: u16,
}

fn provision(dir: &Path, cluster: Option<&Cluster>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provision"));
    cmd.arg("--dir").arg(dir).args(args).stdin(Stdio::null());
    if let Some(c) = cluster {
        // The script itself: /usr/sbin/rabbitmqctl would switch to user rabbitmq and its cookie.
        cmd.envs(c.ctl_env()).env(
            "PROVISION_RABBITMQCTL",
            broker_testkit::rabbitmq::RABBITMQCTL,
        );
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start() -> Node {
    let pki = Pki::new(&["dev-a", "dev-b", "dev-with-a-rather-long-id-of-40-chars-xy"]);
    let port = free_port();
    ok(provision(
        pki.path(),
        None,
        &[
            "broker",
            "--engine",
            "rabbitmq",
            "--host",
            "localhost",
            "--node",
            &format!("rabbit-1=127.0.0.1:{port}"),
        ],
    ));
    let cluster = Cluster::start(&[NodeFiles {
        name: "rabbit-1".into(),
        mqtt_port: port,
        conf_dir: pki.path().join("broker/nodes/rabbit-1"),
    }])
    .unwrap_or_else(|e| panic!("the RabbitMQ node did not start:\n{e}"));
    Node { pki, cluster, port }
}

impl Node {
    fn args(&self, who: &Identity, id: &str) -> Vec<String> {
        vec![
            "-h".into(),
            "localhost".into(),
            "-p".into(),
            self.port.to_string(),
            "--cafile".into(),
            self.pki.ca_cert().display().to_string(),
            "--cert".into(),
            who.cert.display().to_string(),
            "--key".into(),
            who.key.display().to_string(),
            "-i".into(),
            id.into(),
            "-V".into(),
            "mqttv311".into(),
        ]
    }

    fn publish(&self, who: &Identity, id: &str, topic: &str, msg: &str) -> Output {
        Command::new("mosquitto_pub")
            .args(self.args(who, id))
            .args(["-q", "1", "-t", topic, "-m", msg])
            .stdin(Stdio::null())
            .output()
            .expect("mosquitto_pub (apt-get install mosquitto-clients)")
    }

    fn subscribe(&self, who: &Identity, id: &str, topic: &str) -> MosquittoSub {
        let mut a = self.args(who, id);
        a.extend(["-q".into(), "1".into(), "-t".into(), topic.into()]);
        MosquittoSub::start(&a, || self.cluster.log_tail(0, 30))
    }

    /// A subscription the broker must refuse: no message, the connection closed.
    fn refused_subscription(&self, who: &Identity, id: &str, topic: &str) -> bool {
        let out = Command::new("mosquitto_sub")
            .args(self.args(who, id))
            .args(["-q", "1", "-t", topic, "-W", "3", "-C", "1", "-v"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        !out.status.success() && out.stdout.is_empty()
    }

    fn users(&self) -> Vec<String> {
        let text = self.cluster.ctl_ok(0, &["list_users", "-q", "-s"]).unwrap();
        let mut users: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        users.sort();
        users
    }

    fn handshake(&self, who: &Identity) -> (bool, String) {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{}", self.port)])
            .args(["-tls1_2", "-CAfile"])
            .arg(self.pki.ca_cert())
            .arg("-cert")
            .arg(&who.cert)
            .arg("-key")
            .arg(&who.key)
            .stdin(Stdio::piped())
            .output()
            .expect("openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            text.contains("Verify return code: 0") && !text.contains("alert"),
            text,
        )
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn one_node_from_the_generated_files() {
    let n = start();
    let pki = &n.pki;
    let long = "dev-with-a-rather-long-id-of-40-chars-xy";
    // Users from definitions.json: the operator and every device, no guest.
    assert_eq!(n.users(), ["_operator", "dev-a", "dev-b", long]);

    // Allowed traffic flows: a device's telemetry reaches the operator, a command the device.
    // (A second connection with a client id in use would close the first: publishers take
    // their own.)
    let op = n.subscribe(&pki.operator(), "_operator-t1", "devices/+/telemetry");
    let a_cmd = n.subscribe(&pki.device("dev-a"), "dev-a", "devices/dev-a/cmd/#");
    assert!(n
        .publish(
            &pki.device("dev-a"),
            "dev-a-pub",
            "devices/dev-a/telemetry",
            "t1"
        )
        .status
        .success());
    assert!(n
        .publish(
            &pki.device(long),
            long,
            &format!("devices/{long}/telemetry"),
            "t2"
        )
        .status
        .success());
    assert!(n
        .publish(
            &pki.operator(),
            "_operator-c1",
            "devices/dev-a/cmd/reboot",
            "now"
        )
        .status
        .success());
    let mut got = op.messages_until(WAIT, 2);
    got.sort();
    assert_eq!(
        got,
        [
            "devices/dev-a/telemetry t1".to_string(),
            format!("devices/{long}/telemetry t2")
        ]
    );
    assert_eq!(
        a_cmd.messages_until(WAIT, 1),
        ["devices/dev-a/cmd/reboot now"]
    );

    // Refused: reading another device's commands, every device's telemetry; publishing into
    // another device's subtree (the message never arrives; RabbitMQ closes the connection).
    for topic in ["devices/dev-b/cmd/#", "devices/+/telemetry", "#"] {
        assert!(
            n.refused_subscription(&pki.device("dev-a"), "dev-a", topic),
            "dev-a subscribed to {topic}"
        );
    }
    let b_cmd = n.subscribe(&pki.device("dev-b"), "dev-b", "devices/dev-b/cmd/#");
    let _ = n.publish(
        &pki.device("dev-a"),
        "dev-a-pub",
        "devices/dev-b/cmd/reboot",
        "evil",
    );
    let _ = n.publish(
        &pki.device("dev-a"),
        "dev-a-pub",
        "devices/dev-b/telemetry",
        "fake",
    );
    assert!(b_cmd.messages(Duration::from_secs(2)).is_empty());
    assert!(op.messages(Duration::from_secs(1)).is_empty());
    // A device taking another's client id gets none of its session queue.
    assert!(n.refused_subscription(&pki.device("dev-a"), "dev-b", "devices/dev-a/cmd/#"));

    // device add --apply: the new device can connect at once.
    let out = ok(provision(
        pki.path(),
        Some(&n.cluster),
        &["device", "add", "dev-c", "--apply"],
    ));
    assert!(out.contains("ran: "), "{out}");
    let c = pki.device("dev-c");
    let mut published = false;
    for _ in 0..20 {
        // The import is asynchronous: give it a moment.
        if n.publish(&c, "dev-c", "devices/dev-c/telemetry", "hi")
            .status
            .success()
        {
            published = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        published,
        "dev-c could not publish after device add --apply"
    );
    assert!(n.users().contains(&"dev-c".to_string()));

    // operator add --apply: a second operator tool.
    ok(provision(
        pki.path(),
        Some(&n.cluster),
        &["operator", "add", "_ops", "--apply"],
    ));
    let ops = Identity {
        cert: pki.path().join("operator/_ops.crt"),
        key: pki.path().join("operator/_ops.key"),
    };
    let ops_sub = n.subscribe(&ops, "_ops-1", "devices/dev-c/telemetry");
    assert!(n
        .publish(&c, "dev-c-pub", "devices/dev-c/telemetry", "x")
        .status
        .success());
    assert_eq!(
        ops_sub.messages_until(WAIT, 1),
        ["devices/dev-c/telemetry x"]
    );

    // device revoke --apply: the open session is cut, new handshakes are refused.
    let (_client, mut conn) = broker_testkit::rumqttc_client("dev-c", n.port, &pki.ca_cert(), &c);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            let end = ev.is_err();
            if tx.send(ev.map_err(|e| e.to_string())).is_err() || end {
                break;
            }
        }
    });
    // Connected first.
    loop {
        match rx.recv_timeout(WAIT) {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("dev-c did not connect: {other:?}"),
        }
    }
    let t = std::time::Instant::now();
    let out = ok(provision(
        pki.path(),
        Some(&n.cluster),
        &["device", "revoke", "dev-c", "--apply"],
    ));
    assert!(out.contains("delete_user dev-c"), "{out}");
    let cut = loop {
        match rx.recv_timeout(WAIT) {
            Ok(Err(e)) => break e,
            Ok(Ok(_)) => {}
            Err(_) => panic!("dev-c's session stayed open after revoke --apply"),
        }
    };
    eprintln!(
        "revoke --apply cut the open session {:.2} s after it started ({cut})",
        t.elapsed().as_secs_f64()
    );
    let (accepted, text) = n.handshake(&c);
    assert!(!accepted && text.contains("revoked"), "{text}");
    assert!(!n.users().contains(&"dev-c".to_string()));
    assert!(n.handshake(&pki.device("dev-a")).0);

    // --apply that cannot reach the node: a clear error with the command to run, and the
    // revocation stays recorded.
    let out = provision(
        pki.path(),
        Some(&n.cluster),
        &[
            "device",
            "revoke",
            "dev-b",
            "--apply",
            "-n",
            "nosuch@localhost",
        ],
    );
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rabbitmqctl -n nosuch@localhost delete_user dev-b") && err.contains("run:"),
        "{err}"
    );
    let show = ok(provision(pki.path(), None, &["device", "show", "dev-b"]));
    assert!(show.contains("revoked"), "{show}");
    assert!(!n.handshake(&pki.device("dev-b")).0);
}
