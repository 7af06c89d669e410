//! The streaming verifier: constant memory, no allocation, any chunk sizes.
//!
//! States, in stream order (each transition is in [`Verifier::step`]):
//!
//! ```text
//! Header --72 bytes, structure + policy ok--> Signature --64 bytes, Ed25519 ok, counter ok--> Image
//! Image --image_len bytes--> (finish: SHA-256 matches) --> VerifiedImage
//! any --check fails--> Failed(error)   (sticky: every later call returns the same error)
//! ```
//!
//! The signature is checked before any image byte is accepted, so a device can erase and write
//! its inactive slot knowing the header is genuine; the image itself is trusted only once
//! [`Verifier::finish`] returns a [`VerifiedImage`], which nothing else can construct.

use super::error::OtaError;
use super::format::{Header, Target, DIGEST_LEN, HEADER_LEN, SIGNATURE_LEN};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// SHA-256 of `data` (the image digest that goes into the header).
pub fn sha256(data: &[u8]) -> [u8; DIGEST_LEN] {
    Sha256::digest(data).into()
}

/// The exact 32 bytes that get signed: SHA-256 of the header bytes.
pub fn signing_message(header: &[u8; HEADER_LEN]) -> [u8; DIGEST_LEN] {
    sha256(header)
}

/// A public key the device trusts, under the id that bundle headers name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    pub key_id: u32,
    pub public_key: [u8; 32],
}

/// Proof that a whole bundle verified. Only [`Verifier::finish`] creates one; the apply step
/// (mark the slot pending, raise the counter floor) takes it as its argument.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a verified image is only useful when the apply step consumes it"]
pub struct VerifiedImage {
    header: Header,
}

impl VerifiedImage {
    /// The authenticated header (version, security counter, length, digest...).
    pub fn header(&self) -> &Header {
        &self.header
    }
}

#[derive(Clone)]
enum State {
    Header {
        buf: [u8; HEADER_LEN],
        filled: usize,
    },
    Signature {
        header: Header,
        public_key: [u8; 32],
        message: [u8; DIGEST_LEN],
        sig: [u8; SIGNATURE_LEN],
        filled: usize,
    },
    Image {
        header: Header,
        hasher: Sha256,
        received: u32,
    },
    Failed(OtaError),
}

/// Streaming verifier for one bundle. Feed it with [`update`](Self::update), then call
/// [`finish`](Self::finish).
pub struct Verifier<'k> {
    keys: &'k [TrustedKey],
    target: Target,
    floor: u32,
    max_image_len: u32,
    received: u64,
    state: State,
}

impl<'k> Verifier<'k> {
    /// A verifier for bundles aimed at `target`, signed by one of `keys`, with a security
    /// counter of at least `floor` (the device's persisted anti-rollback value).
    pub fn new(keys: &'k [TrustedKey], target: Target, floor: u32) -> Self {
        Verifier {
            keys,
            target,
            floor,
            max_image_len: u32::MAX,
            received: 0,
            state: State::Header {
                buf: [0; HEADER_LEN],
                filled: 0,
            },
        }
    }

    /// Refuse images longer than `max` bytes (the device's slot size) right after the header.
    pub fn with_max_image_len(mut self, max: u32) -> Self {
        self.max_image_len = max;
        self
    }

    /// The header, once its signature and counter have been verified (before the image).
    pub fn authenticated_header(&self) -> Option<&Header> {
        match &self.state {
            State::Image { header, .. } => Some(header),
            _ => None,
        }
    }

