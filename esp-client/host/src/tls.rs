//! The host board's transport: TCP + rustls (ring provider only), configured from the device
//! config exactly as the ESP8266's BearSSL would be: one trust anchor (our CA), certificates
//! validated at the core's time floor (not the host clock), the client certificate and key from
//! the config blob, an optional SPKI pin, TLS 1.2 only unless `--tls13`.
//!
//! Nothing here blocks the superloop: TCP connects on a non-blocking socket (socket2), the
//! handshake advances one `poll_connect` at a time, and writes hand plaintext to rustls only when
//! the records it made before went out. The deadline is the core's (`connect_timeout_ms`).
//! Name resolution is the one exception (`getaddrinfo` has no non-blocking form in std); an IP
//! address or a name in /etc/hosts resolves at once.
//!
//! The rustls configuration (trust anchor, verifier, parsed client key) is built once per TLS
//! material and kept for the next attempts: a reconnect costs the handshake, not a rebuild. The
//! time floor is not part of it: the cached configuration asks the transport's [`Floor`], which
//! every `connect_start` sets, and no session is resumed, so every handshake validates the
//! broker's chain at the floor of its own attempt.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use embedded_io::ErrorKind;
use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// rustls asks this for "now": the core's floor for the attempt in progress (set by
/// `connect_start`, unix seconds).
#[derive(Debug, Default)]
struct Floor(AtomicU64);

impl TimeProvider for Floor {
    fn current_time(&self) -> Option<UnixTime> {
        let floor = self.0.load(Ordering::Relaxed);
        Some(UnixTime::since_unix_epoch(Duration::from_secs(floor)))
    }
}

/// A built configuration and the material it was built from.
struct Cached {
    /// SHA-256 over the material and the protocol choice ([`material_digest`]).
    digest: [u8; 32],
    config: Arc<ClientConfig>,
}

/// What a configuration is built from, as one digest: each field length-prefixed, so no two
/// different materials run together into the same bytes.
fn material_digest(tls: &TlsMaterial<'_>, tls13: bool) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let pin = tls.broker_pin.map_or(&[][..], |p| &p[..]);
    for field in [tls.ca_der, tls.client_cert_der, tls.client_key_der, pin] {
        ctx.update(&(field.len() as u64).to_le_bytes());
        ctx.update(field);
    }
    ctx.update(&[u8::from(tls.broker_pin.is_some()), u8::from(tls13)]);
    let mut digest = [0; 32];
    digest.copy_from_slice(ctx.finish().as_ref());
    digest
}

/// WebPKI validation, then the broker key must match the pinned SHA-256 of its SPKI.
#[derive(Debug)]
struct Pinned {
    inner: Arc<WebPkiServerVerifier>,
    pin: [u8; 32],
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (what `provision device config --pin-broker`
/// stores).
pub fn spki_sha256(cert_der: &[u8]) -> Option<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let d = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    d.as_ref().try_into().ok()
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        if spki_sha256(end_entity) != Some(self.pin) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// An established connection.
struct Session {
    conn: ClientConnection,
    sock: TcpStream,
    eof: bool,
}

/// A connection being opened: TCP to one address after the other, then the handshake.
struct Opening {
    conn: ClientConnection,
    addrs: Vec<SocketAddr>,
    /// Index in `addrs` of the address being tried.
    at: usize,
    /// The non-blocking TCP connect in progress, until it completes.
    tcp: Option<socket2::Socket>,
    /// The connected socket during the handshake.
    sock: Option<TcpStream>,
    /// Why the previous address failed.
    last: Option<String>,
    host: String,
    port: u16,
    started: Instant,
}

/// TCP + rustls, never blocking the caller.
pub struct TlsTransport {
    pub tls13: bool,
    opening: Option<Opening>,
    session: Option<Session>,
    /// Why the last connect or I/O failed, in words (the core only gets the category).
    pub last_error: Option<String>,
    /// Handshake time of the last successful connect (TCP + TLS).
    pub last_handshake: Option<Duration>,
    /// The floor the cached configuration validates at.
    floor: Arc<Floor>,
    cached: Option<Cached>,
    /// rustls configurations built so far (one per TLS material, not one per attempt).
    configs_built: u32,
}

fn build_config(
    tls: &TlsMaterial<'_>,
    tls13: bool,
    floor: Arc<Floor>,
) -> Result<ClientConfig, (ConnectError, String)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(tls.ca_der.to_vec()))
        .map_err(|e| {
            (
                ConnectError::ServerCertificate,
                format!("CA certificate from the config is unusable: {e}"),
            )
        })?;
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS12]
    };
    let builder = ClientConfig::builder_with_details(provider.clone(), floor)
        .with_protocol_versions(versions)
        .map_err(|e| (ConnectError::Handshake, e.to_string()))?;
    let builder = match tls.broker_pin {
        None => builder.with_root_certificates(roots),
        Some(pin) => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| (ConnectError::ServerCertificate, e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { inner, pin: *pin }))
        }
    };
    let chain = vec![CertificateDer::from(tls.client_cert_der.to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls.client_key_der.to_vec()));
    let mut config = builder.with_client_auth_cert(chain, key).map_err(|e| {
        (
            ConnectError::ClientIdentity,
            format!("device certificate or key from the config: {e}"),
        )
    })?;
    // As the chip's BearSSL: a full handshake every time. A resumed session would skip the
    // broker's chain, and with it the floor of the new attempt.
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// Starts a non-blocking TCP connect to `addr`.
fn tcp_start(addr: &SocketAddr) -> io::Result<socket2::Socket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(*addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    match sock.connect(&(*addr).into()) {
        Ok(()) => Ok(sock),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(sock),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(sock),
        Err(e) => Err(e),
    }
}

