//! The SPI link between the ESP8266 (SPI master) and the ATmega168/328P (SPI slave).
//!
//! Byte-level spec: `docs/spi-link.md`. In short, the master sends a request frame
//! `A5 cmd len payload crc`, then clocks [`POLL`] bytes until the slave answers with a response
//! frame `5A cmd status len payload crc`. An AVR slave has no transmit buffer: its answer to a byte
//! can only go out during the *next* transfer, so the protocol never expects an answer in the same
//! transfer and the master polls instead.
//!
//! Everything that parses outside bytes returns an error naming the problem; nothing here panics.

use core::fmt;

// ---- the constants block (everything the spec table names) ----

/// Version of this protocol; the `Hello` handshake refuses a master speaking another one.
pub const PROTOCOL_VERSION: u8 = 1;
/// First byte of every request (master to slave).
pub const REQ_SOF: u8 = 0xA5;
/// First byte of every response (slave to master).
pub const RESP_SOF: u8 = 0x5A;
/// What the master clocks out while it waits for or reads a response, and during a resync.
pub const POLL: u8 = 0x00;
/// What the slave clocks out when it has nothing to say (idle, or still executing).
pub const IDLE: u8 = 0x00;
/// Largest request payload (pin + value).
pub const MAX_REQ_PAYLOAD: usize = 2;
/// Largest response payload (the 3-port snapshot, the status triple).
pub const MAX_RESP_PAYLOAD: usize = 3;
/// Request header: SOF, command, length.
pub const REQ_HEADER_LEN: usize = 3;
/// Response header: SOF, command echo, status, length.
pub const RESP_HEADER_LEN: usize = 4;
/// Longest request frame: header, payload, CRC.
pub const MAX_REQ_FRAME: usize = REQ_HEADER_LEN + MAX_REQ_PAYLOAD + 1;
/// Longest response frame: header, payload, CRC.
pub const MAX_RESP_FRAME: usize = RESP_HEADER_LEN + MAX_RESP_PAYLOAD + 1;
/// Resync: this many [`POLL`] bytes complete (or fail) any half-received request ...
pub const RESYNC_POLLS: usize = 8;
/// ... and after this pause the slave has finished whatever that request started.
pub const RESYNC_PAUSE_US: u32 = 2_000;
/// Minimum pause between two bytes, so the slave's SPI interrupt can load its next byte.
/// Measured in simavr at 8 MHz (docs/spi-link.md, "Timing"), with a safety factor.
pub const BYTE_GAP_US: u32 = 40;
/// How many [`POLL`] bytes the master clocks before it declares the slave silent. Covers the
/// slowest command (a first ADC conversion, ~200 µs) with a wide margin at [`BYTE_GAP_US`].
pub const MAX_POLLS: usize = 100;
/// CRC-8/AUTOSAR: polynomial 0x2F, init 0xFF, no reflection, final xor 0xFF. A non-zero init makes
/// a run of zero bytes (a resync) never look like a valid frame.
pub const CRC_POLY: u8 = 0x2F;
/// See [`CRC_POLY`].
pub const CRC_INIT: u8 = 0xFF;
/// See [`CRC_POLY`].
pub const CRC_XOROUT: u8 = 0xFF;
/// Pin ids are `port * 8 + bit` with port B = 0, C = 1, D = 2.
pub const PORT_COUNT: usize = 3;
/// Pins that the firmware lends to the master, per port (bit n = pin n). Taken away: PB2..PB5
/// (/SS, MOSI, MISO, SCK of the link itself) and PC6 (/RESET). PB6/PB7 are free because the
/// ATmega runs from its internal 8 MHz oscillator (no crystal).
pub const FREE_PINS: [u8; PORT_COUNT] = [0b1100_0011, 0b0011_1111, 0b1111_1111];
/// Pins with a timer output that is free: PB1 (OC1A), PD3 (OC2B), PD5 (OC0B), PD6 (OC0A).
pub const PWM_PINS: [u8; PORT_COUNT] = [0b0000_0010, 0b0000_0000, 0b0110_1000];
/// ADC channels 0..=7 (6 and 7 exist only on the TQFP/QFN packages).
pub const ADC_CHANNELS: u8 = 8;
/// Largest ADC result (10 bits).
pub const ADC_MAX: u16 = 1023;

const _: () = assert!(MAX_REQ_FRAME == 6 && MAX_RESP_FRAME == 8);
const _: () = assert!(RESYNC_POLLS >= MAX_REQ_FRAME);
const _: () = assert!(REQ_SOF != POLL && RESP_SOF != IDLE && REQ_SOF != RESP_SOF);

