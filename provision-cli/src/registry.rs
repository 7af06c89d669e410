//! The registry: every certificate we issued, in files a person can read.
//!
//! It is the source of truth for serials (revocation needs them), device status and the CRL
//! number. It is loaded whole and validated; a command writes back what it changed atomically,
//! as the last step of its transaction. How it is kept on disk: [`crate::registry_files`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const FORMAT: u32 = 1;

/// Largest registry file read.
pub const LIMIT: u64 = 1 << 30;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Registry format version.
    pub format: u32,
    pub ca: CaRecord,
    pub operator: CertRecord,
    /// Further operator identities (`provision operator add`), by name (= certificate CN and
    /// MQTT user name, e.g. `_ops-laptop`); each has its own ACL block.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operators: BTreeMap<String, CertRecord>,
    /// Number of the CRL currently in `crl.pem`; strictly increases with every re-signing.
    pub crl_number: u64,
    pub broker: Option<BrokerRecord>,
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceRecord>,
    /// OTA signing keys (`provision ota keygen`); devices trust them by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ota_keys: Vec<OtaKeyRecord>,
    /// Certificates that are no one's current one any more: a renewed device's, broker's or
    /// operator's previous certificate, a replaced device's revoked one. Revoked ones stay on the
    /// CRL; one kept valid by `device renew --keep-old` is revoked later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredCert>,
}

/// A certificate taken out of service (see [`Registry::retired`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetiredCert {
    /// Who held it: a device id, [`crate::pki::OPERATOR_CN`] or [`BROKER_SUBJECT`].
    pub subject: String,
    #[serde(flatten)]
    pub cert: CertRecord,
    /// When it went on the CRL; `None` while a device renewed with `--keep-old` may still use it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
}

/// The subject name [`RetiredCert`] uses for broker certificates.
pub const BROKER_SUBJECT: &str = "broker";

/// One OTA signing key; the private half is `ota/key-<id>.pem`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OtaKeyRecord {
    pub key_id: u32,
    /// Ed25519 public key, 64 lower-case hex digits.
    pub public_key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaRecord {
    pub name: String,
    #[serde(flatten)]
    pub cert: CertRecord,
}

/// What we keep of every issued certificate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertRecord {
    /// Serial as upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BrokerRecord {
    pub hosts: Vec<String>,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    pub port: u16,
    pub bind: Option<String>,
    /// Where the config says the files are (the user copies `<dir>/broker/*` there).
    pub install_dir: PathBuf,
    /// The system the config is written for (old registries: `plain`).
    #[serde(default)]
    pub platform: Platform,
    /// `max_packet_size` in the config (old registries: the device's receive buffer).
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: u32,
    #[serde(flatten)]
    pub cert: CertRecord,
}

fn default_max_packet_size() -> u32 {
    2048
}

/// The system the broker runs on: it decides the config's shape and the install steps.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// A standalone `mosquitto.conf` (`mosquitto -c mosquitto.conf`).
    #[default]
    Plain,
    /// OpenWRT's `mosquitto-ssl` under procd: replaces `/etc/mosquitto/mosquitto.conf`, logs to
    /// syslog (`logread`).
    Openwrt,
    /// A drop-in for Debian's `/etc/mosquitto/conf.d/`, scoped to our listener so that other
    /// listeners keep their own settings.
    Debian,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Platform::Plain => "plain",
            Platform::Openwrt => "openwrt",
            Platform::Debian => "debian",
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Active,
    Revoked,
}

impl std::fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    pub status: DeviceStatus,
    #[serde(flatten)]
    pub cert: CertRecord,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
}

impl Registry {
    /// Checks what the types cannot: serials, names, ids and states that agree.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "registry format {} is not supported (expected {FORMAT})",
                self.format
            ));
        }
        // Serials compare case-blind: sorted as upper-case bytes (padded with zeros, which no
        // hex digit is), then neighbours compared. 100,000 devices take a few milliseconds.
        let certs = std::iter::once(&self.ca.cert)
            .chain(std::iter::once(&self.operator))
            .chain(self.operators.values())
            .chain(self.broker.iter().map(|b| &b.cert))
            .chain(self.devices.values().map(|d| &d.cert))
            .chain(self.retired.iter().map(|r| &r.cert));
        let mut serials: Vec<[u8; 40]> = Vec::with_capacity(self.devices.len() + 8);
        for cert in certs {
            if cert.serial.is_empty()
                || cert.serial.len() > 40
                || !cert.serial.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(format!("serial {:?} is not a hex number", cert.serial));
            }
            let mut key = [0u8; 40];
            for (k, b) in key.iter_mut().zip(cert.serial.bytes()) {
                *k = b.to_ascii_uppercase();
            }
            serials.push(key);
        }
        serials.sort_unstable();
        if let Some(pair) = serials.windows(2).find(|w| w[0] == w[1]) {
            let serial: String = pair[0]
                .iter()
                .take_while(|b| **b != 0)
                .map(|b| *b as char)
                .collect();
            return Err(format!("serial {serial} appears twice"));
        }
        for name in self.operators.keys() {
            if name == crate::pki::OPERATOR_CN {
                return Err(format!("operator {name:?} is listed twice"));
            }
            crate::layout::check_operator_name(name).map_err(|e| e.to_string())?;
        }
        for (id, dev) in &self.devices {
            wire_format::device_id::validate(id)
                .map_err(|e| format!("device entry {id:?}: {e}"))?;
            if (dev.status == DeviceStatus::Revoked) != dev.revoked_at.is_some() {
                return Err(format!("device {id:?}: status and revoked_at disagree"));
            }
        }
        let mut key_ids = std::collections::HashSet::new();
        for k in &self.ota_keys {
            if !key_ids.insert(k.key_id) {
                return Err(format!("OTA key id {} appears twice", k.key_id));
            }
            if !crate::ota::is_public_key_hex(&k.public_key) {
                return Err(format!(
                    "OTA key {}: public_key is not an Ed25519 key in hex",
                    k.key_id
                ));
            }
        }
        Ok(())
    }

    /// Every operator identity's name: `_operator` first, then those added.
    pub fn operator_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(crate::pki::OPERATOR_CN).chain(self.operators.keys().map(String::as_str))
    }

    pub fn revoked(&self) -> impl Iterator<Item = (&String, &DeviceRecord)> {
        self.devices
            .iter()
            .filter(|(_, d)| d.status == DeviceStatus::Revoked)
    }

    /// Every serial the CRL must list, with its revocation time: revoked devices and revoked
    /// retired certificates.
    pub fn crl_entries(&self) -> Vec<(String, OffsetDateTime)> {
        let devices = self
            .revoked()
            .filter_map(|(_, d)| Some((d.cert.serial.clone(), d.revoked_at?)));
        let retired = self
            .retired
            .iter()
            .filter_map(|r| Some((r.cert.serial.clone(), r.revoked_at?)));
        devices.chain(retired).collect()
    }

    /// Previous certificates of `subject` that `device renew --keep-old` left valid.
    pub fn kept_valid(&self, subject: &str) -> impl Iterator<Item = &RetiredCert> {
        let subject = subject.to_string();
        self.retired
            .iter()
            .filter(move |r| r.subject == subject && r.revoked_at.is_none())
    }
}