    /// A copy of this verifier without the borrow of the trusted keys, once it no longer needs
    /// them: after the signature was verified (or after a failure); `None` before that point.
    /// A device keeps the copy across polls while the image streams in.
    pub fn detached(&self) -> Option<Verifier<'static>> {
        match &self.state {
            State::Image { .. } | State::Failed(_) => Some(Verifier {
                keys: &[],
                target: self.target,
                floor: self.floor,
                max_image_len: self.max_image_len,
                received: self.received,
                state: self.state.clone(),
            }),
            State::Header { .. } | State::Signature { .. } => None,
        }
    }

    /// Feeds the next chunk (any length, including zero). After the first error every call
    /// returns that same error.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), OtaError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        while !data.is_empty() {
            match self.step(data) {
                Ok(used) => {
                    self.received += used as u64;
                    data = data.get(used..).unwrap_or_default();
                }
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Ends the stream: checks the length and the image hash.
    pub fn finish(self) -> Result<VerifiedImage, OtaError> {
        let truncated = |expected: u64| OtaError::Truncated {
            expected,
            received: self.received,
        };
        match self.state {
            State::Failed(e) => Err(e),
            State::Header { .. } => Err(truncated(HEADER_LEN as u64)),
            State::Signature { header, .. } => Err(truncated(header.bundle_len())),
            State::Image {
                header,
                hasher,
                received,
            } => {
                if received != header.image_len {
                    return Err(truncated(header.bundle_len()));
                }
                let digest: [u8; DIGEST_LEN] = hasher.finalize().into();
                if digest != header.image_sha256 {
                    return Err(OtaError::ImageHashMismatch);
                }
                Ok(VerifiedImage { header })
            }
        }
    }

    /// Consumes a prefix of `data` (never more than `data.len()`, at least one byte) and
    /// performs at most one state transition.
    fn step(&mut self, data: &[u8]) -> Result<usize, OtaError> {
        match &mut self.state {
            State::Failed(e) => Err(*e),
            State::Header { buf, filled } => {
                let used = fill(buf, filled, data);
                if *filled == HEADER_LEN {
                    let bytes = *buf;
                    self.state = self.on_header(&bytes)?;
                }
                Ok(used)
            }
            State::Signature {
                header,
                public_key,
                message,
                sig,
                filled,
            } => {
                let used = fill(sig, filled, data);
                if *filled == SIGNATURE_LEN {
                    let (header, public_key, message, sig) = (*header, *public_key, *message, *sig);
                    self.state = self.on_signature(header, &public_key, &message, &sig)?;
                }
                Ok(used)
            }
            State::Image {
                header,
                hasher,
                received,
            } => {
                let remaining = header.image_len - *received;
                if remaining == 0 {
                    return Err(OtaError::TrailingData {
                        expected: header.bundle_len(),
                    });
                }
                // On a 16-bit target (avr-none) `remaining` may not fit a usize; then it is
                // larger than any chunk. (`as usize` truncated it: 65,536 became 0, a hang.)
                let used = usize::try_from(remaining).map_or(data.len(), |r| r.min(data.len()));
                let chunk = data.get(..used).unwrap_or_default();
                hasher.update(chunk);
                *received += used as u32;
                Ok(used)
            }
        }
    }

    /// Header complete: structure, then device policy, then key lookup.
    fn on_header(&self, buf: &[u8; HEADER_LEN]) -> Result<State, OtaError> {
        let header = Header::parse(buf)?;
        if header.target != self.target {
            return Err(OtaError::WrongTarget {
                expected: self.target,
                found: header.target,
            });
        }
        if header.image_len > self.max_image_len {
            return Err(OtaError::ImageTooLarge {
                len: header.image_len,
                max: self.max_image_len,
            });
        }
        let key =
            self.keys
                .iter()
                .find(|k| k.key_id == header.key_id)
                .ok_or(OtaError::UnknownKey {
                    key_id: header.key_id,
                })?;
        Ok(State::Signature {
            header,
            public_key: key.public_key,
            message: signing_message(buf),
            sig: [0; SIGNATURE_LEN],
            filled: 0,
        })
    }

    /// Signature complete: Ed25519 first, so the counter we compare is an authenticated one.
    fn on_signature(
        &self,
        header: Header,
        public_key: &[u8; 32],
        message: &[u8; DIGEST_LEN],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<State, OtaError> {
        let key_id = header.key_id;
        let key =
            VerifyingKey::from_bytes(public_key).map_err(|_| OtaError::BadPublicKey { key_id })?;
        // verify_strict: refuses non-canonical signatures and weak (small-order) keys.
        key.verify_strict(message, &Signature::from_bytes(sig))
            .map_err(|_| OtaError::BadSignature { key_id })?;
        if header.security_counter < self.floor {
            return Err(OtaError::CounterBelowFloor {
                counter: header.security_counter,
                floor: self.floor,
            });
        }
        Ok(State::Image {
            header,
            hasher: Sha256::new(),
            received: 0,
        })
    }
}

/// Copies as much of `data` as fits into `buf[*filled..]`; returns the bytes used.
fn fill<const N: usize>(buf: &mut [u8; N], filled: &mut usize, data: &[u8]) -> usize {
    let used = data.len().min(N.saturating_sub(*filled));
    if let (Some(dst), Some(src)) = (buf.get_mut(*filled..*filled + used), data.get(..used)) {
        dst.copy_from_slice(src);
    }
    *filled += used;
    used
}

#[cfg(test)]
mod tests;