/// Sorts an I/O error from the handshake into the core's categories.
fn classify(e: &io::Error) -> ConnectError {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => ConnectError::ServerCertificate,
        Some(_) => ConnectError::Handshake,
        None => match e.kind() {
            io::ErrorKind::ConnectionRefused => ConnectError::Tcp,
            _ => ConnectError::Handshake,
        },
    }
}

impl Opening {
    /// Starts TCP to the next address that accepts a connect attempt; `Err` when none is left.
    fn next_address(&mut self) -> Result<(), (ConnectError, String)> {
        while self.at < self.addrs.len() {
            let addr = self.addrs[self.at];
            match tcp_start(&addr) {
                Ok(s) => {
                    self.tcp = Some(s);
                    return Ok(());
                }
                Err(e) => {
                    self.last = Some(format!("TCP {addr}: {e}"));
                    self.at += 1;
                }
            }
        }
        Err((
            ConnectError::Tcp,
            self.last
                .take()
                .unwrap_or_else(|| format!("{} resolved to nothing", self.host)),
        ))
    }

    /// One non-blocking step; `Ok(true)` once the handshake is complete.
    fn step(&mut self) -> Result<bool, (ConnectError, String)> {
        if let Some(tcp) = &self.tcp {
            let addr = self.addrs[self.at];
            let failed = match tcp.take_error() {
                Ok(Some(e)) | Err(e) => Some(e),
                Ok(None) => None,
            };
            match failed {
                Some(e) => {
                    self.last = Some(format!("TCP {addr}: {e}"));
                    self.tcp = None;
                    self.at += 1;
                    self.next_address()?;
                    return Ok(false);
                }
                // Not connected yet: still in progress.
                None if tcp.peer_addr().is_err() => return Ok(false),
                None => {}
            }
            let sock: TcpStream = self.tcp.take().expect("checked above").into();
            let _ = sock.set_nodelay(true);
            self.sock = Some(sock);
        }
        let io_err = |e: io::Error| {
            (
                classify(&e),
                format!("TLS handshake with {}:{}: {e}", self.host, self.port),
            )
        };
        let sock = self.sock.as_mut().expect("TCP is up");
        let conn = &mut self.conn;
        loop {
            while conn.wants_write() {
                match conn.write_tls(sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err(e)),
                }
            }
            if !conn.is_handshaking() {
                return Ok(true);
            }
            match conn.read_tls(sock) {
                Ok(0) => {
                    return Err(io_err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the broker closed the connection",
                    )))
                }
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        // Let the broker see our alert before the socket closes.
                        let _ = conn.write_tls(sock);
                        return Err(io_err(io::Error::new(io::ErrorKind::InvalidData, e)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(e)),
            }
        }
    }

    /// Where the attempt stands, for the log when the core gives up on it.
    fn phase(&self) -> String {
        match &self.tcp {
            Some(_) => format!("TCP {}", self.addrs[self.at]),
            None => format!("TLS handshake with {}:{}", self.host, self.port),
        }
    }
}

