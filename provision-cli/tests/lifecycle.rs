//! Certificate lifecycle through the real binary: `status`, renewals, `device add --replace`,
//! checked with OpenSSL (verify against the CRL, -checkend for expiry).

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

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = provision(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "provision {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok(dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// A directory with a CA, a broker and the given devices.
fn provisioned(devices: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    ok(d, &["broker", "--host", "mqtt.test", "--ip", "127.0.0.1"]);
    if !devices.is_empty() {
        let mut args = vec!["device", "add"];
        args.extend(devices);
        ok(d, &args);
    }
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

fn openssl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `openssl verify -crl_check` of `cert` against `<dir>`'s CA and CRL.
fn verify(dir: &Path, cert: &Path) -> (bool, String) {
    let ca = dir.join("ca/ca.crt");
    let crl = dir.join("crl.pem");
    openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        ca.to_str().unwrap(),
        "-CRLfile",
        crl.to_str().unwrap(),
        cert.to_str().unwrap(),
    ])
}

/// OpenSSL's own view: does `cert` expire within `days`?
fn expires_within(cert: &Path, days: u32) -> bool {
    let secs = (u64::from(days) * 86_400).to_string();
    let (valid_that_long, _) = openssl(&[
        "x509",
        "-noout",
        "-checkend",
        &secs,
        "-in",
        cert.to_str().unwrap(),
    ]);
    !valid_that_long
}

fn pubkey(cert: &Path) -> String {
    let (ok, out) = openssl(&["x509", "-noout", "-pubkey", "-in", cert.to_str().unwrap()]);
    assert!(ok, "{out}");
    out
}

#[test]
fn status_exits_10_when_a_certificate_expires_within_warn_days() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init", "--operator-days", "400"]);
    ok(d, &["broker", "--host", "mqtt.test", "--days", "20"]);
    ok(d, &["device", "add", "long-lived"]);
    ok(d, &["device", "add", "short-lived", "--days", "5"]);

    provision(d)
        .arg("status")
        .assert()
        .code(10)
        .stdout(predicate::str::contains("short-lived"))
        .stdout(predicate::str::contains("expiring"))
        .stdout(predicate::str::contains(
            "2 certificate(s) expire within 30 days",
        ));

    // The JSON agrees with OpenSSL's -checkend on every certificate file.
    let out = provision(d).args(["status", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(10));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = report["entries"].as_array().unwrap();
    let kinds: Vec<_> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["ca", "broker", "operator", "device", "device", "crl"]
    );
    // The CRL's next update as OpenSSL reads it (past it, Mosquitto refuses every client).
    let crl = d.join("crl.pem");
    let (ok_crl, next) = openssl(&["crl", "-noout", "-nextupdate", "-in", crl.to_str().unwrap()]);
    assert!(ok_crl, "{next}");
    let next = next.trim().trim_start_matches("nextUpdate=").to_string();
    let crl_entry = &entries[5];
    let ours = time::OffsetDateTime::parse(
        crl_entry["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let fmt = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    assert_eq!(ours.format(&fmt).unwrap(), next);
    assert_eq!(crl_entry["state"], "ok");
    let files = [
        d.join("ca/ca.crt"),
        d.join("broker/server.crt"),
        d.join("operator/operator.crt"),
        d.join("devices/long-lived/device.crt"),
        d.join("devices/short-lived/device.crt"),
    ];
    for (e, file) in entries.iter().zip(&files) {
        let expiring = e["state"] == "expiring";
        assert_eq!(expiring, expires_within(file, 30), "{e}");
        let (ok, serial) = openssl(&["x509", "-noout", "-serial", "-in", file.to_str().unwrap()]);
        assert!(ok);
        assert_eq!(
            serial.trim(),
            format!("serial={}", e["serial"].as_str().unwrap())
        );
    }
    let short = &entries[4];
    assert_eq!(short["name"], "short-lived");
    assert!(
        (4..=5).contains(&short["days_left"].as_i64().unwrap()),
        "{short}"
    );
    assert_eq!(report["attention"], 2);

    // A narrower window: only the device is due.
    provision(d)
        .args(["status", "--warn-days", "10"])
        .assert()
        .code(10)
        .stdout(predicate::str::contains("1 certificate(s)"));
    provision(d)
        .args(["status", "--warn-days", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing expires within 3 days"));

    // Renewing what is due clears it; a revoked device never counts.
    ok(d, &["broker", "renew"]);
    provision(d).arg("status").assert().code(10);
    ok(d, &["device", "revoke", "short-lived"]);
    provision(d)
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("revoked"));
    assert!(!expires_within(&d.join("broker/server.crt"), 30));
}

#[test]
fn a_missing_ca_names_the_absolute_directory_and_how_to_point_elsewhere() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["status"][..],
        &["device", "list"],
        &["device", "renew", "x"],
        &["broker", "renew"],
        &["operator", "renew"],
    ] {
        let mut cmd = Command::cargo_bin("provision").unwrap();
        cmd.current_dir(cwd.path())
            .env_remove("PROVISION_DIR")
            .args(args)
            .assert()
            .code(4)
            .stderr(predicate::str::contains(format!(
                "no CA in {}",
                cwd.path().join("certs").display()
            )))
            .stderr(predicate::str::contains("--dir"))
            .stderr(predicate::str::contains("PROVISION_DIR"));
    }
    // An empty but initialized directory says which one it is.
    let empty = cwd.path().join("other");
    ok(&empty, &["init"]);
    let mut cmd = Command::cargo_bin("provision").unwrap();
    cmd.current_dir(cwd.path())
        .env("PROVISION_DIR", "other")
        .args(["device", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "no devices in {}",
            empty.display()
        )));
    // Nothing was created where it looked.
    assert!(!cwd.path().join("certs").exists());
}

