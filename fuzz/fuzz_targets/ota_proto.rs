//! The OTA transfer protocol parsers (docs/ota-protocol.md) never panic on outside bytes, and
//! whatever one accepts emits back to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire_format::ota_proto::{Chunk, Offer, OfferView, Query, Request, Status, MAX_CHUNK_MSG};

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = Offer::parse(data) {
        assert_eq!(&o.to_bytes()[..], data);
        let _ = o.header();
        let view = OfferView::new_checked(data).unwrap();
        assert_eq!(view.bundle_prefix(), &o.bundle_prefix[..]);
    }
    if let Ok(r) = Request::parse(data) {
        assert_eq!(&r.to_bytes()[..], data);
        assert!(u64::from(r.offset) + u64::from(r.len) <= 1 << 32);
    }
    if let Ok(c) = Chunk::parse(data) {
        let mut out = [0u8; MAX_CHUNK_MSG];
        let n = c.emit(&mut out).unwrap();
        assert_eq!(&out[..n], data);
    }
    if let Ok(s) = Status::parse(data) {
        assert_eq!(&s.to_bytes()[..], data);
        let _ = std::format!("{}", s.phase);
    }
    if let Ok(q) = Query::parse(data) {
        assert_eq!(&q.to_bytes()[..], data);
    }
});
