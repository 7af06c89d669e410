//! The application image in a slot, as `esptool --chip esp8266 elf2image --version 2` writes it
//! (the format of Espressif's own second-stage loader and of rboot), and the checks the loader
//! makes before it jumps into one. All integers little endian.
//!
//! ```text
//! 0      EA 04 mode size_freq entry(4)      first header
//! 8      00000000 irom_len(4)  irom0 code    mapped at 0x40200000 + slot % 1 MiB + 16
//! 16+n   E9 count mode size_freq entry(4)   second header, then `count` segments:
//!        addr(4) len(4) data(len)           loaded into IRAM / DRAM by the loader
//!        00.. checksum                      zero padding to a 16-byte boundary, last byte
//!                                           = 0xEF ^ every segment data byte
//!        crc(4)                             CRC-32 of everything before (esptool's variant)
//! ```
//!
//! The loader checks: both magics, the segment count, that every segment lands inside the RAM
//! an application may use (never over the loader itself), that the image fits its slot, the
//! CRC-32 over the whole image (flash corruption, a half-written slot) and, after loading, the
//! XOR checksum of the loaded bytes. Authenticity is not its job: the OTA receiver accepts only
//! signed images (wire-format `ota::Verifier`) before it marks a slot bootable.

use core::ops::Range;

/// First byte of a v2 image.
pub const V2_MAGIC: u8 = 0xEA;
/// First byte of the second (v1-style) header.
pub const V1_MAGIC: u8 = 0xE9;
/// Seed of the XOR checksum.
pub const CHECKSUM_SEED: u8 = 0xEF;
/// At most this many RAM segments (an SDK app has .data, .rodata, .text and maybe .lit4).
pub const MAX_SEGMENTS: usize = 8;

/// Why an image is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Reading flash failed.
    Read,
    /// The first byte is not 0xEA (erased slot: 0xFF).
    NotAnImage(u8),
    /// The second header's magic is not 0xE9.
    BadSecondHeader(u8),
    /// Zero or more than [`MAX_SEGMENTS`] RAM segments.
    SegmentCount(u8),
    /// A segment would land outside the RAM an application may use.
    SegmentOutside { addr: u32, len: u32 },
    /// The image runs past the end of its slot.
    TooLong,
    /// The CRC-32 over the image does not match.
    Crc { stored: u32, computed: u32 },
    /// The XOR checksum of the loaded segments does not match.
    Checksum { stored: u8, computed: u8 },
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ImageError::Read => write!(f, "flash read failed"),
            ImageError::NotAnImage(b) => write!(f, "no image (first byte {b:#04x}, want 0xea)"),
            ImageError::BadSecondHeader(b) => {
                write!(f, "second header magic {b:#04x}, want 0xe9")
            }
            ImageError::SegmentCount(n) => write!(f, "{n} RAM segments (1..={MAX_SEGMENTS})"),
            ImageError::SegmentOutside { addr, len } => write!(
                f,
                "segment of {len} bytes at {addr:#010x} is outside application RAM"
            ),
            ImageError::TooLong => write!(f, "image runs past the end of its slot"),
            ImageError::Crc { stored, computed } => {
                write!(f, "CRC-32 is {computed:#010x}, stored {stored:#010x}")
            }
            ImageError::Checksum { stored, computed } => {
                write!(f, "checksum is {computed:#04x}, stored {stored:#04x}")
            }
        }
    }
}

/// One segment the loader copies to RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Load address.
    pub addr: u32,
    pub len: u32,
    /// Offset of its data from the start of the image.
    pub offset: u32,
}

/// A parsed image header: what to load, where the checksum and CRC are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppImage {
    pub entry: u32,
    pub irom_len: u32,
    pub segments: [Segment; MAX_SEGMENTS],
    pub count: usize,
    /// Offset of the checksum byte.
    pub checksum_at: u32,
    /// Offset of the CRC-32; the image is `crc_at + 4` bytes long.
    pub crc_at: u32,
}

