//! What the end-to-end tests share: the real `esp-client-host` binary run as a device process,
//! its log lines on a channel; the real `provision` binary run on a test PKI.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_testkit::Pki;

/// What a test device runs with unless the test says otherwise: keep-alive 5 s, backoff up to
/// 1.5 s, connect timeout 3 s.
pub const TEST_DEFAULTS: [(&str, &str); 3] = [
    ("--keep-alive", "5"),
    ("--max-backoff-ms", "1500"),
    ("--timeout-ms", "3000"),
];

/// The host device process; its log lines arrive on a channel and are kept for failure messages.
/// Killed when dropped.
pub struct DeviceProc {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl DeviceProc {
    /// Starts the device on `flash`, with `extra` arguments (e.g. `--tls13`, or one of
    /// [`TEST_DEFAULTS`] with another value).
    pub fn start(flash: &Path, extra: &[&str]) -> DeviceProc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_esp-client-host"));
        cmd.arg("--flash").arg(flash);
        for (flag, value) in TEST_DEFAULTS {
            if !extra.contains(&flag) {
                cmd.args([flag, value]);
            }
        }
        let mut child = cmd
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("esp-client-host");
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (err, keep) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        DeviceProc { child, lines, log }
    }

    /// The next log line containing `needle`, waiting up to `within`.
    pub fn line_with(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for(&self, needle: &str, within: Duration) -> bool {
        self.line_with(needle, within).is_some()
    }

    /// Every line the device logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The next log line containing `needle`; fails the test with the log when it does not
    /// come within `within`.
    pub fn expect(&self, needle: &str, within: Duration) -> String {
        self.line_with(needle, within)
            .unwrap_or_else(|| panic!("no {needle:?} in the device log:\n{}", self.log()))
    }

    /// Kills the process (SIGKILL: no goodbye, as when power is cut) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (the device says offline and disconnects), then its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child, which is not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("the device process")
    }
}

impl Drop for DeviceProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `provision` binary, next to `esp-client-host` (the same target directory);
/// `cargo test --workspace` builds both.
pub fn provision_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_esp-client-host")).with_file_name("provision");
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo build -p provision-cli --bin provision`)",
        p.display()
    );
    p
}

/// `provision --dir <pki> ARGS`, without the caller's `PROVISION_*` environment.
pub fn provision(pki: &Pki, args: &[&str]) -> Output {
    Command::new(provision_bin())
        .arg("--dir")
        .arg(pki.path())
        .args(args)
        .env_remove("PROVISION_DIR")
        .env_remove("PROVISION_BROKER")
        .env_remove("PROVISION_OPERATOR")
        .stdin(Stdio::null())
        .output()
        .expect("provision runs")
}

/// `o`, which must have succeeded.
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "provision failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    o
}
