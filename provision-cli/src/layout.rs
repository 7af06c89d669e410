//! Where every file lives inside the provisioning directory (`--dir`, default `./certs`).
//!
//! ```text
//! <dir>/registry/registry.json     the registry (source of truth): CA, operators, broker, CRL
//!                                  number, OTA keys
//! <dir>/registry/devices-XX.json   its devices, about 1/256 of them per file (registry_files.rs)
//! <dir>/crl.pem                    the current CRL (always present)
//! <dir>/ca/ca.crt  ca.key          root CA
//! <dir>/operator/operator.crt .key the CLI's own MQTT identity (`_operator`)
//! <dir>/operator/<name>.crt .key   further operator identities
//! <dir>/devices/<id>/device.crt .key
//! <dir>/broker/                    installable broker folder: mosquitto.conf acl ca.crt
//!                                  server.crt server.key crl.pem (RabbitMQ: see
//!                                  crate::rabbitmq_conf)
//! ```

use std::path::{Path, PathBuf};

/// Name of the registry's main file inside `<dir>/registry/`.
pub const REGISTRY_HEAD: &str = "registry.json";

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The registry's main file (see [`crate::registry_files`]).
    pub fn registry(&self) -> PathBuf {
        self.registry_dir().join(REGISTRY_HEAD)
    }
    pub fn registry_dir(&self) -> PathBuf {
        self.root.join("registry")
    }
    /// The registry file of the devices in `shard` ([`crate::registry_files::shard_of`]).
    pub fn registry_shard(&self, shard: u8) -> PathBuf {
        self.registry_dir()
            .join(format!("devices-{shard:02x}.json"))
    }
    /// The one-file registry of an older `provision`, converted by the first command that writes.
    pub fn legacy_registry(&self) -> PathBuf {
        self.root.join("registry.toml")
    }
    pub fn crl(&self) -> PathBuf {
        self.root.join("crl.pem")
    }
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.ca_dir().join("ca.key")
    }
    pub fn operator_cert(&self) -> PathBuf {
        self.root.join("operator/operator.crt")
    }
    pub fn operator_key(&self) -> PathBuf {
        self.root.join("operator/operator.key")
    }
    /// Certificate and key of operator identity `name`: `_operator` (made by `provision init`)
    /// is `operator/operator.{crt,key}`, any other `operator/<name>.{crt,key}`.
    pub fn operator_identity(&self, name: &str) -> crate::Result<(PathBuf, PathBuf)> {
        if name == crate::pki::OPERATOR_CN {
            return Ok((self.operator_cert(), self.operator_key()));
        }
        check_operator_name(name)?;
        let dir = self.root.join("operator");
        Ok((
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        ))
    }
    pub fn device_dir(&self, id: &str) -> PathBuf {
        self.root.join("devices").join(id)
    }
    pub fn device_cert(&self, id: &str) -> PathBuf {
        self.device_dir(id).join("device.crt")
    }
    pub fn device_key(&self, id: &str) -> PathBuf {
        self.device_dir(id).join("device.key")
    }
    pub fn broker_dir(&self) -> PathBuf {
        self.root.join("broker")
    }
    pub fn broker_file(&self, name: &str) -> PathBuf {
        self.broker_dir().join(name)
    }
}

/// An operator name is a certificate CN, an MQTT user name and a file name: a leading `_`
/// (which no device id has, so no device can be issued it) then `[a-z0-9-]`, at most 64 bytes.
pub fn check_operator_name(name: &str) -> crate::Result<()> {
    let ok = name.len() >= 2
        && name.len() <= 64
        && name.starts_with('_')
        && name[1..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(crate::Error::InvalidInput(format!(
            "operator name {name:?}: expected `_` then lower-case letters, digits and `-` \
             (at most 64 bytes), e.g. _operator or _ops-laptop"
        )))
    }
}
