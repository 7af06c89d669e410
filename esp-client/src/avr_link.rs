//! The SPI master side of the link to the ATmega168 IO expander (protocol: docs/spi-link.md).
//!
//! Every byte is its own `SpiDevice` transaction followed by a [`BYTE_GAP_US`] pause: the AVR
//! slave loads its next byte in an interrupt after each transfer, and toggling /SS per byte also
//! re-aligns the slave's bit counter should a clock edge ever be lost. After a request the driver
//! clocks [`POLL`] bytes until the response's start byte shows up, at most [`MAX_POLLS`] of them.
//! Transport faults (garbled answer, silence, a CRC error seen by the slave) trigger the documented
//! resync and one retry; all commands are idempotent, so a retry is safe.

use core::fmt;
use embedded_hal::delay::DelayNs;
use embedded_hal::spi::SpiDevice;
use wire_format::spi_link::{
    response_remaining, AdcChannel, ErrorCode, FrameError, Mcu, Pin, PinMode, Request, Response,
    ResponseFrame, BYTE_GAP_US, MAX_POLLS, MAX_REQ_FRAME, MAX_RESP_FRAME, POLL, PORT_COUNT,
    PROTOCOL_VERSION, RESP_SOF, RESYNC_PAUSE_US, RESYNC_POLLS,
};

/// What went wrong talking to the slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI bus itself failed.
    Spi(E),
    /// The slave answered with an error status.
    Slave(ErrorCode),
    /// No response start within [`MAX_POLLS`] poll bytes (slave absent, hung or unpowered).
    NoResponse,
    /// The response was garbled (bad CRC, impossible length, answer to another command).
    Frame(FrameError),
    /// `Hello` answered with a protocol version or MCU this driver does not know.
    Incompatible { version: u8, mcu: u8 },
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spi(e) => write!(f, "SPI bus error talking to the ATmega: {e:?}"),
            Error::Slave(code) => write!(f, "ATmega refused the request: {code}"),
            Error::NoResponse => write!(
                f,
                "ATmega did not answer within {MAX_POLLS} poll bytes (check wiring and power)"
            ),
            Error::Frame(e) => write!(f, "garbled answer from the ATmega: {e}"),
            Error::Incompatible { version, mcu } => write!(
                f,
                "ATmega speaks protocol {version} on MCU {mcu}; this driver speaks {PROTOCOL_VERSION}"
            ),
        }
    }
}

impl<E> From<FrameError> for Error<E> {
    fn from(e: FrameError) -> Self {
        Error::Frame(e)
    }
}

impl<E> Error<E> {
    /// Whether a resync and a retry can help (the link, not the request, was at fault).
    fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::NoResponse | Error::Frame(_) | Error::Slave(ErrorCode::BadCrc)
        )
    }
}

/// The slave's health report ([`AvrLink::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaveStatus {
    /// Last error the slave answered with, if any since its reset.
    pub last_error: Option<ErrorCode>,
    /// Errors since its reset (saturates at 255).
    pub error_count: u8,
    /// MCUSR at its last reset: 1 power-on, 2 external, 4 brown-out, 8 watchdog.
    pub reset_flags: u8,
}

/// Driver for the ATmega SPI slave.
pub struct AvrLink<SPI, D> {
    spi: SPI,
    delay: D,
}

impl<SPI: SpiDevice, D: DelayNs> AvrLink<SPI, D> {
    /// Wraps the bus (with /SS on the ATmega's PB2) and a delay. Call [`AvrLink::hello`] next.
    pub fn new(spi: SPI, delay: D) -> Self {
        AvrLink { spi, delay }
    }

    /// Gives the bus and the delay back.
    pub fn release(self) -> (SPI, D) {
        (self.spi, self.delay)
    }

    /// The version handshake; required after every slave reset (the slave answers
    /// `Slave(NotReady)` until then, which is how a reset shows up: pin modes are lost with it).
    pub fn hello(&mut self) -> Result<Mcu, Error<SPI::Error>> {
        match self.request(Request::Hello {
            version: PROTOCOL_VERSION,
        })? {
            Response::Hello { version, mcu } => match Mcu::from_u8(mcu) {
                Some(m) if version == PROTOCOL_VERSION => Ok(m),
                _ => Err(Error::Incompatible { version, mcu }),
            },
            _ => Err(Error::Frame(FrameError::BadValue)),
        }
    }

