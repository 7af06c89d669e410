//! The device config blob: everything one device needs to reach its broker, written by
//! `provision device config` and read by the firmware from its config flash sector.
//!
//! Layout (all integers little endian; the spec table is docs/device-config.md):
//!
//! ```text
//! header  magic "ESPC" | version u8 | flags u8 | total_len u16
//! body    id(u8 len) | ssid(u8 len) | password(u8 len)
//!         brokers: version 1: host(u8 len) | port u16
//!                  version 2: count u8 (1..=4) | count × (host(u8 len) | port u16)
//!         period_s u32 | ca_der(u16 len) | cert_der(u16 len) | key_der(u16 len)
//!         [pin 32 bytes, if flags & FLAG_PIN] | ota_key_count u8 | ota keys (key id u32 + 32 bytes)
//! trailer crc32 u32 (CRC-32/ISO-HDLC over header and body)
//! ```
//!
//! [`DeviceConfig::emit`] writes version 1 when the config names one broker endpoint (byte for
//! byte what earlier tools wrote, and what earlier firmware reads) and version 2 for two to
//! [`MAX_BROKERS`]. Parsing reads both.
//!
//! Parsing checks the CRC before it looks at a single field, so a flipped bit or a torn write is
//! reported as such and never as a confusing field error.

use crate::device_id::{self, IdError};

/// Constants of the format: one block, checked by the size assertion below.
pub mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 5;
    pub const TOTAL_LEN: Range<usize> = 6..8;
    pub const BODY: usize = 8;
}
/// `"ESPC"`: ESP config.
pub const MAGIC: [u8; 4] = *b"ESPC";
/// The newest version: a list of 1 to [`MAX_BROKERS`] broker endpoints.
pub const VERSION: u8 = 2;
/// The first version: exactly one broker endpoint. Still read, and still written for a config
/// with one endpoint.
pub const VERSION_ONE_BROKER: u8 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = 8;
/// The CRC-32 trailer.
pub const CRC_LEN: usize = 4;
/// One flash sector: the blob must fit the ESP8266's 4 KiB config sector.
pub const MAX_LEN: usize = 4096;
/// Flag bit: a 32-byte broker public-key pin follows the key.
pub const FLAG_PIN: u8 = 0x01;
/// Flag bit: the device keeps a persistent MQTT session (CONNECT with clean session 0), so a
/// cluster keeps its subscription in a replicated queue that survives the loss of a node.
pub const FLAG_PERSISTENT_SESSION: u8 = 0x02;
/// Every flag bit this code knows.
const FLAGS_KNOWN: u8 = FLAG_PIN | FLAG_PERSISTENT_SESSION;
/// Longest WiFi SSID (802.11).
pub const MAX_SSID: usize = 32;
/// Longest WPA2 passphrase (63 ASCII) or raw PSK (64 hex digits).
pub const MAX_PASSWORD: usize = 64;
/// Longest DNS name.
pub const MAX_HOST: usize = 253;
/// At most this many broker endpoints (the nodes of a cluster the device fails over between).
pub const MAX_BROKERS: usize = 4;
/// At most this many OTA signing keys (current + next, with room for a rotation).
pub const MAX_OTA_KEYS: usize = 4;
/// Ed25519 public key length.
pub const OTA_KEY_LEN: usize = 32;
/// One OTA key entry: the key id that bundle headers name (u32 LE), then the public key.
pub const OTA_KEY_ENTRY: usize = 4 + OTA_KEY_LEN;
/// SHA-256 of the broker's SubjectPublicKeyInfo.
pub const PIN_LEN: usize = 32;
/// Longest telemetry period: one day.
pub const MAX_PERIOD_S: u32 = 86_400;
/// The smallest possible blob (version 1): empty optional strings, one-byte id and host, no
/// certs.
pub const MIN_LEN: usize = HEADER_LEN + 4 + 1 + 1 + 2 + 4 + 2 * 3 + 1 + CRC_LEN;
const _: () = assert!(field::BODY == HEADER_LEN && field::TOTAL_LEN.end == HEADER_LEN);
const _: () = assert!(MIN_LEN == 31 && MAX_LEN <= u16::MAX as usize);
const _: () = assert!(MAX_BROKERS <= u8::MAX as usize);

const CRC32: crc::Crc<u32, crc::NoTable> =
    crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC (the zlib/Ethernet CRC), as stored in the trailer.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// A field of the blob, named in errors. The broker fields carry the endpoint's index (0-based;
/// messages count from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    DeviceId,
    WifiSsid,
    WifiPassword,
    /// The number of broker endpoints (version 2).
    BrokerCount,
    BrokerHost(u8),
    BrokerPort(u8),
    TelemetryPeriod,
    CaCert,
    ClientCert,
    ClientKey,
    BrokerPin,
    OtaKeys,
}

impl Field {
    /// The field's name, as docs/device-config.md's table names it.
    pub const fn name(self) -> &'static str {
        match self {
            Field::DeviceId => "device id",
            Field::WifiSsid => "WiFi SSID",
            Field::WifiPassword => "WiFi password",
            Field::BrokerCount => "broker count",
            Field::BrokerHost(_) => "broker host",
            Field::BrokerPort(_) => "broker port",
            Field::TelemetryPeriod => "telemetry period",
            Field::CaCert => "CA certificate",
            Field::ClientCert => "client certificate",
            Field::ClientKey => "client key",
            Field::BrokerPin => "broker public-key pin",
            Field::OtaKeys => "OTA public keys",
        }
    }
}

