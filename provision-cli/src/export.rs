//! `provision device export`: a device's identity in the forms other firmwares take (PEM and
//! DER files, an Arduino header for the ESP8266 core's BearSSL), and the broker's fingerprints
//! for firmwares that pin them. Private keys are written 0600 and atomically, like every key.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha1::Digest as _;

use crate::device::validate_ids;
use crate::error::{Error, Result};
use crate::fsutil::{Transaction, PUBLIC, SECRET};
use crate::pki::read_pem;
use crate::registry::DeviceStatus;
use crate::store::Store;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `ca.crt`, `<id>.crt`, `<id>.key` (PEM) in a directory.
    Pem,
    /// `ca.der`, `<id>.der`, `<id>.key.der` (PKCS#8) in a directory.
    Der,
    /// One C++ header for the ESP8266 Arduino core (BearSSL): PROGMEM PEM strings and a
    /// function that installs them on a `BearSSL::WiFiClientSecure`.
    Arduino,
    /// The broker certificate's SHA-1 and SHA-256 fingerprints and its SPKI SHA-256 (printed).
    Fingerprint,
}

impl Format {
    pub const NAMES: [&'static str; 4] = ["pem", "der", "arduino", "fingerprint"];

    pub fn from_name(s: &str) -> Option<Format> {
        Some(match s {
            "pem" => Format::Pem,
            "der" => Format::Der,
            "arduino" => Format::Arduino,
            "fingerprint" => Format::Fingerprint,
            _ => return None,
        })
    }
}

/// Where the export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A directory (pem, der) or a file (arduino).
    Path(PathBuf),
    /// Standard output; only for the text formats, and only when the caller explicitly allowed
    /// the private key on it.
    Stdout,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub id: String,
    pub format: Format,
    /// Required for pem, der and arduino; unused for fingerprint.
    pub output: Option<Output>,
}

/// The broker certificate's fingerprints, as upper-case colon-separated hex (OpenSSL's form).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Fingerprints {
    pub certificate: PathBuf,
    pub sha1: String,
    pub sha256: String,
    pub spki_sha256: String,
}

/// What an export produced (no secrets, except `stdout` when the caller asked for it).
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub id: String,
    /// Files written, the private key's last (mode 0600).
    pub files: Vec<PathBuf>,
    #[serde(skip)]
    pub stdout: Option<String>,
    pub fingerprints: Option<Fingerprints>,
}

