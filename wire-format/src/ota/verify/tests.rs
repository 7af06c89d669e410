//! The mutation matrix, chunking properties and randomized inputs for the verifier.
extern crate std;

use super::*;
use crate::ota::format::{field, Version, IMAGE_OFFSET, SIGNATURE_OFFSET};
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use std::string::ToString;
use std::vec::Vec;

const FLOOR: u32 = 5;

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn trusted(seed: u8, key_id: u32) -> TrustedKey {
    TrustedKey {
        key_id,
        public_key: signing_key(seed).verifying_key().to_bytes(),
    }
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

fn header_for(image: &[u8]) -> Header {
    Header {
        target: Target::Esp8266,
        key_id: 1,
        security_counter: 7,
        image_len: image.len() as u32,
        version: Version {
            major: 1,
            minor: 4,
            patch: 2,
        },
        build_time: 1_764_000_000,
        image_sha256: sha256(image),
    }
}

/// Signs `header` with key `seed` and appends `image`; no checks, so tests can sign bad headers.
fn bundle_with(header: &Header, image: &[u8], seed: u8) -> Vec<u8> {
    let hb = header.to_bytes();
    let sig = signing_key(seed).sign(&signing_message(&hb)).to_bytes();
    let mut out = Vec::new();
    out.extend_from_slice(&hb);
    out.extend_from_slice(&sig);
    out.extend_from_slice(image);
    out
}

fn good_bundle() -> Vec<u8> {
    let img = image(300);
    bundle_with(&header_for(&img), &img, 1)
}

fn keys() -> [TrustedKey; 2] {
    [trusted(9, 0), trusted(1, 1)]
}

fn verify_whole(bundle: &[u8]) -> Result<VerifiedImage, OtaError> {
    let keys = keys();
    let mut v = Verifier::new(&keys, Target::Esp8266, FLOOR);
    v.update(bundle)?;
    v.finish()
}

fn verify_chunked(bundle: &[u8], sizes: &[usize]) -> Result<VerifiedImage, OtaError> {
    let keys = keys();
    let mut v = Verifier::new(&keys, Target::Esp8266, FLOOR);
    let mut rest = bundle;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        v.update(&rest[..n])?;
        rest = &rest[n..];
    }
    v.finish()
}

fn flip(bundle: &[u8], byte: usize, bit: u8) -> Vec<u8> {
    let mut b = bundle.to_vec();
    b[byte] ^= 1 << bit;
    b
}

#[test]
fn a_good_bundle_verifies_whole_and_byte_by_byte() {
    let b = good_bundle();
    let v = verify_whole(&b).unwrap();
    assert_eq!(v.header().version.to_string(), "1.4.2");
    assert_eq!(v.header().image_len, 300);
    assert_eq!(verify_chunked(&b, &[1]).unwrap(), v);
    assert_eq!(verify_chunked(&b, &[4096]).unwrap(), v);
}

#[test]
fn state_stays_within_one_kib() {
    let size = core::mem::size_of::<Verifier<'static>>();
    std::println!("Verifier: {size} bytes");
    assert!(size <= 1024, "verifier state is {size} bytes");
}

#[test]
fn header_is_authenticated_before_the_image_streams() {
    let b = good_bundle();
    let keys = keys();
    let mut v = Verifier::new(&keys, Target::Esp8266, FLOOR);
    v.update(&b[..IMAGE_OFFSET - 1]).unwrap();
    assert!(v.authenticated_header().is_none());
    v.update(&b[IMAGE_OFFSET - 1..IMAGE_OFFSET]).unwrap();
    assert_eq!(v.authenticated_header().map(|h| h.image_len), Some(300));
}

