//! The OTA transfer protocol between the operator (`provision ota push`) and a device, over MQTT.
//!
//! Byte-level spec: docs/ota-protocol.md (a test checks its tables against the `field` modules
//! below). Five messages, each on its own topic under `devices/<id>/`:
//!
//! ```text
//! operator -> device  ota/down/offer    Offer   the bundle's signed header + signature (136 bytes)
//! device -> operator  ota/up/request    Request one range of the image (bundle id, offset, len)
//! operator -> device  ota/down/chunk    Chunk   the bytes of one range, offset-prefixed
//! device -> operator  ota/up/status     Status  where the update stands, with the running version
//! operator -> device  ota/down/query    Query   "report now": answered live by a Status
//! ```
//!
//! The device publishes its reports retained, but a retained message is only as good as the
//! broker that holds it: a clustered broker (RabbitMQ) keeps retained messages per node, so an
//! operator on another node never sees them. A [`Query`] asks the device itself; it answers with
//! its current [`Status`], not retained, on the node it is connected to, and every subscriber on
//! every node receives that answer live.
//!
//! The device paces the transfer: it asks for at most [`MAX_WINDOW`] ranges at a time, each at
//! most [`MAX_CHUNK_LEN`] bytes, so a chunk always fits its 2 KiB receive buffer together with
//! the MQTT header and topic ([`MAX_CHUNK_PACKET`]).
//!
//! Every message starts with `[PROTOCOL_VERSION, kind]`. Everything that parses outside bytes
//! returns a [`ProtoError`] naming the problem; nothing here panics or allocates.

use core::fmt;

use crate::device_id::MAX_LEN as MAX_ID_LEN;
use crate::ota::{Header, Version, HEADER_LEN, IMAGE_OFFSET, SIGNATURE_LEN};

// ---- the constants block (everything the spec tables name) ----

/// Version of this protocol (byte 0 of every message).
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest image range one request asks for (and one chunk carries).
pub const MAX_CHUNK_LEN: usize = 1024;
/// Most requests a device keeps outstanding at once.
pub const MAX_WINDOW: usize = 4;
/// Offer length: 4-byte message header, then the bundle's header and signature.
pub const OFFER_LEN: usize = 4 + IMAGE_OFFSET;
/// Request length.
pub const REQUEST_LEN: usize = 12;
/// Chunk header length (the image bytes follow).
pub const CHUNK_HEADER_LEN: usize = 12;
/// Longest chunk message.
pub const MAX_CHUNK_MSG: usize = CHUNK_HEADER_LEN + MAX_CHUNK_LEN;
/// Status length.
pub const STATUS_LEN: usize = 40;
/// Query length.
pub const QUERY_LEN: usize = 4;

/// Topic levels after `devices/<id>/`.
pub const TOPIC_OFFER: &str = "ota/down/offer";
/// See [`TOPIC_OFFER`].
pub const TOPIC_CHUNK: &str = "ota/down/chunk";
/// See [`TOPIC_OFFER`].
pub const TOPIC_REQUEST: &str = "ota/up/request";
/// See [`TOPIC_OFFER`].
pub const TOPIC_STATUS: &str = "ota/up/status";
/// See [`TOPIC_OFFER`].
pub const TOPIC_QUERY: &str = "ota/down/query";
/// The filter a device subscribes to (relative to `devices/<id>/`).
pub const TOPIC_DOWN_FILTER: &str = "ota/down/+";

/// Longest full topic: `devices/` + a 63-character id + `/` + the longest suffix.
pub const MAX_TOPIC_LEN: usize = "devices/".len() + MAX_ID_LEN + 1 + TOPIC_CHUNK.len();
/// Worst-case MQTT 3.1.1 PUBLISH overhead around a payload: fixed header (≤ 5 bytes), topic
/// length (2), the longest topic, packet id (2, QoS 1).
pub const MQTT_PUBLISH_OVERHEAD: usize = 5 + 2 + MAX_TOPIC_LEN + 2;
/// The largest whole MQTT packet a chunk can arrive in; must fit the device's receive buffer.
pub const MAX_CHUNK_PACKET: usize = MQTT_PUBLISH_OVERHEAD + MAX_CHUNK_MSG;