impl AppImage {
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }
    /// Bytes the image takes in its slot, its CRC-32 included.
    pub fn size(&self) -> u32 {
        self.crc_at + 4
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn within(addr: u32, len: u32, r: &Range<u32>) -> bool {
    addr >= r.start && addr.checked_add(len).is_some_and(|end| end <= r.end)
}

/// Reads and checks the headers of the image at the start of a slot of `slot_size` bytes.
/// `read(offset, buf)` reads from the slot. Each RAM segment must lie inside one of `ram`.
pub fn parse<F>(mut read: F, slot_size: u32, ram: &[Range<u32>]) -> Result<AppImage, ImageError>
where
    F: FnMut(u32, &mut [u8]) -> Result<(), ()>,
{
    let mut h = [0u8; 8];
    read(0, &mut h).map_err(|_| ImageError::Read)?;
    if h[0] != V2_MAGIC {
        return Err(ImageError::NotAnImage(h[0]));
    }
    read(8, &mut h).map_err(|_| ImageError::Read)?;
    let irom_len = le32(&h[4..]);
    let mut pos = 16u32
        .checked_add(irom_len)
        .filter(|p| *p < slot_size)
        .ok_or(ImageError::TooLong)?;
    read(pos, &mut h).map_err(|_| ImageError::Read)?;
    if h[0] != V1_MAGIC {
        return Err(ImageError::BadSecondHeader(h[0]));
    }
    let count = h[1];
    if count == 0 || count as usize > MAX_SEGMENTS {
        return Err(ImageError::SegmentCount(count));
    }
    let mut img = AppImage {
        entry: le32(&h[4..]),
        irom_len,
        segments: [Segment::default(); MAX_SEGMENTS],
        count: count as usize,
        checksum_at: 0,
        crc_at: 0,
    };
    pos += 8;
    for s in img.segments.iter_mut().take(count as usize) {
        read(pos, &mut h).map_err(|_| ImageError::Read)?;
        let (addr, len) = (le32(&h), le32(&h[4..]));
        if !ram.iter().any(|r| within(addr, len, r)) {
            return Err(ImageError::SegmentOutside { addr, len });
        }
        *s = Segment {
            addr,
            len,
            offset: pos + 8,
        };
        pos = pos
            .checked_add(8 + len)
            .filter(|p| *p < slot_size)
            .ok_or(ImageError::TooLong)?;
    }
    // Zero padding so that the checksum byte ends a 16-byte block.
    img.checksum_at = pos | 15;
    img.crc_at = img.checksum_at + 1;
    if img.crc_at.checked_add(4).is_none_or(|end| end > slot_size) {
        return Err(ImageError::TooLong);
    }
    Ok(img)
}

/// esptool's `esp8266_crc32`: zlib's CRC-32, then x ^ 0xFFFFFFFF if the top bit is set, else
/// x + 1. Streaming: start from `Crc::new()`, `update` with every chunk.
#[derive(Debug, Clone, Copy)]
pub struct Crc(u32);

/// Nibble table of the reflected CRC-32 polynomial (64 bytes: fits the loader).
const CRC_NIBBLE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Crc {
    pub const fn new() -> Self {
        Crc(0xFFFF_FFFF)
    }
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for &b in data {
            c ^= u32::from(b);
            c = CRC_NIBBLE[(c & 15) as usize] ^ (c >> 4);
            c = CRC_NIBBLE[(c & 15) as usize] ^ (c >> 4);
        }
        self.0 = c;
    }
    pub fn finish(self) -> u32 {
        let crc = !self.0;
        if crc & 0x8000_0000 != 0 {
            crc ^ 0xFFFF_FFFF
        } else {
            crc.wrapping_add(1)
        }
    }
}

