//! Over-the-air updates end to end: the real `esp-client-host` binary (slots in its flash file,
//! the loader step at every reset) updated by the real `provision ota push` through a real
//! Mosquitto configured by `provision broker`. Bundles are built and signed by `provision ota
//! build`.
//!
//! The `provision` binary is found next to `esp-client-host` (the same target directory);
//! `cargo test --workspace` builds both. Run alone, build it first:
//! `cargo build -p provision-cli --bin provision`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_testkit::{Broker, Pki};
use esp_client_host::board::CRASH_MARKER;
use esp_client_host::flash::OTA_LAYOUT;
use support::{ok, provision, provision_bin, DeviceProc};

const T: Duration = Duration::from_secs(30);
/// What a resumed download may send twice: one window of requests plus one flash sector.
const RESEND_BOUND: u64 =
    (wire_format::ota_proto::MAX_WINDOW * wire_format::ota_proto::MAX_CHUNK_LEN) as u64 + 4096;

/// `provision ota build` of `image` bytes; extra args (e.g. `--unsigned`, `--key-id 2`).
fn bundle(
    pki: &Pki,
    name: &str,
    version: &str,
    counter: u32,
    image: &[u8],
    extra: &[&str],
) -> PathBuf {
    let img = pki.path().join(format!("{name}.bin"));
    std::fs::write(&img, image).unwrap();
    let out = pki.path().join(format!("{name}.bundle"));
    let counter = counter.to_string();
    let mut args = vec![
        "ota",
        "build",
        img.to_str().unwrap(),
        "--version",
        version,
        "--target",
        "esp8266",
        "--security-counter",
        &counter,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(provision(pki, &args));
    out
}

fn image(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// `provision ota push --json` to `devices`; the JSON lines and the exit code.
fn push(
    pki: &Pki,
    bundle: &Path,
    devices: &[&str],
    extra: &[&str],
) -> (Vec<String>, Option<i32>, String) {
    let mut args = vec![
        "ota",
        "push",
        bundle.to_str().unwrap(),
        "--json",
        "--timeout",
        "120",
    ];
    for d in devices {
        args.extend_from_slice(&["--device", d]);
    }
    args.extend_from_slice(extra);
    let o = provision(pki, &args);
    let lines = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (
        lines,
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn field(line: &str, name: &str) -> String {
    let key = format!("\"{name}\":");
    let rest = line.split(&key).nth(1).unwrap_or_default();
    rest.trim_start_matches('"')
        .split(['"', ',', '}'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A PKI with an OTA key, a broker, and a device config for each id (the key in it).
fn setup(ids: &[&str]) -> (Pki, Broker, Vec<PathBuf>) {
    let pki = Pki::new(ids);
    ok(provision(&pki, &["ota", "keygen"]));
    let broker = Broker::start(&pki);
    let flashes = ids
        .iter()
        .map(|id| pki.write_config(&pki.config_options(id, &format!("{id}.flash"))))
        .collect();
    (pki, broker, flashes)
}

/// The OTA part of the flash file (everything after the config and state sectors).
fn ota_region(flash: &Path) -> Vec<u8> {
    let all = std::fs::read(flash).unwrap();
    let start = OTA_LAYOUT.state[0] as usize;
    all.get(start..).unwrap_or_default().to_vec()
}

/// `provision ota status ID --json`, whitespace removed, once the device's retained report
/// says `state` (it is published right after the device comes online).
fn ota_status_json(pki: &Pki, id: &str, state: &str) -> String {
    let deadline = Instant::now() + T;
    loop {
        let o = ok(provision(pki, &["ota", "status", id, "--json"]));
        let s: String = String::from_utf8_lossy(&o.stdout)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if field(&s, "state") == state || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn confirmed(pki: &Pki, b: &Path, id: &str, version: &str) -> String {
    let (lines, code, err) = push(pki, b, &[id], &[]);
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    let line = lines[0].clone();
    assert_eq!(field(&line, "outcome"), "confirmed", "{line}");
    assert_eq!(field(&line, "running_version"), version, "{line}");
    line
}

#[test]
fn v1_then_v2_confirmed_then_refusals_erase_nothing_and_a_corrupted_download_keeps_v2() {
    let (pki, _broker, flashes) = setup(&["dev-1"]);
    let mut dev = DeviceProc::start(&flashes[0], &[]);
    dev.expect("ota: running 0.0.0 from slot A", T);
    dev.expect("Subscribe => Online", T);
    // Before any update: the blank image in slot A, as the device reports it.
    let s = ota_status_json(&pki, "dev-1", "idle");
    assert_eq!(field(&s, "state"), "idle", "{s}");
    assert_eq!(field(&s, "running_version"), "0.0.0", "{s}");
    assert_eq!(field(&s, "running_slot"), "A", "{s}");

    let v1 = bundle(&pki, "v1", "1.0.0", 1, &image(50_000, 1), &[]);
    let v2 = bundle(&pki, "v2", "2.0.0", 2, &image(70_001, 2), &[]);
    let line = confirmed(&pki, &v1, "dev-1", "1.0.0");
    assert_eq!(field(&line, "running_slot"), "B", "{line}");
    dev.expect("ota: confirmed 1.0.0 in slot B", T);
    let s = ota_status_json(&pki, "dev-1", "confirmed");
    assert_eq!(field(&s, "running_version"), "1.0.0", "{s}");
    assert_eq!(field(&s, "running_slot"), "B", "{s}");
    let table = String::from_utf8_lossy(&ok(provision(&pki, &["ota", "status", "dev-1"])).stdout)
        .into_owned();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("dev-1 "))
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..5],
        ["dev-1", "online", "1.0.0", "B", "confirmed"],
        "{table}"
    );
    let line = confirmed(&pki, &v2, "dev-1", "2.0.0");
    assert_eq!(field(&line, "bytes_sent"), "70001", "{line}");
    assert_eq!(field(&line, "running_slot"), "A", "{line}");
    dev.expect("ota: confirmed 2.0.0 in slot A", T);
    // The loader booted the new slot on trial, then the image confirmed itself once online.
    assert!(
        dev.log()
            .contains("loader: boot slot A (Trial { attempt: 1 })"),
        "{}",
        dev.log()
    );

    // `provision ota status` reads the retained report.
    let o = ok(provision(&pki, &["ota", "status", "dev-1", "--json"]));
    let s: String = String::from_utf8_lossy(&o.stdout)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(s.contains("\"running_version\":\"2.0.0\""), "{s}");
    assert!(s.contains("\"running_slot\":\"A\""), "{s}");
    assert!(s.contains("\"state\":\"confirmed\""), "{s}");

    // Refused before anything is erased: unknown key, wrong target, lower counter, unsigned.
    ok(provision(&pki, &["ota", "keygen"])); // key 2: not in the device's config
    let img = image(30_000, 3);
    let cases = [
        (
            "key-id",
            bundle(&pki, "k2", "3.0.0", 3, &img, &["--key-id", "2"]),
        ),
        ("target", {
            let p = pki.path().join("avr.bin");
            std::fs::write(&p, &img).unwrap();
            let out = pki.path().join("avr.bundle");
            ok(provision(
                &pki,
                &[
                    "ota",
                    "build",
                    p.to_str().unwrap(),
                    "--version",
                    "3.0.0",
                    "--target",
                    "atmega168",
                    "--security-counter",
                    "3",
                    "--key-id",
                    "1",
                    "-o",
                    out.to_str().unwrap(),
                ],
            ));
            out
        }),
        (
            "security-counter",
            bundle(&pki, "old", "1.5.0", 1, &img, &["--key-id", "1"]),
        ),
        (
            "signature",
            bundle(
                &pki,
                "uns",
                "3.0.0",
                3,
                &img,
                &["--key-id", "1", "--unsigned"],
            ),
        ),
    ];
    for (reason, b) in &cases {
        let before = ota_region(&flashes[0]);
        let (lines, code, err) = push(&pki, b, &["dev-1"], &["--no-verify"]);
        assert_ne!(code, Some(0), "{reason}: {lines:?}");
        let line = lines
            .first()
            .unwrap_or_else(|| panic!("{reason}: no result\n{err}"));
        assert_eq!(field(line, "outcome"), "refused", "{reason}: {line}");
        assert_eq!(field(line, "reason"), *reason, "{line}");
        assert_eq!(field(line, "bytes_sent"), "0", "{line}");
        assert!(
            ota_region(&flashes[0]) == before,
            "{reason}: the flash changed"
        );
    }

    // Bytes changed on the way (the operator sends a bundle whose image no longer matches
    // its signed hash): the whole download arrives, the hash check refuses it, v2 keeps
    // running and stays the active slot.
    let good = bundle(&pki, "v3", "3.0.0", 3, &img, &["--key-id", "1"]);
    let mut bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    bytes[n - 1000] ^= 0x20;
    let bad = pki.path().join("v3-corrupt.bundle");
    std::fs::write(&bad, &bytes).unwrap();
    let (lines, code, _) = push(&pki, &bad, &["dev-1"], &["--no-verify"]);
    assert_ne!(code, Some(0));
    assert_eq!(field(&lines[0], "outcome"), "refused", "{lines:?}");
    assert_eq!(field(&lines[0], "reason"), "image-hash", "{lines:?}");
    assert_eq!(field(&lines[0], "running_version"), "2.0.0", "{lines:?}");
    assert_eq!(field(&lines[0], "bytes_sent"), "30000", "{lines:?}");
    // And the intact bundle then goes through from zero.
    confirmed(&pki, &good, "dev-1", "3.0.0");
    dev.kill();
}

/// Waits until the device says it stored about half of the image.
fn at_half(dev: &DeviceProc) {
    dev.expect("ota: status downloading 5", T);
}

fn push_in_background(
    pki: &Pki,
    b: &Path,
    id: &str,
) -> std::thread::JoinHandle<(Vec<String>, Option<i32>, String)> {
    let (dir, b, id) = (pki.path().to_path_buf(), b.to_path_buf(), id.to_string());
    std::thread::spawn(move || {
        let o = Command::new(provision_bin())
            .arg("--dir")
            .arg(&dir)
            .args([
                "ota",
                "push",
                b.to_str().unwrap(),
                "--json",
                "--timeout",
                "120",
                "--device",
                &id,
            ])
            .env_remove("PROVISION_DIR")
            .env_remove("PROVISION_BROKER")
            .env_remove("PROVISION_OPERATOR")
            .stdin(Stdio::null())
            .output()
            .expect("provision runs");
        (
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    })
}

#[test]
fn a_broker_restart_at_half_way_resumes_and_resends_at_most_a_window_and_a_sector() {
    let (pki, mut broker, flashes) = setup(&["dev-1"]);
    let dev = DeviceProc::start(&flashes[0], &[]);
    dev.expect("Subscribe => Online", T);
    let len = 400_000;
    let b = bundle(&pki, "v1", "1.0.0", 1, &image(len, 7), &[]);
    let job = push_in_background(&pki, &b, "dev-1");
    at_half(&dev);
    broker.kill();
    std::thread::sleep(Duration::from_millis(500));
    broker.restart();
    let (lines, code, err) = job.join().unwrap();
    assert_eq!(code, Some(0), "{lines:?}\n{err}\n{}", dev.log());
    let sent: u64 = field(&lines[0], "bytes_sent").parse().unwrap();
    assert!(
        sent <= len as u64 + RESEND_BOUND,
        "sent {sent} for {len}: more than a window and a sector again"
    );
    // From the channel (the reader thread may lag behind the device), not `dev.log()`.
    assert!(
        dev.wait_for("Online => Backoff", T),
        "the connection did not drop:\n{}",
        dev.log()
    );
}

#[test]
fn a_device_reset_at_half_way_resumes_from_the_stored_sectors() {
    let (pki, _broker, flashes) = setup(&["dev-1"]);
    let mut dev = DeviceProc::start(&flashes[0], &[]);
    dev.expect("Subscribe => Online", T);
    let len = 400_000;
    let b = bundle(&pki, "v1", "1.0.0", 1, &image(len, 9), &[]);
    let job = push_in_background(&pki, &b, "dev-1");
    at_half(&dev);
    dev.kill(); // SIGKILL: a power cut between two flash operations
    let dev = DeviceProc::start(&flashes[0], &[]);
    let (lines, code, err) = job.join().unwrap();
    assert_eq!(code, Some(0), "{lines:?}\n{err}\n{}", dev.log());
    let sent: u64 = field(&lines[0], "bytes_sent").parse().unwrap();
    // Besides the window lost with the old process and the unfinished sector, `ota push`
    // offers again when the device says online, and the device answers an offer by asking
    // again for what is outstanding: depending on when the offer lands (a loaded machine
    // decides), that is one more window. A download started over would send 200 KB more.
    let window =
        (wire_format::ota_proto::MAX_WINDOW * wire_format::ota_proto::MAX_CHUNK_LEN) as u64;
    assert!(
        sent <= len as u64 + RESEND_BOUND + window,
        "sent {sent} for {len}: the download did not resume\n{}",
        dev.log()
    );
    assert_eq!(field(&lines[0], "running_version"), "1.0.0");
}

#[test]
fn an_image_that_never_runs_is_rolled_back_and_reported() {
    let (pki, _broker, flashes) = setup(&["dev-1"]);
    let dev = DeviceProc::start(&flashes[0], &[]);
    dev.expect("Subscribe => Online", T);
    let v1 = bundle(&pki, "v1", "1.0.0", 1, &image(20_000, 1), &[]);
    confirmed(&pki, &v1, "dev-1", "1.0.0");
    let mut bad = CRASH_MARKER.to_vec();
    bad.extend_from_slice(&image(20_000, 2));
    let v2 = bundle(&pki, "v2", "2.0.0", 2, &bad, &[]);
    let (lines, code, err) = push(&pki, &v2, &["dev-1"], &[]);
    assert_ne!(code, Some(0), "{lines:?}\n{err}");
    assert_eq!(
        field(&lines[0], "outcome"),
        "rolled-back",
        "{lines:?}\n{err}\n{}",
        dev.log()
    );
    assert_eq!(field(&lines[0], "reason"), "not-confirmed", "{lines:?}");
    assert_eq!(field(&lines[0], "running_version"), "1.0.0", "{lines:?}");
    // The reader thread may lag behind the device: wait for the loader's last line first.
    dev.expect("(RolledBack)", T);
    let log = dev.log();
    assert_eq!(
        log.matches("boot slot A (Trial {").count(),
        3,
        "three trial boots of the new image:\n{log}"
    );
    assert!(log.contains("(RolledBack)"), "{log}");
    // The floor did not move: the device still takes a counter-1 bundle.
    let o = ok(provision(&pki, &["ota", "status", "dev-1", "--json"]));
    let s: String = String::from_utf8_lossy(&o.stdout)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(s.contains("\"state\":\"rolled-back\""), "{s}");
    assert!(s.contains("\"security_floor\":1"), "{s}");
}

#[test]
fn two_devices_update_in_parallel() {
    let (pki, _broker, flashes) = setup(&["dev-a", "dev-b"]);
    let a = DeviceProc::start(&flashes[0], &[]);
    let b = DeviceProc::start(&flashes[1], &[]);
    a.expect("Subscribe => Online", T);
    b.expect("Subscribe => Online", T);
    let v1 = bundle(&pki, "v1", "1.0.0", 1, &image(120_000, 4), &[]);
    let (lines, code, err) = push(&pki, &v1, &["dev-a", "dev-b"], &["--parallel", "2"]);
    assert_eq!(code, Some(0), "{lines:?}\n{err}");
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(field(l, "outcome"), "confirmed", "{l}");
        assert_eq!(field(l, "running_version"), "1.0.0", "{l}");
    }
    a.expect("ota: confirmed 1.0.0 in slot B", T);
    b.expect("ota: confirmed 1.0.0 in slot B", T);
}

/// `provision ota status` asks: the running host device answers its query live (the answer is
/// not retained and says what the device runs now); a device killed with SIGKILL does not
/// answer and is shown with what the broker retained (its Last Will `offline`, its last report).
#[test]
fn ota_status_gets_a_live_answer_from_the_device_and_marks_a_dead_one() {
    let (pki, _broker, flashes) = setup(&["dev-1", "dev-2"]);
    let dev1 = DeviceProc::start(&flashes[0], &[]);
    let mut dev2 = DeviceProc::start(&flashes[1], &[]);
    dev1.expect("Subscribe => Online", T);
    dev2.expect("Subscribe => Online", T);
    dev2.expect("ota: status idle", T);
    // The log line says the retained report was queued, not that the broker holds it. A live
    // answer to a query travels after it on the same connection, so once the answer is back the
    // broker has the report.
    let o = ok(provision(
        &pki,
        &["ota", "status", "dev-2", "--json", "--timeout", "10"],
    ));
    let before: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(before[0]["answered"], true, "{before}\n{}", dev2.log());
    dev2.kill();

    let o = ok(provision(
        &pki,
        &["ota", "status", "--json", "--timeout", "3"],
    ));
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let one = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|d| d["device"] == id)
            .unwrap_or_else(|| panic!("{id}: {all}"))
            .clone()
    };
    let d1 = one("dev-1");
    assert_eq!(d1["answered"], true, "{all}\n{}", dev1.log());
    assert_eq!(d1["ota_from"], "live", "{all}");
    assert_eq!(d1["connection"], "online", "{all}");
    assert_eq!(d1["ota"]["state"], "idle", "{all}");
    assert_eq!(d1["ota"]["running_version"], "0.0.0", "{all}");
    dev1.expect("ota: query answered: idle", T);
    let d2 = one("dev-2");
    assert_eq!(d2["answered"], false, "{all}");
    assert_eq!(
        (&d2["connection"], &d2["connection_from"]),
        (
            &serde_json::json!("offline"),
            &serde_json::json!("retained")
        ),
        "{all}"
    );
    assert_eq!(
        (&d2["ota"]["state"], &d2["ota_from"]),
        (&serde_json::json!("idle"), &serde_json::json!("retained")),
        "{all}"
    );
    let table =
        String::from_utf8_lossy(&ok(provision(&pki, &["ota", "status", "--timeout", "1"])).stdout)
            .into_owned();
    assert!(
        table.lines().any(|l| l.starts_with("dev-2 ")
            && l.contains(" offline ")
            && l.ends_with(" retained")),
        "{table}"
    );
    assert!(table.contains("1 of 2 did not answer"), "{table}");
}