const _: () = assert!(MAX_CHUNK_PACKET <= 2048);
const _: () = assert!(4096 % MAX_CHUNK_LEN == 0);
const _: () = assert!(OFFER_LEN == 140);
const _: () = assert!(TOPIC_OFFER.len() == TOPIC_CHUNK.len());
const _: () = assert!(TOPIC_REQUEST.len() == TOPIC_CHUNK.len());
const _: () = assert!(TOPIC_STATUS.len() < TOPIC_CHUNK.len());
const _: () = assert!(TOPIC_QUERY.len() <= TOPIC_CHUNK.len());

/// Byte ranges of every message's fields (the single source of truth for the layouts).
pub mod field {
    /// A byte range inside a message.
    pub type Field = core::ops::Range<usize>;

    /// Shared by all messages: u8 protocol version.
    pub const VERSION: Field = 0..1;
    /// Shared by all messages: u8 message kind.
    pub const KIND: Field = 1..2;

    /// The offer (operator -> device).
    pub mod offer {
        use super::Field;
        /// u16, must be 0.
        pub const RESERVED: Field = 2..4;
        /// The bundle's 72-byte header.
        pub const HEADER: Field = 4..76;
        /// The bundle's 64-byte Ed25519 signature.
        pub const SIGNATURE: Field = 76..140;
    }

    /// The range request (device -> operator).
    pub mod request {
        use super::Field;
        /// u16, bytes wanted, 1..=MAX_CHUNK_LEN.
        pub const LEN: Field = 2..4;
        /// u32, the bundle id (first 4 bytes of the bundle's signing message M).
        pub const BUNDLE_ID: Field = 4..8;
        /// u32, offset of the first wanted byte inside the image.
        pub const OFFSET: Field = 8..12;
    }

    /// The chunk (operator -> device).
    pub mod chunk {
        use super::Field;
        /// u16, number of data bytes that follow, 1..=MAX_CHUNK_LEN.
        pub const LEN: Field = 2..4;
        /// u32, the bundle id the bytes belong to.
        pub const BUNDLE_ID: Field = 4..8;
        /// u32, image offset of the first data byte.
        pub const OFFSET: Field = 8..12;
        /// Where the data starts.
        pub const DATA: usize = 12;
    }

    /// The status report (device -> operator).
    pub mod status {
        use super::Field;
        /// u8, the [`State`](crate::ota_proto::State).
        pub const STATE: Field = 2..3;
        /// u8, percent while downloading, the [`Reason`](crate::ota_proto::Reason) when
        /// refused or rolled back, else 0.
        pub const DETAIL: Field = 3..4;
        /// u32, the bundle id this report is about (0: none).
        pub const BUNDLE_ID: Field = 4..8;
        /// u16 major, u16 minor, u32 patch: the version running now.
        pub const RUNNING_VERSION: Field = 8..16;
        /// Same layout: the version of the bundle this report is about (zero: none).
        pub const BUNDLE_VERSION: Field = 16..24;
        /// u32, image bytes received and stored in flash so far.
        pub const RECEIVED: Field = 24..28;
        /// u32, the bundle's image length (0: none).
        pub const IMAGE_LEN: Field = 28..32;
        /// u32, the device's stored security counter floor.
        pub const FLOOR: Field = 32..36;
        /// u8, the [`Slot`](crate::ota_proto::Slot) the running image booted from.
        pub const RUNNING_SLOT: Field = 36..37;
        /// 3 bytes, must be 0.
        pub const RESERVED: Field = 37..40;
    }

    /// The status query (operator -> device).
    pub mod query {
        use super::Field;
        /// u16, must be 0.
        pub const RESERVED: Field = 2..4;
    }
}

