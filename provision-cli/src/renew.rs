//! `provision device renew`, `provision broker renew`, `provision operator renew`: a new
//! certificate for the same identity before the old one expires, the old serial revoked.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::broker;
use crate::crl;
use crate::device::validate_ids;
use crate::error::{Error, Result};
use crate::fsutil::{PUBLIC, SECRET};
use crate::pki::{self, Leaf, OPERATOR_CN};
use crate::registry::{CertRecord, DeviceStatus, RetiredCert, BROKER_SUBJECT};
use crate::store::Store;

/// Default lifetime of a renewed broker or operator certificate, days (what a browser-trusted
/// server certificate may have at most, and what `init` and `broker` issue).
pub const DEFAULT_SERVICE_DAYS: u32 = 825;

/// What a renewal did (no secrets).
#[derive(Debug, Clone, Serialize)]
pub struct RenewReport {
    /// Device id, `_operator` or `broker`.
    pub subject: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The previous certificate's serial.
    pub previous_serial: String,
    /// Whether the previous certificate went on the CRL (false with `--keep-old`).
    pub previous_revoked: bool,
    /// The CRL number after the renewal, when the CRL was re-signed.
    pub crl_number: Option<u64>,
    /// Whether `<dir>/broker/` got the new CRL and ACL.
    pub broker_updated: bool,
    /// Whether the renewed certificate reuses the previous key (`broker renew --keep-key`).
    pub key_kept: bool,
}

fn retire(registry: &mut crate::registry::Registry, subject: &str, old: CertRecord, revoke: bool) {
    registry.retired.push(RetiredCert {
        subject: subject.to_string(),
        cert: old,
        revoked_at: revoke.then(pki::now),
    });
}

/// A new key and certificate for device `id`. The previous certificate is revoked unless
/// `keep_old`: then it stays valid (and off the CRL) until `provision device revoke ID
/// --previous`, so a device that has not received its new identity yet can still connect.
/// Renewing again revokes any previous certificate kept so far: at most one stays valid.
pub fn device(dir: &Path, id: &str, days: u32, keep_old: bool) -> Result<RenewReport> {
    validate_ids(&[id.to_string()])?;
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let current = registry
        .devices
        .get(id)
        .ok_or_else(|| Error::UnknownDevice(id.to_string()))?;
    if current.status == DeviceStatus::Revoked {
        return Err(Error::RevokedExists(id.to_string()));
    }
    let ca = store.ca(&registry)?;
    let issued = ca.issue(Leaf::Client { cn: id }, days)?;
    let old = std::mem::replace(
        &mut registry.devices.get_mut(id).expect("checked above").cert,
        issued.record.clone(),
    );
    let previous_serial = old.serial.clone();
    let now = pki::now();
    let mut revoked_any = !keep_old;
    for r in registry.retired.iter_mut() {
        if r.subject == id && r.revoked_at.is_none() {
            r.revoked_at = Some(now);
            revoked_any = true;
        }
    }
    retire(&mut registry, id, old, !keep_old);

    let layout = &store.layout;
    let mut tx = store.transaction();
    tx.stage(&layout.device_key(id), issued.key_pem.as_bytes(), SECRET)?;
    tx.stage(&layout.device_cert(id), issued.cert_pem.as_bytes(), PUBLIC)?;
    let crl = if revoked_any {
        Some(crl::stage(&store, &mut registry, &ca, &mut tx)?)
    } else {
        None
    };
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(RenewReport {
        subject: id.to_string(),
        serial: issued.record.serial,
        not_before: issued.record.not_before,
        not_after: issued.record.not_after,
        cert: layout.device_cert(id),
        key: layout.device_key(id),
        previous_serial,
        previous_revoked: !keep_old,
        crl_number: crl.map(|c| c.number),
        broker_updated: crl.is_some_and(|c| c.broker_updated),
        key_kept: false,
    })
}