impl Default for Crc {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks the CRC-32 over the whole image, reading it in `buf`-sized chunks.
pub fn check_crc<F>(mut read: F, img: &AppImage, buf: &mut [u8]) -> Result<(), ImageError>
where
    F: FnMut(u32, &mut [u8]) -> Result<(), ()>,
{
    let mut crc = Crc::new();
    let mut pos = 0u32;
    while pos < img.crc_at {
        let n = (img.crc_at - pos).min(buf.len() as u32) as usize;
        read(pos, &mut buf[..n]).map_err(|_| ImageError::Read)?;
        crc.update(&buf[..n]);
        pos += n as u32;
    }
    let mut s = [0u8; 4];
    read(img.crc_at, &mut s).map_err(|_| ImageError::Read)?;
    let (stored, computed) = (u32::from_le_bytes(s), crc.finish());
    if stored != computed {
        return Err(ImageError::Crc { stored, computed });
    }
    Ok(())
}

/// XOR of the bytes of 32-bit words (IRAM can only be read a word at a time).
pub fn xor_words(seed: u8, words: &[u32]) -> u8 {
    let w = words.iter().fold(0u32, |a, w| a ^ w);
    seed ^ (w as u8) ^ ((w >> 8) as u8) ^ ((w >> 16) as u8) ^ ((w >> 24) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Writes a v2 image the way esptool's `ESP8266V2FirmwareImage.save` does.
    fn build(irom: &[u8], segs: &[(u32, &[u8])], entry: u32) -> Vec<u8> {
        let mut f = vec![V2_MAGIC, 4, 2, 0x40];
        f.extend(entry.to_le_bytes());
        let mut irom = irom.to_vec();
        while !irom.len().is_multiple_of(16) {
            irom.push(0);
        }
        f.extend(0u32.to_le_bytes());
        f.extend((irom.len() as u32).to_le_bytes());
        f.extend(&irom);
        f.extend([V1_MAGIC, segs.len() as u8, 2, 0x40]);
        f.extend(entry.to_le_bytes());
        let mut sum = CHECKSUM_SEED;
        for (addr, data) in segs {
            f.extend(addr.to_le_bytes());
            f.extend((data.len() as u32).to_le_bytes());
            f.extend(*data);
            sum = data.iter().fold(sum, |a, b| a ^ b);
        }
        while f.len() % 16 != 15 {
            f.push(0);
        }
        f.push(sum);
        let crc = {
            let c = crc32(&f);
            if c & 0x8000_0000 != 0 {
                c ^ 0xFFFF_FFFF
            } else {
                c + 1
            }
        };
        f.extend(crc.to_le_bytes());
        f
    }

    /// zlib's CRC-32 from the `crc` crate, independent of the nibble table.
    fn crc32(data: &[u8]) -> u32 {
        crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(data)
    }

    fn reader(img: &[u8]) -> impl FnMut(u32, &mut [u8]) -> Result<(), ()> + '_ {
        move |o, buf| {
            let s = img.get(o as usize..o as usize + buf.len()).ok_or(())?;
            buf.copy_from_slice(s);
            Ok(())
        }
    }

    const RAM: [Range<u32>; 2] = [0x4010_0000..0x4010_8000, 0x3FFE_8000..0x3FFF_8000];

    fn sample() -> Vec<u8> {
        build(
            &[0xAA; 100],
            &[
                (0x4010_0000, &[1, 2, 3, 4, 5, 6, 7, 8]),
                (0x3FFE_8000, &[9, 10, 11, 12]),
            ],
            0x4010_0004,
        )
    }

    #[test]
    fn a_good_image_parses_and_its_crc_and_checksum_hold() {
        let img = sample();
        let a = parse(reader(&img), 0xFE000, &RAM).unwrap();
        assert_eq!((a.entry, a.irom_len, a.count), (0x4010_0004, 112, 2));
        assert_eq!(a.size() as usize, img.len());
        assert_eq!(a.segments()[1].addr, 0x3FFE_8000);
        let s0 = a.segments()[0];
        assert_eq!(
            &img[s0.offset as usize..(s0.offset + s0.len) as usize],
            &[1, 2, 3, 4, 5, 6, 7, 8]
        );
        check_crc(reader(&img), &a, &mut [0u8; 7]).unwrap();
        let words = [
            u32::from_le_bytes([1, 2, 3, 4]),
            u32::from_le_bytes([5, 6, 7, 8]),
            u32::from_le_bytes([9, 10, 11, 12]),
        ];
        assert_eq!(
            xor_words(CHECKSUM_SEED, &words),
            img[a.checksum_at as usize]
        );
    }

    #[test]
    fn every_flipped_byte_is_caught_by_the_headers_or_the_crc() {
        let img = sample();
        for i in 0..img.len() {
            let mut bad = img.clone();
            bad[i] ^= 0x01;
            let r = parse(reader(&bad), 0xFE000, &RAM)
                .and_then(|a| check_crc(reader(&bad), &a, &mut [0u8; 64]));
            assert!(r.is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        let erased = [0xFFu8; 64];
        assert_eq!(
            parse(reader(&erased), 0xFE000, &RAM),
            Err(ImageError::NotAnImage(0xFF))
        );
        // A segment over the loader's IRAM.
        let img = build(&[0; 16], &[(0x4010_C000, &[0; 4])], 0x4010_C000);
        assert_eq!(
            parse(reader(&img), 0xFE000, &RAM),
            Err(ImageError::SegmentOutside {
                addr: 0x4010_C000,
                len: 4
            })
        );
        // Longer than its slot.
        let img = sample();
        assert_eq!(parse(reader(&img), 64, &RAM), Err(ImageError::TooLong));
        // Truncated read: the flash ends early.
        assert_eq!(
            parse(reader(&img[..20]), 0xFE000, &RAM),
            Err(ImageError::Read)
        );
        assert_eq!(
            ImageError::SegmentOutside {
                addr: 0x4010_C000,
                len: 4
            }
            .to_string(),
            "segment of 4 bytes at 0x4010c000 is outside application RAM"
        );
    }

    use std::string::ToString;
}
