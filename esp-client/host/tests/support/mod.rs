//! What the end-to-end tests share: the real `esp-client-host` binary run as a device process,
//! its log lines on a channel.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The host device process (keep-alive 5 s, backoff up to 1.5 s, connect timeout 3 s); its log
/// lines arrive on a channel and are kept for failure messages. Killed when dropped.
pub struct DeviceProc {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl DeviceProc {
    /// Starts the device on `flash`, with `extra` arguments (e.g. `--tls13`).
    pub fn start(flash: &Path, extra: &[&str]) -> DeviceProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_esp-client-host"))
            .arg("--flash")
            .arg(flash)
            .args([
                "--keep-alive",
                "5",
                "--max-backoff-ms",
                "1500",
                "--timeout-ms",
                "3000",
            ])
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