/// The name, and for a broker field which endpoint: `broker host (endpoint 2)`.
impl core::fmt::Display for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Field::BrokerHost(i) | Field::BrokerPort(i) => {
                write!(f, "{} (endpoint {})", self.name(), u16::from(*i) + 1)
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// Why a blob was refused (parse) or could not be written (emit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The sector is erased (starts with `FF FF FF FF`): nothing was ever flashed there.
    Erased,
    /// Fewer bytes than the header or than `total_len` says.
    Truncated { need: usize, have: usize },
    /// The first four bytes are not `"ESPC"`.
    BadMagic([u8; 4]),
    /// A version this firmware does not know.
    UnsupportedVersion(u8),
    /// Flag bits this version does not define.
    UnknownFlags(u8),
    /// `total_len` is below the minimum or above one sector.
    BadTotalLen(usize),
    /// The CRC-32 trailer does not match the bytes.
    CrcMismatch { stored: u32, computed: u32 },
    /// A field runs past the end of the body.
    FieldTruncated(Field),
    /// A field is longer than the format allows (for a list: more entries).
    TooLong {
        field: Field,
        len: usize,
        max: usize,
    },
    /// A text field is not UTF-8, or a required one is empty.
    BadText(Field),
    /// The device id breaks the id rule.
    BadDeviceId(IdError),
    /// Port 0 at this broker endpoint (0-based).
    BadPort(u8),
    /// A period of 0 or more than [`MAX_PERIOD_S`].
    BadPeriod(u32),
    /// Bytes between the last field and the CRC.
    TrailingBytes(usize),
    /// A required certificate, key or list is empty.
    Missing(Field),
    /// The output buffer is too small for the blob (emit).
    BufferTooSmall { need: usize, have: usize },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::Erased => {
                write!(f, "config sector is erased: no device config was flashed")
            }
            ConfigError::Truncated { need, have } => {
                write!(f, "config blob is truncated: {have} bytes, need {need}")
            }
            ConfigError::BadMagic(m) => {
                write!(f, "config blob has magic {m:02x?}, expected \"ESPC\"")
            }
            ConfigError::UnsupportedVersion(v) => write!(
                f,
                "config blob version {v} is not supported (this firmware reads \
                 {VERSION_ONE_BROKER} to {VERSION})"
            ),
            ConfigError::UnknownFlags(x) => write!(f, "config blob has unknown flag bits {x:#04x}"),
            ConfigError::BadTotalLen(n) => {
                write!(f, "config blob length {n} is outside {MIN_LEN}..={MAX_LEN}")
            }
            ConfigError::CrcMismatch { stored, computed } => write!(
                f,
                "config blob is corrupt: CRC-32 is {computed:#010x}, stored {stored:#010x}"
            ),
            ConfigError::FieldTruncated(x) => {
                write!(f, "config blob ends inside the {x} field")
            }
            ConfigError::TooLong {
                field: field @ (Field::BrokerCount | Field::OtaKeys),
                len,
                max,
            } => write!(f, "config has {len} {}; at most {max} are allowed", {
                match field {
                    Field::BrokerCount => "broker endpoints",
                    _ => "OTA public keys",
                }
            }),
            ConfigError::TooLong { field, len, max } => write!(
                f,
                "config {field} is {len} bytes long; at most {max} are allowed"
            ),
            ConfigError::BadText(x) => write!(f, "config {x} is empty or not UTF-8"),
            ConfigError::BadDeviceId(e) => write!(f, "config {e}"),
            ConfigError::BadPort(i) => {
                write!(f, "config {} is 0", Field::BrokerPort(*i))
            }
            ConfigError::BadPeriod(p) => {
                write!(
                    f,
                    "config telemetry period {p} s is outside 1..={MAX_PERIOD_S}"
                )
            }
            ConfigError::TrailingBytes(n) => {
                write!(f, "config blob has {n} unexpected bytes before its CRC")
            }
            ConfigError::Missing(Field::BrokerCount) => {
                write!(f, "config names no broker endpoint")
            }
            ConfigError::Missing(x) => write!(f, "config {x} is missing"),
            ConfigError::BufferTooSmall { need, have } => {
                write!(f, "config blob needs {need} bytes, the buffer has {have}")
            }
        }
    }
}

/// One broker endpoint: the name the device connects to (and checks the broker certificate
/// against) and its TLS port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Endpoint<'a> {
    pub host: &'a str,
    pub port: u16,
}

/// The broker endpoints, in the order the device tries them: at most [`MAX_BROKERS`], held
/// without allocation (a fixed array of borrowed names).
#[derive(Clone, Copy)]
pub struct Brokers<'a> {
    list: [Endpoint<'a>; MAX_BROKERS],
    len: u8,
}

impl<'a> Brokers<'a> {
    /// No endpoint (a config with it does not check or emit).
    pub const EMPTY: Brokers<'static> = Brokers {
        list: [Endpoint { host: "", port: 0 }; MAX_BROKERS],
        len: 0,
    };

    /// One endpoint.
    pub const fn one(host: &'a str, port: u16) -> Self {
        let mut list = [Endpoint { host: "", port: 0 }; MAX_BROKERS];
        list[0] = Endpoint { host, port };
        Brokers { list, len: 1 }
    }

    /// The endpoints in `list`, in order; more than [`MAX_BROKERS`] is an error naming the count.
    pub fn new(list: &[Endpoint<'a>]) -> Result<Self, ConfigError> {
        let mut b = Brokers {
            list: [Endpoint::default(); MAX_BROKERS],
            len: 0,
        };
        for e in list {
            if !b.push(*e) {
                return Err(ConfigError::TooLong {
                    field: Field::BrokerCount,
                    len: list.len(),
                    max: MAX_BROKERS,
                });
            }
        }
        Ok(b)
    }

    fn push(&mut self, e: Endpoint<'a>) -> bool {
        match self.list.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = e;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub fn as_slice(&self) -> &[Endpoint<'a>] {
        &self.list[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The endpoint at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<Endpoint<'a>> {
        self.as_slice().get(index).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = Endpoint<'a>> + '_ {
        self.as_slice().iter().copied()
    }

    /// Bytes of the list in the body: the count byte (version 2) and every entry.
    fn wire_len(&self) -> usize {
        let entries: usize = self.iter().map(|e| 1 + e.host.len() + 2).sum();
        entries + usize::from(self.len != 1)
    }
}

impl PartialEq for Brokers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Brokers<'_> {}

impl core::fmt::Debug for Brokers<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// A parsed config, borrowing from the blob. Certificates and the key are DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceConfig<'a> {
    pub device_id: &'a str,
    pub wifi_ssid: &'a str,
    pub wifi_password: &'a str,
    /// Where the broker listens: one endpoint, or the nodes of a cluster (1..=[`MAX_BROKERS`]),
    /// tried in this order.
    pub brokers: Brokers<'a>,
    pub telemetry_period_s: u32,
    /// The one CA the device trusts (X.509 DER).
    pub ca_cert_der: &'a [u8],
    /// The device's own certificate (X.509 DER).
    pub client_cert_der: &'a [u8],
    /// The device's P-256 private key (PKCS#8 DER). Secret.
    pub client_key_der: &'a [u8],
    /// SHA-256 of the broker's SubjectPublicKeyInfo, if the operator pinned it.
    pub broker_pin: Option<&'a [u8; PIN_LEN]>,
    /// Ed25519 OTA verification keys, as entries (see [`ota_key_entry`]).
    pub ota_keys: &'a [[u8; OTA_KEY_ENTRY]],
    /// Connect with a persistent session ([`FLAG_PERSISTENT_SESSION`]).
    pub persistent_session: bool,
}

/// Builds one OTA key entry.
pub fn ota_key_entry(key_id: u32, public_key: &[u8; OTA_KEY_LEN]) -> [u8; OTA_KEY_ENTRY] {
    let mut e = [0u8; OTA_KEY_ENTRY];
    e[..4].copy_from_slice(&key_id.to_le_bytes());
    e[4..].copy_from_slice(public_key);
    e
}

impl DeviceConfig<'_> {
    /// The OTA keys as (key id, public key).
    pub fn trusted_ota_keys(&self) -> impl Iterator<Item = (u32, &[u8; OTA_KEY_LEN])> + '_ {
        self.ota_keys.iter().map(|e| {
            let (id, key) = e.split_at(4);
            let key: &[u8; OTA_KEY_LEN] = key.try_into().unwrap_or(&[0; OTA_KEY_LEN]);
            (u32::from_le_bytes([id[0], id[1], id[2], id[3]]), key)
        })
    }
}