const _: () = assert!(field::offer::SIGNATURE.end == OFFER_LEN);
const _: () = assert!(field::offer::HEADER.end - field::offer::HEADER.start == HEADER_LEN);
const _: () = assert!(field::offer::SIGNATURE.end - field::offer::SIGNATURE.start == SIGNATURE_LEN);
const _: () = assert!(field::request::OFFSET.end == REQUEST_LEN);
const _: () = assert!(field::chunk::OFFSET.end == CHUNK_HEADER_LEN);
const _: () = assert!(field::status::RESERVED.end == STATUS_LEN);
const _: () = assert!(field::query::RESERVED.end == QUERY_LEN);

/// Message kinds (byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Offer = 1,
    Request = 2,
    Chunk = 3,
    Status = 4,
    Query = 5,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Offer,
        Kind::Request,
        Kind::Chunk,
        Kind::Status,
        Kind::Query,
    ];

    pub const fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Offer),
            2 => Some(Kind::Request),
            3 => Some(Kind::Chunk),
            4 => Some(Kind::Status),
            5 => Some(Kind::Query),
            _ => None,
        }
    }

    /// The topic levels (after `devices/<id>/`) this kind travels on.
    pub const fn topic(self) -> &'static str {
        match self {
            Kind::Offer => TOPIC_OFFER,
            Kind::Request => TOPIC_REQUEST,
            Kind::Chunk => TOPIC_CHUNK,
            Kind::Status => TOPIC_STATUS,
            Kind::Query => TOPIC_QUERY,
        }
    }

    /// The kind for topic levels after `devices/<id>/`.
    pub fn from_topic(suffix: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.topic() == suffix)
    }

    /// Lower-case name (docs, logs).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Offer => "offer",
            Kind::Request => "request",
            Kind::Chunk => "chunk",
            Kind::Status => "status",
            Kind::Query => "query",
        }
    }
}

/// Why a message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// Fewer bytes than the message needs.
    Truncated { expected: usize, received: usize },
    /// More bytes than the message holds.
    TrailingData { expected: usize, received: usize },
    /// Byte 0 is not [`PROTOCOL_VERSION`].
    UnsupportedVersion { found: u8 },
    /// Byte 1 is not the kind this topic carries.
    WrongKind { expected: Kind, found: u8 },
    /// A reserved field is not zero.
    Reserved,
    /// A request or chunk length of 0 or above [`MAX_CHUNK_LEN`].
    BadLength { len: usize },
    /// The range ends beyond 4 GiB.
    RangeOverflow,
    /// An unknown status state or reason code.
    BadState { state: u8, detail: u8 },
    /// A running slot other than 0 (A) or 1 (B).
    BadSlot { found: u8 },
    /// The output buffer is too small for [`emit`](Chunk::emit).
    BufferTooSmall { needed: usize },
}

impl core::error::Error for ProtoError {}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated { expected, received } => {
                write!(
                    f,
                    "OTA message truncated: {received} bytes, {expected} expected"
                )
            }
            ProtoError::TrailingData { expected, received } => write!(
                f,
                "OTA message too long: {received} bytes, {expected} expected"
            ),
            ProtoError::UnsupportedVersion { found } => write!(
                f,
                "unsupported OTA protocol version {found} (this code speaks {PROTOCOL_VERSION})"
            ),
            ProtoError::WrongKind { expected, found } => write!(
                f,
                "message kind {found} on the {} topic (expected {})",
                expected.name(),
                *expected as u8
            ),
            ProtoError::Reserved => write!(f, "reserved field is not zero"),
            ProtoError::BadLength { len } => {
                write!(f, "range length {len} is not 1..={MAX_CHUNK_LEN}")
            }
            ProtoError::RangeOverflow => write!(f, "range ends beyond 4 GiB"),
            ProtoError::BadState { state, detail } => {
                write!(f, "unknown status state {state} / detail {detail}")
            }
            ProtoError::BadSlot { found } => {
                write!(f, "unknown running slot {found} (0 = A, 1 = B)")
            }
            ProtoError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small ({needed} bytes needed)")
            }
        }
    }
}

