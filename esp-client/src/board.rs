//! What the core needs from the hardware (or from Linux, in the host port). Each part is small so
//! that an ESP8266 board layer over the NONOS SDK, the host port and the test fakes can all
//! implement it. docs/esp-client.md, "Board traits", says how a board plugs in.

use embedded_storage::nor_flash::NorFlash;
use wire_format::spi_link::ErrorCode;

use crate::machine::State;

/// The broker endpoint to connect to: the one of the config's list the core is trying now (it
/// moves to the next after a failure). The board's TLS checks the broker certificate against
/// this `host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server<'a> {
    pub host: &'a str,
    pub port: u16,
}

/// Everything the board's TLS needs. The board validates the broker's chain against `ca_der`
/// only, at time `time_floor_unix`, checks the name against `host`, and presents the client
/// certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsMaterial<'a> {
    pub ca_der: &'a [u8],
    pub client_cert_der: &'a [u8],
    /// PKCS#8 DER. Secret: a board must never log it.
    pub client_key_der: &'a [u8],
    /// SHA-256 of the broker's SubjectPublicKeyInfo, if pinned.
    pub broker_pin: Option<&'a [u8; 32]>,
    /// max(time source, firmware build time, last time persisted), seconds since 1970.
    pub time_floor_unix: u64,
}

/// Why a TCP + TLS connection could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// The broker name did not resolve.
    Dns,
    /// TCP refused or timed out (broker down).
    Tcp,
    /// The broker's certificate did not validate (wrong CA, expired at the floor, wrong name,
    /// pin mismatch).
    ServerCertificate,
    /// The handshake failed otherwise (alert from the broker, protocol error, timeout).
    Handshake,
    /// The board could not load our certificate or key.
    ClientIdentity,
}

impl core::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConnectError::Dns => "broker name did not resolve",
            ConnectError::Tcp => "TCP connection refused or timed out",
            ConnectError::ServerCertificate => "broker certificate refused",
            ConnectError::Handshake => "TLS handshake failed",
            ConnectError::ClientIdentity => "device certificate or key unusable",
        })
    }
}

/// A byte stream whose TLS is done by the board, driven entirely by polling: no method may
/// block, so a plain timer callback (an SDK `os_timer` on the chip) can run the whole core on the
/// SDK's own stack, with no coroutine and no thread.
///
/// - **Connect** is two steps: [`Transport::connect_start`] begins TCP and the TLS handshake and
///   returns at once; [`Transport::poll_connect`] advances it and reports `Poll::Pending` until
///   the handshake is done or failed. The core owns the deadline (`Settings::connect_timeout_ms`)
///   and calls [`Transport::close`] when it passes.
/// - **Reads**: the core calls `read` only after `read_ready` said bytes (or end of stream) are
///   there; `read` returning `Ok(0)` is end of stream, an error of kind `Interrupted` means
///   "nothing after all".
/// - **Writes**: the core calls `write` only after `write_ready` said the board can take bytes
///   now; `write` may then take fewer bytes than offered (the core keeps the rest queued and
///   offers it again on a later poll). An error of kind `Interrupted` means "nothing taken, try
///   later". `write_ready` returning `false` is "would block". The core never calls `flush`.
///
/// Any other `embedded_io` error ends the connection.
pub trait Transport:
    embedded_io::Read + embedded_io::Write + embedded_io::ReadReady + embedded_io::WriteReady
{
    /// Starts opening TCP to `server` and the TLS handshake with `tls` (closing any previous
    /// connection first). Returns at once: an error here is one known without waiting (the name
    /// does not resolve, the material is unusable).
    fn connect_start(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Result<(), ConnectError>;
    /// Advances the connection begun by `connect_start` without blocking. The core passes the
    /// same `server` and `tls` on every call, so a board need not copy them. `Ready(Ok(()))`
    /// once the handshake completed and application data can flow.
    fn poll_connect(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> core::task::Poll<Result<(), ConnectError>>;
    /// Drops the connection, or the attempt in progress (no TLS close_notify needed: the
    /// broker's Last Will is what we want after a failure).
    fn close(&mut self);
}

/// Why the AVR did not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvrError {
    /// The slave did not answer (no response frame within the poll budget).
    NoResponse,
    /// A frame arrived damaged (CRC, framing).
    Link,
    /// The slave refused the request (bad pin/channel, pin not an output, ...): its error code.
    Refused(u8),
}

impl core::fmt::Display for AvrError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AvrError::NoResponse => write!(f, "AVR did not answer"),
            AvrError::Link => write!(f, "AVR link frame damaged"),
            // Name the slave's reason (docs/spi-link.md, "Errors"); the number only if unknown.
            AvrError::Refused(code) => match ErrorCode::from_u8(*code) {
                Some(e) => write!(f, "AVR refused the request: {e}"),
                None => write!(f, "AVR refused the request (error {code})"),
            },
        }
    }
}

