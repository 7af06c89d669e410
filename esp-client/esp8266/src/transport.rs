//! The board's MQTT byte stream: [`tls::EspTls`], the chip's TLS stack (BearSSL over the SDK's
//! espconn TCP, built by `tls/build-lx106.sh`). A build without that library gets
//! [`Unlinked`], which refuses every connection with a log line: such an image boots, joins
//! WiFi, syncs time and stops at the TLS step, saying why.

use core::task::Poll;

use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};

use crate::chip::log_line;

/// No TLS stack: every connect fails with [`ConnectError::Handshake`].
#[derive(Default)]
pub struct Unlinked;

impl Unlinked {
    pub const fn new() -> Self {
        Unlinked
    }
}

/// What a transport can tell the log about its memory (the board prints it once online).
pub trait Diagnostics {
    /// Deepest use so far of the TLS engine's own stack, and its size.
    fn tls_stack_use(&self) -> Option<(usize, usize)> {
        None
    }
}

impl Diagnostics for Unlinked {}

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

/// The chip's TLS session (BearSSL, `esptls`) over the SDK's espconn TCP, from the TLS
/// library's `espconn_tls.h`. The session (≈ 16 KiB: record buffers, X.509 and handshake
/// state, and the TLS engine's own stack) is taken from the SDK heap at the first `connect_start`
/// and kept (wiped at every `close`): it does not lower the heap the SDK has at boot, and a heap
/// fragmented by WiFi and lwIP cannot refuse it on a later reconnect.
#[cfg(feature = "tls")]
pub mod tls {
    use core::ffi::{c_char, c_void};
    use core::task::Poll;

