//! Bundle format v1: the constants block, a checked view over header bytes and the `Header` repr.
//!
//! All integers are little-endian (every chip we target is little-endian). The table in
//! docs/ota-bundle.md mirrors `field` below; change both or neither.

use super::error::OtaError;
use core::fmt;

/// Byte ranges of the header fields (the single source of truth for the layout).
pub mod field {
    /// A byte range inside the header.
    pub type Field = core::ops::Range<usize>;

    /// `"SOTA"`.
    pub const MAGIC: Field = 0..4;
    /// u16, [`super::FORMAT_VERSION`].
    pub const FORMAT_VERSION: Field = 4..6;
    /// u16, [`super::HEADER_LEN`].
    pub const HEADER_LEN: Field = 6..8;
    /// u16, [`super::Target`] id.
    pub const TARGET: Field = 8..10;
    /// u16, must be 0 in v1 (bit 0 is reserved for encrypted images).
    pub const FLAGS: Field = 10..12;
    /// u32, which trusted public key verifies the signature.
    pub const KEY_ID: Field = 12..16;
    /// u32, anti-rollback counter; the device refuses values below its persisted floor.
    pub const SECURITY_COUNTER: Field = 16..20;
    /// u32, image length in bytes (≥ 1).
    pub const IMAGE_LEN: Field = 20..24;
    /// u16, semver major.
    pub const VERSION_MAJOR: Field = 24..26;
    /// u16, semver minor.
    pub const VERSION_MINOR: Field = 26..28;
    /// u32, semver patch.
    pub const VERSION_PATCH: Field = 28..32;
    /// u64, build time in seconds since the Unix epoch (UTC).
    pub const BUILD_TIME: Field = 32..40;
    /// 32 bytes, SHA-256 of the image.
    pub const IMAGE_SHA256: Field = 40..72;
}

/// Magic bytes at offset 0.
pub const MAGIC: [u8; 4] = *b"SOTA";
/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Header length in v1; the `header_len` field must hold exactly this value.
pub const HEADER_LEN: usize = 72;
/// Ed25519 signature length; the signature starts right after the header.
pub const SIGNATURE_LEN: usize = 64;
/// Offset of the signature in a bundle.
pub const SIGNATURE_OFFSET: usize = HEADER_LEN;
/// Offset of the first image byte in a bundle.
pub const IMAGE_OFFSET: usize = HEADER_LEN + SIGNATURE_LEN;
/// SHA-256 output length.
pub const DIGEST_LEN: usize = 32;
/// Flag bit 0: image is encrypted. Reserved: a v1 verifier refuses any set flag.
pub const FLAG_ENCRYPTED: u16 = 1 << 0;

const _: () = assert!(field::IMAGE_SHA256.end == HEADER_LEN);
const _: () = assert!(field::IMAGE_SHA256.end - field::IMAGE_SHA256.start == DIGEST_LEN);
const _: () = assert!(IMAGE_OFFSET == 136);

/// What the image is for. The id is what goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// ESP8266 (Xtensa LX106) application image.
    Esp8266,
    /// ATmega168 application image (verified by the ESP8266, then forwarded over SPI).
    Atmega168,
}

impl Target {
    /// Every known target, in id order.
    pub const ALL: [Target; 2] = [Target::Esp8266, Target::Atmega168];

    /// Wire id.
    pub const fn id(self) -> u16 {
        match self {
            Target::Esp8266 => 1,
            Target::Atmega168 => 2,
        }
    }

    /// Target for a wire id.
    pub const fn from_id(id: u16) -> Option<Target> {
        match id {
            1 => Some(Target::Esp8266),
            2 => Some(Target::Atmega168),
            _ => None,
        }
    }

    /// Name used on the command line and in docs.
    pub const fn name(self) -> &'static str {
        match self {
            Target::Esp8266 => "esp8266",
            Target::Atmega168 => "atmega168",
        }
    }

    /// Target for a command-line name.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Firmware version `major.minor.patch` (semver without pre-release or build metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
    pub patch: u32,
}

