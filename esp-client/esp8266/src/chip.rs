//! The core's [`Board`] on the ESP8266 over the NONOS SDK. Every method is a few SDK calls
//! (docs/esp8266.md, "What each board method calls"); nothing blocks, because the SDK runs the
//! WiFi stack only between our callbacks.

use core::ffi::c_char;
use core::fmt::Write;

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use esp_client::avr_io::AvrIo;
use esp_client::avr_link;
use esp_client::board::{Board, NetStatus};
use esp_client::machine::State;

use crate::hspi::{EtsDelay, Hspi};
use crate::layout;
use crate::sdk;

/// The device data region: config sector, then state sector (docs/device-config.md).
pub struct DataFlash;

impl DataFlash {
    const BASE: u32 = layout::CONFIG_SECTOR;
    const LEN: u32 = 2 * layout::SECTOR;

    fn check(offset: u32, len: usize) -> Result<u32, NorFlashErrorKind> {
        let end = offset
            .checked_add(len as u32)
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        if end > Self::LEN {
            return Err(NorFlashErrorKind::OutOfBounds);
        }
        Ok(Self::BASE + offset)
    }
}

impl ErrorType for DataFlash {
    type Error = NorFlashErrorKind;
}

/// Bounce buffer: the SDK reads and writes whole, aligned 32-bit words.
const CHUNK: usize = 64;

impl ReadNorFlash for DataFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let mut addr = Self::check(offset, bytes.len())?;
        let mut done = 0;
        let mut words = [0u32; CHUNK / 4];
        while done < bytes.len() {
            let skew = (addr % 4) as usize;
            let aligned = addr - skew as u32;
            let n = (bytes.len() - done).min(CHUNK - skew);
            let read_len = (skew + n).div_ceil(4) * 4;
            // SAFETY: `words` holds CHUNK bytes >= read_len, aligned for u32.
            let r = unsafe { sdk::spi_flash_read(aligned, words.as_mut_ptr(), read_len as u32) };
            if r != sdk::SPI_FLASH_RESULT_OK {
                return Err(NorFlashErrorKind::Other);
            }
            for i in 0..n {
                let b = skew + i;
                bytes[done + i] = (words[b / 4] >> (8 * (b % 4))) as u8;
            }
            done += n;
            addr += n as u32;
        }
        Ok(())
    }
    fn capacity(&self) -> usize {
        Self::LEN as usize
    }
}

impl NorFlash for DataFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = layout::SECTOR as usize;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if from % layout::SECTOR != 0 || to % layout::SECTOR != 0 || from > to {
            return Err(NorFlashErrorKind::NotAligned);
        }
        Self::check(from, (to - from) as usize)?;
        for sector in (Self::BASE + from) / layout::SECTOR..(Self::BASE + to) / layout::SECTOR {
            // SAFETY: plain SDK call on a sector inside the data region.
            if unsafe { sdk::spi_flash_erase_sector(sector as u16) } != sdk::SPI_FLASH_RESULT_OK {
                return Err(NorFlashErrorKind::Other);
            }
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if offset % 4 != 0 || bytes.len() % 4 != 0 {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let addr = Self::check(offset, bytes.len())?;
        let mut words = [0u32; CHUNK / 4];
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            for (w, b) in words.iter_mut().zip(chunk.chunks(4)) {
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            let at = addr + (i * CHUNK) as u32;
            // SAFETY: `words` holds `chunk.len()` bytes, aligned for u32.
            let r = unsafe { sdk::spi_flash_write(at, words.as_ptr(), chunk.len() as u32) };
            if r != sdk::SPI_FLASH_RESULT_OK {
                return Err(NorFlashErrorKind::Other);
            }
        }
        Ok(())
    }
}

/// `system_get_time()` (µs, wraps after 71.6 minutes) extended to 64-bit milliseconds. Polled
/// at least once a second, so no wrap goes unseen.
struct Clock {
    last_us: u32,
    wraps: u64,
}

impl Clock {
    fn now_ms(&mut self) -> u64 {
        // SAFETY: plain SDK call.
        let us = unsafe { sdk::system_get_time() };
        if us < self.last_us {
            self.wraps += 1;
        }
        self.last_us = us;
        ((self.wraps << 32) | u64::from(us)) / 1000
    }
}

/// The ESP8266 as the core sees it.
pub struct EspBoard<T> {
    transport: T,
    flash: DataFlash,
    avr: AvrIo<Hspi, EtsDelay>,
    clock: Clock,
    /// A WiFi join was started and has not ended yet.
    joining: bool,
    sntp_started: bool,
    /// `reset` was called: the SDK restarts once the current callback returns.
    pub restarting: bool,
}

impl<T> EspBoard<T> {
    /// Takes over the HSPI pins (GPIO12-15) and the AVR reset line for the AVR link.
    pub fn new(transport: T) -> Self {
        EspBoard {
            transport,
            flash: DataFlash,
            avr: AvrIo::new(avr_link::AvrLink::new(Hspi::take(), EtsDelay)),
            clock: Clock {
                last_us: 0,
                wraps: 0,
            },
            joining: false,
            sntp_started: false,
            restarting: false,
        }
    }
}

