//! HSPI master for the AVR link (docs/avr-slave.md): GPIO14 SCK, GPIO13 MOSI, GPIO12 MISO,
//! GPIO15 /SS driven as a plain GPIO (held low for a whole `SpiDevice` transaction), GPIO4 the
//! AVR's reset MOSFET gate (driven low: AVR running). Mode 0, 1 MHz. Raw registers: the SDK's
//! SPI driver ships as source only, and `esp8266-hal` needs inline assembly (docs/esp8266.md).

use core::convert::Infallible;

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};

use crate::sdk;

const HSPI: usize = 0x6000_0100;
const SPI_CMD: usize = HSPI;
const SPI_CTRL: usize = HSPI + 0x08;
const SPI_CLOCK: usize = HSPI + 0x18;
const SPI_USER: usize = HSPI + 0x1C;
const SPI_USER1: usize = HSPI + 0x20;
const SPI_PIN: usize = HSPI + 0x2C;
const SPI_W0: usize = HSPI + 0x40;

const SPI_USR: u32 = 1 << 18;
/// SPI_USER: full duplex, MOSI phase, MISO phase.
const SPI_DOUTDIN: u32 = 1 << 0;
const SPI_CK_OUT_EDGE: u32 = 1 << 7;
const SPI_USR_MOSI: u32 = 1 << 27;
const SPI_USR_MISO: u32 = 1 << 28;
const SPI_USR_DUMMY: u32 = 1 << 29;
const SPI_USR_ADDR: u32 = 1 << 30;
const SPI_USR_COMMAND: u32 = 1 << 31;
/// SPI_CTRL: MSB first on both lines (bits clear).
const SPI_WR_BIT_ORDER: u32 = 1 << 26;
const SPI_RD_BIT_ORDER: u32 = 1 << 25;
/// SPI_PIN: clock idles high when set (CPOL 1).
const SPI_IDLE_EDGE: u32 = 1 << 29;
/// SPI_CLOCK for 1 MHz from the 80 MHz APB: pre-divider 10 (9), 8 cycles (N 7, H 3, L 7).
const CLOCK_1MHZ: u32 = (9 << 18) | (7 << 12) | (3 << 6) | 7;

const IO_MUX: usize = 0x6000_0800;
/// IO_MUX bit 9: HSPI clock equals the system clock (we divide it instead).
const SPI1_CLK_EQU_SYS_CLK: u32 = 1 << 9;
const MUX_MTDI_GPIO12: usize = IO_MUX + 0x04;
const MUX_MTCK_GPIO13: usize = IO_MUX + 0x08;
const MUX_MTMS_GPIO14: usize = IO_MUX + 0x0C;
const MUX_MTDO_GPIO15: usize = IO_MUX + 0x10;
const MUX_GPIO4: usize = IO_MUX + 0x3C;
/// Function select bits 4, 5 and 8 of an IO_MUX pin register.
const MUX_FUNC_MASK: u32 = 0x13 << 4;

const GPIO_OUT_W1TS: usize = 0x6000_0304;
const GPIO_OUT_W1TC: usize = 0x6000_0308;
const GPIO_ENABLE_W1TS: usize = 0x6000_0310;
const CS_GPIO: u32 = 15;
const AVR_RESET_GPIO: u32 = 4;

fn read(reg: usize) -> u32 {
    // SAFETY: `reg` is one of the peripheral registers above.
    unsafe { core::ptr::read_volatile(reg as *const u32) }
}

fn write(reg: usize, v: u32) {
    // SAFETY: `reg` is one of the peripheral registers above.
    unsafe { core::ptr::write_volatile(reg as *mut u32, v) }
}

/// Selects IO_MUX function `func` (0..=4) for a pin.
fn mux(reg: usize, func: u32) {
    let bits = (((func & 4) << 2) | (func & 3)) << 4;
    write(reg, (read(reg) & !MUX_FUNC_MASK) | bits);
}

/// The HSPI peripheral, owned by the AVR link.
pub struct Hspi(());

