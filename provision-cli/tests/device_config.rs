//! `provision device config`: the blob it writes parses as the device will read it, holds what
//! the registry says, is private (0600), and bad requests are refused with their exit code.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use wire_format::device_config::{DeviceConfig, Endpoint};

fn provision(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("provision").unwrap();
    c.arg("--dir").arg(dir);
    c
}

fn setup(with_broker: bool) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("pki");
    provision(&dir).arg("init").assert().success();
    if with_broker {
        provision(&dir)
            .args([
                "broker",
                "--host",
                "mqtt.home.lan",
                "--ip",
                "127.0.0.1",
                "--port",
                "8884",
            ])
            .assert()
            .success();
    }
    provision(&dir)
        .args(["device", "add", "kitchen-1", "porch-1"])
        .assert()
        .success();
    t
}

fn der_of_pem(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap();
    x509_parser::pem::parse_x509_pem(&text).unwrap().1.contents
}

#[test]
fn writes_a_private_blob_the_device_reads() {
    let t = setup(true);
    let dir = t.path().join("pki");
    std::fs::write(t.path().join("wifi.txt"), "hunter22 hunter\nignored\n").unwrap();
    let out = t.path().join("kitchen.bin");
    let key_pem = std::fs::read_to_string(dir.join("devices/kitchen-1/device.key")).unwrap();
    provision(&dir)
        .args([
            "device",
            "config",
            "kitchen-1",
            "--wifi-ssid",
            "home net",
            "--telemetry-period",
            "15",
        ])
        .arg("--wifi-password-file")
        .arg(t.path().join("wifi.txt"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("broker mqtt.home.lan:8884"))
        .stdout(contains("write-flash 0x3F9000"))
        .stdout(contains(key_pem.lines().nth(1).unwrap()).not());

    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let blob = std::fs::read(&out).unwrap();
    let cfg = DeviceConfig::parse(&blob).unwrap();
    assert_eq!(cfg.device_id, "kitchen-1");
    assert_eq!(
        (cfg.wifi_ssid, cfg.wifi_password),
        ("home net", "hunter22 hunter")
    );
    assert_eq!(
        (cfg.brokers.as_slice(), cfg.telemetry_period_s),
        (
            &[Endpoint {
                host: "mqtt.home.lan",
                port: 8884
            }][..],
            15
        )
    );
    assert_eq!(cfg.ca_cert_der, der_of_pem(&dir.join("ca/ca.crt")));
    assert_eq!(
        cfg.client_cert_der,
        der_of_pem(&dir.join("devices/kitchen-1/device.crt"))
    );
    assert_eq!(
        cfg.client_key_der,
        der_of_pem(&dir.join("devices/kitchen-1/device.key"))
    );
    assert_eq!(cfg.broker_pin, None);
    assert!(cfg.ota_keys.is_empty());
}

#[test]
fn pins_the_broker_and_carries_ota_keys() {
    let t = setup(true);
    let dir = t.path().join("pki");
    provision(&dir).args(["ota", "keygen"]).assert().success();
    let out = t.path().join("porch.bin");
    provision(&dir)
        .args([
            "device",
            "config",
            "porch-1",
            "--wifi-ssid",
            "home",
            "--broker-host",
            "127.0.0.1",
        ])
        .args(["--broker-port", "1883", "--pin-broker", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("broker key pinned"))
        .stdout(contains("1 OTA key(s)"));
    let blob = std::fs::read(&out).unwrap();
    let cfg = DeviceConfig::parse(&blob).unwrap();
    assert_eq!(
        cfg.brokers.as_slice(),
        [Endpoint {
            host: "127.0.0.1",
            port: 1883
        }]
    );
    let server = der_of_pem(&dir.join("broker/server.crt"));
    let (_, cert) = x509_parser::parse_x509_certificate(&server).unwrap();
    let want = wire_format::ota::sha256(cert.tbs_certificate.subject_pki.raw);
    assert_eq!(cfg.broker_pin, Some(&want));
    assert_eq!(cfg.trusted_ota_keys().count(), 1);
}

#[test]
fn refusals_have_their_exit_codes() {
    let t = setup(false);
    let dir = t.path().join("pki");
    let out = t.path().join("x.bin");
    let run = |args: &[&str]| {
        let mut c = provision(&dir);
        c.args(["device", "config"]).args(args).arg("-o").arg(&out);
        c.assert()
    };
    run(&["kitchen-1", "--wifi-ssid", "h"])
        .code(4)
        .stderr(contains("no broker configured"));
    run(&["nobody", "--wifi-ssid", "h", "--broker-host", "b"])
        .code(4)
        .stderr(contains("unknown device"));
    run(&["Bad_Id", "--wifi-ssid", "h", "--broker-host", "b"]).code(3);
    run(&[
        "kitchen-1",
        "--wifi-ssid",
        &"s".repeat(33),
        "--broker-host",
        "b",
    ])
    .code(3)
    .stderr(contains("WiFi SSID is 33 bytes long"));
    run(&[
        "kitchen-1",
        "--wifi-ssid",
        "h",
        "--broker-host",
        "b",
        "--telemetry-period",
        "0",
    ])
    .code(3)
    .stderr(contains("telemetry period"));
    // The printed esptool command can be pasted as is, also for a path with a space.
    let spaced = t.path().join("kitchen 1.bin");
    provision(&dir)
        .args(["device", "config", "kitchen-1", "--wifi-ssid", "h"])
        .args(["--broker-host", "b", "-o"])
        .arg(&spaced)
        .assert()
        .success()
        .stdout(contains(format!(
            "write-flash 0x3F9000 '{}'",
            spaced.display()
        )));
    std::fs::remove_file(&spaced).unwrap();
    // A wrong password file is refused, not read to its (possibly infinite) end.
    let pw = |args: &[&str], file: &Path| {
        let mut c = provision(&dir);
        c.args(["device", "config", "kitchen-1", "--wifi-ssid", "h"])
            .args(["--broker-host", "b", "--wifi-password-file"])
            .arg(file)
            .args(args)
            .arg("-o")
            .arg(&out);
        c.timeout(std::time::Duration::from_secs(20)).assert()
    };
    pw(&[], Path::new("/dev/zero"))
        .code(3)
        .stderr(contains("/dev/zero: no line break in the first 1024 bytes"));
    let latin1 = t.path().join("wifi latin1.txt");
    std::fs::write(&latin1, b"caf\xe9\n").unwrap();
    pw(&[], &latin1)
        .code(3)
        .stderr(contains("the WiFi password is not UTF-8"));
    let empty = t.path().join("empty.txt");
    std::fs::write(&empty, b"\nsecond line\n").unwrap();
    pw(&[], &empty).code(3).stderr(contains(
        "is empty; omit --wifi-password-file for an open network",
    ));
    pw(&[], &t.path().join("missing.txt"))
        .code(6)
        .stderr(contains("missing.txt"));
    // An output that is not a regular file is refused before anything is written; the rename
    // would have replaced it (as root, `-o /dev/null` would have replaced the system's).
    let fifo = t.path().join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for target in [&fifo, &t.path().to_path_buf()] {
        provision(&dir)
            .args(["device", "config", "kitchen-1", "--wifi-ssid", "h"])
            .args(["--broker-host", "b", "-o"])
            .arg(target)
            .assert()
            .code(3)
            .stderr(contains("exists and is not a regular file"));
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // The device would only find out at TLS time, retrying forever.
    for host in ["bad host", "", "x-.lan", "mqtt..lan", "a/b"] {
        run(&["kitchen-1", "--wifi-ssid", "h", "--broker-host", host])
            .code(3)
            .stderr(contains("is not a DNS name or an IP address"));
    }
    provision(&dir)
        .args(["device", "revoke", "porch-1"])
        .assert()
        .success();
    run(&["porch-1", "--wifi-ssid", "h", "--broker-host", "b"])
        .code(4)
        .stderr(contains("revoked"));
    assert!(!out.exists(), "nothing written on refusal");
}

#[test]
fn several_broker_endpoints_each_checked_against_the_certificate() {
    let t = setup(true);
    let dir = t.path().join("pki");
    let out = t.path().join("kitchen.bin");
    let run = |brokers: &[&str]| {
        let mut c = provision(&dir);
        c.args(["device", "config", "kitchen-1", "--wifi-ssid", "h"]);
        for b in brokers {
            c.args(["--broker", b]);
        }
        c.arg("-o").arg(&out);
        c.assert()
    };
    run(&["mqtt.home.lan:8884", "127.0.0.1:18884"])
        .success()
        .stdout(contains("broker mqtt.home.lan:8884 then 127.0.0.1:18884"));
    let blob = std::fs::read(&out).unwrap();
    assert_eq!(blob[4], 2, "several endpoints: version 2");
    let cfg = DeviceConfig::parse(&blob).unwrap();
    assert!(!cfg.persistent_session, "Mosquitto: a clean session");
    assert_eq!(
        cfg.brokers.as_slice(),
        [
            Endpoint {
                host: "mqtt.home.lan",
                port: 8884
            },
            Endpoint {
                host: "127.0.0.1",
                port: 18884
            }
        ]
    );
    std::fs::remove_file(&out).unwrap();

    // One host the certificate does not name spoils the lot: nothing is written.
    run(&["mqtt.home.lan:8884", "node-2.home.lan:8884"])
        .code(3)
        .stderr(contains(
            "broker host node-2.home.lan is not in the broker certificate",
        ));
    run(&["mqtt.home.lan:8884", "MQTT.home.lan:8884"])
        .code(3)
        .stderr(contains("given twice"));
    run(&[
        "127.0.0.1:1",
        "127.0.0.1:2",
        "127.0.0.1:3",
        "127.0.0.1:4",
        "127.0.0.1:5",
    ])
    .code(3)
    .stderr(contains(
        "5 --broker endpoints given; a device config holds at most 4",
    ));
    for bad in [
        "mqtt.home.lan",
        "mqtt.home.lan:0",
        "[::1]8883",
        "bad host:1",
    ] {
        run(&[bad]).code(2).stderr(contains("--broker"));
    }
    provision(&dir)
        .args(["device", "config", "kitchen-1", "--wifi-ssid", "h"])
        .args([
            "--broker",
            "127.0.0.1:1",
            "--broker-host",
            "127.0.0.1",
            "-o",
        ])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(contains("cannot be used with"));
    assert!(!out.exists(), "nothing written on refusal");

    // Without --broker: the registry's one endpoint, as version 1 (what older firmware reads).
    run(&[]).success();
    let blob = std::fs::read(&out).unwrap();
    assert_eq!(blob[4], 1);
    assert_eq!(
        DeviceConfig::parse(&blob).unwrap().brokers.as_slice(),
        [Endpoint {
            host: "mqtt.home.lan",
            port: 8884
        }]
    );
}

#[test]
fn a_clusters_devices_get_every_node_starting_at_different_ones() {
    let t = setup(false);
    let dir = t.path().join("pki");
    let nodes = [
        ("rabbit-1", "n1.lan", 8883u16),
        ("rabbit-2", "n2.lan", 8884),
        ("rabbit-3", "10.0.0.3", 8885),
        ("rabbit-4", "n4.lan", 8886),
        ("rabbit-5", "n5.lan", 8887),
    ];
    let ids: Vec<String> = (0..12).map(|i| format!("hall-{i}")).collect();
    provision(&dir)
        .args(["device", "add"])
        .args(&ids)
        .assert()
        .success();
    for n in [3, 5] {
        let mut broker = provision(&dir);
        broker.args(["broker", "--engine", "rabbitmq"]);
        for (name, host, port) in &nodes[..n] {
            broker.arg("--node").arg(format!("{name}={host}:{port}"));
        }
        broker.assert().success();
        let ids_file = t.path().join("ids.txt");
        std::fs::write(&ids_file, ids.join("\n")).unwrap();
        let out = t.path().join(format!("blobs-{n}"));
        std::fs::create_dir(&out).unwrap();
        provision(&dir)
            .args(["device", "config", "--wifi-ssid", "h", "--from-file"])
            .arg(&ids_file)
            .arg("--out-dir")
            .arg(&out)
            .assert()
            .success();
        let mut starts = std::collections::BTreeSet::new();
        for id in &ids {
            let blob = std::fs::read(out.join(format!("{id}.bin"))).unwrap();
            let cfg = DeviceConfig::parse(&blob).unwrap();
            assert_eq!(blob[4], 2);
            assert!(
                cfg.persistent_session,
                "a cluster's device keeps its session"
            );
            // Node crc32(id) mod n first, then the following ones, at most four.
            let start = wire_format::device_config::crc32(id.as_bytes()) as usize % n;
            let want: Vec<Endpoint<'_>> = (0..n.min(4))
                .map(|k| {
                    let (_, host, port) = nodes[(start + k) % n];
                    Endpoint { host, port }
                })
                .collect();
            assert_eq!(cfg.brokers.as_slice(), &want[..], "{id}");
            starts.insert(start);
        }
        assert!(starts.len() >= 2, "twelve devices all start at one node");
    }
    // A node name the certificate does not carry is refused, by name.
    let out = t.path().join("one.bin");
    provision(&dir)
        .args(["device", "config", "hall-1", "--wifi-ssid", "h"])
        .args(["--broker", "n1.lan:8883", "--broker", "n9.lan:8883", "-o"])
        .arg(&out)
        .assert()
        .code(3)
        .stderr(contains(
            "broker host n9.lan is not in the broker certificate",
        ));
}
