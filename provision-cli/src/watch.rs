//! `provision watch`: follows devices' telemetry, status, command replies and OTA status.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::client::{Client, ConnectOptions, Event};
use crate::error::Result;
use crate::ota_status::StatusReport;
use crate::topics::{self, Kind};
use wire_format::ota_proto::Status;

/// Longest text shown of one payload in readable output.
const SHOW_MAX: usize = 400;

pub struct WatchOptions {
    pub connect: ConnectOptions,
    /// Devices to follow; empty: every device.
    pub ids: Vec<String>,
    /// Stop after this many messages.
    pub count: Option<u64>,
}

/// What `watch` reports.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// Connected and subscribed (once, first).
    Connected {
        broker: String,
        operator: String,
    },
    Message(Observed),
    /// The connection dropped; reconnecting.
    Disconnected(String),
    /// Connected again (to `broker`: with several endpoints, the next one after a failure).
    Reconnected {
        broker: String,
    },
}

/// One message from a device.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub device: String,
    /// `telemetry`, `status`, `reply/<name>`, `ota/up/status`.
    pub topic: String,
    /// Sent from the broker's retained store (it predates this watch).
    pub retained: bool,
    pub payload: Payload,
}

/// A payload as JSON when it is JSON, else as text, else by size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Json(serde_json::Value),
    Text(String),
    Binary { bytes: usize },
}

impl Payload {
    pub fn from_bytes(b: &[u8]) -> Payload {
        if let Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) =
            serde_json::from_slice::<serde_json::Value>(b)
        {
            return Payload::Json(v);
        }
        match std::str::from_utf8(b) {
            Ok(s) => Payload::Text(s.to_string()),
            Err(_) => Payload::Binary { bytes: b.len() },
        }
    }
}

/// The topics `watch` subscribes to.
pub fn filters(ids: &[String]) -> Vec<String> {
    topics::filters(ids, &["telemetry", "status", "reply/#", "ota/up/status"])
}

/// Follows the devices until `on_event` returns `false`, `count` messages were seen, or the
/// client fails. Reconnects by itself after a dropped connection.
pub fn watch(opts: &WatchOptions, mut on_event: impl FnMut(WatchEvent) -> bool) -> Result<()> {
    for id in &opts.ids {
        crate::topics::check_id(id)?;
    }
    let registry = crate::store::Store::open_read(&opts.connect.dir)?.registry()?;
    crate::client::check_devices(&registry, &opts.ids, true)?;
    let client = Client::connect_to(&opts.connect, &registry, &filters(&opts.ids))?;
    drop(registry);
    if !on_event(WatchEvent::Connected {
        broker: client.addr().to_string(),
        operator: client.operator().to_string(),
    }) {
        return Ok(());
    }
    let mut seen = 0u64;
    loop {
        if opts.count.is_some_and(|c| seen >= c) {
            client.disconnect();
            return Ok(());
        }
        let Some(event) = client.recv_timeout(Duration::from_secs(1))? else {
            continue;
        };
        let out = match event {
            Event::Message(m) => {
                let Some((id, kind)) = topics::parse(&m.topic) else {
                    continue;
                };
                if !opts.ids.is_empty() && !opts.ids.iter().any(|i| i == id) {
                    continue;
                }
                // An empty retained message is a deletion of the retained status, not a status.
                if m.payload.is_empty() && kind == Kind::Status {
                    continue;
                }
                seen += 1;
                let payload = match &kind {
                    // The OTA status is binary (docs/ota-protocol.md): show its fields.
                    Kind::OtaUp(t) if t == "status" => match Status::parse(&m.payload) {
                        Ok(s) => Payload::Json(
                            serde_json::to_value(StatusReport::from(&s)).expect("serializes"),
                        ),
                        Err(_) => Payload::from_bytes(&m.payload),
                    },
                    _ => Payload::from_bytes(&m.payload),
                };
                WatchEvent::Message(Observed {
                    time: OffsetDateTime::now_utc(),
                    device: id.to_string(),
                    topic: kind.label(),
                    retained: m.retained,
                    payload,
                })
            }
            Event::Disconnected(why) => WatchEvent::Disconnected(why),
            Event::Reconnected => WatchEvent::Reconnected {
                broker: client.addr().to_string(),
            },
        };
        if !on_event(out) {
            client.disconnect();
            return Ok(());
        }
    }
}