impl Hspi {
    /// Configures the pins and the peripheral. Called once (the board owns the only `Hspi`).
    pub fn take() -> Self {
        // GPIO12-14: function 2 (HSPI). GPIO15 and GPIO4: function 3 / 0 (GPIO).
        mux(MUX_MTDI_GPIO12, 2);
        mux(MUX_MTCK_GPIO13, 2);
        mux(MUX_MTMS_GPIO14, 2);
        mux(MUX_MTDO_GPIO15, 3);
        mux(MUX_GPIO4, 0);
        write(GPIO_OUT_W1TS, 1 << CS_GPIO);
        write(GPIO_OUT_W1TC, 1 << AVR_RESET_GPIO);
        write(GPIO_ENABLE_W1TS, (1 << CS_GPIO) | (1 << AVR_RESET_GPIO));
        write(IO_MUX, read(IO_MUX) & !SPI1_CLK_EQU_SYS_CLK);
        write(SPI_CLOCK, CLOCK_1MHZ);
        // Mode 0: clock idles low, data out on the falling edge, sampled on the rising one.
        write(SPI_PIN, read(SPI_PIN) & !SPI_IDLE_EDGE);
        write(
            SPI_CTRL,
            read(SPI_CTRL) & !(SPI_WR_BIT_ORDER | SPI_RD_BIT_ORDER),
        );
        let user =
            read(SPI_USER) & !(SPI_CK_OUT_EDGE | SPI_USR_COMMAND | SPI_USR_ADDR | SPI_USR_DUMMY);
        write(SPI_USER, user | SPI_DOUTDIN | SPI_USR_MOSI | SPI_USR_MISO);
        Hspi(())
    }

    /// One full-duplex exchange of up to 64 bytes through the W0..W15 buffer.
    fn exchange(&mut self, out: &[u8], back: &mut [u8]) {
        let n = out.len().max(back.len());
        debug_assert!(n <= 64);
        for w in 0..n.div_ceil(4) {
            let mut b = [0u8; 4];
            for (i, x) in b.iter_mut().enumerate() {
                *x = out.get(w * 4 + i).copied().unwrap_or(0);
            }
            write(SPI_W0 + 4 * w, u32::from_le_bytes(b));
        }
        let bits = (n as u32 * 8 - 1) & 0x1FF;
        // MOSI bit length in 25:17, MISO bit length in 16:8.
        write(SPI_USER1, (bits << 17) | (bits << 8));
        write(SPI_CMD, SPI_USR);
        while read(SPI_CMD) & SPI_USR != 0 {}
        for (i, x) in back.iter_mut().enumerate() {
            *x = (read(SPI_W0 + 4 * (i / 4)) >> (8 * (i % 4))) as u8;
        }
    }

    fn run(&mut self, op: &mut Operation<'_, u8>) {
        match op {
            Operation::Write(out) => {
                for c in out.chunks(64) {
                    self.exchange(c, &mut []);
                }
            }
            Operation::Read(back) => {
                for c in back.chunks_mut(64) {
                    let zeros = [0u8; 64];
                    let n = c.len();
                    self.exchange(&zeros[..n], c);
                }
            }
            Operation::Transfer(back, out) => {
                let n = back.len().max(out.len());
                let mut at = 0;
                while at < n {
                    let m = (n - at).min(64);
                    let o = out.get(at..(at + m).min(out.len())).unwrap_or(&[]);
                    let end = (at + m).min(back.len());
                    let b = back.get_mut(at.min(end)..end).unwrap_or(&mut []);
                    let mut tmp_out = [0u8; 64];
                    tmp_out[..o.len()].copy_from_slice(o);
                    self.exchange(&tmp_out[..m], b);
                    at += m;
                }
            }
            Operation::TransferInPlace(buf) => {
                for c in buf.chunks_mut(64) {
                    let mut out = [0u8; 64];
                    out[..c.len()].copy_from_slice(c);
                    let n = c.len();
                    self.exchange(&out[..n], c);
                }
            }
            Operation::DelayNs(ns) => EtsDelay.delay_ns(*ns),
        }
    }
}

impl ErrorType for Hspi {
    type Error = Infallible;
}

impl SpiDevice for Hspi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        write(GPIO_OUT_W1TC, 1 << CS_GPIO);
        for op in ops.iter_mut() {
            self.run(op);
        }
        write(GPIO_OUT_W1TS, 1 << CS_GPIO);
        Ok(())
    }
}

/// Busy-wait delays from the ROM's `ets_delay_us`.
pub struct EtsDelay;

impl DelayNs for EtsDelay {
    fn delay_ns(&mut self, ns: u32) {
        // SAFETY: ROM call.
        unsafe { sdk::ets_delay_us(ns.div_ceil(1000)) }
    }
}
