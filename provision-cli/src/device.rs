//! `provision device add|list|show|revoke`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::broker;
use crate::error::{Error, Result};
use crate::fsutil::{self, PUBLIC, SECRET};
use crate::pki::{self, Leaf};
use crate::registry::{DeviceRecord, DeviceStatus};
use crate::store::Store;

/// Default device certificate lifetime: devices in the field are hard to re-key.
pub const DEFAULT_DEVICE_DAYS: u32 = 1825;

/// Checks every id, and that none repeats, before anything is generated or written.
pub fn validate_ids(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::InvalidInput("no device ids given".into()));
    }
    let mut seen = BTreeSet::new();
    for id in ids {
        wire_format::device_id::validate(id).map_err(|source| Error::InvalidDeviceId {
            id: id.clone(),
            source,
        })?;
        if !seen.insert(id.as_str()) {
            return Err(Error::InvalidInput(format!(
                "device id {id:?} is given twice"
            )));
        }
    }
    Ok(())
}

/// Largest id file read (a million 64-byte ids).
pub const ID_FILE_LIMIT: u64 = 64 << 20;

/// Reads ids from a file for bulk adds: one per line, `#` starts a comment, blank lines skipped.
pub fn read_id_file(path: &Path) -> Result<Vec<String>> {
    let text = fsutil::read_text_bounded(path, ID_FILE_LIMIT, "id file")?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[derive(Debug, Serialize)]
pub struct DeviceInfo {
    pub id: String,
    pub serial: String,
    pub status: DeviceStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn info(store: &Store, id: &str, d: &DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        id: id.to_string(),
        serial: d.cert.serial.clone(),
        status: d.status,
        not_before: d.cert.not_before,
        not_after: d.cert.not_after,
        revoked_at: d.revoked_at,
        cert: store.layout.device_cert(id),
        key: store.layout.device_key(id),
    }
}

/// Issues a certificate and key for every id, all or none.
pub fn add(dir: &Path, ids: &[String], days: u32) -> Result<Vec<DeviceInfo>> {
    validate_ids(ids)?;
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    if let Some(id) = ids.iter().find(|id| registry.devices.contains_key(*id)) {
        return Err(Error::DeviceExists(id.clone()));
    }
    let ca = store.ca(&registry)?;
    let mut tx = store.transaction();
    for id in ids {
        let issued = ca.issue(Leaf::Client { cn: id }, days)?;
        tx.stage(
            &store.layout.device_key(id),
            issued.key_pem.as_bytes(),
            SECRET,
        )?;
        tx.stage(
            &store.layout.device_cert(id),
            issued.cert_pem.as_bytes(),
            PUBLIC,
        )?;
        registry.devices.insert(
            id.clone(),
            DeviceRecord {
                status: DeviceStatus::Active,
                cert: issued.record,
                revoked_at: None,
            },
        );
    }
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(ids
        .iter()
        .map(|id| info(&store, id, &registry.devices[id]))
        .collect())
}

pub fn list(dir: &Path) -> Result<Vec<DeviceInfo>> {
    let store = Store::open_read(dir)?;
    let registry = store.registry()?;
    Ok(registry
        .devices
        .iter()
        .map(|(id, d)| info(&store, id, d))
        .collect())
}

pub fn show(dir: &Path, id: &str) -> Result<DeviceInfo> {
    validate_ids(&[id.to_string()])?;
    let store = Store::open_read(dir)?;
    let registry = store.registry()?;
    let d = registry
        .devices
        .get(id)
        .ok_or_else(|| Error::UnknownDevice(id.to_string()))?;
    Ok(info(&store, id, d))
}

pub struct RevokeReport {
    pub device: DeviceInfo,
    pub crl_number: u64,
    pub broker_updated: bool,
}

/// Revokes `id`: re-signs the CRL with the next number, denies the device in the ACL, and
/// records it. The broker still has to reload (see [`crate::reload`]).
pub fn revoke(dir: &Path, id: &str) -> Result<RevokeReport> {
    validate_ids(&[id.to_string()])?;
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let ca = store.ca(&registry)?;
    let device = registry
        .devices
        .get_mut(id)
        .ok_or_else(|| Error::UnknownDevice(id.to_string()))?;
    if device.status == DeviceStatus::Revoked {
        return Err(Error::AlreadyRevoked(id.to_string()));
    }
    device.status = DeviceStatus::Revoked;
    device.revoked_at = Some(pki::now());
    // A hand-edited number at u64::MAX must not wrap to 0: a CRL number only goes up.
    registry.crl_number = registry
        .crl_number
        .checked_add(1)
        .ok_or_else(|| Error::Corrupt {
            path: store.layout.registry(),
            reason: format!("crl_number {} cannot go up any more", registry.crl_number),
        })?;
    let crl = ca.sign_crl(
        registry.crl_number,
        registry
            .revoked()
            .map(|(_, d)| (d.cert.serial.clone(), d.revoked_at.unwrap_or_else(pki::now))),
    )?;
    let mut tx = store.transaction();
    tx.stage(&store.layout.crl(), crl.as_bytes(), PUBLIC)?;
    broker::stage_broker_updates(&mut tx, &store.layout, &registry, &crl)?;
    let broker_updated = registry.broker.is_some() && store.layout.broker_dir().is_dir();
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(RevokeReport {
        device: info(&store, id, &registry.devices[id]),
        crl_number: registry.crl_number,
        broker_updated,
    })
}