/// Where each field of a checked blob lies, found once by [`Layout::of`]. [`Layout::view`] then
/// rebuilds the [`DeviceConfig`] from the same bytes without checking the CRC or the fields
/// again: a device that keeps its config sector in RAM reads it in constant time per use. The
/// broker endpoints stay in the blob: the layout knows where their entries lie and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    device_id: Span,
    wifi_ssid: Span,
    wifi_password: Span,
    /// The endpoint entries (`host(u8 len) | port u16`, each), without version 2's count byte.
    brokers: Span,
    broker_count: u8,
    telemetry_period_s: u32,
    ca_cert_der: Span,
    client_cert_der: Span,
    client_key_der: Span,
    broker_pin: Option<Span>,
    ota_keys: Span,
    persistent_session: bool,
}

/// `start..start + len` in the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u16,
    len: u16,
}

impl Span {
    fn of(blob: &[u8], field: &[u8]) -> Span {
        // `field` is a sub-slice of `blob` (parse borrows from it); blobs are at most 4 KiB.
        let start = field.as_ptr() as usize - blob.as_ptr() as usize;
        Span {
            start: start as u16,
            len: field.len() as u16,
        }
    }
    fn get<'a>(&self, blob: &'a [u8]) -> &'a [u8] {
        let start = usize::from(self.start);
        blob.get(start..start + usize::from(self.len))
            .unwrap_or(&[])
    }
    fn text<'a>(&self, blob: &'a [u8]) -> &'a str {
        core::str::from_utf8(self.get(blob)).unwrap_or("")
    }
}

impl Layout {
    /// Parses and checks `blob` (as [`DeviceConfig::parse`]) and remembers where the fields are.
    pub fn of(blob: &[u8]) -> Result<Layout, ConfigError> {
        let c = DeviceConfig::parse(blob)?;
        // The entries run from the first host's length byte to the last endpoint's port.
        let list = c.brokers.as_slice();
        let brokers = match (list.first(), list.last()) {
            (Some(first), Some(last)) => {
                let first = Span::of(blob, first.host.as_bytes());
                let last = Span::of(blob, last.host.as_bytes());
                let start = first.start - 1;
                Span {
                    start,
                    len: last.start + last.len + 2 - start,
                }
            }
            _ => Span::default(),
        };
        Ok(Layout {
            device_id: Span::of(blob, c.device_id.as_bytes()),
            wifi_ssid: Span::of(blob, c.wifi_ssid.as_bytes()),
            wifi_password: Span::of(blob, c.wifi_password.as_bytes()),
            brokers,
            broker_count: c.brokers.len() as u8,
            telemetry_period_s: c.telemetry_period_s,
            ca_cert_der: Span::of(blob, c.ca_cert_der),
            client_cert_der: Span::of(blob, c.client_cert_der),
            client_key_der: Span::of(blob, c.client_key_der),
            broker_pin: c.broker_pin.map(|p| Span::of(blob, p)),
            ota_keys: Span::of(blob, c.ota_keys.as_flattened()),
            persistent_session: c.persistent_session,
        })
    }

    /// How many broker endpoints the config names.
    pub fn broker_count(&self) -> usize {
        usize::from(self.broker_count)
    }

    /// The config in `blob`, which must be the bytes `of` checked (unchanged). Different bytes
    /// give garbage fields (empty where out of range), never a panic.
    pub fn view<'a>(&self, blob: &'a [u8]) -> DeviceConfig<'a> {
        let mut entries = Cursor {
            buf: self.brokers.get(blob),
            pos: 0,
        };
        let brokers = entries
            .endpoints(usize::from(self.broker_count))
            .unwrap_or(Brokers::EMPTY);
        DeviceConfig {
            device_id: self.device_id.text(blob),
            wifi_ssid: self.wifi_ssid.text(blob),
            wifi_password: self.wifi_password.text(blob),
            brokers,
            telemetry_period_s: self.telemetry_period_s,
            ca_cert_der: self.ca_cert_der.get(blob),
            client_cert_der: self.client_cert_der.get(blob),
            client_key_der: self.client_key_der.get(blob),
            broker_pin: self
                .broker_pin
                .and_then(|p| <&[u8; PIN_LEN]>::try_from(p.get(blob)).ok()),
            ota_keys: self.ota_keys.get(blob).as_chunks::<OTA_KEY_ENTRY>().0,
            persistent_session: self.persistent_session,
        }
    }
}

/// Checked reader over the body.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], ConfigError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(ConfigError::FieldTruncated(field))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, field: Field) -> Result<u8, ConfigError> {
        Ok(self.take(1, field)?[0])
    }
    fn u16(&mut self, field: Field) -> Result<u16, ConfigError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, field: Field) -> Result<u32, ConfigError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn text(&mut self, field: Field, max: usize, required: bool) -> Result<&'a str, ConfigError> {
        let len = self.u8(field)? as usize;
        if len > max {
            return Err(ConfigError::TooLong { field, len, max });
        }
        let s = core::str::from_utf8(self.take(len, field)?)
            .map_err(|_| ConfigError::BadText(field))?;
        if required && s.is_empty() {
            return Err(ConfigError::BadText(field));
        }
        Ok(s)
    }
    fn der(&mut self, field: Field) -> Result<&'a [u8], ConfigError> {
        let len = self.u16(field)? as usize;
        let der = self.take(len, field)?;
        if der.is_empty() {
            return Err(ConfigError::Missing(field));
        }
        Ok(der)
    }
    /// `count` endpoint entries (`host(u8 len) | port u16`), each checked.
    fn endpoints(&mut self, count: usize) -> Result<Brokers<'a>, ConfigError> {
        let mut brokers = Brokers::EMPTY;
        for i in 0..count.min(MAX_BROKERS) as u8 {
            let host = self.text(Field::BrokerHost(i), MAX_HOST, true)?;
            let port = self.u16(Field::BrokerPort(i))?;
            if port == 0 {
                return Err(ConfigError::BadPort(i));
            }
            brokers.push(Endpoint { host, port });
        }
        Ok(brokers)
    }
}

