//! Where things live in the ESP8266's flash and memory. The loader and slot addresses follow
//! the OTA slot scheme's flash layout; the device data sectors follow docs/device-config.md.

/// Flash chip size this layout is for (ESP-12E/F).
pub const FLASH_SIZE: u32 = 4 << 20;
/// One flash sector.
pub const SECTOR: u32 = 4096;
/// The ESP8266 maps one 1 MiB window of flash at [`IROM_MAP`].
pub const WINDOW: u32 = 1 << 20;
/// Where the cache maps the selected flash window.
pub const IROM_MAP: u32 = 0x4020_0000;

/// The second-stage loader (flashed at 0, what the ROM boots).
pub const LOADER: u32 = 0x0000_0000;
/// The loader's image must end before this.
pub const LOADER_MAX: u32 = 0x2000;
/// The OTA flash layout (esp-client `ota::layout`, docs/flash-layout.md): slots, trailers and
/// the boot state copies.
pub const OTA: esp_client::ota::Layout = esp_client::ota::Layout::ESP8266_4M;
/// Slot A: the application image, at the same offset in window 0 as slot B in window 1, so one
/// build (irom0 linked at one address) runs from either.
pub const SLOT_A: u32 = OTA.slots[0].image;
/// Slot B.
pub const SLOT_B: u32 = OTA.slots[1].image;
/// Bytes a slot's image may take (the last sector of the window is the slot's trailer).
pub const SLOT_SIZE: u32 = OTA.slots[0].image_max;
/// The two copies of the boot state, in the gap at the start of window 1.
pub const BOOT_STATE: [u32; 2] = OTA.state;

/// The v2 image's first header (8 bytes) and the irom0 segment header (8 bytes) come before
/// the irom0 code, so the application's irom0 starts here once its slot is mapped.
pub const APP_IROM0: u32 = IROM_MAP + SLOT_A % WINDOW + 16;

/// Device config sector (docs/device-config.md).
pub const CONFIG_SECTOR: u32 = 0x3F_9000;
/// Device state sector (persisted time).
pub const STATE_SECTOR: u32 = 0x3F_A000;
/// RF calibration sector the SDK uses (`SYSTEM_PARTITION_RF_CAL`).
pub const RF_CAL_SECTOR: u32 = 0x3F_B000;
/// PHY init data (`esp_init_data_default_v08.bin`, `SYSTEM_PARTITION_PHY_DATA`).
pub const PHY_DATA: u32 = 0x3F_C000;
/// The SDK's system parameters (three sectors, `SYSTEM_PARTITION_SYSTEM_PARAMETER`).
pub const SYSTEM_PARAMETER: u32 = 0x3F_D000;

/// IRAM the application may load into; above it sits the loader while it runs.
pub const APP_IRAM: core::ops::Range<u32> = 0x4010_0000..0x4010_8000;
/// DRAM the application may load into (.data, .rodata); above it sits the loader's data.
pub const APP_DRAM: core::ops::Range<u32> = 0x3FFE_8000..0x3FFF_8000;
/// End of the SDK heap: heap free at boot is this minus the linker's `_heap_start`.
pub const HEAP_END: u32 = 0x3FFF_C000;

/// Where the loader tells the application which slot it booted: RTC user memory (SDK block 64,
/// kept across resets, written on every boot). Word 0 [`BOOT_INFO_MAGIC`], word 1 the slot
/// (0 = A, 1 = B), word 2 its 1 MiB window. `firmware/c/app_glue.c` reads the window to map it.
pub const BOOT_INFO_RTC: u32 = 0x6000_1100;
pub const BOOT_INFO_MAGIC: u32 = u32::from_le_bytes(*b"ESLB");

// The scheme's invariants, checked when the crate compiles.
const _: () = {
    assert!(
        SLOT_A % WINDOW == SLOT_B % WINDOW,
        "slots at the same window offset"
    );
    assert!(
        SLOT_A / WINDOW != SLOT_B / WINDOW,
        "slots in different windows"
    );
    assert!(LOADER + LOADER_MAX <= SLOT_A);
    assert!(SLOT_A + SLOT_SIZE + SECTOR <= BOOT_STATE[0]);
    assert!(BOOT_STATE[1] + SECTOR <= SLOT_B);
    assert!(SLOT_B + SLOT_SIZE + SECTOR <= 2 * WINDOW);
    assert!(APP_IROM0 == 0x4020_2010);
    assert!(OTA.slots[1].image_max == SLOT_SIZE);
    assert!(SLOT_A + SLOT_SIZE <= OTA.slots[0].trailer);
    assert!(SLOT_B + SLOT_SIZE <= OTA.slots[1].trailer);
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    /// The `write-flash` commands the docs give: (address, file) pairs.
    fn flash_commands(doc: &str) -> Vec<Vec<(u32, String)>> {
        let mut out = Vec::new();
        let mut lines = doc.lines();
        while let Some(l) = lines.next() {
            if !l.contains("write-flash \\") {
                continue;
            }
            let mut pairs = Vec::new();
            for l in lines.by_ref() {
                let mut w = l.split_whitespace();
                let (Some(addr), Some(file)) = (w.next(), w.next()) else {
                    break;
                };
                let addr = u32::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
                pairs.push((addr, String::from(file)));
                if !l.trim_end().ends_with('\\') {
                    break;
                }
            }
            out.push(pairs);
        }
        out
    }

    #[test]
    fn the_flash_commands_in_the_docs_use_these_addresses() {
        for doc in ["../../docs/esp8266.md", "../../README.md"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
            let text = std::fs::read_to_string(&path).unwrap();
            let cmds = flash_commands(&text);
            assert!(!cmds.is_empty(), "{doc} has no write-flash command");
            for pairs in cmds {
                let at = |suffix: &str| {
                    pairs
                        .iter()
                        .find(|(_, f)| f.ends_with(suffix))
                        .map(|(a, _)| *a)
                        .unwrap_or_else(|| panic!("{doc}: no {suffix} in {pairs:?}"))
                };
                assert_eq!(at("loader.bin"), LOADER, "{doc}");
                assert_eq!(at("app.bin"), SLOT_A, "{doc}");
                assert_eq!(at("esp_init_data_default_v08.bin"), PHY_DATA, "{doc}");
                let config = pairs
                    .iter()
                    .find(|(_, f)| f.ends_with(".bin") && !f.starts_with("target/"))
                    .map(|(a, _)| *a);
                assert_eq!(config, Some(CONFIG_SECTOR), "{doc}: the config blob");
            }
        }
    }
}
