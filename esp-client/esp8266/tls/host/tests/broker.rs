//! The chip's TLS stack (vendored BearSSL + esptls.c, the chip's configuration) against a real
//! Mosquitto configured by `provision broker`: what it accepts and what it refuses.

mod common;

use std::time::Duration;

use common::*;
use esp8266_tls::{Fault, StartError, SUITE_ECDHE_ECDSA_AES128_GCM_SHA256, TLS12};
use esp_client::mqtt::Packet;
use x509_parser::prelude::*;

fn server_cert_fault(r: Result<esp8266_tls::Session, Refused>) -> (i32, bool) {
    match r {
        Err(Refused::Fault(Fault::ServerCertificate { br_err, pin })) => (br_err, pin),
        Err(other) => panic!("expected a refused broker certificate, got {other:?}"),
        Ok(_) => panic!("expected a refused broker certificate, the handshake succeeded"),
    }
}

/// BearSSL's error codes this test expects (bearssl_x509.h).
const BR_ERR_X509_EXPIRED: i32 = 54;
const BR_ERR_X509_BAD_SERVER_NAME: i32 = 56;
const BR_ERR_X509_NOT_TRUSTED: i32 = 62;

#[test]
fn handshake_connect_publish_arrives_at_mosquitto_sub() {
    let setup = Setup::new();
    let m = Material::of(&setup.pki, DEVICE);
    let mut s = handshake(setup.broker.port(), "localhost", &m).expect("handshake");
    let (version, suite, mfln) = s.negotiated();
    assert_eq!(version, TLS12);
    assert_eq!(suite, SUITE_ECDHE_ECDSA_AES128_GCM_SHA256);
    // Mosquitto on OpenSSL 3 acknowledges max_fragment_length: every record it sends is at
    // most 1024 bytes of plaintext (docs/esp8266-tls.md, "Record buffers").
    assert!(mfln, "broker did not acknowledge max_fragment_length");

    // The broker takes the CN of our client certificate as the username: only with the
    // device's certificate may it write devices/dev1/status (ACL), so arrival proves it.
    assert_eq!(mqtt_connect(&mut s, &m, DEVICE), 0, "CONNACK refused");
    let body = b"online via BearSSL";
    mqtt_publish(&mut s, &m, "devices/dev1/status", body, true);
    let got = operator_receives(&setup, "devices/dev1/status").expect("message arrived");
    assert_eq!(got, body);
}

