//! OTA verifier throughput against the raw SHA-256 it is built on (docs/benchmarks.md, `## OTA`).
//! `cargo bench -p wire-format --features fast --bench ota_verify`; bench/ota.sh runs it next to
//! `openssl speed -evp sha256`. Without `--bench` (as under `cargo test --all-targets`) it only
//! runs one small verification as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};
use wire_format::ota::{sha256, signing_message, Header, Target, TrustedKey, Verifier, Version};

fn bundle(image: &[u8], key: &SigningKey) -> Vec<u8> {
    let header = Header {
        target: Target::Esp8266,
        key_id: 1,
        security_counter: 1,
        image_len: image.len() as u32,
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        build_time: 0,
        image_sha256: sha256(image),
    };
    let hb = header.to_bytes();
    let mut out = hb.to_vec();
    out.extend_from_slice(&key.sign(&signing_message(&hb)).to_bytes());
    out.extend_from_slice(image);
    out
}

fn verify(bundle: &[u8], keys: &[TrustedKey], chunk: usize) {
    let mut v = Verifier::new(keys, Target::Esp8266, 0);
    for part in bundle.chunks(chunk) {
        v.update(part).unwrap();
    }
    let _ = black_box(v.finish().unwrap());
}

/// Best of `rounds` timings of `f` (the least disturbed run on a shared machine).
fn best(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Header and signature for an image that is `buf` repeated `n` times.
fn head(buf: &[u8], n: usize, key: &SigningKey) -> Vec<u8> {
    let mut h = Sha256::new();
    for _ in 0..n {
        h.update(buf);
    }
    let header = Header {
        target: Target::Esp8266,
        key_id: 1,
        security_counter: 1,
        image_len: (buf.len() * n) as u32,
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        build_time: 0,
        image_sha256: h.finalize().into(),
    };
    let hb = header.to_bytes();
    let mut out = hb.to_vec();
    out.extend_from_slice(&key.sign(&signing_message(&hb)).to_bytes());
    out
}

fn main() {
    let key = SigningKey::from_bytes(&[42; 32]);
    let keys = [TrustedKey {
        key_id: 1,
        public_key: key.verifying_key().to_bytes(),
    }];
    if !std::env::args().any(|a| a == "--bench") {
        verify(&bundle(&[1, 2, 3], &key), &keys, 1);
        return;
    }
    const TOTAL: usize = 64 << 20;
    // Like a device (and like `openssl speed`): chunks arrive in one reused receive buffer.
    for chunk in [1024, 16 * 1024] {
        let buf: Vec<u8> = (0..chunk).map(|i| (i * 131 + 7) as u8).collect();
        let n = TOTAL / chunk;
        let sha = best(5, || {
            let mut h = Sha256::new();
            for _ in 0..n {
                h.update(black_box(&buf));
            }
            black_box(h.finalize());
        });
        let hb = head(&buf, n, &key);
        let ver = best(5, || {
            let mut v = Verifier::new(&keys, Target::Esp8266, 0);
            v.update(&hb).unwrap();
            for _ in 0..n {
                v.update(black_box(&buf)).unwrap();
            }
            let _ = black_box(v.finish().unwrap());
        });
        println!(
            "{:>5} B chunks, 64 MiB: sha2 SHA-256 {:7.1} MB/s | Verifier {:7.1} MB/s ({:.0} % of sha2)",
            chunk,
            mb_s(TOTAL, sha),
            mb_s(TOTAL, ver),
            100.0 * sha.as_secs_f64() / ver.as_secs_f64()
        );
    }
    // A whole 64 MiB bundle in RAM (memory-bound: every byte comes from DRAM once).
    let image: Vec<u8> = (0..TOTAL).map(|i| (i * 131 + 7) as u8).collect();
    let b = bundle(&image, &key);
    let d = best(3, || verify(&b, &keys, 64 * 1024));
    println!(
        "64 MiB bundle in RAM, 64 KiB chunks: Verifier {:7.1} MB/s",
        mb_s(TOTAL, d)
    );
    let small = bundle(&[0; 16], &key);
    let d = best(200, || verify(&small, &keys, 4096));
    println!(
        "16-byte image (Ed25519 verify dominates): {:.1} us per bundle",
        d.as_secs_f64() * 1e6
    );
}
