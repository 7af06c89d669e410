//! `provision ota`: Ed25519 signing keys, signed firmware bundles (format v1, see
//! docs/ota-bundle.md), offline signing and verification with the device's own verifier.
//!
//! ```text
//! <dir>/ota/key-<id>.pem       Ed25519 private key, PKCS#8 PEM, 0600 (openssl reads it)
//! <dir>/ota/key-<id>.pub.pem   public key, SubjectPublicKeyInfo PEM
//! ```
//! The registry records each key id with its public key.

use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use serde::Serialize;
use time::OffsetDateTime;
use wire_format::ota::{
    self, BundleView, Header, HeaderView, OtaError, Target, TrustedKey, Verifier, Version,
    HEADER_LEN, IMAGE_OFFSET, SIGNATURE_LEN,
};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, Transaction, PUBLIC, SECRET};
use crate::layout::Layout;
use crate::registry::{OtaKeyRecord, Registry};
use crate::store::Store;

/// Chunk size for streaming a bundle through the verifier (what a device gets per MQTT message
/// is smaller; the verdict does not depend on it).
const CHUNK: usize = 64 * 1024;

pub fn private_key_path(dir: &Path, key_id: u32) -> PathBuf {
    dir.join("ota").join(format!("key-{key_id}.pem"))
}

pub fn public_key_path(dir: &Path, key_id: u32) -> PathBuf {
    dir.join("ota").join(format!("key-{key_id}.pub.pem"))
}

/// What `keygen` created.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub key_id: u32,
    pub public_key_hex: String,
    pub private_key: PathBuf,
    pub public_key: PathBuf,
}

/// Creates signing key `key_id` (default: one above the highest id in the registry, or 1).
/// Refuses to overwrite a key file or reuse a recorded id.
pub fn keygen(dir: &Path, key_id: Option<u32>) -> Result<KeyInfo> {
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let key_id = match key_id {
        Some(id) => id,
        None => match registry.ota_keys.iter().map(|k| k.key_id).max() {
            None => 1,
            Some(max) => max.checked_add(1).ok_or_else(|| {
                Error::InvalidInput("key id space exhausted; pass --key-id".into())
            })?,
        },
    };
    let private_key = private_key_path(dir, key_id);
    let public_key = public_key_path(dir, key_id);
    for path in [&private_key, &public_key] {
        if path.exists() {
            return Err(Error::OtaKeyExists {
                key_id,
                path: path.clone(),
            });
        }
    }
    if registry.ota_keys.iter().any(|k| k.key_id == key_id) {
        return Err(Error::OtaKeyExists {
            key_id,
            path: store.layout.registry(),
        });
    }

    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let signing = SigningKey::from_bytes(&seed);
    seed.fill(0);
    // PKCS#8 v1 (no embedded public key): OpenSSL 3.0 refuses the v2 form dalek writes.
    let private_pem = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: signing.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| Error::InvalidInput(format!("encoding the private key: {e}")))?;
    let verifying = signing.verifying_key();
    let public_pem = verifying
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::InvalidInput(format!("encoding the public key: {e}")))?;
    let public_key_hex = hex(verifying.as_bytes());

    registry.ota_keys.push(OtaKeyRecord {
        key_id,
        public_key: public_key_hex.clone(),
        created: OffsetDateTime::now_utc(),
    });
    let mut tx = store.transaction();
    tx.stage(&private_key, private_pem.as_bytes(), SECRET)?;
    tx.stage(&public_key, public_pem.as_bytes(), PUBLIC)?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(KeyInfo {
        key_id,
        public_key_hex,
        private_key,
        public_key,
    })
}

