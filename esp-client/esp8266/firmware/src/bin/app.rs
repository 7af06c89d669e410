//! The ESP8266 application: the esp-client core on the NONOS SDK. The SDK calls `user_pre_init`
//! (partition table) and `user_init`; from then on an SDK timer polls the core on the SDK's own
//! stack, re-armed for the deadline `Device::poll` returns (at most a second later, so the
//! watchdog is fed and the 32-bit microsecond clock never wraps unseen). Nothing blocks.
#![no_std]
#![no_main]

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::MaybeUninit;

use esp8266_board::chip::{log_line, EspBoard};
use esp8266_board::layout;
use esp8266_board::sdk;
#[cfg(feature = "tls")]
use esp8266_board::transport::tls::EspTls as Net;
#[cfg(not(feature = "tls"))]
use esp8266_board::transport::Unlinked as Net;
use esp_client::machine::Device;
use esp_client::settings::Settings;

/// A value only the SDK's single thread of callbacks touches.
struct Global<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: the NONOS SDK runs every callback on one thread, one at a time (no preemption).
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    const fn new() -> Self {
        Global(UnsafeCell::new(MaybeUninit::uninit()))
    }
    fn ptr(&self) -> *mut T {
        self.0.get().cast()
    }
}

type Board = EspBoard<Net>;

static DEVICE: Global<Device> = Global::new();
static BOARD: Global<Board> = Global::new();
static TIMER: Global<sdk::EtsTimer> = Global::new();

/// Firmware build time (seconds since 1970, from build.sh): the lowest the TLS time floor gets.
const BUILD_UNIX: u64 = parse_u64(env!("ESP8266_BUILD_UNIX"));

const fn parse_u64(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut v = 0u64;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "ESP8266_BUILD_UNIX is not a number");
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v
}

/// The SDK's partition table: RF calibration, PHY init data, system parameters, where
/// docs/device-config.md puts them. Map 6: 4 MiB as 1024 KiB + 1024 KiB, as the loader's
/// header says (esptool --flash-size 4MB-c1).
static PARTITIONS: [sdk::partition_item_t; 3] = [
    sdk::partition_item_t {
        kind: sdk::SYSTEM_PARTITION_RF_CAL,
        addr: layout::RF_CAL_SECTOR,
        size: layout::SECTOR,
    },
    sdk::partition_item_t {
        kind: sdk::SYSTEM_PARTITION_PHY_DATA,
        addr: layout::PHY_DATA,
        size: layout::SECTOR,
    },
    sdk::partition_item_t {
        kind: sdk::SYSTEM_PARTITION_SYSTEM_PARAMETER,
        addr: layout::SYSTEM_PARAMETER,
        size: 3 * layout::SECTOR,
    },
];

#[no_mangle]
pub extern "C" fn user_pre_init() {
    // SAFETY: the table is static; the SDK requires this call here.
    let ok = unsafe {
        sdk::system_partition_table_regist(
            PARTITIONS.as_ptr(),
            PARTITIONS.len() as u32,
            sdk::FLASH_SIZE_32M_MAP_1024_1024,
        )
    };
    if !ok {
        log_line(format_args!(
            "esp-client: the SDK refused the partition table (flash size in the loader header must be 4MB-c1)"
        ));
        #[allow(clippy::empty_loop)]
        loop {}
    }
}

#[no_mangle]
pub extern "C" fn user_init() {
    // 160 MHz: the TLS handshake's longest step (a P-256 operation, one SDK callback) takes
    // half as long (docs/esp8266-tls.md, "Time").
    // SAFETY: plain SDK call.
    unsafe { sdk::system_update_cpu_freq(sdk::SYS_CPU_160MHZ) };
    log_line(format_args!(
        "esp-client {} on ESP8266, slot {}, heap free {} bytes",
        env!("CARGO_PKG_VERSION"),
        esp8266_board::chip::running_slot(),
        // SAFETY: plain SDK call.
        unsafe { sdk::system_get_free_heap_size() }
    ));
    let settings = Settings {
        config_offset: 0,
        state_offset: layout::SECTOR,
        build_time_unix: BUILD_UNIX,
        ..Settings::default()
    };
    // SAFETY: user_init runs once, before any timer; the statics are written in place (the SDK
    // stack is too small for a Device on it).
    unsafe {
        DEVICE.ptr().write(Device::new(settings));
        BOARD.ptr().write(EspBoard::new(Net::new()));
        TIMER.ptr().write(sdk::EtsTimer::new());
        sdk::ets_timer_setfn(TIMER.ptr(), poll, core::ptr::null_mut());
        sdk::ets_timer_arm_new(TIMER.ptr(), 1, false, true);
    }
}

/// The superloop's one step, on the SDK's timer.
unsafe extern "C" fn poll(_: *mut c_void) {
    // SAFETY: initialised in user_init before this timer was armed; only this callback uses
    // them afterwards, one call at a time.
    let (dev, board) = unsafe { (&mut *DEVICE.ptr(), &mut *BOARD.ptr()) };
    if board.restarting {
        return;
    }
    use esp_client::board::Board as _;
    let now = board.now_ms();
    let next = dev.poll(now, board);
    if board.restarting {
        return;
    }
    let wait = next.saturating_sub(now).clamp(1, 1000) as u32;
    // SAFETY: the timer is a static, disarmed (one-shot, it just fired).
    unsafe { sdk::ets_timer_arm_new(TIMER.ptr(), wait, false, true) };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log_line(format_args!("esp-client panic: {info}"));
    // The SDK's watchdog resets the chip.
    #[allow(clippy::empty_loop)]
    loop {}
}
