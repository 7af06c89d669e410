//! The host board's transport: TCP + rustls (ring provider only), configured from the device
//! config exactly as the ESP8266's BearSSL would be: one trust anchor (our CA), certificates
//! validated at the core's time floor (not the host clock), the client certificate and key from
//! the config blob, an optional SPKI pin, TLS 1.2 only unless `--tls13`.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_io::ErrorKind;
use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// rustls asks this for "now": the core's floor, fixed for the handshake.
#[derive(Debug)]
struct Floor(u64);

impl TimeProvider for Floor {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(self.0)))
    }
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

struct Session {
    conn: ClientConnection,
    sock: TcpStream,
    eof: bool,
}

/// TCP + rustls, non-blocking once connected.
pub struct TlsTransport {
    pub tls13: bool,
    pub timeout: Duration,
    session: Option<Session>,
    /// Why the last connect or I/O failed, in words (the core only gets the category).
    pub last_error: Option<String>,
    /// Handshake time of the last successful connect (TCP + TLS).
    pub last_handshake: Option<Duration>,
}

fn build_config(
    tls: &TlsMaterial<'_>,
    tls13: bool,
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
    let builder =
        ClientConfig::builder_with_details(provider.clone(), Arc::new(Floor(tls.time_floor_unix)))
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
    builder.with_client_auth_cert(chain, key).map_err(|e| {
        (
            ConnectError::ClientIdentity,
            format!("device certificate or key from the config: {e}"),
        )
    })
}

/// Sends what rustls has queued, then reads once and processes it. Errors carry the rustls error
/// inside an `io::Error`, as `complete_io` does, so that [`classify`] can sort them.
fn handshake_step(conn: &mut ClientConnection, sock: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    if conn.is_handshaking() && conn.wants_read() {
        if conn.read_tls(sock)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Err(e) = conn.process_new_packets() {
            // Let the broker see our alert before the socket closes.
            let _ = conn.write_tls(sock);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
    Ok(())
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

impl TlsTransport {
    pub fn new(tls13: bool, timeout: Duration) -> Self {
        TlsTransport {
            tls13,
            timeout,
            session: None,
            last_error: None,
            last_handshake: None,
        }
    }

    fn open(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> Result<Session, (ConnectError, String)> {
        let config = Arc::new(build_config(tls, self.tls13)?);
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
        // One deadline for all addresses and the whole handshake: per-step timeouts would add up
        // (two dead addresses, then a broker that sends a byte now and then) past the watchdog.
        let deadline = Instant::now() + self.timeout;
        let left = || {
            let d = deadline.saturating_duration_since(Instant::now());
            (!d.is_zero()).then_some(d)
        };
        let mut last = None;
        let mut sock = None;
        for addr in &addrs {
            let Some(budget) = left() else { break };
            match TcpStream::connect_timeout(addr, budget) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("TCP {addr}: {e}")),
            }
        }
        let mut sock = sock.ok_or_else(|| {
            (
                ConnectError::Tcp,
                last.unwrap_or_else(|| format!("{} resolved to nothing", server.host)),
            )
        })?;
        let io_err = |e: io::Error| {
            (
                classify(&e),
                format!("TLS handshake with {}:{}: {e}", server.host, server.port),
            )
        };
        sock.set_nodelay(true).map_err(io_err)?;
        let mut conn = ClientConnection::new(config, name)
            .map_err(|e| (ConnectError::Handshake, e.to_string()))?;
        let too_slow = || {
            (
                ConnectError::Handshake,
                format!(
                    "TLS handshake with {}:{}: not done within {:?}",
                    server.host, server.port, self.timeout
                ),
            )
        };
        while conn.is_handshaking() {
            let budget = left().ok_or_else(too_slow)?;
            sock.set_read_timeout(Some(budget)).map_err(io_err)?;
            sock.set_write_timeout(Some(budget)).map_err(io_err)?;
            // One step at a time: `complete_io` loops until the handshake is done, so a peer that
            // keeps sending a byte now and then would never let the deadline be checked.
            handshake_step(&mut conn, &mut sock).map_err(|e| match e.kind() {
                // A socket timeout reads as EAGAIN on Linux.
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => too_slow(),
                _ => io_err(e),
            })?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut sock).map_err(io_err)?;
        }
        sock.set_nonblocking(true).map_err(io_err)?;
        Ok(Session {
            conn,
            sock,
            eof: false,
        })
    }

    fn io_fail(&mut self, what: &str, e: impl std::fmt::Display) -> ErrorKind {
        self.last_error = Some(format!("{what}: {e}"));
        ErrorKind::ConnectionReset
    }

    /// Pushes buffered TLS records out, waiting (bounded by the timeout) if the socket is full.
    fn flush_tls(&mut self) -> Result<(), ErrorKind> {
        let timeout = self.timeout;
        let Some(s) = self.session.as_mut() else {
            return Err(ErrorKind::NotConnected);
        };
        let start = Instant::now();
        while s.conn.wants_write() {
            match s.conn.write_tls(&mut s.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_fail("sending", e)),
            }
        }
        Ok(())
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
        self.flush_tls()?;
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        self.flush_tls()
    }
}

impl Transport for TlsTransport {
    fn connect(&mut self, server: Server<'_>, tls: &TlsMaterial<'_>) -> Result<(), ConnectError> {
        self.close();
        let start = Instant::now();
        match self.open(server, tls) {
            Ok(s) => {
                self.session = Some(s);
                self.last_error = None;
                self.last_handshake = Some(start.elapsed());
                Ok(())
            }
            Err((kind, detail)) => {
                self.last_error = Some(detail);
                Err(kind)
            }
        }
    }

    fn close(&mut self) {
        if let Some(mut s) = self.session.take() {
            s.conn.send_close_notify();
            let _ = s.conn.write_tls(&mut s.sock);
            let _ = s.sock.flush();
        }
    }
}
