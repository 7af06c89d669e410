//! Renewals against a real Mosquitto started from the config `provision broker` wrote, checked
//! with mosquitto_pub and openssl s_client: a renewed device connects with its new identity; the
//! previous one works while `--keep-old` keeps it and is refused once revoked; a renewed broker
//! certificate is what clients see after a restart; a renewed operator's old identity is refused.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use broker_testkit::{mosquitto_client_args, Broker, Identity, Pki};

fn publish(pki: &Pki, broker: &Broker, who: &Identity, topic: &str) -> Output {
    Command::new("mosquitto_pub")
        .args(mosquitto_client_args(pki, broker, Some(who)))
        .args(["-q", "1", "-t", topic, "-m", "hello"])
        .output()
        .expect("mosquitto_pub")
}

fn connects(pki: &Pki, broker: &Broker, who: &Identity, topic: &str) -> bool {
    publish(pki, broker, who, topic).status.success()
}

/// A copy of `id`'s files, as a device in the field still holds them.
fn keep_copy(id: &Identity, dir: &Path, name: &str) -> Identity {
    let copy = Identity {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    fs::copy(&id.cert, &copy.cert).unwrap();
    fs::copy(&id.key, &copy.key).unwrap();
    copy
}

/// The serial of the certificate the broker presents, as `openssl s_client` receives it.
fn served_serial(pki: &Pki, broker: &Broker) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", broker.port()))
        .arg("-CAfile")
        .arg(pki.ca_cert())
        .args([
            "-verify_return_error",
            "-servername",
            "localhost",
            "-showcerts",
        ])
        .arg("-cert")
        .arg(pki.device("dev-1").cert)
        .arg("-key")
        .arg(pki.device("dev-1").key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Verification: OK"), "{text}");
    let start = text.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let pem = &text[start..end];
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let raw = cert.raw_serial_as_string().replace(':', "").to_uppercase();
    raw.strip_prefix("00").unwrap_or(&raw).to_string()
}

#[test]
fn a_renewed_device_connects_and_its_old_identity_is_refused_once_revoked() {
    let pki = Pki::new(&["dev-1"]);
    let broker = Broker::start(&pki);
    let topic = "devices/dev-1/telemetry";
    let old = keep_copy(&pki.device("dev-1"), pki.path(), "old");
    assert!(connects(&pki, &broker, &old, topic));

    // --keep-old: both identities work until the old one is revoked.
    let r = provision::renew::device(pki.path(), "dev-1", 30, true).unwrap();
    assert!(!r.previous_revoked);
    broker.reload();
    assert!(connects(&pki, &broker, &pki.device("dev-1"), topic));
    assert!(
        connects(&pki, &broker, &old, topic),
        "--keep-old must keep it"
    );

    provision::device::revoke_previous(pki.path(), "dev-1").unwrap();
    broker.reload();
    let refused = publish(&pki, &broker, &old, topic);
    assert!(
        !refused.status.success(),
        "the revoked identity still connects"
    );
    assert!(connects(&pki, &broker, &pki.device("dev-1"), topic));

    // A plain renewal revokes at once.
    let before = keep_copy(&pki.device("dev-1"), pki.path(), "before");
    provision::renew::device(pki.path(), "dev-1", 30, false).unwrap();
    broker.reload();
    assert!(!connects(&pki, &broker, &before, topic));
    assert!(connects(&pki, &broker, &pki.device("dev-1"), topic));
}

#[test]
fn a_renewed_broker_and_operator_work_after_a_restart() {
    let pki = Pki::new(&["dev-1"]);
    let mut broker = Broker::start(&pki);
    let first = served_serial(&pki, &broker);
    let r = provision::renew::broker(pki.path(), 30, false).unwrap();
    assert_eq!(r.previous_serial, first);
    broker.restart();
    assert_eq!(served_serial(&pki, &broker), r.serial);
    assert!(connects(
        &pki,
        &broker,
        &pki.device("dev-1"),
        "devices/dev-1/telemetry"
    ));

    let old_operator = keep_copy(&pki.operator(), pki.path(), "old-operator");
    provision::renew::operator(pki.path(), "_operator", 30).unwrap();
    broker.reload();
    let cmd = "devices/dev-1/cmd/reboot";
    assert!(connects(&pki, &broker, &pki.operator(), cmd));
    assert!(!connects(&pki, &broker, &old_operator, cmd));
}