/// Flip one bit in every header field, in the signature and in the image: each is refused
/// with the error of the check that guards it.
#[test]
fn mutation_matrix_bit_flips() {
    let b = good_bundle();
    let cases: &[(&str, usize, u8, OtaError)] = &[
        (
            "magic",
            field::MAGIC.start,
            0,
            OtaError::BadMagic { found: *b"ROTA" },
        ),
        (
            "format version",
            field::FORMAT_VERSION.start,
            1,
            OtaError::UnsupportedFormatVersion { found: 3 },
        ),
        (
            "header length",
            field::HEADER_LEN.start,
            0,
            OtaError::BadHeaderLen { found: 73 },
        ),
        (
            "target",
            field::TARGET.start,
            2,
            OtaError::UnknownTarget { id: 5 },
        ),
        (
            "flags",
            field::FLAGS.start,
            0,
            OtaError::UnsupportedFlags { flags: 1 },
        ),
        (
            "key id",
            field::KEY_ID.start,
            2,
            OtaError::UnknownKey { key_id: 5 },
        ),
        (
            "security counter",
            field::SECURITY_COUNTER.start,
            3,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "image length",
            field::IMAGE_LEN.start,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "version major",
            field::VERSION_MAJOR.start,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "version minor",
            field::VERSION_MINOR.start,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "version patch",
            field::VERSION_PATCH.start,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "build time",
            field::BUILD_TIME.start,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "image sha256",
            field::IMAGE_SHA256.start,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "signature R",
            SIGNATURE_OFFSET,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "signature s",
            SIGNATURE_OFFSET + 40,
            0,
            OtaError::BadSignature { key_id: 1 },
        ),
        (
            "image first byte",
            IMAGE_OFFSET,
            0,
            OtaError::ImageHashMismatch,
        ),
        (
            "image last byte",
            b.len() - 1,
            7,
            OtaError::ImageHashMismatch,
        ),
    ];
    for (name, byte, bit, expected) in cases {
        let m = flip(&b, *byte, *bit);
        assert_eq!(verify_whole(&m), Err(*expected), "{name}");
        assert_eq!(
            verify_chunked(&m, &[1, 7, 64]),
            Err(*expected),
            "{name} (chunked)"
        );
    }
}

/// Every single-bit flip anywhere in a small bundle is refused.
#[test]
fn every_single_bit_flip_is_refused() {
    let img = image(8);
    let b = bundle_with(&header_for(&img), &img, 1);
    for byte in 0..b.len() {
        for bit in 0..8 {
            let m = flip(&b, byte, bit);
            assert!(
                verify_whole(&m).is_err(),
                "flip byte {byte} bit {bit} accepted"
            );
        }
    }
}

#[test]
fn mutation_matrix_lengths_keys_policy() {
    let img = image(300);
    let h = header_for(&img);
    let b = good_bundle();
    let declared = b.len() as u64;

    // Truncated anywhere: in the header, in the signature, in the image.
    for cut in [0, 1, 71, 72, 100, IMAGE_OFFSET, b.len() - 1] {
        let expected = if cut < 72 { 72 } else { declared };
        assert_eq!(
            verify_whole(&b[..cut]),
            Err(OtaError::Truncated {
                expected,
                received: cut as u64
            }),
            "cut at {cut}"
        );
    }
    // Appended bytes.
    let mut longer = b.clone();
    longer.extend_from_slice(&[0, 0]);
    assert_eq!(
        verify_whole(&longer),
        Err(OtaError::TrailingData { expected: declared })
    );
    // Same key id, another key.
    assert_eq!(
        verify_whole(&bundle_with(&h, &img, 2)),
        Err(OtaError::BadSignature { key_id: 1 })
    );
    // Key id nobody trusts (correctly signed by its own key).
    let unknown = Header { key_id: 77, ..h };
    assert_eq!(
        verify_whole(&bundle_with(&unknown, &img, 1)),
        Err(OtaError::UnknownKey { key_id: 77 })
    );
    // Correctly signed, but older than the floor.
    let old = Header {
        security_counter: FLOOR - 1,
        ..h
    };
    assert_eq!(
        verify_whole(&bundle_with(&old, &img, 1)),
        Err(OtaError::CounterBelowFloor {
            counter: FLOOR - 1,
            floor: FLOOR
        })
    );
    // Counter equal to the floor is fine.
    let equal = Header {
        security_counter: FLOOR,
        ..h
    };
    assert!(verify_whole(&bundle_with(&equal, &img, 1)).is_ok());
    // Correctly signed for the other chip.
    let avr = Header {
        target: Target::Atmega168,
        ..h
    };
    assert_eq!(
        verify_whole(&bundle_with(&avr, &img, 1)),
        Err(OtaError::WrongTarget {
            expected: Target::Esp8266,
            found: Target::Atmega168
        })
    );
    // Correctly signed, declares more image than it carries.
    let long = Header {
        image_len: 310,
        ..h
    };
    let short = bundle_with(&long, &img, 1);
    assert_eq!(
        verify_whole(&short),
        Err(OtaError::Truncated {
            expected: IMAGE_OFFSET as u64 + 310,
            received: short.len() as u64
        })
    );
    // Correctly signed, zero-length image.
    let empty = Header {
        image_len: 0,
        image_sha256: sha256(&[]),
        ..h
    };
    assert_eq!(
        verify_whole(&bundle_with(&empty, &[], 1)),
        Err(OtaError::EmptyImage)
    );
    // Correctly signed, image hash for other bytes.
    let other = Header {
        image_sha256: sha256(b"other"),
        ..h
    };
    assert_eq!(
        verify_whole(&bundle_with(&other, &img, 1)),
        Err(OtaError::ImageHashMismatch)
    );
}

