//! `provision device config`: the flashable config blob for one device (format:
//! `wire_format::device_config`, docs/device-config.md). It carries the device's private key, so
//! it is written like one: mode 0600, atomically, never printed.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use wire_format::device_config::{self, DeviceConfig};
use x509_parser::extensions::GeneralName;

use crate::device::validate_ids;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{Transaction, SECRET};
use crate::pki::read_pem;
use crate::registry::{BrokerRecord, DeviceStatus, Engine, Registry};
use crate::store::Store;

/// Default telemetry period, seconds.
pub const DEFAULT_PERIOD_S: u32 = 30;

/// What to put in the blob besides what the registry knows.
#[derive(Debug, Clone)]
pub struct ConfigOptions {
    pub id: String,
    pub wifi_ssid: String,
    /// File holding the WiFi password (first line); `None` for an open network.
    pub wifi_password_file: Option<PathBuf>,
    /// The broker endpoints, in the order the device tries them (`--broker HOST:PORT`, at most
    /// [`device_config::MAX_BROKERS`]). Empty: every endpoint of the broker `provision broker`
    /// recorded ([`BrokerRecord::endpoints`]), in an order that starts at a different node for
    /// different devices ([`registry_endpoints`]).
    pub brokers: Vec<(String, u16)>,
    /// One endpoint instead (`--broker-host`): this host, with `broker_port` or the registry's
    /// first endpoint's port.
    pub broker_host: Option<String>,
    /// With `broker_host` (or alone: the registry's first host at this port).
    pub broker_port: Option<u16>,
    pub telemetry_period_s: u32,
    /// Pin the broker's public key (SHA-256 of its SPKI) in addition to the CA check.
    pub pin_broker: bool,
    pub output: PathBuf,
}

/// What was written (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigReport {
    pub id: String,
    pub output: PathBuf,
    pub bytes: usize,
    /// The first endpoint (the one the device tries first).
    pub broker_host: String,
    pub broker_port: u16,
    /// Every endpoint, in the order the device tries them.
    pub brokers: Vec<Endpoint>,
    pub ota_keys: usize,
    pub pinned: bool,
    /// The device keeps a persistent MQTT session (a RabbitMQ broker).
    pub persistent_session: bool,
    /// Things that work but are probably not what the user wants (no OTA keys, ...).
    pub warnings: Vec<String>,
}

/// One broker endpoint written to a blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// The endpoints a device gets from the registry: every endpoint of the broker, rotated so that
/// the list starts at node `crc32(id) mod n` — a cluster's devices spread over its nodes instead
/// of all starting (and failing over) at the first — and at most
/// [`device_config::MAX_BROKERS`] of them (the next ones in that order).
pub fn registry_endpoints(broker: &BrokerRecord, id: &str) -> Vec<(String, u16)> {
    let all = broker.endpoints();
    if all.is_empty() {
        return all;
    }
    let start = device_config::crc32(id.as_bytes()) as usize % all.len();
    all.iter()
        .cycle()
        .skip(start)
        .take(all.len().min(device_config::MAX_BROKERS))
        .cloned()
        .collect()
}

/// The first line of `path`, reading no more than a password could need: `/dev/stdin` works, and
/// a wrong path such as `/dev/zero` or a huge file is refused instead of read to the end.
fn read_first_line(path: &Path) -> Result<String> {
    const LIMIT: u64 = 1024;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(LIMIT).read_to_end(&mut bytes))
        .context(|| format!("reading {}", path.display()))?;
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None if bytes.len() as u64 >= LIMIT => {
            return Err(Error::InvalidInput(format!(
                "{}: no line break in the first {LIMIT} bytes; is this the password file?",
                path.display()
            )))
        }
        None => &bytes[..],
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: the first line (the WiFi password) is empty; omit --wifi-password-file for an \
             open network",
            path.display()
        )));
    }
    String::from_utf8(line.to_vec()).map_err(|_| {
        Error::InvalidInput(format!(
            "{}: the WiFi password is not UTF-8 text",
            path.display()
        ))
    })
}

