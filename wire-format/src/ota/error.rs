//! Why a bundle was refused: one variant per check, so a log line names the exact failure.

use super::format::Target;
use core::fmt;

/// A failed OTA bundle check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtaError {
    /// The stream ended before the bundle did (`expected` is a minimum while the header is
    /// still incomplete, otherwise the exact bundle length the header declares).
    Truncated { expected: u64, received: u64 },
    /// Bytes arrived after the declared end of the image.
    TrailingData { expected: u64 },
    /// The first four bytes are not `SOTA`.
    BadMagic { found: [u8; 4] },
    /// A format version this code does not implement.
    UnsupportedFormatVersion { found: u16 },
    /// The header length field is not the v1 header length.
    BadHeaderLen { found: u16 },
    /// The target id is not one this format knows.
    UnknownTarget { id: u16 },
    /// Flag bits are set (v1 defines none; bit 0 is reserved for encryption).
    UnsupportedFlags { flags: u16 },
    /// The header declares a zero-length image.
    EmptyImage,
    /// The bundle is for another chip.
    WrongTarget { expected: Target, found: Target },
    /// The image does not fit the slot the device has for it.
    ImageTooLarge { len: u32, max: u32 },
    /// No trusted key has the header's key id.
    UnknownKey { key_id: u32 },
    /// The trusted key bytes are not a valid Ed25519 public key (device configuration error).
    BadPublicKey { key_id: u32 },
    /// The Ed25519 signature does not verify with the trusted key for `key_id`.
    BadSignature { key_id: u32 },
    /// Anti-rollback: the (signed) security counter is below the device's persisted floor.
    CounterBelowFloor { counter: u32, floor: u32 },
    /// The image bytes do not hash to the (signed) SHA-256 in the header.
    ImageHashMismatch,
}

impl OtaError {
    /// A short stable name for the failed check (logs, MQTT status messages, tests).
    pub const fn check(&self) -> &'static str {
        match self {
            OtaError::Truncated { .. } => "length",
            OtaError::TrailingData { .. } => "length",
            OtaError::BadMagic { .. } => "magic",
            OtaError::UnsupportedFormatVersion { .. } => "format-version",
            OtaError::BadHeaderLen { .. } => "header-length",
            OtaError::UnknownTarget { .. } => "target",
            OtaError::UnsupportedFlags { .. } => "flags",
            OtaError::EmptyImage => "image-length",
            OtaError::WrongTarget { .. } => "target",
            OtaError::ImageTooLarge { .. } => "image-length",
            OtaError::UnknownKey { .. } => "key-id",
            OtaError::BadPublicKey { .. } => "key-id",
            OtaError::BadSignature { .. } => "signature",
            OtaError::CounterBelowFloor { .. } => "security-counter",
            OtaError::ImageHashMismatch => "image-hash",
        }
    }
}

impl core::error::Error for OtaError {}

impl fmt::Display for OtaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtaError::Truncated { expected, received } => write!(
                f,
                "bundle is truncated: {received} bytes received, {expected} expected"
            ),
            OtaError::TrailingData { expected } => write!(
                f,
                "bundle has extra bytes after its declared end ({expected} bytes)"
            ),
            OtaError::BadMagic { found } => write!(
                f,
                "bad magic {found:02x?}: not an OTA bundle (expected \"SOTA\")"
            ),
            OtaError::UnsupportedFormatVersion { found } => {
                write!(
                    f,
                    "unsupported bundle format version {found} (this verifier reads 1)"
                )
            }
            OtaError::BadHeaderLen { found } => {
                write!(f, "bad header length {found} (format v1 requires 72)")
            }
            OtaError::UnknownTarget { id } => write!(f, "unknown target id {id}"),
            OtaError::UnsupportedFlags { flags } => write!(
                f,
                "unsupported flags {flags:#06x} (v1 defines none; encryption is reserved)"
            ),
            OtaError::EmptyImage => write!(f, "image length is zero"),
            OtaError::WrongTarget { expected, found } => {
                write!(f, "bundle is for target {found}, this device is {expected}")
            }
            OtaError::ImageTooLarge { len, max } => {
                write!(f, "image is {len} bytes, the slot holds at most {max}")
            }
            OtaError::UnknownKey { key_id } => {
                write!(f, "signing key id {key_id} is not a trusted key")
            }
            OtaError::BadPublicKey { key_id } => {
                write!(f, "trusted key {key_id} is not a valid Ed25519 public key")
            }
            OtaError::BadSignature { key_id } => {
                write!(
                    f,
                    "Ed25519 signature does not verify with trusted key {key_id}"
                )
            }
            OtaError::CounterBelowFloor { counter, floor } => write!(
                f,
                "security counter {counter} is below the device's floor {floor} (rollback refused)"
            ),
            OtaError::ImageHashMismatch => {
                write!(f, "image SHA-256 does not match the signed header")
            }
        }
    }
}
