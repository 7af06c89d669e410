//! `provision device add|list|show|revoke`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::crl;
use crate::error::{Error, Result};
use crate::fsutil::{self, PUBLIC, SECRET};
use crate::pki::{self, Leaf};
use crate::registry::{DeviceRecord, DeviceStatus, Engine, Registry, RetiredCert};
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
    add_with(dir, ids, days, false)
}

/// [`add`]; with `replace`, an id whose device is revoked is issued a new identity on purpose:
/// the revoked certificate moves to the registry's retired list and stays on the CRL. An active
/// device is never replaced (that is `renew`).
pub fn add_with(dir: &Path, ids: &[String], days: u32, replace: bool) -> Result<Vec<DeviceInfo>> {
    validate_ids(ids)?;
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let mut replaced = false;
    for id in ids {
        match registry.devices.get(id) {
            None => {}
            Some(d) if d.status == DeviceStatus::Active => {
                return Err(if replace {
                    Error::DeviceActive(id.clone())
                } else {
                    Error::DeviceExists(id.clone())
                })
            }
            Some(_) if !replace => return Err(Error::RevokedExists(id.clone())),
            Some(_) => replaced = true,
        }
    }
    let ca = store.ca(&registry)?;
    // A killed run of an older provision left its temporaries in the folders of the ids it was
    // adding, which are not in the registry: remove them now.
    for id in ids.iter().filter(|id| !registry.devices.contains_key(*id)) {
        fsutil::sweep_stale_temps(&store.layout.device_dir(id))?;
    }
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
        let old = registry.devices.insert(
            id.clone(),
            DeviceRecord {
                status: DeviceStatus::Active,
                cert: issued.record,
                revoked_at: None,
            },
        );
        if let Some(old) = old {
            registry.retired.push(RetiredCert {
                subject: id.clone(),
                cert: old.cert,
                revoked_at: old.revoked_at,
            });
        }
    }
    if replaced {
        // The old serials stay on the CRL; the ACL stops denying the id.
        crl::stage(&store, &mut registry, &ca, &mut tx)?;
    } else if registry
        .broker
        .as_ref()
        .is_some_and(|b| b.engine == Engine::Rabbitmq)
    {
        // RabbitMQ knows each device as a user.
        crate::broker::stage_users_update(&mut tx, &store.layout, &registry)?;
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

#[derive(Debug, Serialize)]
pub struct RevokeReport {
    pub device: DeviceInfo,
    pub crl_number: u64,
    pub broker_updated: bool,
    /// The serials this revocation put on the CRL.
    pub serials: Vec<String>,
    /// The registry as the revocation left it, for what the command does next (reload hints,
    /// clearing the status) without reading it again.
    #[serde(skip)]
    pub registry: Registry,
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
    let now = pki::now();
    device.status = DeviceStatus::Revoked;
    device.revoked_at = Some(now);
    let mut serials = vec![device.cert.serial.clone()];
    // A previous certificate kept valid by `renew --keep-old` goes with it.
    for r in registry.retired.iter_mut() {
        if r.subject == id && r.revoked_at.is_none() {
            r.revoked_at = Some(now);
            serials.push(r.cert.serial.clone());
        }
    }
    let mut tx = store.transaction();
    let crl = crl::stage(&store, &mut registry, &ca, &mut tx)?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(RevokeReport {
        device: info(&store, id, &registry.devices[id]),
        crl_number: crl.number,
        broker_updated: crl.broker_updated,
        serials,
        registry,
    })
}

/// Revokes the previous certificate of `id` that `device renew --keep-old` left valid, once the
/// device runs with its new one. The report's serials are the revoked ones.
pub fn revoke_previous(dir: &Path, id: &str) -> Result<RevokeReport> {
    validate_ids(&[id.to_string()])?;
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    if !registry.devices.contains_key(id) {
        return Err(Error::UnknownDevice(id.to_string()));
    }
    let now = pki::now();
    let mut serials = Vec::new();
    for r in registry.retired.iter_mut() {
        if r.subject == id && r.revoked_at.is_none() {
            r.revoked_at = Some(now);
            serials.push(r.cert.serial.clone());
        }
    }
    if serials.is_empty() {
        return Err(Error::InvalidInput(format!(
            "device {id:?} has no previous certificate left valid (only `device renew --keep-old` leaves one)"
        )));
    }
    let ca = store.ca(&registry)?;
    let mut tx = store.transaction();
    let crl = crl::stage(&store, &mut registry, &ca, &mut tx)?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(RevokeReport {
        device: info(&store, id, &registry.devices[id]),
        crl_number: crl.number,
        broker_updated: crl.broker_updated,
        serials,
        registry,
    })
}
