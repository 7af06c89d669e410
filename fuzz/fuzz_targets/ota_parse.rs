//! Header parsing and the bundle view never panic, and parse/emit round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire_format::ota::{BundleView, Header, HeaderView};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::parse(data) {
        let bytes = header.to_bytes();
        assert_eq!(Header::parse(&bytes), Ok(header));
        assert_eq!(&bytes[..], &data[..bytes.len()]);
    }
    if let Ok(view) = HeaderView::new_checked(data) {
        let _ = (view.version(), view.image_sha256(), view.build_time());
    }
    if let Ok(view) = BundleView::new_checked(data) {
        let _ = (
            view.is_unsigned(),
            view.image().len(),
            view.header_view().key_id(),
        );
    }
});