impl TlsTransport {
    /// Sleeps until the broker sends something or `timeout` passes: the host's stand-in for the
    /// chip's receive callback, which wakes the superloop when a segment arrives. Without an
    /// established connection it just sleeps.
    pub fn wait_readable(&self, timeout: Duration) {
        use std::os::fd::AsRawFd;
        let Some(s) = self.session.as_ref().filter(|s| !s.eof) else {
            std::thread::sleep(timeout);
            return;
        };
        let mut fd = libc::pollfd {
            fd: s.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd, alive for the whole call; poll(2) only writes `revents`.
        unsafe {
            libc::poll(&mut fd, 1, ms);
        }
    }

    pub fn new(tls13: bool) -> Self {
        TlsTransport {
            tls13,
            opening: None,
            session: None,
            last_error: None,
            last_handshake: None,
            floor: Arc::default(),
            cached: None,
            configs_built: 0,
        }
    }

    /// How many rustls configurations this transport built: one per TLS material (a changed
    /// certificate, key, pin or protocol choice), however many times it connected.
    pub fn configs_built(&self) -> u32 {
        self.configs_built
    }

    /// The configuration for `tls`, validating at its floor: the cached one while the material
    /// is the same.
    fn config(
        &mut self,
        tls: &TlsMaterial<'_>,
    ) -> Result<Arc<ClientConfig>, (ConnectError, String)> {
        self.floor.0.store(tls.time_floor_unix, Ordering::Relaxed);
        let digest = material_digest(tls, self.tls13);
        if let Some(c) = self.cached.as_ref().filter(|c| c.digest == digest) {
            return Ok(c.config.clone());
        }
        self.cached = None;
        let config = Arc::new(build_config(tls, self.tls13, self.floor.clone())?);
        self.configs_built += 1;
        self.cached = Some(Cached {
            digest,
            config: config.clone(),
        });
        Ok(config)
    }

    fn open(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Result<Opening, (ConnectError, String)> {
        let config = self.config(tls)?;
        let name = ServerName::try_from(server.host.to_owned()).map_err(|e| {
            (
                ConnectError::Dns,
                format!("broker host {:?}: {e}", server.host),
            )
        })?;
        let addrs: Vec<_> = (server.host, server.port)
            .to_socket_addrs()
            .map_err(|e| (ConnectError::Dns, format!("resolving {}: {e}", server.host)))?
            .collect();
        let conn = ClientConnection::new(config, name)
            .map_err(|e| (ConnectError::Handshake, e.to_string()))?;
        let mut o = Opening {
            conn,
            addrs,
            at: 0,
            tcp: None,
            sock: None,
            last: None,
            host: server.host.to_owned(),
            port: server.port,
            started: Instant::now(),
        };
        o.next_address()?;
        Ok(o)
    }

    /// Connects and waits (sleeping) until done or `timeout`: for benchmarks and tools that have
    /// no superloop. The device core never calls this.
    pub fn connect_blocking(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
        timeout: Duration,
    ) -> Result<(), ConnectError> {
        let deadline = Instant::now() + timeout;
        self.connect_start(server, tls)?;
        loop {
            if let Poll::Ready(r) = self.poll_connect(server, tls) {
                return r;
            }
            if Instant::now() >= deadline {
                self.close();
                return Err(ConnectError::Handshake);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn io_fail(&mut self, what: &str, e: impl std::fmt::Display) -> ErrorKind {
        self.last_error = Some(format!("{what}: {e}"));
        ErrorKind::ConnectionReset
    }

    /// Pushes buffered TLS records out as far as the socket takes them now. `Ok(true)`: all out.
    fn send_tls(&mut self) -> Result<bool, ErrorKind> {
        let Some(s) = self.session.as_mut() else {
            return Err(ErrorKind::NotConnected);
        };
        while s.conn.wants_write() {
            match s.conn.write_tls(&mut s.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_fail("sending", e)),
            }
        }
        Ok(true)
    }
}

impl embedded_io::ErrorType for TlsTransport {
    type Error = ErrorKind;
}

impl embedded_io::ReadReady for TlsTransport {
    fn read_ready(&mut self) -> Result<bool, ErrorKind> {
        let Some(s) = self.session.as_mut() else {
            return Err(ErrorKind::NotConnected);
        };
        let mut failure = None;
        let mut ready = s.eof;
        while !ready {
            let state = match s.conn.process_new_packets() {
                Ok(st) => st,
                Err(e) => {
                    failure = Some(("TLS", e.to_string()));
                    break;
                }
            };
            if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
                ready = true;
                break;
            }
            match s.conn.read_tls(&mut s.sock) {
                Ok(0) => s.eof = true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failure = Some(("receiving", e.to_string()));
                    break;
                }
            }
            ready = s.eof;
        }
        match failure {
            Some((what, e)) => Err(self.io_fail(what, e)),
            None => Ok(ready),
        }
    }
}

impl embedded_io::Read for TlsTransport {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let Some(s) = self.session.as_mut() else {
            return Err(ErrorKind::NotConnected);
        };
        match s.conn.reader().read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && s.eof => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(ErrorKind::Interrupted),
            Err(e) => Err(self.io_fail("receiving", e)),
        }
    }
}

