//! A full disk, for real: each command runs on a small tmpfs of its own (mounted in a private
//! mount namespace, so nothing outlives the run) that is filled to the last page and then given
//! back 0, 1, 2, ... pages, until the command succeeds. At every size that is too small the
//! command must fail naming the problem (no space left on device) and leave the provisioning
//! directory exactly as it was (registry, CA, keys, CRL, broker folder: every file, byte for byte,
//! and its mode); the run with enough space then succeeds on that same directory.
//!
//! The tmpfs needs root or user namespaces (`unshare`). Where neither is allowed the test fails
//! loudly, saying so: it never passes without having filled a disk.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("provision")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("PROVISION_DIR")
        .env_remove("PROVISION_FAULT_AT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "provision {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Exit status of the script when it could not set the disk up (not provision's).
const SETUP_FAILED: i32 = 111;

/// Copies `work` onto a fresh 1 MiB tmpfs at `mnt`, fills it, frees `free_pages` pages, runs
/// provision there, then copies the directory back over `work` (whatever provision left).
const SCRIPT: &str = r#"
set -u
mnt=$1; work=$2; free=$3; bin=$4; shift 4
fail() { echo "full-disk setup: $*" >&2; exit 111; }
mount -t tmpfs -o size=1m,mode=0755 provision-full "$mnt" || fail "cannot mount a tmpfs"
cp -a "$work" "$mnt/pki" || fail "cannot copy the directory onto the tmpfs"
# dd stops at ENOSPC: the tmpfs is full to its last page.
dd if=/dev/zero of="$mnt/filler" bs=4096 2>/dev/null
[ "$(df --output=avail "$mnt" | tail -1 | tr -d ' ')" = 0 ] || fail "the tmpfs did not fill"
truncate -s "-$free" "$mnt/filler" || fail "cannot free space"
"$bin" --dir "$mnt/pki" "$@"
rc=$?
rm -f "$mnt/filler"
rm -rf "$work" && cp -a "$mnt/pki" "$work" || fail "cannot copy the directory back"
exit $rc
"#;

/// How to get a private mount namespace here: as root `unshare --mount`, else a user namespace.
fn unshare_args() -> Vec<&'static str> {
    let probe = |args: &[&str]| {
        Command::new("unshare")
            .args(args)
            .args(["sh", "-c", "mount -t tmpfs -o size=64k probe /mnt 2>/dev/null || mount -t tmpfs -o size=64k probe /tmp"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for args in [
        &["--mount", "--propagation", "private"][..],
        &[
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
        ][..],
    ] {
        if probe(args) {
            return args.to_vec();
        }
    }
    panic!(
        "cannot mount a tmpfs in a private mount namespace here (neither `unshare --mount` as \
         root nor a user namespace is allowed): the full-disk test cannot run. Run it as root, \
         or where unprivileged user namespaces are enabled"
    );
}

fn run_full(ns: &[&str], mnt: &Path, work: &Path, free_pages: u64, args: &[&str]) -> Output {
    Command::new("unshare")
        .args(ns)
        .args(["sh", "-c", SCRIPT, "full-disk"])
        .arg(mnt)
        .arg(work)
        .arg((free_pages * 4096).to_string())
        .arg(bin())
        .args(args)
        .env_remove("PROVISION_DIR")
        .env_remove("PROVISION_FAULT_AT")
        .output()
        .unwrap()
}

/// Every file and folder under `dir`: contents and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let mode = m.permissions().mode();
            if m.is_dir() {
                out.insert(rel, (Vec::new(), mode));
                stack.push(p);
            } else {
                out.insert(rel, (fs::read(&p).unwrap(), mode));
            }
        }
    }
    out
}

fn diff(
    before: &BTreeMap<PathBuf, (Vec<u8>, u32)>,
    after: &BTreeMap<PathBuf, (Vec<u8>, u32)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (p, v) in before {
        match after.get(p) {
            None => out.push(format!("{} is gone", p.display())),
            Some(w) if w.0 != v.0 => out.push(format!("{} changed", p.display())),
            Some(w) if w.1 != v.1 => {
                out.push(format!("{} mode {:o} -> {:o}", p.display(), v.1, w.1))
            }
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("{} appeared", p.display()));
    }
    out
}

/// Runs `args` on a disk with 0, 1, 2, ... free pages until it succeeds; checks every failure.
/// Returns how many sizes failed.
fn fill_until_it_fits(ns: &[&str], tmp: &Path, work: &Path, args: &[&str]) -> u64 {
    let mnt = tmp.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let before = snapshot(work);
    for free in 0..=128 {
        let out = run_full(ns, &mnt, work, free, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(
            out.status.code(),
            Some(SETUP_FAILED),
            "{args:?} with {free} free pages: {stderr}"
        );
        if out.status.success() {
            assert!(free > 0, "{args:?} succeeded on a full disk");
            return free;
        }
        assert!(
            stderr.contains("No space left on device"),
            "{args:?} with {free} free pages failed without naming the full disk: {stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{args:?} with {free} free pages: {stderr}"
        );
        let changes = diff(&before, &snapshot(work));
        assert!(
            changes.is_empty(),
            "{args:?} with {free} free pages changed the directory: {changes:?}\n{stderr}"
        );
    }
    panic!("{args:?} did not succeed with 128 free pages (512 KiB)");
}

#[test]
fn a_full_disk_fails_clearly_and_changes_nothing() {
    let ns = unshare_args();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("pki");
    ok(&work, &["init"]);
    ok(
        &work,
        &["broker", "--host", "localhost", "--ip", "127.0.0.1"],
    );
    ok(&work, &["device", "add", "d0", "d1"]);

    let pages = fill_until_it_fits(&ns, tmp.path(), &work, &["device", "add", "d2"]);
    eprintln!("device add: failed cleanly with 0..{pages} free pages");
    let show = ok(&work, &["device", "show", "d2"]);
    assert!(show.contains("d2"), "{show}");

    let pages = fill_until_it_fits(&ns, tmp.path(), &work, &["device", "revoke", "d1"]);
    eprintln!("device revoke: failed cleanly with 0..{pages} free pages");
    let list = ok(&work, &["device", "list"]);
    let d1 = list.lines().find(|l| l.contains("d1")).unwrap();
    assert!(d1.contains("revoked"), "{list}");

    let pages = fill_until_it_fits(
        &ns,
        tmp.path(),
        &work,
        &["broker", "--host", "mqtt.test", "--ip", "127.0.0.1"],
    );
    eprintln!("broker: failed cleanly with 0..{pages} free pages");

    // The directory works on a disk with space: the next commands succeed.
    ok(&work, &["device", "add", "d3"]);
    ok(&work, &["device", "revoke", "d3"]);
    ok(&work, &["status"]);
}
