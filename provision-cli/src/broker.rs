//! `provision broker`: the server certificate and an installable, hardened Mosquitto folder.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, Transaction, BROKER_SECRET, PUBLIC, SECRET};
use crate::layout::Layout;
use crate::pki::Leaf;
use crate::registry::{BrokerRecord, Platform, Registry, RetiredCert, BROKER_SUBJECT};
use crate::store::Store;

/// TLS 1.2 suites the broker offers: forward secrecy (ECDHE) and AEAD only, ECDSA because our
/// server key is P-256. The first is what the ESP8266's BearSSL speaks. TLS 1.3 suites are all
/// AEAD with forward secrecy already.
pub const CIPHERS: &str =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";

/// Largest MQTT packet (header, topic and payload) the broker accepts from anyone: the device's
/// receive buffer (`esp-client`'s `RX_BUF`). Whatever the broker takes in, it may pass on to a
/// device, so nothing bigger gets in; this also bounds every retained message.
pub const MAX_PACKET_SIZE: u32 = 2048;

pub struct BrokerOptions {
    pub hosts: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub port: u16,
    pub bind: Option<String>,
    pub install_dir: Option<PathBuf>,
    pub days: u32,
    pub platform: Platform,
    /// `max_packet_size`; at least [`MAX_PACKET_SIZE`] (None: exactly that).
    pub max_packet_size: Option<u32>,
    /// The broker's existing main config to check our drop-in against (Debian; default
    /// [`DEBIAN_MAIN_CONF`] when it exists on this machine).
    pub existing_config: Option<PathBuf>,
}

/// Debian's main Mosquitto config, which includes `conf.d/`.
pub const DEBIAN_MAIN_CONF: &str = "/etc/mosquitto/mosquitto.conf";
/// Where `--platform openwrt|debian` expects the files by default.
pub const SYSTEM_INSTALL_DIR: &str = "/etc/mosquitto/provision";

/// What `provision broker` did.
pub struct BrokerReport {
    pub record: BrokerRecord,
    /// The existing config that was checked (Debian), and what our drop-in would change there.
    pub checked: Option<PathBuf>,
    pub warnings: Vec<String>,
}

pub fn configure(dir: &Path, opts: &BrokerOptions) -> Result<BrokerReport> {
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
    let max_packet_size = opts.max_packet_size.unwrap_or(MAX_PACKET_SIZE);
    if !(MAX_PACKET_SIZE..=268_435_455).contains(&max_packet_size) {
        return Err(Error::InvalidInput(format!(
            "--max-packet-size {max_packet_size} must be between {MAX_PACKET_SIZE} (what a device \
             receives; OTA chunks fill it) and 268435455 (MQTT's largest packet)"
        )));
    }
    // Checked before anything is written; the findings are warnings (the user fixes the other
    // files), an unreadable config is an error.
    let checked = match (&opts.existing_config, opts.platform) {
        (Some(p), _) => Some(p.clone()),
        (None, Platform::Debian) if Path::new(DEBIAN_MAIN_CONF).is_file() => {
            Some(PathBuf::from(DEBIAN_MAIN_CONF))
        }
        (None, _) => None,
    };
    let warnings = match &checked {
        Some(p) => crate::mosquitto_conf::coexistence_warnings(
            p,
            opts.port,
            &[
                "max_packet_size",
                "message_size_limit",
                "max_inflight_messages",
                "max_queued_messages",
                "max_queued_bytes",
                "set_tcp_nodelay",
            ],
        )?,
        None => Vec::new(),
    };
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
        None if opts.platform != Platform::Plain => PathBuf::from(SYSTEM_INSTALL_DIR),
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
        platform: opts.platform,
        max_packet_size,
        engine: crate::registry::Engine::Mosquitto,
        cert: issued.record,
        nodes: Vec::new(),
    };
    let previous = registry.broker.replace(record.clone());

    let layout = &store.layout;
    let ca_pem =
        crate::fsutil::read_bounded(&layout.ca_cert(), crate::store::PEM_LIMIT, "CA certificate")?;
    let mut tx = store.transaction();
    // A broker configured again gets a new certificate: the one it replaces is revoked (and kept
    // in the registry), as `provision broker renew` does.
    let crl_pem = match previous {
        Some(old) => {
            registry.retired.push(RetiredCert {
                subject: BROKER_SUBJECT.to_string(),
                cert: old.cert,
                revoked_at: Some(crate::pki::now()),
            });
            let crl = crate::crl::sign_next(&store, &mut registry, &ca)?;
            tx.stage(&layout.crl(), crl.as_bytes(), PUBLIC)?;
            crl.into_bytes()
        }
        None => crate::fsutil::read_bounded(&layout.crl(), crate::store::CRL_LIMIT, "CRL")?,
    };
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
    Ok(BrokerReport {
        record,
        checked,
        warnings,
    })
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

