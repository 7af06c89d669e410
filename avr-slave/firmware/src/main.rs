//! ATmega168 / ATmega328P SPI-slave firmware: registers and the SPI interrupt, nothing else.
//!
//! The SPI interrupt feeds bytes to `avr_slave::link::Link` and loads the byte it returns; the main
//! loop executes complete requests with `avr_slave::engine::Engine` over [`AvrBoard`], outside the
//! critical section so that a slow ADC conversion never blocks the link. No formatting code: a
//! panic just stops (panic = "abort" and an empty handler).
#![no_std]
#![no_main]
#![feature(abi_avr_interrupt)]

#[cfg(all(feature = "atmega168", feature = "atmega328p"))]
compile_error!("pick one MCU feature: atmega168 (default) or atmega328p (--no-default-features)");

#[cfg(feature = "atmega168")]
use avr_device::atmega168 as pac;
#[cfg(feature = "atmega328p")]
use avr_device::atmega328p as pac;

use avr_device::interrupt::{self, Mutex};
use avr_slave::engine::{Board, Engine};
use avr_slave::link::Link;
use core::cell::RefCell;
use wire_format::spi_link::{AdcChannel, Mcu, Pin, PinMode, Port, IDLE, MAX_RESP_FRAME};

#[cfg(feature = "atmega168")]
const MCU: Mcu = Mcu::Atmega168;
#[cfg(feature = "atmega328p")]
const MCU: Mcu = Mcu::Atmega328p;

// Register bits (same on both chips; datasheet names).
const SPE: u8 = 1 << 6;
const SPIE: u8 = 1 << 7;
const MISO: u8 = 1 << 4; // PB4
const REFS0: u8 = 1 << 6; // ADC reference = AVCC
const ADEN: u8 = 1 << 7;
const ADSC: u8 = 1 << 6;
const ADPS_64: u8 = 0b110; // 8 MHz / 64 = 125 kHz ADC clock (50..200 kHz for 10 bits)
const FAST_PWM_8: u8 = 0b11; // WGMx1:0 for timers 0 and 2
const WGM10: u8 = 1 << 0;
const WGM12: u8 = 1 << 3;
const CLK_64: u8 = 0b011; // timers 0 and 1: clk/64 -> 8 MHz / 64 / 256 = 488 Hz
const CLK2_64: u8 = 0b100; // timer 2 has its own prescaler table
const COMA1: u8 = 1 << 7; // non-inverting output A
const COMB1: u8 = 1 << 5; // non-inverting output B
const SE: u8 = 1 << 0; // sleep enable, mode idle (SPI keeps running)

static LINK: Mutex<RefCell<Link>> = Mutex::new(RefCell::new(Link::new()));

#[cfg_attr(feature = "atmega168", avr_device::interrupt(atmega168))]
#[cfg_attr(feature = "atmega328p", avr_device::interrupt(atmega328p))]
fn SPI_STC() {
    // SAFETY: SPDR is touched only here after init; reading it also acknowledges the interrupt.
    let spi = unsafe { pac::SPI::steal() };
    let byte = spi.spdr().read().bits();
    let next = interrupt::free(|cs| LINK.borrow(cs).borrow_mut().on_byte(byte));
    // Goes out during the next transfer (the one-byte reply lag).
    spi.spdr().write(|w| unsafe { w.bits(next) });
}

/// The chip's ports, ADC and timers.
struct AvrBoard {
    dp: pac::Peripherals,
}

/// Runs `$body` with `$pin`, `$ddr`, `$out` bound to the port's PINx, DDRx, PORTx registers.
macro_rules! with_port {
    ($dp:expr, $port:expr, |$pin:ident, $ddr:ident, $out:ident| $body:expr) => {
        match $port {
            Port::B => {
                let ($pin, $ddr, $out) = ($dp.PORTB.pinb(), $dp.PORTB.ddrb(), $dp.PORTB.portb());
                $body
            }
            Port::C => {
                let ($pin, $ddr, $out) = ($dp.PORTC.pinc(), $dp.PORTC.ddrc(), $dp.PORTC.portc());
                $body
            }
            Port::D => {
                let ($pin, $ddr, $out) = ($dp.PORTD.pind(), $dp.PORTD.ddrd(), $dp.PORTD.portd());
                $body
            }
        }
    };
}

/// Sets (`on`) or clears the bits of `mask` in a register.
macro_rules! set_bits {
    ($reg:expr, $mask:expr, $on:expr) => {{
        let (mask, on) = ($mask, $on);
        $reg.modify(|r, w| unsafe {
            w.bits(if on {
                r.bits() | mask
            } else {
                r.bits() & !mask
            })
        });
    }};
}

