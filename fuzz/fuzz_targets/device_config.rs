//! The device config parser never panics on any sector; a blob that parses emits back to the
//! same bytes (a version 2 blob with one endpoint is written as version 1), and the layout's
//! view is the parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire_format::device_config::{DeviceConfig, Layout, MAX_LEN};

fuzz_target!(|data: &[u8]| {
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
});
