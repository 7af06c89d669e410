//! Where every file lives inside the provisioning directory (`--dir`, default `./certs`).
//!
//! ```text
//! <dir>/registry.toml              the human-readable registry (source of truth)
//! <dir>/crl.pem                    the current CRL (always present)
//! <dir>/ca/ca.crt  ca.key          root CA
//! <dir>/operator/operator.crt .key the CLI's own MQTT identity
//! <dir>/devices/<id>/device.crt .key
//! <dir>/broker/                    installable broker folder: mosquitto.conf acl ca.crt
//!                                  server.crt server.key crl.pem
//! ```

use std::path::{Path, PathBuf};

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
    pub fn registry(&self) -> PathBuf {
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
