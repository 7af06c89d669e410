//! Where things live in the ESP8266's flash and memory. The slot addresses follow the flash
//! layout of the OTA slot scheme; the device data sectors follow docs/device-config.md.

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
pub const LOADER_MAX: u32 = 0x1000;
/// The slot state sector the loader reads.
pub const SLOT_STATE: u32 = 0x0000_1000;
/// Slot A: the application image, at the same offset in window 0 as slot B in window 1, so one
/// build (irom0 linked at one address) runs from either.
pub const SLOT_A: u32 = 0x0000_2000;
/// Slot B.
pub const SLOT_B: u32 = 0x0010_2000;
/// Bytes a slot may hold: up to the end of its window.
pub const SLOT_SIZE: u32 = WINDOW - (SLOT_A % WINDOW);

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
    assert!(LOADER + LOADER_MAX <= SLOT_STATE && SLOT_STATE + SECTOR <= SLOT_A);
    assert!(SLOT_B + SLOT_SIZE <= CONFIG_SECTOR);
    assert!(APP_IROM0 == 0x4020_2010);
};