#[test]
fn slot_size_limit_applies_before_the_signature() {
    let b = good_bundle();
    let keys = keys();
    let mut v = Verifier::new(&keys, Target::Esp8266, 0).with_max_image_len(299);
    assert_eq!(
        v.update(&b),
        Err(OtaError::ImageTooLarge { len: 300, max: 299 })
    );
}

#[test]
fn rotated_keys_verify_by_id() {
    let img = image(10);
    let h = Header {
        key_id: 0,
        ..header_for(&img)
    };
    assert!(verify_whole(&bundle_with(&h, &img, 9)).is_ok());
    assert_eq!(
        verify_whole(&bundle_with(&h, &img, 1)),
        Err(OtaError::BadSignature { key_id: 0 })
    );
}

#[test]
fn an_invalid_trusted_key_is_reported_as_such() {
    let bad = (0u8..=255)
        .map(|i| [i; 32])
        .find(|k| VerifyingKey::from_bytes(k).is_err())
        .expect("some byte pattern is not a curve point");
    let keys = [TrustedKey {
        key_id: 1,
        public_key: bad,
    }];
    let mut v = Verifier::new(&keys, Target::Esp8266, 0);
    assert_eq!(
        v.update(&good_bundle()),
        Err(OtaError::BadPublicKey { key_id: 1 })
    );
}

#[test]
fn errors_are_sticky() {
    let b = flip(&good_bundle(), 0, 0);
    let keys = keys();
    let mut v = Verifier::new(&keys, Target::Esp8266, FLOOR);
    let first = v.update(&b[..100]).unwrap_err();
    assert_eq!(first, OtaError::BadMagic { found: *b"ROTA" });
    assert_eq!(v.update(&good_bundle()), Err(first));
    assert_eq!(v.finish(), Err(first));
}

#[test]
fn every_error_has_a_message_and_a_check_name() {
    let all = [
        OtaError::Truncated {
            expected: 1,
            received: 0,
        },
        OtaError::TrailingData { expected: 1 },
        OtaError::BadMagic { found: [0; 4] },
        OtaError::UnsupportedFormatVersion { found: 2 },
        OtaError::BadHeaderLen { found: 1 },
        OtaError::UnknownTarget { id: 9 },
        OtaError::UnsupportedFlags { flags: 1 },
        OtaError::EmptyImage,
        OtaError::WrongTarget {
            expected: Target::Esp8266,
            found: Target::Atmega168,
        },
        OtaError::ImageTooLarge { len: 2, max: 1 },
        OtaError::UnknownKey { key_id: 3 },
        OtaError::BadPublicKey { key_id: 3 },
        OtaError::BadSignature { key_id: 3 },
        OtaError::CounterBelowFloor {
            counter: 1,
            floor: 2,
        },
        OtaError::ImageHashMismatch,
    ];
    for e in all {
        assert!(!std::format!("{e}").is_empty());
        assert!(!e.check().is_empty());
    }
}

