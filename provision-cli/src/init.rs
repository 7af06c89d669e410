//! `provision init`: the root CA, the operator identity, an empty CRL and the registry.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::{PRIVATE_DIR, PUBLIC, SECRET};
use crate::pki::{self, Ca, Leaf, OPERATOR_CN};
use crate::registry::{Registry, FORMAT};
use crate::store::{Store, CA_OWNED};

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

pub fn init(dir: &Path, opts: &InitOptions) -> Result<InitReport> {
    // Generated (and the options checked) before the directory is created, so bad options
    // leave no empty directory behind.
    let new = pki::create_ca(&opts.ca_name, opts.days)?;
    let store = Store::create(dir)?;
    let layout = &store.layout;
    // A CA exists if either its registry or its key does: never overwrite a lone key either.
    // Devices or a broker folder without a registry are an old CA's too: a new CA must not
    // mix with them.
    let exists = CA_OWNED.iter().any(|n| dir.join(n).exists());
    if exists && !opts.force {
        if crate::registry_files::exists(layout) {
            return Err(Error::CaExists(crate::error::absolute(dir)));
        }
        return Err(Error::HalfMoved {
            dir: dir.to_path_buf(),
            found: CA_OWNED
                .iter()
                .filter(|n| dir.join(n).exists())
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        });
    }

    // OTA signing keys are not signed by the CA: they (and `<dir>/ota/`) survive a new CA.
    // When the old registry is unreadable (the usual reason for --force), the key files say
    // which keys exist: devices in the field trust them by id.
    let ota_keys = match crate::registry_files::load(layout) {
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
        operators: Default::default(),
        crl_number: 1,
        broker: None,
        devices: Default::default(),
        ota_keys,
        retired: Vec::new(),
    };
    let crl = ca.sign_crl(registry.crl_number, [])?;

    // One journaled commit: the old CA moves to the backup and the new one appears together,
    // or (after a crash) the next run finishes it.
    let mut tx = store.transaction();
    let backup = if exists {
        let backup = backup_name(dir);
        tx.mkdir(&backup, PRIVATE_DIR)?;
        for name in CA_OWNED {
            let from = dir.join(name);
            if std::fs::symlink_metadata(&from).is_ok() {
                tx.move_path(&from, &backup.join(name))?;
            }
        }
        Some(backup)
    } else {
        None
    };
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
    tx.commit()?;
    Ok(InitReport { registry, backup })
}

/// `<dir>/backup-<time>` (with a suffix if that exists).
fn backup_name(dir: &Path) -> PathBuf {
    let stamp = pki::now()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("static format");
    let mut backup = dir.join(format!("backup-{stamp}"));
    let mut n = 1;
    while std::fs::symlink_metadata(&backup).is_ok() {
        backup = dir.join(format!("backup-{stamp}-{n}"));
        n += 1;
    }
    backup
}