fn le16(b: &[u8], f: field::Field) -> u16 {
    let mut a = [0; 2];
    if let Some(s) = b.get(f) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn le32(b: &[u8], f: field::Field) -> u32 {
    let mut a = [0; 4];
    if let Some(s) = b.get(f) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn put(out: &mut [u8], f: field::Field, value: &[u8]) {
    if let Some(d) = out.get_mut(f) {
        d.copy_from_slice(value);
    }
}

fn version_bytes(v: Version) -> [u8; 8] {
    let mut b = [0; 8];
    b[0..2].copy_from_slice(&v.major.to_le_bytes());
    b[2..4].copy_from_slice(&v.minor.to_le_bytes());
    b[4..8].copy_from_slice(&v.patch.to_le_bytes());
    b
}

fn version_at(b: &[u8], f: field::Field) -> Version {
    let s = f.start;
    Version {
        major: le16(b, s..s + 2),
        minor: le16(b, s + 2..s + 4),
        patch: le32(b, s + 4..s + 8),
    }
}

/// Checks version, kind and length bounds shared by every message.
fn check_head(bytes: &[u8], kind: Kind, min: usize, max: usize) -> Result<(), ProtoError> {
    let received = bytes.len();
    if received < 2 {
        return Err(ProtoError::Truncated {
            expected: min,
            received,
        });
    }
    if bytes[0] != PROTOCOL_VERSION {
        return Err(ProtoError::UnsupportedVersion { found: bytes[0] });
    }
    if bytes[1] != kind as u8 {
        return Err(ProtoError::WrongKind {
            expected: kind,
            found: bytes[1],
        });
    }
    if received < min {
        return Err(ProtoError::Truncated {
            expected: min,
            received,
        });
    }
    if received > max {
        return Err(ProtoError::TrailingData {
            expected: max,
            received,
        });
    }
    Ok(())
}

/// The bundle id: the first four bytes (little-endian) of the bundle's signing message
/// `M = SHA-256(header)`. Names one bundle in requests, chunks and status reports; never 0.
pub fn bundle_id(signing_message: &[u8; 32]) -> u32 {
    let id = u32::from_le_bytes([
        signing_message[0],
        signing_message[1],
        signing_message[2],
        signing_message[3],
    ]);
    if id == 0 {
        1
    } else {
        id
    }
}

// ---- offer ----

/// A checked view over an offer's bytes.
#[derive(Debug, Clone, Copy)]
pub struct OfferView<'a> {
    bytes: &'a [u8],
}

impl<'a> OfferView<'a> {
    /// Checks version, kind, the exact length and the reserved field.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ProtoError> {
        check_head(bytes, Kind::Offer, OFFER_LEN, OFFER_LEN)?;
        if le16(bytes, field::offer::RESERVED) != 0 {
            return Err(ProtoError::Reserved);
        }
        Ok(OfferView { bytes })
    }

    /// The bundle's header bytes (not parsed: the device's verifier judges them).
    pub fn header(&self) -> &'a [u8] {
        self.bytes.get(field::offer::HEADER).unwrap_or_default()
    }

    /// The bundle's signature bytes.
    pub fn signature(&self) -> &'a [u8] {
        self.bytes.get(field::offer::SIGNATURE).unwrap_or_default()
    }

    /// The first [`IMAGE_OFFSET`] bytes of the bundle (header and signature), as the verifier
    /// takes them.
    pub fn bundle_prefix(&self) -> &'a [u8] {
        self.bytes.get(4..OFFER_LEN).unwrap_or_default()
    }
}

/// An offer: the bundle's first [`IMAGE_OFFSET`] bytes (header, signature). The device runs them
/// through its verifier (structure, target, key id, signature, security counter, image size)
/// before it erases anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub bundle_prefix: [u8; IMAGE_OFFSET],
}

impl Offer {
    pub fn parse(bytes: &[u8]) -> Result<Offer, ProtoError> {
        let view = OfferView::new_checked(bytes)?;
        let mut bundle_prefix = [0; IMAGE_OFFSET];
        bundle_prefix.copy_from_slice(view.bundle_prefix());
        Ok(Offer { bundle_prefix })
    }