pub fn export(dir: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    validate_ids(std::slice::from_ref(&opts.id))?;
    let store = Store::open_read(dir)?;
    let registry = store.registry()?;
    let layout = &store.layout;
    let device = registry
        .devices
        .get(&opts.id)
        .ok_or_else(|| Error::UnknownDevice(opts.id.clone()))?;
    if device.status == DeviceStatus::Revoked {
        return Err(Error::AlreadyRevoked(opts.id.clone()));
    }
    let id = &opts.id;
    let mut report = ExportReport {
        id: id.clone(),
        files: Vec::new(),
        stdout: None,
        fingerprints: None,
    };
    if opts.format == Format::Fingerprint {
        let path = layout.broker_file("server.crt");
        if registry.broker.is_none() || !path.exists() {
            return Err(Error::no_broker(dir));
        }
        report.fingerprints = Some(fingerprints(&path)?);
        return Ok(report);
    }
    let output = opts.output.as_ref().ok_or_else(|| {
        Error::InvalidInput("an output is required (-o DIR, or -o FILE for arduino)".into())
    })?;
    let ca = read_pem(&layout.ca_cert(), "CERTIFICATE")?;
    let cert = read_pem(&layout.device_cert(id), "CERTIFICATE")?;
    let key = read_pem(&layout.device_key(id), "PRIVATE KEY")?;
    let (ca_pem, cert_pem, key_pem) = (&ca.text, &cert.text, &key.text);

    let text = match opts.format {
        Format::Pem => Some(format!("{ca_pem}{cert_pem}{key_pem}")),
        Format::Arduino => {
            let endpoints = registry
                .broker
                .as_ref()
                .map(|b| crate::device_config::registry_endpoints(b, id))
                .unwrap_or_default();
            Some(arduino_header(id, &endpoints, ca_pem, cert_pem, key_pem))
        }
        Format::Der | Format::Fingerprint => None,
    };
    let dest = match output {
        Output::Stdout => {
            report.stdout = Some(text.ok_or_else(|| {
                Error::InvalidInput("--format der writes binary files: give -o DIR".into())
            })?);
            return Ok(report);
        }
        Output::Path(p) => p,
    };
    // Never over provision's own files (`-o` pointed at the CA folder, say).
    if matches!(opts.format, Format::Pem | Format::Der) {
        for name in ["ca.crt", "ca.der"] {
            store.check_output(&dest.join(name))?;
        }
    } else {
        store.check_output(dest)?;
    }
    let mut tx = Transaction::new();
    match opts.format {
        Format::Pem | Format::Der => {
            let der = opts.format == Format::Der;
            tx.create_dir_all(dest)?;
            let conv = |pem: &crate::pki::PemFile| -> Vec<u8> {
                if der {
                    pem.der.clone()
                } else {
                    pem.text.as_bytes().to_vec()
                }
            };
            let (ca_name, cert_name, key_name) = if der {
                ("ca.der", format!("{id}.der"), format!("{id}.key.der"))
            } else {
                ("ca.crt", format!("{id}.crt"), format!("{id}.key"))
            };
            for (name, bytes, mode) in [
                (ca_name.to_string(), conv(&ca), PUBLIC),
                (cert_name, conv(&cert), PUBLIC),
                (key_name, conv(&key), SECRET),
            ] {
                let path = dest.join(name);
                tx.stage(&path, &bytes, mode)?;
                report.files.push(path);
            }
        }
        Format::Arduino => {
            let text = text.expect("arduino is text");
            tx.stage(dest, text.as_bytes(), SECRET)?;
            report.files.push(dest.clone());
        }
        Format::Fingerprint => unreachable!("returned above"),
    }
    tx.commit()?;
    Ok(report)
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// SHA-1 and SHA-256 of the certificate (DER) and SHA-256 of its SubjectPublicKeyInfo.
pub fn fingerprints(cert_path: &Path) -> Result<Fingerprints> {
    let der = read_pem(cert_path, "CERTIFICATE")?.der;
    let spki = crate::device_config::spki_pin(&der, cert_path)?;
    Ok(Fingerprints {
        certificate: cert_path.to_path_buf(),
        sha1: colon_hex(&sha1::Sha1::digest(&der)),
        sha256: colon_hex(&wire_format::ota::sha256(&der)),
        spki_sha256: colon_hex(&spki),
    })
}

/// A C++ raw string literal holding `pem`, with a delimiter the text cannot contain.
fn raw_literal(pem: &str) -> String {
    debug_assert!(!pem.contains(")PEM\""));
    format!("R\"PEM({pem})PEM\"")
}

/// The Arduino header (ESP8266 core 3.x, `BearSSL::WiFiClientSecure`). `endpoints`: where the
/// broker listens, in the order the device should try them (as its config blob would list
/// them); none leaves the broker out.
pub fn arduino_header(
    id: &str,
    endpoints: &[(String, u16)],
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "\
// Written by `provision device export {id} --format arduino`.
// It holds the device's PRIVATE KEY: keep it out of version control and off shared disks.
// For the ESP8266 Arduino core's BearSSL; see docs/other-firmwares.md for a sketch.
#pragma once
#include <Arduino.h>
#include <WiFiClientSecureBearSSL.h>

namespace provision {{

// The MQTT client id and username the broker expects (the certificate's CN).
static const char DEVICE_ID[] = \"{id}\";
// The device may publish only below this prefix (telemetry, status, reply/...) and receives
// commands on cmd/...; see docs/topics.md.
static const char TOPIC_PREFIX[] = \"devices/{id}/\";
"
    );
    if let Some((host, port)) = endpoints.first() {
        let hosts: Vec<String> = endpoints.iter().map(|(h, _)| format!("\"{h}\"")).collect();
        let ports: Vec<String> = endpoints.iter().map(|(_, p)| p.to_string()).collect();
        let _ = write!(
            h,
            "static const char MQTT_HOST[] = \"{host}\";\nstatic const uint16_t MQTT_PORT = {port};\n\
             // Every endpoint of the broker (a cluster's nodes), in the order to try them: on a\n\
             // failed connect or a lost session, move to the next. The first is MQTT_HOST:MQTT_PORT.\n\
             static const unsigned MQTT_ENDPOINTS = {};\n\
             static const char *const MQTT_HOSTS[] = {{{}}};\n\
             static const uint16_t MQTT_PORTS[] = {{{}}};\n",
            endpoints.len(),
            hosts.join(", "),
            ports.join(", ")
        );
    }
    let _ = write!(
        h,
        "
// Our CA: the broker's certificate must chain to it.
static const char CA_CERT[] PROGMEM = {ca};

// The device's certificate (P-256, signed by the CA above).
static const char CLIENT_CERT[] PROGMEM = {cert};

// The device's private key (P-256, PKCS#8).
static const char CLIENT_KEY[] PROGMEM = {key};

// Trusts only our CA and presents the device certificate. The objects live as long as the
// program: BearSSL keeps pointers to them. Set the clock (configTime) before connecting: BearSSL
// refuses certificates without a time.
inline void configure(BearSSL::WiFiClientSecure &client) {{
  static BearSSL::X509List ca(CA_CERT);
  static BearSSL::X509List cert(CLIENT_CERT);
  static BearSSL::PrivateKey key(CLIENT_KEY);
  client.setTrustAnchors(&ca);
  // The key signs (ECDSA); the issuing CA's key is EC.
  client.setClientECCert(&cert, &key, BR_KEYTYPE_SIGN, BR_KEYTYPE_EC);
}}

}}  // namespace provision
",
        ca = raw_literal(ca_pem),
        cert = raw_literal(cert_pem),
        key = raw_literal(key_pem),
    );
    h
}
