//! `provision init`: the root CA, the operator identity, an empty CRL and the registry.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{Transaction, PUBLIC, SECRET};
use crate::pki::{self, Ca, Leaf, OPERATOR_CN};
use crate::registry::{Registry, FORMAT};
use crate::store::Store;

pub struct InitOptions {
    pub ca_name: String,
    pub days: u32,
    pub operator_days: u32,
    pub force: bool,
}

pub struct InitReport {
    pub registry: Registry,
    /// Where the previous CA and everything it signed went, with `--force`.
    pub backup: Option<PathBuf>,
}

/// Everything a CA owns; with `--force` it all moves to the backup, since a new CA makes every
/// old certificate useless.
const CA_OWNED: &[&str] = &[
    "registry.toml",
    "crl.pem",
    "ca",
    "operator",
    "devices",
    "broker",
];

pub fn init(dir: &Path, opts: &InitOptions) -> Result<InitReport> {
    // Generated (and the options checked) before the directory is created, so bad options
    // leave no empty directory behind.
    let new = pki::create_ca(&opts.ca_name, opts.days)?;
    let store = Store::create(dir)?;
    let layout = &store.layout;
    // A CA exists if either its registry or its key does: never overwrite a lone key either.
    let exists = layout.registry().exists() || layout.ca_key().exists();
    if exists && !opts.force {
        return Err(Error::CaExists(dir.to_path_buf()));
    }

    // OTA signing keys are not signed by the CA: they (and `<dir>/ota/`) survive a new CA.
    // When the old registry is unreadable (the usual reason for --force), the key files say
    // which keys exist: devices in the field trust them by id.
    let ota_keys = match Registry::load(&layout.registry()) {
        Ok(Some(old)) => old.ota_keys,
        _ => crate::ota::recover_key_records(dir)?,
    };

    // Everything is generated in memory first: a bad option fails before anything moves.
    let ca = Ca::load(&new.record, &new.key.serialize_pem())?;
    let operator = ca.issue(Leaf::Client { cn: OPERATOR_CN }, opts.operator_days)?;
    let registry = Registry {
        format: FORMAT,
        ca: new.record,
        operator: operator.record.clone(),
        crl_number: 1,
        broker: None,
        devices: Default::default(),
        ota_keys,
        retired: Vec::new(),
    };
    let crl = ca.sign_crl(registry.crl_number, [])?;

    let backup = if exists {
        Some(move_to_backup(dir)?)
    } else {
        None
    };
    let written = (|| {
        let mut tx = Transaction::new();
        tx.stage(&layout.ca_key(), new.key.serialize_pem().as_bytes(), SECRET)?;
        tx.stage(&layout.ca_cert(), new.cert_pem.as_bytes(), PUBLIC)?;
        tx.stage(&layout.operator_key(), operator.key_pem.as_bytes(), SECRET)?;
        tx.stage(
            &layout.operator_cert(),
            operator.cert_pem.as_bytes(),
            PUBLIC,
        )?;
        tx.stage(&layout.crl(), crl.as_bytes(), PUBLIC)?;
        store.stage_registry(&mut tx, &registry)?;
        tx.commit()
    })();
    if let Err(e) = written {
        if let Some(b) = &backup {
            restore_backup(dir, b);
        }
        return Err(e);
    }
    Ok(InitReport { registry, backup })
}

fn move_to_backup(dir: &Path) -> Result<PathBuf> {
    let stamp = pki::now()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("static format");
    let mut backup = dir.join(format!("backup-{stamp}"));
    let mut n = 1;
    while backup.exists() {
        backup = dir.join(format!("backup-{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir(&backup).context(|| format!("creating {}", backup.display()))?;
    for name in CA_OWNED {
        let from = dir.join(name);
        if from.exists() {
            if let Err(e) = std::fs::rename(&from, backup.join(name)) {
                restore_backup(dir, &backup);
                return Err(e)
                    .context(|| format!("moving {} to {}", from.display(), backup.display()));
            }
        }
    }
    Ok(backup)
}

fn restore_backup(dir: &Path, backup: &Path) {
    for name in CA_OWNED {
        let from = backup.join(name);
        if from.exists() {
            let _ = std::fs::rename(&from, dir.join(name));
        }
    }
    let _ = std::fs::remove_dir(backup);
}
