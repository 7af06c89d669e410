//! Reading an existing Mosquitto 2.0 configuration (Debian's `/etc/mosquitto/mosquitto.conf`
//! and the drop-ins of its `include_dir`) to say what adding our drop-in would change.
//!
//! Our drop-in sets `per_listener_settings true` and scopes its authentication and ACL to its
//! own listener. What that can do to the rest of the broker (checked against Mosquitto 2.0.11):
//! - a security setting read *before* our file makes Mosquitto refuse to start
//!   ("per_listener_settings must be set before any other security settings");
//! - in a file read *after* ours, a listener setting above that file's first `listener` line
//!   applies to the listener defined last, which is ours;
//! - other listeners keep their own settings, but Mosquitto's limits are global, and clients of
//!   a listener without an ACL can reach our devices' topics.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// The file name our drop-in is installed under: `00-` keeps it first in `conf.d/`.
pub const DROP_IN_NAME: &str = "00-provision.conf";

/// Settings Mosquitto counts as security settings (per listener when `per_listener_settings`).
const SECURITY: &[&str] = &[
    "acl_file",
    "allow_anonymous",
    "allow_zero_length_clientid",
    "auth_plugin",
    "auto_id_prefix",
    "password_file",
    "plugin",
    "psk_file",
];

/// Settings that belong to the listener defined last.
const LISTENER: &[&str] = &[
    "cafile",
    "capath",
    "certfile",
    "keyfile",
    "crlfile",
    "ciphers",
    "ciphers_tls1.3",
    "tls_version",
    "require_certificate",
    "use_identity_as_username",
    "use_subject_as_username",
    "use_username_as_clientid",
    "protocol",
    "mount_point",
    "max_connections",
    "max_qos",
    "http_dir",
    "psk_hint",
    "socket_domain",
    "bind_interface",
];

/// One setting as Mosquitto reads it.
#[derive(Debug, Clone)]
struct Setting {
    file: PathBuf,
    line: usize,
    key: String,
    value: String,
    /// Whether a `listener` line came earlier in the same file.
    below_listener: bool,
}

impl Setting {
    fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// Files larger than this are not a Mosquitto config.
const MAX_FILE: u64 = 1 << 20;

fn read_file(path: &Path) -> Result<String> {
    crate::fsutil::read_text_bounded(path, MAX_FILE, "Mosquitto config")
}

/// `*.conf` in `dir`, in the order Mosquitto reads them (case-insensitive first).
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        (name.to_uppercase(), name)
    });
    Ok(files)
}

/// The settings of `main` and its drop-ins in read order, with the position at which our
/// drop-in would be read (our own installed copy is skipped).
fn read_tree(main: &Path) -> Result<(Vec<Setting>, usize)> {
    let mut out = Vec::new();
    let mut ours_at = None;
    read_one(main, &mut out, &mut ours_at, 0)?;
    let at = ours_at.unwrap_or(out.len());
    Ok((out, at))
}

fn read_one(
    path: &Path,
    out: &mut Vec<Setting>,
    ours_at: &mut Option<usize>,
    depth: u32,
) -> Result<()> {
    if depth > 3 {
        return Err(Error::InvalidInput(format!(
            "{}: include_dir nested too deeply",
            path.display()
        )));
    }
    let text = read_file(path)?;
    let mut below_listener = false;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((k, v)) => (k, v.trim()),
            None => (line, ""),
        };
        if key == "include_dir" {
            let dir = Path::new(value);
            for file in drop_ins(dir)? {
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                if name == DROP_IN_NAME {
                    continue;
                }
                if ours_at.is_none()
                    && (name.to_uppercase(), name.to_string())
                        > (DROP_IN_NAME.to_uppercase(), DROP_IN_NAME.to_string())
                {
                    *ours_at = Some(out.len());
                }
                read_one(&file, out, ours_at, depth + 1)?;
            }
            if ours_at.is_none() {
                *ours_at = Some(out.len());
            }
            continue;
        }
        if key == "listener" {
            below_listener = true;
        }
        out.push(Setting {
            file: path.to_path_buf(),
            line: n + 1,
            key: key.to_string(),
            value: value.to_string(),
            below_listener,
        });
    }
    Ok(())
}

