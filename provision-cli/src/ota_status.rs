//! A device's OTA status report (docs/ota-protocol.md), as `provision ota status`, `ota push`
//! and `watch` show it.

use serde::Serialize;
use wire_format::ota;
use wire_format::ota_proto::{Phase, Status};

/// A status report, for people and scripts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusReport {
    pub state: &'static str,
    /// Download percent (`downloading`).
    pub percent: Option<u8>,
    /// The failed check (`refused`, `rolled-back`).
    pub reason: Option<&'static str>,
    pub running_version: String,
    /// The slot the running image booted from: `A` or `B`.
    pub running_slot: &'static str,
    pub bundle_id: Option<String>,
    pub bundle_version: Option<String>,
    pub received: u32,
    pub image_len: u32,
    pub security_floor: u32,
}

impl From<&Status> for StatusReport {
    fn from(s: &Status) -> Self {
        let zero = ota::Version {
            major: 0,
            minor: 0,
            patch: 0,
        };
        StatusReport {
            state: s.phase.state().name(),
            percent: match s.phase {
                Phase::Downloading { percent } => Some(percent),
                _ => None,
            },
            reason: match s.phase {
                Phase::Refused(r) | Phase::RolledBack(r) => Some(r.name()),
                _ => None,
            },
            running_version: s.running.to_string(),
            running_slot: s.running_slot.name(),
            bundle_id: (s.bundle_id != 0).then(|| format!("{:08x}", s.bundle_id)),
            bundle_version: (s.bundle_version != zero).then(|| s.bundle_version.to_string()),
            received: s.received,
            image_len: s.image_len,
            security_floor: s.floor,
        }
    }
}
