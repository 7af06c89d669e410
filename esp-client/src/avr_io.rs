//! Plugs the SPI master driver (`avr_link`) into the core's [`board::AvrLink`] trait: opens the
//! link with `Hello` on first use and again after the slave reset (it answers `NotReady` then),
//! makes a pin an output before driving it, and maps driver errors to [`AvrError`].

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::SpiDevice;
use wire_format::spi_link::{AdcChannel, ErrorCode, Pin, PinMode};

use crate::avr_link::{self, Error};
use crate::board::{self, AvrError};

/// The ATmega behind the SPI master driver.
pub struct AvrIo<SPI, D> {
    link: avr_link::AvrLink<SPI, D>,
    open: bool,
}

fn map<E>(e: Error<E>) -> AvrError {
    match e {
        Error::NoResponse => AvrError::NoResponse,
        Error::Slave(code) => AvrError::Refused(code as u8),
        Error::Spi(_) | Error::Frame(_) | Error::Incompatible { .. } => AvrError::Link,
    }
}

impl<SPI: SpiDevice, D: DelayNs> AvrIo<SPI, D> {
    pub fn new(link: avr_link::AvrLink<SPI, D>) -> Self {
        AvrIo { link, open: false }
    }

    pub fn link(&mut self) -> &mut avr_link::AvrLink<SPI, D> {
        &mut self.link
    }

    /// Runs `op`, opening the link first if needed and once more if the slave was reset.
    fn with_link<T>(
        &mut self,
        mut op: impl FnMut(&mut avr_link::AvrLink<SPI, D>) -> Result<T, Error<SPI::Error>>,
    ) -> Result<T, AvrError> {
        for _ in 0..2 {
            if !self.open {
                self.link.hello().map_err(map)?;
                self.open = true;
            }
            match op(&mut self.link) {
                Err(Error::Slave(ErrorCode::NotReady)) => self.open = false,
                other => return other.map_err(map),
            }
        }
        Err(AvrError::Refused(ErrorCode::NotReady as u8))
    }
}

impl<SPI: SpiDevice, D: DelayNs> board::AvrLink for AvrIo<SPI, D> {
    fn set_pin(&mut self, pin: u8, high: bool) -> Result<(), AvrError> {
        let pin = Pin::new(pin).ok_or(AvrError::Refused(ErrorCode::BadPin as u8))?;
        self.with_link(|l| {
            l.set_pin_mode(pin, PinMode::Output)?;
            l.write_pin(pin, high)
        })
    }

    fn read_ports(&mut self) -> Result<[u8; 3], AvrError> {
        self.with_link(|l| l.read_all())
    }

    fn read_adc(&mut self, channel: u8) -> Result<u16, AvrError> {
        let ch = AdcChannel::new(channel).ok_or(AvrError::Refused(ErrorCode::BadChannel as u8))?;
        self.with_link(|l| l.read_adc(ch))
    }
}