    use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};

    use crate::chip::log_line;
    use crate::sdk;

    const ETLS_PENDING: i32 = 0;
    const ETLS_READY: i32 = 1;
    const ETLS_WOULD_BLOCK: i32 = -1;
    const ETLS_ERR_DNS: i32 = -10;
    const ETLS_ERR_TCP: i32 = -11;
    const ETLS_ERR_SERVER_CERT: i32 = -12;
    const ETLS_ERR_CLIENT_IDENTITY: i32 = -14;

    extern "C" {
        /// A zeroed session from the SDK heap, or null.
        fn espconn_tls_new() -> *mut c_void;
        fn espconn_tls_start(
            c: *mut c_void,
            host: *const c_char,
            port: u16,
            ca: *const u8,
            ca_len: usize,
            cert: *const u8,
            cert_len: usize,
            key: *const u8,
            key_len: usize,
            pin: *const u8,
            time_floor_unix: u64,
            seed: *const u8,
        ) -> i32;
        fn espconn_tls_poll_connect(c: *mut c_void, cert: *const u8, cert_len: usize) -> i32;
        fn espconn_tls_read_ready(c: *mut c_void) -> i32;
        fn espconn_tls_read(c: *mut c_void, buf: *mut u8, len: usize) -> i32;
        fn espconn_tls_write_ready(c: *mut c_void) -> i32;
        fn espconn_tls_write(c: *mut c_void, buf: *const u8, len: usize) -> i32;
        fn espconn_tls_close(c: *mut c_void);
        fn espconn_tls_stack_high_water(c: *const c_void) -> usize;
        /// `ESPTLS_STACK_LEN` of espconn_tls.h, as the library was built with it.
        static espconn_tls_stack_len: usize;
    }

    impl super::Diagnostics for EspTls {
        fn tls_stack_use(&self) -> Option<(usize, usize)> {
            if self.session.is_null() {
                return None;
            }
            // SAFETY: the session's memory, kept once allocated; the call only reads it. The
            // length is a constant the library defines.
            let (used, len) = unsafe {
                (
                    espconn_tls_stack_high_water(self.session),
                    espconn_tls_stack_len,
                )
            };
            Some((used, len))
        }
    }

    fn map(code: i32) -> ConnectError {
        match code {
            ETLS_ERR_DNS => ConnectError::Dns,
            ETLS_ERR_TCP => ConnectError::Tcp,
            ETLS_ERR_SERVER_CERT => ConnectError::ServerCertificate,
            ETLS_ERR_CLIENT_IDENTITY => ConnectError::ClientIdentity,
            _ => ConnectError::Handshake,
        }
    }

    /// The board's `Transport`: at most one session, on the heap while it exists.
    pub struct EspTls {
        /// The session's memory: null until the first connect, then kept.
        session: *mut c_void,
        /// A connection was started and not closed since.
        open: bool,
        /// The broker's name, NUL-terminated, alive as long as the session (DNS keeps it).
        host: [u8; 254],
    }

    impl EspTls {
        pub const fn new() -> Self {
            EspTls {
                session: core::ptr::null_mut(),
                open: false,
                host: [0; 254],
            }
        }

        fn io_error(code: i32) -> embedded_io::ErrorKind {
            match code {
                ETLS_WOULD_BLOCK => embedded_io::ErrorKind::Interrupted,
                _ => embedded_io::ErrorKind::ConnectionReset,
            }
        }
    }

    impl Default for EspTls {
        fn default() -> Self {
            Self::new()
        }
    }

    impl embedded_io::ErrorType for EspTls {
        type Error = embedded_io::ErrorKind;
    }

    impl embedded_io::ReadReady for EspTls {
        fn read_ready(&mut self) -> Result<bool, Self::Error> {
            if !self.open {
                return Err(embedded_io::ErrorKind::NotConnected);
            }
            // SAFETY: a live session from connect_start.
            Ok(unsafe { espconn_tls_read_ready(self.session) } == 1)
        }
    }

    impl embedded_io::Read for EspTls {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            if !self.open {
                return Err(embedded_io::ErrorKind::NotConnected);
            }
            // SAFETY: a live session; `buf` is valid for its length.
            match unsafe { espconn_tls_read(self.session, buf.as_mut_ptr(), buf.len()) } {
                n if n >= 0 => Ok(n as usize),
                e => Err(Self::io_error(e)),
            }
        }
    }

    impl embedded_io::WriteReady for EspTls {
        fn write_ready(&mut self) -> Result<bool, Self::Error> {
            if !self.open {
                return Err(embedded_io::ErrorKind::NotConnected);
            }
            // SAFETY: a live session.
            Ok(unsafe { espconn_tls_write_ready(self.session) } == 1)
        }
    }

    impl embedded_io::Write for EspTls {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            if !self.open {
                return Err(embedded_io::ErrorKind::NotConnected);
            }
            // SAFETY: a live session; `buf` is valid for its length.
            match unsafe { espconn_tls_write(self.session, buf.as_ptr(), buf.len()) } {
                n if n > 0 => Ok(n as usize),
                0 => Err(embedded_io::ErrorKind::Interrupted),
                e => Err(Self::io_error(e)),
            }
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    impl Transport for EspTls {
        fn connect_start(
            &mut self,
            server: Server<'_>,
            tls: &TlsMaterial<'_>,
        ) -> Result<(), ConnectError> {
            self.close();
            let host = server.host.as_bytes();
            if host.is_empty() || host.len() >= self.host.len() || host.contains(&0) {
                return Err(ConnectError::Dns);
            }
            self.host[..host.len()].copy_from_slice(host);
            self.host[host.len()] = 0;
            if self.session.is_null() {
                // SAFETY: plain library call (a zeroed session from the SDK heap). Taken once
                // and kept: a block this large may not be found again once WiFi and lwIP have
                // fragmented the heap.
                let session = unsafe { espconn_tls_new() };
                if session.is_null() {
                    log_line(format_args!(
                        "esp-client: no heap left for a TLS session ({} bytes free)",
                        // SAFETY: plain SDK call.
                        unsafe { sdk::system_get_free_heap_size() }
                    ));
                    return Err(ConnectError::Handshake);
                }
                self.session = session;
            }
            self.open = true;
            let mut seed = [0u8; 32];
            for c in seed.chunks_mut(4) {
                // SAFETY: plain SDK call (the hardware RNG).
                c.copy_from_slice(&unsafe { sdk::os_random() }.to_le_bytes());
            }
            let pin = tls.broker_pin.map_or(core::ptr::null(), |p| p.as_ptr());
            // SAFETY: every pointer is valid for the length passed; the library copies the CA
            // and the key, references the certificate (re-pointed on every poll_connect) and
            // the host name (kept in `self.host`).
            let r = unsafe {
                espconn_tls_start(
                    self.session,
                    self.host.as_ptr() as *const c_char,
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
            if r != ETLS_PENDING && r != ETLS_READY {
                self.close();
                return Err(map(r));
            }
            Ok(())
        }

        fn poll_connect(
            &mut self,
            _server: Server<'_>,
            tls: &TlsMaterial<'_>,
        ) -> Poll<Result<(), ConnectError>> {
            if !self.open {
                return Poll::Ready(Err(ConnectError::Tcp));
            }
            // SAFETY: a live session; the certificate is valid for its length.
            let r = unsafe {
                espconn_tls_poll_connect(
                    self.session,
                    tls.client_cert_der.as_ptr(),
                    tls.client_cert_der.len(),
                )
            };
            match r {
                ETLS_PENDING => Poll::Pending,
                ETLS_READY => Poll::Ready(Ok(())),
                e => Poll::Ready(Err(map(e))),
            }
        }

        fn close(&mut self) {
            if self.open {
                // SAFETY: a started session: TCP dropped, key copy and session wiped. The
                // memory stays ours for the next connection.
                unsafe { espconn_tls_close(self.session) };
                self.open = false;
            }
        }
    }
}