// Bitwise (`NoTable`): a 256-byte table would cost a quarter of the ATmega168's RAM.
const CRC8: crc::Crc<u8, crc::NoTable> = crc::Crc::<u8, crc::NoTable>::new(&crc::CRC_8_AUTOSAR);
const _: () = assert!(
    crc::CRC_8_AUTOSAR.poly == CRC_POLY
        && crc::CRC_8_AUTOSAR.init == CRC_INIT
        && crc::CRC_8_AUTOSAR.xorout == CRC_XOROUT
);

/// CRC-8/AUTOSAR of `bytes`.
pub fn crc8(bytes: &[u8]) -> u8 {
    CRC8.checksum(bytes)
}

/// Request commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    /// `[master_version]` -> `[slave_version, mcu]`. Must come first after every slave reset.
    Hello = 0x01,
    /// `[pin, mode]` -> `[]`.
    PinMode = 0x02,
    /// `[pin, level]` -> `[]`.
    WritePin = 0x03,
    /// `[pin]` -> `[level]`.
    ReadPin = 0x04,
    /// `[]` -> `[port_b, port_c, port_d]` (input levels, free pins only).
    ReadAll = 0x05,
    /// `[channel]` -> `[lo, hi]` (10-bit result, little endian).
    ReadAdc = 0x06,
    /// `[pin, duty]` -> `[]`.
    SetPwm = 0x07,
    /// `[]` -> `[last_error, error_count, reset_flags]`.
    Status = 0x08,
}

impl Command {
    /// The command for a wire byte, if there is one.
    pub fn from_u8(b: u8) -> Option<Command> {
        Some(match b {
            0x01 => Command::Hello,
            0x02 => Command::PinMode,
            0x03 => Command::WritePin,
            0x04 => Command::ReadPin,
            0x05 => Command::ReadAll,
            0x06 => Command::ReadAdc,
            0x07 => Command::SetPwm,
            0x08 => Command::Status,
            _ => return None,
        })
    }

    /// Request payload length this command takes.
    pub fn request_len(self) -> usize {
        match self {
            Command::ReadAll | Command::Status => 0,
            Command::Hello | Command::ReadPin | Command::ReadAdc => 1,
            Command::PinMode | Command::WritePin | Command::SetPwm => 2,
        }
    }

    /// Response payload length of a successful answer.
    pub fn response_len(self) -> usize {
        match self {
            Command::PinMode | Command::WritePin | Command::SetPwm => 0,
            Command::ReadPin => 1,
            Command::Hello | Command::ReadAdc => 2,
            Command::ReadAll | Command::Status => 3,
        }
    }
}

/// A slave's error status (status byte 0 means success). Also kept as "last error".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// The request's CRC did not match.
    BadCrc = 0x01,
    /// The command byte names no command.
    UnknownCommand = 0x02,
    /// The length byte is too large or wrong for the command.
    BadLength = 0x03,
    /// The pin id is not a free pin (or has no PWM, for `SetPwm`).
    BadPin = 0x04,
    /// The ADC channel is not 0..=7.
    BadChannel = 0x05,
    /// A mode or level byte out of range.
    BadValue = 0x06,
    /// No successful `Hello` since the slave's last reset.
    NotReady = 0x07,
    /// `Hello` from a master speaking another protocol version.
    VersionMismatch = 0x08,
}

impl ErrorCode {
    /// The error for a status byte; `None` for 0 (success) and unknown codes.
    pub fn from_u8(b: u8) -> Option<ErrorCode> {
        Some(match b {
            0x01 => ErrorCode::BadCrc,
            0x02 => ErrorCode::UnknownCommand,
            0x03 => ErrorCode::BadLength,
            0x04 => ErrorCode::BadPin,
            0x05 => ErrorCode::BadChannel,
            0x06 => ErrorCode::BadValue,
            0x07 => ErrorCode::NotReady,
            0x08 => ErrorCode::VersionMismatch,
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::BadCrc => "the slave received a request with a bad CRC",
            ErrorCode::UnknownCommand => "the slave does not know this command",
            ErrorCode::BadLength => "the request's length byte is wrong for its command",
            ErrorCode::BadPin => "the pin is not free on the slave (or has no PWM)",
            ErrorCode::BadChannel => "the ADC channel is not 0..=7",
            ErrorCode::BadValue => "a mode or level value is out of range",
            ErrorCode::NotReady => "the slave wants a Hello first (it was reset)",
            ErrorCode::VersionMismatch => "the slave speaks another protocol version",
        })
    }
}

/// Which microcontroller answered `Hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mcu {
    /// ATmega168 (16 KiB flash, 1 KiB SRAM): the default build.
    Atmega168 = 1,
    /// ATmega328P (32 KiB flash, 2 KiB SRAM): same pinout.
    Atmega328p = 2,
}

