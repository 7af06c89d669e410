//! `provision broker`: the server certificate and an installable, hardened Mosquitto folder.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, Transaction, BROKER_SECRET, PUBLIC, SECRET};
use crate::layout::Layout;
use crate::pki::{Leaf, OPERATOR_CN};
use crate::registry::{BrokerRecord, Registry};
use crate::store::Store;

/// TLS 1.2 suites the broker offers: forward secrecy (ECDHE) and AEAD only, ECDSA because our
/// server key is P-256. The first is what the ESP8266's BearSSL speaks. TLS 1.3 suites are all
/// AEAD with forward secrecy already.
pub const CIPHERS: &str =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";

pub struct BrokerOptions {
    pub hosts: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub port: u16,
    pub bind: Option<String>,
    pub install_dir: Option<PathBuf>,
    pub days: u32,
}

pub fn configure(dir: &Path, opts: &BrokerOptions) -> Result<BrokerRecord> {
    if opts.hosts.is_empty() {
        return Err(Error::InvalidInput(
            "at least one --host is required".into(),
        ));
    }
    for h in &opts.hosts {
        validate_host(h)?;
    }
    if opts.port == 0 {
        return Err(Error::InvalidInput("--port must not be 0".into()));
    }
    if let Some(bind) = &opts.bind {
        if bind.is_empty() || bind.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::InvalidInput(format!(
                "--bind {bind:?} is not an address"
            )));
        }
    }
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let ca = store.ca(&registry)?;
    let install_dir = match &opts.install_dir {
        Some(d) if !d.is_absolute() => {
            return Err(Error::InvalidInput(format!(
                "--install-dir {} must be an absolute path (it is written into mosquitto.conf)",
                d.display()
            )))
        }
        Some(d) => d.clone(),
        None => std::path::absolute(store.layout.broker_dir())
            .context(|| "resolving the broker folder".to_string())?,
    };
    check_config_path(&install_dir)?;

    let issued = ca.issue(
        Leaf::Server {
            hosts: &opts.hosts,
            ips: &opts.ips,
        },
        opts.days,
    )?;
    let record = BrokerRecord {
        hosts: opts.hosts.clone(),
        ips: opts.ips.clone(),
        port: opts.port,
        bind: opts.bind.clone(),
        install_dir,
        cert: issued.record,
    };
    registry.broker = Some(record.clone());

    let layout = &store.layout;
    let ca_pem = std::fs::read(layout.ca_cert())
        .context(|| format!("reading {}", layout.ca_cert().display()))?;
    let crl_pem =
        std::fs::read(layout.crl()).context(|| format!("reading {}", layout.crl().display()))?;
    let mut tx = store.transaction();
    tx.create_dir_all(&layout.broker_dir())?;
    stage_server_key(&mut tx, layout, &issued.key_pem)?;
    tx.stage(
        &layout.broker_file("server.crt"),
        issued.cert_pem.as_bytes(),
        PUBLIC,
    )?;
    tx.stage(&layout.broker_file("ca.crt"), &ca_pem, PUBLIC)?;
    tx.stage(&layout.broker_file("crl.pem"), &crl_pem, PUBLIC)?;
    tx.stage(
        &layout.broker_file("acl"),
        render_acl(&registry).as_bytes(),
        PUBLIC,
    )?;
    tx.stage(
        &layout.broker_file("mosquitto.conf"),
        render_config(&record).as_bytes(),
        PUBLIC,
    )?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(record)
}

fn validate_host(h: &str) -> Result<()> {
    // `1.2.3.4` passes the DNS label rule, but as a DNS SAN no client matches it to an address.
    if h.parse::<IpAddr>().is_ok() {
        return Err(Error::InvalidInput(format!(
            "--host {h} is an IP address: pass it as --ip {h} (clients match addresses only \
             against IP SANs) and give a name with --host"
        )));
    }
    if is_dns_name(h) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "--host {h:?} is not a DNS name (use --ip for addresses)"
        )))
    }
}

