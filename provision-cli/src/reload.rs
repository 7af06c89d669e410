//! Telling a running Mosquitto to re-read its CRL and ACL.
//!
//! Mosquitto re-reads the CRL and the ACL on SIGHUP. An already-connected client is not
//! disconnected by a new CRL, but every message it sends or would receive is checked against the
//! reloaded ACL, where a revoked device is denied everything. A restart drops the connection too.

use crate::error::{Error, Result};
use crate::registry::Platform;

/// How to make the broker reload.
pub enum Reload {
    /// Send SIGHUP to this process id (the broker's).
    Pid(i32),
    /// Run this shell command (e.g. `systemctl reload mosquitto`).
    Command(String),
}

/// What to print when the user gave neither: the exact commands for the platform the broker
/// config was written for (`provision broker --platform`), or for every platform when unknown.
pub fn manual_reload_hint(platform: Option<Platform>) -> String {
    let how = match platform {
        Some(Platform::Openwrt) => {
            "\
  kill -HUP $(pidof mosquitto)            # on the router; or /etc/init.d/mosquitto restart
(OpenWRT's `/etc/init.d/mosquitto reload` does nothing when only crl.pem and acl changed.)"
        }
        Some(Platform::Debian) => {
            "\
  systemctl reload mosquitto              # sends SIGHUP"
        }
        Some(Platform::Plain) => {
            "\
  kill -HUP $(pidof mosquitto)"
        }
        None => {
            "\
  kill -HUP $(pidof mosquitto)            # any system, OpenWRT too
  systemctl reload mosquitto              # Debian, Ubuntu"
        }
    };
    format!(
        "\
The broker must reload its CRL and ACL now (copy <dir>/broker/crl.pem and acl to it first if it
runs elsewhere). Run:
{how}
or pass --reload-pid PID / --reload-cmd CMD next time.
A client that was connected when revoked stays connected until the broker restarts, but after
the reload the ACL denies it every topic."
    )
}

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
