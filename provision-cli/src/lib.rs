//! `provision`: the library behind the `provision` binary.
//!
//! It creates a P-256 CA and the broker, device and operator certificates, writes a hardened
//! Mosquitto configuration and ACL, keeps a registry of everything it issued and revokes devices
//! through a CRL. Every command writes all of its files or none (see [`fsutil`]).

pub mod broker;
pub mod client;
pub mod cmd;
pub mod crl;
pub mod device;
pub mod device_config;
pub mod error;
pub mod fsutil;
pub mod init;
pub mod layout;
pub mod ota;
pub mod ota_push;
pub mod ota_status;
pub mod pki;
pub mod registry;
pub mod reload;
pub mod renew;
pub mod status;
pub mod store;
pub mod topics;
pub mod watch;

pub use error::{Error, Result};
