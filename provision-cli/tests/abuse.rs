//! The provisioning directory protects itself against mistakes and planted files: each case
//! below was first seen to fail (overwritten CA key, certificates that do not chain, writes
//! through links, hangs on a FIFO, a read-only CA that could not even be listed).

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn provision(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("provision").unwrap();
    cmd.arg("--dir")
        .arg(dir)
        .env_remove("PROVISION_DIR")
        .env_remove("PROVISION_FAULT_AT")
        .timeout(Duration::from_secs(20));
    cmd
}

/// `<tmp>/pki` with a CA, a broker folder and device `d1`; `<tmp>` is free for outputs.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    provision(&dir).arg("init").assert().success();
    provision(&dir)
        .args(["broker", "--host", "localhost", "--ip", "127.0.0.1"])
        .assert()
        .success();
    provision(&dir)
        .args(["device", "add", "d1"])
        .assert()
        .success();
    (tmp, dir)
}

fn config(dir: &Path, out: &Path) -> Command {
    let mut c = provision(dir);
    c.args(["device", "config", "d1", "--wifi-ssid", "lab", "-o"])
        .arg(out);
    c
}

#[test]
fn output_on_provisions_own_files_is_refused() {
    let (tmp, dir) = setup();
    let link = tmp.path().join("link-to-ca");
    symlink(dir.join("ca"), &link).unwrap();
    for target in [
        dir.join("ca/ca.key"),
        dir.join("registry.toml"),
        dir.join("registry/registry.json"),
        dir.join("registry/devices-00.json"),
        dir.join("crl.pem"),
        dir.join("devices/d1/device.key"),
        dir.join("broker/acl"),
        dir.join("ca/new-file"),
        link.join("ca.key"),
    ] {
        let before = fs::read(dir.join("ca/ca.key")).unwrap();
        config(&dir, &target)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("provision's own files"));
        assert_eq!(fs::read(dir.join("ca/ca.key")).unwrap(), before);
    }
    // The same for a firmware bundle.
    let image = tmp.path().join("app.bin");
    fs::write(&image, b"firmware").unwrap();
    provision(&dir)
        .args(["ota", "build"])
        .arg(&image)
        .args([
            "--version",
            "1.0.0",
            "--target",
            "esp8266",
            "--unsigned",
            "--key-id",
            "1",
            "-o",
        ])
        .arg(dir.join("devices/d1/device.crt"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("provision's own files"));
    // Beside the directory, or a new file at its top, is fine.
    config(&dir, &tmp.path().join("d1.bin")).assert().success();
    config(&dir, &dir.join("d1.bin")).assert().success();
}

#[test]
fn a_ca_key_that_does_not_match_ca_crt_is_refused() {
    let (_tmp, dir) = setup();
    let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let key = dir.join("ca/ca.key");
    fs::write(&key, other).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    for args in [&["device", "add", "d2"][..], &["device", "revoke", "d1"]] {
        let crl = fs::read(dir.join("crl.pem")).unwrap();
        provision(&dir)
            .args(args)
            .assert()
            .code(5)
            .stderr(predicate::str::contains("does not match"));
        assert_eq!(fs::read(dir.join("crl.pem")).unwrap(), crl);
    }
    assert!(!dir.join("devices/d2").exists());
}

