//! Crash safety of the provisioning directory, tested the way it failed: the real binary is cut
//! at every file-system step of `device add`, `device revoke`, `init --force`, `broker`,
//! `operator add` and `ota keygen` (`PROVISION_FAULT_AT=N` aborts at step N, like `kill -9`: no destructors, no
//! cleanup), and killed with a real SIGKILL at a sample of moments of a bulk add. After each cut
//! the next command must find a consistent directory: the registry parses, every certificate that
//! chains to the CA is in the registry, the CRL and ACL agree with it, the CA key matches its
//! certificate, the command either happened entirely or not at all, a re-run completes, and no
//! temporaries are left.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use provision::registry::{DeviceStatus, Registry};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("provision")
}

fn run(dir: &Path, args: &[&str], fault: Option<u64>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("PROVISION_DIR");
    cmd.env_remove("PROVISION_FAULT_AT");
    if let Some(n) = fault {
        cmd.env("PROVISION_FAULT_AT", n.to_string());
    }
    cmd.output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = run(dir, args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            walk(&p, out);
        }
    }
}

fn pem_blocks(path: &Path) -> Vec<x509_parser::pem::Pem> {
    let Ok(bytes) = fs::read(path) else {
        return Vec::new();
    };
    x509_parser::pem::Pem::iter_from_buffer(&bytes)
        .filter_map(|p| p.ok())
        .collect()
}

/// Serials as the registry writes them (upper-case hex, no leading sign octet).
fn serial_of(raw: &[u8]) -> String {
    let raw = match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        r => r,
    };
    raw.iter().map(|b| format!("{b:02X}")).collect()
}

/// Everything the issue asks of a directory after a crash and the next run's recovery.
fn check_consistent(dir: &Path, context: &str) -> Registry {
    check(dir, context, false)
}

/// [`check_consistent`] after a read-only command: the staged files (and a half-written journal
/// temporary) of a command killed before its commit may still be there (they change nothing; the
/// next command that writes removes them), but never a journal.
fn check_consistent_for_readers(dir: &Path, context: &str) -> Registry {
    check(dir, context, true)
}