/// Registry records rebuilt from the private keys in `<dir>/ota/` (`init --force` over an
/// unreadable registry). A file that is not one of our keys is skipped; none is changed.
pub fn recover_key_records(dir: &Path) -> Result<Vec<OtaKeyRecord>> {
    let ota_dir = dir.join("ota");
    let entries = match std::fs::read_dir(&ota_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.context(|| format!("reading {}", ota_dir.display()))?,
    };
    let mut records = Vec::new();
    for entry in entries {
        let entry = entry.context(|| format!("reading {}", ota_dir.display()))?;
        let name = entry.file_name();
        let Some(key_id) = name
            .to_str()
            .and_then(|n| n.strip_prefix("key-")?.strip_suffix(".pem"))
            .and_then(|id| id.parse::<u32>().ok().filter(|n| n.to_string() == id))
        else {
            continue;
        };
        // Bounded, and a FIFO or device named key-N.pem is skipped at once instead of hanging.
        let Ok(pem) =
            crate::fsutil::read_text_bounded(&entry.path(), crate::store::PEM_LIMIT, "OTA key")
        else {
            continue;
        };
        let Ok(key) = SigningKey::from_pkcs8_pem(&pem) else {
            continue;
        };
        let created = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(OffsetDateTime::from)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        records.push(OtaKeyRecord {
            key_id,
            public_key: hex(key.verifying_key().as_bytes()),
            created,
        });
    }
    records.sort_by_key(|r| r.key_id);
    Ok(records)
}

/// Options of `provision ota build`.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub image: PathBuf,
    pub out: PathBuf,
    pub version: Version,
    pub target: Target,
    pub security_counter: u32,
    /// Default: the newest key in the registry.
    pub key_id: Option<u32>,
    /// Write a bundle with an all-zero signature plus the 32 bytes to sign (offline signing).
    pub unsigned: bool,
    /// Where the bytes to sign go with `unsigned` (default: `<out>.tosign`).
    pub to_sign: Option<PathBuf>,
    /// Seconds since the epoch; default `SOURCE_DATE_EPOCH` or now.
    pub build_time: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct BuildReport {
    pub header: Header,
    pub bundle: PathBuf,
    pub bundle_len: u64,
    /// With `unsigned`: the file holding the signing message.
    pub to_sign: Option<PathBuf>,
}