impl Mcu {
    /// The MCU for a wire byte.
    pub fn from_u8(b: u8) -> Option<Mcu> {
        match b {
            1 => Some(Mcu::Atmega168),
            2 => Some(Mcu::Atmega328p),
            _ => None,
        }
    }
}

/// What a pin does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PinMode {
    /// High-impedance input.
    Input = 0,
    /// Input with the internal pull-up (20–50 kΩ) to the ATmega's supply.
    InputPullUp = 1,
    /// Push-pull output, starting at the level last written (low after reset).
    Output = 2,
}

impl PinMode {
    /// The mode for a wire byte.
    pub fn from_u8(b: u8) -> Option<PinMode> {
        match b {
            0 => Some(PinMode::Input),
            1 => Some(PinMode::InputPullUp),
            2 => Some(PinMode::Output),
            _ => None,
        }
    }
}

/// Port letter of a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Port B (index 0).
    B = 0,
    /// Port C (index 1).
    C = 1,
    /// Port D (index 2).
    D = 2,
}

/// A pin that the firmware lends to the master: only free pins can be constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin(u8);

impl Pin {
    /// The pin with wire id `id` (`port * 8 + bit`), if it is free.
    pub const fn new(id: u8) -> Option<Pin> {
        let port = (id >> 3) as usize;
        if port < PORT_COUNT && FREE_PINS[port] & (1 << (id & 7)) != 0 {
            Some(Pin(id))
        } else {
            None
        }
    }

    /// The pin `bit` of `port`, if it is free.
    pub const fn at(port: Port, bit: u8) -> Option<Pin> {
        if bit > 7 {
            return None;
        }
        Pin::new(port as u8 * 8 + bit)
    }

    /// The wire id.
    pub const fn id(self) -> u8 {
        self.0
    }

    /// Port of this pin.
    pub const fn port(self) -> Port {
        match self.0 >> 3 {
            0 => Port::B,
            1 => Port::C,
            _ => Port::D,
        }
    }

    /// Bit number within its port.
    pub const fn bit(self) -> u8 {
        self.0 & 7
    }

    /// Bit mask within its port.
    pub const fn mask(self) -> u8 {
        1 << (self.0 & 7)
    }

    /// Whether the pin has a free timer output (see [`PWM_PINS`]).
    pub const fn has_pwm(self) -> bool {
        PWM_PINS[(self.0 >> 3) as usize] & self.mask() != 0
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = match self.port() {
            Port::B => 'B',
            Port::C => 'C',
            Port::D => 'D',
        };
        write!(f, "P{}{}", port, self.bit())
    }
}

/// An ADC channel, 0..=7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdcChannel(u8);

impl AdcChannel {
    /// The channel `n`, if it exists.
    pub const fn new(n: u8) -> Option<AdcChannel> {
        if n < ADC_CHANNELS {
            Some(AdcChannel(n))
        } else {
            None
        }
    }

    /// Channel number.
    pub const fn number(self) -> u8 {
        self.0
    }
}

/// A request, as the master means it (the `Repr` of a request frame). Pins and channels are raw
/// bytes here: checking them against the pin map is the slave's job, and a master may send anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Open the link: both sides must speak `version`.
    Hello { version: u8 },
    /// Set a pin's mode.
    PinMode { pin: u8, mode: PinMode },
    /// Drive an output pin high or low.
    WritePin { pin: u8, high: bool },
    /// Read one pin's input level.
    ReadPin { pin: u8 },
    /// Read all free pins at once.
    ReadAll,
    /// One 10-bit ADC conversion against AVCC.
    ReadAdc { channel: u8 },
    /// PWM duty on a PWM pin: 0 = constant low, 255 = constant high.
    SetPwm { pin: u8, duty: u8 },
    /// Last error, error count, reset cause.
    Status,
}

/// Why a frame was refused by the receiving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than its header and CRC, or than its length byte says.
    Truncated { len: usize },
    /// The first byte is not the start-of-frame byte.
    BadSof { got: u8 },
    /// The length byte is larger than any payload of this direction.
    LengthTooLarge { len: u8 },
    /// The CRC byte does not match the frame.
    BadCrc { got: u8, expected: u8 },
    /// The command byte names no command.
    UnknownCommand { cmd: u8 },
    /// A response answers another command than the one asked.
    UnexpectedCommand { got: u8 },
    /// The payload length is wrong for the command.
    BadLength { cmd: Command, len: u8 },
    /// The status byte is no known code.
    UnknownStatus { status: u8 },
    /// A value in the payload is out of range.
    BadValue,
}