    /// An offer for the bundle that starts with `bundle` (at least its header and signature).
    pub fn from_bundle(bundle: &[u8]) -> Result<Offer, ProtoError> {
        let prefix = bundle.get(..IMAGE_OFFSET).ok_or(ProtoError::Truncated {
            expected: IMAGE_OFFSET,
            received: bundle.len(),
        })?;
        let mut bundle_prefix = [0; IMAGE_OFFSET];
        bundle_prefix.copy_from_slice(prefix);
        Ok(Offer { bundle_prefix })
    }

    /// The header, parsed for structure only (not authenticated).
    pub fn header(&self) -> Result<Header, crate::ota::OtaError> {
        Header::parse(&self.bundle_prefix[..HEADER_LEN])
    }

    pub fn emit(&self, out: &mut [u8; OFFER_LEN]) {
        out[0] = PROTOCOL_VERSION;
        out[1] = Kind::Offer as u8;
        put(out, field::offer::RESERVED, &[0, 0]);
        out[4..].copy_from_slice(&self.bundle_prefix);
    }

    pub fn to_bytes(&self) -> [u8; OFFER_LEN] {
        let mut out = [0; OFFER_LEN];
        self.emit(&mut out);
        out
    }
}

// ---- request ----

/// A range request: `len` image bytes from `offset` of bundle `bundle_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub bundle_id: u32,
    pub offset: u32,
    pub len: u16,
}

impl Request {
    pub fn parse(bytes: &[u8]) -> Result<Request, ProtoError> {
        check_head(bytes, Kind::Request, REQUEST_LEN, REQUEST_LEN)?;
        let r = Request {
            len: le16(bytes, field::request::LEN),
            bundle_id: le32(bytes, field::request::BUNDLE_ID),
            offset: le32(bytes, field::request::OFFSET),
        };
        check_range(r.offset, usize::from(r.len))?;
        Ok(r)
    }

    pub fn emit(&self, out: &mut [u8; REQUEST_LEN]) {
        out[0] = PROTOCOL_VERSION;
        out[1] = Kind::Request as u8;
        put(out, field::request::LEN, &self.len.to_le_bytes());
        put(
            out,
            field::request::BUNDLE_ID,
            &self.bundle_id.to_le_bytes(),
        );
        put(out, field::request::OFFSET, &self.offset.to_le_bytes());
    }

    pub fn to_bytes(&self) -> [u8; REQUEST_LEN] {
        let mut out = [0; REQUEST_LEN];
        self.emit(&mut out);
        out
    }
}

fn check_range(offset: u32, len: usize) -> Result<(), ProtoError> {
    if len == 0 || len > MAX_CHUNK_LEN {
        return Err(ProtoError::BadLength { len });
    }
    if u64::from(offset) + len as u64 > u64::from(u32::MAX) + 1 {
        return Err(ProtoError::RangeOverflow);
    }
    Ok(())
}

// ---- chunk ----

/// A chunk: image bytes `data` at `offset` of bundle `bundle_id`. Borrows its data from the
/// receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub bundle_id: u32,
    pub offset: u32,
    pub data: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// Checks version, kind, that the length field matches the data that follows, and the range.
    pub fn parse(bytes: &'a [u8]) -> Result<Chunk<'a>, ProtoError> {
        check_head(bytes, Kind::Chunk, CHUNK_HEADER_LEN + 1, MAX_CHUNK_MSG)?;
        let len = usize::from(le16(bytes, field::chunk::LEN));
        let data = bytes.get(field::chunk::DATA..).unwrap_or_default();
        check_range(le32(bytes, field::chunk::OFFSET), len)?;
        if data.len() < len {
            return Err(ProtoError::Truncated {
                expected: CHUNK_HEADER_LEN + len,
                received: bytes.len(),
            });
        }
        if data.len() > len {
            return Err(ProtoError::TrailingData {
                expected: CHUNK_HEADER_LEN + len,
                received: bytes.len(),
            });
        }
        Ok(Chunk {
            bundle_id: le32(bytes, field::chunk::BUNDLE_ID),
            offset: le32(bytes, field::chunk::OFFSET),
            data,
        })
    }

    /// Message length for this chunk.
    pub fn len(&self) -> usize {
        CHUNK_HEADER_LEN + self.data.len()
    }

    /// Whether the chunk carries no data (never true for a parsed chunk).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Writes the message into the front of `out`; returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        check_range(self.offset, self.data.len())?;
        let n = self.len();
        let out = out
            .get_mut(..n)
            .ok_or(ProtoError::BufferTooSmall { needed: n })?;
        out[0] = PROTOCOL_VERSION;
        out[1] = Kind::Chunk as u8;
        put(
            out,
            field::chunk::LEN,
            &(self.data.len() as u16).to_le_bytes(),
        );
        put(out, field::chunk::BUNDLE_ID, &self.bundle_id.to_le_bytes());
        put(out, field::chunk::OFFSET, &self.offset.to_le_bytes());
        out[field::chunk::DATA..].copy_from_slice(self.data);
        Ok(n)
    }
}

