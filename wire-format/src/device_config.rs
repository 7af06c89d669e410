//! The device config blob: everything one device needs to reach its broker, written by
//! `provision device config` and read by the firmware from its config flash sector.
//!
//! Layout (all integers little endian; the spec table is docs/device-config.md):
//!
//! ```text
//! header  magic "ESPC" | version u8 | flags u8 | total_len u16
//! body    id(u8 len) | ssid(u8 len) | password(u8 len) | host(u8 len) | port u16 | period_s u32
//!         ca_der(u16 len) | cert_der(u16 len) | key_der(u16 len)
//!         [pin 32 bytes, if flags & FLAG_PIN] | ota_key_count u8 | ota keys (key id u32 + 32 bytes)
//! trailer crc32 u32 (CRC-32/ISO-HDLC over header and body)
//! ```
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
/// The only version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = 8;
/// The CRC-32 trailer.
pub const CRC_LEN: usize = 4;
/// One flash sector: the blob must fit the ESP8266's 4 KiB config sector.
pub const MAX_LEN: usize = 4096;
/// Flag bit: a 32-byte broker public-key pin follows the key.
pub const FLAG_PIN: u8 = 0x01;
/// Longest WiFi SSID (802.11).
pub const MAX_SSID: usize = 32;
/// Longest WPA2 passphrase (63 ASCII) or raw PSK (64 hex digits).
pub const MAX_PASSWORD: usize = 64;
/// Longest DNS name.
pub const MAX_HOST: usize = 253;
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
/// The smallest possible blob: empty optional strings, one-byte id and host, no certs.
pub const MIN_LEN: usize = HEADER_LEN + 4 + 1 + 1 + 2 + 4 + 2 * 3 + 1 + CRC_LEN;
const _: () = assert!(field::BODY == HEADER_LEN && field::TOTAL_LEN.end == HEADER_LEN);
const _: () = assert!(MIN_LEN == 31 && MAX_LEN <= u16::MAX as usize);

const CRC32: crc::Crc<u32, crc::NoTable> =
    crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC (the zlib/Ethernet CRC), as stored in the trailer.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// A field of the blob, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    DeviceId,
    WifiSsid,
    WifiPassword,
    BrokerHost,
    BrokerPort,
    TelemetryPeriod,
    CaCert,
    ClientCert,
    ClientKey,
    BrokerPin,
    OtaKeys,
}

impl Field {
    pub const fn name(self) -> &'static str {
        match self {
            Field::DeviceId => "device id",
            Field::WifiSsid => "WiFi SSID",
            Field::WifiPassword => "WiFi password",
            Field::BrokerHost => "broker host",
            Field::BrokerPort => "broker port",
            Field::TelemetryPeriod => "telemetry period",
            Field::CaCert => "CA certificate",
            Field::ClientCert => "client certificate",
            Field::ClientKey => "client key",
            Field::BrokerPin => "broker public-key pin",
            Field::OtaKeys => "OTA public keys",
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
    /// A field is longer than the format allows.
    TooLong {
        field: Field,
        len: usize,
        max: usize,
    },
    /// A text field is not UTF-8, or a required one is empty.
    BadText(Field),
    /// The device id breaks the id rule.
    BadDeviceId(IdError),
    /// Port 0.
    BadPort,
    /// A period of 0 or more than [`MAX_PERIOD_S`].
    BadPeriod(u32),
    /// Bytes between the last field and the CRC.
    TrailingBytes(usize),
    /// A required certificate or key is empty.
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
            ConfigError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "config blob version {v} is not supported (this firmware reads {VERSION})"
                )
            }
            ConfigError::UnknownFlags(x) => write!(f, "config blob has unknown flag bits {x:#04x}"),
            ConfigError::BadTotalLen(n) => {
                write!(f, "config blob length {n} is outside {MIN_LEN}..={MAX_LEN}")
            }
            ConfigError::CrcMismatch { stored, computed } => write!(
                f,
                "config blob is corrupt: CRC-32 is {computed:#010x}, stored {stored:#010x}"
            ),
            ConfigError::FieldTruncated(x) => {
                write!(f, "config blob ends inside the {} field", x.name())
            }
            ConfigError::TooLong { field, len, max } => write!(
                f,
                "config {} is {len} bytes long; at most {max} are allowed",
                field.name()
            ),
            ConfigError::BadText(x) => write!(f, "config {} is empty or not UTF-8", x.name()),
            ConfigError::BadDeviceId(e) => write!(f, "config {e}"),
            ConfigError::BadPort => write!(f, "config broker port is 0"),
            ConfigError::BadPeriod(p) => {
                write!(
                    f,
                    "config telemetry period {p} s is outside 1..={MAX_PERIOD_S}"
                )
            }
            ConfigError::TrailingBytes(n) => {
                write!(f, "config blob has {n} unexpected bytes before its CRC")
            }
            ConfigError::Missing(x) => write!(f, "config {} is missing", x.name()),
            ConfigError::BufferTooSmall { need, have } => {
                write!(f, "config blob needs {need} bytes, the buffer has {have}")
            }
        }
    }
}