#[test]
fn device_renew_revokes_the_previous_certificate() {
    let dir = provisioned(&["kitchen-1", "porch-2"]);
    let d = dir.path();
    let cert = d.join("devices/kitchen-1/device.crt");
    let key = d.join("devices/kitchen-1/device.key");
    let old_cert = d.join("old.crt");
    fs::copy(&cert, &old_cert).unwrap();
    let old_key = fs::read(&key).unwrap();

    let r = json(
        d,
        &["device", "renew", "kitchen-1", "--days", "90", "--json"],
    );
    assert_eq!(r["subject"], "kitchen-1");
    assert_eq!(r["previous_revoked"], true);
    assert_eq!(r["crl_number"], 2);
    assert_ne!(r["serial"], r["previous_serial"]);
    // New key, 0600; the old certificate is on the CRL (OpenSSL says so), the new one valid.
    assert_ne!(fs::read(&key).unwrap(), old_key);
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (valid, text) = verify(d, &old_cert);
    assert!(!valid && text.contains("certificate revoked"), "{text}");
    let (valid, text) = verify(d, &cert);
    assert!(valid, "{text}");
    assert!(expires_within(&cert, 91) && !expires_within(&cert, 89));
    // The broker folder's CRL is the new one too; the other device is untouched.
    assert_eq!(
        fs::read(d.join("crl.pem")).unwrap(),
        fs::read(d.join("broker/crl.pem")).unwrap()
    );
    let (valid, text) = verify(d, &d.join("devices/porch-2/device.crt"));
    assert!(valid, "{text}");
    let show = json(d, &["device", "show", "kitchen-1", "--json"]);
    assert_eq!(show["serial"], r["serial"]);
    assert_eq!(show["status"], "active");

    // The config blob can be written again for the renewed identity.
    provision(d)
        .args(["device", "config", "kitchen-1", "--wifi-ssid", "lab", "-o"])
        .arg(d.join("kitchen.bin"))
        .assert()
        .success();

    // Refusals change nothing.
    let before = snapshot(d);
    provision(d)
        .args(["device", "renew", "nobody"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("unknown device"));
    provision(d)
        .args(["device", "renew", "Bad+Id"])
        .assert()
        .code(3);
    provision(d)
        .args(["device", "renew", "porch-2", "--days", "0"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--days"));
    ok(d, &["device", "revoke", "porch-2"]);
    let before_revoked = snapshot(d);
    assert_ne!(before, before_revoked);
    provision(d)
        .args(["device", "renew", "porch-2"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("--replace"));
    assert_eq!(snapshot(d), before_revoked);
}

#[test]
fn renew_keep_old_leaves_the_previous_certificate_valid_until_revoked() {
    let dir = provisioned(&["porch-1"]);
    let d = dir.path();
    let old_cert = d.join("old.crt");
    fs::copy(d.join("devices/porch-1/device.crt"), &old_cert).unwrap();
    let crl_before = fs::read(d.join("crl.pem")).unwrap();

    let out = ok(d, &["device", "renew", "porch-1", "--keep-old"]);
    assert!(
        out.contains("provision device revoke porch-1 --previous"),
        "{out}"
    );
    // Both certificates are valid: the device can still connect with the old one.
    assert_eq!(fs::read(d.join("crl.pem")).unwrap(), crl_before);
    for c in [&old_cert, &d.join("devices/porch-1/device.crt")] {
        let (valid, text) = verify(d, c);
        assert!(valid, "{text}");
    }
    let status = json(d, &["status", "--json"]);
    let previous: Vec<_> = status["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "previous")
        .collect();
    assert_eq!(previous.len(), 1);
    assert_eq!(previous[0]["name"], "porch-1");

    let r = json(d, &["device", "revoke", "porch-1", "--previous", "--json"]);
    assert_eq!(r["device"]["status"], "active");
    assert_eq!(r["serials"].as_array().unwrap().len(), 1);
    let (valid, text) = verify(d, &old_cert);
    assert!(!valid && text.contains("certificate revoked"), "{text}");
    let (valid, text) = verify(d, &d.join("devices/porch-1/device.crt"));
    assert!(valid, "{text}");
    provision(d)
        .args(["device", "revoke", "porch-1", "--previous"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no previous certificate"));

    // Renewing twice with --keep-old keeps only the latest previous one valid; revoking the
    // device revokes that too.
    let first = d.join("first.crt");
    fs::copy(d.join("devices/porch-1/device.crt"), &first).unwrap();
    ok(d, &["device", "renew", "porch-1", "--keep-old"]);
    let second = d.join("second.crt");
    fs::copy(d.join("devices/porch-1/device.crt"), &second).unwrap();
    ok(d, &["device", "renew", "porch-1", "--keep-old"]);
    assert!(!verify(d, &first).0);
    assert!(verify(d, &second).0);
    ok(d, &["device", "revoke", "porch-1"]);
    for c in [&first, &second, &d.join("devices/porch-1/device.crt")] {
        let (valid, text) = verify(d, c);
        assert!(!valid && text.contains("certificate revoked"), "{text}");
    }
}

#[test]
fn add_replace_issues_a_revoked_id_again_on_purpose() {
    let dir = provisioned(&["garage-3", "porch-1"]);
    let d = dir.path();
    let old_cert = d.join("old.crt");
    fs::copy(d.join("devices/garage-3/device.crt"), &old_cert).unwrap();

    // An active device is never replaced, with or without --replace.
    let before = snapshot(d);
    provision(d)
        .args(["device", "add", "--replace", "garage-3"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("is active"));
    assert_eq!(snapshot(d), before);

    ok(d, &["device", "revoke", "garage-3"]);
    let acl = fs::read_to_string(d.join("broker/acl")).unwrap();
    assert!(acl.contains("user garage-3\ntopic deny #"), "{acl}");
    let before = snapshot(d);
    provision(d)
        .args(["device", "add", "garage-3"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("device add --replace garage-3"));
    assert_eq!(snapshot(d), before);

    let added = json(
        d,
        &["device", "add", "--replace", "garage-3", "new-4", "--json"],
    );
    assert_eq!(added.as_array().unwrap().len(), 2);
    assert_eq!(added[0]["status"], "active");
    // The old certificate stays revoked; the new one is valid; the ACL no longer denies the id.
    let (valid, text) = verify(d, &old_cert);
    assert!(!valid && text.contains("certificate revoked"), "{text}");
    let (valid, text) = verify(d, &d.join("devices/garage-3/device.crt"));
    assert!(valid, "{text}");
    let acl = fs::read_to_string(d.join("broker/acl")).unwrap();
    assert!(!acl.contains("user garage-3"), "{acl}");
    let registry = provision::store::read_registry(d).unwrap().unwrap();
    assert!(
        registry.retired.iter().any(|r| r.subject == "garage-3"),
        "{registry:?}"
    );
}

#[test]
fn broker_renew_keeps_names_and_optionally_the_key() {
    let dir = provisioned(&[]);
    let d = dir.path();
    let crt = d.join("broker/server.crt");
    let old = d.join("old-server.crt");
    fs::copy(&crt, &old).unwrap();
    let conf = fs::read(d.join("broker/mosquitto.conf")).unwrap();
    let san = |c: &Path| {
        openssl(&[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            c.to_str().unwrap(),
        ])
        .1
    };

    let r = json(d, &["broker", "renew", "--keep-key", "--json"]);
    assert_eq!(r["key_kept"], true);
    assert_eq!(pubkey(&crt), pubkey(&old), "--keep-key kept the key");
    assert_eq!(san(&crt), san(&old));
    assert!(san(&crt).contains("DNS:mqtt.test") && san(&crt).contains("IP Address:127.0.0.1"));
    let (valid, text) = verify(d, &old);
    assert!(!valid && text.contains("certificate revoked"), "{text}");
    let (valid, text) = verify(d, &crt);
    assert!(valid, "{text}");
    assert_eq!(fs::read(d.join("broker/mosquitto.conf")).unwrap(), conf);
    // The key pair on disk matches the new certificate.
    let (ok_key, key_pub) = openssl(&[
        "pkey",
        "-pubout",
        "-in",
        d.join("broker/server.key").to_str().unwrap(),
    ]);
    assert!(ok_key);
    assert_eq!(key_pub, pubkey(&crt));

    let out = ok(d, &["broker", "renew"]);
    assert!(out.contains("--pin-broker"), "{out}");
    assert_ne!(pubkey(&crt), pubkey(&old));
    let (valid, text) = verify(d, &crt);
    assert!(valid, "{text}");

    // Configuring the broker again (say, for another name) revokes the certificate it replaces.
    let before = d.join("before-reconfigure.crt");
    fs::copy(&crt, &before).unwrap();
    ok(
        d,
        &["broker", "--host", "mqtt.test", "--host", "mqtt2.test"],
    );
    let (valid, text) = verify(d, &before);
    assert!(!valid && text.contains("certificate revoked"), "{text}");
    let (valid, text) = verify(d, &crt);
    assert!(valid, "{text}");
    assert_eq!(
        fs::read(d.join("crl.pem")).unwrap(),
        fs::read(d.join("broker/crl.pem")).unwrap()
    );

    // Without a broker there is nothing to renew.
    let bare = tempfile::tempdir().unwrap();
    ok(bare.path(), &["init"]);
    provision(bare.path())
        .args(["broker", "renew"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("provision broker --host"));
}

#[test]
fn operator_renew_revokes_the_previous_operator_certificate() {
    let dir = provisioned(&[]);
    let d = dir.path();
    let crt = d.join("operator/operator.crt");
    let old = d.join("old-operator.crt");
    fs::copy(&crt, &old).unwrap();
    let r = json(d, &["operator", "renew", "--days", "60", "--json"]);
    assert_eq!(r["subject"], "_operator");
    let (valid, text) = verify(d, &old);
    assert!(!valid && text.contains("certificate revoked"), "{text}");
    let (valid, text) = verify(d, &crt);
    assert!(valid, "{text}");
    let (_, subject) = openssl(&["x509", "-noout", "-subject", "-in", crt.to_str().unwrap()]);
    assert!(subject.contains("CN = _operator"), "{subject}");
    assert_eq!(
        fs::metadata(d.join("operator/operator.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    provision(d)
        .args(["operator", "renew", "_someone"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("unknown operator"));

    // An operator added later renews the same way, and `status` lists it.
    ok(d, &["operator", "add", "_ops-laptop", "--days", "10"]);
    let laptop = d.join("operator/_ops-laptop.crt");
    let old_laptop = d.join("old-laptop.crt");
    fs::copy(&laptop, &old_laptop).unwrap();
    provision(d)
        .args(["status", "--json"])
        .assert()
        .code(10)
        .stdout(predicate::str::contains("_ops-laptop"));
    let r = json(d, &["operator", "renew", "_ops-laptop", "--json"]);
    assert_eq!(r["cert"].as_str().unwrap(), laptop.to_str().unwrap());
    let (valid, text) = verify(d, &old_laptop);
    assert!(!valid && text.contains("certificate revoked"), "{text}");
    let (valid, text) = verify(d, &laptop);
    assert!(valid, "{text}");
    assert!(!expires_within(&laptop, 30));
    provision(d).arg("status").assert().success();
}

#[test]
fn json_output_is_the_only_thing_on_stdout() {
    let fresh = tempfile::tempdir().unwrap();
    let init = json(&fresh.path().join("pki"), &["init", "--json"]);
    assert_eq!(init["operator"]["serial"].as_str().unwrap().len(), 32);
    assert!(init["ca"]["name"].is_string() && init["backup"].is_null());
    assert!(Path::new(init["dir"].as_str().unwrap()).is_absolute());
    let dir = provisioned(&[]);
    let d = dir.path();
    let added = json(d, &["device", "add", "a-1", "--json"]);
    assert_eq!(added[0]["id"], "a-1");
    // revoke --json: the reload advice goes to stderr, stdout parses.
    let out = provision(d)
        .args(["device", "revoke", "a-1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["device"]["status"], "revoked");
    assert!(String::from_utf8_lossy(&out.stderr).contains("kill -HUP"));
    let b = json(
        d,
        &["broker", "--host", "mqtt.test", "--port", "8884", "--json"],
    );
    assert_eq!(b["port"], 8884);
    assert_eq!(b["hosts"][0], "mqtt.test");
}

#[test]
fn device_config_refuses_broker_names_the_certificate_does_not_carry() {
    let dir = provisioned(&["kitchen-1"]);
    let d = dir.path();
    let out = d.join("k.bin");
    let config = |host: &str| {
        let mut c = provision(d);
        c.args(["device", "config", "kitchen-1", "--wifi-ssid", "lab"])
            .args(["--broker-host", host, "-o"])
            .arg(&out);
        c
    };
    for bad in ["other.lan", "10.0.0.2", "::1", "mqtt"] {
        config(bad)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("is not in the broker certificate"))
            .stderr(predicate::str::contains("mqtt.test, 127.0.0.1"));
        assert!(!out.exists());
    }
    // DNS names compare case-insensitively, as TLS clients do.
    for good in ["mqtt.test", "MQTT.Test", "127.0.0.1"] {
        config(good).assert().success();
    }
    // After `provision broker` names another host, that one is accepted.
    ok(d, &["broker", "--host", "mqtt.test", "--host", "other.lan"]);
    config("other.lan").assert().success();
    config("127.0.0.1").assert().code(3);
}

#[test]
fn device_config_warns_when_the_blob_carries_no_ota_keys() {
    let dir = provisioned(&["kitchen-1"]);
    let d = dir.path();
    let out = d.join("k.bin");
    let config = || {
        let mut c = provision(d);
        c.args(["device", "config", "kitchen-1", "--wifi-ssid", "lab", "-o"])
            .arg(&out);
        c
    };
    config().assert().success().stderr(predicate::str::contains(
        "warning: kitchen-1: the blob carries no OTA keys",
    ));
    ok(d, &["ota", "keygen"]);
    config()
        .assert()
        .success()
        .stderr(predicate::str::contains("OTA").not());
}

#[test]
fn device_config_from_file_writes_every_blob_or_none() {
    use wire_format::device_config::DeviceConfig;
    let dir = provisioned(&["a-1", "b-2", "c-3"]);
    let d = dir.path();
    ok(d, &["ota", "keygen"]);
    let ids = d.join("ids.txt");
    fs::write(&ids, "# the porch\na-1\nb-2  # second\n\nc-3\n").unwrap();
    // Outside the provisioning directory: provision refuses to write into its own folders.
    let elsewhere = tempfile::tempdir().unwrap();
    let blobs = elsewhere.path().join("blobs");
    fs::create_dir(&blobs).unwrap();
    // The password comes from stdin once and serves every device.
    let out = provision(d)
        .args(["device", "config", "--from-file"])
        .arg(&ids)
        .arg("--out-dir")
        .arg(&blobs)
        .args([
            "--wifi-ssid",
            "lab",
            "--wifi-password-file",
            "/dev/stdin",
            "--json",
        ])
        .write_stdin("pass word\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 3);
    for id in ["a-1", "b-2", "c-3"] {
        let path = blobs.join(format!("{id}.bin"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let blob = fs::read(&path).unwrap();
        let cfg = DeviceConfig::parse(&blob).unwrap();
        assert_eq!(cfg.device_id, id);
        assert_eq!(cfg.wifi_password, "pass word");
        let cert = fs::read(d.join(format!("devices/{id}/device.crt"))).unwrap();
        let der = x509_parser::pem::parse_x509_pem(&cert).unwrap().1.contents;
        assert_eq!(cfg.client_cert_der, &der[..]);
    }

    // One unknown id: nothing is written.
    let fresh = elsewhere.path().join("fresh");
    fs::create_dir(&fresh).unwrap();
    fs::write(&ids, "a-1\nnobody\n").unwrap();
    provision(d)
        .args(["device", "config", "--from-file"])
        .arg(&ids)
        .arg("--out-dir")
        .arg(&fresh)
        .args(["--wifi-ssid", "lab"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("unknown device \"nobody\""));
    assert_eq!(fs::read_dir(&fresh).unwrap().count(), 0);
    // --from-file needs --out-dir, and excludes a single id.
    provision(d)
        .args(["device", "config", "--from-file"])
        .arg(&ids)
        .args(["--wifi-ssid", "lab"])
        .assert()
        .code(2);
    provision(d)
        .args(["device", "config", "a-1", "--from-file"])
        .arg(&ids)
        .arg("--out-dir")
        .arg(&fresh)
        .args(["--wifi-ssid", "lab"])
        .assert()
        .code(2);
}