#[test]
fn the_largest_packet_the_broker_lets_through_arrives_in_fragments() {
    let setup = Setup::new();
    // The broker's whole-packet limit `provision broker` writes must fit the input buffer even
    // without max_fragment_length: 2,082 - 5 - 8 - 16 = 2,053 bytes of plaintext per record.
    let conf = std::fs::read_to_string(setup.pki.path().join("broker/mosquitto.conf")).unwrap();
    let limit: usize = conf
        .lines()
        .find_map(|l| l.strip_prefix("max_packet_size "))
        .expect("provision broker sets max_packet_size")
        .trim()
        .parse()
        .unwrap();
    assert!(
        limit <= 2053,
        "max_packet_size {limit} exceeds what the device's TLS input takes"
    );

    let m = Material::of(&setup.pki, DEVICE);
    let mut s = handshake(setup.broker.port(), "localhost", &m).expect("handshake");
    assert_eq!(mqtt_connect(&mut s, &m, DEVICE), 0);
    mqtt_subscribe(&mut s, &m, "devices/dev1/cmd/#");
    // A PUBLISH of exactly `limit` bytes: 1 + 2 (remaining length) + 2 + topic + 2 (packet id).
    let topic = "devices/dev1/cmd/big";
    let payload: Vec<u8> = (0..limit - 7 - topic.len())
        .map(|i| (i % 251) as u8)
        .collect();
    let file = setup.pki.path().join("big.bin");
    std::fs::write(&file, &payload).unwrap();
    // The subscription is in place once SUBACK came back; publish now. The broker sends it in
    // records of at most 512 bytes (max_fragment_length, asserted in the first test).
    operator_publishes(&setup, topic, &file);
    let p = read_packet(&mut s, &m, Duration::from_secs(10)).expect("PUBLISH to the device");
    assert_eq!(p.len(), limit);
    match Packet::parse(&p).unwrap() {
        Packet::Publish(pubm) => {
            assert_eq!(pubm.topic, topic);
            assert_eq!(pubm.payload, &payload[..]);
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[test]
fn a_broker_certificate_from_another_ca_is_refused() {
    let setup = Setup::new();
    let other = broker_testkit::Pki::new(&[]);
    let mut m = Material::of(&setup.pki, DEVICE);
    m.ca = der(&other.ca_cert());
    let (err, pin) = server_cert_fault(handshake(setup.broker.port(), "localhost", &m));
    assert_eq!(err, BR_ERR_X509_NOT_TRUSTED);
    assert!(!pin);
}

#[test]
fn a_wrong_host_name_is_refused() {
    let setup = Setup::new();
    let m = Material::of(&setup.pki, DEVICE);
    let (err, _) = server_cert_fault(handshake(setup.broker.port(), "mqtt.example.net", &m));
    assert_eq!(err, BR_ERR_X509_BAD_SERVER_NAME);
}

#[test]
fn validity_is_checked_at_the_time_floor_not_the_host_clock() {
    let setup = Setup::new();
    let cert = setup.broker_cert_der();
    let (_, parsed) = X509Certificate::from_der(&cert).unwrap();
    let not_before = parsed.validity().not_before.timestamp() as u64;
    let not_after = parsed.validity().not_after.timestamp() as u64;

    // A floor past the broker certificate's notAfter: expired, though the host clock is fine.
    let mut m = Material::of(&setup.pki, DEVICE);
    m.floor = not_after + 60;
    let (err, _) = server_cert_fault(handshake(setup.broker.port(), "localhost", &m));
    assert_eq!(err, BR_ERR_X509_EXPIRED);

    // Before notBefore: BearSSL reports that as the same "expired" code.
    m.floor = not_before - 60;
    let (err, _) = server_cert_fault(handshake(setup.broker.port(), "localhost", &m));
    assert_eq!(err, BR_ERR_X509_EXPIRED);

    // One minute before notAfter: accepted.
    m.floor = not_after - 60;
    handshake(setup.broker.port(), "localhost", &m).expect("valid at the floor");

    // No time at all: refused before anything is sent.
    m.floor = 0;
    assert!(matches!(
        handshake(setup.broker.port(), "localhost", &m),
        Err(Refused::Start(StartError::Time))
    ));
}

#[test]
fn the_spki_pin_is_enforced_on_top_of_the_ca() {
    let setup = Setup::new();
    let cert = setup.broker_cert_der();
    let pin = provision::device_config::spki_pin(&cert, std::path::Path::new("server.crt"))
        .expect("pin from provision");
    let mut m = Material::of(&setup.pki, DEVICE);
    m.pin = Some(pin);
    let mut s = handshake(setup.broker.port(), "localhost", &m).expect("pinned handshake");
    assert_eq!(mqtt_connect(&mut s, &m, DEVICE), 0);

    let mut wrong = pin;
    wrong[31] ^= 1;
    m.pin = Some(wrong);
    let (err, pin_failed) = server_cert_fault(handshake(setup.broker.port(), "localhost", &m));
    assert_eq!(err, BR_ERR_X509_NOT_TRUSTED);
    assert!(pin_failed, "the pin, not the chain, must be what failed");
}

#[test]
fn unusable_material_is_refused_before_anything_is_sent() {
    let setup = Setup::new();
    let two = broker_testkit::Pki::new(&["dev2"]);
    let good = Material::of(&setup.pki, DEVICE);
    let port = setup.broker.port();

    // Our certificate with another device's key.
    let mut m = Material::of(&setup.pki, DEVICE);
    m.key = Material::of(&two, "dev2").key;
    assert_eq!(
        handshake(port, "localhost", &m).err(),
        Some(Refused::Start(StartError::Identity))
    );
    // A leaf as the CA (not a CA certificate), garbage as the CA.
    let mut m = Material::of(&setup.pki, DEVICE);
    m.ca = good.cert.clone();
    assert_eq!(
        handshake(port, "localhost", &m).err(),
        Some(Refused::Start(StartError::Ca))
    );
    m.ca = vec![0x30, 0x03, 0x02, 0x01, 0x00];
    assert_eq!(
        handshake(port, "localhost", &m).err(),
        Some(Refused::Start(StartError::Ca))
    );
    // No host name.
    let m = Material::of(&setup.pki, DEVICE);
    assert_eq!(
        handshake(port, "", &m).err(),
        Some(Refused::Start(StartError::Host))
    );
}

#[test]
fn a_device_the_broker_does_not_know_gets_no_session() {
    // Client certificate from another CA: the broker refuses the handshake.
    let setup = Setup::new();
    let stranger = broker_testkit::Pki::new(&["dev1"]);
    let mut m = Material::of(&stranger, "dev1");
    m.ca = der(&setup.pki.ca_cert());
    match handshake(setup.broker.port(), "localhost", &m) {
        Err(Refused::Fault(Fault::Handshake { br_err })) => {
            // A fatal alert received from the broker (BR_ERR_RECV_FATAL_ALERT + code), or
            // the connection dropped.
            assert!(br_err == 31 || br_err >= 256, "unexpected error {br_err}");
        }
        other => panic!("expected the broker to refuse us, got {:?}", other.err()),
    }
}
