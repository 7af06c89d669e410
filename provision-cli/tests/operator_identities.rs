//! `provision operator add` and the broker's tie of client id to identity
//! (`use_username_as_clientid`), against a real Mosquitto with mosquitto_pub/sub.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use broker_testkit::{mosquitto_client_args, Broker, Identity, MosquittoSub, Pki};

fn provision(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("provision").unwrap();
    cmd.arg("--dir").arg(dir);
    cmd
}

fn identity(pki: &Pki, name: &str) -> Identity {
    Identity {
        cert: pki.path().join(format!("operator/{name}.crt")),
        key: pki.path().join(format!("operator/{name}.key")),
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with(".lock") {
                out.push((p.display().to_string(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn operator_add_writes_a_private_key_a_record_and_an_acl_block_all_or_nothing() {
    let pki = Pki::new(&["dev-a"]);
    provision(pki.path())
        .args(["broker", "--host", "localhost"])
        .assert()
        .success();
    provision(pki.path())
        .args(["operator", "add", "_ops-ci"])
        .assert()
        .success();
    let id = identity(&pki, "_ops-ci");
    let mode = fs::metadata(&id.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(&id.cert)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&subject.stdout).contains("CN = _ops-ci"));
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(pki.ca_cert())
        .arg(&id.cert)
        .output()
        .unwrap();
    assert!(verify.status.success());
    let registry = fs::read_to_string(pki.path().join("registry/registry.json")).unwrap();
    let registry: serde_json::Value = serde_json::from_str(&registry).unwrap();
    assert!(
        registry["operators"]["_ops-ci"]["serial"].is_string(),
        "{registry}"
    );
    let acl = fs::read_to_string(pki.path().join("broker/acl")).unwrap();
    assert!(
        acl.contains("user _operator\ntopic read devices/+/telemetry")
            && acl.contains("user _ops-ci\ntopic read devices/+/telemetry"),
        "{acl}"
    );

    // Refusals change nothing: an existing name, a name a device could have, a bad name.
    let before = snapshot(pki.path());
    for (name, code) in [
        ("_ops-ci", 3),
        ("_operator", 3),
        ("dev-b", 3),
        ("_Ops", 3),
        ("_a/b", 3),
        ("_", 3),
    ] {
        provision(pki.path())
            .args(["operator", "add", name])
            .assert()
            .code(code);
    }
    assert_eq!(snapshot(pki.path()), before);
}

fn sub(pki: &Pki, broker: &Broker, who: &Identity, extra: &[&str]) -> MosquittoSub {
    let mut args = mosquitto_client_args(pki, broker, Some(who));
    args.extend(extra.iter().map(|s| s.to_string()));
    MosquittoSub::start(&args, || broker.log())
}

fn publish(pki: &Pki, broker: &Broker, who: &Identity, extra: &[&str]) -> std::process::Output {
    Command::new("mosquitto_pub")
        .args(mosquitto_client_args(pki, broker, Some(who)))
        .args(["-q", "1"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_added_operator_follows_the_fleet_next_to_the_first_one() {
    let pki = Pki::new(&["dev-a"]);
    provision::operator::add(pki.path(), "_ops-ci", 30).unwrap();
    provision::operator::add(pki.path(), "_ops-cmd", 30).unwrap();
    let broker = Broker::start(&pki);
    let ci = identity(&pki, "_ops-ci");
    let commander = identity(&pki, "_ops-cmd");
    // Both operators connected at once, each under its own identity.
    let first = sub(
        &pki,
        &broker,
        &pki.operator(),
        &["-t", "devices/+/telemetry"],
    );
    let second = sub(&pki, &broker, &ci, &["-t", "devices/+/telemetry"]);
    let out = publish(
        &pki,
        &broker,
        &pki.device("dev-a"),
        &["-t", "devices/dev-a/telemetry", "-m", "t=1"],
    );
    assert!(out.status.success());
    let wait = Duration::from_secs(2);
    assert_eq!(first.messages(wait), vec!["devices/dev-a/telemetry t=1"]);
    assert_eq!(second.messages(wait), vec!["devices/dev-a/telemetry t=1"]);

    // A third one commands the device.
    let dev_cmd = sub(
        &pki,
        &broker,
        &pki.device("dev-a"),
        &["-t", "devices/dev-a/cmd/#"],
    );
    let out = publish(
        &pki,
        &broker,
        &commander,
        &["-t", "devices/dev-a/cmd/led", "-m", "on"],
    );
    assert!(out.status.success());
    assert_eq!(dev_cmd.messages(wait), vec!["devices/dev-a/cmd/led on"]);
    // Still an operator, not a device: it cannot fake a device's telemetry.
    publish(
        &pki,
        &broker,
        &commander,
        &["-t", "devices/dev-a/telemetry", "-m", "forged"],
    );
    assert!(first.messages(wait).is_empty());
    assert!(broker.log().contains("as _ops-ci ("), "{}", broker.log());
}

/// A device's session belongs to its certificate: another identity (a neighbour, an operator,
/// any other certificate of our CA) that connects with the device's client id gets its own
/// session instead of closing the device's and taking its queued messages.
#[test]
fn another_identity_cannot_take_over_a_devices_session() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    provision::operator::add(pki.path(), "_ops-ci", 30).unwrap();
    let broker = Broker::start(&pki);
    let conf = fs::read_to_string(pki.path().join("broker/mosquitto.conf")).unwrap();
    assert!(conf.contains("\nuse_username_as_clientid true\n"), "{conf}");

    // dev-a: a persistent QoS 1 session, as the firmware keeps it.
    let dev_a = sub(
        &pki,
        &broker,
        &pki.device("dev-a"),
        &["-c", "-i", "dev-a", "-q", "1", "-t", "devices/dev-a/cmd/#"],
    );
    // Others connect claiming dev-a's client id, persistent too.
    let intruders = [pki.device("dev-b"), identity(&pki, "_ops-ci")];
    let _held: Vec<MosquittoSub> = intruders
        .iter()
        .map(|who| {
            sub(
                &pki,
                &broker,
                who,
                &["-c", "-i", "dev-a", "-q", "1", "-t", "devices/dev-a/cmd/#"],
            )
        })
        .collect();
    let out = publish(
        &pki,
        &broker,
        &pki.operator(),
        &["-t", "devices/dev-a/cmd/led", "-m", "on"],
    );
    assert!(out.status.success());
    assert_eq!(
        dev_a.messages(Duration::from_secs(2)),
        vec!["devices/dev-a/cmd/led on"],
        "{}",
        broker.log()
    );
    let log = broker.log();
    assert!(!log.contains("already connected"), "{log}");
    assert!(
        log.contains("as dev-b (") && log.contains("as _ops-ci ("),
        "the broker did not give the intruders their own ids:\n{log}"
    );
}
