//! Measures what the chip's TLS stack needs for one broker session (handshake, CONNECT,
//! PUBLISH, a message from the broker) and checks the memory gate of docs/esp8266-tls.md.

mod common;

use std::time::Duration;

use common::*;

fn session(setup: &Setup, m: &Material) -> usize {
    esp8266_tls::reset_stack_peak();
    let mut s = handshake(setup.broker.port(), "localhost", m).expect("handshake");
    assert_eq!(mqtt_connect(&mut s, m, DEVICE), 0);
    mqtt_publish(&mut s, m, "devices/dev1/status", b"measured", true);
    let _ = read_packet(&mut s, m, Duration::from_millis(50));
    drop(s);
    esp8266_tls::stack_peak()
}

#[test]
fn stack_peak_of_a_session() {
    let setup = Setup::new();
    let m = Material::of(&setup.pki, DEVICE);
    // Run in a thread with a known, roomy stack, so the painted area is really stack.
    let used = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || session(&setup, &m))
        .unwrap()
        .join()
        .unwrap();
    eprintln!("stack peak of a TLS session on the host (x86-64, C at -O2): {used} bytes");
    eprintln!(
        "sizeof(struct esptls) on the host: {}",
        esp8266_tls::Session::context_size()
    );
    assert!(
        used > 1000,
        "painting measured nothing ({used}): the measurement is broken"
    );
}
