//! The esp-client core on the LX106: `build.sh sim` compiles the core's scenarios (src/sim.rs)
//! for the ESP8266's CPU the way the firmware is built (nightly rustc → assembly → GNU as → lx106
//! gcc), and `qemu-system-xtensa -M sim -cpu lx106` runs them. The transcript must equal the
//! committed one, which the host run of the same code prints too (src/sim.rs tests).
//!
//! Needs the nightly toolchain with rust-src, Debian's gcc-xtensa-lx106,
//! picolibc-xtensa-lx106-elf and qemu-system-misc; a missing one fails the test, naming it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs build.sh once per test process; returns its output directory.
fn build(what: &'static str) -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = root().join("target/esp8266");
        let st = Command::new("bash")
            .arg(root().join("esp-client/esp8266/build.sh"))
            .arg(what)
            .env("ESP8266_OUT", &out)
            .status()
            .expect("cannot run bash");
        assert!(
            st.success(),
            "esp-client/esp8266/build.sh {what} failed ({st})"
        );
        out
    })
}

/// Runs an ELF on the LX106 core with semihosting; (exit code, stdout).
fn qemu(elf: &Path) -> (i32, String) {
    let child = Command::new("qemu-system-xtensa")
        .args([
            "-M",
            "sim",
            "-cpu",
            "lx106",
            "-nographic",
            "-monitor",
            "none",
        ])
        .args(["-semihosting", "-device"])
        .arg(format!("loader,file={},cpu-num=0", elf.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("qemu-system-xtensa not found: apt-get install qemu-system-misc");
    // A hung core must not hang the test: stop QEMU (by its PID) after 60 s.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("qemu did not run");
    let _ = tx.send(());
    let _ = killer.join();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_core_runs_its_scenarios_on_the_lx106_with_the_host_transcript() {
    let out = build("sim");
    let (code, stdout) = qemu(&out.join("lx106-sim.elf"));
    let (first, body) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    assert_eq!(
        first, "== esp-client core on LX106: boot, command round trip, dropped connection",
        "not the LX106 build, or no output:\n{stdout}"
    );
    let want = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lx106-transcript.txt"),
    )
    .unwrap();
    assert_eq!(
        body, want,
        "the LX106 transcript differs from tests/lx106-transcript.txt"
    );
    assert_eq!(code, 0, "the scenarios reported a failure:\n{stdout}");
}
