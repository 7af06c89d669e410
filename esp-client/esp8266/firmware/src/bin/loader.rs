//! The second-stage loader at flash 0x0: the ROM loads it into the top of IRAM (0x4010C000,
//! clear of where an application loads) and DRAM above the application's, and jumps here.
//! It runs the OTA boot decision (esp-client `ota::boot`: a pending image gets its trial boots,
//! counted in flash before the jump, then a rollback), checks the image in the chosen slot
//! (esp8266_board::image: headers, bounds, CRC-32), copies its IRAM/DRAM segments with the
//! ROM's SPIRead, checks their XOR checksum, leaves the
//! slot in RTC memory for the application's Cache_Read_Enable_New (which maps that slot's
//! 1 MiB window when the SDK starts) and jumps to the image's entry. No statics, no .bss: it
//! only uses the stack the ROM left it.
#![no_std]
#![no_main]

use embedded_storage::nor_flash::ReadNorFlash;
use esp8266_board::image::{self, AppImage, ImageError};
use esp8266_board::layout;
use esp8266_board::rom::{self, say, say_hex, RomFlash};
use esp_client::ota::{BootKind, Slot};

extern "C" {
    /// Calls the application's entry (c/loader_rt.c; in the QEMU run, c/qemu_loader.c reports
    /// instead).
    fn loader_jump(entry: u32) -> !;
    /// Stops for good (the watchdog resets the chip; in QEMU: exit code 2).
    fn loader_halt() -> !;
}

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
        if !s.addr.is_multiple_of(4)
            || !s.len.is_multiple_of(4)
            || !(base + s.offset).is_multiple_of(4)
        {
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
    let decision = esp_client::ota::boot(&mut RomFlash, &layout::OTA);
    say(b"loader: boot state: slot ");
    say(NAMES[decision.slot.index()]);
    match decision.kind {
        BootKind::Normal => say(b" (confirmed)\r\n"),
        BootKind::Trial { attempt } => {
            say(b" on trial, boot ");
            say(&[b'0' + attempt]);
            say(b" of 3\r\n");
        }
        BootKind::RolledBack => say(b" (update rolled back)\r\n"),
    }
    // The chosen slot; if its image is unusable, the other one (a pending image that does not
    // check out has used up a trial boot already, and the confirmed one is still there).
    let first = decision.slot;
    for i in [first.index(), Slot::other(first).index()] {
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
                unsafe { loader_jump(img.entry) }
            }
            Err(e) => {
                say_error(e);
                say(b"\r\n");
            }
        }
    }
    say(b"loader: no bootable image; flash one (docs/esp8266.md)\r\n");
    // SAFETY: stops.
    unsafe { loader_halt() }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    say(b"loader: panic\r\n");
    // SAFETY: stops.
    unsafe { loader_halt() }
}