#[test]
fn a_ca_key_others_can_read_is_refused_naming_chmod_600() {
    let (_tmp, dir) = setup();
    let key = dir.join("ca/ca.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    provision(&dir)
        .args(["device", "add", "d2"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("chmod 600"));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    provision(&dir)
        .args(["device", "add", "d2"])
        .assert()
        .success();
}

#[test]
fn nothing_is_written_through_a_symlinked_folder_or_lock() {
    let (tmp, dir) = setup();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let empty = |p: &Path| fs::read_dir(p).unwrap().next().is_none();

    // `devices/<id>` planted as a link for a device about to be added.
    symlink(&outside, dir.join("devices/d2")).unwrap();
    provision(&dir)
        .args(["device", "add", "d2"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("symbolic link"));
    assert!(empty(&outside));
    fs::remove_file(dir.join("devices/d2")).unwrap();

    // `devices` itself, and `broker`.
    for (name, args) in [
        ("devices", &["device", "add", "d3"][..]),
        ("broker", &["broker", "--host", "localhost"]),
    ] {
        let real = dir.join(format!("{name}.real"));
        fs::rename(dir.join(name), &real).unwrap();
        symlink(&outside, dir.join(name)).unwrap();
        provision(&dir)
            .args(args)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("symbolic link"));
        assert!(empty(&outside), "{name}");
        fs::remove_file(dir.join(name)).unwrap();
        fs::rename(&real, dir.join(name)).unwrap();
    }

    // `ca` as a link: `init --force` moves the link into the backup, never writes through it.
    let ca_real = tmp.path().join("ca-real");
    fs::rename(dir.join("ca"), &ca_real).unwrap();
    symlink(&ca_real, dir.join("ca")).unwrap();
    let ca_key = fs::read(ca_real.join("ca.key")).unwrap();
    provision(&dir)
        .args(["device", "add", "d4"])
        .assert()
        .success();
    provision(&dir).args(["init", "--force"]).assert().success();
    assert_eq!(fs::read(ca_real.join("ca.key")).unwrap(), ca_key);
    assert!(!fs::symlink_metadata(dir.join("ca"))
        .unwrap()
        .file_type()
        .is_symlink());

    // A `.lock` link would make provision create (or open) any file it names.
    let victim = tmp.path().join("victim");
    fs::remove_file(dir.join(".lock")).unwrap();
    symlink(&victim, dir.join(".lock")).unwrap();
    provision(&dir)
        .args(["device", "add", "d5"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(".lock is a symbolic link"));
    assert!(!victim.exists());
}

#[test]
fn dev_zero_or_a_fifo_as_input_is_refused_at_once() {
    let (tmp, dir) = setup();
    let fifo = tmp.path().join("fifo");
    assert!(StdCommand::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = tmp.path().join("out.bundle");
    for input in [Path::new("/dev/zero"), fifo.as_path()] {
        // Each would hang or fill memory if read; the timeout fails the test.
        provision(&dir)
            .args(["device", "add", "--from-file"])
            .arg(input)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("not a regular file"));
        provision(&dir)
            .args(["ota", "build"])
            .arg(input)
            .args([
                "--version",
                "1.0.0",
                "--target",
                "esp8266",
                "--unsigned",
                "--key-id",
                "1",
                "-o",
            ])
            .arg(&out)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("not a regular file"));
        provision(&dir)
            .args(["ota", "inspect"])
            .arg(input)
            .assert()
            .code(3);
        provision(&dir)
            .args(["ota", "verify"])
            .arg(input)
            .args(["--pubkey"])
            .arg(input)
            .assert()
            .code(3);
    }
    // The registry or the CA key replaced by a FIFO: a clear error, not a hang.
    fs::rename(dir.join("ca/ca.key"), tmp.path().join("ca.key")).unwrap();
    StdCommand::new("mkfifo")
        .arg(dir.join("ca/ca.key"))
        .status()
        .unwrap();
    provision(&dir)
        .args(["device", "add", "d2"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not a regular file"));
    fs::rename(
        dir.join("registry/registry.json"),
        tmp.path().join("registry.json"),
    )
    .unwrap();
    StdCommand::new("mkfifo")
        .arg(dir.join("registry/registry.json"))
        .status()
        .unwrap();
    provision(&dir)
        .args(["device", "list"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not a regular file"));
}

#[test]
fn dir_naming_a_file_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("registry.toml");
    fs::write(&file, b"x").unwrap();
    for args in [&["device", "list"][..], &["init"]] {
        provision(&file)
            .args(args)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("is a file, not a directory"));
    }
}

#[test]
fn backups_are_private_whatever_the_umask() {
    let (_tmp, dir) = setup();
    let bin = assert_cmd::cargo::cargo_bin("provision");
    let st = StdCommand::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" --dir \"$1\" init --force")
        .arg(&bin)
        .arg(&dir)
        .env_remove("PROVISION_DIR")
        .status()
        .unwrap();
    assert!(st.success());
    let backup = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("backup-")
        })
        .unwrap();
    assert_eq!(
        fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        fs::metadata(backup.join("ca/ca.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

/// The CA on read-only media: listing, showing, writing a config blob elsewhere, and checking
/// bundles work without write access. As root (CI), the commands run as user `nobody` on a
/// directory it owns with every write bit cleared; otherwise as ourselves after `chmod -R a-w`.
#[test]
fn read_only_commands_work_on_a_read_only_directory() {
    let (tmp, dir) = setup();
    provision(&dir).args(["ota", "keygen"]).assert().success();
    let image = tmp.path().join("app.bin");
    fs::write(&image, b"firmware image").unwrap();
    let bundle = tmp.path().join("app.bundle");
    provision(&dir)
        .args(["ota", "build"])
        .arg(&image)
        .args(["--version", "1.0.0", "--target", "esp8266", "-o"])
        .arg(&bundle)
        .assert()
        .success();
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&bundle, fs::Permissions::from_mode(0o644)).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        for p in [&dir, &out_dir] {
            assert!(StdCommand::new("chown")
                .args(["-R", "65534:65534"])
                .arg(p)
                .status()
                .unwrap()
                .success());
        }
    }
    assert!(StdCommand::new("chmod")
        .args(["-R", "a-w"])
        .arg(&dir)
        .status()
        .unwrap()
        .success());
    let bin = assert_cmd::cargo::cargo_bin("provision");
    let run = |args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        c.arg("--dir")
            .arg(&dir)
            .args(args)
            .env_remove("PROVISION_DIR")
            .timeout(Duration::from_secs(20));
        c
    };
    let out = out_dir.join("d1.bin");
    let bundle = bundle.to_str().unwrap();
    for args in [
        &["device", "list"][..],
        &["device", "list", "--json"],
        &["device", "show", "d1"],
        &[
            "device",
            "config",
            "d1",
            "--wifi-ssid",
            "lab",
            "-o",
            out.to_str().unwrap(),
        ],
        &["ota", "verify", bundle],
        &["ota", "inspect", bundle],
        &["status"],
    ] {
        run(args).assert().success();
    }
    assert!(out.exists());
    // A write still fails, with the reason.
    run(&["device", "add", "d2"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("ermission denied"));
    let _ = StdCommand::new("chmod")
        .args(["-R", "u+w"])
        .arg(&dir)
        .status();
}

#[test]
fn wifi_credentials_that_cannot_work_are_refused() {
    let (tmp, dir) = setup();
    let out = tmp.path().join("d1.bin");
    let pw = tmp.path().join("pw");
    let with = |ssid: &str, password: Option<&str>| {
        let mut c = provision(&dir);
        c.args(["device", "config", "d1", "--wifi-ssid", ssid, "-o"])
            .arg(&out);
        if let Some(p) = password {
            fs::write(&pw, format!("{p}\n")).unwrap();
            c.arg("--wifi-password-file").arg(&pw);
        }
        c
    };
    let long_ssid = "s".repeat(33);
    let hex64 = "0123456789abcdef".repeat(4);
    let not_hex64 = "z".repeat(64);
    let pass63 = "p".repeat(63);
    for (ssid, password, message) in [
        ("", None, "1 to 32 bytes"),
        (long_ssid.as_str(), None, "1 to 32 bytes"),
        ("home\twifi", None, "control character"),
        ("home", Some("short"), "8 to 63 printable"),
        ("home", Some(not_hex64.as_str()), "64 hex digits"),
        ("home", Some("pässwörd-ü"), "8 to 63 printable"),
    ] {
        let assert = with(ssid, password)
            .assert()
            .code(3)
            .stderr(predicate::str::contains(message));
        // The password itself is never echoed.
        if let Some(p) = password {
            let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
            assert!(!err.contains(p), "{err}");
        }
        assert!(!out.exists(), "{ssid:?}");
    }
    for (ssid, password) in [
        ("s", None),
        ("home", Some("eight ch")),
        ("home", Some(pass63.as_str())),
        ("home", Some(hex64.as_str())),
    ] {
        with(ssid, password).assert().success();
    }
}
