//! The real `provision` binary: help, happy paths, bad input, and that failures change nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn provision(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("provision").unwrap();
    cmd.arg("--dir").arg(dir).env_remove("PROVISION_DIR");
    cmd
}

fn initialized() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path()).arg("init").assert().success();
    dir
}

/// Every file under `dir` with its bytes, for "nothing changed" checks.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `openssl verify -crl_check` of `<dir>/<cert>` against our CA and CRL: (valid, output).
fn openssl_verify(dir: &Path, cert: &str) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(dir.join("ca/ca.crt"))
        .arg("-CRLfile")
        .arg(dir.join("crl.pem"))
        .arg(dir.join(cert))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// What `openssl <args> -in <file>` prints.
fn openssl_show(args: &[&str], file: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn help_lists_commands_and_examples() {
    Command::cargo_bin("provision")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("init"))
        .stdout(predicate::str::contains("broker"))
        .stdout(predicate::str::contains("device"))
        .stdout(predicate::str::contains("Examples:"));
    for sub in [
        &["init", "--help"][..],
        &["broker", "--help"],
        &["device", "--help"],
        &["device", "add", "--help"],
        &["device", "list", "--help"],
        &["device", "show", "--help"],
        &["device", "revoke", "--help"],
        &["device", "config", "--help"],
        &["device", "renew", "--help"],
        &["device", "export", "--help"],
        &["broker", "renew", "--help"],
        &["operator", "--help"],
        &["operator", "renew", "--help"],
        &["status", "--help"],
        &["completions", "--help"],
        &["man", "--help"],
        &["ota", "--help"],
        &["ota", "keygen", "--help"],
        &["ota", "build", "--help"],
        &["ota", "verify", "--help"],
        &["ota", "inspect", "--help"],
        &["ota", "attach-signature", "--help"],
        &["ota", "push", "--help"],
        &["ota", "status", "--help"],
        &["watch", "--help"],
        &["cmd", "--help"],
    ] {
        Command::cargo_bin("provision")
            .unwrap()
            .args(sub)
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"));
    }
}

#[test]
fn init_writes_ca_operator_crl_and_registry_with_safe_modes() {
    let dir = initialized();
    let d = dir.path();
    for f in [
        "ca/ca.crt",
        "operator/operator.crt",
        "crl.pem",
        "registry/registry.json",
    ] {
        assert_eq!(mode(&d.join(f)), 0o644, "{f}");
    }
    for f in ["ca/ca.key", "operator/operator.key"] {
        assert_eq!(mode(&d.join(f)), 0o600, "{f}");
    }
    // Checked by OpenSSL, not by us: the operator chains to the CA, the CRL is signed by it.
    let (ok, text) = openssl_verify(d, "operator/operator.crt");
    assert!(ok, "{text}");
    let ca_text = openssl_show(&["x509", "-noout", "-text"], &d.join("ca/ca.crt"));
    assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign, CRL Sign"), "{ca_text}");
    assert!(ca_text.contains("prime256v1"), "{ca_text}");
}

#[test]
fn init_refuses_to_overwrite_and_force_keeps_a_backup() {
    let dir = initialized();
    let before = snapshot(dir.path());
    provision(dir.path())
        .arg("init")
        .assert()
        .code(4)
        .stderr(predicate::str::contains("a CA already exists"));
    assert_eq!(snapshot(dir.path()), before);

    let old_ca = fs::read(dir.path().join("ca/ca.crt")).unwrap();
    provision(dir.path())
        .args(["init", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains("previous CA moved to"));
    let backup = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("backup-")
        })
        .expect("backup dir");
    assert_eq!(fs::read(backup.join("ca/ca.crt")).unwrap(), old_ca);
    assert_ne!(fs::read(dir.path().join("ca/ca.crt")).unwrap(), old_ca);
}

