//! The device config parser never panics on any sector; a blob that parses emits back to the
//! same bytes (a version 2 blob with one endpoint is written as version 1), and the layout's
//! view is the parse. Each input is tried as it is and resealed (its length and CRC-32 made
//! right), so the fuzzer reaches the fields behind the CRC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire_format::device_config::{crc32, DeviceConfig, Layout, HEADER_LEN, MAX_LEN};

fn check(data: &[u8]) {
    let Ok(cfg) = DeviceConfig::parse(data) else {
        return;
    };
    let mut out = [0u8; MAX_LEN];
    let n = cfg.emit(&mut out).expect("a parsed config emits");
    if cfg.version() == data[4] {
        assert_eq!(&out[..n], &data[..n]);
    }
    assert_eq!(DeviceConfig::parse(&out[..n]), Ok(cfg));
    let layout = Layout::of(data).expect("parse succeeded");
    assert_eq!(layout.view(data), cfg);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= HEADER_LEN && data.len() + 4 <= MAX_LEN {
        let mut b = data.to_vec();
        b[..4].copy_from_slice(b"ESPC");
        let len = (b.len() + 4) as u16;
        b[6..8].copy_from_slice(&len.to_le_bytes());
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        check(&b);
    }
});
