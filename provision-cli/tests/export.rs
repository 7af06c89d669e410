//! `provision device export` checked by tools we did not write: OpenSSL reads the PEM and DER
//! files and computes the fingerprints; the host C++ compiler builds the Arduino header against
//! stand-ins of the ESP8266 core's BearSSL classes, and the program hands back what it holds.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use predicates::prelude::*;

fn provision(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("provision").unwrap();
    cmd.arg("--dir").arg(dir).env_remove("PROVISION_DIR");
    cmd
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = provision(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "provision {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn setup() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    ok(&d, &["init"]);
    ok(
        &d,
        &[
            "broker",
            "--host",
            "mqtt.test",
            "--ip",
            "127.0.0.1",
            "--port",
            "8884",
        ],
    );
    ok(&d, &["device", "add", "kitchen-1", "porch-2"]);
    t
}

fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Process::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The public key OpenSSL derives from a private key file, and from a certificate file.
fn key_pub(key: &Path, inform: &str) -> Vec<u8> {
    openssl(&["pkey", "-inform", inform, "-in", s(key), "-pubout"], None)
}
fn cert_pub(cert: &Path, inform: &str) -> Vec<u8> {
    openssl(
        &[
            "x509",
            "-inform",
            inform,
            "-in",
            s(cert),
            "-noout",
            "-pubkey",
        ],
        None,
    )
}

#[test]
fn pem_and_der_exports_are_what_openssl_reads() {
    let t = setup();
    let d = t.path().join("pki");
    let pem_dir = t.path().join("pem");
    let out = ok(
        &d,
        &[
            "device",
            "export",
            "kitchen-1",
            "--format",
            "pem",
            "-o",
            s(&pem_dir),
        ],
    );
    assert!(out.contains("0600"), "{out}");
    let (ca, crt, key) = (
        pem_dir.join("ca.crt"),
        pem_dir.join("kitchen-1.crt"),
        pem_dir.join("kitchen-1.key"),
    );
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&crt), 0o644);
    assert_eq!(
        fs::read(&key).unwrap(),
        fs::read(d.join("devices/kitchen-1/device.key")).unwrap()
    );
    let verified = openssl(&["verify", "-CAfile", s(&ca), s(&crt)], None);
    assert!(String::from_utf8_lossy(&verified).contains(": OK"));
    assert_eq!(key_pub(&key, "PEM"), cert_pub(&crt, "PEM"));

    let der_dir = t.path().join("der");
    ok(
        &d,
        &[
            "device",
            "export",
            "kitchen-1",
            "--format",
            "der",
            "-o",
            s(&der_dir),
        ],
    );
    let (ca_der, crt_der, key_der) = (
        der_dir.join("ca.der"),
        der_dir.join("kitchen-1.der"),
        der_dir.join("kitchen-1.key.der"),
    );
    assert_eq!(mode(&key_der), 0o600);
    // DER is the PEM's content: OpenSSL converts one into the other byte for byte.
    assert_eq!(
        openssl(&["x509", "-inform", "DER", "-in", s(&crt_der)], None),
        fs::read(&crt).unwrap()
    );
    assert_eq!(
        openssl(&["x509", "-inform", "DER", "-in", s(&ca_der)], None),
        fs::read(&ca).unwrap()
    );
    assert_eq!(key_pub(&key_der, "DER"), cert_pub(&crt_der, "DER"));
    let text = openssl(
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&key_der),
            "-noout",
            "-text",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&text).contains("prime256v1"));
}

