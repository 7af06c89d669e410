//! Commands under `devices/<id>/cmd/<name>` and their replies on `devices/<id>/reply/<name>`
//! (docs/topics.md). Payloads are short ASCII `key=value` pairs separated by spaces, e.g.
//! `pin=9 level=1 req=42`, so the device needs no JSON parser; replies and telemetry are JSON,
//! written with `core::fmt` into fixed buffers.

use core::fmt::Write;

/// A parsed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `set-pin`: `pin=<id> level=<0|1>`.
    SetPin { pin: u8, high: bool },
    /// `read-adc`: `channel=<n>`.
    ReadAdc { channel: u8 },
    /// `reboot`: no arguments.
    Reboot,
}

/// Every command name the device knows. docs/topics.md lists them with arguments and replies;
/// a test keeps the two in step.
pub const NAMES: [&str; 3] = ["set-pin", "read-adc", "reboot"];

impl Command {
    /// The name it arrives under (`cmd/<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::SetPin { .. } => "set-pin",
            Command::ReadAdc { .. } => "read-adc",
            Command::Reboot => "reboot",
        }
    }
}

/// Why a command was refused (sent back in the reply's `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError<'a> {
    Unknown(&'a str),
    Missing(&'static str),
    BadValue(&'static str),
    NotAscii,
    /// The payload is longer than the device keeps for a command.
    TooLong {
        len: usize,
        max: usize,
    },
}

impl core::fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CommandError::Unknown(name) => write!(f, "unknown command {}", Json(name)),
            CommandError::Missing(key) => write!(f, "missing argument {key}="),
            CommandError::BadValue(key) => write!(f, "bad value for {key}="),
            CommandError::NotAscii => write!(f, "payload is not ASCII key=value pairs"),
            CommandError::TooLong { len, max } => {
                write!(
                    f,
                    "payload of {len} bytes exceeds the {max}-byte command buffer"
                )
            }
        }
    }
}

/// Looks up `key` in `k=v k=v` text.
pub fn arg<'a>(payload: &'a str, key: &str) -> Option<&'a str> {
    payload
        .split_ascii_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn number<T: core::str::FromStr>(
    payload: &str,
    key: &'static str,
) -> Result<T, CommandError<'static>> {
    arg(payload, key)
        .ok_or(CommandError::Missing(key))?
        .parse()
        .map_err(|_| CommandError::BadValue(key))
}

/// Parses command `name` with `payload`.
pub fn parse<'a>(name: &'a str, payload: &'a [u8]) -> Result<Command, CommandError<'a>> {
    let payload = core::str::from_utf8(payload).map_err(|_| CommandError::NotAscii)?;
    if !payload.is_ascii() {
        return Err(CommandError::NotAscii);
    }
    match name {
        "set-pin" => {
            let pin = number(payload, "pin")?;
            let high = match arg(payload, "level") {
                Some("1") | Some("high") => true,
                Some("0") | Some("low") => false,
                Some(_) => return Err(CommandError::BadValue("level")),
                None => return Err(CommandError::Missing("level")),
            };
            Ok(Command::SetPin { pin, high })
        }
        "read-adc" => Ok(Command::ReadAdc {
            channel: number(payload, "channel")?,
        }),
        "reboot" => Ok(Command::Reboot),
        other => Err(CommandError::Unknown(other)),
    }
}

/// A request token echoed in the reply, if it is short and safe to put in JSON unescaped.
pub fn request_id(payload: &[u8]) -> Option<&str> {
    let payload = core::str::from_utf8(payload).ok()?;
    let req = arg(payload, "req")?;
    let ok = req.len() <= 32
        && req
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    ok.then_some(req)
}

/// Writes `s` as a JSON string (quotes and escapes).
pub struct Json<'a>(pub &'a str);