fn copy_cstr<const N: usize>(dst: &mut [u8; N], s: &str) {
    let n = s.len().min(N);
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// The slot the loader booted, from its record in RTC memory ("?" without one: flashed
/// without the loader).
pub fn running_slot() -> &'static str {
    let rtc = layout::BOOT_INFO_RTC as *const u32;
    // SAFETY: RTC user memory, always readable.
    let (magic, slot) = unsafe { (rtc.read_volatile(), rtc.add(1).read_volatile()) };
    match (magic == layout::BOOT_INFO_MAGIC, slot) {
        (true, 0) => "A",
        (true, 1) => "B",
        _ => "?",
    }
}

/// One log line, NUL-terminated for `os_printf`.
struct Line {
    buf: [u8; 200],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // Keep one byte for the NUL; cut long lines rather than fail.
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Prints one line on UART0 (the SDK's `os_printf`).
pub fn log_line(args: core::fmt::Arguments<'_>) {
    let mut l = Line {
        buf: [0; 200],
        len: 0,
    };
    let _ = l.write_fmt(args);
    l.buf[l.len] = 0;
    // SAFETY: both strings are NUL-terminated; "%s\n" takes one string argument.
    unsafe {
        sdk::os_printf_plus(c"%s\n".as_ptr(), l.buf.as_ptr() as *const c_char);
    }
}

impl<T: esp_client::board::Transport + crate::transport::Diagnostics> Board for EspBoard<T> {
    type Transport = T;
    type Flash = DataFlash;
    type Avr = AvrIo<Hspi, EtsDelay>;

    fn now_ms(&mut self) -> u64 {
        self.clock.now_ms()
    }
    fn transport(&mut self) -> &mut T {
        &mut self.transport
    }
    fn flash(&mut self) -> &mut DataFlash {
        &mut self.flash
    }
    fn avr(&mut self) -> &mut Self::Avr {
        &mut self.avr
    }
    fn random_u32(&mut self) -> u32 {
        // SAFETY: plain SDK call (the hardware RNG).
        unsafe { sdk::os_random() }
    }
    fn network(&mut self, ssid: &str, password: &str) -> NetStatus {
        if !self.joining {
            let mut cfg = sdk::station_config {
                ssid: [0; 32],
                password: [0; 64],
                channel: 0,
                bssid_set: 0,
                bssid: [0; 6],
                threshold_rssi: 0,
                threshold_authmode: 0,
                open_and_wep_mode_disable: 0,
                all_channel_scan: 0,
            };
            copy_cstr(&mut cfg.ssid, ssid);
            copy_cstr(&mut cfg.password, password);
            // SAFETY: plain SDK calls; `cfg` outlives the call that copies it.
            unsafe {
                sdk::wifi_set_opmode(sdk::STATION_MODE);
                sdk::wifi_station_set_auto_connect(0);
                sdk::wifi_station_set_reconnect_policy(true);
                sdk::wifi_station_set_config_current(&mut cfg);
                sdk::wifi_station_connect();
            }
            self.joining = true;
            return NetStatus::Pending;
        }
        // SAFETY: plain SDK call.
        match unsafe { sdk::wifi_station_get_connect_status() } {
            sdk::STATION_GOT_IP => NetStatus::Up,
            sdk::STATION_WRONG_PASSWORD | sdk::STATION_NO_AP_FOUND | sdk::STATION_CONNECT_FAIL => {
                // The next call starts a new attempt.
                self.joining = false;
                NetStatus::Failed
            }
            _ => NetStatus::Pending,
        }
    }
    fn time_source(&mut self) -> Option<u64> {
        if !self.sntp_started {
            self.sntp_started = true;
            static SERVER: &core::ffi::CStr = c"pool.ntp.org";
            // SAFETY: the SDK keeps the server name pointer: a static string. Timezone 0 (the
            // SDK's default is UTC+8) before sntp_init.
            unsafe {
                sdk::sntp_setservername(0, SERVER.as_ptr() as *mut c_char);
                sdk::sntp_set_timezone(0);
                sdk::sntp_init();
            }
        }
        // SAFETY: plain SDK call; 0 until the first answer.
        match unsafe { sdk::sntp_get_current_timestamp() } {
            0 => None,
            t => Some(u64::from(t)),
        }
    }
    fn feed_watchdog(&mut self) {
        // SAFETY: plain SDK call.
        unsafe { sdk::system_soft_wdt_feed() }
    }
    fn reset(&mut self) {
        self.restarting = true;
        // SAFETY: plain SDK call; the restart happens after this callback returns.
        unsafe { sdk::system_restart() }
    }
    fn log(&mut self, line: core::fmt::Arguments<'_>) {
        log_line(line);
    }
    fn transition(&mut self, now_ms: u64, from: &State, to: &State) {
        log_line(format_args!("[{now_ms} ms] {from} => {to}"));
        if to.kind() == esp_client::machine::StateKind::Online {
            // What a board check compares with the build's figures (docs/esp8266.md).
            // SAFETY: plain SDK call.
            let heap = unsafe { sdk::system_get_free_heap_size() };
            match self.transport.tls_stack_use() {
                Some((used, len)) => log_line(format_args!(
                    "esp-client: online, heap free {heap} bytes, TLS stack high water {used} of {len} bytes"
                )),
                None => log_line(format_args!("esp-client: online, heap free {heap} bytes")),
            }
        }
    }
}