fn check(dir: &Path, context: &str, staging_allowed: bool) -> Registry {
    let reg = provision::registry_files::load(&provision::layout::Layout::new(dir))
        .unwrap_or_else(|e| panic!("{context}: registry does not load: {e}"))
        .unwrap_or_else(|| panic!("{context}: no registry"));

    // No temporaries, journal or staging area left.
    let mut files = Vec::new();
    walk(dir, &mut files);
    if staging_allowed {
        files.retain(|f| !f.starts_with(dir.join(".staging")) && *f != dir.join(".journal.tmp"));
    }
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !name.ends_with(".tmp")
                && !name.ends_with(".old")
                && name != ".journal"
                && name != ".staging",
            "{context}: leftover {}",
            f.display()
        );
    }

    // The CA is usable: its key loads, matches ca.crt, and is private.
    let store = provision::store::Store::open_read(dir).unwrap();
    store
        .ca(&reg)
        .unwrap_or_else(|e| panic!("{context}: the CA does not load: {e}"));
    let ca_pem = &pem_blocks(&dir.join("ca/ca.crt"))[0];
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_pem.contents).unwrap();

    // Every certificate on disk (outside backups) that this CA issued is in the registry.
    let mut known: BTreeSet<String> = [reg.ca.cert.serial.clone(), reg.operator.serial.clone()]
        .into_iter()
        .chain(reg.operators.values().map(|c| c.serial.clone()))
        .chain(reg.broker.iter().map(|b| b.cert.serial.clone()))
        .chain(reg.devices.values().map(|d| d.cert.serial.clone()))
        .chain(reg.retired.iter().map(|r| r.cert.serial.clone()))
        .collect();
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap();
        if rel.starts_with("backup-") || rel.to_string_lossy().starts_with("backup-") {
            continue;
        }
        for pem in pem_blocks(f) {
            if pem.label != "CERTIFICATE" {
                continue;
            }
            let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).unwrap();
            if cert.issuer().as_raw() != ca.subject().as_raw() {
                continue;
            }
            let serial = serial_of(cert.raw_serial());
            assert!(
                known.contains(&serial),
                "{context}: {} holds certificate {serial}, which the registry does not know",
                f.display()
            );
        }
    }
    // Every active device has its key and certificate, and they belong together.
    for (id, d) in &reg.devices {
        let crt = &pem_blocks(&dir.join(format!("devices/{id}/device.crt")))[0];
        let (_, cert) = x509_parser::parse_x509_certificate(&crt.contents).unwrap();
        assert_eq!(
            serial_of(cert.raw_serial()),
            d.cert.serial,
            "{context}: {id}"
        );
        let key = fs::read_to_string(dir.join(format!("devices/{id}/device.key"))).unwrap();
        let key = rcgen::KeyPair::from_pem(&key).unwrap();
        assert_eq!(
            key.public_key_raw(),
            cert.public_key().subject_public_key.data.as_ref(),
            "{context}: {id}'s key does not match its certificate"
        );
    }

    // The CRL is the registry's: its number, exactly the revoked serials, signed by the CA.
    let crl_pem = &pem_blocks(&dir.join("crl.pem"))[0];
    let (_, crl) = x509_parser::parse_x509_crl(&crl_pem.contents).unwrap();
    assert_eq!(
        crl.crl_number().map(|n| n.to_string()),
        Some(reg.crl_number.to_string()),
        "{context}: CRL number"
    );
    assert_eq!(crl.issuer().as_raw(), ca.subject().as_raw());
    let in_crl: BTreeSet<String> = crl
        .iter_revoked_certificates()
        .map(|r| serial_of(r.raw_serial()))
        .collect();
    let revoked: BTreeSet<String> = reg
        .devices
        .values()
        .filter(|d| d.status == DeviceStatus::Revoked)
        .map(|d| d.cert.serial.clone())
        .chain(
            reg.retired
                .iter()
                .filter(|r| r.revoked_at.is_some())
                .map(|r| r.cert.serial.clone()),
        )
        .collect();
    assert_eq!(in_crl, revoked, "{context}: CRL vs registry");
    known.clear();

    // The broker folder follows the registry.
    if let Some(broker) = reg.broker.as_ref().filter(|_| dir.join("broker").is_dir()) {
        assert_eq!(
            fs::read(dir.join("broker/crl.pem")).unwrap(),
            fs::read(dir.join("crl.pem")).unwrap(),
            "{context}: broker CRL"
        );
        match broker.engine {
            provision::registry::Engine::Mosquitto => assert_eq!(
                fs::read_to_string(dir.join("broker/acl")).unwrap(),
                provision::broker::render_acl(&reg),
                "{context}: broker ACL"
            ),
            provision::registry::Engine::Rabbitmq => assert!(
                rabbitmq_in_step(&reg, dir),
                "{context}: RabbitMQ definitions or hash-dir CRL"
            ),
        }
    }
    // Backups hold the old CA and are private.
    for f in &files {
        if f.parent() == Some(dir)
            && f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("backup-")
        {
            let mode = fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{context}: {}", f.display());
            assert!(
                f.join("ca/ca.key").exists() && f.join("registry/registry.json").exists(),
                "{context}: backup {} is incomplete",
                f.display()
            );
        }
    }
    reg
}

/// Turns `dir` into what an older `provision` wrote: the same registry as one `registry.toml`.
fn make_legacy(dir: &Path) {
    let reg = provision::store::read_registry(dir).unwrap().unwrap();
    let text = format!(
        "# provision registry: every certificate this CA issued. Edit with `provision`, not by hand.\n{}",
        toml::to_string_pretty(&reg).unwrap()
    );
    fs::write(dir.join("registry.toml"), text).unwrap();
    fs::remove_dir_all(dir.join("registry")).unwrap();
    assert_eq!(provision::store::read_registry(dir).unwrap().unwrap(), reg);
}

struct Scenario {
    name: &'static str,
    setup: &'static [&'static [&'static str]],
    /// Run on a directory an older `provision` made (one `registry.toml`): the command converts it.
    legacy: bool,
    args: &'static [&'static str],
    /// Did the command take effect (compared with the registry before)?
    happened: fn(before: &Registry, after: &Registry, dir: &Path) -> bool,
    /// Is the registry as before (did nothing happen)?
    unchanged: fn(before: &Registry, after: &Registry, dir: &Path) -> bool,
}

const BASE: &[&[&str]] = &[
    &["init"],
    &["broker", "--host", "localhost", "--ip", "127.0.0.1"],
    &["device", "add", "d0", "d1"],
    &["device", "revoke", "d1"],
];