/// What our drop-in (listening on `port`) would change in the broker configured by `main`;
/// one sentence per finding, empty when it coexists cleanly.
pub fn coexistence_warnings(main: &Path, port: u16, global_limits: &[&str]) -> Result<Vec<String>> {
    let (settings, ours_at) = read_tree(main)?;
    let mut warnings = Vec::new();
    for (i, s) in settings.iter().enumerate() {
        let before_ours = i < ours_at;
        let key = s.key.as_str();
        if key == "per_listener_settings" && s.value != "true" {
            warnings.push(format!(
                "{}: `per_listener_settings {}` contradicts our drop-in, which needs it true \
                 (the value read last wins); remove that line",
                s.at(),
                s.value
            ));
        } else if SECURITY.contains(&key) && before_ours {
            warnings.push(format!(
                "{}: `{key}` is read before our drop-in, so Mosquitto will refuse to start \
                 (\"per_listener_settings must be set before any other security settings\"); \
                 move it into a conf.d/ file below its own `listener` line",
                s.at()
            ));
        } else if (SECURITY.contains(&key) || LISTENER.contains(&key)) && !s.below_listener {
            warnings.push(format!(
                "{}: `{key}` comes before any `listener` line in its file, so it would apply \
                 to the listener defined before it (ours, port {port}); move it below its \
                 `listener` line",
                s.at()
            ));
        } else if key == "port" || key == "bind_address" {
            warnings.push(format!(
                "{}: `{key}` configures Mosquitto's default listener, which per-listener \
                 settings do not cover well; use `listener PORT [ADDRESS]` instead",
                s.at()
            ));
        } else if global_limits.contains(&key) {
            warnings.push(format!(
                "{}: `{key} {}` is also set by our drop-in; the value read last wins (ours is \
                 read {})",
                s.at(),
                s.value,
                if before_ours { "after it" } else { "before it" }
            ));
        } else if key == "listener" {
            let listener_port = s.value.split_whitespace().next().unwrap_or("");
            if listener_port == port.to_string() {
                warnings.push(format!(
                    "{}: `listener {}` uses our port {port}: Mosquitto will not start; choose \
                     another --port",
                    s.at(),
                    s.value
                ));
                continue;
            }
            // The listener's own block: settings after it in the same file, up to the next one.
            let block: Vec<&Setting> = settings[i + 1..]
                .iter()
                .take_while(|o| o.file == s.file && o.key != "listener")
                .collect();
            let has = |k: &str| block.iter().any(|o| o.key == k);
            warnings.push(format!(
                "{}: `listener {}` keeps its own authentication, but Mosquitto's limits are \
                 global: its clients can no longer send packets over {} bytes or queue more \
                 than our limits (Zigbee2MQTT, for one, sends bigger messages); if they need \
                 more, pass a larger --max-packet-size",
                s.at(),
                s.value,
                crate::broker::MAX_PACKET_SIZE
            ));
            if !has("acl_file") && !has("plugin") && !has("auth_plugin") {
                warnings.push(format!(
                    "{}: `listener {}` has no acl_file: its clients can read every device's \
                     telemetry and publish commands to devices/<id>/cmd/; give it an acl_file \
                     that grants only its own topics",
                    s.at(),
                    s.value
                ));
            }
            if !has("password_file")
                && !has("plugin")
                && !has("auth_plugin")
                && !has("psk_file")
                && !block
                    .iter()
                    .any(|o| o.key == "allow_anonymous" && o.value == "true")
            {
                warnings.push(format!(
                    "{}: `listener {}` has no password_file, plugin or `allow_anonymous true` \
                     below it: with per_listener_settings true its clients can no longer \
                     connect",
                    s.at(),
                    s.value
                ));
            }
        }
    }
    Ok(warnings)
}