impl core::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// A fixed buffer that `core::fmt` writes into; overflowing it is an error, never a panic.
pub struct FmtBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FmtBuf<N> {
    pub const fn new() -> Self {
        FmtBuf {
            buf: [0; N],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn as_str(&self) -> &str {
        // Only `write_str` fills the buffer, and it copies whole `str`s.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Drops everything after the first `len` bytes (to undo a half-written part).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl<const N: usize> Default for FmtBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for FmtBuf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_commands() {
        assert_eq!(
            parse("set-pin", b"pin=9 level=1"),
            Ok(Command::SetPin { pin: 9, high: true })
        );
        assert_eq!(
            parse("set-pin", b"level=low  pin=16 req=a1"),
            Ok(Command::SetPin {
                pin: 16,
                high: false
            })
        );
        assert_eq!(
            parse("read-adc", b"channel=3"),
            Ok(Command::ReadAdc { channel: 3 })
        );
        assert_eq!(parse("reboot", b""), Ok(Command::Reboot));
    }

    #[test]
    fn refusals_name_the_problem() {
        assert_eq!(parse("dance", b""), Err(CommandError::Unknown("dance")));
        assert_eq!(
            parse("set-pin", b"pin=9"),
            Err(CommandError::Missing("level"))
        );
        assert_eq!(
            parse("set-pin", b"pin=300 level=1"),
            Err(CommandError::BadValue("pin"))
        );
        assert_eq!(
            parse("set-pin", b"pin=1 level=2"),
            Err(CommandError::BadValue("level"))
        );
        assert_eq!(parse("read-adc", &[0xFF]), Err(CommandError::NotAscii));
        let mut out = FmtBuf::<64>::new();
        write!(out, "{}", CommandError::Unknown("a\"b")).unwrap();
        assert_eq!(out.as_str(), "unknown command \"a\\\"b\"");
    }

    #[test]
    fn request_ids_are_echoed_only_when_safe() {
        assert_eq!(request_id(b"pin=1 req=abc-1"), Some("abc-1"));
        assert_eq!(request_id(b"req=a\"b"), None);
        assert_eq!(request_id(b"pin=1"), None);
    }

    /// The command table of docs/topics.md: (name, example arguments).
    fn documented_commands() -> Vec<(String, String)> {
        let doc = include_str!("../../docs/topics.md");
        let section = doc
            .split("The commands the device knows:")
            .nth(1)
            .expect("docs/topics.md has the command table");
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                let name = cells[0].trim_start_matches("| ").trim_matches('`');
                let example = cells[3].trim_end_matches(" |").trim_matches('`');
                let args = example
                    .split_whitespace()
                    .skip(4) // provision cmd ID NAME
                    .collect::<Vec<_>>()
                    .join(" ");
                assert!(
                    example.starts_with("provision cmd ") && example.contains(name),
                    "{row}"
                );
                (name.to_string(), args)
            })
            .collect()
    }

    #[test]
    fn docs_list_exactly_the_commands_the_device_knows() {
        let doc = documented_commands();
        let names: Vec<&str> = doc.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names, NAMES,
            "docs/topics.md's command table and NAMES differ"
        );
        for (name, args) in &doc {
            let c = parse(name, args.as_bytes())
                .unwrap_or_else(|e| panic!("documented `{name} {args}` is refused: {e:?}"));
            assert_eq!(c.name(), name);
        }
        // The limits the doc states are the device's buffers.
        let text = include_str!("../../docs/topics.md");
        use crate::settings::{CMD_NAME_BUF, CMD_PAYLOAD_BUF};
        assert!(text.contains(&format!("at most {CMD_PAYLOAD_BUF} bytes")));
        assert!(text.contains(&format!("A command name has at most {CMD_NAME_BUF} bytes")));
        assert!(text.contains(&format!(
            "exceeds the {CMD_PAYLOAD_BUF}-byte command buffer"
        )));
        // The refusals the doc shows are the device's own words.
        for e in [
            CommandError::Unknown("dance"),
            CommandError::Missing("level"),
            CommandError::BadValue("pin"),
            CommandError::NotAscii,
            CommandError::TooLong {
                len: 200,
                max: CMD_PAYLOAD_BUF,
            },
        ] {
            let mut shown = FmtBuf::<128>::new();
            write!(shown, "{e}").unwrap();
            assert!(
                text.contains(&format!("| `{}` |", shown.as_str())),
                "docs/topics.md does not show the refusal {:?}",
                shown.as_str()
            );
        }
        // And a name outside the table is refused.
        assert_eq!(
            parse("pin", b"pin=1 level=1"),
            Err(CommandError::Unknown("pin"))
        );
        assert_eq!(
            parse("adc", b"channel=1"),
            Err(CommandError::Unknown("adc"))
        );
    }

    #[test]
    fn fmtbuf_refuses_overflow() {
        let mut b = FmtBuf::<4>::new();
        assert!(write!(b, "abcd").is_ok());
        assert!(write!(b, "e").is_err());
        assert_eq!(b.as_str(), "abcd");
    }
}
