//! Telling a running Mosquitto to re-read its CRL and ACL.
//!
//! Mosquitto re-reads the CRL and the ACL on SIGHUP. An already-connected client is not
//! disconnected by a new CRL, but every message it sends or would receive is checked against the
//! reloaded ACL, where a revoked device is denied everything. A restart drops the connection too.

use crate::error::{Error, Result};

/// How to make the broker reload.
pub enum Reload {
    /// Send SIGHUP to this process id (the broker's).
    Pid(i32),
    /// Run this shell command (e.g. `systemctl reload mosquitto`).
    Command(String),
}

/// What to print when the user gave neither: the exact commands for the common setups.
pub const MANUAL_RELOAD_HINT: &str = "\
The broker must reload its CRL and ACL now. Run one of:
  kill -HUP $(pidof mosquitto)            # any system
  systemctl reload mosquitto              # Debian, Ubuntu
  /etc/init.d/mosquitto reload            # OpenWRT
or pass --reload-pid PID / --reload-cmd CMD next time.
A client that was connected when revoked stays connected until the broker restarts, but after
the reload the ACL denies it every topic.";

pub fn reload(how: &Reload) -> Result<()> {
    match how {
        Reload::Pid(pid) => {
            if *pid <= 0 {
                return Err(Error::InvalidInput(format!(
                    "--reload-pid {pid} is not a process id"
                )));
            }
            // SAFETY: kill(2) with a positive pid and a valid signal number has no memory effects.
            let rc = unsafe { libc::kill(*pid, libc::SIGHUP) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                return Err(Error::Reload(format!("sending SIGHUP to pid {pid}: {err}")));
            }
            Ok(())
        }
        Reload::Command(cmd) => {
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .status()
                .map_err(|e| Error::Reload(format!("running {cmd:?}: {e}")))?;
            if status.success() {
                Ok(())
            } else {
                Err(Error::Reload(format!("{cmd:?} exited with {status}")))
            }
        }
    }
}
