//! Re-signing the CRL after a revocation, and carrying it to the broker folder.

use crate::broker;
use crate::error::{Error, Result};
use crate::fsutil::{Transaction, PUBLIC};
use crate::pki::Ca;
use crate::registry::Registry;
use crate::store::Store;

/// What a re-signed CRL changed.
#[derive(Debug, Clone, Copy)]
pub struct CrlUpdate {
    /// The new CRL number.
    pub number: u64,
    /// Whether `<dir>/broker/` got the new CRL and ACL (false when there is no broker folder).
    pub broker_updated: bool,
}

/// Bumps the CRL number, signs a CRL listing every revoked serial in `registry`, and stages it
/// as `<dir>/crl.pem` plus the broker folder's CRL and ACL. The caller stages the registry last.
pub fn stage(
    store: &Store,
    registry: &mut Registry,
    ca: &Ca,
    tx: &mut Transaction,
) -> Result<CrlUpdate> {
    let crl = sign_next(store, registry, ca)?;
    tx.stage(&store.layout.crl(), crl.as_bytes(), PUBLIC)?;
    broker::stage_broker_updates(tx, &store.layout, registry, &crl, ca)?;
    Ok(CrlUpdate {
        number: registry.crl_number,
        broker_updated: registry.broker.is_some() && store.layout.broker_dir().is_dir(),
    })
}

/// Bumps the CRL number and signs a CRL listing every revoked serial in `registry` (PEM); the
/// caller stages it.
pub fn sign_next(store: &Store, registry: &mut Registry, ca: &Ca) -> Result<String> {
    // A hand-edited number at u64::MAX must not wrap to 0: a CRL number only goes up.
    registry.crl_number = registry
        .crl_number
        .checked_add(1)
        .ok_or_else(|| Error::Corrupt {
            path: store.layout.registry(),
            reason: format!("crl_number {} cannot go up any more", registry.crl_number),
        })?;
    ca.sign_crl(registry.crl_number, registry.crl_entries())
}
