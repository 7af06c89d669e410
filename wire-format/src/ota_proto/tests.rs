extern crate std;

use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::string::{String, ToString};
use std::vec::Vec;

fn header() -> Header {
    Header {
        target: crate::ota::Target::Esp8266,
        key_id: 7,
        security_counter: 3,
        image_len: 5000,
        version: Version {
            major: 1,
            minor: 2,
            patch: 3,
        },
        build_time: 1_764_000_000,
        image_sha256: [0x5A; 32],
    }
}

fn offer() -> Offer {
    let mut bundle_prefix = [0xEE; IMAGE_OFFSET];
    bundle_prefix[..HEADER_LEN].copy_from_slice(&header().to_bytes());
    Offer { bundle_prefix }
}

fn status() -> Status {
    Status {
        phase: Phase::Downloading { percent: 42 },
        bundle_id: 0xA1B2_C3D4,
        running: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        running_slot: Slot::B,
        bundle_version: Version {
            major: 1,
            minor: 2,
            patch: 3,
        },
        received: 2100,
        image_len: 5000,
        floor: 2,
    }
}

#[test]
fn every_message_round_trips_and_lays_out_as_documented() {
    let o = offer().to_bytes();
    assert_eq!(&o[..4], &[1, 1, 0, 0]);
    assert_eq!(&o[4..76], &header().to_bytes());
    assert_eq!(Offer::parse(&o), Ok(offer()));
    assert_eq!(Offer::parse(&o).unwrap().header(), Ok(header()));
    let view = OfferView::new_checked(&o).unwrap();
    assert_eq!(view.signature(), &[0xEE; 64]);

    let r = Request {
        bundle_id: 0x0403_0201,
        offset: 0x0807_0605,
        len: 1024,
    };
    assert_eq!(r.to_bytes(), [1, 2, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(Request::parse(&r.to_bytes()), Ok(r));

    let data = [9u8; 3];
    let c = Chunk {
        bundle_id: 0x0403_0201,
        offset: 4096,
        data: &data,
    };
    let mut buf = [0u8; MAX_CHUNK_MSG];
    let n = c.emit(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[1, 3, 3, 0, 1, 2, 3, 4, 0, 0x10, 0, 0, 9, 9, 9]);
    assert_eq!(Chunk::parse(&buf[..n]), Ok(c));
    assert_eq!(
        c.emit(&mut buf[..n - 1]),
        Err(ProtoError::BufferTooSmall { needed: n })
    );

    let s = status().to_bytes();
    assert_eq!(&s[..4], &[1, 4, 1, 42]);
    assert_eq!(&s[4..8], &0xA1B2_C3D4u32.to_le_bytes());
    assert_eq!(&s[8..16], &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&s[16..24], &[1, 0, 2, 0, 3, 0, 0, 0]);
    assert_eq!(&s[24..36], &[0x34, 8, 0, 0, 0x88, 0x13, 0, 0, 2, 0, 0, 0]);
    assert_eq!(&s[36..40], &[1, 0, 0, 0]);
    assert_eq!(s.len(), 40);
    assert_eq!(Status::parse(&s), Ok(status()));

    assert_eq!(Query.to_bytes(), [1, 5, 0, 0]);
    assert_eq!(Query::parse(&Query.to_bytes()), Ok(Query));
}

#[test]
fn query_errors_name_the_problem() {
    let q = Query.to_bytes();
    for cut in 0..q.len() {
        assert!(
            matches!(Query::parse(&q[..cut]), Err(ProtoError::Truncated { .. })),
            "{cut}"
        );
    }
    assert_eq!(
        Query::parse(&[1, 5, 0, 0, 0]),
        Err(ProtoError::TrailingData {
            expected: 4,
            received: 5
        })
    );
    assert_eq!(
        Query::parse(&[2, 5, 0, 0]),
        Err(ProtoError::UnsupportedVersion { found: 2 })
    );
    for at in 2..4 {
        let mut r = q;
        r[at] = 0x80;
        assert_eq!(Query::parse(&r), Err(ProtoError::Reserved), "{at}");
    }
    // An offer's first bytes on the query topic, and a query on the offer topic.
    assert_eq!(
        Query::parse(&offer().to_bytes()[..4]),
        Err(ProtoError::WrongKind {
            expected: Kind::Query,
            found: 1
        })
    );
    assert_eq!(
        Offer::parse(&q),
        Err(ProtoError::WrongKind {
            expected: Kind::Offer,
            found: 5
        })
    );
    assert_eq!(
        ProtoError::WrongKind {
            expected: Kind::Query,
            found: 1
        }
        .to_string(),
        "message kind 1 on the query topic (expected 5)"
    );
    assert_eq!(Kind::from_topic(TOPIC_QUERY), Some(Kind::Query));
    assert_eq!(Kind::from_topic("ota/down/other"), None);
}

#[test]
fn the_running_slot_round_trips_and_a_bad_one_is_refused() {
    for slot in Slot::ALL {
        let s = Status {
            running_slot: slot,
            ..status()
        };
        let bytes = s.to_bytes();
        assert_eq!(bytes[36], slot as u8);
        assert_eq!(Status::parse(&bytes), Ok(s));
        assert_eq!(Slot::from_u8(slot as u8), Some(slot));
    }
    assert_eq!(Slot::A.to_string(), "A");
    assert_eq!(Slot::B.to_string(), "B");
    for found in [2u8, 0x80, 0xFF] {
        let mut bad = status().to_bytes();
        bad[36] = found;
        assert_eq!(Status::parse(&bad), Err(ProtoError::BadSlot { found }));
        assert!(ProtoError::BadSlot { found }
            .to_string()
            .contains("running slot"));
    }
    for at in 37..40 {
        let mut bad = status().to_bytes();
        bad[at] = 1;
        assert_eq!(Status::parse(&bad), Err(ProtoError::Reserved), "{at}");
    }
    // A status of the old 36-byte length, or one byte long, is refused by its length.
    let s = status().to_bytes();
    assert_eq!(
        Status::parse(&s[..36]),
        Err(ProtoError::Truncated {
            expected: 40,
            received: 36
        })
    );
    let mut long = [0u8; STATUS_LEN + 1];
    long[..STATUS_LEN].copy_from_slice(&s);
    assert_eq!(
        Status::parse(&long),
        Err(ProtoError::TrailingData {
            expected: 40,
            received: 41
        })
    );
}

#[test]
fn every_phase_round_trips() {
    let mut phases = std::vec![
        Phase::Idle,
        Phase::Verifying,
        Phase::PendingReboot,
        Phase::Trial,
        Phase::Confirmed,
        Phase::Downloading { percent: 0 },
        Phase::Downloading { percent: 100 },
    ];
    for r in Reason::ALL {
        phases.push(Phase::Refused(r));
        phases.push(Phase::RolledBack(r));
        assert_eq!(Reason::from_u8(r as u8), Some(r));
    }
    for phase in phases {
        let s = Status { phase, ..status() };
        assert_eq!(Status::parse(&s.to_bytes()), Ok(s), "{phase}");
    }
    for st in State::ALL {
        assert_eq!(State::from_u8(st as u8), Some(st));
    }
    for k in Kind::ALL {
        assert_eq!(Kind::from_u8(k as u8), Some(k));
        assert_eq!(Kind::from_topic(k.topic()), Some(k));
    }
    let mut bad = status().to_bytes();
    bad[3] = 101;
    assert_eq!(
        Status::parse(&bad),
        Err(ProtoError::BadState {
            state: 1,
            detail: 101
        })
    );
    bad[2] = 8;
    bad[3] = 0;
    assert!(matches!(
        Status::parse(&bad),
        Err(ProtoError::BadState { .. })
    ));
    bad[2] = State::Refused as u8;
    bad[3] = 0;
    assert!(matches!(
        Status::parse(&bad),
        Err(ProtoError::BadState { .. })
    ));
    bad[2] = State::Confirmed as u8;
    bad[3] = 1;
    assert!(matches!(
        Status::parse(&bad),
        Err(ProtoError::BadState { .. })
    ));
}

#[test]
fn head_errors_name_the_problem() {
    let r = Request {
        bundle_id: 1,
        offset: 0,
        len: 16,
    }
    .to_bytes();
    for cut in 0..r.len() {
        assert!(
            matches!(Request::parse(&r[..cut]), Err(ProtoError::Truncated { .. })),
            "{cut}"
        );
    }
    let mut long = [0u8; REQUEST_LEN + 1];
    long[..REQUEST_LEN].copy_from_slice(&r);
    assert_eq!(
        Request::parse(&long),
        Err(ProtoError::TrailingData {
            expected: 12,
            received: 13
        })
    );
    let mut v = r;
    v[0] = 2;
    assert_eq!(
        Request::parse(&v),
        Err(ProtoError::UnsupportedVersion { found: 2 })
    );
    // A status on the request topic.
    assert_eq!(
        Request::parse(&status().to_bytes()[..12]),
        Err(ProtoError::WrongKind {
            expected: Kind::Request,
            found: 4
        })
    );
    let mut z = r;
    z[2] = 0;
    z[3] = 0;
    assert_eq!(Request::parse(&z), Err(ProtoError::BadLength { len: 0 }));
    let too_long = Request {
        len: MAX_CHUNK_LEN as u16 + 1,
        ..Request::parse(&r).unwrap()
    };
    assert_eq!(
        Request::parse(&too_long.to_bytes()),
        Err(ProtoError::BadLength { len: 1025 })
    );
    let wrap = Request {
        offset: u32::MAX,
        len: 2,
        bundle_id: 1,
    };
    assert_eq!(
        Request::parse(&wrap.to_bytes()),
        Err(ProtoError::RangeOverflow)
    );
    let last = Request {
        offset: u32::MAX,
        len: 1,
        bundle_id: 1,
    };
    assert_eq!(Request::parse(&last.to_bytes()), Ok(last));

    let mut o = offer().to_bytes();
    o[2] = 1;
    assert_eq!(Offer::parse(&o), Err(ProtoError::Reserved));
    assert!(matches!(
        Offer::parse(&o[..139]),
        Err(ProtoError::Truncated { .. })
    ));
    assert!(Offer::from_bundle(&[0; 135]).is_err());
}

#[test]
fn chunk_length_must_match_the_data() {
    let data = [1u8; 8];
    let mut buf = [0u8; 64];
    let n = Chunk {
        bundle_id: 5,
        offset: 0,
        data: &data,
    }
    .emit(&mut buf)
    .unwrap();
    assert_eq!(
        Chunk::parse(&buf[..n - 1]),
        Err(ProtoError::Truncated {
            expected: 20,
            received: 19
        })
    );
    assert_eq!(
        Chunk::parse(&buf[..n + 1]),
        Err(ProtoError::TrailingData {
            expected: 20,
            received: 21
        })
    );
    assert!(matches!(
        Chunk::parse(&buf[..CHUNK_HEADER_LEN]),
        Err(ProtoError::Truncated { .. })
    ));
    let big = [0u8; MAX_CHUNK_LEN + 1];
    assert_eq!(
        Chunk {
            bundle_id: 5,
            offset: 0,
            data: &big
        }
        .emit(&mut [0u8; 2048]),
        Err(ProtoError::BadLength { len: 1025 })
    );
    let full = [7u8; MAX_CHUNK_LEN];
    let mut out = [0u8; MAX_CHUNK_MSG];
    let c = Chunk {
        bundle_id: 5,
        offset: 1 << 20,
        data: &full,
    };
    assert_eq!(c.emit(&mut out), Ok(MAX_CHUNK_MSG));
    assert_eq!(Chunk::parse(&out), Ok(c));
}

#[test]
fn a_full_chunk_fits_the_device_receive_buffer() {
    // devices/<63-char id>/ota/down/chunk, QoS 1, 1024 data bytes: the whole MQTT packet.
    let id: String = core::iter::repeat_n('a', MAX_ID_LEN).collect();
    let topic = std::format!("devices/{id}/{TOPIC_CHUNK}");
    assert_eq!(topic.len(), MAX_TOPIC_LEN);
    let remaining = 2 + topic.len() + 2 + MAX_CHUNK_MSG;
    let fixed = 1 + if remaining < 128 {
        1
    } else if remaining < 16384 {
        2
    } else {
        3
    };
    assert!(fixed + remaining <= MAX_CHUNK_PACKET);
    const { assert!(MAX_CHUNK_PACKET <= 2048) };
}

#[test]
fn bundle_ids_are_never_zero() {
    assert_eq!(bundle_id(&[0; 32]), 1);
    let mut m = [0u8; 32];
    m[..4].copy_from_slice(&[0x78, 0x56, 0x34, 0x12]);
    assert_eq!(bundle_id(&m), 0x1234_5678);
}

#[test]
fn percent_is_bounded() {
    assert_eq!(percent(0, 0), 0);
    assert_eq!(percent(50, 100), 50);
    assert_eq!(percent(u32::MAX, 100), 100);
    assert_eq!(percent(u32::MAX - 1, u32::MAX), 99);
}

/// Runs every parser over arbitrary bytes with a fixed seed (the same cases on every run, so CI
/// is reproducible): none panics, and whatever parses emits back to the same bytes.
#[test]
fn outside_bytes_never_panic_fixed_seed() {
    let seed = [0x5E; 32];
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 4096,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let strategy = (
        0u8..=Kind::ALL.len() as u8,
        proptest::collection::vec(any::<u8>(), 0..(MAX_CHUNK_MSG + 4)),
    );
    runner
        .run(&strategy, |(kind, mut bytes)| {
            // Aim most cases past the version/kind check.
            if kind > 0 && bytes.len() >= 2 {
                bytes[0] = PROTOCOL_VERSION;
                bytes[1] = kind;
            }
            check_round_trip(&bytes);
            Ok(())
        })
        .unwrap();
}

/// Shared with the cargo-fuzz target's logic: parse, and if accepted, emit gives the input back.
fn check_round_trip(bytes: &[u8]) {
    if let Ok(o) = Offer::parse(bytes) {
        assert_eq!(&o.to_bytes()[..], bytes);
    }
    if let Ok(r) = Request::parse(bytes) {
        assert_eq!(&r.to_bytes()[..], bytes);
    }
    if let Ok(c) = Chunk::parse(bytes) {
        let mut out = [0u8; MAX_CHUNK_MSG];
        let n = c.emit(&mut out).unwrap();
        assert_eq!(&out[..n], bytes);
    }
    if let Ok(s) = Status::parse(bytes) {
        assert_eq!(&s.to_bytes()[..], bytes);
    }
    if let Ok(q) = Query::parse(bytes) {
        assert_eq!(&q.to_bytes()[..], bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn a_query_parses_exactly_when_its_reserved_bytes_are_zero(reserved in any::<[u8; 2]>(), extra in 0usize..3) {
        let mut bytes = std::vec![PROTOCOL_VERSION, Kind::Query as u8, reserved[0], reserved[1]];
        bytes.resize(QUERY_LEN + extra, 0);
        let parsed = Query::parse(&bytes);
        if extra > 0 {
            let trailing = matches!(parsed, Err(ProtoError::TrailingData { .. }));
            prop_assert!(trailing, "{:?}", parsed);
        } else if reserved == [0, 0] {
            prop_assert_eq!(parsed, Ok(Query));
        } else {
            prop_assert_eq!(parsed, Err(ProtoError::Reserved));
        }
    }

    #[test]
    fn valid_requests_and_chunks_round_trip(id in any::<u32>(), off in 0u32..u32::MAX - 2048, len in 1usize..=MAX_CHUNK_LEN) {
        let r = Request { bundle_id: id, offset: off, len: len as u16 };
        prop_assert_eq!(Request::parse(&r.to_bytes()), Ok(r));
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let c = Chunk { bundle_id: id, offset: off, data: &data };
        let mut out = [0u8; MAX_CHUNK_MSG];
        let n = c.emit(&mut out).unwrap();
        prop_assert_eq!(Chunk::parse(&out[..n]), Ok(c));
    }
}

const DOC: &str = include_str!("../../../docs/ota-protocol.md");

/// The rows `| offset | size | type | field | ... |` of the table after `<!-- table: NAME -->`.
fn doc_table(name: &str) -> Vec<(usize, usize, String)> {
    let marker = std::format!("<!-- table: {name} -->");
    let rest = DOC
        .split(&marker)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/ota-protocol.md has no {marker}"));
    rest.lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let offset = cells.get(1)?.parse().ok()?;
            let size = cells.get(2)?.parse().ok()?;
            Some((offset, size, cells.get(4)?.trim_matches('`').into()))
        })
        .collect()
}

fn code_table(rows: &[(&str, field::Field)]) -> Vec<(usize, usize, String)> {
    rows.iter()
        .map(|(n, r)| (r.start, r.end - r.start, String::from(*n)))
        .collect()
}

/// docs/ota-protocol.md is the spec the operator side and other firmwares implement from: its
/// byte tables, codes and topics must be the code's.
#[test]
fn doc_tables_match_the_code() {
    let head = [("version", field::VERSION), ("kind", field::KIND)];
    let with_head = |rows: &[(&str, field::Field)]| {
        let mut all = head.to_vec();
        all.extend_from_slice(rows);
        code_table(&all)
    };
    assert_eq!(
        doc_table("offer"),
        with_head(&[
            ("reserved", field::offer::RESERVED),
            ("header", field::offer::HEADER),
            ("signature", field::offer::SIGNATURE),
        ])
    );
    assert_eq!(
        doc_table("request"),
        with_head(&[
            ("len", field::request::LEN),
            ("bundle_id", field::request::BUNDLE_ID),
            ("offset", field::request::OFFSET),
        ])
    );
    assert_eq!(
        doc_table("chunk"),
        with_head(&[
            ("len", field::chunk::LEN),
            ("bundle_id", field::chunk::BUNDLE_ID),
            ("offset", field::chunk::OFFSET),
        ])
    );
    assert_eq!(
        doc_table("status"),
        with_head(&[
            ("state", field::status::STATE),
            ("detail", field::status::DETAIL),
            ("bundle_id", field::status::BUNDLE_ID),
            ("running_version", field::status::RUNNING_VERSION),
            ("bundle_version", field::status::BUNDLE_VERSION),
            ("received", field::status::RECEIVED),
            ("image_len", field::status::IMAGE_LEN),
            ("floor", field::status::FLOOR),
            ("running_slot", field::status::RUNNING_SLOT),
            ("reserved", field::status::RESERVED),
        ])
    );
    assert_eq!(
        doc_table("query"),
        with_head(&[("reserved", field::query::RESERVED)])
    );
    // Code tables: `| code | name |`.
    let codes = |name: &str| -> Vec<(u8, String)> {
        let marker = std::format!("<!-- codes: {name} -->");
        let rest = DOC.split(&marker).nth(1).expect("codes table");
        rest.lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                Some((
                    cells.get(1)?.parse().ok()?,
                    cells.get(2)?.trim_matches('`').into(),
                ))
            })
            .collect()
    };
    assert_eq!(
        codes("kind"),
        Kind::ALL
            .iter()
            .map(|k| (*k as u8, String::from(k.name())))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        codes("state"),
        State::ALL
            .iter()
            .map(|k| (*k as u8, String::from(k.name())))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        codes("reason"),
        Reason::ALL
            .iter()
            .map(|k| (*k as u8, String::from(k.name())))
            .collect::<Vec<_>>()
    );
    for k in Kind::ALL {
        assert!(
            DOC.contains(&std::format!("`devices/<id>/{}`", k.topic())),
            "{}",
            k.topic()
        );
    }
    for (name, value) in [
        ("MAX_CHUNK_LEN", MAX_CHUNK_LEN),
        ("MAX_WINDOW", MAX_WINDOW),
        ("MAX_CHUNK_PACKET", MAX_CHUNK_PACKET),
    ] {
        assert!(
            DOC.contains(&std::format!("`{name}` = {value}")),
            "docs/ota-protocol.md states `{name}` = {value}"
        );
    }
}