/// Refuses WiFi credentials no access point would accept: an SSID is 1–32 bytes (802.11) and a
/// control character in it is a paste error; a WPA2 passphrase is 8–63 printable ASCII characters
/// or a 64-digit hex PSK (802.11i). An empty password means an open network.
pub fn check_wifi(ssid: &str, password: &str) -> Result<()> {
    if ssid.is_empty() || ssid.len() > 32 {
        return Err(Error::InvalidInput(format!(
            "WiFi SSID is {} bytes long ({ssid:?}); an SSID is 1 to 32 bytes",
            ssid.len()
        )));
    }
    if ssid.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "WiFi SSID {ssid:?} contains a control character (a line break or tab from a paste?)"
        )));
    }
    if password.is_empty() {
        return Ok(());
    }
    let hex_psk = password.len() == 64 && password.bytes().all(|b| b.is_ascii_hexdigit());
    let passphrase =
        (8..=63).contains(&password.len()) && password.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if !hex_psk && !passphrase {
        // Never echo the password itself.
        return Err(Error::InvalidInput(format!(
            "the WiFi password ({} bytes) cannot work: a WPA2 passphrase is 8 to 63 printable \
             ASCII characters, or exactly 64 hex digits",
            password.len()
        )));
    }
    Ok(())
}

/// SHA-256 of the SubjectPublicKeyInfo of a DER certificate.
pub fn spki_pin(cert_der: &[u8], path: &Path) -> Result<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not an X.509 certificate ({e})"),
    })?;
    Ok(wire_format::ota::sha256(
        cert.tbs_certificate.subject_pki.raw,
    ))
}

/// Builds and writes the blob for `opts.id`.
pub fn write_config(dir: &Path, opts: &ConfigOptions) -> Result<ConfigReport> {
    let mut reports = write_configs(dir, std::slice::from_ref(opts))?;
    Ok(reports.pop().expect("one blob for one device"))
}

/// Builds the blobs for several devices and writes them all or none (`device config
/// --from-file`). Every blob is checked before the first one is written.
pub fn write_configs(dir: &Path, all: &[ConfigOptions]) -> Result<Vec<ConfigReport>> {
    if all.is_empty() {
        return Err(Error::InvalidInput("no device ids given".into()));
    }
    let ids: Vec<String> = all.iter().map(|o| o.id.clone()).collect();
    validate_ids(&ids)?;
    let mut outputs = std::collections::BTreeSet::new();
    for o in all {
        if !outputs.insert(&o.output) {
            return Err(Error::InvalidInput(format!(
                "{} is the output of two devices",
                o.output.display()
            )));
        }
    }
    let store = Store::open_read(dir)?;
    for o in all {
        store.check_output(&o.output)?;
    }
    let registry = store.registry()?;
    let sans = broker_names(&store, &registry)?;
    let mut tx = Transaction::new();
    let mut reports = Vec::new();
    // Each password file is read once: `/dev/stdin` serves every device.
    let mut passwords = std::collections::BTreeMap::new();
    for opts in all {
        let wifi_password = match &opts.wifi_password_file {
            None => String::new(),
            Some(f) => match passwords.get(f) {
                Some(p) => String::clone(p),
                None => {
                    let p = read_first_line(f)?;
                    passwords.insert(f.clone(), p.clone());
                    p
                }
            },
        };
        let (blob, report) = build(dir, &store, &registry, sans.as_ref(), opts, &wifi_password)?;
        tx.stage(&opts.output, &blob, SECRET)?;
        reports.push(report);
    }
    tx.commit()?;
    Ok(reports)
}

