//! The boot state: which slot is confirmed, which one is pending a trial, how many trial boots it
//! has had, and the anti-rollback floor. Kept in two sectors; every change writes a whole new
//! record with the next sequence number into the *older* copy, so a power cut during the erase or
//! the write leaves the newer copy intact (docs/flash-layout.md, "Boot state").

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use super::layout::{Layout, Slot, SECTOR};

/// `"SOBS"`.
pub const MAGIC: [u8; 4] = *b"SOBS";
/// Record format version.
pub const FORMAT: u8 = 1;
/// Bytes of a record (a multiple of the ESP8266's 4-byte write unit).
pub const RECORD_LEN: usize = 32;
/// A pending image gets this many boots to reach the broker; the next boot rolls back.
pub const MAX_TRIAL_BOOTS: u8 = 3;

/// Byte ranges of the record (docs/flash-layout.md mirrors them).
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const MAGIC: Field = 0..4;
    pub const FORMAT: Field = 4..5;
    pub const ACTIVE: Field = 5..6;
    pub const PENDING: Field = 6..7;
    pub const TRIAL_BOOTS: Field = 7..8;
    pub const SEQ: Field = 8..12;
    pub const FLOOR: Field = 12..16;
    pub const PENDING_COUNTER: Field = 16..20;
    pub const OUTCOME: Field = 20..21;
    pub const RESERVED: Field = 21..24;
    pub const OUTCOME_BUNDLE: Field = 24..28;
    pub const CRC: Field = 28..32;
}

const _: () = assert!(field::CRC.end == RECORD_LEN);
const _: () = assert!(RECORD_LEN.is_multiple_of(4));

const CRC32: crc::Crc<u32, crc::NoTable> =
    crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC (the zlib CRC) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// What happened to the last update that left the trial state (reported by the next image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    None = 0,
    /// The pending image reached the broker and became the active one.
    Confirmed = 1,
    /// The pending image used up its trial boots; the active image runs again.
    RolledBack = 2,
}

impl Outcome {
    const fn from_u8(b: u8) -> Option<Outcome> {
        match b {
            0 => Some(Outcome::None),
            1 => Some(Outcome::Confirmed),
            2 => Some(Outcome::RolledBack),
            _ => None,
        }
    }
}

/// One boot state record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootState {
    /// Increases by one with every record written; the valid copy with the higher one wins.
    pub seq: u32,
    /// The confirmed slot: the one that runs when nothing is pending, and the fallback.
    pub active: Slot,
    /// A verified image waiting for (or in) its trial.
    pub pending: Option<Slot>,
    /// Trial boots the loader has started for `pending`.
    pub trial_boots: u8,
    /// Anti-rollback floor: the security counter of the last confirmed image (never lowered).
    pub floor: u32,
    /// The pending image's security counter (becomes the floor when it is confirmed).
    pub pending_counter: u32,
    /// The last finished trial, for the status report.
    pub outcome: Outcome,
    /// The bundle id `outcome` is about.
    pub outcome_bundle: u32,
}