/// QoS 1/2 messages the broker sends a client before it must wait for acknowledgements
/// (Mosquitto's default, stated): on a LAN, 20 in flight carry thousands of messages a second.
pub const MAX_INFLIGHT_MESSAGES: u32 = 20;
/// Messages queued per client beyond those in flight. An operator that follows the fleet must
/// absorb a burst (every device reporting at once after a broker restart) while it is slow to
/// read: twice 200 devices x 50 messages. Mosquitto's default (1000) dropped 90 % of that burst.
pub const MAX_QUEUED_MESSAGES: u32 = 20_000;
/// Payload bytes queued per client: bounds the memory a slow operator (or an offline device's
/// persistent session) can hold on a 64-256 MB router. 20,000 telemetry messages of ~100 bytes
/// fit several times; 8,192 messages of the largest size fill it.
pub const MAX_QUEUED_BYTES: u32 = 16 * 1024 * 1024;

/// The broker configuration for `b.platform`.
pub fn render_config(b: &BrokerRecord) -> String {
    let f = |name: &str| b.install_dir.join(name).display().to_string();
    let listener = match &b.bind {
        Some(addr) => format!("listener {} {addr}", b.port),
        None => format!("listener {}", b.port),
    };
    let tls = format!(
        "\
protocol mqtt
cafile {ca}
certfile {cert}
keyfile {key}
crlfile {crl}
require_certificate true
use_identity_as_username true
# The client id is the certificate's name too: no other identity can take over a device's
# session (and its queued messages), whatever client id it sends. Two tools sharing one
# operator identity would close each other's session: give each its own
# (`provision operator add`).
use_username_as_clientid true
# A minimum: TLS 1.3 clients are accepted too.
tls_version tlsv1.2
# TLS 1.2: forward secrecy and AEAD only. The first suite is what the ESP8266 speaks.
ciphers {CIPHERS}
",
        ca = f("ca.crt"),
        cert = f("server.crt"),
        key = f("server.key"),
        crl = f("crl.pem"),
    );
    let max_packet_size = b.max_packet_size;
    let size_note = if max_packet_size == MAX_PACKET_SIZE {
        format!(
            "\
# Limits (docs/broker-setup.md). A device receives packets of at most {MAX_PACKET_SIZE} bytes,
# so nothing bigger gets in: a client sending a bigger packet is disconnected, and no retained
# message can be bigger."
        )
    } else {
        format!(
            "\
# Limits (docs/broker-setup.md). Raised with --max-packet-size for other clients of this
# broker: devices skip packets over {MAX_PACKET_SIZE} bytes, and one retained message may now
# take {max_packet_size} bytes."
        )
    };
    let limits = format!(
        "\
{size_note} (max_packet_size counts the whole packet; it supersedes Mosquitto's
# payload-only message_size_limit, which is therefore not set.)
max_packet_size {max_packet_size}
# Per client: an operator following the fleet gets a burst of 10,000 QoS 1 messages in full.
max_inflight_messages {MAX_INFLIGHT_MESSAGES}
max_queued_messages {MAX_QUEUED_MESSAGES}
max_queued_bytes {MAX_QUEUED_BYTES}
# Small messages leave at once (TCP_NODELAY): an OTA chunk or a command reply does not wait for
# the peer's acknowledgement of the previous segment (a device's delayed ACK).
set_tcp_nodelay true
"
    );
    let acl = f("acl");
    match b.platform {
        Platform::Plain | Platform::Openwrt => {
            let (title, system) = if b.platform == Platform::Openwrt {
                (
                    "OpenWRT (mosquitto-ssl): install as /etc/mosquitto/mosquitto.conf",
                    "\
# Logs go to syslog: `logread -e mosquitto`.
log_dest syslog
# persistence stays off: the router's flash would wear, and after a restart devices publish
# their status again and operators resubscribe.
",
                )
            } else {
                (
                    "a standalone config: mosquitto -c mosquitto.conf",
                    "\
# persistence is off (Mosquitto's default): after a restart devices publish their status again
# and operators resubscribe. `persistence true` with a `persistence_location` writable by user
# mosquitto keeps queued messages across restarts.
",
                )
            };
            format!(
                "\
# Mosquitto 2.0 configuration written by `provision broker` ({title}).
# Regenerate rather than edit. One TLS listener, no plaintext listener. Every client proves its
# identity with a certificate from our CA; the certificate CN becomes the MQTT username the ACL
# is written for.

per_listener_settings false
allow_anonymous false
acl_file {acl}

{limits}
{system}
{listener}
{tls}"
            )
        }
        Platform::Debian => format!(
            "\
# Mosquitto 2.0 drop-in written by `provision broker` (Debian: install as
# /etc/mosquitto/conf.d/00-provision.conf). Regenerate rather than edit.
# Our settings are scoped to our TLS listener (per_listener_settings true), so other listeners
# keep their own authentication and ACL. Mosquitto requires per_listener_settings before any
# other security setting: the 00- keeps this file first in conf.d/. Other drop-ins must put
# their security settings below their own `listener` line.
# Debian's mosquitto.conf sets the log (/var/log/mosquitto/mosquitto.log) and persistence
# (/var/lib/mosquitto/): queued messages and retained status survive a restart.

per_listener_settings true

# The limits below are global in Mosquitto 2.0: they apply to every listener on this broker.
{limits}
{listener}
allow_anonymous false
acl_file {acl}
{tls}"
        ),
    }
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
    let revoked: Vec<_> = registry.revoked().map(|(id, _)| id).collect();
    acl.push_str(
        "
# Operators (`provision init` made _operator, `provision operator add` the others), one block
# each: read every device's data, send commands and updates. They cannot write a device's
# telemetry, status or replies, except the status of a revoked device, to clear its retained
# `online` (its own Last Will is denied).
",
    );
    for name in registry.operator_names() {
        let _ = write!(
            acl,
            "user {name}
topic read devices/+/telemetry
topic read devices/+/status
topic read devices/+/reply/#
topic read devices/+/ota/up/#
topic write devices/+/cmd/#
topic write devices/+/ota/down/#
"
        );
        for id in &revoked {
            let _ = writeln!(acl, "topic write devices/{id}/status");
        }
    }
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

/// What the user runs to install `folder` (the broker folder `provision broker` wrote) on the
/// broker, for the record's platform. Paths are quoted for the shell.
pub fn install_steps(b: &BrokerRecord, folder: &Path) -> String {
    let src = |name: &str| crate::shell_word(&folder.join(name).display().to_string());
    let dst = crate::shell_word(&b.install_dir.display().to_string());
    let port = b.port;
    match b.platform {
        Platform::Plain => {
            let conf =
                crate::shell_word(&b.install_dir.join("mosquitto.conf").display().to_string());
            let same = std::path::absolute(folder).ok().as_deref() == Some(b.install_dir.as_path());
            let copy = if same {
                String::new()
            } else {
                format!(
                    "copy every file of {} to {dst} (server.key stays private), then\n",
                    crate::shell_word(&folder.display().to_string())
                )
            };
            format!("{copy}start it: mosquitto -c {conf}\n")
        }
        Platform::Openwrt => format!(
            "\
On the router (OpenWRT 23.05), as root:
  opkg update
  opkg remove mosquitto-nossl            # if installed: it has no TLS
  opkg install mosquitto-ssl mosquitto-client-ssl
  mkdir -p {dst}
From this machine (-O: the router's dropbear has no sftp):
  scp -O {files} root@ROUTER:{dst}/
On the router:
  chmod 0755 {dst}; chmod 0644 {dst}/*
  chown root:mosquitto {dst}/server.key; chmod 0640 {dst}/server.key
  cp {dst}/mosquitto.conf /etc/mosquitto/mosquitto.conf
  uci set mosquitto.owrt.use_uci=0; uci commit mosquitto    # run from the file, not from UCI
  grep -qxF {dst}/ /etc/sysupgrade.conf || echo {dst}/ >> /etc/sysupgrade.conf
  # port {port} from the LAN zone only (never from wan):
  uci add firewall rule
  uci set firewall.@rule[-1].name=mqtt-tls-lan
  uci set firewall.@rule[-1].src=lan
  uci set firewall.@rule[-1].proto=tcp
  uci set firewall.@rule[-1].dest_port={port}
  uci set firewall.@rule[-1].target=ACCEPT
  uci commit firewall; /etc/init.d/firewall reload
  /etc/init.d/mosquitto enable; /etc/init.d/mosquitto restart
  logread -e mosquitto | tail            # expect: Opening ipv4 listen socket on port {port}
After `provision device revoke`: copy crl.pem and acl again, then on the router
  kill -HUP $(pidof mosquitto)           # procd's `reload` does not re-read them
",
            files = [
                "mosquitto.conf",
                "acl",
                "ca.crt",
                "server.crt",
                "server.key",
                "crl.pem"
            ]
            .map(src)
            .join(" "),
        ),
        Platform::Debian => format!(
            "\
On the broker (Debian 12), as root (copy {folder} there first if this is another machine):
  apt-get install mosquitto mosquitto-clients
  install -d -m 0755 {dst}
  install -m 0644 {public} {dst}/
  install -m 0640 -o root -g mosquitto {key} {dst}/
  install -m 0644 {conf} /etc/mosquitto/conf.d/{drop_in}
  systemctl restart mosquitto
  tail /var/log/mosquitto/mosquitto.log  # expect: Opening ipv4 listen socket on port {port}
After `provision device revoke`: copy crl.pem and acl again, then
  systemctl reload mosquitto             # SIGHUP: re-reads the CRL and the ACL
",
            folder = crate::shell_word(&folder.display().to_string()),
            public = ["acl", "ca.crt", "server.crt", "crl.pem"]
                .map(src)
                .join(" "),
            key = src("server.key"),
            conf = src("mosquitto.conf"),
            drop_in = crate::mosquitto_conf::DROP_IN_NAME,
        ),
    }
}
