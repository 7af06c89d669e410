//! The host transport builds its rustls configuration once per TLS material and keeps it for
//! the next connects, against a real Mosquitto from `provision broker`: a changed time floor
//! still takes effect on the cached configuration (the broker's 30-day certificate is refused at
//! a floor past its end and accepted again at today's), and a changed pin builds a new one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker_testkit::{Broker, Pki};
use esp_client::board::{ConnectError, Server, TlsMaterial, Transport};
use esp_client_host::tls::{spki_sha256, TlsTransport};
use wire_format::device_config::DeviceConfig;

const DAY: u64 = 86_400;

#[test]
fn the_cached_config_validates_at_each_attempts_floor_and_a_new_pin_rebuilds_it() {
    let pki = Pki::new(&["dev-1"]);
    let broker = Broker::start(&pki);
    let blob = std::fs::read(pki.write_config(&pki.config_options("dev-1", "dev.flash"))).unwrap();
    let cfg = DeviceConfig::parse(&blob).unwrap();
    let pem = std::fs::read(pki.path().join("broker/server.crt")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let broker_pin = spki_sha256(&pem.contents).unwrap();
    let wrong_pin = [0x5A; 32];
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let mut t = TlsTransport::new(false);
    let mut connect = |floor: u64, pin: Option<&[u8; 32]>| {
        let tls = TlsMaterial {
            ca_der: cfg.ca_cert_der,
            client_cert_der: cfg.client_cert_der,
            client_key_der: cfg.client_key_der,
            broker_pin: pin,
            time_floor_unix: floor,
        };
        let server = Server {
            host: "127.0.0.1",
            port: broker.port(),
        };
        let r = t.connect_blocking(server, &tls, Duration::from_secs(10));
        let why = t.last_error.clone().unwrap_or_default();
        t.close();
        (r, why, t.configs_built())
    };

    let (r, why, built) = connect(today, None);
    assert_eq!((r, built), (Ok(()), 1), "{why}");
    // 60 days on, the broker's certificate has expired: the same material, the cached
    // configuration, and the handshake fails at the new floor.
    let (r, why, built) = connect(today + 60 * DAY, None);
    assert_eq!(
        (r, built),
        (Err(ConnectError::ServerCertificate), 1),
        "{why}"
    );
    assert!(why.contains("expired") || why.contains("Expired"), "{why}");
    // Before the certificate's start the same.
    let (r, why, built) = connect(today - 60 * DAY, None);
    assert_eq!(
        (r, built),
        (Err(ConnectError::ServerCertificate), 1),
        "{why}"
    );
    // Back at today's floor it is accepted again: nothing of the refusals stuck.
    let (r, why, built) = connect(today + 1, None);
    assert_eq!((r, built), (Ok(()), 1), "{why}");

    // A pin is new material: a new configuration, whose verifier checks it.
    let (r, why, built) = connect(today, Some(&wrong_pin));
    assert_eq!(
        (r, built),
        (Err(ConnectError::ServerCertificate), 2),
        "{why}"
    );
    let (r, why, built) = connect(today, Some(&broker_pin));
    assert_eq!((r, built), (Ok(()), 3), "{why}");
    let (r, why, built) = connect(today + 60 * DAY, Some(&broker_pin));
    assert_eq!(
        (r, built),
        (Err(ConnectError::ServerCertificate), 3),
        "{why}"
    );
}
