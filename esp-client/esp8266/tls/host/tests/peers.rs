//! What the device's TLS offers and refuses, seen from peers no one here wrote: its ClientHello
//! as recorded on the wire, and `openssl s_server` configured the ways a wrong broker would be.

mod common;

use std::io::Read as _;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use esp8266_tls::{Fault, Session};

/// The ClientHello's cipher suites, supported groups and protocol version fields.
struct Hello {
    legacy_version: u16,
    suites: Vec<u16>,
    groups: Vec<u16>,
    versions_ext: bool,
}

fn parse_client_hello(wire: &[u8]) -> Hello {
    assert_eq!(wire[0], 22, "a handshake record");
    let body = &wire[5..];
    assert_eq!(body[0], 1, "ClientHello");
    let mut p = 4;
    let legacy_version = u16::from_be_bytes([body[p], body[p + 1]]);
    p += 2 + 32;
    p += 1 + body[p] as usize; // session id
    let n = u16::from_be_bytes([body[p], body[p + 1]]) as usize;
    let suites = body[p + 2..p + 2 + n]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    p += 2 + n;
    p += 1 + body[p] as usize; // compression methods
    let ext_end = p + 2 + u16::from_be_bytes([body[p], body[p + 1]]) as usize;
    p += 2;
    let (mut groups, mut versions_ext) = (Vec::new(), false);
    while p < ext_end {
        let ty = u16::from_be_bytes([body[p], body[p + 1]]);
        let len = u16::from_be_bytes([body[p + 2], body[p + 3]]) as usize;
        let data = &body[p + 4..p + 4 + len];
        if ty == 10 {
            groups = data[2..]
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
        }
        if ty == 43 {
            versions_ext = true;
        }
        p += 4 + len;
    }
    Hello {
        legacy_version,
        suites,
        groups,
        versions_ext,
    }
}

#[test]
fn the_client_hello_offers_tls12_one_suite_and_p256_only() {
    let setup = Setup::new();
    let m = Material::of(&setup.pki, DEVICE);
    let tls = m.tls();
    let sock = TcpStream::connect(("127.0.0.1", setup.broker.port())).unwrap();
    let mut s = Session::start(sock, "localhost", &tls, &[1u8; 32]).unwrap();
    s.record();
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.poll_handshake(&tls).is_none() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    let hello = parse_client_hello(s.recorded().unwrap().1);
    assert_eq!(hello.legacy_version, 0x0303, "TLS 1.2");
    assert!(
        !hello.versions_ext,
        "no supported_versions: TLS 1.3 is not offered"
    );
    // ECDHE-ECDSA-AES128-GCM-SHA256 (and BearSSL's renegotiation SCSV, 0x00FF, if any).
    let suites: Vec<u16> = hello.suites.into_iter().filter(|&s| s != 0x00FF).collect();
    assert_eq!(suites, vec![0xC02B]);
    assert_eq!(hello.groups, vec![23], "secp256r1 only");
}

/// `openssl s_server` with the broker's certificate on a free port, stopped by PID on drop.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(setup: &Setup, args: &[&str]) -> SServer {
        for _ in 0..5 {
            let port = broker_testkit::free_port();
            let broker = setup.pki.path().join("broker");
            let mut child = Command::new("openssl")
                .arg("s_server")
                .arg("-accept")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(broker.join("server.crt"))
                .arg("-key")
                .arg(broker.join("server.key"))
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("run openssl");
            // Ready once it prints ACCEPT.
            let mut out = child.stdout.take().unwrap();
            let mut seen = Vec::new();
            let mut b = [0u8; 256];
            let deadline = Instant::now() + Duration::from_secs(10);
            while !String::from_utf8_lossy(&seen).contains("ACCEPT") {
                match out.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&b[..n]),
                }
                if Instant::now() > deadline {
                    break;
                }
            }
            if String::from_utf8_lossy(&seen).contains("ACCEPT") {
                // Keep draining its output so it never blocks on a full pipe.
                std::thread::spawn(move || {
                    let mut sink = Vec::new();
                    let _ = out.read_to_end(&mut sink);
                });
                return SServer { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("openssl s_server did not start");
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn refused_by(setup: &Setup, args: &[&str]) -> Fault {
    let server = SServer::start(setup, args);
    let m = Material::of(&setup.pki, DEVICE);
    match handshake(server.port, "localhost", &m) {
        Err(Refused::Fault(f)) => f,
        Err(other) => panic!("unexpected {other:?}"),
        Ok(_) => panic!("the handshake succeeded against openssl s_server {args:?}"),
    }
}

#[test]
fn a_server_without_our_suite_or_version_gets_no_session() {
    let setup = Setup::new();
    // A TLS 1.2 server whose only suite is another one.
    let f = refused_by(
        &setup,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    );
    assert!(matches!(f, Fault::Handshake { .. }), "{f:?}");
    // A TLS 1.3-only server.
    let f = refused_by(&setup, &["-tls1_3"]);
    assert!(matches!(f, Fault::Handshake { .. }), "{f:?}");
    // Sanity: the same server with our suite does complete a handshake (no client
    // certificate asked), so the refusals above are about suite and version.
    let server = SServer::start(
        &setup,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    );
    let m = Material::of(&setup.pki, DEVICE);
    handshake(server.port, "localhost", &m).expect("handshake with openssl s_server");
}