/// A parsed config, borrowing from the blob. Certificates and the key are DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceConfig<'a> {
    pub device_id: &'a str,
    pub wifi_ssid: &'a str,
    pub wifi_password: &'a str,
    pub broker_host: &'a str,
    pub broker_port: u16,
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
/// again: a device that keeps its config sector in RAM reads it in constant time per use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    device_id: Span,
    wifi_ssid: Span,
    wifi_password: Span,
    broker_host: Span,
    broker_port: u16,
    telemetry_period_s: u32,
    ca_cert_der: Span,
    client_cert_der: Span,
    client_key_der: Span,
    broker_pin: Option<Span>,
    ota_keys: Span,
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
        Ok(Layout {
            device_id: Span::of(blob, c.device_id.as_bytes()),
            wifi_ssid: Span::of(blob, c.wifi_ssid.as_bytes()),
            wifi_password: Span::of(blob, c.wifi_password.as_bytes()),
            broker_host: Span::of(blob, c.broker_host.as_bytes()),
            broker_port: c.broker_port,
            telemetry_period_s: c.telemetry_period_s,
            ca_cert_der: Span::of(blob, c.ca_cert_der),
            client_cert_der: Span::of(blob, c.client_cert_der),
            client_key_der: Span::of(blob, c.client_key_der),
            broker_pin: c.broker_pin.map(|p| Span::of(blob, p)),
            ota_keys: Span::of(blob, c.ota_keys.as_flattened()),
        })
    }

    /// The config in `blob`, which must be the bytes `of` checked (unchanged). Different bytes
    /// give garbage fields (empty where out of range), never a panic.
    pub fn view<'a>(&self, blob: &'a [u8]) -> DeviceConfig<'a> {
        DeviceConfig {
            device_id: self.device_id.text(blob),
            wifi_ssid: self.wifi_ssid.text(blob),
            wifi_password: self.wifi_password.text(blob),
            broker_host: self.broker_host.text(blob),
            broker_port: self.broker_port,
            telemetry_period_s: self.telemetry_period_s,
            ca_cert_der: self.ca_cert_der.get(blob),
            client_cert_der: self.client_cert_der.get(blob),
            client_key_der: self.client_key_der.get(blob),
            broker_pin: self
                .broker_pin
                .and_then(|p| <&[u8; PIN_LEN]>::try_from(p.get(blob)).ok()),
            ota_keys: self.ota_keys.get(blob).as_chunks::<OTA_KEY_ENTRY>().0,
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
}

impl<'a> DeviceConfig<'a> {
    /// Parses and checks a blob. `bytes` may be a whole flash sector: only `total_len` bytes
    /// are read, the rest (erased flash) is ignored.
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
        if bytes[field::VERSION] != VERSION {
            return Err(ConfigError::UnsupportedVersion(bytes[field::VERSION]));
        }
        let flags = bytes[field::FLAGS];
        if flags & !FLAG_PIN != 0 {
            return Err(ConfigError::UnknownFlags(flags & !FLAG_PIN));
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
        let broker_host = c.text(Field::BrokerHost, MAX_HOST, true)?;
        let broker_port = c.u16(Field::BrokerPort)?;
        if broker_port == 0 {
            return Err(ConfigError::BadPort);
        }
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
            broker_host,
            broker_port,
            telemetry_period_s,
            ca_cert_der,
            client_cert_der,
            client_key_der,
            broker_pin,
            ota_keys,
        })
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
            + 1
            + self.broker_host.len()
            + 2
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
        let texts = [
            (Field::WifiSsid, self.wifi_ssid, MAX_SSID, false),
            (Field::WifiPassword, self.wifi_password, MAX_PASSWORD, false),
            (Field::BrokerHost, self.broker_host, MAX_HOST, true),
        ];
        for (field, s, max, required) in texts {
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
        if self.broker_port == 0 {
            return Err(ConfigError::BadPort);
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

    /// Writes the blob into `out` and returns its length.
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
        out[field::VERSION] = VERSION;
        out[field::FLAGS] = if self.broker_pin.is_some() {
            FLAG_PIN
        } else {
            0
        };
        out[field::TOTAL_LEN].copy_from_slice(&(len as u16).to_le_bytes());
        let mut pos = HEADER_LEN;
        let mut put = |bytes: &[u8]| {
            out[pos..pos + bytes.len()].copy_from_slice(bytes);
            pos += bytes.len();
        };
        for s in [
            self.device_id,
            self.wifi_ssid,
            self.wifi_password,
            self.broker_host,
        ] {
            put(&[s.len() as u8]);
            put(s.as_bytes());
        }
        put(&self.broker_port.to_le_bytes());
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
                broker_host: "broker.local",
                broker_port: 8883,
                telemetry_period_s: 30,
                ca_cert_der: b"\x30\x03ca!",
                client_cert_der: b"\x30\x03crt",
                client_key_der: b"\x30\x03key",
                broker_pin: pin,
                ota_keys: &keys,
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
            broker_host: "broker.local",
            broker_port: 8883,
            telemetry_period_s: 30,
            ca_cert_der: &[0x30, 0x82, 1, 2, 3],
            client_cert_der: &[0x30, 0x82, 4, 5],
            client_key_der: &[0x30, 0x81, 6],
            broker_pin: Some(&PIN),
            ota_keys: &KEYS,
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
        buf[field::VERSION] = 2;
        assert_eq!(
            DeviceConfig::parse(&buf[..n]),
            Err(ConfigError::UnsupportedVersion(2))
        );
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
                broker_port: 0,
                ..sample()
            },
            DeviceConfig {
                telemetry_period_s: 0,
                ..sample()
            },
            DeviceConfig {
                broker_host: "",
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
}
