//! The operator client over a broker with several endpoints (the nodes of a cluster): it takes
//! them in the registry's order, fails over past a closed port, a peer that is not TLS and a
//! broker killed with SIGKILL, moves to the next endpoint when its connection drops, and names
//! every endpoint it tried when none works. Real Mosquittos (two processes serving the same
//! PKI, as two nodes would) and mosquitto_pub as the device.
//!
//! The registry's broker is given several endpoints through the library (as `provision broker
//! --engine rabbitmq --node ...` records them), pointing at the Mosquittos and at dead ports.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_testkit::{free_port, mosquitto_client_args, Broker, Pki};
use provision::registry::{Engine, NodeRecord};
use provision::store::Store;

fn provision(pki: &Pki, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--dir")
        .arg(pki.path())
        .args(args)
        .env_remove("PROVISION_DIR")
        .env_remove("PROVISION_BROKER")
        .env_remove("PROVISION_OPERATOR")
        .stdin(Stdio::null())
        .output()
        .expect("provision runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Records `endpoints` (host, port) as the broker's nodes, in this order.
fn set_endpoints(pki: &Pki, endpoints: &[(&str, u16)]) {
    let store = Store::open(pki.path()).unwrap();
    let mut registry = store.registry().unwrap();
    let b = registry.broker.as_mut().expect("provision broker ran");
    b.engine = Engine::Rabbitmq;
    b.nodes = endpoints
        .iter()
        .enumerate()
        .map(|(i, (host, port))| NodeRecord {
            name: format!("rabbit-{}", i + 1),
            host: host.to_string(),
            port: *port,
        })
        .collect();
    let mut tx = store.transaction();
    store.stage_registry(&mut tx, &registry).unwrap();
    tx.commit().unwrap();
    drop(store); // lets go of the directory's lock
    assert_eq!(
        Store::open_read(pki.path())
            .unwrap()
            .registry()
            .unwrap()
            .broker
            .unwrap()
            .endpoints()
            .len(),
        endpoints.len()
    );
}

/// A second Mosquitto with the same configuration (same certificate, ACL and CRL) on another
/// port: a second node serving the same PKI.
fn second_broker(pki: &Pki, first: &Broker) -> Broker {
    let conf = std::fs::read_to_string(pki.path().join("broker/mosquitto.conf")).unwrap();
    let from = format!("listener {} 127.0.0.1", first.port());
    assert!(conf.contains(&from), "{conf}");
    for _ in 0..5 {
        let port = free_port();
        let path = pki.path().join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &path,
            conf.replace(&from, &format!("listener {port} 127.0.0.1")),
        )
        .unwrap();
        match Broker::start_config(path, port, pki.path().join(format!("mosquitto-{port}.log"))) {
            Ok(b) => return b,
            Err(log) if log.contains("Address already in use") => continue,
            Err(log) => panic!("second mosquitto did not start:\n{log}"),
        }
    }
    panic!("no free port for the second mosquitto");
}

/// mosquitto_pub as device `id` to the broker listening on `broker`.
fn publish(pki: &Pki, broker: &Broker, id: &str, suffix: &str, msg: &str, retain: bool) {
    let mut args = mosquitto_client_args(pki, broker, Some(&pki.device(id)));
    args.extend([
        "-q".into(),
        "1".into(),
        "-t".into(),
        format!("devices/{id}/{suffix}"),
    ]);
    args.extend(["-m".into(), msg.into()]);
    if retain {
        args.push("-r".into());
    }
    let out = Command::new("mosquitto_pub").args(&args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A TCP peer that is not a broker: it answers every connection with a line of HTTP and closes.
fn not_tls() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        }
    });
    port
}