pub fn build(dir: &Path, opts: &BuildOptions) -> Result<BuildReport> {
    // The image is read straight into the bundle buffer behind room for header and signature:
    // no second copy of a multi-MiB image.
    let mut bundle = Vec::new();
    crate::store::check_output_outside(dir, &opts.out)?;
    if let Some(p) = &opts.to_sign {
        crate::store::check_output_outside(dir, p)?;
    }
    let mut file = fsutil::open_regular(&opts.image, "image")?;
    let too_large = || {
        Error::InvalidInput(format!(
            "image {} is larger than 4 GiB",
            opts.image.display()
        ))
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > u64::from(u32::MAX) {
        return Err(too_large());
    }
    bundle.reserve_exact(IMAGE_OFFSET + size as usize);
    bundle.resize(IMAGE_OFFSET, 0);
    // `take` bounds the read even if the file grows while we read it.
    (&mut file)
        .take(u64::from(u32::MAX) + 1)
        .read_to_end(&mut bundle)
        .context(|| format!("reading image {}", opts.image.display()))?;
    let image = &bundle[IMAGE_OFFSET..];
    if image.is_empty() {
        return Err(Error::InvalidInput(format!(
            "image {} is empty",
            opts.image.display()
        )));
    }
    let image_len = u32::try_from(image.len()).map_err(|_| too_large())?;
    let build_time = match opts.build_time {
        Some(t) => t,
        None => build_time_default()?,
    };

    // Signing needs the registry (key id, expected public key); an unsigned build with an
    // explicit key id needs nothing from `dir` (the key may live in an HSM).
    let signing = if opts.unsigned {
        None
    } else {
        let registry = crate::store::read_registry(dir)?.ok_or_else(|| Error::no_ca(dir))?;
        let key_id = opts.key_id.map_or_else(|| newest_key(dir, &registry), Ok)?;
        Some((key_id, load_signing_key(dir, &registry, key_id)?))
    };
    let key_id = match (&signing, opts.key_id) {
        (Some((id, _)), _) => *id,
        (None, Some(id)) => id,
        // Unsigned without --key-id: the newest registry key names the signer.
        (None, None) => match crate::store::read_registry(dir)? {
            Some(registry) => newest_key(dir, &registry)?,
            None => return Err(Error::NoOtaKeys(crate::error::absolute(dir))),
        },
    };

    let header = Header {
        target: opts.target,
        key_id,
        security_counter: opts.security_counter,
        image_len,
        version: opts.version,
        build_time,
        image_sha256: ota::sha256(image),
    };
    let header_bytes = header.to_bytes();
    let message = ota::signing_message(&header_bytes);
    let signature = match &signing {
        Some((_, key)) => key.sign(&message).to_bytes(),
        None => [0; SIGNATURE_LEN],
    };

    bundle[..HEADER_LEN].copy_from_slice(&header_bytes);
    bundle[HEADER_LEN..IMAGE_OFFSET].copy_from_slice(&signature);

    let mut tx = Transaction::new();
    tx.stage(&opts.out, &bundle, PUBLIC)?;
    let to_sign = if opts.unsigned {
        let path = opts
            .to_sign
            .clone()
            .unwrap_or_else(|| append_ext(&opts.out, "tosign"));
        tx.stage(&path, &message, PUBLIC)?;
        Some(path)
    } else {
        None
    };
    tx.commit()?;
    Ok(BuildReport {
        header,
        bundle: opts.out.clone(),
        bundle_len: bundle.len() as u64,
        to_sign,
    })
}

/// Adds a signature made elsewhere (openssl, an HSM) to an unsigned bundle. The result is
/// written only if the whole bundle then verifies with the key the header names.
pub fn attach_signature(
    dir: &Path,
    bundle_path: &Path,
    signature_path: &Path,
    out: &Path,
    pubkeys: &[PubkeySpec],
) -> Result<Header> {
    crate::store::check_output_outside(dir, out)?;
    let mut bundle = fsutil::read_bounded(
        bundle_path,
        u64::from(u32::MAX) + IMAGE_OFFSET as u64,
        "bundle",
    )?;
    let rejected = |source| Error::BundleRejected {
        path: bundle_path.to_path_buf(),
        source,
    };
    let header = Header::parse(&bundle).map_err(rejected)?;
    let signature = fsutil::read_bounded(signature_path, 4096, "signature")?;
    let signature: [u8; SIGNATURE_LEN] = signature.as_slice().try_into().map_err(|_| {
        Error::InvalidInput(format!(
            "{} holds {} bytes; a raw Ed25519 signature is {SIGNATURE_LEN} bytes \
             (openssl pkeyutl -sign -rawin writes exactly that)",
            signature_path.display(),
            signature.len()
        ))
    })?;
    let mut view = BundleView::new_checked(&mut bundle[..]).map_err(rejected)?;
    view.set_signature(&signature);

    // The same streaming check `verify` and the device run, over the bytes we would write.
    let keys = trusted_keys(dir, None, pubkeys, header.key_id)?;
    check_with_any(&bundle, &keys, header.target, 0).map_err(rejected)?;

    let mut tx = Transaction::new();
    tx.stage(out, &bundle, PUBLIC)?;
    tx.commit()?;
    Ok(header)
}

/// A `--pubkey` argument: `FILE` (trusted for the key id the bundle names) or `ID=FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubkeySpec {
    pub key_id: Option<u32>,
    pub path: PathBuf,
}

impl std::str::FromStr for PubkeySpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Some((id, path)) = s.split_once('=') {
            if let Ok(key_id) = id.parse() {
                return Ok(PubkeySpec {
                    key_id: Some(key_id),
                    path: path.into(),
                });
            }
        }
        if s.is_empty() {
            return Err("expected FILE or ID=FILE".into());
        }
        Ok(PubkeySpec {
            key_id: None,
            path: s.into(),
        })
    }
}

/// Options of `provision ota verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Trusted keys; empty means the registry's keys.
    pub pubkeys: Vec<PubkeySpec>,
    pub min_counter: u32,
    /// Device target; default: the target the header names.
    pub target: Option<Target>,
}