const RABBITMQ_BASE: &[&[&str]] = &[
    &["init"],
    &[
        "broker",
        "--engine",
        "rabbitmq",
        "--node",
        "rabbit-1=127.0.0.1:41001",
        "--node",
        "rabbit-2=127.0.0.1:41002",
    ],
    &["device", "add", "d0", "d1"],
    &["device", "revoke", "d1"],
];

/// A RabbitMQ broker folder agrees with the registry: its definitions list exactly the
/// operators and active devices, and its hash-dir CRL is the CRL.
fn rabbitmq_in_step(reg: &Registry, dir: &Path) -> bool {
    let b = dir.join("broker");
    let Ok(files) = fs::read_dir(b.join("definitions")) else {
        return false;
    };
    let mut users = BTreeSet::new();
    let mut count = 0;
    for f in files.flatten() {
        let text = fs::read_to_string(f.path()).unwrap();
        let defs: serde_json::Value = serde_json::from_str(&text).expect("definitions parse");
        for u in defs["users"].as_array().unwrap() {
            users.insert(u["name"].as_str().unwrap().to_string());
        }
        count += 1;
    }
    if count == 0 {
        return false;
    }
    let expected: BTreeSet<String> = reg
        .operator_names()
        .map(str::to_string)
        .chain(
            reg.devices
                .iter()
                .filter(|(_, d)| d.status == DeviceStatus::Active)
                .map(|(id, _)| id.clone()),
        )
        .collect();
    let crls: Vec<_> = fs::read_dir(b.join("crl")).unwrap().flatten().collect();
    users == expected
        && crls.len() == 1
        && fs::read(crls[0].path()).unwrap() == fs::read(dir.join("crl.pem")).unwrap()
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "rabbitmq broker",
            setup: BASE,
            legacy: false,
            args: &[
                "broker",
                "--engine",
                "rabbitmq",
                "--node",
                "rabbit-1=127.0.0.1:41001",
            ],
            happened: |_, a, dir| {
                a.broker.as_ref().unwrap().nodes.len() == 1
                    && rabbitmq_in_step(a, dir)
                    && dir.join("broker/nodes/rabbit-1/advanced.config").is_file()
            },
            unchanged: |b, a, dir| a == b && !dir.join("broker/nodes").exists(),
        },
        Scenario {
            name: "rabbitmq device revoke",
            setup: RABBITMQ_BASE,
            legacy: false,
            args: &["device", "revoke", "d0"],
            happened: |_, a, dir| {
                a.devices["d0"].status == DeviceStatus::Revoked && rabbitmq_in_step(a, dir)
            },
            unchanged: |b, a, dir| a == b && rabbitmq_in_step(a, dir),
        },
        Scenario {
            name: "rabbitmq device add",
            setup: RABBITMQ_BASE,
            legacy: false,
            args: &["device", "add", "n1"],
            happened: |_, a, dir| a.devices.contains_key("n1") && rabbitmq_in_step(a, dir),
            unchanged: |b, a, dir| a == b && rabbitmq_in_step(a, dir),
        },
        Scenario {
            name: "device add",
            setup: BASE,
            legacy: false,
            args: &["device", "add", "n1", "n2", "n3"],
            happened: |b, a, _| {
                ["n1", "n2", "n3"]
                    .iter()
                    .all(|i| a.devices.contains_key(*i))
                    && a.devices.len() == b.devices.len() + 3
            },
            unchanged: |b, a, _| a == b,
        },
        Scenario {
            name: "device revoke on an old registry.toml",
            setup: BASE,
            legacy: true,
            args: &["device", "revoke", "d0"],
            happened: |b, a, dir| {
                a.devices["d0"].status == DeviceStatus::Revoked
                    && a.crl_number == b.crl_number + 1
                    && !dir.join("registry.toml").exists()
                    && dir.join("registry/registry.json").exists()
            },
            unchanged: |b, a, dir| {
                a == b
                    && dir.join("registry.toml").exists()
                    && !dir.join("registry/registry.json").exists()
            },
        },
        Scenario {
            name: "device revoke",
            setup: BASE,
            legacy: false,
            args: &["device", "revoke", "d0"],
            happened: |b, a, _| {
                a.devices["d0"].status == DeviceStatus::Revoked && a.crl_number == b.crl_number + 1
            },
            unchanged: |b, a, _| a == b,
        },
        Scenario {
            name: "init --force",
            setup: BASE,
            legacy: false,
            args: &["init", "--force"],
            happened: |b, a, dir| {
                a.ca != b.ca
                    && a.devices.is_empty()
                    && fs::read_dir(dir).unwrap().any(|e| {
                        e.unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with("backup-")
                    })
            },
            unchanged: |b, a, dir| {
                a == b
                    && !fs::read_dir(dir).unwrap().any(|e| {
                        e.unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with("backup-")
                    })
            },
        },
        Scenario {
            name: "broker",
            setup: BASE,
            legacy: false,
            args: &["broker", "--host", "mqtt.example", "--ip", "127.0.0.2"],
            happened: |_, a, _| a.broker.as_ref().unwrap().hosts == ["mqtt.example"],
            unchanged: |b, a, _| a == b,
        },
        Scenario {
            name: "operator add",
            setup: BASE,
            legacy: false,
            args: &["operator", "add", "_ops-laptop"],
            happened: |_, a, _| a.operators.contains_key("_ops-laptop"),
            unchanged: |b, a, _| a == b,
        },
        Scenario {
            name: "device renew",
            setup: BASE,
            legacy: false,
            args: &["device", "renew", "d0"],
            happened: |b, a, _| {
                a.devices["d0"].cert.serial != b.devices["d0"].cert.serial
                    && a.retired.len() == b.retired.len() + 1
                    && a.crl_number == b.crl_number + 1
            },
            unchanged: |b, a, _| a == b,
        },
        Scenario {
            name: "device add --replace",
            setup: BASE,
            legacy: false,
            args: &["device", "add", "--replace", "d1"],
            happened: |b, a, _| {
                a.devices["d1"].status == DeviceStatus::Active
                    && a.retired.len() == b.retired.len() + 1
            },
            unchanged: |b, a, _| a == b,
        },
        Scenario {
            name: "broker renew",
            setup: BASE,
            legacy: false,
            args: &["broker", "renew"],
            happened: |b, a, _| {
                a.broker.as_ref().unwrap().cert.serial != b.broker.as_ref().unwrap().cert.serial
                    && a.crl_number == b.crl_number + 1
            },
            unchanged: |b, a, _| a == b,
        },
        Scenario {
            name: "ota keygen",
            setup: BASE,
            legacy: false,
            args: &["ota", "keygen"],
            happened: |b, a, dir| {
                a.ota_keys.len() == b.ota_keys.len() + 1 && dir.join("ota/key-1.pem").exists()
            },
            unchanged: |b, a, dir| a == b && !dir.join("ota/key-1.pem").exists(),
        },
    ]
}

