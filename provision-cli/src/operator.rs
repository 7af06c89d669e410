//! `provision operator add`: one MQTT identity per operator tool or person.
//!
//! The broker ties the MQTT client id to the certificate's name (`use_username_as_clientid`), so
//! two tools sharing one identity would close each other's session: each gets its own. A name is
//! the certificate CN and the MQTT user name; it starts with `_`, which no device id can, and
//! gets its own block in the ACL.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::broker::stage_users_update;
use crate::error::{Error, Result};
use crate::fsutil::{PUBLIC, SECRET};
use crate::layout::check_operator_name;
use crate::pki::{Leaf, OPERATOR_CN};
use crate::store::Store;

/// Default operator certificate lifetime (as `provision init` gives `_operator`).
pub const DEFAULT_OPERATOR_DAYS: u32 = 825;

#[derive(Debug, Serialize)]
pub struct OperatorAdded {
    pub name: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Whether `<dir>/broker/acl` (Mosquitto) or `definitions/` (RabbitMQ) was rewritten
    /// (the broker must reload or import it).
    pub broker_updated: bool,
}

/// Issues operator identity `name`: key (0600) and certificate, its registry record and its ACL
/// block (RabbitMQ: its user and permissions in definitions/), all or nothing.
pub fn add(dir: &Path, name: &str, days: u32) -> Result<OperatorAdded> {
    check_operator_name(name)?;
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    if name == OPERATOR_CN || registry.operators.contains_key(name) {
        return Err(Error::InvalidInput(format!(
            "operator {name:?} already exists; `provision operator renew {name}` gives it a new \
             certificate"
        )));
    }
    let (cert, key) = store.layout.operator_identity(name)?;
    let ca = store.ca(&registry)?;
    let issued = ca.issue(Leaf::Client { cn: name }, days)?;
    registry
        .operators
        .insert(name.to_string(), issued.record.clone());
    let mut tx = store.transaction();
    tx.stage(&key, issued.key_pem.as_bytes(), SECRET)?;
    tx.stage(&cert, issued.cert_pem.as_bytes(), PUBLIC)?;
    let broker_updated = stage_users_update(&mut tx, &store.layout, &registry)?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(OperatorAdded {
        name: name.to_string(),
        serial: issued.record.serial,
        not_after: issued.record.not_after,
        cert,
        key,
        broker_updated,
    })
}
