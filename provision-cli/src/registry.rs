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
    /// The broker software (old registries: Mosquitto).
    #[serde(default, skip_serializing_if = "Engine::is_mosquitto")]
    pub engine: Engine,
    #[serde(flatten)]
    pub cert: CertRecord,
    /// The nodes of a RabbitMQ cluster, each with its MQTT TLS endpoint; empty for Mosquitto,
    /// which listens on the first host and `port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeRecord>,
}

/// One RabbitMQ node: its short node name (`rabbit-1` in `rabbit-1@host`) and the endpoint its
/// MQTT TLS listener serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub name: String,
    /// A DNS name or an IP address the broker certificate carries.
    pub host: String,
    pub port: u16,
}

/// The broker software the configuration is written for.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// One Mosquitto 2.0 process.
    #[default]
    Mosquitto,
    /// A RabbitMQ 3.10 cluster with the MQTT plugin: one node or several.
    Rabbitmq,
}

impl Engine {
    pub fn is_mosquitto(&self) -> bool {
        *self == Engine::Mosquitto
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Mosquitto => "mosquitto",
            Engine::Rabbitmq => "rabbitmq",
        })
    }
}

/// Most nodes one broker record holds: a RabbitMQ cluster is odd-sized and small (quorum
/// queues replicate to every member), and a device's config carries few endpoints.
pub const MAX_NODES: usize = 16;

/// A RabbitMQ node's short name: it is the part before `@` of the Erlang node name, a folder
/// name and a shell word, so `[a-z0-9]` then `[a-z0-9_-]`, at most 63 bytes.
pub fn check_node_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "node name {name:?}: expected lower-case letters, digits, `-` and `_` (starting with \
             a letter or digit, at most 63 bytes), e.g. rabbit-1"
        ))
    }
}

impl BrokerRecord {
    /// Where devices and operators connect, in order of preference: Mosquitto's first host
    /// (else its first IP address) and port; every RabbitMQ node's endpoint. The only place
    /// anyone derives it.
    pub fn endpoints(&self) -> Vec<(String, u16)> {
        match self.engine {
            Engine::Mosquitto => self
                .hosts
                .first()
                .cloned()
                .or_else(|| self.ips.first().map(IpAddr::to_string))
                .map(|h| (h, self.port))
                .into_iter()
                .collect(),
            Engine::Rabbitmq => self
                .nodes
                .iter()
                .map(|n| (n.host.clone(), n.port))
                .collect(),
        }
    }