    /// Sets a pin's mode.
    pub fn set_pin_mode(&mut self, pin: Pin, mode: PinMode) -> Result<(), Error<SPI::Error>> {
        self.done(Request::PinMode {
            pin: pin.id(),
            mode,
        })
    }

    /// Drives an output pin (on an input pin this switches the pull-up, as on any AVR).
    pub fn write_pin(&mut self, pin: Pin, high: bool) -> Result<(), Error<SPI::Error>> {
        self.done(Request::WritePin {
            pin: pin.id(),
            high,
        })
    }

    /// Reads one pin's level.
    pub fn read_pin(&mut self, pin: Pin) -> Result<bool, Error<SPI::Error>> {
        match self.request(Request::ReadPin { pin: pin.id() })? {
            Response::Level { high } => Ok(high),
            _ => Err(Error::Frame(FrameError::BadValue)),
        }
    }

    /// Reads all free pins at once: levels of ports B, C, D (bit n = pin n; non-free pins 0).
    pub fn read_all(&mut self) -> Result<[u8; PORT_COUNT], Error<SPI::Error>> {
        match self.request(Request::ReadAll)? {
            Response::Ports { levels } => Ok(levels),
            _ => Err(Error::Frame(FrameError::BadValue)),
        }
    }

    /// One 10-bit conversion against the ATmega's AVCC (0..=1023).
    pub fn read_adc(&mut self, channel: AdcChannel) -> Result<u16, Error<SPI::Error>> {
        match self.request(Request::ReadAdc {
            channel: channel.number(),
        })? {
            Response::Adc { value } => Ok(value),
            _ => Err(Error::Frame(FrameError::BadValue)),
        }
    }

    /// PWM duty on a PWM pin (PB1, PD3, PD5, PD6): 0 = low, 255 = high, ~488 Hz.
    pub fn set_pwm(&mut self, pin: Pin, duty: u8) -> Result<(), Error<SPI::Error>> {
        self.done(Request::SetPwm {
            pin: pin.id(),
            duty,
        })
    }

    /// The slave's last error, error count and reset cause.
    pub fn status(&mut self) -> Result<SlaveStatus, Error<SPI::Error>> {
        match self.request(Request::Status)? {
            Response::Status {
                last_error,
                error_count,
                reset_flags,
            } => Ok(SlaveStatus {
                last_error: ErrorCode::from_u8(last_error),
                error_count,
                reset_flags,
            }),
            _ => Err(Error::Frame(FrameError::BadValue)),
        }
    }

    /// Any request, with one resync-and-retry on transport faults. The typed calls above are
    /// the normal way in; this one can also send what they cannot (an unchecked pin number).
    pub fn request(&mut self, request: Request) -> Result<Response, Error<SPI::Error>> {
        match self.exchange(&request) {
            Err(e) if e.is_transport() => {
                self.resync()?;
                self.exchange(&request)
            }
            other => other,
        }
    }

    /// The documented resync: [`RESYNC_POLLS`] poll bytes finish any half-received request, and
    /// after [`RESYNC_PAUSE_US`] the slave has answered it and hunts for a new start byte (a new
    /// request discards an answer nobody read).
    pub fn resync(&mut self) -> Result<(), Error<SPI::Error>> {
        for _ in 0..RESYNC_POLLS {
            self.byte(POLL)?;
        }
        self.delay.delay_us(RESYNC_PAUSE_US);
        Ok(())
    }

    fn done(&mut self, request: Request) -> Result<(), Error<SPI::Error>> {
        match self.request(request)? {
            Response::Done => Ok(()),
            _ => Err(Error::Frame(FrameError::BadValue)),
        }
    }

    fn byte(&mut self, out: u8) -> Result<u8, Error<SPI::Error>> {
        let mut buf = [out];
        self.spi.transfer_in_place(&mut buf).map_err(Error::Spi)?;
        self.delay.delay_us(BYTE_GAP_US);
        Ok(buf[0])
    }

