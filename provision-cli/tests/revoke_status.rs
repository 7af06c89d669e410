//! `provision device revoke` clears the revoked device's retained `status` (its own Last Will is
//! denied by the ACL, so a retained `online` would otherwise stay forever), against a real
//! Mosquitto, checked with mosquitto_sub.

use std::process::Command;
use std::time::Duration;

use broker_testkit::{mosquitto_client_args, Broker, MosquittoSub, Pki};

fn retain_status(pki: &Pki, broker: &Broker, id: &str, status: &str) {
    let out = Command::new("mosquitto_pub")
        .args(mosquitto_client_args(pki, broker, Some(&pki.device(id))))
        .args([
            "-q",
            "1",
            "-r",
            "-t",
            &format!("devices/{id}/status"),
            "-m",
            status,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a new operator subscription to every status gets from the retained store.
fn retained_statuses(pki: &Pki, broker: &Broker) -> Vec<String> {
    let mut args = mosquitto_client_args(pki, broker, Some(&pki.operator()));
    args.extend(["-t".into(), "devices/+/status".into()]);
    let sub = MosquittoSub::start(&args, || broker.log());
    let mut got = sub.messages(Duration::from_secs(1));
    got.sort();
    got
}

fn revoke(pki: &Pki, extra: &[&str]) -> (String, String) {
    let out = assert_cmd::Command::cargo_bin("provision")
        .unwrap()
        .arg("--dir")
        .arg(pki.path())
        .args(["device", "revoke", "dev-b"])
        .args(extra)
        .env_remove("PROVISION_OPERATOR")
        .env_remove("PROVISION_BROKER")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn revoke_with_a_reload_clears_the_revoked_devices_retained_status() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let broker = Broker::start(&pki);
    retain_status(&pki, &broker, "dev-a", "online");
    retain_status(&pki, &broker, "dev-b", "online");
    assert_eq!(
        retained_statuses(&pki, &broker),
        ["devices/dev-a/status online", "devices/dev-b/status online"]
    );

    let pid = broker.pid().to_string();
    let (stdout, stderr) = revoke(&pki, &["--reload-pid", &pid]);
    assert!(
        stdout.contains("cleared its retained status (devices/dev-b/status)"),
        "{stdout}{stderr}"
    );
    // Only the active device's status is left; the operator's ACL still lets it write no other
    // device's status.
    assert_eq!(
        retained_statuses(&pki, &broker),
        ["devices/dev-a/status online"]
    );
    let acl = std::fs::read_to_string(pki.path().join("broker/acl")).unwrap();
    assert!(acl.contains("topic write devices/dev-b/status\n"), "{acl}");
    assert!(!acl.contains("topic write devices/dev-a/status"), "{acl}");
}

#[test]
fn revoke_without_a_reload_prints_the_command_that_clears_it() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let broker = Broker::start(&pki);
    retain_status(&pki, &broker, "dev-b", "online");

    let (stdout, _) = revoke(&pki, &[]);
    let command = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("mosquitto_pub "))
        .unwrap_or_else(|| panic!("no command in:\n{stdout}"))
        .trim()
        .to_string();
    broker.reload();
    // The reload alone leaves it retained: the device's Last Will cannot replace it any more.
    assert_eq!(
        retained_statuses(&pki, &broker),
        ["devices/dev-b/status online"]
    );
    let out = Command::new("sh").arg("-c").arg(&command).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(retained_statuses(&pki, &broker).is_empty());
}

#[test]
fn an_unreachable_broker_leaves_the_revocation_recorded_and_prints_the_command() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let broker = Broker::start(&pki);
    let pid = broker.pid().to_string();
    let closed = format!("localhost:{}", broker_testkit::free_port());
    let (stdout, stderr) = revoke(&pki, &["--reload-pid", &pid, "--broker", &closed]);
    assert!(stdout.contains("revoked dev-b"), "{stdout}");
    assert!(
        stderr.contains("could not clear its retained status")
            && stderr.contains("mosquitto_pub -h localhost")
            && stderr.contains("-r -n -t devices/dev-b/status"),
        "{stderr}"
    );
}

#[test]
fn a_bad_broker_or_unknown_operator_is_refused_before_anything_is_revoked() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let registry = || std::fs::read(pki.path().join("registry/registry.json")).unwrap();
    let crl = || std::fs::read(pki.path().join("crl.pem")).unwrap();
    let (registry_before, crl_before) = (registry(), crl());
    for (extra, says) in [
        (["--broker", "localhost"], "--broker \"localhost\": no port"),
        (
            ["--operator", "_nobody"],
            "--operator _nobody: no such operator",
        ),
    ] {
        let out = assert_cmd::Command::cargo_bin("provision")
            .unwrap()
            .arg("--dir")
            .arg(pki.path())
            .args(["device", "revoke", "dev-b"])
            .args(extra)
            .env_remove("PROVISION_OPERATOR")
            .env_remove("PROVISION_BROKER")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{extra:?}: {stderr}");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
        assert_eq!(registry(), registry_before, "{extra:?}: registry changed");
        assert_eq!(crl(), crl_before, "{extra:?}: CRL changed");
    }
}
