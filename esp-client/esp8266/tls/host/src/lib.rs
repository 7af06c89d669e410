//! The ESP8266's TLS stack on the host: the vendored BearSSL subset and `esptls.c`, compiled
//! with the chip's configuration (`../bearssl.flags`), driven over a non-blocking
//! `std::net::TcpStream`. It exists to prove on this machine, against a real Mosquitto, what
//! the chip runs: the cipher suite, the client certificate, CA validation at the core's time
//! floor, the host-name check and the optional SPKI pin, and to measure the memory it needs.
//! docs/esp8266-tls.md has the figures and the reasoning.
//!
//! [`Session`] is the engine plus the socket, driven by polling like the chip's glue
//! (`../espconn_tls.c`) drives it from SDK callbacks.

use std::ffi::{c_int, c_uchar, c_uint, c_void, CString};
use std::io::{self, Read, Write};
use std::net::TcpStream;

use esp_client::board::TlsMaterial;

mod ffi {
    use super::*;

    #[allow(non_camel_case_types)]
    pub type esptls = c_void;
    #[allow(non_camel_case_types)]
    pub type br_ssl_engine_context = c_void;

    extern "C" {
        pub fn esptls_context_size() -> usize;
        pub fn esptls_start(
            t: *mut esptls,
            host: *const std::ffi::c_char,
            ca_der: *const c_uchar,
            ca_len: usize,
            cert_der: *const c_uchar,
            cert_len: usize,
            key_der: *const c_uchar,
            key_len: usize,
            pin: *const c_uchar,
            time_floor_unix: u64,
            seed: *const c_uchar,
        ) -> c_int;
        pub fn esptls_rebind(t: *mut esptls, cert_der: *const c_uchar, cert_len: usize);
        pub fn esptls_engine(t: *mut esptls) -> *mut br_ssl_engine_context;
        pub fn esptls_state(t: *mut esptls) -> c_uint;
        pub fn esptls_established(t: *const esptls) -> c_int;
        pub fn esptls_fault(t: *const esptls) -> c_int;
        pub fn esptls_last_error(t: *const esptls) -> c_int;
        pub fn esptls_pin_failed(t: *const esptls) -> c_int;
        pub fn esptls_version(t: *const esptls) -> c_uint;
        pub fn esptls_cipher_suite(t: *const esptls) -> c_uint;
        pub fn esptls_mfln_negotiated(t: *const esptls) -> c_int;
        pub fn esptls_wipe(t: *mut esptls);
        pub fn esptls_fail_io(t: *mut esptls);

        pub fn br_ssl_engine_sendrec_buf(
            e: *const br_ssl_engine_context,
            len: *mut usize,
        ) -> *mut c_uchar;
        pub fn br_ssl_engine_sendrec_ack(e: *mut br_ssl_engine_context, len: usize);
        pub fn br_ssl_engine_recvrec_buf(
            e: *const br_ssl_engine_context,
            len: *mut usize,
        ) -> *mut c_uchar;
        pub fn br_ssl_engine_recvrec_ack(e: *mut br_ssl_engine_context, len: usize);
        pub fn br_ssl_engine_sendapp_buf(
            e: *const br_ssl_engine_context,
            len: *mut usize,
        ) -> *mut c_uchar;
        pub fn br_ssl_engine_sendapp_ack(e: *mut br_ssl_engine_context, len: usize);
        pub fn br_ssl_engine_recvapp_buf(
            e: *const br_ssl_engine_context,
            len: *mut usize,
        ) -> *mut c_uchar;
        pub fn br_ssl_engine_recvapp_ack(e: *mut br_ssl_engine_context, len: usize);
        pub fn br_ssl_engine_flush(e: *mut br_ssl_engine_context, force: c_int);

        pub fn esptls_stack_paint(n: usize);
        pub fn esptls_stack_used(n: usize) -> usize;
    }
}

/// BearSSL engine state flags (`BR_SSL_*`).
const BR_SSL_CLOSED: c_uint = 0x0001;
const BR_SSL_SENDREC: c_uint = 0x0002;
const BR_SSL_RECVREC: c_uint = 0x0004;
const BR_SSL_SENDAPP: c_uint = 0x0008;
const BR_SSL_RECVAPP: c_uint = 0x0010;

/// The one cipher suite the device offers, ECDHE-ECDSA-AES128-GCM-SHA256.
pub const SUITE_ECDHE_ECDSA_AES128_GCM_SHA256: u16 = 0xC02B;
/// TLS 1.2 on the wire.
pub const TLS12: u16 = 0x0303;

/// Why `esptls_start` refused the material (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The CA certificate is not a P-256 CA certificate in DER.
    Ca,
    /// The client certificate or key is unusable, or they do not belong together.
    Identity,
    /// The host name is empty or longer than 255 bytes (or contains NUL).
    Host,
    /// The time floor is 0: no validity check is possible without a time.
    Time,
    /// BearSSL refused its parameters (a bug in esptls.c).
    Engine,
}

