//! `provision cmd`: one command to one device, and its reply.
//!
//! The command goes to `devices/<id>/cmd/<name>` (QoS 1, never retained) with a payload of
//! `key=value` pairs and a fresh `req=<token>`; the device answers on `devices/<id>/reply/<name>`
//! with JSON echoing the token (docs/topics.md). Replies to other requests are ignored.

use std::time::{Duration, Instant};

use crate::client::{Client, ConnectOptions, Event};
use crate::error::{Error, Result};
use crate::topics;

/// Longest command name the device takes (longer ones it ignores, unanswered).
pub const MAX_NAME: usize = 32;
/// Longest payload the device takes (longer ones it refuses by name).
pub const MAX_PAYLOAD: usize = 128;

pub struct CmdOptions {
    pub connect: ConnectOptions,
    pub id: String,
    pub name: String,
    /// `key=value` arguments.
    pub args: Vec<String>,
    pub timeout: Duration,
}

/// The device's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub id: String,
    pub name: String,
    /// The reply object as the device sent it.
    pub json: serde_json::Value,
    pub ok: bool,
}

impl Reply {
    /// The reply's `error` text, if it failed.
    pub fn error(&self) -> Option<&str> {
        self.json.get("error").and_then(|e| e.as_str())
    }
}

/// Checks the command and builds its payload (`req` appended).
pub fn payload(name: &str, args: &[String], req: &str) -> Result<String> {
    let bad = |why: String| Error::InvalidInput(why);
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(bad(format!(
            "command name {name:?}: expected 1 to {MAX_NAME} of a-z 0-9 - _ (e.g. set-pin)"
        )));
    }
    let mut out = String::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(bad(format!("argument {a:?} is not key=value")));
        };
        let key_ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let value_ok = !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
        if !key_ok || !value_ok {
            return Err(bad(format!(
                "argument {a:?}: keys are letters, digits, - and _; values are printable ASCII \
                 without spaces"
            )));
        }
        if k == "req" {
            return Err(bad(
                "req= is set by provision cmd to match the reply; leave it out".into(),
            ));
        }
        out.push_str(a);
        out.push(' ');
    }
    out.push_str("req=");
    out.push_str(req);
    if out.len() > MAX_PAYLOAD {
        return Err(bad(format!(
            "the command payload is {} bytes; the device takes at most {MAX_PAYLOAD}",
            out.len()
        )));
    }
    Ok(out)
}

/// Sends the command and waits for its reply. A reply with `"ok":false` is returned as a
/// [`Reply`] too: the caller decides (the CLI prints it, then exits with
/// [`Error::DeviceRefused`]'s code).
pub fn send(opts: &CmdOptions) -> Result<Reply> {
    topics::check_id(&opts.id)?;
    let req = format!("p{:08x}", rand::random::<u32>());
    let payload = payload(&opts.name, &opts.args, &req)?;
    let registry = crate::store::Store::open_read(&opts.connect.dir)?.registry()?;
    crate::client::check_devices(&registry, std::slice::from_ref(&opts.id), false)?;
    let reply_topic = topics::topic(Some(&opts.id), &format!("reply/{}", opts.name));
    let status_topic = topics::topic(Some(&opts.id), "status");
    let client = Client::connect_to(
        &opts.connect,
        &registry,
        &[reply_topic.clone(), status_topic.clone()],
    )?;
    drop(registry);
    client.publish(
        &topics::topic(Some(&opts.id), &format!("cmd/{}", opts.name)),
        payload,
    )?;
    let deadline = Instant::now() + opts.timeout;
    let mut status: Option<String> = None;
    let reply = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            client.disconnect();
            let hint = match status.as_deref() {
                Some(s) if s.contains("offline") => {
                    format!("; its last status is {s:?}: it is not connected")
                }
                Some(s) => format!("; its last status is {s:?}"),
                None => {
                    "; it has never reported a status (is the id right? `provision watch`)".into()
                }
            };
            return Err(Error::DeviceTimeout {
                id: opts.id.clone(),
                what: format!("cmd/{}", opts.name),
                secs: opts.timeout.as_secs(),
                hint,
            });
        }
        match client.recv_timeout(left)? {
            Some(Event::Message(m)) if m.topic == status_topic => {
                status = Some(String::from_utf8_lossy(&m.payload).into_owned());
            }
            Some(Event::Message(m)) if m.topic == reply_topic => {
                let Ok(json) = serde_json::from_slice::<serde_json::Value>(&m.payload) else {
                    continue;
                };
                if json.get("req").and_then(|r| r.as_str()) == Some(req.as_str()) {
                    break json;
                }
            }
            // Not retried: the command may have run already, and the reply would go to the
            // closed session.
            Some(Event::Disconnected(why)) => {
                return Err(Error::BrokerUnreachable {
                    addr: client.addr().to_string(),
                    reason: format!(
                        "the connection closed before the reply to cmd/{} came ({why}); the \
                         command may have run",
                        opts.name
                    ),
                })
            }
            _ => {}
        }
    };
    client.disconnect();
    let ok = reply.get("ok").and_then(|v| v.as_bool());
    match ok {
        Some(ok) => Ok(Reply {
            id: opts.id.clone(),
            name: opts.name.clone(),
            json: reply,
            ok,
        }),
        None => Err(Error::DeviceRefused {
            id: opts.id.clone(),
            what: format!("cmd/{}", opts.name),
            reason: format!("its reply has no \"ok\": {reply}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_checked() {
        assert_eq!(
            payload("set-pin", &["pin=9".into(), "level=1".into()], "r1").unwrap(),
            "pin=9 level=1 req=r1"
        );
        assert_eq!(payload("reboot", &[], "r1").unwrap(), "req=r1");
        for name in ["", "a/b", "+", "#", "A", &"x".repeat(33)] {
            assert!(payload(name, &[], "r").is_err(), "{name:?}");
        }
        for arg in [
            "pin",
            "=1",
            "pin=",
            "pin=a b",
            "p n=1",
            "req=5",
            "pin=\u{e9}",
        ] {
            assert!(payload("set-pin", &[arg.into()], "r").is_err(), "{arg:?}");
        }
        let long = format!("k={}", "v".repeat(200));
        assert!(payload("set-pin", &[long], "r").is_err());
    }
}
