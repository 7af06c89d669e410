//! Typed errors of the `provision` library, each with a stable exit code (listed in
//! `provision --help` and the README).

use std::path::PathBuf;

use wire_format::device_id::IdError;

/// Everything `provision` can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid device id {id:?}: {source}")]
    InvalidDeviceId { id: String, source: IdError },

    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("a CA already exists in {0}; pass --force to replace it (the old one is moved to a timestamped backup)")]
    CaExists(PathBuf),

    #[error("no CA in {}; run `provision init` first, or point --dir (or PROVISION_DIR) at the directory that holds your CA", .0.display())]
    NoCa(PathBuf),

    #[error("no broker configured in {}; run `provision broker --host NAME` first (or point --dir or PROVISION_DIR elsewhere)", .0.display())]
    NoBroker(PathBuf),

    #[error("device {0:?} already exists")]
    DeviceExists(String),

    #[error("device {0:?} exists and is revoked; `provision device add --replace {0}` issues it a new identity")]
    RevokedExists(String),

    #[error(
        "device {0:?} is active; renew it with `provision device renew {0}`, or revoke it first"
    )]
    DeviceActive(String),

    #[error("unknown device {0:?}")]
    UnknownDevice(String),

    #[error("device {0:?} is already revoked")]
    AlreadyRevoked(String),

    #[error("{path} {reason}")]
    UnsafePath { path: PathBuf, reason: String },

    #[error("{0} holds an interrupted command's journal and is read-only here: make it writable and run any provision command in it once, which completes the interrupted command")]
    Interrupted(PathBuf),

    #[error("{dir} has no registry but still holds {found}: an earlier `provision init --force` was interrupted halfway. Move {found} into the newest {dir}/backup-*/ folder (or move that folder's registry (registry/ or registry.toml) and crl.pem back), then run the command again")]
    HalfMoved { dir: PathBuf, found: String },

    #[error("{path} is corrupt: {reason}; nothing was changed")]
    Corrupt { path: PathBuf, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },

    #[error("certificate operation failed: {0}")]
    Certificate(#[from] rcgen::Error),

    #[error("broker reload failed: {0}")]
    Reload(String),

    #[error("OTA signing key {key_id} already exists ({path}); refusing to overwrite it")]
    OtaKeyExists { key_id: u32, path: PathBuf },

    #[error("no OTA signing key in {0}; run `provision ota keygen` first, or name the key (--pubkey for verify, --key-id for build --unsigned)")]
    NoOtaKeys(PathBuf),

    #[error("OTA key id {0} is not in the registry; see `provision ota keygen --key-id`")]
    UnknownOtaKey(u32),

    #[error("no operator identity {name:?} in {}; `provision init` creates _operator, `provision operator add NAME` others (--operator, --dir or PROVISION_DIR)", dir.display())]
    UnknownOperator { name: String, dir: PathBuf },

    #[error("cannot reach the broker at {addr}: {reason}")]
    BrokerUnreachable { addr: String, reason: String },

    #[error("TLS with the broker at {addr} failed: {reason}")]
    Tls { addr: String, reason: String },

    #[error("the broker at {addr} did not let {operator} in: {reason}")]
    NotAuthorized {
        addr: String,
        operator: String,
        reason: String,
    },

    #[error("no answer from device {id:?} within {secs} s ({what}){hint}")]
    DeviceTimeout {
        id: String,
        what: String,
        secs: u64,
        hint: String,
    },

    #[error("device {id:?} refused {what}: {reason}")]
    DeviceRefused {
        id: String,
        what: String,
        reason: String,
    },

    #[error("the update did not confirm on {failed} of {total} device(s)")]
    UpdateFailed { failed: usize, total: usize },

    #[error("bundle {path} rejected: {} check failed: {source}", source.check())]
    BundleRejected {
        path: PathBuf,
        source: wire_format::ota::OtaError,
    },
}

impl Error {
    /// Stable process exit codes: 2 is clap's usage error, the rest are ours.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::InvalidDeviceId { .. } | Error::InvalidInput(_) | Error::UnsafePath { .. } => 3,
            Error::CaExists(_)
            | Error::NoCa(_)
            | Error::NoBroker(_)
            | Error::DeviceExists(_)
            | Error::RevokedExists(_)
            | Error::DeviceActive(_)
            | Error::UnknownDevice(_)
            | Error::AlreadyRevoked(_)
            | Error::OtaKeyExists { .. }
            | Error::NoOtaKeys(_)
            | Error::UnknownOtaKey(_)
            | Error::UnknownOperator { .. } => 4,
            Error::Corrupt { .. } | Error::Interrupted(_) | Error::HalfMoved { .. } => 5,
            Error::Io { .. } => 6,
            Error::Certificate(_) => 7,
            Error::Reload(_) => 8,
            Error::BundleRejected { .. } => 9,
            Error::BrokerUnreachable { .. } => 11,
            Error::Tls { .. } => 12,
            Error::NotAuthorized { .. } => 13,
            Error::DeviceTimeout { .. } => 14,
            Error::DeviceRefused { .. } => 15,
            Error::UpdateFailed { .. } => 16,
        }
    }
}

impl Error {
    /// [`Error::NoCa`] naming `dir` as an absolute path, so a user in the wrong folder sees where
    /// `provision` looked.
    pub fn no_ca(dir: &std::path::Path) -> Error {
        Error::NoCa(absolute(dir))
    }

    /// [`Error::NoBroker`] naming `dir` as an absolute path.
    pub fn no_broker(dir: &std::path::Path) -> Error {
        Error::NoBroker(absolute(dir))
    }
}

/// `p` made absolute (without resolving links), for messages that say where `provision` looked.
pub fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a human context ("writing certs/ca/ca.key") to an I/O error.
pub trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}