/// Streams `bundle` through the device's verifier. `Ok` carries the authenticated header.
pub fn verify(dir: &Path, bundle: &Path, opts: &VerifyOptions) -> Result<Header> {
    verify_with(dir, None, bundle, opts, || {
        fsutil::open_regular(bundle, "bundle")
    })
}

/// [`verify`] of a bundle already read into memory from `path` (named in errors): the bytes
/// checked are the bytes the caller goes on to use, whatever happens to the file meanwhile.
pub fn verify_bytes(dir: &Path, path: &Path, bytes: &[u8], opts: &VerifyOptions) -> Result<Header> {
    verify_with(dir, None, path, opts, || Ok(bytes))
}

/// [`verify_bytes`] with the registry of `dir` that the command loaded already.
pub fn verify_bytes_in(
    registry: &Registry,
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    opts: &VerifyOptions,
) -> Result<Header> {
    verify_with(dir, Some(registry), path, opts, || Ok(bytes))
}

fn verify_with<R: Read>(
    dir: &Path,
    registry: Option<&Registry>,
    bundle: &Path,
    opts: &VerifyOptions,
    open: impl Fn() -> Result<R>,
) -> Result<Header> {
    let mut file = open()?;
    let mut head = [0u8; HEADER_LEN];
    // Short files leave zeros here; the verifier then reports the truncation.
    read_up_to(&mut file, &mut head).context(|| format!("reading bundle {}", bundle.display()))?;
    let view = HeaderView::new_unchecked(&head);
    let target = opts
        .target
        .or_else(|| Target::from_id(view.target_id()))
        .unwrap_or(Target::Esp8266);
    let key_id = view.key_id();
    let key_sets = trusted_keys(dir, registry, &opts.pubkeys, key_id)?;

    let mut last = OtaError::UnknownKey { key_id };
    for keys in &key_sets {
        let mut file = open()?;
        let mut verifier = Verifier::new(keys, target, opts.min_counter);
        let mut buf = vec![0u8; CHUNK];
        let fed = loop {
            let n = file
                .read(&mut buf)
                .context(|| format!("reading bundle {}", bundle.display()))?;
            if n == 0 {
                break Ok(());
            }
            if let Err(e) = verifier.update(&buf[..n]) {
                break Err(e);
            }
        };
        match fed.and_then(|()| verifier.finish()) {
            Ok(verified) => return Ok(*verified.header()),
            Err(e) => last = e,
        }
    }
    Err(Error::BundleRejected {
        path: bundle.to_path_buf(),
        source: last,
    })
}

/// Everything in a bundle's header, for people and scripts. Not a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub file_len: u64,
    pub magic: String,
    pub format_version: u16,
    pub header_len: u16,
    pub target_id: u16,
    pub target: Option<&'static str>,
    pub flags: u16,
    pub key_id: u32,
    pub security_counter: u32,
    pub image_len: u32,
    pub version: String,
    pub build_time: u64,
    pub build_time_utc: Option<String>,
    pub image_sha256: String,
    pub signature: String,
    pub signed: bool,
    /// SHA-256 of the header: the exact message the signature covers.
    pub signing_message: String,
    /// `ok`, or why the header is structurally invalid.
    pub header_check: String,
    /// Whether the file length matches the header.
    pub length_ok: bool,
}