    fn exchange(&mut self, request: &Request) -> Result<Response, Error<SPI::Error>> {
        let mut frame = [0u8; MAX_REQ_FRAME];
        let n = request.emit(&mut frame);
        // What comes back while we send is the tail of older traffic: ignored by design.
        for &b in &frame[..n] {
            self.byte(b)?;
        }
        let mut resp = [0u8; MAX_RESP_FRAME];
        let mut polls = 0;
        loop {
            if polls == MAX_POLLS {
                return Err(Error::NoResponse);
            }
            polls += 1;
            if self.byte(POLL)? == RESP_SOF {
                break;
            }
        }
        resp[0] = RESP_SOF;
        let mut got = 1;
        while let Some(more) = response_remaining(&resp[..got]) {
            if more == 0 {
                break;
            }
            resp[got] = self.byte(POLL)?;
            got += 1;
        }
        if response_remaining(&resp[..got]).is_none() {
            return Err(Error::Frame(FrameError::LengthTooLarge { len: resp[3] }));
        }
        let frame = ResponseFrame::new_checked(&resp[..got])?;
        Response::parse(&frame, request.command())?.map_err(Error::Slave)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::spi::{Mock, Transaction};
    use wire_format::spi_link::Command;
    use wire_format::spi_link::{emit_error, Port, IDLE, MAX_RESP_FRAME};

    /// One byte on the wire: `out` from the master, `back` from the slave.
    fn byte(out: u8, back: u8) -> [Transaction<u8>; 3] {
        [
            Transaction::transaction_start(),
            Transaction::transfer_in_place(vec![out], vec![back]),
            Transaction::transaction_end(),
        ]
    }

    /// The transcript of one request answered after `wait` idle polls by `answer`.
    fn transcript(request: Request, wait: usize, answer: &[u8]) -> Vec<Transaction<u8>> {
        let mut frame = [0; MAX_REQ_FRAME];
        let n = request.emit(&mut frame);
        let mut t = Vec::new();
        for &b in &frame[..n] {
            t.extend(byte(b, IDLE));
        }
        for _ in 0..wait {
            t.extend(byte(POLL, IDLE));
        }
        for &b in answer {
            t.extend(byte(POLL, b));
        }
        t
    }

    fn ok(cmd: Command, resp: Response) -> Vec<u8> {
        let mut buf = [0; MAX_RESP_FRAME];
        let n = resp.emit(cmd as u8, &mut buf);
        buf[..n].to_vec()
    }

    fn err(cmd: Command, code: ErrorCode) -> Vec<u8> {
        let mut buf = [0; MAX_RESP_FRAME];
        let n = emit_error(cmd as u8, code, &mut buf);
        buf[..n].to_vec()
    }

    fn pin(port: Port, bit: u8) -> Pin {
        Pin::at(port, bit).unwrap()
    }

    #[test]
    fn typed_calls_follow_the_transcript() {
        let hello = Request::Hello { version: 1 };
        let hello_ok = Response::Hello { version: 1, mcu: 1 };
        let mut t = transcript(hello, 2, &ok(Command::Hello, hello_ok));
        let pd7 = pin(Port::D, 7);
        let mode = Request::PinMode {
            pin: pd7.id(),
            mode: PinMode::Output,
        };
        t.extend(transcript(mode, 1, &ok(Command::PinMode, Response::Done)));
        let write = Request::WritePin {
            pin: pd7.id(),
            high: true,
        };
        t.extend(transcript(write, 1, &ok(Command::WritePin, Response::Done)));
        let level = Response::Level { high: true };
        t.extend(transcript(
            Request::ReadPin { pin: 0 },
            0,
            &ok(Command::ReadPin, level),
        ));
        let adc = Response::Adc { value: 777 };
        t.extend(transcript(
            Request::ReadAdc { channel: 2 },
            30,
            &ok(Command::ReadAdc, adc),
        ));
        let ports = Response::Ports { levels: [1, 2, 3] };
        t.extend(transcript(
            Request::ReadAll,
            1,
            &ok(Command::ReadAll, ports),
        ));
        let pwm = Request::SetPwm { pin: 22, duty: 64 };
        t.extend(transcript(pwm, 1, &ok(Command::SetPwm, Response::Done)));
        let status = Response::Status {
            last_error: 4,
            error_count: 1,
            reset_flags: 2,
        };
        t.extend(transcript(Request::Status, 1, &ok(Command::Status, status)));

        let mut spi = Mock::new(&t);
        let mut link = AvrLink::new(spi.clone(), NoopDelay::new());
        assert_eq!(link.hello(), Ok(Mcu::Atmega168));
        assert_eq!(link.set_pin_mode(pd7, PinMode::Output), Ok(()));
        assert_eq!(link.write_pin(pd7, true), Ok(()));
        assert_eq!(link.read_pin(pin(Port::B, 0)), Ok(true));
        assert_eq!(link.read_adc(AdcChannel::new(2).unwrap()), Ok(777));
        assert_eq!(link.read_all(), Ok([1, 2, 3]));
        assert_eq!(link.set_pwm(pin(Port::D, 6), 64), Ok(()));
        assert_eq!(
            link.status(),
            Ok(SlaveStatus {
                last_error: Some(ErrorCode::BadPin),
                error_count: 1,
                reset_flags: 2
            })
        );
        spi.done();
    }

    #[test]
    fn slave_errors_are_returned_not_retried() {
        let req = Request::ReadPin { pin: 3 };
        let t = transcript(req, 1, &err(Command::ReadPin, ErrorCode::BadPin));
        let mut spi = Mock::new(&t);
        let mut link = AvrLink::new(spi.clone(), NoopDelay::new());
        assert_eq!(link.request(req), Err(Error::Slave(ErrorCode::BadPin)));
        spi.done();
    }

    fn resync_transcript() -> Vec<Transaction<u8>> {
        (0..RESYNC_POLLS).flat_map(|_| byte(POLL, IDLE)).collect()
    }

    #[test]
    fn a_garbled_answer_is_resynced_and_retried_once() {
        let req = Request::ReadPin { pin: 0 };
        let mut bad = ok(Command::ReadPin, Response::Level { high: false });
        *bad.last_mut().unwrap() ^= 0xFF;
        let mut t = transcript(req, 1, &bad);
        t.extend(resync_transcript());
        t.extend(transcript(
            req,
            1,
            &ok(Command::ReadPin, Response::Level { high: true }),
        ));
        let mut spi = Mock::new(&t);
        let mut link = AvrLink::new(spi.clone(), NoopDelay::new());
        assert_eq!(link.read_pin(pin(Port::B, 0)), Ok(true));
        spi.done();
    }

    #[test]
    fn a_silent_slave_is_no_response_after_bounded_polls() {
        let req = Request::Status;
        let mut t = transcript(req, MAX_POLLS, &[]);
        t.extend(resync_transcript());
        t.extend(transcript(req, MAX_POLLS, &[]));
        let mut spi = Mock::new(&t);
        let mut link = AvrLink::new(spi.clone(), NoopDelay::new());
        assert_eq!(link.status(), Err(Error::NoResponse));
        spi.done();
    }

    #[test]
    fn an_impossible_length_is_refused_without_reading_on() {
        let req = Request::Status;
        let mut t = transcript(req, 0, &[RESP_SOF, Command::Status as u8, 0, 200]);
        t.extend(resync_transcript());
        t.extend(transcript(
            req,
            0,
            &[RESP_SOF, Command::Status as u8, 0, 200],
        ));
        let mut spi = Mock::new(&t);
        let mut link = AvrLink::new(spi.clone(), NoopDelay::new());
        assert_eq!(
            link.status(),
            Err(Error::Frame(FrameError::LengthTooLarge { len: 200 }))
        );
        spi.done();
    }

    #[test]
    fn a_foreign_protocol_version_is_incompatible() {
        let req = Request::Hello { version: 1 };
        let resp = Response::Hello { version: 9, mcu: 1 };
        let t = transcript(req, 0, &ok(Command::Hello, resp));
        let mut spi = Mock::new(&t);
        let mut link = AvrLink::new(spi.clone(), NoopDelay::new());
        assert_eq!(
            link.hello(),
            Err(Error::Incompatible { version: 9, mcu: 1 })
        );
        spi.done();
        let msg = std::format!("{}", Error::<()>::NoResponse);
        assert!(msg.contains("did not answer"), "{msg}");
    }
}
