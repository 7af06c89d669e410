//! The mask ROM's SPI flash functions (addresses in vendor/nonos-sdk/ld/eagle.rom.addr.v6.ld),
//! for the loader: it runs before the SDK and with the flash cache off.

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

use crate::layout;

extern "C" {
    fn SPIRead(addr: u32, dst: *mut u32, len: u32) -> u32;
    fn SPIWrite(addr: u32, src: *const u32, len: u32) -> u32;
    fn SPIEraseSector(sector: u32) -> u32;
    fn uart_tx_one_char(c: u8) -> u32;
}

/// Reads `len` bytes (a multiple of 4) of flash at `addr` (4-aligned) straight to `dst`, which
/// may be IRAM (only written a word at a time).
///
/// # Safety
/// `dst` must be valid for `len` bytes and 4-aligned.
pub unsafe fn read_to(addr: u32, dst: *mut u32, len: u32) -> Result<(), ()> {
    // SAFETY: the caller's promise.
    match unsafe { SPIRead(addr, dst, len) } {
        0 => Ok(()),
        _ => Err(()),
    }
}

/// Prints bytes on UART0 (the ROM's baud rate, 74880 with a 26 MHz crystal).
pub fn say(s: &[u8]) {
    for &c in s {
        // SAFETY: ROM call.
        unsafe { uart_tx_one_char(c) };
    }
}

/// Prints `v` as 0x and eight hex digits.
pub fn say_hex(v: u32) {
    let mut b = *b"0x00000000";
    for i in 0..8 {
        let d = (v >> (28 - 4 * i)) & 15;
        b[2 + i] = if d < 10 {
            b'0' + d as u8
        } else {
            b'a' + d as u8 - 10
        };
    }
    say(&b);
}

/// The whole flash chip through the ROM, any alignment for reads (via a bounce buffer).
pub struct RomFlash;

impl ErrorType for RomFlash {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for RomFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let mut words = [0u32; 16];
        let mut done = 0usize;
        while done < bytes.len() {
            let addr = offset + done as u32;
            let skew = (addr % 4) as usize;
            let n = (bytes.len() - done).min(64 - skew);
            let len = (skew + n).div_ceil(4) * 4;
            // SAFETY: `words` is 64 bytes, aligned, and len <= 64.
            unsafe { read_to(addr - skew as u32, words.as_mut_ptr(), len as u32) }
                .map_err(|_| NorFlashErrorKind::Other)?;
            for i in 0..n {
                let b = skew + i;
                bytes[done + i] = (words[b / 4] >> (8 * (b % 4))) as u8;
            }
            done += n;
        }
        Ok(())
    }
    fn capacity(&self) -> usize {
        layout::FLASH_SIZE as usize
    }
}

impl NorFlash for RomFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = layout::SECTOR as usize;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if from % layout::SECTOR != 0 || to % layout::SECTOR != 0 {
            return Err(NorFlashErrorKind::NotAligned);
        }
        for s in from / layout::SECTOR..to / layout::SECTOR {
            // SAFETY: ROM call.
            if unsafe { SPIEraseSector(s) } != 0 {
                return Err(NorFlashErrorKind::Other);
            }
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if offset % 4 != 0 || bytes.len() % 4 != 0 {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let mut words = [0u32; 16];
        for (i, c) in bytes.chunks(64).enumerate() {
            for (w, b) in words.iter_mut().zip(c.chunks(4)) {
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            // SAFETY: ROM call; `words` holds c.len() bytes.
            if unsafe { SPIWrite(offset + 64 * i as u32, words.as_ptr(), c.len() as u32) } != 0 {
                return Err(NorFlashErrorKind::Other);
            }
        }
        Ok(())
    }
}