/// A file-system cut at every step of every command, then recovery, checks, and a re-run.
#[test]
fn a_command_cut_at_any_file_system_step_leaves_a_consistent_directory() {
    let tmp = tempfile::tempdir().unwrap();
    for sc in scenarios() {
        let base = tmp.path().join(sc.name.replace(' ', "_"));
        for step in sc.setup {
            ok(&base, step);
        }
        if sc.legacy {
            make_legacy(&base);
        }
        let before = check_consistent(&base, sc.name);
        let crl_before = fs::read(base.join("crl.pem")).unwrap();
        let mut cuts = 0;
        for n in 1.. {
            let dir = tmp
                .path()
                .join(format!("{}-{n}", sc.name.replace(' ', "_")));
            copy_dir(&base, &dir);
            let out = run(&dir, sc.args, Some(n));
            let ctx = format!("{} cut at step {n}", sc.name);
            if out.status.success() {
                // Past the last step: the command ran to the end.
                let after = check_consistent(&dir, &ctx);
                assert!((sc.happened)(&before, &after, &dir), "{ctx}");
                fs::remove_dir_all(&dir).unwrap();
                break;
            }
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGABRT),
                "{ctx}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            cuts += 1;
            // A CRL that reached its final name is never replaced by a different one with
            // the same number.
            let crl_at_cut = fs::read(dir.join("crl.pem"))
                .ok()
                .filter(|c| *c != crl_before && sc.name == "device revoke");

            // The next command (a read-only one) recovers, then everything must hold, and the
            // command has happened entirely or not at all.
            let list = run(&dir, &["device", "list"], None);
            assert!(
                list.status.success(),
                "{ctx}: device list after the cut: {}",
                String::from_utf8_lossy(&list.stderr)
            );
            let after = check_consistent_for_readers(&dir, &ctx);
            let happened = (sc.happened)(&before, &after, &dir);
            assert!(
                happened || (sc.unchanged)(&before, &after, &dir),
                "{ctx}: the command half happened"
            );
            // The re-run completes (or says it is done already), and leaves no temporaries.
            if !happened {
                ok(&dir, sc.args);
                let again = check_consistent(&dir, &format!("{ctx}, re-run"));
                assert!((sc.happened)(&before, &again, &dir), "{ctx}: re-run");
            }
            if let Some(crl_at_cut) = crl_at_cut {
                assert_eq!(
                    fs::read(dir.join("crl.pem")).unwrap(),
                    crl_at_cut,
                    "{ctx}: a CRL number was reused for different contents"
                );
            }
            // The directory still works for the next command that writes.
            ok(&dir, &["device", "add", "later"]);
            check_consistent(&dir, &format!("{ctx}, later add"));
            fs::remove_dir_all(&dir).unwrap();
        }
        assert!(cuts >= 10, "{}: only {cuts} steps cut", sc.name);
        eprintln!("{}: cut at each of {cuts} steps", sc.name);
    }
}

