//! The board's MQTT byte stream. The chip's TLS stack (BearSSL over the SDK's espconn TCP) is
//! not linked into this build yet: [`Unlinked`] refuses every connection with a log line, so
//! an image built today boots, joins WiFi, syncs time and stops at the TLS step, saying why.

use core::task::Poll;

use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};

use crate::chip::log_line;

/// No TLS stack: every connect fails with [`ConnectError::Handshake`].
pub struct Unlinked;

impl embedded_io::ErrorType for Unlinked {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Unlinked {
    fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> {
        Err(embedded_io::ErrorKind::NotConnected)
    }
}

impl embedded_io::ReadReady for Unlinked {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Err(embedded_io::ErrorKind::NotConnected)
    }
}

impl embedded_io::Write for Unlinked {
    fn write(&mut self, _: &[u8]) -> Result<usize, Self::Error> {
        Err(embedded_io::ErrorKind::NotConnected)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::WriteReady for Unlinked {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        Err(embedded_io::ErrorKind::NotConnected)
    }
}

impl Transport for Unlinked {
    fn connect_start(
        &mut self,
        server: Server<'_>,
        _: &TlsMaterial<'_>,
    ) -> Result<(), ConnectError> {
        log_line(format_args!(
            "esp-client: no TLS stack in this build: not connecting to {}:{}",
            server.host, server.port
        ));
        Err(ConnectError::Handshake)
    }
    fn poll_connect(
        &mut self,
        _: Server<'_>,
        _: &TlsMaterial<'_>,
    ) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Err(ConnectError::Handshake))
    }
    fn close(&mut self) {}
}
