//! The host transport's connect has one deadline for TCP and the whole TLS handshake: a server
//! that accepts and then dribbles bytes cannot hold the superloop past `--timeout-ms` (and so
//! cannot trip the watchdog), however short each single read is.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use broker_testkit::Pki;
use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};
use esp_client_host::tls::TlsTransport;
use provision::device_config::ConfigOptions;
use wire_format::device_config::DeviceConfig;

#[test]
fn a_dribbling_server_cannot_stretch_the_handshake() {
    let pki = Pki::new(&["dev-1"]);
    let out = pki.write_config(&ConfigOptions {
        broker_host: Some("127.0.0.1".into()),
        broker_port: Some(8883),
        ..pki.config_options("dev-1", "dev.flash")
    });
    let blob = std::fs::read(&out).unwrap();
    let cfg = DeviceConfig::parse(&blob).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // A record header announcing a 16 KiB handshake message, then a byte every 200 ms: every
        // read returns well within any per-read timeout, the handshake never ends.
        let _ = s.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]);
        for _ in 0..150 {
            std::thread::sleep(Duration::from_millis(200));
            if s.write_all(&[0x02]).is_err() {
                return;
            }
        }
    });

    let mut t = TlsTransport::new(false, Duration::from_millis(1_500));
    let material = TlsMaterial {
        ca_der: cfg.ca_cert_der,
        client_cert_der: cfg.client_cert_der,
        client_key_der: cfg.client_key_der,
        broker_pin: None,
        time_floor_unix: 1_800_000_000,
    };
    let r = t.connect(
        Server {
            host: "127.0.0.1",
            port,
        },
        &material,
    );
    assert_eq!(r, Err(ConnectError::Handshake), "{:?}", t.last_error);
    let why = t.last_error.clone().unwrap_or_default();
    assert!(
        why.contains(&format!(
            "TLS handshake with 127.0.0.1:{port}: not done within 1.5s"
        )),
        "{why}"
    );
}