impl BootState {
    /// The state of a freshly flashed device (no record yet): slot A, nothing pending, floor 0.
    pub const FACTORY: BootState = BootState {
        seq: 0,
        active: Slot::A,
        pending: None,
        trial_boots: 0,
        floor: 0,
        pending_counter: 0,
        outcome: Outcome::None,
        outcome_bundle: 0,
    };

    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[field::MAGIC].copy_from_slice(&MAGIC);
        b[field::FORMAT.start] = FORMAT;
        b[field::ACTIVE.start] = self.active as u8;
        b[field::PENDING.start] = self.pending.map_or(0xFF, |s| s as u8);
        b[field::TRIAL_BOOTS.start] = self.trial_boots;
        b[field::SEQ].copy_from_slice(&self.seq.to_le_bytes());
        b[field::FLOOR].copy_from_slice(&self.floor.to_le_bytes());
        b[field::PENDING_COUNTER].copy_from_slice(&self.pending_counter.to_le_bytes());
        b[field::OUTCOME.start] = self.outcome as u8;
        b[field::OUTCOME_BUNDLE].copy_from_slice(&self.outcome_bundle.to_le_bytes());
        let crc = crc32(&b[..field::CRC.start]);
        b[field::CRC].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// A record, if `b` holds a whole, consistent one (magic, format, CRC, field values).
    pub fn parse(b: &[u8]) -> Option<BootState> {
        let b = b.get(..RECORD_LEN)?;
        let u32_at = |f: field::Field| {
            let mut a = [0; 4];
            a.copy_from_slice(&b[f]);
            u32::from_le_bytes(a)
        };
        if b[field::MAGIC] != MAGIC || b[field::FORMAT.start] != FORMAT {
            return None;
        }
        if crc32(&b[..field::CRC.start]) != u32_at(field::CRC) {
            return None;
        }
        let active = Slot::from_u8(b[field::ACTIVE.start])?;
        let pending = match b[field::PENDING.start] {
            0xFF => None,
            p => Some(Slot::from_u8(p).filter(|p| *p != active)?),
        };
        let trial_boots = b[field::TRIAL_BOOTS.start];
        if trial_boots > MAX_TRIAL_BOOTS || (pending.is_none() && trial_boots != 0) {
            return None;
        }
        Some(BootState {
            seq: u32_at(field::SEQ),
            active,
            pending,
            trial_boots,
            floor: u32_at(field::FLOOR),
            pending_counter: u32_at(field::PENDING_COUNTER),
            outcome: Outcome::from_u8(b[field::OUTCOME.start])?,
            outcome_bundle: u32_at(field::OUTCOME_BUNDLE),
        })
    }

    /// The slot the image running now was loaded from (the loader boots `pending` while it has
    /// trial boots; see [`super::boot::decide`]).
    pub fn running(&self) -> Slot {
        match self.pending {
            Some(p) if self.trial_boots > 0 => p,
            _ => self.active,
        }
    }

    /// The slot a new download may use: never the active one (the fallback), and none while an
    /// image is pending.
    pub fn download_slot(&self) -> Option<Slot> {
        match self.pending {
            Some(_) => None,
            None => Some(self.active.other()),
        }
    }
}

/// Where the current record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub state: BootState,
    /// Which copy holds it (`None`: no valid copy, the factory state).
    pub copy: Option<usize>,
}

/// Reads both copies and returns the valid one with the higher sequence number, else the
/// factory state. A read error counts as an invalid copy.
pub fn read<F: ReadNorFlash>(flash: &mut F, layout: &Layout) -> Stored {
    let mut best: Option<(BootState, usize)> = None;
    for (i, addr) in layout.state.iter().enumerate() {
        let mut b = [0u8; RECORD_LEN];
        if flash.read(*addr, &mut b).is_err() {
            continue;
        }
        if let Some(s) = BootState::parse(&b) {
            if best.is_none_or(|(cur, _)| s.seq > cur.seq) {
                best = Some((s, i));
            }
        }
    }
    match best {
        Some((state, copy)) => Stored {
            state,
            copy: Some(copy),
        },
        None => Stored {
            state: BootState::FACTORY,
            copy: None,
        },
    }
}

/// Writes `next` (its `seq` is set to the stored one plus one) into the copy that does not hold
/// the current record: erase, then one write. Returns the record as stored.
pub fn write<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    current: &Stored,
    mut next: BootState,
) -> Result<Stored, F::Error> {
    next.seq = current.state.seq.wrapping_add(1);
    let copy = match current.copy {
        Some(c) => 1 - c,
        None => 0,
    };
    let addr = layout.state[copy];
    flash.erase(addr, addr + SECTOR)?;
    flash.write(addr, &next.to_bytes())?;
    Ok(Stored {
        state: next,
        copy: Some(copy),
    })
}
