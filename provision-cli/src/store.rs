//! The provisioning directory opened for one command: its layout, its lock, its registry and CA.

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{DirLock, Transaction, PUBLIC};
use crate::layout::Layout;
use crate::pki::Ca;
use crate::registry::Registry;

pub struct Store {
    pub layout: Layout,
    _lock: DirLock,
}

impl Store {
    /// Opens (and locks) the existing provisioning directory `dir`. A missing directory is
    /// never created here: a command that fails must not leave an empty one behind.
    pub fn open(dir: &Path) -> Result<Store> {
        if !dir.is_dir() {
            return Err(Error::no_ca(dir));
        }
        Store::create(dir)
    }

    /// Opens (and locks) `dir`, creating it if needed (`provision init`).
    pub fn create(dir: &Path) -> Result<Store> {
        let lock = DirLock::acquire(dir)?;
        Ok(Store {
            layout: Layout::new(dir),
            _lock: lock,
        })
    }

    pub fn registry(&self) -> Result<Registry> {
        Registry::load_required(&self.layout.registry(), self.layout.root())
    }

    pub fn ca(&self, registry: &Registry) -> Result<Ca> {
        let path = self.layout.ca_key();
        let pem = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::no_ca(self.layout.root()))
            }
            r => r.context(|| format!("reading {}", path.display()))?,
        };
        Ca::load(&registry.ca, &pem).map_err(|e| Error::Corrupt {
            path,
            reason: format!("the CA key does not load ({e})"),
        })
    }

    /// Stages the registry; call it last, so it lands after every file it describes.
    pub fn stage_registry(&self, tx: &mut Transaction, registry: &Registry) -> Result<()> {
        tx.stage(
            &self.layout.registry(),
            registry.to_toml().as_bytes(),
            PUBLIC,
        )
    }
}