/// A new certificate for the broker, for the same names and addresses, written to
/// `<dir>/broker/server.{crt,key}`; the previous one is revoked. With `keep_key` the broker
/// keeps its key, so devices that pinned it (`device config --pin-broker`) still connect.
/// mosquitto.conf and the ACL are not touched.
pub fn broker(dir: &Path, days: u32, keep_key: bool) -> Result<RenewReport> {
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let layout = &store.layout;
    let Some(record) = registry.broker.clone() else {
        return Err(Error::no_broker(dir));
    };
    if !layout.broker_dir().is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is missing; run `provision broker` to write the broker folder again",
            layout.broker_dir().display()
        )));
    }
    let ca = store.ca(&registry)?;
    let leaf = Leaf::Server {
        hosts: &record.hosts,
        ips: &record.ips,
    };
    let issued = if keep_key {
        let path = layout.broker_file("server.key");
        let pem = read_key(&path)?;
        ca.issue_for_key(leaf, days, &pem)
            .map_err(|e| Error::Corrupt {
                path,
                reason: format!("the broker key does not load ({e})"),
            })?
    } else {
        ca.issue(leaf, days)?
    };
    let previous_serial = record.cert.serial.clone();
    registry.broker.as_mut().expect("checked above").cert = issued.record.clone();
    retire(&mut registry, BROKER_SUBJECT, record.cert, true);

    let mut tx = store.transaction();
    broker::stage_server_key_for(&mut tx, layout, &issued.key_pem, record.engine)?;
    tx.stage(
        &layout.broker_file("server.crt"),
        issued.cert_pem.as_bytes(),
        PUBLIC,
    )?;
    let crl = crl::stage(&store, &mut registry, &ca, &mut tx)?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(RenewReport {
        subject: BROKER_SUBJECT.to_string(),
        serial: issued.record.serial,
        not_before: issued.record.not_before,
        not_after: issued.record.not_after,
        cert: layout.broker_file("server.crt"),
        key: layout.broker_file("server.key"),
        previous_serial,
        previous_revoked: true,
        crl_number: Some(crl.number),
        broker_updated: crl.broker_updated,
        key_kept: keep_key,
    })
}

/// A new key and certificate for operator identity `name` (`_operator`, `<dir>/operator/`, or
/// one added with `provision operator add`); the previous one is revoked.
pub fn operator(dir: &Path, name: &str, days: u32) -> Result<RenewReport> {
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let layout = &store.layout;
    if name != OPERATOR_CN && !registry.operators.contains_key(name) {
        let known: Vec<&str> = registry.operator_names().collect();
        return Err(Error::InvalidInput(format!(
            "unknown operator {name:?}; this directory has {}",
            known.join(", ")
        )));
    }
    let (cert_path, key_path) = layout.operator_identity(name)?;
    let ca = store.ca(&registry)?;
    let issued = ca.issue(Leaf::Client { cn: name }, days)?;
    let slot = if name == OPERATOR_CN {
        &mut registry.operator
    } else {
        registry.operators.get_mut(name).expect("checked above")
    };
    let old = std::mem::replace(slot, issued.record.clone());
    let previous_serial = old.serial.clone();
    retire(&mut registry, name, old, true);

    let mut tx = store.transaction();
    tx.stage(&key_path, issued.key_pem.as_bytes(), SECRET)?;
    tx.stage(&cert_path, issued.cert_pem.as_bytes(), PUBLIC)?;
    let crl = crl::stage(&store, &mut registry, &ca, &mut tx)?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(RenewReport {
        subject: name.to_string(),
        serial: issued.record.serial,
        not_before: issued.record.not_before,
        not_after: issued.record.not_after,
        cert: cert_path,
        key: key_path,
        previous_serial,
        previous_revoked: true,
        crl_number: Some(crl.number),
        broker_updated: crl.broker_updated,
        key_kept: false,
    })
}

/// Reads a PEM key file, at most 64 KiB (a P-256 key is about 250 bytes).
fn read_key(path: &Path) -> Result<String> {
    crate::fsutil::read_text_bounded(path, crate::store::PEM_LIMIT, "key")
}
