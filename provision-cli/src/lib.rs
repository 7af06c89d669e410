//! `provision`: the library behind the `provision` binary.
//!
//! It creates a P-256 CA and the broker, device and operator certificates, writes a hardened
//! Mosquitto configuration and ACL (or a RabbitMQ cluster's), keeps a registry of everything it issued and revokes devices
//! through a CRL. Every command writes all of its files or none (see [`fsutil`]).

pub mod broker;
pub mod client;
pub mod cmd;
pub mod crl;
pub mod device;
pub mod device_config;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod init;
pub mod layout;
pub mod mosquitto_conf;
pub mod operator;
pub mod ota;
pub mod ota_push;
pub mod ota_status;
pub mod pki;
pub mod rabbitmq_conf;
pub mod rabbitmq_sync;
pub mod registry;
pub mod registry_files;
pub mod reload;
pub mod renew;
pub mod retained_status;
pub mod status;
pub mod store;
pub mod topics;
pub mod watch;

pub use error::{Error, Result};

/// `s` as one POSIX shell word, so a printed command can be pasted (paths with spaces).
pub fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-/+=:,@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
