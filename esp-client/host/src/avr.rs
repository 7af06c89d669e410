//! The AVR served in-process: the real slave protocol engine (`avr-slave`) behind an
//! `embedded-hal` `SpiDevice`, so the host device talks to it through the real master driver
//! (`esp_client::avr_link`) exactly as the ESP8266 does over the wire. Only the silicon is
//! simulated: pin latches and modes, and ADC inputs that follow a slow triangle wave so that
//! telemetry visibly changes.

use core::convert::Infallible;
use std::cell::RefCell;
use std::rc::Rc;

use avr_slave::engine::{Board, Engine};
use avr_slave::link::Link;
use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};
use esp_client::avr_io::AvrIo;
use esp_client::avr_link::AvrLink;
use wire_format::spi_link::{AdcChannel, Mcu, Pin, PinMode, ADC_MAX, MAX_RESP_FRAME, PORT_COUNT};

/// The simulated ATmega168's pins and ADC.
#[derive(Debug, Default)]
pub struct SimChip {
    /// DDR: 1 = output.
    pub ddr: [u8; PORT_COUNT],
    /// PORT: output latch, or pull-up for inputs.
    pub latch: [u8; PORT_COUNT],
    /// Levels driven onto input pins from outside (all low unless a test sets them).
    pub external: [u8; PORT_COUNT],
    conversions: u32,
}

impl Board for SimChip {
    fn set_mode(&mut self, pin: Pin, mode: PinMode) {
        let (p, m) = (pin.port() as usize, pin.mask());
        match mode {
            PinMode::Output => self.ddr[p] |= m,
            PinMode::Input => {
                self.ddr[p] &= !m;
                self.latch[p] &= !m;
            }
            PinMode::InputPullUp => {
                self.ddr[p] &= !m;
                self.latch[p] |= m;
            }
        }
    }
    fn write(&mut self, pin: Pin, high: bool) {
        let (p, m) = (pin.port() as usize, pin.mask());
        if high {
            self.latch[p] |= m;
        } else {
            self.latch[p] &= !m;
        }
    }
    fn read(&mut self, pin: Pin) -> bool {
        self.read_ports()[pin.port() as usize] & pin.mask() != 0
    }
    fn read_ports(&mut self) -> [u8; PORT_COUNT] {
        // PINx: outputs read their latch; inputs read the outside level, or high with pull-up.
        let mut pins = [0; PORT_COUNT];
        for (p, pin) in pins.iter_mut().enumerate() {
            let pulled = self.latch[p] & !self.ddr[p];
            *pin = (self.latch[p] & self.ddr[p]) | ((self.external[p] | pulled) & !self.ddr[p]);
        }
        pins
    }
    fn read_adc(&mut self, channel: AdcChannel) -> u16 {
        self.conversions = self.conversions.wrapping_add(1);
        let period = 2 * u32::from(ADC_MAX);
        let phase = (self.conversions / 8 * 37 + u32::from(channel.number()) * 256) % period;
        (if phase > u32::from(ADC_MAX) {
            period - phase
        } else {
            phase
        }) as u16
    }
    fn set_pwm(&mut self, pin: Pin, duty: u8) {
        self.set_mode(pin, PinMode::Output);
        self.write(pin, duty >= 128);
    }
}

/// The slave, in-process: each byte goes through the slave's interrupt handler
/// (`Link::on_byte`) and main loop (`Engine::handle`), in the order the firmware runs them.
pub struct Slave {
    link: Link,
    engine: Engine,
    pub chip: SimChip,
    /// What the slave loaded into its data register for the next transfer.
    next_miso: u8,
}

impl Slave {
    pub fn new() -> Self {
        Slave {
            link: Link::default(),
            engine: Engine::new(Mcu::Atmega168, 0),
            chip: SimChip::default(),
            next_miso: 0,
        }
    }

    /// A slave reset: link state and handshake are lost (the master must say Hello again), the
    /// pins go back to inputs.
    pub fn reset(&mut self) {
        *self = Slave::new();
    }

    fn byte(&mut self, mosi: u8) -> u8 {
        let miso = self.next_miso;
        self.next_miso = self.link.on_byte(mosi);
        if let Some(frame) = self.link.request() {
            let mut out = [0u8; MAX_RESP_FRAME];
            let n = self.engine.handle(&frame, &mut self.chip, &mut out);
            self.link.respond(&out, n);
        }
        miso
    }
}

impl Default for Slave {
    fn default() -> Self {
        Self::new()
    }
}

/// The master's end of the bus to the in-process [`Slave`] (shared so the host can show pins).
pub struct InProcessSpi(pub Rc<RefCell<Slave>>);

impl ErrorType for InProcessSpi {
    type Error = Infallible;
}

impl SpiDevice for InProcessSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let mut slave = self.0.borrow_mut();
        for op in ops {
            match op {
                Operation::Read(buf) => buf.iter_mut().for_each(|b| *b = slave.byte(0)),
                Operation::Write(buf) => buf.iter().for_each(|&b| {
                    slave.byte(b);
                }),
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let out = slave.byte(write.get(i).copied().unwrap_or(0));
                        if let Some(r) = read.get_mut(i) {
                            *r = out;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => buf.iter_mut().for_each(|b| *b = slave.byte(*b)),
                Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

/// In-process, the slave answers within the same call: the inter-byte gaps the driver asks for
/// protect a real AVR's interrupt and are not needed here.
pub struct NoDelay;

impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

/// The host device's AVR: master driver + in-process slave.
pub type HostAvr = AvrIo<InProcessSpi, NoDelay>;

/// The AVR link and a handle on the slave behind it.
pub fn host_avr() -> (HostAvr, Rc<RefCell<Slave>>) {
    let slave = Rc::new(RefCell::new(Slave::new()));
    (
        AvrIo::new(AvrLink::new(InProcessSpi(slave.clone()), NoDelay)),
        slave,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use esp_client::board::{AvrError, AvrLink as _};

    #[test]
    fn the_master_driver_drives_the_real_engine() {
        let (mut avr, slave) = host_avr();
        avr.set_pin(9, true).unwrap(); // PC1
        let ports = avr.read_ports().unwrap();
        assert_eq!(ports, [0, 0b10, 0]);
        assert_eq!(slave.borrow().chip.latch, [0, 0b10, 0]);
        assert_eq!(slave.borrow().chip.ddr, [0, 0b10, 0]);
        avr.set_pin(9, false).unwrap();
        assert_eq!(avr.read_ports().unwrap(), [0, 0, 0]);
        let v = avr.read_adc(3).unwrap();
        assert!(v <= ADC_MAX);
        // PB2 is the link's own /SS: the driver refuses it before any byte goes out.
        assert_eq!(avr.set_pin(2, true), Err(AvrError::Refused(4)));
        assert_eq!(avr.read_adc(8), Err(AvrError::Refused(5)));
    }

    #[test]
    fn a_slave_reset_is_healed_by_a_new_hello() {
        let (mut avr, slave) = host_avr();
        avr.set_pin(16, true).unwrap(); // PD0
        slave.borrow_mut().reset();
        // The slave answers NotReady, the adapter says Hello again and retries.
        assert_eq!(avr.read_ports().unwrap(), [0, 0, 0]);
        avr.set_pin(16, true).unwrap();
        assert_eq!(avr.read_ports().unwrap(), [0, 0, 1]);
    }
}