/// Real SIGKILLs at moments spread over a bulk add of 300 devices.
#[test]
fn a_bulk_add_killed_at_any_moment_leaves_a_consistent_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    for step in BASE {
        ok(&base, step);
    }
    let ids: String = (0..300).map(|i| format!("bulk-{i}\n")).collect();
    let ids_file = tmp.path().join("ids.txt");
    fs::write(&ids_file, ids).unwrap();
    let add = ["device", "add", "--from-file", ids_file.to_str().unwrap()];
    let before = check_consistent(&base, "base");

    // How long an uninterrupted run takes, to spread the kills over it.
    let timing = tmp.path().join("timing");
    copy_dir(&base, &timing);
    let t0 = Instant::now();
    ok(&timing, &add);
    let mut full = t0.elapsed();

    const SAMPLES: u32 = 12;
    let (mut killed, mut finished) = (0, 0);
    for i in 0..SAMPLES {
        let dir = tmp.path().join(format!("kill-{i}"));
        copy_dir(&base, &dir);
        let mut child = Command::new(bin())
            .arg("--dir")
            .arg(&dir)
            .args(add)
            .env_remove("PROVISION_FAULT_AT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = full * i / SAMPLES + Duration::from_micros(300 * u64::from(i));
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
            // This run was faster than the timing run (on a loaded machine, the timing run may
            // have shared the CPU with other tests): spread the remaining kills over the shorter
            // time, so they still land inside a run.
            full = full.min(delay);
        } else {
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            killed += 1;
        }
        let ctx = format!("bulk add killed at sample {i}");
        ok(&dir, &["device", "list"]);
        let after = check_consistent_for_readers(&dir, &ctx);
        let all = (0..300).all(|i| after.devices.contains_key(&format!("bulk-{i}")));
        assert!(all || after == before, "{ctx}: a partial add");
        if !all {
            ok(&dir, &add);
        }
        // The next command that writes leaves no temporaries.
        ok(&dir, &["device", "add", "after-kill"]);
        check_consistent(&dir, &format!("{ctx}, next write"));
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("{killed} runs killed, {finished} finished before the kill");
    assert!(killed >= SAMPLES / 2, "only {killed} runs were killed");
}

/// What an `init --force` killed by an older `provision` left (no registry, the old CA's
/// folders still there) is refused by every command, with the way out.
#[test]
fn a_half_moved_directory_is_refused_with_how_to_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    for step in BASE {
        ok(&dir, step);
    }
    let backup = dir.join("backup-20250101T000000Z");
    fs::create_dir(&backup).unwrap();
    fs::rename(dir.join("registry"), backup.join("registry")).unwrap();
    fs::rename(dir.join("crl.pem"), backup.join("crl.pem")).unwrap();
    for args in [
        &["device", "list"][..],
        &["device", "add", "x"],
        &["device", "show", "d0"],
        &["init"],
        &["broker", "--host", "localhost"],
    ] {
        let out = run(&dir, args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(
            err.contains("interrupted") && err.contains("backup-"),
            "{args:?}: {err}"
        );
    }
    // Following the message repairs it.
    fs::rename(backup.join("registry"), dir.join("registry")).unwrap();
    fs::rename(backup.join("crl.pem"), dir.join("crl.pem")).unwrap();
    ok(&dir, &["device", "list"]);
}

