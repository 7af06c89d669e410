//! Certificates and the CRL, all ECDSA P-256 (the ESP8266's BearSSL has no Ed25519 certificates).

use std::net::IpAddr;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::registry::{CaRecord, CertRecord};

/// Certificates start one day in the past: device and broker clocks drift, and a certificate
/// that is "not yet valid" for a few minutes is a confusing outage.
pub const BACKDATE: Duration = Duration::days(1);
/// A CRL past its nextUpdate locks every client out of Mosquitto, so ours lasts ten years and is
/// re-signed on every revocation.
pub const CRL_LIFETIME: Duration = Duration::days(3650);

/// The CN of the operator identity. It deliberately fails the device id rule (`_`), so no device
/// can ever be issued a certificate that Mosquitto would treat as the operator.
pub const OPERATOR_CN: &str = "_operator";

/// A fresh P-256 key pair.
pub fn new_key() -> Result<KeyPair> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

/// A random, positive, 128-bit serial (RFC 5280 allows up to 20 octets; DER adds a sign byte
/// when the top bit is set). The first octet is non-zero so the hex form has a fixed length.
pub fn new_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    loop {
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        if bytes[0] != 0 {
            return SerialNumber::from_slice(&bytes);
        }
    }
}

pub fn serial_hex(serial: &SerialNumber) -> String {
    serial
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

pub fn serial_from_hex(hex: &str) -> Result<SerialNumber> {
    let bad = || Error::InvalidInput(format!("serial {hex:?} is not hex"));
    if !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>>>()?;
    Ok(SerialNumber::from_slice(&bytes))
}

/// `now` truncated to whole seconds: X.509 times have no fractions, and the registry should
/// say exactly what the certificate says.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero is a valid nanosecond")
}

fn validity(now: OffsetDateTime, days: u32) -> Result<(OffsetDateTime, OffsetDateTime)> {
    if days == 0 {
        return Err(Error::InvalidInput("--days must be at least 1".into()));
    }
    if days > 36_500 {
        return Err(Error::InvalidInput(format!(
            "--days {days} is more than 100 years"
        )));
    }
    Ok((now - BACKDATE, now + Duration::days(days.into())))
}

/// The CA's parameters. Rebuilt identically from the registry whenever we sign, so the issuer
/// name in every certificate is byte-for-byte the CA's subject (webpki compares bytes).
fn ca_params(record: &CaRecord) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, record.name.as_str());
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(serial_from_hex(&record.cert.serial)?);
    params.not_before = record.cert.not_before;
    params.not_after = record.cert.not_after;
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

/// A freshly created root CA.
pub struct NewCa {
    pub record: CaRecord,
    pub cert_pem: String,
    pub key: KeyPair,
}

pub fn create_ca(name: &str, days: u32) -> Result<NewCa> {
    if name.trim().is_empty() {
        return Err(Error::InvalidInput("--ca-name must not be empty".into()));
    }
    let (not_before, not_after) = validity(now(), days)?;
    let serial = new_serial();
    let record = CaRecord {
        name: name.to_string(),
        cert: CertRecord {
            serial: serial_hex(&serial),
            not_before,
            not_after,
        },
    };
    let key = new_key()?;
    let cert = ca_params(&record)?.self_signed(&key)?;
    Ok(NewCa {
        record,
        cert_pem: cert.pem(),
        key,
    })
}

/// A PEM file holding one block: its text and the DER inside.
pub struct PemFile {
    pub text: String,
    pub der: Vec<u8>,
}

/// Reads `path` (at most [`crate::store::PEM_LIMIT`] bytes), checks its PEM block is labelled
/// `label` (`CERTIFICATE`, `PRIVATE KEY`), and returns its text and DER.
pub fn read_pem(path: &std::path::Path, label: &str) -> Result<PemFile> {
    let text = crate::fsutil::read_text_bounded(path, crate::store::PEM_LIMIT, label)?;
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes())
        .map_err(|e| corrupt(format!("not PEM ({e})")))?;
    if pem.label != label {
        return Err(corrupt(format!(
            "holds a {:?} PEM block, expected {label:?}",
            pem.label
        )));
    }
    Ok(PemFile {
        text,
        der: pem.contents,
    })
}

/// The loaded CA, able to sign certificates and CRLs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
    cert_pem: Vec<u8>,
}