impl embedded_io::WriteReady for TlsTransport {
    /// Ready once every record made from earlier writes went out to the socket: rustls's
    /// buffer stays small and a peer that stops reading shows as "would block".
    fn write_ready(&mut self) -> Result<bool, ErrorKind> {
        self.send_tls()
    }
}

impl embedded_io::Write for TlsTransport {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let Some(s) = self.session.as_mut() else {
            return Err(ErrorKind::NotConnected);
        };
        let n = s
            .conn
            .writer()
            .write(buf)
            .map_err(|_| ErrorKind::ConnectionReset)?;
        self.send_tls()?;
        Ok(n)
    }
    /// Blocks (up to 5 s) until every record went out; for tools, the core never calls it.
    fn flush(&mut self) -> Result<(), ErrorKind> {
        let start = Instant::now();
        while !self.send_tls()? {
            if start.elapsed() > Duration::from_secs(5) {
                return Err(self.io_fail("sending", "the socket took nothing for 5 s"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

impl Transport for TlsTransport {
    fn connect_start(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Result<(), ConnectError> {
        self.close();
        self.last_error = None;
        match self.open(server, tls) {
            Ok(o) => {
                self.opening = Some(o);
                Ok(())
            }
            Err((kind, detail)) => {
                self.last_error = Some(detail);
                Err(kind)
            }
        }
    }

    fn poll_connect(
        &mut self,
        _server: Server<'_>,
        _tls: &TlsMaterial<'_>,
    ) -> Poll<Result<(), ConnectError>> {
        let Some(o) = self.opening.as_mut() else {
            return Poll::Ready(Err(ConnectError::Tcp));
        };
        match o.step() {
            Ok(false) => Poll::Pending,
            Ok(true) => {
                let o = self.opening.take().expect("checked above");
                self.last_handshake = Some(o.started.elapsed());
                self.session = Some(Session {
                    conn: o.conn,
                    sock: o.sock.expect("TCP is up"),
                    eof: false,
                });
                Poll::Ready(Ok(()))
            }
            Err((kind, detail)) => {
                self.opening = None;
                self.last_error = Some(detail);
                Poll::Ready(Err(kind))
            }
        }
    }

    fn close(&mut self) {
        if let Some(o) = self.opening.take() {
            self.last_error = Some(format!(
                "{}: not done after {:?}, given up",
                o.phase(),
                Duration::from_millis(o.started.elapsed().as_millis() as u64)
            ));
        }
        if let Some(mut s) = self.session.take() {
            s.conn.send_close_notify();
            let _ = s.conn.write_tls(&mut s.sock);
            let _ = s.sock.flush();
        }
    }
}