#[test]
fn bad_device_ids_are_refused_before_anything_is_written() {
    let dir = initialized();
    let before = snapshot(dir.path());
    let long = "a".repeat(64);
    for bad in [
        "+",
        "#",
        "a/b",
        "$SYS",
        "Upper",
        "",
        long.as_str(),
        "-lead",
        "a b",
    ] {
        provision(dir.path())
            .args(["device", "add", "--", "good-1", bad])
            .assert()
            .code(3)
            .stderr(predicate::str::contains("invalid device id"));
        assert_eq!(snapshot(dir.path()), before, "after {bad:?}");
    }
    provision(dir.path())
        .args(["device", "add", "twice", "twice"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("given twice"));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn device_add_list_show_revoke() {
    let dir = initialized();
    let d = dir.path();
    provision(d)
        .args(["device", "add", "kitchen-1", "porch-2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("added kitchen-1"));
    assert_eq!(mode(&d.join("devices/kitchen-1/device.key")), 0o600);
    // Keys are never printed.
    provision(d)
        .args(["device", "add", "garage-3"])
        .assert()
        .success()
        .stdout(predicate::str::contains("PRIVATE KEY").not());
    provision(d)
        .args(["device", "add", "kitchen-1"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("already exists"));

    let out = provision(d)
        .args(["device", "list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["garage-3", "kitchen-1", "porch-2"]);
    let serial = list[1]["serial"].as_str().unwrap().to_string();
    assert_eq!(serial.len(), 32);
    // The registry's serial is the certificate's, as OpenSSL reads it.
    let x = openssl_show(
        &["x509", "-noout", "-serial"],
        &d.join("devices/kitchen-1/device.crt"),
    );
    assert_eq!(x.trim(), format!("serial={serial}"));

    provision(d)
        .args(["device", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kitchen-1").and(predicate::str::contains("active")));
    provision(d)
        .args(["device", "show", "porch-2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("status:     active"));
    provision(d)
        .args(["device", "show", "nobody"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("unknown device"));

    let crl_before = fs::read(d.join("crl.pem")).unwrap();
    provision(d)
        .args(["device", "revoke", "kitchen-1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("CRL number 2"))
        .stdout(predicate::str::contains("kill -HUP"));
    assert_ne!(fs::read(d.join("crl.pem")).unwrap(), crl_before);
    provision(d)
        .args(["device", "revoke", "kitchen-1"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("already revoked"));
    provision(d)
        .args(["device", "show", "kitchen-1", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"revoked\""));
    // OpenSSL agrees: revoked one fails, the other passes.
    let (ok, text) = openssl_verify(d, "devices/kitchen-1/device.crt");
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = openssl_verify(d, "devices/porch-2/device.crt");
    assert!(ok, "{text}");
    // The CRL number keeps increasing.
    provision(d)
        .args(["device", "revoke", "porch-2"])
        .assert()
        .success();
    let crl = openssl_show(&["crl", "-noout", "-crlnumber"], &d.join("crl.pem"));
    assert_eq!(crl.trim(), "crlNumber=0x03");
}

#[test]
fn a_bad_reload_option_is_refused_before_the_revocation_is_written() {
    let dir = initialized();
    let d = dir.path();
    provision(d)
        .args(["device", "add", "porch-1"])
        .assert()
        .success();
    let before = snapshot(d);
    for bad in [
        &["--reload-pid", "0"][..],
        &["--reload-pid=-1"],
        &["--reload-pid", "x"],
        &["--reload-cmd", ""],
    ] {
        provision(d)
            .args(["device", "revoke", "porch-1"])
            .args(bad)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--reload-"));
        assert_eq!(snapshot(d), before, "{bad:?} changed the directory");
    }
    provision(d)
        .args(["device", "show", "porch-1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("status:     active"));
}

#[test]
fn a_failed_reload_says_the_revocation_stands_and_what_to_run() {
    let dir = initialized();
    let d = dir.path();
    provision(d)
        .args(["device", "add", "porch-1", "porch-2"])
        .assert()
        .success();
    // Above any pid_max: no such process.
    provision(d)
        .args(["device", "revoke", "porch-1", "--reload-pid", "2147483647"])
        .assert()
        .code(8)
        .stderr(predicate::str::contains(
            "revocation of porch-1 is recorded",
        ))
        .stderr(predicate::str::contains("kill -HUP"))
        .stderr(predicate::str::contains("sending SIGHUP to pid 2147483647"));
    provision(d)
        .args(["device", "revoke", "porch-2", "--reload-cmd", "exit 3"])
        .assert()
        .code(8)
        .stderr(predicate::str::contains("\"exit 3\" exited with"));
    for id in ["porch-1", "porch-2"] {
        provision(d)
            .args(["device", "show", id])
            .assert()
            .success()
            .stdout(predicate::str::contains("status:     revoked"));
    }
}

#[test]
fn bulk_add_from_file() {
    let dir = initialized();
    let list = dir.path().join("ids.txt");
    fs::write(&list, "# porch\nporch-1\n\nporch-2  # second\n").unwrap();
    provision(dir.path())
        .args(["device", "add", "--from-file"])
        .arg(&list)
        .assert()
        .success()
        .stdout(predicate::str::contains("2 devices added"));
    fs::write(&list, "ok-1\nBAD\n").unwrap();
    let before = snapshot(dir.path());
    provision(dir.path())
        .args(["device", "add", "--from-file"])
        .arg(&list)
        .assert()
        .code(3);
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn commands_before_init_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path())
        .args(["device", "add", "x"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("provision init"));
    provision(dir.path())
        .args(["broker", "--host", "h"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("provision init"));
}

#[test]
fn a_failing_command_does_not_create_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("not yet");
    for (args, code) in [
        (&["device", "list"][..], 4),
        (&["device", "add", "x"], 4),
        (&["device", "revoke", "x"], 4),
        (&["broker", "--host", "h"], 4),
        (&["ota", "keygen"], 4),
        (&["init", "--days", "0"], 3),
        (&["init", "--ca-name", " "], 3),
    ] {
        provision(&d).args(args).assert().code(code);
        assert!(!d.exists(), "{args:?} created {}", d.display());
    }
    // The same directory name works once init succeeds.
    provision(&d).arg("init").assert().success();
    assert!(d.join("registry/registry.json").is_file());
}

#[test]
fn corrupt_registry_is_reported_and_nothing_is_overwritten() {
    let dir = initialized();
    // A device file listing an id no device may have.
    let shard = dir.path().join("registry/devices-00.json");
    fs::write(
        &shard,
        r#"{"devices": {"BAD/ID": {"status": "active", "serial": "01", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"}}}"#,
    )
    .unwrap();
    let before = snapshot(dir.path());
    provision(dir.path())
        .args(["device", "add", "fine-1"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("devices-00.json is corrupt"));
    assert_eq!(snapshot(dir.path()), before);
    fs::remove_file(&shard).unwrap();
    let reg = dir.path().join("registry/registry.json");
    fs::write(&reg, "this is [not json").unwrap();
    let before = snapshot(dir.path());
    for args in [
        &["device", "list"][..],
        &["device", "add", "fine-1"],
        &["device", "revoke", "fine-1"],
        &["broker", "--host", "h"],
        &["ota", "keygen"],
    ] {
        provision(dir.path())
            .args(args)
            .assert()
            .code(5)
            .stderr(predicate::str::contains("registry.json is corrupt"));
        assert_eq!(snapshot(dir.path()), before, "{args:?}");
    }
}

#[test]
fn a_crl_number_at_its_maximum_is_refused_not_wrapped() {
    let dir = initialized();
    let d = dir.path();
    provision(d)
        .args(["device", "add", "porch-1"])
        .assert()
        .success();
    let reg = d.join("registry/registry.json");
    let text = fs::read_to_string(&reg).unwrap();
    assert!(text.contains("\"crl_number\": 1,\n"), "{text}");
    fs::write(
        &reg,
        text.replace(
            "\"crl_number\": 1,\n",
            "\"crl_number\": 18446744073709551615,\n",
        ),
    )
    .unwrap();
    let before = snapshot(d);
    provision(d)
        .args(["device", "revoke", "porch-1"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "crl_number 18446744073709551615 cannot go up any more",
        ));
    assert_eq!(snapshot(d), before);
}

#[test]
fn broker_writes_a_hardened_config() {
    let dir = initialized();
    let d = dir.path();
    provision(d)
        .args([
            "broker",
            "--host",
            "mqtt.home.lan",
            "--host",
            "router",
            "--ip",
            "192.168.1.1",
        ])
        .args([
            "--install-dir",
            "/etc/mosquitto/provision",
            "--port",
            "8883",
        ])
        .assert()
        .success();
    let conf = fs::read_to_string(d.join("broker/mosquitto.conf")).unwrap();
    for line in [
        "listener 8883\n",
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.2",
        "acl_file /etc/mosquitto/provision/acl",
        "crlfile /etc/mosquitto/provision/crl.pem",
        "keyfile /etc/mosquitto/provision/server.key",
        "ciphers ECDHE-ECDSA-AES128-GCM-SHA256:",
    ] {
        assert!(conf.contains(line), "missing {line:?} in\n{conf}");
    }
    assert_eq!(
        conf.lines().filter(|l| l.starts_with("listener ")).count(),
        1,
        "exactly one listener"
    );
    let suites = conf.lines().find(|l| l.starts_with("ciphers ")).unwrap();
    for suite in suites["ciphers ".len()..].split(':') {
        assert!(suite.starts_with("ECDHE-"), "no forward secrecy: {suite}");
        assert!(
            suite.contains("GCM") || suite.contains("CHACHA20-POLY1305"),
            "not AEAD: {suite}"
        );
    }
    let key_mode = mode(&d.join("broker/server.key"));
    assert!(key_mode == 0o600 || key_mode == 0o640, "{key_mode:o}");
    let text = openssl_show(
        &["x509", "-noout", "-ext", "subjectAltName,extendedKeyUsage"],
        &d.join("broker/server.crt"),
    );
    assert!(
        text.contains("DNS:mqtt.home.lan, DNS:router, IP Address:192.168.1.1"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");

    for bad in [
        &["broker", "--host", "bad host"][..],
        &["broker", "--host", "a/b"],
        &["broker", "--host", "192.168.1.1"],
        &["broker", "--host", "ok", "--install-dir", "relative/dir"],
        &["broker", "--host", "ok", "--port", "0"],
        // No quoting in mosquitto.conf: a line break would start a new directive.
        &[
            "broker",
            "--host",
            "ok",
            "--install-dir",
            "/etc/a\nrequire_certificate false",
        ],
    ] {
        let before = snapshot(d);
        provision(d).args(bad).assert().code(3);
        assert_eq!(snapshot(d), before, "{bad:?}");
    }
    provision(d)
        .args(["broker", "--host", "ok", "--ip", "not-an-ip"])
        .assert()
        .code(2);
}

#[test]
fn dir_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("provision")
        .unwrap()
        .env("PROVISION_DIR", dir.path())
        .arg("init")
        .assert()
        .success();
    assert!(dir.path().join("registry/registry.json").exists());
}

#[test]
fn a_failure_halfway_through_a_bulk_add_leaves_the_directory_as_it_was() {
    let dir = initialized();
    // A file where the third device's directory must go makes staging fail after two devices
    // were already generated and staged.
    fs::create_dir_all(dir.path().join("devices")).unwrap();
    fs::write(dir.path().join("devices/dev-3"), b"in the way").unwrap();
    let before = snapshot(dir.path());
    provision(dir.path())
        .args(["device", "add", "dev-1", "dev-2", "dev-3", "dev-4"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("devices/dev-3"));
    assert_eq!(snapshot(dir.path()), before);
    assert!(!dir.path().join("devices/dev-1").exists());
}

#[test]
fn an_output_given_as_a_bare_file_name_lands_in_the_current_directory() {
    let dir = initialized();
    provision(dir.path())
        .args(["broker", "--host", "localhost"])
        .assert()
        .success();
    provision(dir.path())
        .args(["device", "add", "d1"])
        .assert()
        .success();
    let cwd = tempfile::tempdir().unwrap();
    provision(dir.path())
        .current_dir(cwd.path())
        .args([
            "device",
            "config",
            "d1",
            "--wifi-ssid",
            "net",
            "-o",
            "d1.bin",
        ])
        .assert()
        .success();
    assert_eq!(mode(&cwd.path().join("d1.bin")), 0o600);
}

#[test]
fn init_force_keeps_the_ota_signing_keys() {
    let dir = initialized();
    provision(dir.path())
        .args(["ota", "keygen"])
        .assert()
        .success();
    let keys = |d: &std::path::Path| -> Vec<(u32, String)> {
        let reg = provision::store::read_registry(d).unwrap().unwrap();
        reg.ota_keys
            .iter()
            .map(|k| (k.key_id, k.public_key.clone()))
            .collect()
    };
    let before = keys(dir.path());
    assert_eq!(before.len(), 1);
    provision(dir.path())
        .args(["init", "--force"])
        .assert()
        .success();
    assert_eq!(keys(dir.path()), before);
    // Outputs go beside the provisioning directory: provision refuses `-o` inside it.
    let out = tempfile::tempdir().unwrap();
    let image = out.path().join("fw.bin");
    fs::write(&image, b"firmware").unwrap();
    provision(dir.path())
        .args(["ota", "build"])
        .arg(&image)
        .args(["--version", "1.0.0", "--target", "esp8266", "-o"])
        .arg(out.path().join("fw.ota"))
        .assert()
        .success();

    // Over an unreadable registry the key files say which keys exist.
    provision(dir.path())
        .args(["ota", "keygen", "--key-id", "7"])
        .assert()
        .success();
    let before = keys(dir.path());
    let reg_path = dir.path().join("registry/registry.json");
    fs::write(&reg_path, "broken [").unwrap();
    // A FIFO named like a key is skipped at once, not waited on.
    let fifo = dir.path().join("ota/key-9.pem");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    provision(dir.path())
        .args(["init", "--force"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .success();
    fs::remove_file(&fifo).unwrap();
    let after = keys(dir.path());
    assert_eq!(before.len(), 2);
    assert_eq!(after, before, "keys lost");
    provision(dir.path())
        .args(["ota", "build"])
        .arg(&image)
        .args([
            "--version",
            "1.0.1",
            "--target",
            "esp8266",
            "--key-id",
            "1",
            "-o",
        ])
        .arg(out.path().join("fw.ota"))
        .assert()
        .success();
}