/// The names and addresses in the broker certificate (`<dir>/broker/server.crt`, else what the
/// registry recorded for it); `None` when no broker is configured here.
fn broker_names(store: &Store, registry: &Registry) -> Result<Option<BrokerNames>> {
    let Some(b) = &registry.broker else {
        return Ok(None);
    };
    let path = store.layout.broker_file("server.crt");
    if !path.exists() {
        return Ok(Some(BrokerNames {
            dns: b.hosts.clone(),
            ips: b.ips.clone(),
        }));
    }
    let der = read_pem(&path, "CERTIFICATE")?.der;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| Error::Corrupt {
        path: path.clone(),
        reason: format!("not an X.509 certificate ({e})"),
    })?;
    let mut names = BrokerNames {
        dns: Vec::new(),
        ips: Vec::new(),
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.dns.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names
                        .ips
                        .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap())),
                    16 => names
                        .ips
                        .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(Some(names))
}

struct BrokerNames {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl BrokerNames {
    fn matches(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.ips.contains(&ip),
            Err(_) => self.dns.iter().any(|d| d.eq_ignore_ascii_case(host)),
        }
    }

    fn list(&self) -> String {
        self.dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The endpoints for one device: `--broker` as given, or the one `--broker-host`/`--broker-port`
/// name, or the registry's ([`registry_endpoints`]). Never empty, at most
/// [`device_config::MAX_BROKERS`].
fn endpoints(
    dir: &Path,
    opts: &ConfigOptions,
    broker: Option<&BrokerRecord>,
) -> Result<Vec<(String, u16)>> {
    let single = opts.broker_host.is_some() || opts.broker_port.is_some();
    if !opts.brokers.is_empty() {
        if single {
            return Err(Error::InvalidInput(
                "--broker names every endpoint; leave out --broker-host and --broker-port".into(),
            ));
        }
        if opts.brokers.len() > device_config::MAX_BROKERS {
            return Err(Error::InvalidInput(format!(
                "{} --broker endpoints given; a device config holds at most {}",
                opts.brokers.len(),
                device_config::MAX_BROKERS
            )));
        }
        return Ok(opts.brokers.clone());
    }
    let registry = match broker {
        Some(b) => b.endpoints(),
        None if opts.broker_host.is_some() => Vec::new(),
        None => return Err(Error::no_broker(dir)),
    };
    if single {
        let first = registry.first();
        let host = opts
            .broker_host
            .clone()
            .or_else(|| first.map(|(h, _)| h.clone()))
            .ok_or_else(|| Error::no_broker(dir))?;
        let port = opts.broker_port.or(first.map(|(_, p)| *p)).unwrap_or(8883);
        return Ok(vec![(host, port)]);
    }
    let list = broker
        .map(|b| registry_endpoints(b, &opts.id))
        .unwrap_or_default();
    if list.is_empty() {
        return Err(Error::no_broker(dir));
    }
    Ok(list)
}

fn build(
    dir: &Path,
    store: &Store,
    registry: &Registry,
    sans: Option<&BrokerNames>,
    opts: &ConfigOptions,
    wifi_password: &str,
) -> Result<(Vec<u8>, ConfigReport)> {
    check_wifi(&opts.wifi_ssid, wifi_password)?;
    let layout = &store.layout;
    let device = registry
        .devices
        .get(&opts.id)
        .ok_or_else(|| Error::UnknownDevice(opts.id.clone()))?;
    if device.status == DeviceStatus::Revoked {
        return Err(Error::AlreadyRevoked(opts.id.clone()));
    }
    let broker = registry.broker.as_ref();
    let endpoints = endpoints(dir, opts, broker)?;
    let mut seen = std::collections::BTreeSet::new();
    for (host, port) in &endpoints {
        // The device connects to this name and checks it against the broker certificate: a
        // name that is neither a DNS name nor an address would only show up there, as an
        // endless backoff.
        if !crate::broker::is_dns_name(host) && host.parse::<IpAddr>().is_err() {
            return Err(Error::InvalidInput(format!(
                "broker host {host:?} is not a DNS name or an IP address"
            )));
        }
        // Likewise a name the broker certificate does not carry: the device would refuse the
        // broker there.
        if let Some(names) = sans {
            if !names.matches(host) {
                return Err(Error::InvalidInput(format!(
                    "broker host {host} is not in the broker certificate (it names: {}); \
                     the device would refuse the broker there. Use one of those, or add it with \
                     `provision broker --host/--ip`",
                    names.list()
                )));
            }
        }
        if *port == 0 {
            return Err(Error::InvalidInput(format!("broker {host}: port 0")));
        }
        if !seen.insert((host.to_ascii_lowercase(), *port)) {
            return Err(Error::InvalidInput(format!(
                "broker endpoint {host}:{port} is given twice"
            )));
        }
    }
    let ca = read_pem(&layout.ca_cert(), "CERTIFICATE")?.der;
    let cert = read_pem(&layout.device_cert(&opts.id), "CERTIFICATE")?.der;
    let key = read_pem(&layout.device_key(&opts.id), "PRIVATE KEY")?.der;
    let pin = if opts.pin_broker {
        let path = layout.broker_file("server.crt");
        if broker.is_none() || !path.exists() {
            return Err(Error::no_broker(dir));
        }
        Some(spki_pin(&read_pem(&path, "CERTIFICATE")?.der, &path)?)
    } else {
        None
    };
    // The newest keys if there are more than fit; ids let bundles name theirs.
    let mut ota = Vec::new();
    let skip = registry
        .ota_keys
        .len()
        .saturating_sub(device_config::MAX_OTA_KEYS);
    for k in registry.ota_keys.iter().skip(skip) {
        let public = crate::ota::unhex32(&k.public_key).ok_or_else(|| Error::Corrupt {
            path: layout.registry(),
            reason: format!("OTA key {} is not 64 hex digits", k.key_id),
        })?;
        ota.push(device_config::ota_key_entry(k.key_id, &public));
    }

    // On a RabbitMQ cluster a clean session's subscription queue lives on one node only, and
    // while that node is down the device cannot subscribe on any other; a persistent session's
    // queue is a replicated quorum queue (`mqtt.durable_queue_type = quorum`) that survives it.
    let persistent_session = broker.is_some_and(|b| b.engine == Engine::Rabbitmq);
    let list: Vec<device_config::Endpoint<'_>> = endpoints
        .iter()
        .map(|(host, port)| device_config::Endpoint { host, port: *port })
        .collect();
    let cfg = DeviceConfig {
        device_id: &opts.id,
        wifi_ssid: &opts.wifi_ssid,
        wifi_password,
        brokers: device_config::Brokers::new(&list)
            .map_err(|e| Error::InvalidInput(e.to_string()))?,
        telemetry_period_s: opts.telemetry_period_s,
        ca_cert_der: &ca,
        client_cert_der: &cert,
        client_key_der: &key,
        broker_pin: pin.as_ref(),
        persistent_session,
        ota_keys: &ota,
    };
    let mut blob = vec![0u8; device_config::MAX_LEN];
    let n = cfg
        .emit(&mut blob)
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    blob.truncate(n);
    // Self-check: what we wrote is what the device will read.
    DeviceConfig::parse(&blob).map_err(|e| Error::InvalidInput(e.to_string()))?;

    let mut warnings = Vec::new();
    if ota.is_empty() {
        warnings.push(format!(
            "{}: the blob carries no OTA keys, so the device will refuse every firmware update; \
             run `provision ota keygen` and write the config again",
            opts.id
        ));
    }
    let report = ConfigReport {
        id: opts.id.clone(),
        output: opts.output.clone(),
        bytes: n,
        broker_host: endpoints[0].0.clone(),
        broker_port: endpoints[0].1,
        brokers: endpoints
            .iter()
            .map(|(host, port)| Endpoint {
                host: host.clone(),
                port: *port,
            })
            .collect(),
        ota_keys: ota.len(),
        pinned: pin.is_some(),
        persistent_session,
        warnings,
    };
    Ok((blob, report))
}