/// A version string that is not `X.Y.Z` with X, Y ≤ 65535 and Z ≤ 4294967295.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseVersionError;

impl core::error::Error for ParseVersionError {}

impl fmt::Display for ParseVersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "version must be X.Y.Z (decimal, X and Y at most 65535, Z at most 4294967295, \
             no pre-release or build suffix)",
        )
    }
}

impl core::str::FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Digits only: `u32::from_str` alone would also accept a leading '+'.
        fn num<T: core::str::FromStr>(part: Option<&str>) -> Result<T, ParseVersionError> {
            let part = part.ok_or(ParseVersionError)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseVersionError);
            }
            part.parse().map_err(|_| ParseVersionError)
        }
        let mut parts = s.split('.');
        let version = Version {
            major: num(parts.next())?,
            minor: num(parts.next())?,
            patch: num(parts.next())?,
        };
        match parts.next() {
            None => Ok(version),
            Some(_) => Err(ParseVersionError),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A view over header bytes with named field accessors (no semantic checks).
#[derive(Debug, Clone)]
pub struct HeaderView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HeaderView<T> {
    /// Wraps `buffer` without checking its length; accessors may then panic. Prefer
    /// [`HeaderView::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Self {
        HeaderView { buffer }
    }

    /// Wraps `buffer` after checking it holds at least a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, OtaError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(OtaError::Truncated {
                expected: HEADER_LEN as u64,
                received: len as u64,
            });
        }
        Ok(HeaderView { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes<const N: usize>(&self, f: field::Field) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.buffer.as_ref()[f]);
        out
    }

    pub fn magic(&self) -> [u8; 4] {
        self.bytes(field::MAGIC)
    }
    pub fn format_version(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::FORMAT_VERSION))
    }
    pub fn header_len(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::HEADER_LEN))
    }
    pub fn target_id(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::TARGET))
    }
    pub fn flags(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::FLAGS))
    }
    pub fn key_id(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::KEY_ID))
    }
    pub fn security_counter(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::SECURITY_COUNTER))
    }
    pub fn image_len(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::IMAGE_LEN))
    }
    pub fn version(&self) -> Version {
        Version {
            major: u16::from_le_bytes(self.bytes(field::VERSION_MAJOR)),
            minor: u16::from_le_bytes(self.bytes(field::VERSION_MINOR)),
            patch: u32::from_le_bytes(self.bytes(field::VERSION_PATCH)),
        }
    }
    pub fn build_time(&self) -> u64 {
        u64::from_le_bytes(self.bytes(field::BUILD_TIME))
    }
    pub fn image_sha256(&self) -> [u8; DIGEST_LEN] {
        self.bytes(field::IMAGE_SHA256)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HeaderView<T> {
    fn put(&mut self, f: field::Field, value: &[u8]) {
        self.buffer.as_mut()[f].copy_from_slice(value);
    }
}

/// The parsed, structurally valid header (smoltcp's `Repr`).
///
/// `parse` checks only what needs no device policy: magic, format version, header length,
/// flags, a known target and a non-empty image. Target match, key, signature, counter floor
/// and image hash are the [`Verifier`](super::Verifier)'s job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub target: Target,
    pub key_id: u32,
    pub security_counter: u32,
    pub image_len: u32,
    pub version: Version,
    pub build_time: u64,
    pub image_sha256: [u8; DIGEST_LEN],
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes`. Checks run in wire order, so the
    /// first bad field is the one reported.
    pub fn parse(bytes: &[u8]) -> Result<Header, OtaError> {
        let view = HeaderView::new_checked(bytes)?;
        if view.magic() != MAGIC {
            return Err(OtaError::BadMagic {
                found: view.magic(),
            });
        }
        if view.format_version() != FORMAT_VERSION {
            return Err(OtaError::UnsupportedFormatVersion {
                found: view.format_version(),
            });
        }
        if usize::from(view.header_len()) != HEADER_LEN {
            return Err(OtaError::BadHeaderLen {
                found: view.header_len(),
            });
        }
        let target = Target::from_id(view.target_id()).ok_or(OtaError::UnknownTarget {
            id: view.target_id(),
        })?;
        if view.flags() != 0 {
            return Err(OtaError::UnsupportedFlags {
                flags: view.flags(),
            });
        }
        if view.image_len() == 0 {
            return Err(OtaError::EmptyImage);
        }
        Ok(Header {
            target,
            key_id: view.key_id(),
            security_counter: view.security_counter(),
            image_len: view.image_len(),
            version: view.version(),
            build_time: view.build_time(),
            image_sha256: view.image_sha256(),
        })
    }

    /// Writes the header (magic, version, length and zero flags included). Does not validate:
    /// a zero `image_len` is emitted as is (tests need such bundles), and `parse` refuses it.
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        let mut view = HeaderView::new_unchecked(&mut out[..]);
        view.put(field::MAGIC, &MAGIC);
        view.put(field::FORMAT_VERSION, &FORMAT_VERSION.to_le_bytes());
        view.put(field::HEADER_LEN, &(HEADER_LEN as u16).to_le_bytes());
        view.put(field::TARGET, &self.target.id().to_le_bytes());
        view.put(field::FLAGS, &0u16.to_le_bytes());
        view.put(field::KEY_ID, &self.key_id.to_le_bytes());
        view.put(
            field::SECURITY_COUNTER,
            &self.security_counter.to_le_bytes(),
        );
        view.put(field::IMAGE_LEN, &self.image_len.to_le_bytes());
        view.put(field::VERSION_MAJOR, &self.version.major.to_le_bytes());
        view.put(field::VERSION_MINOR, &self.version.minor.to_le_bytes());
        view.put(field::VERSION_PATCH, &self.version.patch.to_le_bytes());
        view.put(field::BUILD_TIME, &self.build_time.to_le_bytes());
        view.put(field::IMAGE_SHA256, &self.image_sha256);
    }

    /// The emitted header as an array.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        self.emit(&mut out);
        out
    }

    /// Total bundle length this header declares.
    pub const fn bundle_len(&self) -> u64 {
        IMAGE_OFFSET as u64 + self.image_len as u64
    }
}

/// A whole bundle in memory (host side: inspect, attach a signature). The device streams
/// through the [`Verifier`](super::Verifier) instead.
#[derive(Debug, Clone)]
pub struct BundleView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> BundleView<T> {
    /// Checks that header and signature are present. The image part is whatever follows; its
    /// length against the header is checked by the verifier.
    pub fn new_checked(buffer: T) -> Result<Self, OtaError> {
        let len = buffer.as_ref().len();
        if len < IMAGE_OFFSET {
            return Err(OtaError::Truncated {
                expected: IMAGE_OFFSET as u64,
                received: len as u64,
            });
        }
        Ok(BundleView { buffer })
    }

    pub fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        self.buffer.as_ref()[..HEADER_LEN]
            .try_into()
            .expect("length checked in new_checked")
    }

    pub fn header_view(&self) -> HeaderView<&[u8]> {
        HeaderView::new_unchecked(&self.buffer.as_ref()[..HEADER_LEN])
    }

    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        self.buffer.as_ref()[SIGNATURE_OFFSET..IMAGE_OFFSET]
            .try_into()
            .expect("length checked in new_checked")
    }

    /// Whether the signature field is all zero (an unsigned bundle from `build --unsigned`).
    pub fn is_unsigned(&self) -> bool {
        self.signature().iter().all(|&b| b == 0)
    }

    pub fn image(&self) -> &[u8] {
        &self.buffer.as_ref()[IMAGE_OFFSET..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> BundleView<T> {
    /// Replaces the signature field.
    pub fn set_signature(&mut self, signature: &[u8; SIGNATURE_LEN]) {
        self.buffer.as_mut()[SIGNATURE_OFFSET..IMAGE_OFFSET].copy_from_slice(signature);
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            target: Target::Esp8266,
            key_id: 0x0102_0304,
            security_counter: 7,
            image_len: 0x0001_0000,
            version: Version {
                major: 1,
                minor: 2,
                patch: 3,
            },
            build_time: 1_764_000_000,
            image_sha256: [0xAB; 32],
        }
    }

    #[test]
    fn emit_then_parse_round_trips() {
        let h = sample();
        assert_eq!(Header::parse(&h.to_bytes()), Ok(h));
    }

    #[test]
    fn layout_matches_the_documented_bytes() {
        let b = sample().to_bytes();
        assert_eq!(&b[0..4], b"SOTA");
        assert_eq!(&b[4..8], &[1, 0, 72, 0]);
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(&b[12..16], &[4, 3, 2, 1]);
        assert_eq!(&b[16..24], &[7, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(&b[24..32], &[1, 0, 2, 0, 3, 0, 0, 0]);
        assert_eq!(&b[32..40], &1_764_000_000u64.to_le_bytes());
        assert_eq!(&b[40..72], &[0xAB; 32]);
    }

    #[test]
    fn parse_reports_the_first_bad_field() {
        let good = sample().to_bytes();
        let mutate = |at: usize, v: u8| {
            let mut b = good;
            b[at] = v;
            Header::parse(&b)
        };
        assert_eq!(mutate(0, b'X'), Err(OtaError::BadMagic { found: *b"XOTA" }));
        assert_eq!(
            mutate(4, 2),
            Err(OtaError::UnsupportedFormatVersion { found: 2 })
        );
        assert_eq!(mutate(6, 73), Err(OtaError::BadHeaderLen { found: 73 }));
        assert_eq!(mutate(8, 9), Err(OtaError::UnknownTarget { id: 9 }));
        assert_eq!(mutate(8, 2).map(|h| h.target), Ok(Target::Atmega168));
        assert_eq!(mutate(10, 1), Err(OtaError::UnsupportedFlags { flags: 1 }));
        let mut empty = sample();
        empty.image_len = 0;
        assert_eq!(Header::parse(&empty.to_bytes()), Err(OtaError::EmptyImage));
        assert_eq!(
            Header::parse(&good[..71]),
            Err(OtaError::Truncated {
                expected: 72,
                received: 71
            })
        );
    }

    #[test]
    fn versions_parse_strictly() {
        let v: Version = "1.2.3".parse().unwrap();
        assert_eq!(
            v,
            Version {
                major: 1,
                minor: 2,
                patch: 3
            }
        );
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1.2.x",
            "+1.2.3",
            "1..3",
            "65536.0.0",
            "1.2.3-rc1",
            " 1.2.3",
        ] {
            assert_eq!(bad.parse::<Version>(), Err(ParseVersionError), "{bad:?}");
        }
        assert!("65535.65535.4294967295".parse::<Version>().is_ok());
    }

    #[test]
    fn target_names_and_ids_agree() {
        for t in Target::ALL {
            assert_eq!(Target::from_id(t.id()), Some(t));
            assert_eq!(Target::from_name(t.name()), Some(t));
        }
        assert_eq!(Target::from_name("esp32"), None);
    }

    #[test]
    fn bundle_view_splits_the_parts() {
        let mut buf = [0u8; IMAGE_OFFSET + 3];
        buf[..HEADER_LEN].copy_from_slice(&sample().to_bytes());
        buf[IMAGE_OFFSET..].copy_from_slice(&[1, 2, 3]);
        let mut view = BundleView::new_checked(&mut buf[..]).unwrap();
        assert!(view.is_unsigned());
        view.set_signature(&[5; SIGNATURE_LEN]);
        assert!(!view.is_unsigned());
        assert_eq!(view.image(), &[1, 2, 3]);
        assert_eq!(view.header_view().key_id(), 0x0102_0304);
        assert!(BundleView::new_checked(&buf[..IMAGE_OFFSET - 1]).is_err());
    }
}