pub fn inspect(bundle: &Path) -> Result<Inspection> {
    let mut file = fsutil::open_regular(bundle, "bundle")?;
    let file_len = file
        .metadata()
        .context(|| format!("reading {}", bundle.display()))?
        .len();
    let mut head = [0u8; IMAGE_OFFSET];
    let got = read_up_to(&mut file, &mut head)
        .context(|| format!("reading bundle {}", bundle.display()))?;
    if got < IMAGE_OFFSET {
        return Err(Error::BundleRejected {
            path: bundle.to_path_buf(),
            source: OtaError::Truncated {
                expected: IMAGE_OFFSET as u64,
                received: got as u64,
            },
        });
    }
    let view = BundleView::new_checked(&head[..]).map_err(|source| Error::BundleRejected {
        path: bundle.to_path_buf(),
        source,
    })?;
    let h = view.header_view();
    let magic = h.magic();
    Ok(Inspection {
        file_len,
        magic: magic
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect(),
        format_version: h.format_version(),
        header_len: h.header_len(),
        target_id: h.target_id(),
        target: Target::from_id(h.target_id()).map(Target::name),
        flags: h.flags(),
        key_id: h.key_id(),
        security_counter: h.security_counter(),
        image_len: h.image_len(),
        version: h.version().to_string(),
        build_time: h.build_time(),
        build_time_utc: i64::try_from(h.build_time())
            .ok()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
        image_sha256: hex(&h.image_sha256()),
        signature: hex(view.signature()),
        signed: !view.is_unsigned(),
        signing_message: hex(&ota::signing_message(view.header_bytes())),
        header_check: match Header::parse(view.header_bytes()) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        },
        length_ok: file_len == IMAGE_OFFSET as u64 + u64::from(h.image_len()),
    })
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = self.target.unwrap_or("unknown");
        writeln!(f, "magic:            {}", self.magic)?;
        writeln!(f, "format version:   {}", self.format_version)?;
        writeln!(f, "header length:    {}", self.header_len)?;
        writeln!(f, "target:           {target} (id {})", self.target_id)?;
        writeln!(f, "flags:            {:#06x}", self.flags)?;
        writeln!(f, "key id:           {}", self.key_id)?;
        writeln!(f, "security counter: {}", self.security_counter)?;
        writeln!(f, "version:          {}", self.version)?;
        writeln!(
            f,
            "build time:       {} ({})",
            self.build_time,
            self.build_time_utc.as_deref().unwrap_or("out of range")
        )?;
        writeln!(
            f,
            "image length:     {} (file {} bytes{})",
            self.image_len,
            self.file_len,
            if self.length_ok { "" } else { ", MISMATCH" }
        )?;
        writeln!(f, "image sha256:     {}", self.image_sha256)?;
        writeln!(f, "signing message:  {}", self.signing_message)?;
        if self.signed {
            writeln!(f, "signature:        {}", self.signature)?;
        } else {
            writeln!(f, "signature:        none (unsigned bundle)")?;
        }
        writeln!(f, "header check:     {}", self.header_check)?;
        write!(
            f,
            "(inspect does not verify; run `provision ota verify` for that)"
        )
    }
}

fn build_time_default() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().map_err(|_| {
            Error::InvalidInput(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        }),
        Err(_) => Ok(OffsetDateTime::now_utc().unix_timestamp().max(0) as u64),
    }
}

fn newest_key(dir: &Path, registry: &Registry) -> Result<u32> {
    registry
        .ota_keys
        .iter()
        .map(|k| k.key_id)
        .max()
        .ok_or_else(|| Error::NoOtaKeys(crate::error::absolute(dir)))
}

fn registry_key(dir: &Path, registry: &Registry, key_id: u32) -> Result<[u8; 32]> {
    let record = registry
        .ota_keys
        .iter()
        .find(|k| k.key_id == key_id)
        .ok_or(Error::UnknownOtaKey(key_id))?;
    unhex32(&record.public_key).ok_or_else(|| Error::Corrupt {
        path: Layout::new(dir).registry(),
        reason: format!("OTA key {key_id}: public_key is not 64 hex digits"),
    })
}

fn load_signing_key(dir: &Path, registry: &Registry, key_id: u32) -> Result<SigningKey> {
    let expected = registry_key(dir, registry, key_id)?;
    let path = private_key_path(dir, key_id);
    let pem = fsutil::read_text_bounded(&path, crate::store::PEM_LIMIT, "signing key")?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| Error::Corrupt {
        path: path.clone(),
        reason: format!("not an Ed25519 PKCS#8 private key ({e})"),
    })?;
    if key.verifying_key().to_bytes() != expected {
        return Err(Error::Corrupt {
            path,
            reason: format!("this key does not match public key {key_id} in the registry"),
        });
    }
    Ok(key)
}

