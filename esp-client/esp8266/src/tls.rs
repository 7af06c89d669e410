//! The chip's TLS transport: BearSSL over the SDK's espconn TCP, in C
//! (`esp-client/esp8266/tls/espconn_tls.c`, built into `target/esp8266/tls/libesptls.a` by
//! `tls/build-lx106.sh`). This is the core's poll-driven [`Transport`] on top of it: every call
//! returns at once; the C side runs the TLS engine on its own stack. docs/esp8266-tls.md says
//! what it checks and how much memory it takes.

use core::task::Poll;

use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};

use crate::sdk;

/// `struct espconn_tls` (opaque here: C allocates it).
#[repr(C)]
pub struct EspconnTlsC {
    _private: [u8; 0],
}

extern "C" {
    fn espconn_tls_new() -> *mut EspconnTlsC;
    fn espconn_tls_start(
        c: *mut EspconnTlsC,
        host: *const u8,
        port: u16,
        ca_der: *const u8,
        ca_len: usize,
        cert_der: *const u8,
        cert_len: usize,
        key_der: *const u8,
        key_len: usize,
        pin: *const u8,
        time_floor_unix: u64,
        seed: *const u8,
    ) -> i32;
    fn espconn_tls_poll_connect(c: *mut EspconnTlsC, cert_der: *const u8, cert_len: usize) -> i32;
    fn espconn_tls_read_ready(c: *mut EspconnTlsC) -> i32;
    fn espconn_tls_read(c: *mut EspconnTlsC, buf: *mut u8, len: usize) -> i32;
    fn espconn_tls_write_ready(c: *mut EspconnTlsC) -> i32;
    fn espconn_tls_write(c: *mut EspconnTlsC, buf: *const u8, len: usize) -> i32;
    fn espconn_tls_close(c: *mut EspconnTlsC);
}

// espconn_tls.h's results.
const ETLS_PENDING: i32 = 0;
const ETLS_READY: i32 = 1;
const ETLS_WOULD_BLOCK: i32 = -1;
const ETLS_ERR_DNS: i32 = -10;
const ETLS_ERR_TCP: i32 = -11;
const ETLS_ERR_SERVER_CERT: i32 = -12;
const ETLS_ERR_CLIENT_IDENTITY: i32 = -14;

/// Longest broker host name (DNS limit).
const MAX_HOST: usize = 253;

/// The TLS transport. Allocates its one block (about 16 KB) from the SDK heap on the first
/// connection and keeps it.
pub struct EspconnTls {
    c: *mut EspconnTlsC,
}

impl EspconnTls {
    pub const fn new() -> Self {
        EspconnTls {
            c: core::ptr::null_mut(),
        }
    }
}

impl Default for EspconnTls {
    fn default() -> Self {
        Self::new()
    }
}

fn connect_error(rc: i32) -> ConnectError {
    match rc {
        ETLS_ERR_DNS => ConnectError::Dns,
        ETLS_ERR_TCP => ConnectError::Tcp,
        ETLS_ERR_SERVER_CERT => ConnectError::ServerCertificate,
        ETLS_ERR_CLIENT_IDENTITY => ConnectError::ClientIdentity,
        _ => ConnectError::Handshake,
    }
}

impl embedded_io::ErrorType for EspconnTls {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::ReadReady for EspconnTls {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        if self.c.is_null() {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        Ok(unsafe { espconn_tls_read_ready(self.c) } != 0)
    }
}

impl embedded_io::Read for EspconnTls {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.c.is_null() {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        match unsafe { espconn_tls_read(self.c, buf.as_mut_ptr(), buf.len()) } {
            n if n >= 0 => Ok(n as usize),
            ETLS_WOULD_BLOCK => Err(embedded_io::ErrorKind::Interrupted),
            _ => Err(embedded_io::ErrorKind::ConnectionReset),
        }
    }
}

impl embedded_io::WriteReady for EspconnTls {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        if self.c.is_null() {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        Ok(unsafe { espconn_tls_write_ready(self.c) } != 0)
    }
}

impl embedded_io::Write for EspconnTls {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if self.c.is_null() {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        match unsafe { espconn_tls_write(self.c, buf.as_ptr(), buf.len()) } {
            n if n > 0 => Ok(n as usize),
            ETLS_WOULD_BLOCK | 0 => Err(embedded_io::ErrorKind::Interrupted),
            _ => Err(embedded_io::ErrorKind::ConnectionReset),
        }
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl Transport for EspconnTls {
    fn connect_start(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Result<(), ConnectError> {
        if self.c.is_null() {
            self.c = unsafe { espconn_tls_new() };
            if self.c.is_null() {
                // The heap cannot hold the session: nothing to connect with.
                return Err(ConnectError::Handshake);
            }
        }
        let name = server.host.as_bytes();
        if name.is_empty() || name.len() > MAX_HOST || name.contains(&0) {
            return Err(ConnectError::Dns);
        }
        let mut host = [0u8; MAX_HOST + 1];
        host[..name.len()].copy_from_slice(name);
        // 32 bytes from the hardware RNG seed BearSSL's DRBG.
        let mut seed = [0u8; 32];
        for chunk in seed.chunks_mut(4) {
            chunk.copy_from_slice(&unsafe { sdk::os_random() }.to_le_bytes());
        }
        let pin = tls.broker_pin.map_or(core::ptr::null(), |p| p.as_ptr());
        let rc = unsafe {
            espconn_tls_start(
                self.c,
                host.as_ptr(),
                server.port,
                tls.ca_der.as_ptr(),
                tls.ca_der.len(),
                tls.client_cert_der.as_ptr(),
                tls.client_cert_der.len(),
                tls.client_key_der.as_ptr(),
                tls.client_key_der.len(),
                pin,
                tls.time_floor_unix,
                seed.as_ptr(),
            )
        };
        seed.fill(0);
        match rc {
            ETLS_PENDING | ETLS_READY => Ok(()),
            e => Err(connect_error(e)),
        }
    }

    fn poll_connect(
        &mut self,
        _: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Poll<Result<(), ConnectError>> {
        if self.c.is_null() {
            return Poll::Ready(Err(ConnectError::Tcp));
        }
        // The certificate is re-pointed on every poll: the core passes the same material.
        match unsafe {
            espconn_tls_poll_connect(
                self.c,
                tls.client_cert_der.as_ptr(),
                tls.client_cert_der.len(),
            )
        } {
            ETLS_PENDING => Poll::Pending,
            ETLS_READY => Poll::Ready(Ok(())),
            e => Poll::Ready(Err(connect_error(e))),
        }
    }

    fn close(&mut self) {
        if !self.c.is_null() {
            unsafe { espconn_tls_close(self.c) };
        }
    }
}