/// A host name as certificates carry it: dot-separated labels of letters, digits and inner `-`.
pub(crate) fn is_dns_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// mosquitto.conf has no quoting: a path option is the rest of its line, read as UTF-8
/// (Mosquitto 2.0 keeps inner spaces, so `/home/me/My PKI/broker` works). A line break or other
/// control character, or bytes that are not UTF-8, cannot be written into it.
fn check_config_path(p: &Path) -> Result<()> {
    let Some(s) = p.to_str() else {
        return Err(Error::InvalidInput(format!(
            "{} is not UTF-8, which mosquitto.conf cannot express; use --install-dir",
            p.display()
        )));
    };
    if s.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "{s:?} contains a control character (line break, tab), which mosquitto.conf cannot \
             express; use --install-dir"
        )));
    }
    Ok(())
}

/// The hardened broker configuration.
pub fn render_config(b: &BrokerRecord) -> String {
    let f = |name: &str| b.install_dir.join(name).display().to_string();
    let listener = match &b.bind {
        Some(addr) => format!("listener {} {addr}", b.port),
        None => format!("listener {}", b.port),
    };
    format!(
        "\
# Mosquitto 2.0 configuration written by `provision broker`. Regenerate rather than edit.
# One TLS listener, no plaintext listener. Every client proves its identity with a certificate
# from our CA; the certificate CN becomes the MQTT username the ACL is written for.

per_listener_settings false
allow_anonymous false
acl_file {acl}

{listener}
protocol mqtt
cafile {ca}
certfile {cert}
keyfile {key}
crlfile {crl}
require_certificate true
use_identity_as_username true
# A minimum: TLS 1.3 clients are accepted too.
tls_version tlsv1.2
# TLS 1.2: forward secrecy and AEAD only. The first suite is what the ESP8266 speaks.
ciphers {CIPHERS}
",
        acl = f("acl"),
        ca = f("ca.crt"),
        cert = f("server.crt"),
        key = f("server.key"),
        crl = f("crl.pem"),
    )
}

/// The ACL: each device only its own subtree, the operator every device's data (docs/topics.md).
pub fn render_acl(registry: &Registry) -> String {
    let mut acl = String::from(
        "\
# Mosquitto ACL written by `provision`. Regenerate rather than edit; see docs/topics.md.
# Usernames are certificate CNs (use_identity_as_username). Device ids never contain + # /.

# Every device: only its own subtree under devices/<id>/.
pattern write devices/%u/telemetry
pattern write devices/%u/status
pattern write devices/%u/reply/#
pattern write devices/%u/ota/up/#
pattern read devices/%u/cmd/#
pattern read devices/%u/ota/down/#
",
    );
    let _ = write!(
        acl,
        "
# The operator (the provision CLI): reads every device's data, sends commands and updates.
user {OPERATOR_CN}
topic read devices/+/telemetry
topic read devices/+/status
topic read devices/+/reply/#
topic read devices/+/ota/up/#
topic write devices/+/cmd/#
topic write devices/+/ota/down/#
"
    );
    let revoked: Vec<_> = registry.revoked().map(|(id, _)| id).collect();
    if !revoked.is_empty() {
        acl.push_str(
            "\n# Revoked devices: the CRL keeps them from connecting again; these entries cut off a\n# connection that was open when they were revoked (applied on reload).\n",
        );
        for id in revoked {
            let _ = write!(acl, "user {id}\ntopic deny #\n");
        }
    }
    acl
}

/// Stages the broker's private key. The broker reads it after dropping to user `mosquitto`:
/// give the group read access where that group exists, otherwise keep it owner-only.
pub fn stage_server_key(tx: &mut Transaction, layout: &Layout, key_pem: &str) -> Result<()> {
    match fsutil::mosquitto_gid() {
        Some(gid) => tx.stage_with_group(
            &layout.broker_file("server.key"),
            key_pem.as_bytes(),
            BROKER_SECRET,
            Some(gid),
        ),
        None => tx.stage(
            &layout.broker_file("server.key"),
            key_pem.as_bytes(),
            SECRET,
        ),
    }
}

/// Stages `<dir>/broker/acl` and `crl.pem` when a broker folder exists.
pub fn stage_broker_updates(
    tx: &mut Transaction,
    layout: &Layout,
    registry: &Registry,
    crl_pem: &str,
) -> Result<()> {
    if registry.broker.is_some() && layout.broker_dir().is_dir() {
        tx.stage(&layout.broker_file("crl.pem"), crl_pem.as_bytes(), PUBLIC)?;
        tx.stage(
            &layout.broker_file("acl"),
            render_acl(registry).as_bytes(),
            PUBLIC,
        )?;
    }
    Ok(())
}
