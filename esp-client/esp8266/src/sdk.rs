//! Bindings to the NONOS SDK 3.0.4 (vendor/nonos-sdk/include) and the mask ROM, only what the
//! board layer calls. Every struct mirrored here has its size and field offsets checked against
//! the SDK headers by `firmware/c/sdk_layout.c`, which the build compiles (a mismatch stops it).
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_void};

/// `struct station_config` (user_interface.h). 116 bytes.
#[repr(C)]
pub struct station_config {
    pub ssid: [u8; 32],
    pub password: [u8; 64],
    pub channel: u8,
    pub bssid_set: u8,
    pub bssid: [u8; 6],
    /// `wifi_fast_scan_threshold_t`: `int8 rssi` then the `AUTH_MODE` enum (4 bytes).
    pub threshold_rssi: i8,
    pub threshold_authmode: u32,
    pub open_and_wep_mode_disable: u8,
    pub all_channel_scan: u8,
}

/// `ETSTimer` (ets_sys.h). 20 bytes; the SDK links armed timers through `next`.
#[repr(C)]
pub struct EtsTimer {
    pub next: *mut EtsTimer,
    pub expire: u32,
    pub period: u32,
    pub func: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    pub arg: *mut c_void,
}

impl EtsTimer {
    pub const fn new() -> Self {
        EtsTimer {
            next: core::ptr::null_mut(),
            expire: 0,
            period: 0,
            func: None,
            arg: core::ptr::null_mut(),
        }
    }
}

impl Default for EtsTimer {
    fn default() -> Self {
        Self::new()
    }
}

/// `partition_item_t` (user_interface.h). 12 bytes.
#[repr(C)]
pub struct partition_item_t {
    /// `partition_type_t`.
    pub kind: u32,
    pub addr: u32,
    pub size: u32,
}

/// `partition_type_t` values.
pub const SYSTEM_PARTITION_RF_CAL: u32 = 4;
pub const SYSTEM_PARTITION_PHY_DATA: u32 = 5;
pub const SYSTEM_PARTITION_SYSTEM_PARAMETER: u32 = 6;
/// `flash_size_map`: 4 MiB, 1024 KiB + 1024 KiB (`FLASH_SIZE_32M_MAP_1024_1024`).
pub const FLASH_SIZE_32M_MAP_1024_1024: u32 = 6;

/// `system_update_cpu_freq` value (`SYS_CPU_160MHZ`).
pub const SYS_CPU_160MHZ: u8 = 160;

/// `wifi_set_opmode` value.
pub const STATION_MODE: u8 = 1;

/// `wifi_station_get_connect_status` values (`STATION_IDLE` .. `STATION_GOT_IP`).
pub const STATION_IDLE: u8 = 0;
pub const STATION_CONNECTING: u8 = 1;
pub const STATION_WRONG_PASSWORD: u8 = 2;
pub const STATION_NO_AP_FOUND: u8 = 3;
pub const STATION_CONNECT_FAIL: u8 = 4;
pub const STATION_GOT_IP: u8 = 5;

/// `SpiFlashOpResult`: 0 is `SPI_FLASH_RESULT_OK`.
pub const SPI_FLASH_RESULT_OK: u32 = 0;

extern "C" {
    // user_interface.h
    pub fn system_get_time() -> u32;
    pub fn system_restart();
    pub fn system_soft_wdt_feed();
    pub fn system_get_free_heap_size() -> u32;
    pub fn system_update_cpu_freq(freq: u8) -> bool;
    pub fn system_partition_table_regist(
        table: *const partition_item_t,
        num: u32,
        map: u32,
    ) -> bool;
    pub fn system_rtc_mem_read(src_block: u8, dst: *mut c_void, len: u16) -> bool;
    pub fn wifi_set_opmode(mode: u8) -> bool;
    pub fn wifi_station_set_config_current(config: *mut station_config) -> bool;
    pub fn wifi_station_set_auto_connect(set: u8) -> bool;
    pub fn wifi_station_set_reconnect_policy(set: bool) -> bool;
    pub fn wifi_station_connect() -> bool;
    pub fn wifi_station_get_connect_status() -> u8;

    // sntp.h
    pub fn sntp_setservername(idx: u8, server: *mut c_char);
    pub fn sntp_set_timezone(tz: i8) -> bool;
    pub fn sntp_init();
    pub fn sntp_get_current_timestamp() -> u32;

    // spi_flash.h
    pub fn spi_flash_read(src: u32, dst: *mut u32, size: u32) -> u32;
    pub fn spi_flash_write(dst: u32, src: *const u32, size: u32) -> u32;
    pub fn spi_flash_erase_sector(sector: u16) -> u32;

    // osapi.h (os_timer_* are macros over these)
    pub fn ets_timer_setfn(
        t: *mut EtsTimer,
        f: unsafe extern "C" fn(arg: *mut c_void),
        arg: *mut c_void,
    );
    pub fn ets_timer_arm_new(t: *mut EtsTimer, time: u32, repeat: bool, is_ms: bool);
    pub fn ets_timer_disarm(t: *mut EtsTimer);
    pub fn os_random() -> u32;

    pub fn os_printf_plus(format: *const c_char, ...) -> i32;

    // mask ROM (eagle.rom.addr.v6.ld)
    pub fn ets_delay_us(us: u32);
}
