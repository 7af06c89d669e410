//! `provision ota` end to end: the real binary, real files, and the real `openssl` for interop.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use predicates::prelude::*;
use wire_format::ota::format::field;
use wire_format::ota::{self, Header, Target, Version, IMAGE_OFFSET, SIGNATURE_OFFSET};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
}

impl Env {
    /// A provisioning dir with a CA and OTA keys 1 and 2, plus a 5000-byte image.
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dir = root.join("pki");
        let env = Env {
            _tmp: tmp,
            root,
            dir,
        };
        env.provision(&["init"]).assert().success();
        env.provision(&["ota", "keygen"]).assert().success();
        env.provision(&["ota", "keygen"]).assert().success();
        let image: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
        std::fs::write(env.path("app.bin"), image).unwrap();
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn provision(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("provision").unwrap();
        cmd.arg("--dir")
            .arg(&self.dir)
            .args(args)
            .current_dir(&self.root);
        cmd
    }

    fn key(&self, id: u32, public: bool) -> String {
        let name = if public {
            format!("ota/key-{id}.pub.pem")
        } else {
            format!("ota/key-{id}.pem")
        };
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Builds `app.bin` into `name` (signed with the newest key unless `extra` says otherwise).
    fn build(&self, name: &str, extra: &[&str]) -> PathBuf {
        let out = self.path(name);
        let mut args = vec![
            "ota",
            "build",
            "app.bin",
            "--version",
            "2.1.0",
            "--security-counter",
            "3",
            "-o",
            name,
        ];
        if !extra.contains(&"--target") {
            args.extend_from_slice(&["--target", "esp8266"]);
        }
        args.extend_from_slice(extra);
        self.provision(&args).assert().success();
        out
    }

    fn verify(&self, bundle: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
        let mut args = vec!["ota", "verify", bundle.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.provision(&args).assert()
    }

    /// Signs `message` with an openssl-readable Ed25519 key, using openssl itself.
    fn openssl_sign(&self, key: &str, message: &[u8]) -> Vec<u8> {
        let msg = self.path("msg.bin");
        let sig = self.path("msg.sig");
        std::fs::write(&msg, message).unwrap();
        openssl(&[
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            key,
            "-in",
            msg.to_str().unwrap(),
            "-out",
            sig.to_str().unwrap(),
        ]);
        std::fs::read(sig).unwrap()
    }

    /// A bundle whose header is whatever `header` says, correctly signed by key 1 via openssl.
    fn signed_by_openssl(&self, name: &str, header: &Header, image: &[u8]) -> PathBuf {
        let hb = header.to_bytes();
        let sig = self.openssl_sign(&self.key(1, false), &ota::signing_message(&hb));
        let mut bundle = hb.to_vec();
        bundle.extend_from_slice(&sig);
        bundle.extend_from_slice(image);
        let out = self.path(name);
        std::fs::write(&out, bundle).unwrap();
        out
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    let out = StdCommand::new("openssl")
        .args(args)
        .output()
        .expect("the openssl binary must be installed for the interop tests");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mode(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_a_0600_key_records_it_and_never_overwrites() {
    let env = Env::new();
    assert_eq!(mode(&env.key(1, false)), 0o600);
    assert_eq!(mode(&env.key(2, true)), 0o644);
    let registry = std::fs::read_to_string(env.dir.join("registry/registry.json")).unwrap();
    let registry: serde_json::Value = serde_json::from_str(&registry).unwrap();
    assert_eq!(
        registry["ota_keys"].as_array().unwrap().len(),
        2,
        "{registry}"
    );
    let before = std::fs::read(env.key(1, false)).unwrap();
    env.provision(&["ota", "keygen", "--key-id", "1"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("refusing to overwrite"));
    assert_eq!(std::fs::read(env.key(1, false)).unwrap(), before);
    // The private key is never printed.
    let out = env.provision(&["ota", "keygen"]).output().unwrap();
    let key3 = std::fs::read_to_string(env.key(3, false)).unwrap();
    let body: String = key3.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&body));
}

#[test]
fn build_verify_inspect_round_trip() {
    let env = Env::new();
    let bundle = env.build("app.bundle", &["--build-time", "1764000000"]);
    env.verify(&bundle, &[])
        .success()
        .stdout(predicate::str::contains(
            "valid: version 2.1.0 for esp8266, security counter 3, 5000 image bytes, key id 2",
        ));
    env.verify(&bundle, &["--min-counter", "3", "--target", "esp8266"])
        .success();
    let out = env
        .provision(&["ota", "inspect", "app.bundle", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["magic"], "SOTA");
    assert_eq!(json["target"], "esp8266");
    assert_eq!(json["version"], "2.1.0");
    assert_eq!(json["key_id"], 2);
    assert_eq!(json["security_counter"], 3);
    assert_eq!(json["image_len"], 5000);
    assert_eq!(json["build_time"], 1764000000u64);
    assert_eq!(json["signed"], true);
    assert_eq!(json["header_check"], "ok");
    assert_eq!(json["length_ok"], true);
    let image = std::fs::read(env.path("app.bin")).unwrap();
    assert_eq!(
        json["image_sha256"],
        provision::ota::hex(&ota::sha256(&image))
    );
    env.provision(&["ota", "inspect", "app.bundle"])
        .assert()
        .success()
        .stdout(predicate::str::contains("does not verify"));
}

/// The mutation matrix through the binary: every case exits 9 and names its check.
#[test]
fn verify_refuses_every_mutation_with_a_clear_message() {
    let env = Env::new();
    let good = std::fs::read(env.build("good.bundle", &[])).unwrap();
    let flip = |at: usize, bit: u8| {
        let mut b = good.clone();
        b[at] ^= 1 << bit;
        b
    };
    let last = good.len() - 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic", flip(field::MAGIC.start, 0), "magic check failed"),
        (
            "format version",
            flip(field::FORMAT_VERSION.start, 1),
            "format-version check failed",
        ),
        (
            "header length",
            flip(field::HEADER_LEN.start, 0),
            "header-length check failed",
        ),
        (
            "target",
            flip(field::TARGET.start, 2),
            "target check failed",
        ),
        ("flags", flip(field::FLAGS.start, 0), "flags check failed"),
        (
            "key id",
            flip(field::KEY_ID.start, 4),
            "key-id check failed",
        ),
        (
            "security counter",
            flip(field::SECURITY_COUNTER.start, 0),
            "signature check failed",
        ),
        (
            "image length",
            flip(field::IMAGE_LEN.start, 0),
            "signature check failed",
        ),
        (
            "version",
            flip(field::VERSION_MINOR.start, 0),
            "signature check failed",
        ),
        (
            "build time",
            flip(field::BUILD_TIME.start, 0),
            "signature check failed",
        ),
        (
            "image sha256",
            flip(field::IMAGE_SHA256.start + 5, 3),
            "signature check failed",
        ),
        (
            "signature",
            flip(SIGNATURE_OFFSET + 10, 0),
            "signature check failed",
        ),
        (
            "image",
            flip(IMAGE_OFFSET + 100, 6),
            "image-hash check failed",
        ),
        ("image end", flip(last, 0), "image-hash check failed"),
        (
            "truncated",
            good[..good.len() - 1].to_vec(),
            "length check failed: bundle is truncated",
        ),
        (
            "truncated header",
            good[..40].to_vec(),
            "length check failed: bundle is truncated",
        ),
        (
            "appended",
            [good.as_slice(), b"x"].concat(),
            "length check failed: bundle has extra bytes",
        ),
    ];
    for (name, bytes, message) in cases {
        let path = env.path(&format!("case-{}.bundle", name.replace(' ', "-")));
        std::fs::write(&path, bytes).unwrap();
        env.verify(&path, &[])
            .code(9)
            .stderr(predicate::str::contains(message))
            .stdout(predicate::str::is_empty());
    }
}

#[test]
fn verify_refuses_keys_policy_and_lengths() {
    let env = Env::new();
    let good = env.build("good.bundle", &[]);
    // Wrong key for the id (key 1's public key presented as the bundle's key).
    let k1 = env.key(1, true);
    env.verify(&good, &["--pubkey", &k1])
        .code(9)
        .stderr(predicate::str::contains("signature check failed"));
    // Unknown key id: only key 1 is trusted, the bundle names key 2.
    env.verify(&good, &["--pubkey", &format!("1={k1}")])
        .code(9)
        .stderr(predicate::str::contains(
            "key-id check failed: signing key id 2 is not a trusted key",
        ));
    // Below the anti-rollback floor.
    env.verify(&good, &["--min-counter", "4"])
        .code(9)
        .stderr(predicate::str::contains(
            "security-counter check failed: security counter 3 is below the device's floor 4",
        ));
    // Correctly signed for the other chip.
    let avr = env.build("avr.bundle", &["--target", "atmega168"]);
    env.verify(&avr, &["--target", "esp8266"])
        .code(9)
        .stderr(predicate::str::contains(
            "target check failed: bundle is for target atmega168, this device is esp8266",
        ));
    env.verify(&avr, &[]).success();

    // Correctly signed headers that lie about the image (signed by openssl with key 1).
    let image = std::fs::read(env.path("app.bin")).unwrap();
    let header = Header {
        target: Target::Esp8266,
        key_id: 1,
        security_counter: 0,
        image_len: image.len() as u32 + 100,
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
        build_time: 0,
        image_sha256: ota::sha256(&image),
    };
    let longer = env.signed_by_openssl("longer.bundle", &header, &image);
    env.verify(&longer, &[])
        .code(9)
        .stderr(predicate::str::contains(
            "length check failed: bundle is truncated: 5136 bytes received, 5236 expected",
        ));
    let empty = Header {
        image_len: 0,
        image_sha256: ota::sha256(&[]),
        ..header
    };
    let empty = env.signed_by_openssl("empty.bundle", &empty, &[]);
    env.verify(&empty, &[])
        .code(9)
        .stderr(predicate::str::contains(
            "image-length check failed: image length is zero",
        ));
    // Control: the same openssl signing path with an honest header verifies.
    let honest = Header {
        image_len: image.len() as u32,
        ..header
    };
    let honest = env.signed_by_openssl("honest.bundle", &honest, &image);
    env.verify(&honest, &[]).success();
}

#[test]
fn bad_input_gets_clear_errors() {
    let env = Env::new();
    std::fs::write(env.path("empty.bin"), b"").unwrap();
    env.provision(&[
        "ota",
        "build",
        "empty.bin",
        "--version",
        "1.0.0",
        "--target",
        "esp8266",
        "-o",
        "x.bundle",
    ])
    .assert()
    .code(3)
    .stderr(predicate::str::contains("is empty"));
    assert!(!env.path("x.bundle").exists());
    env.provision(&[
        "ota",
        "build",
        "app.bin",
        "--version",
        "1.0",
        "--target",
        "esp8266",
        "-o",
        "x.bundle",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("X.Y.Z"));
    env.provision(&[
        "ota",
        "build",
        "app.bin",
        "--version",
        "1.0.0",
        "--target",
        "esp32",
        "-o",
        "x.bundle",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("esp8266, atmega168"));
    env.provision(&[
        "ota",
        "build",
        "app.bin",
        "--version",
        "1.0.0",
        "--target",
        "esp8266",
        "--key-id",
        "9",
        "-o",
        "x.bundle",
    ])
    .assert()
    .code(4)
    .stderr(predicate::str::contains(
        "OTA key id 9 is not in the registry",
    ));
    // No keys at all: verify says how to get some.
    let bare = tempfile::tempdir().unwrap();
    let good = env.build("good.bundle", &[]);
    Command::cargo_bin("provision")
        .unwrap()
        .arg("--dir")
        .arg(bare.path())
        .args(["ota", "verify", good.to_str().unwrap()])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("provision ota keygen"));
    env.provision(&["ota", "inspect", "app.bin"])
        .assert()
        .success()
        .stdout(predicate::str::contains("header check:     bad magic"));
    // The bytes to sign and the bundle cannot be one file.
    env.provision(&[
        "ota",
        "build",
        "app.bin",
        "--version",
        "1.0.0",
        "--target",
        "esp8266",
        "--unsigned",
        "--to-sign",
        "same.out",
        "-o",
        "same.out",
    ])
    .assert()
    .code(3)
    .stderr(predicate::str::contains(
        "same.out is named twice as an output",
    ));
    assert!(!env.path("same.out").exists());
    // Something that is not a public key: a binary file, the private key, a missing file.
    let private = env.key(2, false);
    for (pubkey, code, message) in [
        ("app.bin", 3, "app.bin is not an Ed25519 public key"),
        (private.as_str(), 3, "is not an Ed25519 public key"),
        ("no such.pem", 6, "reading public key no such.pem"),
    ] {
        env.verify(&good, &["--pubkey", pubkey])
            .code(code)
            .stderr(predicate::str::contains(message));
    }
}

/// A signature made by our CLI verifies with `openssl pkeyutl -verify -rawin`, over a message
/// openssl computes itself from the header bytes.
#[test]
fn openssl_verifies_our_signatures() {
    let env = Env::new();
    let bundle = std::fs::read(env.build("app.bundle", &[])).unwrap();
    let header = env.path("header.bin");
    std::fs::write(&header, &bundle[..72]).unwrap();
    let digest = openssl(&["dgst", "-sha256", "-binary", header.to_str().unwrap()]).stdout;
    let msg = env.path("msg.bin");
    let sig = env.path("sig.bin");
    std::fs::write(&msg, &digest).unwrap();
    std::fs::write(&sig, &bundle[72..136]).unwrap();
    let verify = |key: &str| {
        StdCommand::new("openssl")
            .args(["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", key])
            .args([
                "-in",
                msg.to_str().unwrap(),
                "-sigfile",
                sig.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let ok = verify(&env.key(2, true));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Signature Verified Successfully"));
    // Control: openssl refuses it under the other key.
    assert!(!verify(&env.key(1, true)).status.success());
}

/// Offline signing: `build --unsigned`, `openssl pkeyutl -sign -rawin` with a key openssl made,
/// `attach-signature`, `verify`.
#[test]
fn openssl_signatures_attach_and_verify() {
    let env = Env::new();
    let key = env.path("hsm.pem");
    let public = env.path("hsm.pub.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let public = public.to_str().unwrap();
    let unsigned = env.build("app.unsigned", &["--unsigned", "--key-id", "7"]);
    let to_sign = std::fs::read(env.path("app.unsigned.tosign")).unwrap();
    assert_eq!(to_sign.len(), 32);
    let bundle = std::fs::read(&unsigned).unwrap();
    assert_eq!(
        to_sign,
        ota::signing_message(bundle[..72].try_into().unwrap())
    );
    // An unsigned bundle never verifies.
    env.verify(&unsigned, &["--pubkey", &format!("7={public}")])
        .code(9)
        .stderr(predicate::str::contains("signature check failed"));

    let sig = env.openssl_sign(key.to_str().unwrap(), &to_sign);
    std::fs::write(env.path("app.sig"), &sig).unwrap();
    env.provision(&[
        "ota",
        "attach-signature",
        "app.unsigned",
        "--signature",
        "app.sig",
        "--pubkey",
        &format!("7={public}"),
        "-o",
        "app.bundle",
    ])
    .assert()
    .success();
    env.verify(&env.path("app.bundle"), &["--pubkey", public])
        .success()
        .stdout(predicate::str::contains("key id 7"));
    // The registry's keys do not include 7.
    env.verify(&env.path("app.bundle"), &[])
        .code(9)
        .stderr(predicate::str::contains("key-id check failed"));

    // A signature over other bytes is refused and nothing is written.
    let wrong = env.openssl_sign(key.to_str().unwrap(), b"not the header digest............");
    std::fs::write(env.path("wrong.sig"), wrong).unwrap();
    env.provision(&[
        "ota",
        "attach-signature",
        "app.unsigned",
        "--signature",
        "wrong.sig",
        "--pubkey",
        &format!("7={public}"),
        "-o",
        "bad.bundle",
    ])
    .assert()
    .code(9)
    .stderr(predicate::str::contains("signature check failed"));
    assert!(!env.path("bad.bundle").exists());
    // A signature file of the wrong size.
    std::fs::write(env.path("short.sig"), [0u8; 63]).unwrap();
    env.provision(&[
        "ota",
        "attach-signature",
        "app.unsigned",
        "--signature",
        "short.sig",
        "--pubkey",
        public,
        "-o",
        "bad.bundle",
    ])
    .assert()
    .code(3)
    .stderr(predicate::str::contains("64 bytes"));
}

/// Keys rotate by id: bundles signed by an older key still verify against the registry.
#[test]
fn older_keys_keep_verifying_after_rotation() {
    let env = Env::new();
    let old = env.build("old.bundle", &["--key-id", "1"]);
    let new = env.build("new.bundle", &[]);
    env.verify(&old, &[])
        .success()
        .stdout(predicate::str::contains("key id 1"));
    env.verify(&new, &[])
        .success()
        .stdout(predicate::str::contains("key id 2"));
    let both = [
        "--pubkey",
        &format!("1={}", env.key(1, true)),
        "--pubkey",
        &format!("2={}", env.key(2, true)),
    ]
    .map(String::from);
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    env.verify(&old, &both).success();
    env.verify(&new, &both).success();
    // Options may come before the bundle.
    let key1 = env.key(1, true);
    env.provision(&["ota", "verify", "--pubkey", &key1, old.to_str().unwrap()])
        .assert()
        .success();
}

#[test]
fn a_corrupt_key_record_is_refused() {
    let env = Env::new();
    let bundle = env.build("app.bundle", &[]);
    let path = env.dir.join("registry/registry.json");
    let registry = std::fs::read_to_string(&path).unwrap();
    assert!(registry.contains("\"key_id\": 2,"), "{registry}");
    std::fs::write(&path, registry.replace("\"key_id\": 2,", "\"key_id\": 1,")).unwrap();
    env.verify(&bundle, &[])
        .code(5)
        .stderr(predicate::str::contains("OTA key id 1 appears twice"));
    let tampered = registry.replacen("\"public_key\": \"", "\"public_key\": \"zz", 1);
    std::fs::write(&path, tampered).unwrap();
    env.verify(&bundle, &[])
        .code(5)
        .stderr(predicate::str::contains("not an Ed25519 key in hex"));
    // A private key that does not match its recorded public key is refused for signing.
    std::fs::write(&path, &registry).unwrap();
    std::fs::copy(env.key(1, false), env.key(2, false)).unwrap();
    env.provision(&[
        "ota",
        "build",
        "app.bin",
        "--version",
        "1.0.0",
        "--target",
        "esp8266",
        "-o",
        "x.bundle",
    ])
    .assert()
    .code(5)
    .stderr(predicate::str::contains("does not match public key 2"));
}

/// An independent C verifier written from docs/ota-bundle.md (tests/c/ota_verify.c, OpenSSL's
/// libcrypto) agrees with `provision ota verify` on good and damaged bundles, check by check.
#[test]
fn an_independent_c_verifier_agrees() {
    let env = Env::new();
    let exe = env.path("ota_verify_c");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/ota_verify.c");
    let cc = StdCommand::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lcrypto")
        .output()
        .expect("a C compiler (cc) must be installed");
    assert!(
        cc.status.success(),
        "compiling {} failed (needs libssl-dev): {}",
        src.display(),
        String::from_utf8_lossy(&cc.stderr)
    );
    let registry = provision::store::read_registry(&env.dir).unwrap().unwrap();
    let trusted: Vec<String> = registry
        .ota_keys
        .iter()
        .map(|k| format!("{}={}", k.key_id, k.public_key))
        .collect();

    let good = std::fs::read(env.build("good.bundle", &[])).unwrap();
    let avr = std::fs::read(env.build("avr.bundle", &["--target", "atmega168"])).unwrap();
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x04;
        b
    };
    let mut cases: Vec<(String, Vec<u8>, u32)> = vec![
        ("good".into(), good.clone(), 0),
        ("floor".into(), good.clone(), 4),
        ("avr".into(), avr, 0),
        ("truncated".into(), good[..good.len() - 3].to_vec(), 0),
        ("appended".into(), [good.as_slice(), b"zz"].concat(), 0),
        ("short".into(), good[..100].to_vec(), 0),
    ];
    for at in (0..IMAGE_OFFSET).chain([IMAGE_OFFSET, good.len() - 1]) {
        cases.push((format!("flip byte {at}"), flip(at), 0));
    }
    for (name, bytes, floor) in cases {
        let path = env.path("case.bundle");
        std::fs::write(&path, &bytes).unwrap();
        let c = StdCommand::new(&exe)
            .arg(&path)
            .args(["1", &floor.to_string()])
            .args(&trusted)
            .output()
            .unwrap();
        let c_says = String::from_utf8_lossy(&c.stdout).trim().to_string();
        let ours = env
            .provision(&["ota", "verify", path.to_str().unwrap()])
            .args(["--target", "esp8266", "--min-counter", &floor.to_string()])
            .output()
            .unwrap();
        let ours_err = String::from_utf8_lossy(&ours.stderr);
        assert_eq!(
            c.status.success(),
            ours.status.success(),
            "{name}: C says {c_says:?}, provision says {ours_err:?}"
        );
        if !c.status.success() {
            let check = c_says.split(':').next().unwrap();
            assert!(
                ours_err.contains(&format!("{check} check failed")),
                "{name}: C says {c_says:?}, provision says {ours_err:?}"
            );
        }
    }
}