fn load_public_key(path: &Path) -> Result<[u8; 32]> {
    let bytes = fsutil::read_bounded(path, crate::store::PEM_LIMIT, "public key")?;
    let not_a_key = |why: String| {
        Error::InvalidInput(format!(
            "{} is not an Ed25519 public key in PEM (SubjectPublicKeyInfo) form: {why}",
            path.display()
        ))
    };
    // A binary file (a DER key, an image given by mistake) is bad input, not an I/O failure.
    let pem = String::from_utf8(bytes).map_err(|_| not_a_key("it is not text".into()))?;
    let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| not_a_key(e.to_string()))?;
    Ok(key.to_bytes())
}

/// The trusted key sets to try. From the registry: one set with every recorded key. From
/// `--pubkey`: explicit `ID=FILE` keys, plus one set per bare `FILE` (trusted under the id the
/// bundle names); the bundle is valid if any set accepts it.
/// `registry`: the one of `dir` if the caller has loaded it.
fn trusted_keys(
    dir: &Path,
    registry: Option<&Registry>,
    pubkeys: &[PubkeySpec],
    bundle_key_id: u32,
) -> Result<Vec<Vec<TrustedKey>>> {
    if pubkeys.is_empty() {
        let loaded;
        let registry = match registry {
            Some(r) => r,
            None => {
                loaded = crate::store::read_registry(dir)?
                    .ok_or_else(|| Error::NoOtaKeys(crate::error::absolute(dir)))?;
                &loaded
            }
        };
        if registry.ota_keys.is_empty() {
            return Err(Error::NoOtaKeys(crate::error::absolute(dir)));
        }
        let keys = registry
            .ota_keys
            .iter()
            .map(|k| {
                Ok(TrustedKey {
                    key_id: k.key_id,
                    public_key: registry_key(dir, registry, k.key_id)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(vec![keys]);
    }
    let mut explicit = Vec::new();
    let mut bare = Vec::new();
    for spec in pubkeys {
        let public_key = load_public_key(&spec.path)?;
        match spec.key_id {
            Some(key_id) => explicit.push(TrustedKey { key_id, public_key }),
            None => bare.push(public_key),
        }
    }
    if bare.is_empty() {
        return Ok(vec![explicit]);
    }
    Ok(bare
        .into_iter()
        .map(|public_key| {
            let mut set = explicit.clone();
            set.push(TrustedKey {
                key_id: bundle_key_id,
                public_key,
            });
            set
        })
        .collect())
}

fn check_with_any(
    bundle: &[u8],
    key_sets: &[Vec<TrustedKey>],
    target: Target,
    floor: u32,
) -> std::result::Result<Header, OtaError> {
    let mut last = OtaError::UnknownKey {
        key_id: HeaderView::new_checked(bundle).map_or(0, |h| h.key_id()),
    };
    for keys in key_sets {
        let mut verifier = Verifier::new(keys, target, floor);
        match verifier.update(bundle).and_then(|()| verifier.finish()) {
            Ok(v) => return Ok(*v.header()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn append_ext(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits -> 32 bytes (OTA public keys in the registry).
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Whether `s` is a recorded public key's hex form (used by registry validation).
pub fn is_public_key_hex(s: &str) -> bool {
    unhex32(s).is_some_and(|k| VerifyingKey::from_bytes(&k).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubkey_specs_parse() {
        assert_eq!(
            "3=keys/a.pem".parse::<PubkeySpec>().unwrap(),
            PubkeySpec {
                key_id: Some(3),
                path: "keys/a.pem".into()
            }
        );
        assert_eq!(
            "x=a.pem".parse::<PubkeySpec>().unwrap().key_id,
            None,
            "a non-numeric prefix is part of the file name"
        );
        assert!("".parse::<PubkeySpec>().is_err());
    }

    #[test]
    fn hex_round_trips() {
        let k = [0xA5u8; 32];
        assert_eq!(unhex32(&hex(&k)), Some(k));
        assert_eq!(unhex32("zz"), None);
        assert_eq!(unhex32(&"é".repeat(32)), None);
    }
}