impl FrameError {
    /// The status a slave answers a refused request with.
    pub fn code(self) -> ErrorCode {
        match self {
            FrameError::BadCrc { .. } => ErrorCode::BadCrc,
            FrameError::UnknownCommand { .. } | FrameError::UnexpectedCommand { .. } => {
                ErrorCode::UnknownCommand
            }
            FrameError::BadValue | FrameError::UnknownStatus { .. } => ErrorCode::BadValue,
            FrameError::Truncated { .. }
            | FrameError::BadSof { .. }
            | FrameError::LengthTooLarge { .. }
            | FrameError::BadLength { .. } => ErrorCode::BadLength,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::Truncated { len } => write!(f, "frame truncated at {len} bytes"),
            FrameError::BadSof { got } => write!(f, "frame starts with {got:#04x}, not SOF"),
            FrameError::LengthTooLarge { len } => write!(f, "length byte {len} is too large"),
            FrameError::BadCrc { got, expected } => {
                write!(f, "CRC {got:#04x} does not match {expected:#04x}")
            }
            FrameError::UnknownCommand { cmd } => write!(f, "unknown command {cmd:#04x}"),
            FrameError::UnexpectedCommand { got } => {
                write!(f, "response answers command {got:#04x}, not the one asked")
            }
            FrameError::BadLength { cmd, len } => {
                write!(f, "payload of {len} bytes is wrong for {cmd:?}")
            }
            FrameError::UnknownStatus { status } => write!(f, "unknown status {status:#04x}"),
            FrameError::BadValue => write!(f, "payload value out of range"),
        }
    }
}

/// Checked view over request bytes: `A5 cmd len payload crc`.
#[derive(Debug, Clone, Copy)]
pub struct RequestFrame<T: AsRef<[u8]>> {
    buffer: T,
}

mod req_field {
    pub const SOF: usize = 0;
    pub const CMD: usize = 1;
    pub const LEN: usize = 2;
    pub const PAYLOAD: usize = 3;
}

impl<T: AsRef<[u8]>> RequestFrame<T> {
    /// Wraps `buffer` after checking SOF, length and CRC (the command is not checked here).
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let b = buffer.as_ref();
        if b.len() < REQ_HEADER_LEN + 1 {
            return Err(FrameError::Truncated { len: b.len() });
        }
        if b[req_field::SOF] != REQ_SOF {
            return Err(FrameError::BadSof {
                got: b[req_field::SOF],
            });
        }
        let len = b[req_field::LEN];
        if len as usize > MAX_REQ_PAYLOAD {
            return Err(FrameError::LengthTooLarge { len });
        }
        let end = req_field::PAYLOAD + len as usize;
        if b.len() < end + 1 {
            return Err(FrameError::Truncated { len: b.len() });
        }
        let expected = crc8(&b[req_field::CMD..end]);
        if b[end] != expected {
            return Err(FrameError::BadCrc {
                got: b[end],
                expected,
            });
        }
        Ok(RequestFrame { buffer })
    }

    /// The command byte.
    pub fn command(&self) -> u8 {
        self.buffer.as_ref()[req_field::CMD]
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[req_field::PAYLOAD..req_field::PAYLOAD + b[req_field::LEN] as usize]
    }

    /// Total frame length, CRC included.
    pub fn frame_len(&self) -> usize {
        req_field::PAYLOAD + self.buffer.as_ref()[req_field::LEN] as usize + 1
    }
}

/// Request bytes still to come after `prefix` (a lower bound until the length byte is in), or
/// `None` once the frame is complete. A length byte that is too large ends the frame at once.
pub fn request_remaining(prefix: &[u8]) -> Option<usize> {
    if prefix.len() <= req_field::LEN {
        return Some(REQ_HEADER_LEN + 1 - prefix.len());
    }
    let len = prefix[req_field::LEN] as usize;
    if len > MAX_REQ_PAYLOAD {
        return None;
    }
    let total = REQ_HEADER_LEN + len + 1;
    total.checked_sub(prefix.len()).filter(|&n| n > 0)
}

impl Request {
    /// The command of this request.
    pub fn command(&self) -> Command {
        match self {
            Request::Hello { .. } => Command::Hello,
            Request::PinMode { .. } => Command::PinMode,
            Request::WritePin { .. } => Command::WritePin,
            Request::ReadPin { .. } => Command::ReadPin,
            Request::ReadAll => Command::ReadAll,
            Request::ReadAdc { .. } => Command::ReadAdc,
            Request::SetPwm { .. } => Command::SetPwm,
            Request::Status => Command::Status,
        }
    }