impl<'a> DeviceConfig<'a> {
    /// Parses and checks a blob (version 1 or 2). `bytes` may be a whole flash sector: only
    /// `total_len` bytes are read, the rest (erased flash) is ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ConfigError> {
        if bytes.len() >= 4 && bytes[field::MAGIC] == [0xFF; 4] {
            return Err(ConfigError::Erased);
        }
        if bytes.len() < HEADER_LEN {
            return Err(ConfigError::Truncated {
                need: HEADER_LEN,
                have: bytes.len(),
            });
        }
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != MAGIC {
            return Err(ConfigError::BadMagic(magic));
        }
        let version = bytes[field::VERSION];
        if !(VERSION_ONE_BROKER..=VERSION).contains(&version) {
            return Err(ConfigError::UnsupportedVersion(version));
        }
        let flags = bytes[field::FLAGS];
        if flags & !FLAGS_KNOWN != 0 {
            return Err(ConfigError::UnknownFlags(flags & !FLAGS_KNOWN));
        }
        let total = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
        if !(MIN_LEN..=MAX_LEN).contains(&total) {
            return Err(ConfigError::BadTotalLen(total));
        }
        if bytes.len() < total {
            return Err(ConfigError::Truncated {
                need: total,
                have: bytes.len(),
            });
        }
        let (signed, trailer) = bytes[..total].split_at(total - CRC_LEN);
        let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let computed = crc32(signed);
        if stored != computed {
            return Err(ConfigError::CrcMismatch { stored, computed });
        }