impl AvrBoard {
    fn init(dp: pac::Peripherals) -> AvrBoard {
        // SPI slave, mode 0, MSB first; only MISO is ours to drive.
        dp.PORTB.ddrb().write(|w| unsafe { w.bits(MISO) });
        dp.SPI.spdr().write(|w| unsafe { w.bits(IDLE) });
        dp.SPI.spcr().write(|w| unsafe { w.bits(SPIE | SPE) });
        dp.ADC.adcsra().write(|w| unsafe { w.bits(ADEN | ADPS_64) });
        // All three timers run 8-bit fast PWM; a pin joins its timer only when given a duty.
        dp.TC0.tccr0a().write(|w| unsafe { w.bits(FAST_PWM_8) });
        dp.TC0.tccr0b().write(|w| unsafe { w.bits(CLK_64) });
        dp.TC1.tccr1a().write(|w| unsafe { w.bits(WGM10) });
        dp.TC1.tccr1b().write(|w| unsafe { w.bits(WGM12 | CLK_64) });
        dp.TC2.tccr2a().write(|w| unsafe { w.bits(FAST_PWM_8) });
        dp.TC2.tccr2b().write(|w| unsafe { w.bits(CLK2_64) });
        dp.CPU.smcr().write(|w| unsafe { w.bits(SE) });
        AvrBoard { dp }
    }

    /// Connects (`on`) or disconnects a PWM pin's timer output; no-op for other pins.
    fn pwm_output(&mut self, pin: Pin, on: bool) {
        let dp = &self.dp;
        match (pin.port(), pin.bit()) {
            (Port::B, 1) => set_bits!(dp.TC1.tccr1a(), COMA1, on),
            (Port::D, 3) => set_bits!(dp.TC2.tccr2a(), COMB1, on),
            (Port::D, 5) => set_bits!(dp.TC0.tccr0a(), COMB1, on),
            (Port::D, 6) => set_bits!(dp.TC0.tccr0a(), COMA1, on),
            _ => {}
        }
    }
}

impl Board for AvrBoard {
    fn set_mode(&mut self, pin: Pin, mode: PinMode) {
        self.pwm_output(pin, false);
        let m = pin.mask();
        with_port!(self.dp, pin.port(), |_pin, ddr, out| match mode {
            PinMode::Input => {
                set_bits!(ddr, m, false);
                set_bits!(out, m, false);
            }
            PinMode::InputPullUp => {
                set_bits!(ddr, m, false);
                set_bits!(out, m, true);
            }
            PinMode::Output => set_bits!(ddr, m, true),
        })
    }

    fn write(&mut self, pin: Pin, high: bool) {
        self.pwm_output(pin, false);
        with_port!(self.dp, pin.port(), |_pin, _ddr, out| set_bits!(
            out,
            pin.mask(),
            high
        ))
    }

    fn read(&mut self, pin: Pin) -> bool {
        with_port!(self.dp, pin.port(), |input, _ddr, _out| input.read().bits()
            & pin.mask()
            != 0)
    }

    fn read_ports(&mut self) -> [u8; 3] {
        let dp = &self.dp;
        [
            dp.PORTB.pinb().read().bits(),
            dp.PORTC.pinc().read().bits(),
            dp.PORTD.pind().read().bits(),
        ]
    }

    fn read_adc(&mut self, channel: AdcChannel) -> u16 {
        let adc = &self.dp.ADC;
        adc.admux()
            .write(|w| unsafe { w.bits(REFS0 | channel.number()) });
        set_bits!(adc.adcsra(), ADSC, true);
        // 13 ADC clocks (25 for the first) at 125 kHz: 104..200 µs; the hardware always finishes.
        while adc.adcsra().read().bits() & ADSC != 0 {}
        adc.adc().read().bits()
    }

    fn set_pwm(&mut self, pin: Pin, duty: u8) {
        with_port!(self.dp, pin.port(), |_pin, ddr, _out| set_bits!(
            ddr,
            pin.mask(),
            true
        ));
        // Fast PWM gives a spike at OCR = 0, so 0 and 255 are plain levels.
        if duty == 0 || duty == 255 {
            self.write(pin, duty == 255);
            return;
        }
        let dp = &self.dp;
        match (pin.port(), pin.bit()) {
            (Port::B, 1) => _ = dp.TC1.ocr1a().write(|w| unsafe { w.bits(duty as u16) }),
            (Port::D, 3) => _ = dp.TC2.ocr2b().write(|w| unsafe { w.bits(duty) }),
            (Port::D, 5) => _ = dp.TC0.ocr0b().write(|w| unsafe { w.bits(duty) }),
            (Port::D, 6) => _ = dp.TC0.ocr0a().write(|w| unsafe { w.bits(duty) }),
            _ => {}
        }
        self.pwm_output(pin, true);
    }
}

#[avr_device::entry]
fn main() -> ! {
    // SAFETY: the only `take` in the program; `steal` avoids an unwrap (and its panic path).
    let dp = unsafe { pac::Peripherals::steal() };
    let reset_flags = dp.CPU.mcusr().read().bits();
    dp.CPU.mcusr().write(|w| unsafe { w.bits(0) });
    let mut board = AvrBoard::init(dp);
    let mut engine = Engine::new(MCU, reset_flags);
    // SAFETY: LINK is the only state shared with the interrupt, and it sits behind a Mutex.
    unsafe { interrupt::enable() };
    loop {
        let request = interrupt::free(|cs| LINK.borrow(cs).borrow().request());
        match request {
            Some(frame) => {
                let mut out = [0u8; MAX_RESP_FRAME];
                let n = engine.handle(&frame, &mut board, &mut out);
                interrupt::free(|cs| LINK.borrow(cs).borrow_mut().respond(&out, n));
            }
            // Idle sleep until the next SPI byte; a request that just completed only waits for
            // the master's next poll byte, which wakes us.
            None => avr_device::asm::sleep(),
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