    /// Parses a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &RequestFrame<T>) -> Result<Request, FrameError> {
        let cmd = frame.command();
        let cmd = Command::from_u8(cmd).ok_or(FrameError::UnknownCommand { cmd })?;
        let p = frame.payload();
        if p.len() != cmd.request_len() {
            return Err(FrameError::BadLength {
                cmd,
                len: p.len() as u8,
            });
        }
        Ok(match cmd {
            Command::Hello => Request::Hello { version: p[0] },
            Command::PinMode => Request::PinMode {
                pin: p[0],
                mode: PinMode::from_u8(p[1]).ok_or(FrameError::BadValue)?,
            },
            Command::WritePin => Request::WritePin {
                pin: p[0],
                high: match p[1] {
                    0 => false,
                    1 => true,
                    _ => return Err(FrameError::BadValue),
                },
            },
            Command::ReadPin => Request::ReadPin { pin: p[0] },
            Command::ReadAll => Request::ReadAll,
            Command::ReadAdc => Request::ReadAdc { channel: p[0] },
            Command::SetPwm => Request::SetPwm {
                pin: p[0],
                duty: p[1],
            },
            Command::Status => Request::Status,
        })
    }

    /// Writes the whole frame into `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8; MAX_REQ_FRAME]) -> usize {
        let mut payload = [0u8; MAX_REQ_PAYLOAD];
        let n = match *self {
            Request::Hello { version } => {
                payload[0] = version;
                1
            }
            Request::PinMode { pin, mode } => {
                payload = [pin, mode as u8];
                2
            }
            Request::WritePin { pin, high } => {
                payload = [pin, high as u8];
                2
            }
            Request::ReadPin { pin } => {
                payload[0] = pin;
                1
            }
            Request::ReadAdc { channel } => {
                payload[0] = channel;
                1
            }
            Request::SetPwm { pin, duty } => {
                payload = [pin, duty];
                2
            }
            Request::ReadAll | Request::Status => 0,
        };
        emit_request_raw(self.command() as u8, &payload[..n], buf)
    }
}

/// Writes a request frame for any command byte and payload (at most [`MAX_REQ_PAYLOAD`] bytes;
/// longer payloads are cut). For tests and tools that must send what `Request` cannot express.
pub fn emit_request_raw(cmd: u8, payload: &[u8], buf: &mut [u8; MAX_REQ_FRAME]) -> usize {
    let n = payload.len().min(MAX_REQ_PAYLOAD);
    buf[req_field::SOF] = REQ_SOF;
    buf[req_field::CMD] = cmd;
    buf[req_field::LEN] = n as u8;
    buf[req_field::PAYLOAD..req_field::PAYLOAD + n].copy_from_slice(&payload[..n]);
    let end = req_field::PAYLOAD + n;
    buf[end] = crc8(&buf[req_field::CMD..end]);
    end + 1
}

mod resp_field {
    pub const SOF: usize = 0;
    pub const CMD: usize = 1;
    pub const STATUS: usize = 2;
    pub const LEN: usize = 3;
    pub const PAYLOAD: usize = 4;
}

/// Checked view over response bytes: `5A cmd status len payload crc`.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ResponseFrame<T> {
    /// Wraps `buffer` after checking SOF, length and CRC.
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let b = buffer.as_ref();
        if b.len() < RESP_HEADER_LEN + 1 {
            return Err(FrameError::Truncated { len: b.len() });
        }
        if b[resp_field::SOF] != RESP_SOF {
            return Err(FrameError::BadSof {
                got: b[resp_field::SOF],
            });
        }
        let len = b[resp_field::LEN];
        if len as usize > MAX_RESP_PAYLOAD {
            return Err(FrameError::LengthTooLarge { len });
        }
        let end = resp_field::PAYLOAD + len as usize;
        if b.len() < end + 1 {
            return Err(FrameError::Truncated { len: b.len() });
        }
        let expected = crc8(&b[resp_field::CMD..end]);
        if b[end] != expected {
            return Err(FrameError::BadCrc {
                got: b[end],
                expected,
            });
        }
        Ok(ResponseFrame { buffer })
    }

    /// The echoed command byte.
    pub fn command(&self) -> u8 {
        self.buffer.as_ref()[resp_field::CMD]
    }

    /// The status byte (0 = success).
    pub fn status(&self) -> u8 {
        self.buffer.as_ref()[resp_field::STATUS]
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[resp_field::PAYLOAD..resp_field::PAYLOAD + b[resp_field::LEN] as usize]
    }
}

/// Response bytes still to read after `prefix` (SOF included; a lower bound until the length
/// byte is in), or `None` if the length byte is impossible.
pub fn response_remaining(prefix: &[u8]) -> Option<usize> {
    if prefix.len() <= resp_field::LEN {
        return Some(RESP_HEADER_LEN + 1 - prefix.len());
    }
    let len = prefix[resp_field::LEN] as usize;
    if len > MAX_RESP_PAYLOAD {
        return None;
    }
    Some((RESP_HEADER_LEN + len + 1).saturating_sub(prefix.len()))
}

