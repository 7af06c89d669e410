//! The device's flash as a file: config sector, state sector, then the OTA boot state and the two
//! slots ([`OTA_LAYOUT`], docs/flash-layout.md), with NOR flash rules: erase
//! sets a whole sector to FF, a write can only clear bits and must be aligned, and every change
//! reaches the disk (fsync) before the call returns, like a flash write that completed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Config sector, state sector (docs/device-config.md), then the OTA region: 2 MiB in all.
pub const REGION_LEN: usize = OTA_LAYOUT.end() as usize;
const SECTOR: usize = 4096;
/// The OTA part of the host's flash file: boot state copies and two slots as large as the
/// ESP8266's, right after the config and state sectors.
pub const OTA_LAYOUT: esp_client::ota::Layout = esp_client::ota::Layout::compact(
    2 * SECTOR as u32,
    esp_client::ota::Layout::ESP8266_4M.slots[0].image_max,
);
const _: () = assert!(REGION_LEN == 2 << 20);

/// A flash error, keeping the I/O cause for the log.
#[derive(Debug)]
pub enum FlashError {
    Nor(NorFlashErrorKind),
    Io(io::Error),
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::Nor(k) => *k,
            FlashError::Io(_) => NorFlashErrorKind::Other,
        }
    }
}

pub struct FileFlash {
    file: File,
    image: Vec<u8>,
    /// Bytes of the region the file holds; the rest reads as erased until the first write.
    on_disk: usize,
}

impl FileFlash {
    /// Opens `path`; a shorter file (e.g. the bare config blob from `provision device config`)
    /// reads as padded with erased bytes to the region size. The file itself is padded only by
    /// the first erase or write, so a wrong file (no config in it) is never changed.
    pub fn open(path: &Path) -> io::Result<FileFlash> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        // A device (/dev/zero) or a FIFO would be read forever or block: only regular files.
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let mut image = Vec::with_capacity(REGION_LEN);
        (&file)
            .take(REGION_LEN as u64 + 1)
            .read_to_end(&mut image)?;
        if image.len() > REGION_LEN {
            let len = file.metadata()?.len();
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {len} bytes; a device flash image is at most {REGION_LEN}",
                    path.display(),
                ),
            ));
        }
        let on_disk = image.len();
        image.resize(REGION_LEN, 0xFF);
        Ok(FileFlash {
            file,
            image,
            on_disk,
        })
    }

    fn persist(&mut self, from: usize, to: usize) -> Result<(), FlashError> {
        // A short file grows up to what is written, erased bytes included: writing past its end
        // alone would leave a hole of zeros where the image holds erased bytes. It grows no
        // further than needed (a device that never updates keeps an 8 KiB file).
        if self.on_disk < to {
            self.file
                .write_all_at(&self.image[self.on_disk..to], self.on_disk as u64)
                .map_err(FlashError::Io)?;
            self.on_disk = to;
        }
        self.file
            .write_all_at(&self.image[from..to], from as u64)
            .and_then(|()| self.file.sync_data())
            .map_err(FlashError::Io)
    }

    fn range(&self, offset: u32, len: usize) -> Result<(usize, usize), FlashError> {
        let from = offset as usize;
        match from.checked_add(len) {
            Some(to) if to <= self.image.len() => Ok((from, to)),
            _ => Err(FlashError::Nor(NorFlashErrorKind::OutOfBounds)),
        }
    }
}

impl ErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let (from, to) = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.image[from..to]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.image.len()
    }
}

impl NorFlash for FileFlash {
    /// The ESP8266's SPI flash writes 32-bit words.
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        if !from.is_multiple_of(SECTOR as u32) || !to.is_multiple_of(SECTOR as u32) || to < from {
            return Err(FlashError::Nor(NorFlashErrorKind::NotAligned));
        }
        let (a, b) = self.range(from, (to - from) as usize)?;
        self.image[a..b].fill(0xFF);
        self.persist(a, b)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(FlashError::Nor(NorFlashErrorKind::NotAligned));
        }
        let (a, b) = self.range(offset, bytes.len())?;
        for (d, s) in self.image[a..b].iter_mut().zip(bytes) {
            *d &= *s;
        }
        self.persist(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_erases_and_writes_like_nor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.flash");
        std::fs::write(&path, b"ESPCxx").unwrap();
        let mut f = FileFlash::open(&path).unwrap();
        let mut b = [0u8; 8];
        f.read(0, &mut b).unwrap();
        assert_eq!(&b, b"ESPCxx\xFF\xFF");
        // Reading changes nothing on disk (a wrong file given by mistake stays as it was).
        assert_eq!(std::fs::read(&path).unwrap(), b"ESPCxx");

        // Writing without erasing only clears bits.
        f.write(4096, &[0x0F, 0xF0, 0xFF, 0x00]).unwrap();
        f.write(4096, &[0xF0, 0xFF, 0xFF, 0xFF]).unwrap();
        f.read(4096, &mut b[..4]).unwrap();
        assert_eq!(&b[..4], &[0x00, 0xF0, 0xFF, 0x00]);
        f.erase(4096, 8192).unwrap();
        f.write(4096, b"ESPT").unwrap();
        drop(f);
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(
            disk.len(),
            8192,
            "padded up to what was written, no further"
        );
        assert_eq!(&disk[4096..4100], b"ESPT");
        assert_eq!(&disk[..6], b"ESPCxx");
        assert!(
            disk[6..4096].iter().all(|&x| x == 0xFF),
            "erased, not a hole"
        );

        // A write in the OTA region grows the file up to it, with erased bytes in between.
        let mut f = FileFlash::open(&path).unwrap();
        let slot_b = OTA_LAYOUT.slots[1].image;
        f.write(slot_b, b"SLOT").unwrap();
        drop(f);
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(disk.len(), slot_b as usize + 4);
        assert!(disk[8192..slot_b as usize].iter().all(|&x| x == 0xFF));
        assert_eq!(&disk[slot_b as usize..], b"SLOT");

        let mut f = FileFlash::open(&path).unwrap();
        assert_eq!(
            f.write(4097, b"abcd").unwrap_err().kind(),
            NorFlashErrorKind::NotAligned
        );
        assert_eq!(
            f.erase(100, 4096).unwrap_err().kind(),
            NorFlashErrorKind::NotAligned
        );
        assert_eq!(
            f.read(REGION_LEN as u32 - 2, &mut b).unwrap_err().kind(),
            NorFlashErrorKind::OutOfBounds
        );

        std::fs::write(&path, vec![0u8; REGION_LEN + 1]).unwrap();
        assert!(FileFlash::open(&path).is_err());
    }
}
