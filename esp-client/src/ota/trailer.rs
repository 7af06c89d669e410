//! A slot's trailer sector: the offer the image came from (bundle header and signature) and one
//! progress mark per image sector. Marks only clear bits, so recording progress never needs an
//! erase, and a torn mark reads as "not done" (docs/flash-layout.md, "Slot trailer").

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use wire_format::ota::{Header, Version, HEADER_LEN, IMAGE_OFFSET};

use super::layout::{SlotRegion, SECTOR};
use super::state::crc32;

/// `"SOTR"`, written last when a download starts.
pub const MAGIC: [u8; 4] = *b"SOTR";
/// Byte ranges inside the trailer sector.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const MAGIC: Field = 0..4;
    pub const CRC: Field = 4..8;
    pub const PREFIX: Field = 8..144;
    /// One u32 per image sector from here: `00000000` = sector stored completely.
    pub const MARKS: usize = 256;
}
const _: () = assert!(field::PREFIX.end - field::PREFIX.start == IMAGE_OFFSET);

/// Most image sectors a trailer can track.
pub const MAX_SECTORS: u32 = (SECTOR - field::MARKS as u32) / 4;

/// The stored offer of a slot, if its trailer holds a whole one.
pub fn read_prefix<F: ReadNorFlash>(
    flash: &mut F,
    region: &SlotRegion,
) -> Option<[u8; IMAGE_OFFSET]> {
    let mut head = [0u8; field::PREFIX.end];
    flash.read(region.trailer, &mut head).ok()?;
    if head[field::MAGIC] != MAGIC {
        return None;
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&head[field::CRC]);
    if crc32(&head[field::PREFIX]) != u32::from_le_bytes(crc) {
        return None;
    }
    let mut prefix = [0u8; IMAGE_OFFSET];
    prefix.copy_from_slice(&head[field::PREFIX]);
    Some(prefix)
}

/// The header stored in a slot's trailer (structure checked, not the signature).
pub fn read_header<F: ReadNorFlash>(flash: &mut F, region: &SlotRegion) -> Option<Header> {
    let prefix = read_prefix(flash, region)?;
    Header::parse(&prefix[..HEADER_LEN]).ok()
}

/// The version stored in a slot's trailer, 0.0.0 if there is none.
pub fn read_version<F: ReadNorFlash>(flash: &mut F, region: &SlotRegion) -> Version {
    read_header(flash, region).map_or(
        Version {
            major: 0,
            minor: 0,
            patch: 0,
        },
        |h| h.version,
    )
}

/// Starts a download into `region`: erases the trailer, writes the offer and its CRC, then the
/// magic (so a cut write leaves no magic, i.e. no download).
pub fn begin<F: NorFlash>(
    flash: &mut F,
    region: &SlotRegion,
    prefix: &[u8; IMAGE_OFFSET],
) -> Result<(), F::Error> {
    flash.erase(region.trailer, region.trailer + SECTOR)?;
    let mut body = [0u8; field::PREFIX.end - field::CRC.start];
    body[..4].copy_from_slice(&crc32(prefix).to_le_bytes());
    body[4..].copy_from_slice(prefix);
    flash.write(region.trailer + field::CRC.start as u32, &body)?;
    flash.write(region.trailer, &MAGIC)
}

/// Forgets the download in `region` (the next offer starts from zero).
pub fn discard<F: NorFlash>(flash: &mut F, region: &SlotRegion) -> Result<(), F::Error> {
    flash.erase(region.trailer, region.trailer + SECTOR)
}

/// Number of image sectors stored completely, counted from the first (marks are written in
/// order; the first mark that is not all zero ends the count).
pub fn completed_sectors<F: ReadNorFlash>(
    flash: &mut F,
    region: &SlotRegion,
    sectors: u32,
) -> Result<u32, F::Error> {
    let mut done = 0;
    let mut buf = [0u8; 64];
    while done < sectors.min(MAX_SECTORS) {
        let n = ((sectors.min(MAX_SECTORS) - done) as usize * 4).min(buf.len());
        flash.read(
            region.trailer + field::MARKS as u32 + done * 4,
            &mut buf[..n],
        )?;
        for w in buf[..n].chunks_exact(4) {
            if w != [0, 0, 0, 0] {
                return Ok(done);
            }
            done += 1;
        }
    }
    Ok(done)
}

/// Records that image sector `index` is stored completely.
pub fn mark_sector<F: NorFlash>(
    flash: &mut F,
    region: &SlotRegion,
    index: u32,
) -> Result<(), F::Error> {
    flash.write(region.trailer + field::MARKS as u32 + index * 4, &[0; 4])
}