/// A successful answer (the `Repr` of a response frame with status 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Answer to `Hello`.
    Hello { version: u8, mcu: u8 },
    /// Answer to `PinMode`, `WritePin`, `SetPwm`.
    Done,
    /// Answer to `ReadPin`.
    Level { high: bool },
    /// Answer to `ReadAll`: input levels of ports B, C, D, masked to the free pins.
    Ports { levels: [u8; PORT_COUNT] },
    /// Answer to `ReadAdc`.
    Adc { value: u16 },
    /// Answer to `Status`: last error code (0 = none), errors since reset (saturating), the
    /// ATmega's reset flags (MCUSR: 1 power-on, 2 external, 4 brown-out, 8 watchdog).
    Status {
        last_error: u8,
        error_count: u8,
        reset_flags: u8,
    },
}

impl Response {
    /// Parses a checked frame that answers `expected`. `Ok(Err(code))` is the slave's error.
    pub fn parse<T: AsRef<[u8]>>(
        frame: &ResponseFrame<T>,
        expected: Command,
    ) -> Result<Result<Response, ErrorCode>, FrameError> {
        let cmd = frame.command();
        if cmd != expected as u8 {
            return Err(FrameError::UnexpectedCommand { got: cmd });
        }
        let p = frame.payload();
        if frame.status() != 0 {
            let code = ErrorCode::from_u8(frame.status()).ok_or(FrameError::UnknownStatus {
                status: frame.status(),
            })?;
            return Ok(Err(code));
        }
        if p.len() != expected.response_len() {
            return Err(FrameError::BadLength {
                cmd: expected,
                len: p.len() as u8,
            });
        }
        Ok(Ok(match expected {
            Command::Hello => Response::Hello {
                version: p[0],
                mcu: p[1],
            },
            Command::PinMode | Command::WritePin | Command::SetPwm => Response::Done,
            Command::ReadPin => Response::Level {
                high: match p[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(FrameError::BadValue),
                },
            },
            Command::ReadAll => Response::Ports {
                levels: [p[0], p[1], p[2]],
            },
            Command::ReadAdc => {
                let value = u16::from_le_bytes([p[0], p[1]]);
                if value > ADC_MAX {
                    return Err(FrameError::BadValue);
                }
                Response::Adc { value }
            }
            Command::Status => Response::Status {
                last_error: p[0],
                error_count: p[1],
                reset_flags: p[2],
            },
        }))
    }

    /// Writes the success frame answering `cmd` into `buf`, returns its length.
    pub fn emit(&self, cmd: u8, buf: &mut [u8; MAX_RESP_FRAME]) -> usize {
        let mut p = [0u8; MAX_RESP_PAYLOAD];
        let n = match *self {
            Response::Hello { version, mcu } => {
                p[0] = version;
                p[1] = mcu;
                2
            }
            Response::Done => 0,
            Response::Level { high } => {
                p[0] = high as u8;
                1
            }
            Response::Ports { levels } => {
                p = levels;
                3
            }
            Response::Adc { value } => {
                let [lo, hi] = value.to_le_bytes();
                p[0] = lo;
                p[1] = hi;
                2
            }
            Response::Status {
                last_error,
                error_count,
                reset_flags,
            } => {
                p = [last_error, error_count, reset_flags];
                3
            }
        };
        emit_response_raw(cmd, 0, &p[..n], buf)
    }
}

/// Writes an error frame answering `cmd` with `code` into `buf`, returns its length.
pub fn emit_error(cmd: u8, code: ErrorCode, buf: &mut [u8; MAX_RESP_FRAME]) -> usize {
    emit_response_raw(cmd, code as u8, &[], buf)
}

