//! The topic tree under `devices/<id>/` (docs/topics.md), as the operator sees it.

use wire_format::device_id;

use crate::error::{Error, Result};

/// What a topic under `devices/<id>/` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Telemetry,
    Status,
    /// `reply/<name>`
    Reply(String),
    /// `cmd/<name>`
    Cmd(String),
    /// `ota/up/<rest>`
    OtaUp(String),
    /// `ota/down/<rest>`
    OtaDown(String),
    /// Anything else below `devices/<id>/`.
    Other(String),
}

impl Kind {
    /// A short label for one-line output.
    pub fn label(&self) -> String {
        match self {
            Kind::Telemetry => "telemetry".into(),
            Kind::Status => "status".into(),
            Kind::Reply(n) => format!("reply/{n}"),
            Kind::Cmd(n) => format!("cmd/{n}"),
            Kind::OtaUp(r) => format!("ota/up/{r}"),
            Kind::OtaDown(r) => format!("ota/down/{r}"),
            Kind::Other(r) => r.clone(),
        }
    }
}

/// Splits `devices/<id>/<rest>`; `None` for topics outside the tree.
pub fn parse(topic: &str) -> Option<(&str, Kind)> {
    let rest = topic.strip_prefix("devices/")?;
    let (id, rest) = rest.split_once('/')?;
    let kind = match rest {
        "telemetry" => Kind::Telemetry,
        "status" => Kind::Status,
        r => {
            if let Some(n) = r.strip_prefix("reply/") {
                Kind::Reply(n.into())
            } else if let Some(n) = r.strip_prefix("cmd/") {
                Kind::Cmd(n.into())
            } else if let Some(n) = r.strip_prefix("ota/up/") {
                Kind::OtaUp(n.into())
            } else if let Some(n) = r.strip_prefix("ota/down/") {
                Kind::OtaDown(n.into())
            } else {
                Kind::Other(r.into())
            }
        }
    };
    Some((id, kind))
}

/// `devices/<id>/<suffix>`, or `devices/+/<suffix>` for every device.
pub fn topic(id: Option<&str>, suffix: &str) -> String {
    format!("devices/{}/{suffix}", id.unwrap_or("+"))
}

/// Above this many devices, a command subscribes with `+` for every device and drops the
/// others' messages itself (fewer, smaller SUBSCRIBE packets).
pub const WILDCARD_ABOVE: usize = 16;

/// The filters for `suffixes` of each of `ids` (every device when `ids` is empty or longer than
/// [`WILDCARD_ABOVE`]).
pub fn filters(ids: &[String], suffixes: &[&str]) -> Vec<String> {
    if ids.is_empty() || ids.len() > WILDCARD_ABOVE {
        suffixes.iter().map(|s| topic(None, s)).collect()
    } else {
        ids.iter()
            .flat_map(|id| suffixes.iter().map(move |s| topic(Some(id), s)))
            .collect()
    }
}

/// Checks a device id given on the command line (it becomes a topic level: no wildcards).
pub fn check_id(id: &str) -> Result<()> {
    device_id::validate(id).map_err(|source| Error::InvalidDeviceId {
        id: id.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_split() {
        assert_eq!(
            parse("devices/a-1/telemetry"),
            Some(("a-1", Kind::Telemetry))
        );
        assert_eq!(
            parse("devices/a-1/reply/set-pin"),
            Some(("a-1", Kind::Reply("set-pin".into())))
        );
        assert_eq!(
            parse("devices/a-1/ota/up/status"),
            Some(("a-1", Kind::OtaUp("status".into())))
        );
        assert_eq!(parse("elsewhere/a/telemetry"), None);
        assert_eq!(parse("devices/a"), None);
        assert_eq!(topic(None, "status"), "devices/+/status");
        assert_eq!(topic(Some("x"), "status"), "devices/x/status");
        let many: Vec<String> = (0..=WILDCARD_ABOVE).map(|i| format!("d{i}")).collect();
        assert_eq!(filters(&many, &["status"]), ["devices/+/status"]);
        assert_eq!(filters(&many[..2], &["status"]).len(), 2);
    }
}
