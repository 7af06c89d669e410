//! Signed OTA bundles, format v1 (specified byte by byte in docs/ota-bundle.md).
//!
//! ```text
//! bundle = header (72 bytes) || signature (64 bytes) || image (image_len bytes)
//! signed message M = SHA-256(header), header carries SHA-256(image)
//! signature = Ed25519(signing key, M)
//! ```
//!
//! The signature comes right after the header so a device authenticates every header field
//! before it writes a single image byte to flash; the image is then hashed once while it streams.
//!
//! - [`format`]: constants, checked view ([`HeaderView`], [`BundleView`]) and [`Header`] repr.
//! - [`error`]: [`OtaError`], one variant per failed check.
//! - `verify` (feature `verify`): the constant-memory streaming [`Verifier`].

pub mod error;
pub mod format;
#[cfg(feature = "verify")]
pub mod verify;

pub use error::OtaError;
pub use format::{
    BundleView, Header, HeaderView, ParseVersionError, Target, Version, DIGEST_LEN, FLAG_ENCRYPTED,
    FORMAT_VERSION, HEADER_LEN, IMAGE_OFFSET, MAGIC, SIGNATURE_LEN, SIGNATURE_OFFSET,
};
#[cfg(feature = "verify")]
pub use verify::{sha256, signing_message, TrustedKey, VerifiedImage, Verifier};
