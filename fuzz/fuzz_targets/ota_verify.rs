//! The streaming verifier on arbitrary bytes and arbitrary chunkings: never panics, the verdict
//! does not depend on the chunking, and it accepts only what a trusted key signed.
//!
//! Input: `[mode, chunk seed, bundle...]`. With mode bit 0 set, the target re-signs the header
//! with the trusted key, so the fuzzer also explores everything after the signature check
//! (lengths, image hash, counter floor).
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;
use wire_format::ota::{
    signing_message, OtaError, Target, TrustedKey, VerifiedImage, Verifier, HEADER_LEN,
    IMAGE_OFFSET, SIGNATURE_OFFSET,
};

const SEED: [u8; 32] = [7; 32];

fn run(keys: &[TrustedKey], bundle: &[u8], chunk: usize) -> Result<VerifiedImage, OtaError> {
    let mut v = Verifier::new(keys, Target::Esp8266, 3);
    for part in bundle.chunks(chunk.max(1)) {
        v.update(part)?;
    }
    v.finish()
}

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, rest @ ..] = data else {
        return;
    };
    let signer = SigningKey::from_bytes(&SEED);
    let keys = [TrustedKey {
        key_id: 1,
        public_key: signer.verifying_key().to_bytes(),
    }];
    let mut bundle = rest.to_vec();
    if mode & 1 == 1 && bundle.len() >= IMAGE_OFFSET {
        let header: [u8; HEADER_LEN] = bundle[..HEADER_LEN].try_into().unwrap();
        let sig = signer.sign(&signing_message(&header)).to_bytes();
        bundle[SIGNATURE_OFFSET..IMAGE_OFFSET].copy_from_slice(&sig);
    }
    let whole = run(&keys, &bundle, bundle.len());
    let chunked = run(&keys, &bundle, usize::from(*chunk) + 1);
    assert_eq!(whole, chunked);
    if let Ok(v) = whole {
        // Accepted: it must be exactly what the header declares and signed by key 1.
        assert_eq!(v.header().key_id, 1);
        assert_eq!(bundle.len() as u64, v.header().bundle_len());
        assert!(v.header().security_counter >= 3);
    }
});