/// A bundle that is valid, or damaged in one of the ways a network or an attacker damages it.
fn any_bundle() -> impl Strategy<Value = Vec<u8>> {
    let valid = (1usize..2000, any::<u8>()).prop_map(|(len, salt)| {
        let img: Vec<u8> = image(len).into_iter().map(|b| b ^ salt).collect();
        bundle_with(&header_for(&img), &img, 1)
    });
    prop_oneof![
        valid.clone(),
        (valid.clone(), any::<prop::sample::Index>(), 1u8..=255).prop_map(|(mut b, at, x)| {
            let i = at.index(b.len());
            b[i] ^= x;
            b
        }),
        (valid.clone(), any::<prop::sample::Index>()).prop_map(|(b, at)| {
            let cut = at.index(b.len());
            b[..cut].to_vec()
        }),
        (valid, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(mut b, extra)| {
            b.extend_from_slice(&extra);
            b
        }),
        prop::collection::vec(any::<u8>(), 0..600),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any chunking of any bundle gives the same verdict as feeding it whole.
    #[test]
    fn chunking_never_changes_the_verdict(
        bundle in any_bundle(),
        sizes in prop::collection::vec(1usize..5000, 1..40),
    ) {
        prop_assert_eq!(verify_chunked(&bundle, &sizes), verify_whole(&bundle));
    }

    /// Random bytes behind a valid-looking header never panic and never verify.
    #[test]
    fn random_input_is_refused_without_panicking(
        mut bytes in prop::collection::vec(any::<u8>(), 0..1024),
        keep_header in any::<bool>(),
    ) {
        if keep_header && bytes.len() >= HEADER_LEN {
            let img = image(bytes.len().saturating_sub(IMAGE_OFFSET).max(1));
            bytes[..HEADER_LEN].copy_from_slice(&header_for(&img).to_bytes());
        }
        prop_assert!(verify_whole(&bytes).is_err());
    }
}

/// The known-answer vector in docs/ota-bundle.md: RFC 8032 test key 1, a 15-byte image.
fn doc_vector() -> Vec<u8> {
    let seed = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    let key = SigningKey::from_bytes(&seed);
    let img = b"hello, esp8266\n";
    let header = Header {
        target: Target::Esp8266,
        key_id: 1,
        security_counter: 2,
        image_len: img.len() as u32,
        version: Version {
            major: 1,
            minor: 2,
            patch: 3,
        },
        build_time: 1_764_000_000,
        image_sha256: sha256(img),
    };
    let hb = header.to_bytes();
    let mut out = hb.to_vec();
    out.extend_from_slice(&key.sign(&signing_message(&hb)).to_bytes());
    out.extend_from_slice(img);
    out
}

const DOC: &str = include_str!("../../../../docs/ota-bundle.md");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// docs/ota-bundle.md is a spec others implement from: its byte table must be the code's
/// constants block and its test vector must verify.
#[test]
fn doc_vector_and_table_match_the_code() {
    let block = DOC
        .split("<!-- kat-bundle -->")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("docs/ota-bundle.md has the kat-bundle block");
    let hex: std::string::String = block
        .lines()
        .skip(1)
        .flat_map(|l| l.trim().chars())
        .collect();
    let bundle = unhex(&hex);
    assert_eq!(bundle, doc_vector());
    let keys = [TrustedKey {
        key_id: 1,
        public_key: unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .try_into()
            .unwrap(),
    }];
    let mut v = Verifier::new(&keys, Target::Esp8266, 2);
    v.update(&bundle).unwrap();
    assert_eq!(v.finish().unwrap().header().version.to_string(), "1.2.3");

    let table: Vec<(usize, usize, &str)> = DOC
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let offset = cells.get(1)?.parse().ok()?;
            let size = cells.get(2)?.parse().ok()?;
            Some((offset, size, *cells.get(4)?))
        })
        .collect();
    let code = [
        ("magic", field::MAGIC),
        ("format_version", field::FORMAT_VERSION),
        ("header_len", field::HEADER_LEN),
        ("target", field::TARGET),
        ("flags", field::FLAGS),
        ("key_id", field::KEY_ID),
        ("security_counter", field::SECURITY_COUNTER),
        ("image_len", field::IMAGE_LEN),
        ("version_major", field::VERSION_MAJOR),
        ("version_minor", field::VERSION_MINOR),
        ("version_patch", field::VERSION_PATCH),
        ("build_time", field::BUILD_TIME),
        ("image_sha256", field::IMAGE_SHA256),
    ];
    let code: Vec<(usize, usize, &str)> = code
        .iter()
        .map(|(name, r)| (r.start, r.end - r.start, *name))
        .collect();
    assert_eq!(table, code);
}

#[test]
fn detach_only_after_the_signature_and_keeps_the_verdict() {
    let bundle = good_bundle();
    let keys = keys();
    let mut v = Verifier::new(&keys, Target::Esp8266, FLOOR);
    v.update(&bundle[..IMAGE_OFFSET - 1]).unwrap();
    // Still needs the key for the last signature byte.
    assert!(v.detached().is_none());
    v.update(&bundle[IMAGE_OFFSET - 1..IMAGE_OFFSET]).unwrap();
    let mut detached = v
        .detached()
        .expect("detachable once the signature verified");
    assert!(detached.authenticated_header().is_some());
    detached.update(&bundle[IMAGE_OFFSET..]).unwrap();
    assert!(detached.finish().is_ok());

    // A failure stays a failure.
    let mut bad = bundle.clone();
    bad[SIGNATURE_OFFSET] ^= 1;
    let mut v = Verifier::new(&keys, Target::Esp8266, FLOOR);
    let e = v.update(&bad[..IMAGE_OFFSET]).unwrap_err();
    let mut d = v.detached().unwrap();
    assert_eq!(d.update(&bad[IMAGE_OFFSET..]), Err(e));
    assert_eq!(d.finish().err(), Some(e));
}