// ---- status ----

/// Where an update stands (status byte 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Nothing under way; the running image is confirmed.
    Idle = 0,
    /// Receiving the image; detail = percent stored.
    Downloading = 1,
    /// All bytes stored; checking the image hash against the signed header.
    Verifying = 2,
    /// Verified and marked to boot next; the device resets into it.
    PendingReboot = 3,
    /// The new image is running on trial; it confirms once it is online.
    Trial = 4,
    /// The new image reached the broker and is now the confirmed image.
    Confirmed = 5,
    /// The new image did not confirm; the previous image runs again. Detail = reason.
    RolledBack = 6,
    /// The offer or the download was refused; detail = the failed check. The running image
    /// is unchanged.
    Refused = 7,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Idle,
        State::Downloading,
        State::Verifying,
        State::PendingReboot,
        State::Trial,
        State::Confirmed,
        State::RolledBack,
        State::Refused,
    ];

    pub const fn from_u8(b: u8) -> Option<State> {
        match b {
            0 => Some(State::Idle),
            1 => Some(State::Downloading),
            2 => Some(State::Verifying),
            3 => Some(State::PendingReboot),
            4 => Some(State::Trial),
            5 => Some(State::Confirmed),
            6 => Some(State::RolledBack),
            7 => Some(State::Refused),
            _ => None,
        }
    }

    /// Stable lower-case name (CLI output, JSON, logs).
    pub const fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Downloading => "downloading",
            State::Verifying => "verifying",
            State::PendingReboot => "pending-reboot",
            State::Trial => "trial",
            State::Confirmed => "confirmed",
            State::RolledBack => "rolled-back",
            State::Refused => "refused",
        }
    }

    /// Whether the update is over (the operator stops waiting).
    pub const fn is_final(self) -> bool {
        matches!(self, State::Confirmed | State::RolledBack | State::Refused)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an update was refused or rolled back (status byte 3 in those states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// Bundle structure: magic, format version, header length or flags.
    Format = 1,
    /// The bundle is for another chip (or an unknown one).
    Target = 2,
    /// No trusted key has the bundle's key id.
    KeyId = 3,
    /// The signature does not verify (an unsigned bundle lands here too).
    Signature = 4,
    /// The security counter is below the device's floor (rollback).
    SecurityCounter = 5,
    /// The image is empty or larger than the slot.
    ImageLength = 6,
    /// The stored image does not hash to the signed digest.
    ImageHash = 7,
    /// More or fewer image bytes than the header declares.
    Length = 8,
    /// Another bundle is being downloaded, or a new image is on trial.
    Busy = 9,
    /// Flash erase, write or read-back failed.
    Flash = 10,
    /// The new image did not get online within its trial boots.
    NotConfirmed = 11,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::Format,
        Reason::Target,
        Reason::KeyId,
        Reason::Signature,
        Reason::SecurityCounter,
        Reason::ImageLength,
        Reason::ImageHash,
        Reason::Length,
        Reason::Busy,
        Reason::Flash,
        Reason::NotConfirmed,
    ];

    pub fn from_u8(b: u8) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| *r as u8 == b)
    }

    /// Stable name; for bundle checks the same name `provision ota verify` prints.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Format => "format",
            Reason::Target => "target",
            Reason::KeyId => "key-id",
            Reason::Signature => "signature",
            Reason::SecurityCounter => "security-counter",
            Reason::ImageLength => "image-length",
            Reason::ImageHash => "image-hash",
            Reason::Length => "length",
            Reason::Busy => "busy",
            Reason::Flash => "flash",
            Reason::NotConfirmed => "not-confirmed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<crate::ota::OtaError> for Reason {
    fn from(e: crate::ota::OtaError) -> Reason {
        use crate::ota::OtaError as E;
        match e {
            E::Truncated { .. } | E::TrailingData { .. } => Reason::Length,
            E::BadMagic { .. }
            | E::UnsupportedFormatVersion { .. }
            | E::BadHeaderLen { .. }
            | E::UnsupportedFlags { .. } => Reason::Format,
            E::UnknownTarget { .. } | E::WrongTarget { .. } => Reason::Target,
            E::EmptyImage | E::ImageTooLarge { .. } => Reason::ImageLength,
            E::UnknownKey { .. } | E::BadPublicKey { .. } => Reason::KeyId,
            E::BadSignature { .. } => Reason::Signature,
            E::CounterBelowFloor { .. } => Reason::SecurityCounter,
            E::ImageHashMismatch => Reason::ImageHash,
        }
    }
}