impl Ca {
    pub fn load(record: &CaRecord, key_pem: &str) -> Result<Ca> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Ca {
            issuer: Issuer::new(ca_params(record)?, key),
            not_after: record.cert.not_after,
            cert_pem: Vec::new(),
        })
    }

    /// Keeps the CA certificate (`ca.crt` as read), to copy into the broker folder without
    /// reading it again.
    pub fn with_cert_pem(mut self, cert_pem: Vec<u8>) -> Ca {
        self.cert_pem = cert_pem;
        self
    }

    /// The CA certificate (PEM) given by [`Ca::with_cert_pem`] ([`crate::store::Store::ca`]
    /// gives it); empty otherwise.
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// The CA key's public half (the uncompressed point), to compare with `ca.crt`.
    pub fn public_key_raw(&self) -> &[u8] {
        self.issuer.key().public_key_raw()
    }

    /// Issues a leaf certificate; returns it with its registry record and new private key.
    pub fn issue(&self, leaf: Leaf<'_>, days: u32) -> Result<Issued> {
        let (not_before, not_after) = validity(now(), days)?;
        // A leaf must not outlive its CA: clients reject such chains anyway.
        self.issue_between(leaf, not_before, not_after.min(self.not_after))
    }

    /// Issues a leaf for an existing key (PKCS#8 PEM): a renewed certificate that public-key
    /// pins still match.
    pub fn issue_for_key(&self, leaf: Leaf<'_>, days: u32, key_pem: &str) -> Result<Issued> {
        let (not_before, not_after) = validity(now(), days)?;
        let key = KeyPair::from_pem(key_pem)?;
        self.issue_with(leaf, not_before, not_after.min(self.not_after), key)
    }

    /// Issues a leaf with an explicit validity window (tests use it for expired certificates).
    pub fn issue_between(
        &self,
        leaf: Leaf<'_>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued> {
        self.issue_with(leaf, not_before, not_after, new_key()?)
    }

    fn issue_with(
        &self,
        leaf: Leaf<'_>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        key: KeyPair,
    ) -> Result<Issued> {
        if not_after <= not_before {
            return Err(Error::InvalidInput(
                "not_after must be later than not_before".into(),
            ));
        }
        let serial = new_serial();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.serial_number = Some(serial.clone());
        params.not_before = not_before;
        params.not_after = not_after;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        match leaf {
            Leaf::Server { hosts, ips } => {
                let cn = hosts.first().map(String::as_str).unwrap_or("broker");
                params.distinguished_name.push(DnType::CommonName, cn);
                for h in hosts {
                    params.subject_alt_names.push(SanType::DnsName(
                        h.as_str()
                            .try_into()
                            .map_err(|_| Error::InvalidInput(format!("bad host name {h:?}")))?,
                    ));
                }
                for ip in ips {
                    params.subject_alt_names.push(SanType::IpAddress(*ip));
                }
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Leaf::Client { cn } => {
                params.distinguished_name.push(DnType::CommonName, cn);
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            record: CertRecord {
                serial: serial_hex(&serial),
                not_before,
                not_after,
            },
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a CRL listing `revoked` (serial, revocation time) with number `crl_number`.
    pub fn sign_crl(
        &self,
        crl_number: u64,
        revoked: impl IntoIterator<Item = (String, OffsetDateTime)>,
    ) -> Result<String> {
        let this_update = now();
        let revoked_certs = revoked
            .into_iter()
            .map(|(serial, at)| {
                Ok(RevokedCertParams {
                    serial_number: serial_from_hex(&serial)?,
                    revocation_time: at,
                    reason_code: Some(RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update: this_update + CRL_LIFETIME,
            crl_number: SerialNumber::from_slice(&crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

/// What kind of leaf to issue.
pub enum Leaf<'a> {
    Server {
        hosts: &'a [String],
        ips: &'a [IpAddr],
    },
    Client {
        cn: &'a str,
    },
}

pub struct Issued {
    pub record: CertRecord,
    pub cert_pem: String,
    pub key_pem: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    fn parse(pem_text: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).unwrap();
        pem.contents
    }

    #[test]
    fn ca_is_constrained_and_leaf_chains_to_it() {
        let new = create_ca("Test CA", 30).unwrap();
        let ca_der = parse(&new.cert_pem);
        let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
        let bc = ca_cert.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = ca_cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        // DER adds a 00 sign octet when the top bit is set; the registry keeps the number.
        let raw = ca_cert
            .raw_serial_as_string()
            .replace(':', "")
            .to_uppercase();
        assert_eq!(
            raw.strip_prefix("00").unwrap_or(&raw),
            new.record.cert.serial
        );

        let ca = Ca::load(&new.record, &new.key.serialize_pem()).unwrap();
        let issued = ca.issue(Leaf::Client { cn: "dev-1" }, 10).unwrap();
        let leaf_der = parse(&issued.cert_pem);
        let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
        assert_eq!(leaf.issuer().as_raw(), ca_cert.subject().as_raw());
        leaf.verify_signature(Some(ca_cert.public_key())).unwrap();
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        // Backdated by a day, valid for the requested days.
        let nb = leaf.validity().not_before.to_datetime();
        let na = leaf.validity().not_after.to_datetime();
        assert_eq!(na - nb, Duration::days(11));
        assert_eq!(nb, issued.record.not_before);
    }

    #[test]
    fn serials_are_positive_128_bit_and_distinct() {
        let a = serial_hex(&new_serial());
        let b = serial_hex(&new_serial());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(serial_hex(&serial_from_hex(&a).unwrap()), a);
    }

    #[test]
    fn leaf_never_outlives_the_ca() {
        let new = create_ca("Short CA", 5).unwrap();
        let ca = Ca::load(&new.record, &new.key.serialize_pem()).unwrap();
        let issued = ca.issue(Leaf::Client { cn: "x" }, 3650).unwrap();
        assert_eq!(issued.record.not_after, new.record.cert.not_after);
    }

    #[test]
    fn zero_days_is_refused() {
        assert!(matches!(
            create_ca("x", 0),
            Err(Error::InvalidInput(m)) if m.contains("--days")
        ));
    }

    #[test]
    fn crl_carries_number_and_serials() {
        let new = create_ca("CRL CA", 30).unwrap();
        let ca = Ca::load(&new.record, &new.key.serialize_pem()).unwrap();
        let pem_text = ca.sign_crl(7, [("0A1B".to_string(), now())]).unwrap();
        let der = x509_parser::pem::parse_x509_pem(pem_text.as_bytes())
            .unwrap()
            .1
            .contents;
        let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("7".into()));
        let serials: Vec<_> = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial_as_string())
            .collect();
        assert_eq!(serials, vec!["0a:1b".to_string()]);
        assert!(crl.next_update().unwrap().to_datetime() > now() + Duration::days(3000));
    }
}