#[test]
fn the_client_skips_dead_endpoints_in_order_and_names_every_one_when_all_fail() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    publish(&pki, &broker, "dev-a", "status", "online", true);
    let closed = free_port();
    let garbage = not_tls();

    // A closed port, then a peer that is not TLS, then the broker.
    set_endpoints(
        &pki,
        &[
            ("127.0.0.1", closed),
            ("127.0.0.1", garbage),
            ("localhost", broker.port()),
        ],
    );
    let out = provision(&pki, &["watch", "dev-a", "--count", "1"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("watching on localhost:{}", broker.port())),
        "{stderr}"
    );
    assert!(stdout.contains("online"), "{stdout}");
    // The same for the other commands: ota status asks through the endpoint that works.
    let out = provision(
        &pki,
        &["ota", "status", "dev-a", "--timeout", "0.5", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Every endpoint dead: one error naming each with its own reason, typed as unreachable.
    let closed2 = free_port();
    set_endpoints(
        &pki,
        &[
            ("127.0.0.1", closed),
            ("127.0.0.1", garbage),
            ("localhost", closed2),
        ],
    );
    let out = provision(&pki, &["watch", "dev-a", "--count", "1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{stderr}");
    for endpoint in [
        format!("127.0.0.1:{closed}"),
        format!("127.0.0.1:{garbage}"),
        format!("localhost:{closed2}"),
    ] {
        assert_eq!(
            stderr.matches(&endpoint).count(),
            2,
            "{endpoint} is listed, then given its reason: {stderr}"
        );
    }
    assert!(stderr.contains("every endpoint failed"), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");

    // --broker still names exactly one endpoint, and fails as that one does.
    let out = provision(
        &pki,
        &[
            "watch",
            "--broker",
            &format!("localhost:{}", broker.port()),
            "--count",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `provision watch` running in the background, its stderr lines on a channel.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: mpsc::Receiver<String>,
}

impl Watch {
    fn start(pki: &Pki) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_provision"))
            .arg("--dir")
            .arg(pki.path())
            .args(["watch", "dev-a"])
            .env_remove("PROVISION_BROKER")
            .env_remove("PROVISION_OPERATOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
            rx
        };
        let lines = pipe(Box::new(child.stderr.take().unwrap()));
        let stdout = pipe(Box::new(child.stdout.take().unwrap()));
        Watch {
            child,
            lines,
            stdout,
        }
    }

    fn expect(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("no {needle:?} from watch; got:\n{}", seen.join("\n"));
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_node_killed_with_sigkill_is_left_for_the_next_endpoint() {
    let pki = Pki::new(&["dev-a"]);
    let mut first = Broker::start(&pki);
    let second = second_broker(&pki, &first);
    set_endpoints(
        &pki,
        &[("localhost", first.port()), ("127.0.0.1", second.port())],
    );

    let watch = Watch::start(&pki);
    let mut seen = Vec::new();
    Watch::expect(
        &watch.lines,
        &format!("watching on localhost:{}", first.port()),
        &mut seen,
    );
    first.kill();
    Watch::expect(&watch.lines, "connection lost", &mut seen);
    Watch::expect(
        &watch.lines,
        &format!("reconnected to 127.0.0.1:{}", second.port()),
        &mut seen,
    );
    // Subscribed again there: what the device publishes on the second node arrives.
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        publish(&pki, &second, "dev-a", "telemetry", r#"{"seq":7}"#, false);
        if let Ok(l) = watch.stdout.recv_timeout(Duration::from_millis(500)) {
            out.push(l.clone());
            if l.contains("telemetry seq=7") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{:?}\n{}",
            out.last(),
            seen.join("\n")
        );
    }
    drop(watch);

    // A fresh command with the killed node first in the list goes straight to the next one.
    let out = provision(
        &pki,
        &["ota", "status", "dev-a", "--timeout", "0.5", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log: PathBuf = pki.path().join(format!("mosquitto-{}.log", second.port()));
    let served = std::fs::read_to_string(log).unwrap();
    assert!(
        served.matches("u'_operator'").count() >= 2,
        "the watch and ota status both connected to the second node:\n{served}"
    );
}

/// What a fresh operator subscription to `devices/+/status` gets from `broker`'s retained store.
fn retained_statuses(pki: &Pki, broker: &Broker) -> Vec<String> {
    let mut args = mosquitto_client_args(pki, broker, Some(&pki.operator()));
    args.extend(["-t".into(), "devices/+/status".into()]);
    let sub = broker_testkit::MosquittoSub::start(&args, || broker.log());
    let mut got = sub.messages(Duration::from_secs(1));
    got.sort();
    got
}

/// Each node keeps its own retained messages: the revoked device's `online` is cleared at every
/// endpoint, and an endpoint that is down is reported as such while the others are cleared.
#[test]
fn a_revoked_devices_retained_status_is_cleared_at_every_endpoint() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let first = Broker::start(&pki);
    let mut second = second_broker(&pki, &first);
    for b in [&first, &second] {
        publish(&pki, b, "dev-b", "status", "online", true);
        publish(&pki, b, "dev-a", "status", "online", true);
    }
    provision::device::revoke(pki.path(), "dev-b").unwrap();
    first.reload();
    second.reload();
    set_endpoints(
        &pki,
        &[("localhost", first.port()), ("127.0.0.1", second.port())],
    );
    let opts = provision::client::ConnectOptions::new(pki.path());
    let results =
        provision::retained_status::clear_status(&opts, "dev-b", Duration::from_secs(5)).unwrap();
    let summary: Vec<(String, bool)> = results
        .iter()
        .map(|(a, r)| (a.to_string(), matches!(r, Ok(true))))
        .collect();
    assert_eq!(
        summary,
        [
            (format!("localhost:{}", first.port()), true),
            (format!("127.0.0.1:{}", second.port()), true)
        ]
    );
    for b in [&first, &second] {
        assert_eq!(retained_statuses(&pki, b), ["devices/dev-a/status online"]);
    }
    // The commands for doing it by hand: one per endpoint.
    let commands =
        provision::retained_status::clear_status_commands(pki.path(), "dev-b", "_operator", None);
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[1].contains(&format!("-h 127.0.0.1 -p {}", second.port())));

    // With the second node down: the first is cleared (again: nothing left there), the second
    // reported.
    second.kill();
    let results =
        provision::retained_status::clear_status(&opts, "dev-b", Duration::from_secs(5)).unwrap();
    assert!(matches!(results[0].1, Ok(true)), "{:?}", results[0].1);
    let err = results[1].1.as_ref().expect_err("the second node is down");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", second.port())),
        "{err}"
    );
    assert_eq!(
        retained_statuses(&pki, &first),
        ["devices/dev-a/status online"]
    );
}
