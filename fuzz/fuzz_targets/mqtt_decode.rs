//! The device's MQTT decoder never panics on broker bytes, framing agrees with parsing, and a
//! parsed PUBLISH re-encodes to the same bytes. Also feeds the same bytes to the device config
//! parser (the other format the device reads from outside).
#![no_main]

use esp_client::mqtt::{frame_len, Packet};
use libfuzzer_sys::fuzz_target;
use wire_format::device_config::DeviceConfig;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((_, total))) = frame_len(rest) {
        if total > rest.len() {
            break;
        }
        let (frame, tail) = rest.split_at(total);
        if let Ok(Packet::Publish(p)) = Packet::parse(frame) {
            let mut buf = vec![0u8; frame.len() + 8];
            let n = p.emit(&mut buf).expect("a parsed PUBLISH re-encodes");
            // Our encoder uses the shortest remaining length; the broker's may not.
            assert_eq!(Packet::parse(&buf[..n]), Ok(Packet::Publish(p)));
        }
        rest = tail;
    }
    if let Ok(cfg) = DeviceConfig::parse(data) {
        let mut buf = vec![0u8; cfg.blob_len()];
        let n = cfg.emit(&mut buf).expect("a parsed config re-encodes");
        assert_eq!(&buf[..n], &data[..n]);
    }
});
