//! Executes requests: checks the frame, the handshake and every pin or channel number before any
//! register is touched, and answers every request, good or bad, with exactly one response frame.

use wire_format::spi_link::{
    emit_error, AdcChannel, ErrorCode, FrameError, Mcu, Pin, PinMode, Request, RequestFrame,
    Response, ADC_MAX, FREE_PINS, MAX_RESP_FRAME, PORT_COUNT, PROTOCOL_VERSION,
};

/// The chip's pins, ADC and timers. The engine only passes pins and channels that exist.
pub trait Board {
    /// Sets the mode of a free pin (and takes it off its PWM timer).
    fn set_mode(&mut self, pin: Pin, mode: PinMode);
    /// Sets the output latch of a free pin (and takes it off its PWM timer).
    fn write(&mut self, pin: Pin, high: bool);
    /// Input level of a free pin.
    fn read(&mut self, pin: Pin) -> bool;
    /// Raw input registers of ports B, C, D.
    fn read_ports(&mut self) -> [u8; PORT_COUNT];
    /// One conversion, 10 bits against AVCC.
    fn read_adc(&mut self, channel: AdcChannel) -> u16;
    /// PWM on a PWM-capable pin (makes it an output): 0 = constant low, 255 = constant high.
    fn set_pwm(&mut self, pin: Pin, duty: u8);
}

/// Handshake and error bookkeeping; a few bytes of RAM.
#[derive(Debug)]
pub struct Engine {
    mcu: Mcu,
    reset_flags: u8,
    open: bool,
    last_error: u8,
    error_count: u8,
}

impl Engine {
    /// A fresh engine after a reset whose cause (MCUSR) was `reset_flags`.
    pub const fn new(mcu: Mcu, reset_flags: u8) -> Engine {
        Engine {
            mcu,
            reset_flags,
            open: false,
            last_error: 0,
            error_count: 0,
        }
    }

    /// Whether a `Hello` has opened the link since reset.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Answers one request frame (as collected by [`crate::link::Link`]) into `out`; returns the
    /// response length.
    pub fn handle(
        &mut self,
        frame: &[u8],
        board: &mut impl Board,
        out: &mut [u8; MAX_RESP_FRAME],
    ) -> usize {
        // The command byte is echoed even for a broken frame, so the master can match answers.
        let cmd = frame.get(1).copied().unwrap_or(0);
        match self.execute(frame, board) {
            Ok(response) => response.emit(cmd, out),
            Err(code) => {
                self.last_error = code as u8;
                self.error_count = self.error_count.saturating_add(1);
                emit_error(cmd, code, out)
            }
        }
    }

    fn execute(&mut self, frame: &[u8], board: &mut impl Board) -> Result<Response, ErrorCode> {
        let frame = RequestFrame::new_checked(frame).map_err(FrameError::code)?;
        let request = Request::parse(&frame).map_err(FrameError::code)?;
        match request {
            Request::Hello { version } => {
                self.open = version == PROTOCOL_VERSION;
                if !self.open {
                    return Err(ErrorCode::VersionMismatch);
                }
                Ok(Response::Hello {
                    version: PROTOCOL_VERSION,
                    mcu: self.mcu as u8,
                })
            }
            Request::Status => Ok(Response::Status {
                last_error: self.last_error,
                error_count: self.error_count,
                reset_flags: self.reset_flags,
            }),
            _ if !self.open => Err(ErrorCode::NotReady),
            Request::PinMode { pin, mode } => {
                board.set_mode(free_pin(pin)?, mode);
                Ok(Response::Done)
            }
            Request::WritePin { pin, high } => {
                board.write(free_pin(pin)?, high);
                Ok(Response::Done)
            }
            Request::ReadPin { pin } => Ok(Response::Level {
                high: board.read(free_pin(pin)?),
            }),
            Request::ReadAll => {
                let mut levels = board.read_ports();
                for (level, free) in levels.iter_mut().zip(FREE_PINS) {
                    *level &= free;
                }
                Ok(Response::Ports { levels })
            }
            Request::ReadAdc { channel } => {
                let channel = AdcChannel::new(channel).ok_or(ErrorCode::BadChannel)?;
                Ok(Response::Adc {
                    value: board.read_adc(channel).min(ADC_MAX),
                })
            }
            Request::SetPwm { pin, duty } => {
                let pin = free_pin(pin)?;
                if !pin.has_pwm() {
                    return Err(ErrorCode::BadPin);
                }
                board.set_pwm(pin, duty);
                Ok(Response::Done)
            }
        }
    }
}