    /// The engine and its nodes agree: Mosquitto has none; RabbitMQ has 1 to [`MAX_NODES`], with
    /// valid names, no name twice and no endpoint twice.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self.engine {
            Engine::Mosquitto if !self.nodes.is_empty() => {
                return Err("broker: a Mosquitto broker has no nodes".into())
            }
            Engine::Mosquitto => return Ok(()),
            Engine::Rabbitmq if self.nodes.is_empty() => {
                return Err("broker: a RabbitMQ broker needs at least one node".into())
            }
            Engine::Rabbitmq if self.nodes.len() > MAX_NODES => {
                return Err(format!("broker: more than {MAX_NODES} nodes"))
            }
            Engine::Rabbitmq => {}
        }
        let mut names = std::collections::HashSet::new();
        let mut endpoints = std::collections::HashSet::new();
        for n in &self.nodes {
            check_node_name(&n.name).map_err(|e| format!("broker: {e}"))?;
            if n.host.is_empty() || n.port == 0 {
                return Err(format!("broker: node {:?} has no endpoint", n.name));
            }
            if !names.insert(n.name.as_str()) {
                return Err(format!("broker: node {:?} appears twice", n.name));
            }
            if !endpoints.insert((n.host.as_str(), n.port)) {
                return Err(format!(
                    "broker: endpoint {}:{} appears twice",
                    n.host, n.port
                ));
            }
        }
        Ok(())
    }
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
        // Serials compare case-blind: as upper-case bytes padded with zeros (which no hex digit
        // is), held as integers so that sorting 100,000 of them takes a few milliseconds; then
        // neighbours are compared.
        let certs = std::iter::once(&self.ca.cert)
            .chain(std::iter::once(&self.operator))
            .chain(self.operators.values())
            .chain(self.broker.iter().map(|b| &b.cert))
            .chain(self.devices.values().map(|d| &d.cert))
            .chain(self.retired.iter().map(|r| &r.cert));
        let mut serials: Vec<(u128, u128, u64)> = Vec::with_capacity(self.devices.len() + 8);
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
            let part = |r: std::ops::Range<usize>| {
                key[r].iter().fold(0u128, |a, b| a << 8 | u128::from(*b))
            };
            serials.push((part(0..16), part(16..32), part(32..40) as u64));
        }
        serials.sort_unstable();
        if let Some(pair) = serials.windows(2).find(|w| w[0] == w[1]) {
            let (a, b, c) = pair[0];
            let bytes: Vec<u8> = a
                .to_be_bytes()
                .into_iter()
                .chain(b.to_be_bytes())
                .chain(c.to_be_bytes())
                .take_while(|b| *b != 0)
                .collect();
            return Err(format!(
                "serial {} appears twice",
                String::from_utf8_lossy(&bytes)
            ));
        }
        if let Some(b) = &self.broker {
            b.validate()?;
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

    /// Previous certificates that `device renew --keep-old` left valid, by subject (in the
    /// order they were retired): one pass, looked up per device.
    pub fn kept_valid(&self) -> std::collections::HashMap<&str, Vec<&RetiredCert>> {
        let mut by_subject = std::collections::HashMap::<&str, Vec<&RetiredCert>>::new();
        for r in self.retired.iter().filter(|r| r.revoked_at.is_none()) {
            by_subject.entry(r.subject.as_str()).or_default().push(r);
        }
        by_subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry as `provision` wrote it before brokers had an engine and nodes.
    const OLD: &str = r#"
format = 1
crl_number = 1

[ca]
name = "provision root CA"
serial = "01AB"
not_before = "2026-01-01T00:00:00Z"
not_after = "2036-01-01T00:00:00Z"

[operator]
serial = "02AB"
not_before = "2026-01-01T00:00:00Z"
not_after = "2028-01-01T00:00:00Z"

[broker]
hosts = ["mqtt.home.lan", "mqtt"]
ips = ["192.168.1.2"]
port = 8883
install_dir = "/etc/mosquitto/provision"
platform = "debian"
max_packet_size = 2048
serial = "03AB"
not_before = "2026-01-01T00:00:00Z"
not_after = "2028-01-01T00:00:00Z"
"#;

    /// Loads `text` as the registry.toml of an older `provision`.
    fn load(text: &str) -> std::result::Result<Registry, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("registry.toml"), text).unwrap();
        match crate::registry_files::load(&crate::layout::Layout::new(dir.path())) {
            Ok(r) => Ok(r.unwrap()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `reg` as an older `provision` wrote it.
    fn to_toml(reg: &Registry) -> String {
        toml::to_string_pretty(reg).unwrap()
    }

    fn rabbit(nodes: &[(&str, &str, u16)]) -> BrokerRecord {
        let mut b = load(OLD).unwrap().broker.unwrap();
        b.engine = Engine::Rabbitmq;
        b.nodes = nodes
            .iter()
            .map(|(name, host, port)| NodeRecord {
                name: name.to_string(),
                host: host.to_string(),
                port: *port,
            })
            .collect();
        b
    }

    #[test]
    fn an_old_registry_loads_as_mosquitto_and_is_written_back_unchanged() {
        let reg = load(OLD).unwrap();
        let b = reg.broker.as_ref().unwrap();
        assert_eq!(b.engine, Engine::Mosquitto);
        assert!(b.nodes.is_empty());
        assert_eq!(b.endpoints(), vec![("mqtt.home.lan".to_string(), 8883)]);
        // Nothing new appears in a Mosquitto registry.
        let json = serde_json::to_string(b).unwrap();
        assert!(
            !json.contains("engine") && !json.contains("nodes"),
            "{json}"
        );
        assert_eq!(load(&to_toml(&reg)).unwrap(), reg);
    }

    #[test]
    fn mosquitto_without_a_host_connects_to_its_first_address() {
        let mut b = load(OLD).unwrap().broker.unwrap();
        b.hosts.clear();
        assert_eq!(b.endpoints(), vec![("192.168.1.2".to_string(), 8883)]);
    }

    #[test]
    fn a_rabbitmq_broker_round_trips_and_lists_every_node() {
        let mut reg = load(OLD).unwrap();
        reg.broker = Some(rabbit(&[
            ("rabbit-1", "127.0.0.1", 41001),
            ("rabbit-2", "127.0.0.1", 41002),
            ("rabbit-3", "mq3.example.org", 8883),
        ]));
        let text = to_toml(&reg);
        assert!(text.contains("engine = \"rabbitmq\""), "{text}");
        let back = load(&text).unwrap();
        assert_eq!(back, reg);
        assert_eq!(
            back.broker.unwrap().endpoints(),
            vec![
                ("127.0.0.1".to_string(), 41001),
                ("127.0.0.1".to_string(), 41002),
                ("mq3.example.org".to_string(), 8883),
            ]
        );
    }

    #[test]
    fn inconsistent_nodes_are_refused_on_load() {
        let cases: Vec<(BrokerRecord, &str)> = vec![
            (rabbit(&[]), "at least one node"),
            (
                rabbit(&[("rabbit-1", "h", 1), ("rabbit-1", "h", 2)]),
                "appears twice",
            ),
            (
                rabbit(&[("rabbit-1", "h", 1), ("rabbit-2", "h", 1)]),
                "endpoint h:1 appears twice",
            ),
            (rabbit(&[("Rabbit@x", "h", 1)]), "node name"),
            (rabbit(&[("rabbit-1", "h", 0)]), "no endpoint"),
            (
                {
                    let mut b = rabbit(&[("rabbit-1", "h", 1)]);
                    b.engine = Engine::Mosquitto;
                    b
                },
                "has no nodes",
            ),
        ];
        for (broker, expected) in cases {
            let mut reg = load(OLD).unwrap();
            reg.broker = Some(broker);
            let err = load(&to_toml(&reg)).unwrap_err();
            assert!(err.contains(expected), "{err} (expected {expected:?})");
        }
        let mut reg = load(OLD).unwrap();
        let many: Vec<_> = (0..=MAX_NODES)
            .map(|i| NodeRecord {
                name: format!("rabbit-{i}"),
                host: "h".into(),
                port: 1000 + i as u16,
            })
            .collect();
        let mut b = rabbit(&[]);
        b.nodes = many;
        reg.broker = Some(b);
        assert!(load(&to_toml(&reg)).unwrap_err().contains("more than"));
    }

    #[test]
    fn node_names() {
        for ok in ["rabbit-1", "r", "0", "node_a", &"a".repeat(63)] {
            assert!(check_node_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "_a",
            "Rabbit",
            "a@b",
            "a.b",
            "a b",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
    }
}