/// What the status byte pair says: a state, with its percent or reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Downloading { percent: u8 },
    Verifying,
    PendingReboot,
    Trial,
    Confirmed,
    RolledBack(Reason),
    Refused(Reason),
}

impl Phase {
    pub const fn state(self) -> State {
        match self {
            Phase::Idle => State::Idle,
            Phase::Downloading { .. } => State::Downloading,
            Phase::Verifying => State::Verifying,
            Phase::PendingReboot => State::PendingReboot,
            Phase::Trial => State::Trial,
            Phase::Confirmed => State::Confirmed,
            Phase::RolledBack(_) => State::RolledBack,
            Phase::Refused(_) => State::Refused,
        }
    }

    const fn detail(self) -> u8 {
        match self {
            Phase::Downloading { percent } => percent,
            Phase::RolledBack(r) | Phase::Refused(r) => r as u8,
            _ => 0,
        }
    }

    fn from_bytes(state: u8, detail: u8) -> Result<Phase, ProtoError> {
        let bad = ProtoError::BadState { state, detail };
        let reason = || Reason::from_u8(detail).ok_or(bad);
        let zero = |p: Phase| if detail == 0 { Ok(p) } else { Err(bad) };
        match State::from_u8(state).ok_or(bad)? {
            State::Idle => zero(Phase::Idle),
            State::Downloading if detail <= 100 => Ok(Phase::Downloading { percent: detail }),
            State::Downloading => Err(bad),
            State::Verifying => zero(Phase::Verifying),
            State::PendingReboot => zero(Phase::PendingReboot),
            State::Trial => zero(Phase::Trial),
            State::Confirmed => zero(Phase::Confirmed),
            State::RolledBack => Ok(Phase::RolledBack(reason()?)),
            State::Refused => Ok(Phase::Refused(reason()?)),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Downloading { percent } => write!(f, "downloading {percent}%"),
            Phase::RolledBack(r) => write!(f, "rolled-back ({r})"),
            Phase::Refused(r) => write!(f, "refused ({r})"),
            p => f.write_str(p.state().name()),
        }
    }
}

/// A flash slot a device boots from (status byte 36).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Slot {
    A = 0,
    B = 1,
}

impl Slot {
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    pub const fn from_u8(b: u8) -> Option<Slot> {
        match b {
            0 => Some(Slot::A),
            1 => Some(Slot::B),
            _ => None,
        }
    }