/// One readable line: `10:21:03 kitchen-1 telemetry seq=3 uptime_s=12 ports.b=0 adc=[1,2]`.
pub fn render_line(o: &Observed) -> String {
    let t = o.time;
    let body = match &o.payload {
        Payload::Json(serde_json::Value::Object(map)) => {
            let mut parts = Vec::new();
            flatten("", &serde_json::Value::Object(map.clone()), &mut parts);
            parts.join(" ")
        }
        Payload::Json(v) => printable(&v.to_string()),
        Payload::Text(s) => printable(s),
        Payload::Binary { bytes } => format!("<{bytes} bytes, not text>"),
    };
    format!(
        "{:02}:{:02}:{:02} {} {} {}{}",
        t.hour(),
        t.minute(),
        t.second(),
        o.device,
        o.topic,
        body,
        if o.retained { " (retained)" } else { "" }
    )
}

/// One JSON line.
pub fn render_json(o: &Observed) -> String {
    serde_json::to_string(o).expect("serializes")
}

/// `a.b=1` pairs from nested objects; arrays and scalars as compact JSON (strings bare).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push(format!("{prefix}={}", printable(s))),
        other => out.push(format!("{prefix}={}", printable(&other.to_string()))),
    }
}

/// Text safe for a terminal: control characters (escape sequences, line breaks) escaped, long
/// text cut.
pub fn printable(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == SHOW_MAX {
            out.push_str(&format!("... ({} bytes)", s.len()));
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(payload: &[u8], retained: bool) -> Observed {
        Observed {
            time: time::macros::datetime!(2026-01-02 03:04:05 UTC),
            device: "dev-1".into(),
            topic: "telemetry".into(),
            retained,
            payload: Payload::from_bytes(payload),
        }
    }

    #[test]
    fn lines_are_readable() {
        let o = observed(
            br#"{"seq":3,"ports":{"b":0,"c":2},"adc":[1,2],"avr_error":"x y"}"#,
            false,
        );
        assert_eq!(
            render_line(&o),
            "03:04:05 dev-1 telemetry seq=3 ports.b=0 ports.c=2 adc=[1,2] avr_error=x y"
        );
        assert_eq!(
            render_line(&observed(b"online", true)),
            "03:04:05 dev-1 telemetry online (retained)"
        );
        assert_eq!(
            render_line(&observed(&[0xff, 0, 1], false)),
            "03:04:05 dev-1 telemetry <3 bytes, not text>"
        );
    }

    #[test]
    fn terminal_escapes_are_defused() {
        let line = render_line(&observed(b"\x1b[2Jgone\nfake line", false));
        assert!(!line.contains('\x1b') && !line.contains('\n'), "{line}");
        let long = "a".repeat(5000);
        assert!(render_line(&observed(long.as_bytes(), false)).len() < 500);
    }

    #[test]
    fn json_lines_keep_the_payload() {
        let j = render_json(&observed(br#"{"seq":1}"#, false));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["payload"]["seq"], 1);
        assert_eq!(v["device"], "dev-1");
        assert_eq!(v["time"], "2026-01-02T03:04:05Z");
        let v: serde_json::Value =
            serde_json::from_str(&render_json(&observed(b"offline", true))).unwrap();
        assert_eq!(v["payload"], "offline");
        assert_eq!(v["retained"], true);
    }

    #[test]
    fn filters_name_each_device_or_all() {
        assert_eq!(filters(&[]).len(), 4);
        assert!(filters(&[]).contains(&"devices/+/telemetry".to_string()));
        let two = filters(&["a".into(), "b".into()]);
        assert_eq!(two.len(), 8);
        assert!(two.contains(&"devices/b/reply/#".to_string()));
    }
}
