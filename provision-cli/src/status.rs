//! `provision status`: every certificate in service with its expiry, for people and for cron.

use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::Result;
use crate::pki::{self, OPERATOR_CN};
use crate::registry::{CertRecord, DeviceStatus};
use crate::store::Store;

/// Default `--warn-days`.
pub const DEFAULT_WARN_DAYS: u32 = 30;

/// What a certificate is for.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ca,
    Broker,
    Operator,
    Device,
    /// A renewed device's previous certificate, left valid by `renew --keep-old`.
    Previous,
    /// The CRL (`<dir>/crl.pem`): past its next-update time Mosquitto refuses every client.
    Crl,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Ca => "ca",
            Kind::Broker => "broker",
            Kind::Operator => "operator",
            Kind::Device => "device",
            Kind::Previous => "previous",
            Kind::Crl => "crl",
        })
    }
}

/// Where a certificate stands.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    /// Expires within the warning window.
    Expiring,
    Expired,
    /// Revoked: its expiry no longer matters.
    Revoked,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Ok => "ok",
            State::Expiring => "expiring",
            State::Expired => "expired",
            State::Revoked => "revoked",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub kind: Kind,
    /// CA name, the broker's first endpoint host, operator CN or device id.
    pub name: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days until not-after (negative once expired).
    pub days_left: i64,
    pub state: State,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
    pub warn_days: u32,
    pub entries: Vec<Entry>,
    /// Certificates in service that expire within `warn_days` or have expired.
    pub attention: usize,
}

impl StatusReport {
    /// True when something in service expires within the warning window (or has expired).
    pub fn needs_attention(&self) -> bool {
        self.attention > 0
    }
}

/// The CRL's next update, read from `<dir>/crl.pem` (the file the broker gets), rated like a
/// certificate. Its "serial" is the CRL number.
fn crl_entry(
    store: &Store,
    registry: &crate::registry::Registry,
    now: OffsetDateTime,
    warn_days: u32,
) -> Result<Entry> {
    let path = store.layout.crl();
    let pem = crate::fsutil::read_bounded(&path, crate::store::CRL_LIMIT, "CRL")?;
    let corrupt = |reason: String| crate::Error::Corrupt {
        path: path.clone(),
        reason,
    };
    let (_, block) =
        x509_parser::pem::parse_x509_pem(&pem).map_err(|e| corrupt(format!("not PEM ({e})")))?;
    use x509_parser::prelude::FromDer;
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&block.contents)
            .map_err(|e| corrupt(format!("not a CRL ({e})")))?;
    let next = crl
        .next_update()
        .ok_or_else(|| corrupt("has no next-update time".into()))?
        .to_datetime();
    let left = next - now;
    let state = if left <= time::Duration::ZERO {
        State::Expired
    } else if left <= time::Duration::days(warn_days.into()) {
        State::Expiring
    } else {
        State::Ok
    };
    Ok(Entry {
        kind: Kind::Crl,
        name: "crl.pem".into(),
        serial: registry.crl_number.to_string(),
        not_after: next,
        days_left: left.whole_days(),
        state,
    })
}

/// Reads the registry and rates every certificate against `now + warn_days`.
pub fn status(dir: &Path, warn_days: u32) -> Result<StatusReport> {
    status_at(dir, warn_days, pki::now())
}

/// [`status`] as of `now`.
pub fn status_at(dir: &Path, warn_days: u32, now: OffsetDateTime) -> Result<StatusReport> {
    let store = Store::open_read(dir)?;
    let registry = store.registry()?;
    let rate = |kind: Kind, name: &str, cert: &CertRecord, revoked: bool| {
        let left = cert.not_after - now;
        let state = if revoked {
            State::Revoked
        } else if left <= time::Duration::ZERO {
            State::Expired
        } else if left <= time::Duration::days(warn_days.into()) {
            State::Expiring
        } else {
            State::Ok
        };
        Entry {
            kind,
            name: name.to_string(),
            serial: cert.serial.clone(),
            not_after: cert.not_after,
            days_left: left.whole_days(),
            state,
        }
    };
    let mut entries = vec![rate(Kind::Ca, &registry.ca.name, &registry.ca.cert, false)];
    if let Some(b) = &registry.broker {
        // Named by where clients reach it (the first endpoint: one certificate covers them all).
        let name = b
            .endpoints()
            .into_iter()
            .next()
            .map_or_else(|| "broker".to_string(), |(host, _)| host);
        entries.push(rate(Kind::Broker, &name, &b.cert, false));
    }
    entries.push(rate(Kind::Operator, OPERATOR_CN, &registry.operator, false));
    for (name, cert) in &registry.operators {
        entries.push(rate(Kind::Operator, name, cert, false));
    }
    let kept_valid = registry.kept_valid();
    for (id, d) in &registry.devices {
        entries.push(rate(
            Kind::Device,
            id,
            &d.cert,
            d.status == DeviceStatus::Revoked,
        ));
        for old in kept_valid.get(id.as_str()).into_iter().flatten() {
            entries.push(rate(Kind::Previous, id, &old.cert, false));
        }
    }
    entries.push(crl_entry(&store, &registry, now, warn_days)?);
    let attention = entries
        .iter()
        .filter(|e| e.kind != Kind::Previous && matches!(e.state, State::Expiring | State::Expired))
        .count();
    Ok(StatusReport {
        now,
        warn_days,
        entries,
        attention,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The states over time for one directory: ok, expiring inside the window, expired after.
    #[test]
    fn states_follow_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        crate::init::init(
            dir.path(),
            &crate::init::InitOptions {
                ca_name: "t".into(),
                days: 3650,
                operator_days: 100,
                force: false,
            },
        )
        .unwrap();
        crate::device::add(dir.path(), &["d-1".to_string()], 50).unwrap();
        let now = pki::now();
        let at = |days: i64| status_at(dir.path(), 30, now + time::Duration::days(days)).unwrap();
        let state =
            |r: &StatusReport, name: &str| r.entries.iter().find(|e| e.name == name).unwrap().state;
        let r = at(0);
        assert_eq!((state(&r, "d-1"), r.attention), (State::Ok, 0));
        let r = at(25);
        assert_eq!(state(&r, "d-1"), State::Expiring);
        assert_eq!(state(&r, OPERATOR_CN), State::Ok);
        assert_eq!(r.attention, 1);
        let r = at(51);
        assert_eq!(state(&r, "d-1"), State::Expired);
        assert!(
            r.entries
                .iter()
                .find(|e| e.name == "d-1")
                .unwrap()
                .days_left
                < 0
        );
        assert_eq!(state(&r, OPERATOR_CN), State::Ok);
        assert_eq!(r.attention, 1);
        let r = at(75);
        assert_eq!(state(&r, OPERATOR_CN), State::Expiring);
        assert_eq!(r.attention, 2);
        // A revoked device's expiry no longer counts.
        crate::device::revoke(dir.path(), "d-1").unwrap();
        let r = at(75);
        assert_eq!((state(&r, "d-1"), r.attention), (State::Revoked, 1));
    }
}