/// The I/O co-processor (ATmega over SPI, `avr_link` module's master driver). Pin ids are
/// `port * 8 + bit`, ports B, C, D (wire-format `spi_link`).
pub trait AvrLink {
    /// Makes `pin` an output and drives it.
    fn set_pin(&mut self, pin: u8, high: bool) -> Result<(), AvrError>;
    /// Input levels of ports B, C, D (free pins only).
    fn read_ports(&mut self) -> Result<[u8; 3], AvrError>;
    /// One 10-bit conversion of `channel`.
    fn read_adc(&mut self, channel: u8) -> Result<u16, AvrError>;
}

/// State of the board's network interface (WiFi station on the ESP8266).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetStatus {
    /// Associated and has an address.
    Up,
    /// Still joining.
    Pending,
    /// Gave up (wrong password, no such SSID).
    Failed,
}

/// One board: the resources the core drives. Methods take `&mut self` so a board can keep its
/// own state (timers, DMA) without interior mutability.
pub trait Board {
    type Transport: Transport;
    type Flash: NorFlash;
    type Avr: AvrLink;

    /// Monotonic milliseconds since boot.
    fn now_ms(&mut self) -> u64;
    fn transport(&mut self) -> &mut Self::Transport;
    /// The device data region: config sector, then state sector (docs/device-config.md).
    fn flash(&mut self) -> &mut Self::Flash;
    fn avr(&mut self) -> &mut Self::Avr;
    /// Where the OTA slots and the boot state lie in [`Board::flash`] (docs/flash-layout.md);
    /// `None` (the default): this board does not update over the air.
    fn ota_layout(&self) -> Option<&'static crate::ota::Layout> {
        None
    }
    /// Randomness for backoff jitter (hardware RNG on the ESP8266).
    fn random_u32(&mut self) -> u32;
    /// Joins (first call) or reports the network.
    fn network(&mut self, ssid: &str, password: &str) -> NetStatus;
    /// Seconds since 1970 from SNTP (or the host clock), `None` while unknown.
    fn time_source(&mut self) -> Option<u64>;
    /// Called on every `poll`; a hung core stops feeding and the hardware watchdog resets.
    fn feed_watchdog(&mut self);
    /// Restarts the device. On the chip this does not return; the host port returns and the
    /// core boots again in-process.
    fn reset(&mut self);
    /// Logs one line (UART on the chip, stderr on the host).
    fn log(&mut self, line: core::fmt::Arguments<'_>);
    /// Every state change goes through here (tests record transcripts with it).
    fn transition(&mut self, now_ms: u64, from: &State, to: &State) {
        self.log(format_args!("[{now_ms} ms] {from} => {to}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn a_refusal_names_the_slaves_reason() {
        assert_eq!(
            AvrError::Refused(ErrorCode::BadPin as u8).to_string(),
            "AVR refused the request: the pin is not free on the slave (or has no PWM)"
        );
        assert_eq!(
            AvrError::Refused(ErrorCode::BadChannel as u8).to_string(),
            "AVR refused the request: the ADC channel is not 0..=7"
        );
        // A code this firmware does not know still says which.
        assert_eq!(
            AvrError::Refused(0x42).to_string(),
            "AVR refused the request (error 66)"
        );
    }
}