        let mut c = Cursor {
            buf: &signed[HEADER_LEN..],
            pos: 0,
        };
        let device_id = c.text(Field::DeviceId, device_id::MAX_LEN, true)?;
        device_id::validate(device_id).map_err(ConfigError::BadDeviceId)?;
        let wifi_ssid = c.text(Field::WifiSsid, MAX_SSID, false)?;
        let wifi_password = c.text(Field::WifiPassword, MAX_PASSWORD, false)?;
        let count = match version {
            VERSION_ONE_BROKER => 1,
            _ => match c.u8(Field::BrokerCount)? as usize {
                0 => return Err(ConfigError::Missing(Field::BrokerCount)),
                n if n > MAX_BROKERS => {
                    return Err(ConfigError::TooLong {
                        field: Field::BrokerCount,
                        len: n,
                        max: MAX_BROKERS,
                    })
                }
                n => n,
            },
        };
        let brokers = c.endpoints(count)?;
        let telemetry_period_s = c.u32(Field::TelemetryPeriod)?;
        if !(1..=MAX_PERIOD_S).contains(&telemetry_period_s) {
            return Err(ConfigError::BadPeriod(telemetry_period_s));
        }
        let ca_cert_der = c.der(Field::CaCert)?;
        let client_cert_der = c.der(Field::ClientCert)?;
        let client_key_der = c.der(Field::ClientKey)?;
        let broker_pin = if flags & FLAG_PIN != 0 {
            let pin = c.take(PIN_LEN, Field::BrokerPin)?;
            Some(
                <&[u8; PIN_LEN]>::try_from(pin)
                    .map_err(|_| ConfigError::FieldTruncated(Field::BrokerPin))?,
            )
        } else {
            None
        };
        let count = c.u8(Field::OtaKeys)? as usize;
        if count > MAX_OTA_KEYS {
            return Err(ConfigError::TooLong {
                field: Field::OtaKeys,
                len: count,
                max: MAX_OTA_KEYS,
            });
        }
        let (ota_keys, rest) = c
            .take(count * OTA_KEY_ENTRY, Field::OtaKeys)?
            .as_chunks::<OTA_KEY_ENTRY>();
        debug_assert!(rest.is_empty());
        let trailing = c.buf.len() - c.pos;
        if trailing != 0 {
            return Err(ConfigError::TrailingBytes(trailing));
        }
        Ok(DeviceConfig {
            device_id,
            wifi_ssid,
            wifi_password,
            brokers,
            telemetry_period_s,
            ca_cert_der,
            client_cert_der,
            client_key_der,
            broker_pin,
            ota_keys,
            persistent_session: flags & FLAG_PERSISTENT_SESSION != 0,
        })
    }

    /// The version [`emit`](Self::emit) writes: 1 for one broker endpoint, else 2.
    pub fn version(&self) -> u8 {
        match self.brokers.len() {
            1 => VERSION_ONE_BROKER,
            _ => VERSION,
        }
    }

    /// Exact length of the blob [`emit`](Self::emit) writes.
    pub fn blob_len(&self) -> usize {
        HEADER_LEN
            + 1
            + self.device_id.len()
            + 1
            + self.wifi_ssid.len()
            + 1
            + self.wifi_password.len()
            + self.brokers.wire_len()
            + 4
            + 2
            + self.ca_cert_der.len()
            + 2
            + self.client_cert_der.len()
            + 2
            + self.client_key_der.len()
            + if self.broker_pin.is_some() {
                PIN_LEN
            } else {
                0
            }
            + 1
            + self.ota_keys.len() * OTA_KEY_ENTRY
            + CRC_LEN
    }

    /// Checks every field the way `parse` would, so that a blob that was written always reads.
    pub fn check(&self) -> Result<(), ConfigError> {
        device_id::validate(self.device_id).map_err(ConfigError::BadDeviceId)?;
        if self.brokers.is_empty() {
            return Err(ConfigError::Missing(Field::BrokerCount));
        }
        let texts = [
            (Field::WifiSsid, self.wifi_ssid, MAX_SSID, false),
            (Field::WifiPassword, self.wifi_password, MAX_PASSWORD, false),
        ];
        let hosts = self
            .brokers
            .iter()
            .enumerate()
            .map(|(i, e)| (Field::BrokerHost(i as u8), e.host, MAX_HOST, true));
        for (field, s, max, required) in texts.into_iter().chain(hosts) {
            if s.len() > max {
                return Err(ConfigError::TooLong {
                    field,
                    len: s.len(),
                    max,
                });
            }
            if required && s.is_empty() {
                return Err(ConfigError::BadText(field));
            }
        }
        if let Some(i) = self.brokers.iter().position(|e| e.port == 0) {
            return Err(ConfigError::BadPort(i as u8));
        }
        if !(1..=MAX_PERIOD_S).contains(&self.telemetry_period_s) {
            return Err(ConfigError::BadPeriod(self.telemetry_period_s));
        }
        for (field, der) in [
            (Field::CaCert, self.ca_cert_der),
            (Field::ClientCert, self.client_cert_der),
            (Field::ClientKey, self.client_key_der),
        ] {
            if der.is_empty() {
                return Err(ConfigError::Missing(field));
            }
            if der.len() > MAX_LEN {
                return Err(ConfigError::TooLong {
                    field,
                    len: der.len(),
                    max: MAX_LEN,
                });
            }
        }
        if self.ota_keys.len() > MAX_OTA_KEYS {
            let len = self.ota_keys.len();
            return Err(ConfigError::TooLong {
                field: Field::OtaKeys,
                len,
                max: MAX_OTA_KEYS,
            });
        }
        let len = self.blob_len();
        if len > MAX_LEN {
            return Err(ConfigError::BadTotalLen(len));
        }
        Ok(())
    }

    /// Writes the blob into `out` and returns its length: version 1 for one broker endpoint,
    /// version 2 for more.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, ConfigError> {
        self.check()?;
        let len = self.blob_len();
        if out.len() < len {
            return Err(ConfigError::BufferTooSmall {
                need: len,
                have: out.len(),
            });
        }
        let out = &mut out[..len];
        out[field::MAGIC].copy_from_slice(&MAGIC);
        out[field::VERSION] = self.version();
        out[field::FLAGS] = if self.broker_pin.is_some() {
            FLAG_PIN
        } else {
            0
        } | if self.persistent_session {
            FLAG_PERSISTENT_SESSION
        } else {
            0
        };
        out[field::TOTAL_LEN].copy_from_slice(&(len as u16).to_le_bytes());
        let mut pos = HEADER_LEN;
        let mut put = |bytes: &[u8]| {
            out[pos..pos + bytes.len()].copy_from_slice(bytes);
            pos += bytes.len();
        };
        for s in [self.device_id, self.wifi_ssid, self.wifi_password] {
            put(&[s.len() as u8]);
            put(s.as_bytes());
        }
        if self.version() != VERSION_ONE_BROKER {
            put(&[self.brokers.len() as u8]);
        }
        for e in self.brokers.iter() {
            put(&[e.host.len() as u8]);
            put(e.host.as_bytes());
            put(&e.port.to_le_bytes());
        }
        put(&self.telemetry_period_s.to_le_bytes());
        for der in [self.ca_cert_der, self.client_cert_der, self.client_key_der] {
            put(&(der.len() as u16).to_le_bytes());
            put(der);
        }
        if let Some(pin) = self.broker_pin {
            put(pin);
        }
        put(&[self.ota_keys.len() as u8]);
        for key in self.ota_keys {
            put(key);
        }
        let crc = crc32(&out[..len - CRC_LEN]);
        out[len - CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_views_the_same_config_as_parse() {
        for pin in [None, Some(&[7u8; PIN_LEN])] {
            let keys = [ota_key_entry(3, &[9; OTA_KEY_LEN])];
            let cfg = DeviceConfig {
                device_id: "dev-1",
                wifi_ssid: "home",
                wifi_password: "pw",
                brokers: Brokers::one("broker.local", 8883),
                telemetry_period_s: 30,
                ca_cert_der: b"\x30\x03ca!",
                client_cert_der: b"\x30\x03crt",
                client_key_der: b"\x30\x03key",
                broker_pin: pin,
                ota_keys: &keys,
                persistent_session: pin.is_some(),
            };
            let mut sector = [0xFFu8; MAX_LEN];
            cfg.emit(&mut sector).unwrap();
            let layout = Layout::of(&sector).unwrap();
            assert_eq!(layout.view(&sector), cfg);
            assert_eq!(layout.view(&sector), DeviceConfig::parse(&sector).unwrap());
            // Other bytes: garbage maybe, but no panic.
            let _ = layout.view(&sector[..10]);
        }
        assert_eq!(Layout::of(&[0xFF; 64]), Err(ConfigError::Erased));
    }
    extern crate std;
    use std::string::ToString;

    const KEYS: [[u8; OTA_KEY_ENTRY]; 2] = [[7; OTA_KEY_ENTRY], [9; OTA_KEY_ENTRY]];
    const PIN: [u8; 32] = [0xAB; 32];

    fn sample() -> DeviceConfig<'static> {
        DeviceConfig {
            device_id: "kitchen-sensor-1",
            wifi_ssid: "home",
            wifi_password: "correct horse battery",
            brokers: Brokers::one("broker.local", 8883),
            telemetry_period_s: 30,
            ca_cert_der: &[0x30, 0x82, 1, 2, 3],
            client_cert_der: &[0x30, 0x82, 4, 5],
            client_key_der: &[0x30, 0x81, 6],
            broker_pin: Some(&PIN),
            ota_keys: &KEYS,
            persistent_session: false,
        }
    }

    fn emit(cfg: &DeviceConfig<'_>) -> ([u8; MAX_LEN], usize) {
        let mut buf = [0xFF; MAX_LEN];
        let n = cfg.emit(&mut buf).unwrap();
        (buf, n)
    }

    #[test]
    fn round_trips_with_and_without_optional_fields() {
        let full = sample();
        let (buf, n) = emit(&full);
        assert_eq!(n, full.blob_len());
        assert_eq!(DeviceConfig::parse(&buf[..n]), Ok(full));
        // A whole sector with erased flash after the blob reads the same.
        assert_eq!(DeviceConfig::parse(&buf), Ok(full));
        let entry = ota_key_entry(0x0102_0304, &[5; 32]);
        assert_eq!(&entry[..4], &[4, 3, 2, 1]);
        let with_key = DeviceConfig {
            ota_keys: core::slice::from_ref(&entry),
            ..full
        };
        let (buf2, n2) = emit(&with_key);
        let parsed = DeviceConfig::parse(&buf2[..n2]).unwrap();
        let keys: std::vec::Vec<_> = parsed.trusted_ota_keys().collect();
        assert_eq!(keys, [(0x0102_0304, &[5u8; 32])]);

        let bare = DeviceConfig {
            broker_pin: None,
            ota_keys: &[],
            wifi_ssid: "",
            wifi_password: "",
            ..full
        };
        let (buf, n) = emit(&bare);
        assert_eq!(DeviceConfig::parse(&buf[..n]), Ok(bare));
        assert_eq!(buf[field::FLAGS], 0);
    }

    #[test]
    fn header_bytes_are_as_documented() {
        let (buf, n) = emit(&sample());
        assert_eq!(&buf[..6], b"ESPC\x01\x01");
        assert_eq!(u16::from_le_bytes([buf[6], buf[7]]) as usize, n);
        assert_eq!(buf[8] as usize, "kitchen-sensor-1".len());
        let crc = u32::from_le_bytes(buf[n - 4..n].try_into().unwrap());
        assert_eq!(crc, crc32(&buf[..n - 4]));
        // CRC-32/ISO-HDLC check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn every_truncation_is_a_clean_error() {
        let (buf, n) = emit(&sample());
        for len in 0..n {
            let err = DeviceConfig::parse(&buf[..len]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Truncated { .. }),
                "len {len}: {err}"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let (buf, n) = emit(&sample());
        for i in 0..n {
            for bit in 0..8 {
                let mut b = buf;
                b[i] ^= 1 << bit;
                assert!(
                    DeviceConfig::parse(&b[..n]).is_err(),
                    "flip byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn refuses_erased_and_foreign_sectors() {
        assert_eq!(
            DeviceConfig::parse(&[0xFF; MAX_LEN]),
            Err(ConfigError::Erased)
        );
        assert_eq!(
            DeviceConfig::parse(&[0; 64]),
            Err(ConfigError::BadMagic([0; 4]))
        );
        let (mut buf, n) = emit(&sample());
        for v in [0, 3, 0xFF] {
            buf[field::VERSION] = v;
            assert_eq!(
                DeviceConfig::parse(&buf[..n]),
                Err(ConfigError::UnsupportedVersion(v))
            );
        }
        buf[field::VERSION] = VERSION;
        buf[field::TOTAL_LEN].copy_from_slice(&5000u16.to_le_bytes());
        assert_eq!(
            DeviceConfig::parse(&buf[..n]),
            Err(ConfigError::BadTotalLen(5000))
        );
    }

    /// Field errors behind a valid CRC: what a buggy writer (not a flipped bit) would produce.
    #[test]
    fn field_errors_name_the_field() {
        let reseal = |b: &mut [u8]| {
            let n = b.len();
            let crc = crc32(&b[..n - 4]);
            b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        };
        let (buf, n) = emit(&sample());
        let mut b = buf[..n].to_vec();
        b[9] = b'K';
        reseal(&mut b);
        assert!(matches!(
            DeviceConfig::parse(&b),
            Err(ConfigError::BadDeviceId(_))
        ));

        let mut b = buf[..n].to_vec();
        b[8] = 200; // id length runs far past the body
        reseal(&mut b);
        let err = DeviceConfig::parse(&b).unwrap_err();
        assert_eq!(
            err,
            ConfigError::TooLong {
                field: Field::DeviceId,
                len: 200,
                max: 63
            }
        );

        let mut b = buf[..n].to_vec();
        b.insert(n - 4, 0);
        let len = b.len() as u16;
        b[6..8].copy_from_slice(&len.to_le_bytes());
        reseal(&mut b);
        assert_eq!(DeviceConfig::parse(&b), Err(ConfigError::TrailingBytes(1)));
    }

    #[test]
    fn emit_refuses_what_parse_would_refuse() {
        let mut small = [0u8; 16];
        assert!(matches!(
            sample().emit(&mut small),
            Err(ConfigError::BufferTooSmall { .. })
        ));
        let bad = [
            DeviceConfig {
                device_id: "Bad",
                ..sample()
            },
            DeviceConfig {
                brokers: Brokers::one("broker.local", 0),
                ..sample()
            },
            DeviceConfig {
                brokers: Brokers::EMPTY,
                ..sample()
            },
            DeviceConfig {
                brokers: Brokers::new(&[
                    Endpoint { host: "a", port: 1 },
                    Endpoint { host: "", port: 2 },
                ])
                .unwrap(),
                ..sample()
            },
            DeviceConfig {
                telemetry_period_s: 0,
                ..sample()
            },
            DeviceConfig {
                brokers: Brokers::one("", 8883),
                ..sample()
            },
            DeviceConfig {
                client_key_der: &[],
                ..sample()
            },
            DeviceConfig {
                wifi_ssid: "s".repeat(33).leak(),
                ..sample()
            },
        ];
        for cfg in bad {
            let mut buf = [0u8; MAX_LEN];
            assert!(cfg.emit(&mut buf).is_err(), "{cfg:?}");
        }
        let big = [0x30u8; 4000];
        let cfg = DeviceConfig {
            ca_cert_der: &big,
            ..sample()
        };
        let mut buf = [0u8; 8192];
        assert!(matches!(
            cfg.emit(&mut buf),
            Err(ConfigError::BadTotalLen(_))
        ));
    }

    #[test]
    fn errors_read_well() {
        let e = ConfigError::CrcMismatch {
            stored: 1,
            computed: 2,
        };
        assert_eq!(
            e.to_string(),
            "config blob is corrupt: CRC-32 is 0x00000002, stored 0x00000001"
        );
        assert!(ConfigError::Erased.to_string().contains("no device config"));
    }

    const CLUSTER: [Endpoint<'static>; 3] = [
        Endpoint {
            host: "node-1.example",
            port: 8883,
        },
        Endpoint {
            host: "10.0.0.2",
            port: 8884,
        },
        Endpoint {
            host: "n3",
            port: 18883,
        },
    ];

    fn cluster() -> DeviceConfig<'static> {
        DeviceConfig {
            brokers: Brokers::new(&CLUSTER).unwrap(),
            ..sample()
        }
    }

    #[test]
    fn several_endpoints_are_version_2_and_round_trip() {
        let cfg = cluster();
        let (buf, n) = emit(&cfg);
        assert_eq!((buf[field::VERSION], n), (VERSION, cfg.blob_len()));
        let parsed = DeviceConfig::parse(&buf[..n]).unwrap();
        assert_eq!(parsed, cfg);
        assert_eq!(parsed.brokers.as_slice(), &CLUSTER);
        let layout = Layout::of(&buf).unwrap();
        assert_eq!(layout.broker_count(), 3);
        assert_eq!(layout.view(&buf), cfg);
        // Four is the most; one endpoint is version 1 again.
        let four = [CLUSTER[0], CLUSTER[1], CLUSTER[2], CLUSTER[0]];
        let cfg4 = DeviceConfig {
            brokers: Brokers::new(&four).unwrap(),
            ..sample()
        };
        let (buf, n) = emit(&cfg4);
        assert_eq!(DeviceConfig::parse(&buf[..n]), Ok(cfg4));
        assert_eq!(
            Brokers::new(&[CLUSTER[0]; 5]).unwrap_err().to_string(),
            "config has 5 broker endpoints; at most 4 are allowed"
        );
        assert_eq!(emit(&sample()).0[field::VERSION], VERSION_ONE_BROKER);

        // A cluster's device keeps a persistent session: flag bit 1.
        let persistent = DeviceConfig {
            persistent_session: true,
            ..cluster()
        };
        let (mut buf, n) = emit(&persistent);
        assert_eq!(buf[field::FLAGS], FLAG_PIN | FLAG_PERSISTENT_SESSION);
        assert_eq!(DeviceConfig::parse(&buf[..n]), Ok(persistent));
        assert_eq!(Layout::of(&buf).unwrap().view(&buf), persistent);
        buf[field::FLAGS] |= 0x04;
        let crc = crc32(&buf[..n - 4]);
        buf[n - 4..n].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            DeviceConfig::parse(&buf[..n]),
            Err(ConfigError::UnknownFlags(0x04))
        );
    }

    #[test]
    fn a_version_1_blob_built_byte_by_byte_reads_as_one_endpoint() {
        // As the first release wrote it: no count byte, one host and port.
        let mut b = std::vec::Vec::new();
        b.extend_from_slice(b"ESPC\x01\x00\x00\x00");
        for s in ["dev-1", "home", "pw", "broker.local"] {
            b.push(s.len() as u8);
            b.extend_from_slice(s.as_bytes());
        }
        b.extend_from_slice(&8883u16.to_le_bytes());
        b.extend_from_slice(&30u32.to_le_bytes());
        for der in [&b"\x30\x01a"[..], b"\x30\x01b", b"\x30\x01c"] {
            b.extend_from_slice(&(der.len() as u16).to_le_bytes());
            b.extend_from_slice(der);
        }
        b.push(0);
        let len = (b.len() + 4) as u16;
        b[6..8].copy_from_slice(&len.to_le_bytes());
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let cfg = DeviceConfig::parse(&b).unwrap();
        assert_eq!(
            cfg.brokers.as_slice(),
            [Endpoint {
                host: "broker.local",
                port: 8883
            }]
        );
        assert_eq!((cfg.device_id, cfg.telemetry_period_s), ("dev-1", 30));
        assert_eq!(Layout::of(&b).unwrap().view(&b), cfg);
        // And the same config written today is these very bytes.
        let mut out = [0u8; MAX_LEN];
        let n = cfg.emit(&mut out).unwrap();
        assert_eq!(&out[..n], &b[..]);
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_version_2_blob_is_caught() {
        let (buf, n) = emit(&cluster());
        for len in 0..n {
            assert!(matches!(
                DeviceConfig::parse(&buf[..len]),
                Err(ConfigError::Truncated { .. })
            ));
        }
        for i in 0..n {
            for bit in 0..8 {
                let mut b = buf;
                b[i] ^= 1 << bit;
                assert!(DeviceConfig::parse(&b[..n]).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    /// The count and the entries behind a valid CRC: each error names the field and endpoint.
    #[test]
    fn endpoint_errors_name_the_endpoint() {
        let reseal = |b: &mut std::vec::Vec<u8>| {
            let len = b.len() as u16;
            b[6..8].copy_from_slice(&len.to_le_bytes());
            let n = b.len();
            let crc = crc32(&b[..n - 4]);
            b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        };
        let (buf, n) = emit(&cluster());
        // id, ssid, password: then the count byte.
        let count_at = HEADER_LEN
            + 3
            + "kitchen-sensor-1".len()
            + "home".len()
            + "correct horse battery".len();
        assert_eq!(buf[count_at], 3);
        let with = |at: usize, v: u8| {
            let mut b = buf[..n].to_vec();
            b[at] = v;
            reseal(&mut b);
            DeviceConfig::parse(&b).map(|_| ())
        };
        assert_eq!(
            with(count_at, 0),
            Err(ConfigError::Missing(Field::BrokerCount))
        );
        assert_eq!(
            with(count_at, 5),
            Err(ConfigError::TooLong {
                field: Field::BrokerCount,
                len: 5,
                max: MAX_BROKERS
            })
        );
        // Second endpoint's port ("10.0.0.2" after "node-1.example" + its port).
        let port2 = count_at + 1 + 1 + 14 + 2 + 1 + 8;
        let mut b = buf[..n].to_vec();
        b[port2..port2 + 2].copy_from_slice(&[0, 0]);
        reseal(&mut b);
        let err = DeviceConfig::parse(&b).unwrap_err();
        assert_eq!(err, ConfigError::BadPort(1));
        assert_eq!(err.to_string(), "config broker port (endpoint 2) is 0");
        let host2 = count_at + 1 + 1 + 14 + 2;
        let mut b = buf[..n].to_vec();
        b[host2] = 0;
        reseal(&mut b);
        let err = DeviceConfig::parse(&b).unwrap_err();
        assert_eq!(err, ConfigError::BadText(Field::BrokerHost(1)));
        assert_eq!(
            err.to_string(),
            "config broker host (endpoint 2) is empty or not UTF-8"
        );
        // A count larger than the entries present runs into the next fields.
        assert!(with(count_at, 4).is_err());
    }

    const DOC: &str = include_str!("../../docs/device-config.md");

    /// The rows of the table after `<!-- table: NAME -->`, as cells.
    fn doc_rows(name: &str) -> std::vec::Vec<std::vec::Vec<std::string::String>> {
        let marker = std::format!("<!-- table: {name} -->");
        let rest = DOC
            .split(&marker)
            .nth(1)
            .unwrap_or_else(|| panic!("docs/device-config.md has no {marker}"));
        rest.lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect()
    }

    /// docs/device-config.md is what other firmwares and tools implement from: its header table
    /// is the code's offsets, and walking real blobs (version 1 and 2) by its body table's sizes
    /// lands on every field the code wrote, in the code's order, and ends at the CRC.
    #[test]
    fn doc_tables_match_the_code() {
        let head: std::vec::Vec<(usize, usize, std::string::String)> = doc_rows("header")
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap(), r[2].clone()))
            .collect();
        let code = [
            (field::MAGIC.start, field::MAGIC.len(), "magic"),
            (field::VERSION, 1, "version"),
            (field::FLAGS, 1, "flags"),
            (field::TOTAL_LEN.start, field::TOTAL_LEN.len(), "total_len"),
        ];
        assert_eq!(head.len(), code.len());
        for (doc, code) in head.iter().zip(code) {
            assert_eq!((doc.0, doc.1, doc.2.as_str()), code);
        }
        assert!(DOC.contains(&std::format!("{MIN_LEN}..={MAX_LEN}")));

        let body = doc_rows("body");
        let names: std::vec::Vec<&str> = body.iter().map(|r| r[1].as_str()).collect();
        let fields = [
            Field::DeviceId,
            Field::WifiSsid,
            Field::WifiPassword,
            Field::BrokerCount,
            Field::BrokerHost(0),
            Field::BrokerPort(0),
            Field::TelemetryPeriod,
            Field::CaCert,
            Field::ClientCert,
            Field::ClientKey,
            Field::BrokerPin,
            Field::OtaKeys,
        ];
        let mut want: std::vec::Vec<&str> = fields.iter().map(|f| f.name()).collect();
        want.push("CRC-32");
        assert_eq!(names, want);

        let key = [ota_key_entry(7, &[1; 32])];
        for cfg in [
            DeviceConfig {
                ota_keys: &key,
                ..sample()
            },
            DeviceConfig {
                broker_pin: None,
                ..cluster()
            },
        ] {
            let (buf, n) = emit(&cfg);
            let blob = &buf[..n];
            let v2 = blob[field::VERSION] == VERSION;
            let mut pos = field::BODY;
            let mut k = 1;
            let mut endpoint = 0;
            let mut row = 0;
            let mut seen = std::vec::Vec::new();
            while row < body.len() {
                let (size, name) = (body[row][0].as_str(), body[row][1].as_str());
                if name == "broker count" && !v2 {
                    row += 1;
                    continue;
                }
                if name == "broker public-key pin" && cfg.broker_pin.is_none() {
                    row += 1;
                    continue;
                }
                let len = match size {
                    "1 + n" => 1 + usize::from(blob[pos]),
                    "2 + n" => 2 + usize::from(u16::from_le_bytes([blob[pos], blob[pos + 1]])),
                    "1 + 36·k" => 1 + OTA_KEY_ENTRY * usize::from(blob[pos]),
                    fixed => fixed.parse().unwrap_or_else(|_| panic!("size {fixed:?}")),
                };
                let bytes = &blob[pos..pos + len];
                seen.push((name, bytes));
                pos += len;
                match name {
                    "broker count" => k = usize::from(bytes[0]),
                    // host + port repeat k times.
                    "broker port" => {
                        endpoint += 1;
                        if endpoint < k {
                            row -= 1;
                            continue;
                        }
                    }
                    _ => {}
                }
                row += 1;
            }
            assert_eq!(pos, n, "the walk ends at total_len");
            let text = |name: &str| -> std::vec::Vec<&[u8]> {
                seen.iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, b)| &b[1..])
                    .collect()
            };
            assert_eq!(text("device id"), [cfg.device_id.as_bytes()]);
            assert_eq!(text("WiFi password"), [cfg.wifi_password.as_bytes()]);
            let hosts: std::vec::Vec<&[u8]> =
                cfg.brokers.iter().map(|e| e.host.as_bytes()).collect();
            assert_eq!(text("broker host"), hosts);
            let ports: std::vec::Vec<&[u8]> = seen
                .iter()
                .filter(|(n, _)| *n == "broker port")
                .map(|(_, b)| *b)
                .collect();
            let want: std::vec::Vec<[u8; 2]> =
                cfg.brokers.iter().map(|e| e.port.to_le_bytes()).collect();
            assert_eq!(
                ports,
                want.iter().map(|p| &p[..]).collect::<std::vec::Vec<_>>()
            );
            let get = |name: &str| seen.iter().find(|(n, _)| *n == name).unwrap().1;
            assert_eq!(
                get("telemetry period"),
                &cfg.telemetry_period_s.to_le_bytes()
            );
            assert_eq!(&get("client key")[2..], cfg.client_key_der);
            assert_eq!(get("OTA public keys")[1..], *cfg.ota_keys.as_flattened());
            assert_eq!(get("CRC-32"), &crc32(&blob[..n - 4]).to_le_bytes());
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::string::String;
        use std::vec::Vec;

        fn host() -> impl Strategy<Value = String> {
            "[a-z0-9.-]{1,40}"
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            /// Any valid config round-trips through emit/parse and through the layout's view,
            /// whatever its endpoints; a longer list than fits is refused by name.
            #[test]
            fn valid_configs_round_trip(
                hosts in proptest::collection::vec((host(), 1u16..), 1..=MAX_BROKERS),
                id in "[a-z0-9][a-z0-9-]{0,62}",
                ssid in "[ -~]{0,32}",
                period in 1u32..=MAX_PERIOD_S,
                pin in any::<bool>(),
                keys in 0usize..=MAX_OTA_KEYS,
            ) {
                let list: Vec<Endpoint<'_>> = hosts.iter().map(|(h, p)| Endpoint { host: h, port: *p }).collect();
                let entries: Vec<_> = (0..keys).map(|i| ota_key_entry(i as u32, &[i as u8; 32])).collect();
                let cfg = DeviceConfig {
                    device_id: &id,
                    wifi_ssid: &ssid,
                    telemetry_period_s: period,
                    brokers: Brokers::new(&list).unwrap(),
                    broker_pin: pin.then_some(&PIN),
                    persistent_session: !pin,
                    ota_keys: &entries,
                    ..sample()
                };
                let mut buf = [0xFFu8; MAX_LEN];
                let n = cfg.emit(&mut buf).unwrap();
                prop_assert_eq!(n, cfg.blob_len());
                prop_assert_eq!(buf[field::VERSION], if list.len() == 1 { 1 } else { 2 });
                prop_assert_eq!(DeviceConfig::parse(&buf), Ok(cfg));
                prop_assert_eq!(Layout::of(&buf).unwrap().view(&buf), cfg);
            }

            /// Arbitrary bytes behind a valid header and CRC: an error or a config, never a
            /// panic; a config that parses emits back to the same bytes (version 2 with one
            /// endpoint aside, which is written as version 1).
            #[test]
            fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 19..600), v2 in any::<bool>()) {
                let mut b = Vec::from(&b"ESPC"[..]);
                b.extend_from_slice(&[if v2 { 2 } else { 1 }, 0, 0, 0]);
                b.extend_from_slice(&body);
                let len = (b.len() + 4) as u16;
                b[6..8].copy_from_slice(&len.to_le_bytes());
                let crc = crc32(&b);
                b.extend_from_slice(&crc.to_le_bytes());
                if let Ok(cfg) = DeviceConfig::parse(&b) {
                    let mut out = [0u8; MAX_LEN];
                    let n = cfg.emit(&mut out).unwrap();
                    if cfg.version() == b[field::VERSION] {
                        prop_assert_eq!(&out[..n], &b[..]);
                    }
                    prop_assert_eq!(Layout::of(&b).unwrap().view(&b), cfg);
                }
            }
        }
    }
}