fn free_pin(id: u8) -> Result<Pin, ErrorCode> {
    Pin::new(id).ok_or(ErrorCode::BadPin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_format::spi_link::{emit_request_raw, Command, ResponseFrame, MAX_REQ_FRAME, REQ_SOF};

    /// A board that remembers what was done to it.
    #[derive(Default)]
    struct Recorder {
        ddr: [u8; 3],
        port: [u8; 3],
        input: [u8; 3],
        pwm: [(u8, u8); 4],
        pwm_len: usize,
        adc: [u16; 8],
    }

    impl Board for Recorder {
        fn set_mode(&mut self, pin: Pin, mode: PinMode) {
            let (p, m) = (pin.port() as usize, pin.mask());
            match mode {
                PinMode::Input => (self.ddr[p] &= !m, self.port[p] &= !m),
                PinMode::InputPullUp => (self.ddr[p] &= !m, self.port[p] |= m),
                PinMode::Output => (self.ddr[p] |= m, ()),
            };
        }
        fn write(&mut self, pin: Pin, high: bool) {
            let (p, m) = (pin.port() as usize, pin.mask());
            if high {
                self.port[p] |= m
            } else {
                self.port[p] &= !m
            }
        }
        fn read(&mut self, pin: Pin) -> bool {
            self.input[pin.port() as usize] & pin.mask() != 0
        }
        fn read_ports(&mut self) -> [u8; 3] {
            self.input
        }
        fn read_adc(&mut self, channel: AdcChannel) -> u16 {
            self.adc[channel.number() as usize]
        }
        fn set_pwm(&mut self, pin: Pin, duty: u8) {
            self.pwm[self.pwm_len] = (pin.id(), duty);
            self.pwm_len += 1;
        }
    }

    fn ask(engine: &mut Engine, board: &mut Recorder, req: Request) -> Result<Response, ErrorCode> {
        let mut buf = [0; MAX_REQ_FRAME];
        let n = req.emit(&mut buf);
        ask_raw(engine, board, &buf[..n], req.command())
    }

    fn ask_raw(
        engine: &mut Engine,
        board: &mut Recorder,
        frame: &[u8],
        cmd: Command,
    ) -> Result<Response, ErrorCode> {
        let mut out = [0; MAX_RESP_FRAME];
        let n = engine.handle(frame, board, &mut out);
        let frame = ResponseFrame::new_checked(&out[..n]).expect("engine emits valid frames");
        Response::parse(&frame, cmd).expect("engine answers the command asked")
    }

    fn opened() -> (Engine, Recorder) {
        let mut e = Engine::new(Mcu::Atmega168, 1);
        let mut b = Recorder::default();
        assert_eq!(
            ask(&mut e, &mut b, Request::Hello { version: 1 }),
            Ok(Response::Hello { version: 1, mcu: 1 })
        );
        (e, b)
    }

    #[test]
    fn commands_before_hello_are_not_ready_but_status_works() {
        let mut e = Engine::new(Mcu::Atmega328p, 8);
        let mut b = Recorder::default();
        assert_eq!(
            ask(&mut e, &mut b, Request::ReadPin { pin: 0 }),
            Err(ErrorCode::NotReady)
        );
        assert_eq!(
            ask(&mut e, &mut b, Request::Status),
            Ok(Response::Status {
                last_error: ErrorCode::NotReady as u8,
                error_count: 1,
                reset_flags: 8
            })
        );
        assert_eq!(
            ask(&mut e, &mut b, Request::Hello { version: 2 }),
            Err(ErrorCode::VersionMismatch)
        );
        assert!(!e.is_open());
        assert_eq!(
            ask(&mut e, &mut b, Request::Hello { version: 1 }),
            Ok(Response::Hello { version: 1, mcu: 2 })
        );
        assert!(e.is_open());
    }

    #[test]
    fn pins_modes_levels_and_snapshot() {
        let (mut e, mut b) = opened();
        let pd7 = 23;
        let ok = Ok(Response::Done);
        let out = PinMode::Output;
        assert_eq!(
            ask(
                &mut e,
                &mut b,
                Request::PinMode {
                    pin: pd7,
                    mode: out
                }
            ),
            ok
        );
        assert_eq!(
            ask(
                &mut e,
                &mut b,
                Request::WritePin {
                    pin: pd7,
                    high: true
                }
            ),
            ok
        );
        assert_eq!((b.ddr[2], b.port[2]), (0x80, 0x80));
        let pu = PinMode::InputPullUp;
        assert_eq!(
            ask(&mut e, &mut b, Request::PinMode { pin: 8, mode: pu }),
            ok
        );
        assert_eq!((b.ddr[1], b.port[1]), (0, 1));
        b.input = [0xFF, 0xFF, 0x01];
        assert_eq!(
            ask(&mut e, &mut b, Request::ReadPin { pin: 16 }),
            Ok(Response::Level { high: true })
        );
        assert_eq!(
            ask(&mut e, &mut b, Request::ReadPin { pin: 17 }),
            Ok(Response::Level { high: false })
        );
        // The link's own pins (/SS..SCK) and /RESET are masked out of the snapshot.
        assert_eq!(
            ask(&mut e, &mut b, Request::ReadAll),
            Ok(Response::Ports {
                levels: [0xC3, 0x3F, 0x01]
            })
        );
    }

    #[test]
    fn link_pins_and_missing_pins_are_bad_pins() {
        let (mut e, mut b) = opened();
        for pin in [2, 3, 4, 5, 14, 15, 24, 0xFF] {
            let modes = Request::PinMode {
                pin,
                mode: PinMode::Output,
            };
            assert_eq!(ask(&mut e, &mut b, modes), Err(ErrorCode::BadPin), "{pin}");
            let w = Request::WritePin { pin, high: true };
            assert_eq!(ask(&mut e, &mut b, w), Err(ErrorCode::BadPin));
            assert_eq!(
                ask(&mut e, &mut b, Request::ReadPin { pin }),
                Err(ErrorCode::BadPin)
            );
        }
        // Nothing reached the board.
        assert_eq!((b.ddr, b.port), ([0; 3], [0; 3]));
    }

    #[test]
    fn adc_and_pwm() {
        let (mut e, mut b) = opened();
        b.adc[3] = 512;
        assert_eq!(
            ask(&mut e, &mut b, Request::ReadAdc { channel: 3 }),
            Ok(Response::Adc { value: 512 })
        );
        assert_eq!(
            ask(&mut e, &mut b, Request::ReadAdc { channel: 8 }),
            Err(ErrorCode::BadChannel)
        );
        for pin in [1, 19, 21, 22] {
            let pwm = Request::SetPwm { pin, duty: 100 };
            assert_eq!(ask(&mut e, &mut b, pwm), Ok(Response::Done));
        }
        // PD7 is free but has no timer output; PB3 (OC2A) is the link's MOSI.
        for pin in [23, 11] {
            let pwm = Request::SetPwm { pin, duty: 100 };
            assert_eq!(ask(&mut e, &mut b, pwm), Err(ErrorCode::BadPin));
        }
        assert_eq!(&b.pwm, &[(1, 100), (19, 100), (21, 100), (22, 100)]);
    }

    #[test]
    fn broken_frames_get_their_error_and_are_counted() {
        let (mut e, mut b) = opened();
        let mut buf = [0; MAX_REQ_FRAME];
        let n = Request::ReadPin { pin: 0 }.emit(&mut buf);
        buf[n - 1] ^= 0x10;
        assert_eq!(
            ask_raw(&mut e, &mut b, &buf[..n], Command::ReadPin),
            Err(ErrorCode::BadCrc)
        );
        let n = emit_request_raw(0x3C, &[], &mut buf);
        let mut out = [0; MAX_RESP_FRAME];
        let m = e.handle(&buf[..n], &mut b, &mut out);
        let f = ResponseFrame::new_checked(&out[..m]).unwrap();
        assert_eq!(
            (f.command(), f.status()),
            (0x3C, ErrorCode::UnknownCommand as u8)
        );
        assert_eq!(
            ask_raw(&mut e, &mut b, &[REQ_SOF, 0x04, 0x7F], Command::ReadPin),
            Err(ErrorCode::BadLength)
        );
        let n = emit_request_raw(Command::ReadPin as u8, &[], &mut buf);
        assert_eq!(
            ask_raw(&mut e, &mut b, &buf[..n], Command::ReadPin),
            Err(ErrorCode::BadLength)
        );
        let n = emit_request_raw(Command::WritePin as u8, &[0, 7], &mut buf);
        assert_eq!(
            ask_raw(&mut e, &mut b, &buf[..n], Command::WritePin),
            Err(ErrorCode::BadValue)
        );
        assert_eq!(
            ask(&mut e, &mut b, Request::Status),
            Ok(Response::Status {
                last_error: ErrorCode::BadValue as u8,
                error_count: 5,
                reset_flags: 1
            })
        );
        // A bad frame does not close the link.
        assert!(e.is_open());
    }

    #[test]
    fn error_count_saturates() {
        let (mut e, mut b) = opened();
        for _ in 0..300 {
            let _ = ask(&mut e, &mut b, Request::ReadPin { pin: 2 });
        }
        assert!(matches!(
            ask(&mut e, &mut b, Request::Status),
            Ok(Response::Status {
                error_count: 255,
                ..
            })
        ));
    }
}