/// File-system steps `args` takes on a copy of `base`: the smallest N at which the fault point
/// is never reached, minus one.
fn steps(tmp: &Path, base: &Path, args: &[&str]) -> u64 {
    steps_within(tmp, base, args, 1, 1 << 10)
}

/// [`steps`], known to be at least `lo` and less than `hi`.
fn steps_within(tmp: &Path, base: &Path, args: &[&str], mut lo: u64, mut hi: u64) -> u64 {
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        let dir = tmp.join(format!("probe-{mid}"));
        copy_dir(base, &dir);
        if run(&dir, args, Some(mid)).status.success() {
            hi = mid;
        } else {
            lo = mid;
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    assert!(hi < 1 << 10, "{args:?} takes too many steps to measure");
    lo
}

/// The algorithmic half of "provisioning stays linear": a bulk add takes the same number of
/// file-system steps for every device it adds, whatever the batch size. (The time it takes is a
/// benchmark: `bench/scale.sh`.) The ids all go into one registry file, which each batch creates.
#[test]
fn a_bulk_add_costs_the_same_file_system_steps_per_device() {
    use provision::registry_files::shard_of;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    for step in BASE {
        ok(&base, step);
    }
    let taken = [shard_of("d0"), shard_of("d1")];
    let shard = (0..=u8::MAX).find(|s| !taken.contains(s)).unwrap();
    let steps_for = |n: usize| -> u64 {
        let ids: String = (0..)
            .map(|i| format!("s{n}-{i}"))
            .filter(|id| shard_of(id) == shard)
            .take(n)
            .map(|id| id + "\n")
            .collect();
        let file = tmp.path().join(format!("ids-{n}"));
        fs::write(&file, ids).unwrap();
        steps(
            tmp.path(),
            &base,
            &["device", "add", "--from-file", file.to_str().unwrap()],
        )
    };
    let (s1, s2, s30) = (steps_for(1), steps_for(2), steps_for(30));
    let per_device = s2 - s1;
    assert!(per_device > 0);
    assert_eq!(
        s30,
        s1 + 29 * per_device,
        "1 device: {s1} steps, 2: {s2}, 30: {s30}"
    );
    eprintln!("{per_device} file-system steps per device, {s1} for one");
}

/// A change to one device costs the same whatever the size of the registry: the same file-system
/// steps, and it rewrites registry.json and the one device file (a small part of the registry),
/// not the whole of it.
#[test]
fn a_one_device_change_costs_the_same_whatever_the_registry_size() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    // (file name, inode, size) of every registry file: a rewritten file has a new inode.
    let files = |dir: &Path| -> Vec<(String, u64, u64)> {
        let mut v: Vec<_> = fs::read_dir(dir.join("registry"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    m.ino(),
                    m.len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    // The new device shares its registry file with dev-0, which both directories have.
    let new_id = (0..)
        .map(|i| format!("more-{i}"))
        .find(|id| {
            provision::registry_files::shard_of(id) == provision::registry_files::shard_of("dev-0")
        })
        .unwrap();
    let mut measured: Vec<Vec<u64>> = Vec::new();
    for n in [20, 400] {
        let base = tmp.path().join(format!("base-{n}"));
        for step in BASE {
            ok(&base, step);
        }
        let ids: String = (0..n).map(|i| format!("dev-{i}\n")).collect();
        let file = tmp.path().join(format!("ids-{n}"));
        fs::write(&file, ids).unwrap();
        ok(
            &base,
            &["device", "add", "--from-file", file.to_str().unwrap()],
        );
        let mut per_command = Vec::new();
        for (i, args) in [
            &["device", "add", &new_id][..],
            &["device", "revoke", "dev-7"],
            &["device", "renew", "dev-8"],
        ]
        .into_iter()
        .enumerate()
        {
            let before = files(&base);
            let total: u64 = before.iter().map(|f| f.2).sum();
            // On the larger directory: the same count as on the smaller one, or else measured.
            let step_count = match measured.first() {
                Some(small) => {
                    let k = small[i];
                    steps_within(tmp.path(), &base, args, k.saturating_sub(1), k + 1)
                }
                None => steps(tmp.path(), &base, args),
            };
            ok(&base, args);
            let after = files(&base);
            let rewritten: Vec<_> = after.iter().filter(|f| !before.contains(f)).collect();
            let bytes: u64 = rewritten.iter().map(|f| f.2).sum();
            assert!(
                rewritten.len() <= 2,
                "{args:?} on {n} devices rewrote {rewritten:?}"
            );
            if n >= 400 {
                assert!(
                    bytes * 20 < total,
                    "{args:?} on {n} devices rewrote {bytes} of {total} registry bytes"
                );
            }
            eprintln!("{args:?} on {n} devices: {step_count} steps, {bytes} of {total} registry bytes rewritten");
            per_command.push(step_count);
        }
        measured.push(per_command);
    }
    assert_eq!(measured[0], measured[1], "steps on 20 devices vs 400");
}

/// What a killed run of `provision` before the journal left (CA-signed keys and certificates as
/// `.<name>.<pid>.tmp` next to their destinations, unknown to the registry) is removed by the next
/// command that writes there.
#[test]
fn temporaries_an_older_provision_left_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    for step in BASE {
        ok(&dir, step);
    }
    let ghost = dir.join("devices/ghost");
    fs::create_dir_all(&ghost).unwrap();
    let leftovers = [
        ghost.join(".device.key.4242.tmp"),
        ghost.join(".device.crt.4242.tmp"),
        dir.join(".registry.toml.4242.tmp"),
        dir.join(".crl.pem.4242.tmp.old"),
        dir.join("broker/.acl.4242.tmp"),
        dir.join("ca/.ca.key.77.tmp"),
    ];
    for f in &leftovers {
        fs::copy(dir.join("devices/d0/device.key"), f).unwrap();
    }
    // Not ours: kept.
    fs::write(dir.join("notes.tmp"), b"mine").unwrap();
    ok(&dir, &["device", "add", "ghost"]);
    for f in &leftovers {
        assert!(!f.exists(), "{} left", f.display());
    }
    assert!(dir.join("notes.tmp").exists());
    fs::remove_file(dir.join("notes.tmp")).unwrap();
    check_consistent(&dir, "after the sweep");
}

/// A `-o` output cut at every file-system step (`device config -o`, written outside the
/// provisioning directory): the output is the old one or the new one, never torn, and the next
/// write to that folder leaves no temporary behind.
#[test]
fn an_output_cut_at_any_step_leaves_no_temporary_after_the_next_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    for step in BASE {
        ok(&dir, step);
    }
    let out_dir = tmp.path().join("out");
    let blob = out_dir.join("blob.bin");
    let args = |out: &Path| -> Vec<String> {
        ["device", "config", "d0", "--wifi-ssid", "lab", "-o"]
            .iter()
            .map(|s| s.to_string())
            .chain([out.display().to_string()])
            .collect()
    };
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let a = args(&blob);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    ok(&dir, &a);
    let first = fs::read(&blob).unwrap();
    let mut cuts = 0;
    for n in 1.. {
        let out = run(&dir, &a, Some(n));
        if out.status.success() {
            break;
        }
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "cut at step {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cuts += 1;
        // Whole: the blob parses as a config blob of the right length either way.
        let now = fs::read(&blob).unwrap();
        assert_eq!(now.len(), first.len(), "cut at step {n}: a torn output");
        // The next write into the folder (to the same output or another one) sweeps.
        let other = out_dir.join(format!("other-{n}.bin"));
        let b = args(&other);
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        ok(&dir, &b);
        let left: Vec<String> = names(&out_dir)
            .into_iter()
            .filter(|f| f.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "cut at step {n}: left {left:?}");
        fs::remove_file(&other).unwrap();
    }
    assert!(
        cuts >= 3,
        "only {cuts} steps were cut: a release build has no fault points (test a debug build, or \
         build with --features fault-injection)"
    );
    assert_eq!(names(&out_dir), ["blob.bin"]);
}

/// The binary under test has its fault points (a debug build, or one with the `fault-injection`
/// feature): without them every cut above would run the command whole and prove nothing.
#[test]
fn the_binary_under_test_has_its_fault_points() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&tmp.path().join("pki"), &["init"], Some(1));
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "PROVISION_FAULT_AT=1 did not cut `init`: a release build has no fault points (test a \
         debug build, or build with --features fault-injection)"
    );
}