/// Why a session ended (`esptls_fault`), with BearSSL's own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The broker's chain, validity at the floor, name or pin was refused.
    ServerCertificate { br_err: i32, pin: bool },
    /// Alert from the broker, protocol error, or the socket failed during the handshake.
    Handshake { br_err: i32 },
    /// The session ended after the handshake (`br_err` 0: closed cleanly).
    Closed { br_err: i32 },
}

/// One TLS session: the `struct esptls` (record buffers included) and its socket.
pub struct Session {
    ctx: Box<[u64]>,
    sock: TcpStream,
    eof: bool,
    /// Every byte received from / sent to the socket, when recording.
    record: Option<(Vec<u8>, Vec<u8>)>,
}

impl Session {
    /// `sizeof(struct esptls)` in this build. The chip's figure differs (32-bit pointers);
    /// `build-lx106.sh` prints that one.
    pub fn context_size() -> usize {
        unsafe { ffi::esptls_context_size() }
    }

    /// Starts the handshake over `sock` (made non-blocking) for `host`, with the core's
    /// material. Sends nothing yet: [`Session::poll`] does the I/O.
    pub fn start(
        sock: TcpStream,
        host: &str,
        tls: &TlsMaterial<'_>,
        seed: &[u8; 32],
    ) -> Result<Session, StartError> {
        let host = CString::new(host).map_err(|_| StartError::Host)?;
        sock.set_nonblocking(true).expect("set_nonblocking");
        let words = Self::context_size().div_ceil(8);
        let mut ctx = vec![0u64; words].into_boxed_slice();
        let pin = tls.broker_pin.map_or(std::ptr::null(), |p| p.as_ptr());
        let rc = c_call(|| unsafe {
            ffi::esptls_start(
                ctx.as_mut_ptr().cast(),
                host.as_ptr(),
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
        });
        match rc {
            0 => Ok(Session {
                ctx,
                sock,
                eof: false,
                record: None,
            }),
            -1 => Err(StartError::Ca),
            -2 => Err(StartError::Identity),
            -3 => Err(StartError::Host),
            -4 => Err(StartError::Time),
            _ => Err(StartError::Engine),
        }
    }

    /// Starts recording the bytes on the wire (call right after [`Session::start`]).
    pub fn record(&mut self) {
        self.record = Some((Vec::new(), Vec::new()));
    }

    /// The recorded bytes: (received from the broker, sent to the broker).
    pub fn recorded(&self) -> Option<(&[u8], &[u8])> {
        self.record.as_ref().map(|(i, o)| (&i[..], &o[..]))
    }

    fn t(&mut self) -> *mut c_void {
        self.ctx.as_mut_ptr().cast()
    }

    fn eng(&mut self) -> *mut c_void {
        unsafe { ffi::esptls_engine(self.t()) }
    }

    fn state(&mut self) -> c_uint {
        unsafe { ffi::esptls_state(self.t()) }
    }

    /// Moves records between the engine and the socket until neither side can progress.
    /// Never blocks. The client certificate is re-pointed first (the core's material may
    /// live anywhere between polls).
    pub fn pump(&mut self, tls: &TlsMaterial<'_>) {
        unsafe {
            ffi::esptls_rebind(
                self.t(),
                tls.client_cert_der.as_ptr(),
                tls.client_cert_der.len(),
            )
        };
        loop {
            let st = self.state();
            if st & BR_SSL_CLOSED != 0 {
                return;
            }
            let mut progress = false;
            if st & BR_SSL_SENDREC != 0 {
                let eng = self.eng();
                let mut len = 0;
                let buf = unsafe { ffi::br_ssl_engine_sendrec_buf(eng, &mut len) };
                let data = unsafe { std::slice::from_raw_parts(buf, len) };
                match self.sock.write(data) {
                    Ok(n) if n > 0 => {
                        if let Some((_, out)) = &mut self.record {
                            out.extend_from_slice(&data[..n]);
                        }
                        c_call(|| unsafe { ffi::br_ssl_engine_sendrec_ack(eng, n) });
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    _ => {
                        unsafe { ffi::esptls_fail_io(self.t()) };
                        return;
                    }
                }
            }
            if st & BR_SSL_RECVREC != 0 && !self.eof {
                let eng = self.eng();
                let mut len = 0;
                let buf = unsafe { ffi::br_ssl_engine_recvrec_buf(eng, &mut len) };
                let data = unsafe { std::slice::from_raw_parts_mut(buf, len) };
                match self.sock.read(data) {
                    Ok(0) => {
                        // The peer closed without close_notify (or after it).
                        self.eof = true;
                        unsafe { ffi::esptls_fail_io(self.t()) };
                        return;
                    }
                    Ok(n) => {
                        if let Some((input, _)) = &mut self.record {
                            input.extend_from_slice(&data[..n]);
                        }
                        c_call(|| unsafe { ffi::br_ssl_engine_recvrec_ack(eng, n) });
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                    Err(_) => {
                        unsafe { ffi::esptls_fail_io(self.t()) };
                        return;
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Advances the handshake: `None` while in progress, then `Some(Ok)` once application
    /// data can flow, or the fault.
    pub fn poll_handshake(&mut self, tls: &TlsMaterial<'_>) -> Option<Result<(), Fault>> {
        self.pump(tls);
        let st = self.state();
        if st & BR_SSL_CLOSED != 0 {
            return Some(Err(self.fault()));
        }
        if self.established() {
            return Some(Ok(()));
        }
        None
    }

    /// True once the handshake completed.
    pub fn established(&mut self) -> bool {
        self.state();
        unsafe { ffi::esptls_established(self.t()) != 0 }
    }

    /// The fault once the engine is closed.
    pub fn fault(&self) -> Fault {
        let t: *const c_void = self.ctx.as_ptr().cast();
        let br_err = unsafe { ffi::esptls_last_error(t) };
        match unsafe { ffi::esptls_fault(t) } {
            1 => Fault::ServerCertificate {
                br_err,
                pin: unsafe { ffi::esptls_pin_failed(t) } != 0,
            },
            3 => Fault::Closed { br_err },
            _ => Fault::Handshake { br_err },
        }
    }

    /// True when the engine is closed (failed or ended).
    pub fn closed(&mut self) -> bool {
        self.state() & BR_SSL_CLOSED != 0
    }

    /// Negotiated protocol version, cipher suite, and whether the broker acknowledged
    /// max_fragment_length.
    pub fn negotiated(&self) -> (u16, u16, bool) {
        let t: *const c_void = self.ctx.as_ptr().cast();
        unsafe {
            (
                ffi::esptls_version(t) as u16,
                ffi::esptls_cipher_suite(t) as u16,
                ffi::esptls_mfln_negotiated(t) != 0,
            )
        }
    }

    /// Bytes of plaintext ready to read, without blocking.
    pub fn read_ready(&mut self, tls: &TlsMaterial<'_>) -> bool {
        self.pump(tls);
        let st = self.state();
        st & (BR_SSL_RECVAPP | BR_SSL_CLOSED) != 0
    }

    /// Reads plaintext: `WouldBlock` if none yet, `Ok(0)` once the session ended.
    pub fn read(&mut self, tls: &TlsMaterial<'_>, out: &mut [u8]) -> io::Result<usize> {
        self.pump(tls);
        let st = self.state();
        if st & BR_SSL_RECVAPP != 0 {
            let eng = self.eng();
            let mut len = 0;
            let buf = unsafe { ffi::br_ssl_engine_recvapp_buf(eng, &mut len) };
            let n = len.min(out.len());
            out[..n].copy_from_slice(unsafe { std::slice::from_raw_parts(buf, n) });
            c_call(|| unsafe { ffi::br_ssl_engine_recvapp_ack(eng, n) });
            self.pump(tls);
            return Ok(n);
        }
        if st & BR_SSL_CLOSED != 0 {
            return Ok(0);
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// True when the engine can take plaintext now.
    pub fn write_ready(&mut self, tls: &TlsMaterial<'_>) -> bool {
        self.pump(tls);
        self.state() & BR_SSL_SENDAPP != 0
    }

    /// Writes plaintext (at most what the output buffer takes) and flushes it into a record:
    /// `WouldBlock` if the engine cannot take any now.
    pub fn write(&mut self, tls: &TlsMaterial<'_>, data: &[u8]) -> io::Result<usize> {
        self.pump(tls);
        let st = self.state();
        if st & BR_SSL_CLOSED != 0 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if st & BR_SSL_SENDAPP == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let eng = self.eng();
        let mut len = 0;
        let buf = unsafe { ffi::br_ssl_engine_sendapp_buf(eng, &mut len) };
        let n = len.min(data.len());
        unsafe { std::slice::from_raw_parts_mut(buf, n) }.copy_from_slice(&data[..n]);
        c_call(|| unsafe {
            ffi::br_ssl_engine_sendapp_ack(eng, n);
            ffi::br_ssl_engine_flush(eng, 0);
        });
        self.pump(tls);
        Ok(n)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        unsafe { ffi::esptls_wipe(self.t()) };
    }
}

/// Bytes of stack painted below each call into the engine.
const STACK_PAINT: usize = 16 * 1024;

thread_local! {
    static STACK_PEAK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs one call into the TLS engine (the calls that do its work: start, record in/out, app
/// data in/out) with the stack below it painted, and records how deep it went. The figure
/// includes the closure's own frame, so it is an upper bound of the C code's use.
#[inline(never)]
fn c_call<R>(f: impl FnOnce() -> R) -> R {
    unsafe { ffi::esptls_stack_paint(STACK_PAINT) };
    let r = f();
    let used = unsafe { ffi::esptls_stack_used(STACK_PAINT) };
    STACK_PEAK.with(|p| p.set(p.get().max(used)));
    r
}

/// The deepest stack any engine call on this thread used since the last reset (bytes).
pub fn stack_peak() -> usize {
    STACK_PEAK.with(|p| p.get())
}

/// Forgets the figure [`stack_peak`] reports.
pub fn reset_stack_peak() {
    STACK_PEAK.with(|p| p.set(0));
}