#[test]
fn the_private_key_reaches_stdout_only_when_asked() {
    let t = setup();
    let d = t.path().join("pki");
    for format in ["pem", "arduino"] {
        provision(&d)
            .args([
                "device",
                "export",
                "kitchen-1",
                "--format",
                format,
                "-o",
                "-",
            ])
            .assert()
            .code(3)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains("--key-to-stdout"));
    }
    provision(&d)
        .args([
            "device",
            "export",
            "kitchen-1",
            "--format",
            "pem",
            "-o",
            "-",
            "--key-to-stdout",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("BEGIN PRIVATE KEY"));
    provision(&d)
        .args([
            "device",
            "export",
            "kitchen-1",
            "--format",
            "der",
            "-o",
            "-",
            "--key-to-stdout",
        ])
        .assert()
        .code(3);
    provision(&d)
        .args(["device", "export", "kitchen-1", "--format", "pem"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("-o is required"));
    provision(&d)
        .args([
            "device",
            "export",
            "kitchen-1",
            "--format",
            "p12",
            "-o",
            "x",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("pem, der, arduino, fingerprint"));
    // A revoked device's identity is not handed out.
    ok(&d, &["device", "revoke", "porch-2"]);
    provision(&d)
        .args(["device", "export", "porch-2", "--format", "pem", "-o"])
        .arg(t.path().join("x"))
        .assert()
        .code(4)
        .stderr(predicate::str::contains("revoked"));
    assert!(!t.path().join("x").exists());
}

/// `openssl x509 -fingerprint -<digest>` of `cert`, as "AB:CD:..".
fn openssl_fingerprint(cert: &Path, digest: &str) -> String {
    let out = openssl(
        &["x509", "-noout", "-fingerprint", digest, "-in", s(cert)],
        None,
    );
    let text = String::from_utf8(out).unwrap();
    text.trim().split_once('=').unwrap().1.to_string()
}

#[test]
fn fingerprints_match_openssl() {
    let t = setup();
    let d = t.path().join("pki");
    let cert = d.join("broker/server.crt");
    let out = provision(&d)
        .args([
            "device",
            "export",
            "kitchen-1",
            "--format",
            "fingerprint",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &r["fingerprints"];
    assert_eq!(f["sha1"], openssl_fingerprint(&cert, "-sha1"));
    assert_eq!(f["sha256"], openssl_fingerprint(&cert, "-sha256"));
    // SPKI SHA-256: the public key as DER, hashed (the pipeline HPKP and curl's --pinnedpubkey use).
    let spki_pem = cert_pub(&cert, "PEM");
    let spki_der = openssl(&["pkey", "-pubin", "-outform", "DER"], Some(&spki_pem));
    let digest = openssl(&["dgst", "-sha256", "-hex", "-c"], Some(&spki_der));
    let digest = String::from_utf8(digest).unwrap();
    let hex = digest.trim().rsplit(' ').next().unwrap().to_uppercase();
    assert_eq!(f["spki_sha256"], hex);
    assert_eq!(hex.len(), 32 * 3 - 1);

    let text = ok(
        &d,
        &["device", "export", "kitchen-1", "--format", "fingerprint"],
    );
    assert!(
        text.contains(&openssl_fingerprint(&cert, "-sha1")),
        "{text}"
    );
    // Renewing with the same key keeps the SPKI pin and changes the certificate fingerprints.
    ok(&d, &["broker", "renew", "--keep-key"]);
    let again = ok(
        &d,
        &["device", "export", "kitchen-1", "--format", "fingerprint"],
    );
    assert!(again.contains(&hex) && !again.contains(f["sha256"].as_str().unwrap()));
    provision(&d)
        .args([
            "device",
            "export",
            "kitchen-1",
            "--format",
            "fingerprint",
            "-o",
            "x",
        ])
        .assert()
        .code(3);
}

/// The host C++ compiler; CI installs g++. Missing, the test fails: it must not pass silently.
fn cxx() -> String {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let found = Process::new(&cxx).arg("--version").output();
    assert!(
        matches!(found, Ok(ref o) if o.status.success()),
        "the Arduino export test needs a C++ compiler: install g++ (apt-get install g++) or set CXX"
    );
    cxx
}

#[test]
fn arduino_header_compiles_against_bearssl_types_and_carries_the_identity() {
    let t = setup();
    let d = t.path().join("pki");
    let work = t.path().join("sketch");
    fs::create_dir(&work).unwrap();
    let header = work.join("identity.h");
    ok(
        &d,
        &[
            "device",
            "export",
            "kitchen-1",
            "--format",
            "arduino",
            "-o",
            s(&header),
        ],
    );
    assert_eq!(mode(&header), 0o600);
    let text = fs::read_to_string(&header).unwrap();
    assert!(text.contains("PROGMEM"), "{text}");
    assert!(text.contains("BearSSL::X509List") && text.contains("BearSSL::PrivateKey"));

    let stub = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/arduino-stub");
    let exe = work.join("identity-check");
    let out = Process::new(cxx())
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-I",
        ])
        .arg(&stub)
        .arg("-I")
        .arg(&work)
        .arg(stub.join("main.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the header does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ca, crt, key) = (
        work.join("ca.pem"),
        work.join("crt.pem"),
        work.join("key.pem"),
    );
    let run = Process::new(&exe).args([&ca, &crt, &key]).output().unwrap();
    assert!(run.status.success(), "{run:?}");
    let line = String::from_utf8(run.stdout).unwrap();
    // BR_KEYTYPE_SIGN (0x20) for an ECDSA client key, BR_KEYTYPE_EC (2) for our EC CA.
    assert_eq!(
        line.trim(),
        "id=kitchen-1 prefix=devices/kitchen-1/ host=mqtt.test port=8884 usages=32 issuer=2 \
         endpoints=mqtt.test:8884"
    );
    // What the compiled program holds is exactly our files, and OpenSSL accepts it.
    assert_eq!(
        fs::read(&ca).unwrap(),
        fs::read(d.join("ca/ca.crt")).unwrap()
    );
    assert_eq!(
        fs::read(&crt).unwrap(),
        fs::read(d.join("devices/kitchen-1/device.crt")).unwrap()
    );
    assert_eq!(
        fs::read(&key).unwrap(),
        fs::read(d.join("devices/kitchen-1/device.key")).unwrap()
    );
    let verified = openssl(&["verify", "-CAfile", s(&ca), s(&crt)], None);
    assert!(String::from_utf8_lossy(&verified).contains(": OK"));
    assert_eq!(key_pub(&key, "PEM"), cert_pub(&crt, "PEM"));

    // A cluster: every node, in the order the device's config blob lists them.
    let nodes = [("n1.test", 8883), ("n2.test", 8884), ("10.0.0.3", 8885)];
    let mut args = vec!["broker", "--engine", "rabbitmq"];
    let specs: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, (h, p))| format!("rabbit-{}={h}:{p}", i + 1))
        .collect();
    for spec in &specs {
        args.extend(["--node", spec]);
    }
    ok(&d, &args);
    fs::remove_file(&header).unwrap();
    ok(
        &d,
        &[
            "device",
            "export",
            "kitchen-1",
            "--format",
            "arduino",
            "-o",
            s(&header),
        ],
    );
    let out = Process::new(cxx())
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-I",
        ])
        .arg(&stub)
        .arg("-I")
        .arg(&work)
        .arg(stub.join("main.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Process::new(&exe).args([&ca, &crt, &key]).output().unwrap();
    let line = String::from_utf8(run.stdout).unwrap();
    let start = wire_format::device_config::crc32(b"kitchen-1") as usize % nodes.len();
    let order: Vec<String> = (0..nodes.len())
        .map(|k| {
            let (h, p) = nodes[(start + k) % nodes.len()];
            format!("{h}:{p}")
        })
        .collect();
    let (first_host, first_port) = nodes[start];
    assert!(
        line.trim().ends_with(&format!(
            "host={first_host} port={first_port} usages=32 issuer=2 endpoints={}",
            order.join(",")
        )),
        "{line}"
    );
}

#[test]
fn the_sketch_in_the_docs_builds_and_uses_the_devices_topics() {
    let t = setup();
    let d = t.path().join("pki");
    let work = t.path().join("sketch");
    fs::create_dir(&work).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join("../docs/other-firmwares.md")).unwrap();
    let start = doc
        .find("```cpp\n#include <ESP8266WiFi.h>")
        .expect("the sketch in docs/other-firmwares.md")
        + "```cpp\n".len();
    let sketch = &doc[start..start + doc[start..].find("```").unwrap()];
    fs::write(work.join("sketch.cpp"), sketch).unwrap();
    ok(
        &d,
        &[
            "device",
            "export",
            "kitchen-1",
            "--format",
            "arduino",
            "-o",
            s(&work.join("provision_identity.h")),
        ],
    );
    let stub = root.join("tests/arduino-stub");
    let exe = work.join("sketch");
    let out = Process::new(cxx())
        .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(&stub)
        .arg("-I")
        .arg(&work)
        .arg(work.join("sketch.cpp"))
        .arg(stub.join("sketch_main.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the documented sketch does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Process::new(&exe).output().unwrap();
    assert!(run.status.success(), "{run:?}");
    // What it asks of the broker fits the ACL of docs/topics.md.
    assert_eq!(
        String::from_utf8(run.stdout).unwrap(),
        "server mqtt.test 8884\n\
         connect kitchen-1 will devices/kitchen-1/status 1 1 offline\n\
         publish devices/kitchen-1/status online 1\n\
         subscribe devices/kitchen-1/cmd/# 1\n"
    );
}
