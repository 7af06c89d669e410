//! The second-stage loader at flash 0x0: the ROM loads it into the top of IRAM (0x4010C000,
//! clear of where an application loads) and DRAM above the application's, and jumps here.
//! It picks a slot, checks the image there (esp8266_board::image: headers, bounds, CRC-32),
//! copies its IRAM/DRAM segments with the ROM's SPIRead, checks their XOR checksum, leaves the
//! slot in RTC memory for the application's Cache_Read_Enable_New (which maps that slot's
//! 1 MiB window when the SDK starts) and jumps to the image's entry. No statics, no .bss: it
//! only uses the stack the ROM left it.
#![no_std]
#![no_main]

use embedded_storage::nor_flash::ReadNorFlash;
use esp8266_board::image::{self, AppImage, ImageError};
use esp8266_board::layout;
use esp8266_board::rom::{self, say, say_hex, RomFlash};

const SLOTS: [u32; 2] = [layout::SLOT_A, layout::SLOT_B];
const NAMES: [&[u8]; 2] = [b"A", b"B"];

fn slot_reader(base: u32) -> impl FnMut(u32, &mut [u8]) -> Result<(), ()> {
    move |offset, buf| RomFlash.read(base + offset, buf).map_err(|_| ())
}

fn say_error(e: ImageError) {
    say(match e {
        ImageError::Read => b"flash read failed",
        ImageError::NotAnImage(_) => b"no image (erased or foreign)",
        ImageError::BadSecondHeader(_) => b"bad second header",
        ImageError::SegmentCount(_) => b"bad segment count",
        ImageError::SegmentOutside { .. } => b"segment outside application RAM",
        ImageError::TooLong => b"image longer than its slot",
        ImageError::Crc { .. } => b"CRC-32 mismatch",
        ImageError::Checksum { .. } => b"checksum mismatch",
    });
}

/// Headers and CRC of the image in slot `i`.
fn check(i: usize) -> Result<AppImage, ImageError> {
    let base = SLOTS[i];
    let ram = [layout::APP_IRAM, layout::APP_DRAM];
    let img = image::parse(slot_reader(base), layout::SLOT_SIZE, &ram)?;
    image::check_crc(slot_reader(base), &img, &mut [0u8; 256])?;
    Ok(img)
}

/// Copies the segments to RAM and checks what landed there.
fn load(i: usize, img: &AppImage) -> Result<(), ImageError> {
    let base = SLOTS[i];
    let mut sum = image::CHECKSUM_SEED;
    for s in img.segments() {
        if s.addr % 4 != 0 || s.len % 4 != 0 || (base + s.offset) % 4 != 0 {
            return Err(ImageError::SegmentOutside {
                addr: s.addr,
                len: s.len,
            });
        }
        let dst = s.addr as *mut u32;
        // SAFETY: `parse` checked the segment lies inside application RAM, which the loader
        // does not use; aligned as checked above.
        unsafe { rom::read_to(base + s.offset, dst, s.len) }.map_err(|_| ImageError::Read)?;
        // SAFETY: just written, aligned, inside application RAM; read a word at a time.
        let words = unsafe { core::slice::from_raw_parts(dst as *const u32, s.len as usize / 4) };
        sum = image::xor_words(sum, words);
    }
    let mut stored = [0u8; 1];
    RomFlash
        .read(base + img.checksum_at, &mut stored)
        .map_err(|_| ImageError::Read)?;
    if stored[0] != sum {
        return Err(ImageError::Checksum {
            stored: stored[0],
            computed: sum,
        });
    }
    Ok(())
}

#[no_mangle]
pub extern "C" fn loader_main() -> ! {
    say(b"\r\nloader: esp-client second stage\r\n");
    // Slot A first, B if A holds no valid image.
    for i in [0usize, 1] {
        say(b"loader: slot ");
        say(NAMES[i]);
        say(b" at ");
        say_hex(SLOTS[i]);
        say(b": ");
        let r = check(i).and_then(|img| load(i, &img).map(|()| img));
        match r {
            Ok(img) => {
                say(b"ok, entry ");
                say_hex(img.entry);
                say(b"\r\n");
                let info = layout::BOOT_INFO_RTC as *mut u32;
                // SAFETY: RTC user memory; the application reads it (c/app_glue.c).
                unsafe {
                    info.write_volatile(layout::BOOT_INFO_MAGIC);
                    info.add(1).write_volatile(i as u32);
                    info.add(2).write_volatile(SLOTS[i] / layout::WINDOW);
                }
                // SAFETY: the entry of a checked image whose segments are loaded.
                let entry: extern "C" fn() -> ! =
                    unsafe { core::mem::transmute(img.entry as usize) };
                entry();
            }
            Err(e) => {
                say_error(e);
                say(b"\r\n");
            }
        }
    }
    say(b"loader: no bootable image; flash one (docs/esp8266.md)\r\n");
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    say(b"loader: panic\r\n");
    #[allow(clippy::empty_loop)]
    loop {}
}