    /// Stable name (CLI output, JSON, logs): `A` or `B`.
    pub const fn name(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A status report. The device publishes every change retained (on a single broker the last one
/// is what a later subscriber sees), and answers a [`Query`] with its current report, not
/// retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub phase: Phase,
    /// The bundle this report is about (0: none).
    pub bundle_id: u32,
    /// The version running on the device now (from the active slot's signed header).
    pub running: Version,
    /// The slot the running image booted from.
    pub running_slot: Slot,
    /// The version of the bundle this report is about (0.0.0: none).
    pub bundle_version: Version,
    /// Image bytes stored so far.
    pub received: u32,
    /// The bundle's image length (0: none).
    pub image_len: u32,
    /// The stored security counter floor.
    pub floor: u32,
}

impl Status {
    pub fn parse(bytes: &[u8]) -> Result<Status, ProtoError> {
        check_head(bytes, Kind::Status, STATUS_LEN, STATUS_LEN)?;
        let b = |f: field::Field| bytes.get(f.start).copied().unwrap_or(0);
        let phase = Phase::from_bytes(b(field::status::STATE), b(field::status::DETAIL))?;
        let slot = b(field::status::RUNNING_SLOT);
        let running_slot = Slot::from_u8(slot).ok_or(ProtoError::BadSlot { found: slot })?;
        if bytes
            .get(field::status::RESERVED)
            .is_some_and(|r| r.iter().any(|&x| x != 0))
        {
            return Err(ProtoError::Reserved);
        }
        Ok(Status {
            phase,
            bundle_id: le32(bytes, field::status::BUNDLE_ID),
            running: version_at(bytes, field::status::RUNNING_VERSION),
            running_slot,
            bundle_version: version_at(bytes, field::status::BUNDLE_VERSION),
            received: le32(bytes, field::status::RECEIVED),
            image_len: le32(bytes, field::status::IMAGE_LEN),
            floor: le32(bytes, field::status::FLOOR),
        })
    }

    pub fn emit(&self, out: &mut [u8; STATUS_LEN]) {
        out[0] = PROTOCOL_VERSION;
        out[1] = Kind::Status as u8;
        put(out, field::status::STATE, &[self.phase.state() as u8]);
        put(out, field::status::DETAIL, &[self.phase.detail()]);
        put(out, field::status::BUNDLE_ID, &self.bundle_id.to_le_bytes());
        put(
            out,
            field::status::RUNNING_VERSION,
            &version_bytes(self.running),
        );
        put(
            out,
            field::status::BUNDLE_VERSION,
            &version_bytes(self.bundle_version),
        );
        put(out, field::status::RECEIVED, &self.received.to_le_bytes());
        put(out, field::status::IMAGE_LEN, &self.image_len.to_le_bytes());
        put(out, field::status::FLOOR, &self.floor.to_le_bytes());
        put(out, field::status::RUNNING_SLOT, &[self.running_slot as u8]);
        put(out, field::status::RESERVED, &[0; 3]);
    }

    pub fn to_bytes(&self) -> [u8; STATUS_LEN] {
        let mut out = [0; STATUS_LEN];
        self.emit(&mut out);
        out
    }
}

// ---- query ----

/// A status query: "report now". The device answers with its current [`Status`] on
/// [`TOPIC_STATUS`], QoS 1, **not** retained, so the answer reaches every subscriber live
/// (on every node of a cluster) and the retained report stays what it was. Queries that arrive
/// before the device answers get one answer; a retained query is ignored like every retained
/// message on a `down` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Query;

impl Query {
    /// Checks version, kind, the exact length and the reserved field.
    pub fn parse(bytes: &[u8]) -> Result<Query, ProtoError> {
        check_head(bytes, Kind::Query, QUERY_LEN, QUERY_LEN)?;
        if le16(bytes, field::query::RESERVED) != 0 {
            return Err(ProtoError::Reserved);
        }
        Ok(Query)
    }

    pub fn emit(&self, out: &mut [u8; QUERY_LEN]) {
        out[0] = PROTOCOL_VERSION;
        out[1] = Kind::Query as u8;
        put(out, field::query::RESERVED, &[0, 0]);
    }

    pub fn to_bytes(&self) -> [u8; QUERY_LEN] {
        let mut out = [0; QUERY_LEN];
        self.emit(&mut out);
        out
    }
}

/// Download percent for `received` of `total` bytes (0 for an empty total, never above 100).
pub fn percent(received: u32, total: u32) -> u8 {
    if total == 0 {
        return 0;
    }
    (u64::from(received.min(total)) * 100 / u64::from(total)) as u8
}

#[cfg(test)]
mod tests;