fn emit_response_raw(cmd: u8, status: u8, payload: &[u8], buf: &mut [u8; MAX_RESP_FRAME]) -> usize {
    let n = payload.len().min(MAX_RESP_PAYLOAD);
    buf[resp_field::SOF] = RESP_SOF;
    buf[resp_field::CMD] = cmd;
    buf[resp_field::STATUS] = status;
    buf[resp_field::LEN] = n as u8;
    buf[resp_field::PAYLOAD..resp_field::PAYLOAD + n].copy_from_slice(&payload[..n]);
    let end = resp_field::PAYLOAD + n;
    buf[end] = crc8(&buf[resp_field::CMD..end]);
    end + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc8_is_crc8_autosar() {
        // The catalogue's check value, and a hand-computed bitwise reference.
        assert_eq!(crc8(b"123456789"), 0xDF);
        fn bitwise(bytes: &[u8]) -> u8 {
            let mut c = CRC_INIT;
            for &b in bytes {
                c ^= b;
                for _ in 0..8 {
                    c = if c & 0x80 != 0 {
                        (c << 1) ^ CRC_POLY
                    } else {
                        c << 1
                    };
                }
            }
            c ^ CRC_XOROUT
        }
        for data in [&b""[..], b"\x00", b"\x01\x00", b"\xA5\x5A\xFF\x00\x13"] {
            assert_eq!(crc8(data), bitwise(data), "{data:?}");
        }
    }

    #[test]
    fn zeros_never_form_a_valid_request() {
        // A resync clocks zeros; whatever prefix they complete, CMD 0 is unknown anyway.
        assert_ne!(crc8(&[0, 0]), 0);
        let frame = [REQ_SOF, 0, 0, 0];
        assert!(matches!(
            RequestFrame::new_checked(&frame[..]),
            Err(FrameError::BadCrc { .. })
        ));
    }

    fn all_requests() -> [Request; 8] {
        [
            Request::Hello { version: 1 },
            Request::PinMode {
                pin: 17,
                mode: PinMode::InputPullUp,
            },
            Request::WritePin { pin: 0, high: true },
            Request::ReadPin { pin: 23 },
            Request::ReadAll,
            Request::ReadAdc { channel: 5 },
            Request::SetPwm { pin: 22, duty: 128 },
            Request::Status,
        ]
    }

    #[test]
    fn requests_round_trip() {
        for req in all_requests() {
            let mut buf = [0; MAX_REQ_FRAME];
            let n = req.emit(&mut buf);
            let frame = RequestFrame::new_checked(&buf[..n]).unwrap();
            assert_eq!(frame.frame_len(), n);
            assert_eq!(Request::parse(&frame), Ok(req));
            // The receiver's length tracking agrees with the emitted frame.
            assert_eq!(request_remaining(&buf[..1]), Some(3));
            for k in REQ_HEADER_LEN..n {
                assert_eq!(request_remaining(&buf[..k]), Some(n - k), "{req:?} at {k}");
            }
            assert_eq!(request_remaining(&buf[..n]), None);
        }
    }

    #[test]
    fn request_wire_bytes_match_the_spec_table() {
        let mut buf = [0; MAX_REQ_FRAME];
        let n = Request::WritePin { pin: 0, high: true }.emit(&mut buf);
        assert_eq!(&buf[..4], &[0xA5, 0x03, 0x02, 0x00]);
        assert_eq!(buf[4], 0x01);
        assert_eq!(buf[5], crc8(&[0x03, 0x02, 0x00, 0x01]));
        assert_eq!(n, 6);
    }

    #[test]
    fn every_corrupted_byte_is_refused() {
        for req in all_requests() {
            let mut buf = [0; MAX_REQ_FRAME];
            let n = req.emit(&mut buf);
            for i in 0..n {
                for bit in 0..8 {
                    let mut bad = buf;
                    bad[i] ^= 1 << bit;
                    let parsed =
                        RequestFrame::new_checked(&bad[..n]).and_then(|f| Request::parse(&f));
                    assert!(parsed.is_err(), "{req:?} byte {i} bit {bit} accepted");
                }
            }
        }
    }

    #[test]
    fn bad_requests_name_their_problem() {
        let mut buf = [0; MAX_REQ_FRAME];
        let n = emit_request_raw(0x42, &[], &mut buf);
        let f = RequestFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            Request::parse(&f),
            Err(FrameError::UnknownCommand { cmd: 0x42 })
        );
        assert_eq!(
            FrameError::UnknownCommand { cmd: 0x42 }.code(),
            ErrorCode::UnknownCommand
        );

        let n = emit_request_raw(Command::ReadPin as u8, &[1, 2], &mut buf);
        let f = RequestFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            Request::parse(&f),
            Err(FrameError::BadLength {
                cmd: Command::ReadPin,
                len: 2
            })
        );

        let n = emit_request_raw(Command::PinMode as u8, &[1, 3], &mut buf);
        let f = RequestFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(Request::parse(&f), Err(FrameError::BadValue));

        let n = emit_request_raw(Command::WritePin as u8, &[1, 2], &mut buf);
        let f = RequestFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(Request::parse(&f), Err(FrameError::BadValue));

        assert_eq!(
            RequestFrame::new_checked(&[REQ_SOF, 1, 9, 0][..]).err(),
            Some(FrameError::LengthTooLarge { len: 9 })
        );
        assert_eq!(request_remaining(&[REQ_SOF, 1, 9]), None);
        assert_eq!(
            RequestFrame::new_checked(&[0x00, 1, 0, 0][..]).err(),
            Some(FrameError::BadSof { got: 0 })
        );
        assert_eq!(
            RequestFrame::new_checked(&[REQ_SOF, 1, 1][..]).err(),
            Some(FrameError::Truncated { len: 3 })
        );
        assert_eq!(
            RequestFrame::new_checked(&[REQ_SOF, 1, 1, 0][..]).err(),
            Some(FrameError::Truncated { len: 4 })
        );
    }

    #[test]
    fn responses_round_trip() {
        let cases = [
            (Command::Hello, Response::Hello { version: 1, mcu: 1 }),
            (Command::PinMode, Response::Done),
            (Command::WritePin, Response::Done),
            (Command::SetPwm, Response::Done),
            (Command::ReadPin, Response::Level { high: true }),
            (
                Command::ReadAll,
                Response::Ports {
                    levels: [0xC3, 0x3F, 0xFF],
                },
            ),
            (Command::ReadAdc, Response::Adc { value: 1023 }),
            (
                Command::Status,
                Response::Status {
                    last_error: 4,
                    error_count: 2,
                    reset_flags: 1,
                },
            ),
        ];
        for (cmd, resp) in cases {
            let mut buf = [0; MAX_RESP_FRAME];
            let n = resp.emit(cmd as u8, &mut buf);
            assert_eq!(response_remaining(&buf[..1]), Some(4));
            for k in RESP_HEADER_LEN..=n {
                assert_eq!(response_remaining(&buf[..k]), Some(n - k));
            }
            let frame = ResponseFrame::new_checked(&buf[..n]).unwrap();
            assert_eq!(Response::parse(&frame, cmd), Ok(Ok(resp)));
            // An answer to another command is refused, never misread.
            let other = if cmd == Command::Status {
                Command::Hello
            } else {
                Command::Status
            };
            assert!(Response::parse(&frame, other).is_err());
        }
    }

    #[test]
    fn error_responses_carry_their_code() {
        for code in 1..=8u8 {
            let code = ErrorCode::from_u8(code).unwrap();
            let mut buf = [0; MAX_RESP_FRAME];
            let n = emit_error(Command::ReadPin as u8, code, &mut buf);
            assert_eq!(n, 5);
            let frame = ResponseFrame::new_checked(&buf[..n]).unwrap();
            assert_eq!(Response::parse(&frame, Command::ReadPin), Ok(Err(code)));
        }
        assert_eq!(ErrorCode::from_u8(0), None);
        assert_eq!(ErrorCode::from_u8(9), None);
    }

    #[test]
    fn bad_responses_are_refused() {
        let mut buf = [0; MAX_RESP_FRAME];
        let n = emit_response_raw(Command::ReadAdc as u8, 0, &[0x00, 0x04], &mut buf);
        let frame = ResponseFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            Response::parse(&frame, Command::ReadAdc),
            Err(FrameError::BadValue)
        );
        let n = emit_response_raw(Command::ReadPin as u8, 0x77, &[], &mut buf);
        let frame = ResponseFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(
            Response::parse(&frame, Command::ReadPin),
            Err(FrameError::UnknownStatus { status: 0x77 })
        );
        assert_eq!(response_remaining(&[RESP_SOF, 1, 0, 4]), None);
        assert_eq!(
            ResponseFrame::new_checked(&[RESP_SOF, 1, 0, 9, 0][..]).err(),
            Some(FrameError::LengthTooLarge { len: 9 })
        );
    }

    #[test]
    fn pin_map() {
        let free: usize = FREE_PINS.iter().map(|p| p.count_ones() as usize).sum();
        assert_eq!(free, 18);
        assert_eq!((0..=255u8).filter_map(Pin::new).count(), 18);
        for id in [2, 3, 4, 5, 14, 15, 24, 255] {
            assert_eq!(Pin::new(id), None, "{id}");
        }
        let pwm: [Pin; 4] = [
            Pin::at(Port::B, 1).unwrap(),
            Pin::at(Port::D, 3).unwrap(),
            Pin::at(Port::D, 5).unwrap(),
            Pin::at(Port::D, 6).unwrap(),
        ];
        assert_eq!(
            (0..=255u8)
                .filter_map(Pin::new)
                .filter(|p| p.has_pwm())
                .count(),
            4
        );
        assert!(pwm.iter().all(|p| p.has_pwm()));
        assert_eq!(Pin::at(Port::B, 8), None);
        let p = Pin::at(Port::D, 6).unwrap();
        assert_eq!(
            (p.id(), p.port(), p.bit(), p.mask()),
            (22, Port::D, 6, 0x40)
        );
        assert_eq!(AdcChannel::new(7).map(AdcChannel::number), Some(7));
        assert_eq!(AdcChannel::new(8), None);
    }

    proptest::proptest! {
        #[test]
        fn outside_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12)) {
            if let Ok(f) = RequestFrame::new_checked(&bytes[..]) {
                let _ = Request::parse(&f);
                proptest::prop_assert!(f.frame_len() <= bytes.len());
            }
            if let Ok(f) = ResponseFrame::new_checked(&bytes[..]) {
                for cmd in 1..=8 {
                    let _ = Response::parse(&f, Command::from_u8(cmd).unwrap());
                }
            }
            let _ = request_remaining(&bytes);
            let _ = response_remaining(&bytes);
        }
    }
}
