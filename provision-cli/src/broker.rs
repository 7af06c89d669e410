//! `provision broker`: the server certificate and an installable, hardened Mosquitto folder.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, Transaction, BROKER_SECRET, PUBLIC, SECRET};
use crate::layout::Layout;
use crate::pki::{Ca, Leaf};
use crate::rabbitmq_conf;
use crate::registry::{
    BrokerRecord, Engine, NodeRecord, Platform, Registry, RetiredCert, BROKER_SUBJECT, MAX_NODES,
};
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
    /// The broker software.
    pub engine: Engine,
    /// RabbitMQ: the nodes as given (`--node NAME=HOST:PORT`, see [`parse_node`]).
    pub nodes: Vec<NodeRecord>,
    /// RabbitMQ: `--nodes N`, nodes `rabbit-1..N` on the hosts (see [`resolve_nodes`]).
    pub node_count: Option<u32>,
}

/// `NAME=HOST:PORT` (an IPv6 address in brackets: `NAME=[::1]:8883`) as a node, checked.
pub fn parse_node(spec: &str) -> Result<NodeRecord> {
    let bad = |why: &str| {
        Error::InvalidInput(format!(
            "--node {spec:?}: {why} (expected NAME=HOST:PORT, e.g. rabbit-1=mq1.example.org:8883)"
        ))
    };
    let (name, endpoint) = spec.split_once('=').ok_or_else(|| bad("no `=`"))?;
    crate::registry::check_node_name(name).map_err(|e| bad(&e))?;
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(|| bad("no `:PORT`"))?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6.to_string(),
        Some(_) => return Err(bad("not an IPv6 address in brackets")),
        None if host.contains(':') => return Err(bad("an IPv6 address goes in brackets")),
        None => host.to_string(),
    };
    if host.parse::<IpAddr>().is_err() && !is_dns_name(&host) {
        return Err(bad(&format!("{host:?} is not a DNS name or an IP address")));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad(&format!("{port:?} is not a port number")))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    Ok(NodeRecord {
        name: name.to_string(),
        host,
        port,
    })
}

/// The nodes of a RabbitMQ broker: `opts.nodes` as given, or `--nodes N`: nodes `rabbit-1..N`,
/// node i on the i-th `--host` at `--port` when there is one host per node, or all on the one
/// `--host` at `--port`, `--port`+1, ... (a cluster on one machine). At most [`MAX_NODES`], no
/// name or endpoint twice.
pub fn resolve_nodes(opts: &BrokerOptions) -> Result<Vec<NodeRecord>> {
    let nodes = match (opts.node_count, opts.nodes.is_empty()) {
        (Some(_), false) => {
            return Err(Error::InvalidInput(
                "give either --nodes N or --node NAME=HOST:PORT, not both".into(),
            ))
        }
        (None, true) => {
            return Err(Error::InvalidInput(
                "--engine rabbitmq needs its nodes: --node NAME=HOST:PORT (repeatable) or \
                 --nodes N"
                    .into(),
            ))
        }
        (None, false) => opts.nodes.clone(),
        (Some(0), _) => {
            return Err(Error::InvalidInput(
                "--nodes 0: a cluster has at least one node".into(),
            ))
        }
        (Some(n), _) if n as usize > MAX_NODES => {
            return Err(Error::InvalidInput(format!(
                "--nodes {n}: at most {MAX_NODES} nodes (quorum queues replicate to every node; \
                 3 or 5 is usual)"
            )))
        }
        (Some(n), _) => {
            let n = n as usize;
            let hosts = &opts.hosts;
            let on = |i: usize| -> Result<NodeRecord> {
                let (host, port) = match hosts.len() {
                    len if len == n => (hosts[i].clone(), Some(opts.port)),
                    1 => (hosts[0].clone(), opts.port.checked_add(i as u16)),
                    _ => {
                        return Err(Error::InvalidInput(format!(
                            "--nodes {n} with {} --host: give one --host per node (in order), or \
                             one --host for all nodes on one machine, or --node NAME=HOST:PORT \
                             for each",
                            hosts.len()
                        )))
                    }
                };
                Ok(NodeRecord {
                    name: format!("rabbit-{}", i + 1),
                    host,
                    port: port.filter(|p| *p != 0).ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "--port {} + {n} nodes runs past port 65535",
                            opts.port
                        ))
                    })?,
                })
            };
            (0..n).map(on).collect::<Result<_>>()?
        }
    };
    if nodes.len() > MAX_NODES {
        return Err(Error::InvalidInput(format!(
            "{} nodes: at most {MAX_NODES} (quorum queues replicate to every node; 3 or 5 is usual)",
            nodes.len()
        )));
    }
    let mut names = std::collections::HashSet::new();
    let mut endpoints = std::collections::HashSet::new();
    for n in &nodes {
        if !names.insert(n.name.as_str()) {
            return Err(Error::InvalidInput(format!(
                "node name {} is given twice",
                n.name
            )));
        }
        if !endpoints.insert((n.host.to_ascii_lowercase(), n.port)) {
            return Err(Error::InvalidInput(format!(
                "endpoint {}:{} is given to two nodes: each node needs its own port on a host",
                n.host, n.port
            )));
        }
    }
    rabbitmq_conf::naming(&nodes)?;
    Ok(nodes)
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
    if opts.hosts.is_empty() && (opts.engine == Engine::Mosquitto || opts.nodes.is_empty()) {
        return Err(Error::InvalidInput(
            "at least one --host is required".into(),
        ));
    }
    for h in &opts.hosts {
        validate_host(h)?;
    }
    if opts.engine == Engine::Rabbitmq {
        return configure_rabbitmq(dir, opts);
    }
    if !opts.nodes.is_empty() || opts.node_count.is_some() {
        return Err(Error::InvalidInput(
            "--node and --nodes are for --engine rabbitmq; Mosquitto is one process".into(),
        ));
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
        engine: Engine::Mosquitto,
        cert: issued.record,
        nodes: Vec::new(),
    };
    let mut warnings = warnings;
    warnings.extend(leftovers(&store.layout, Engine::Mosquitto, &[]));
    let previous = registry.broker.replace(record.clone());

    let layout = &store.layout;
    let ca_pem = ca.cert_pem();
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
    tx.stage(&layout.broker_file("ca.crt"), ca_pem, PUBLIC)?;
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

/// `provision broker --engine rabbitmq`: one certificate for every node's host, the shared
/// files and each node's folder (layout: [`crate::rabbitmq_conf`]).
fn configure_rabbitmq(dir: &Path, opts: &BrokerOptions) -> Result<BrokerReport> {
    if opts.platform != Platform::Plain {
        return Err(Error::InvalidInput(format!(
            "--platform {} is for Mosquitto; a RabbitMQ node runs from the files of its folder \
             (the install steps say where they go)",
            opts.platform
        )));
    }
    if opts.max_packet_size.is_some() {
        return Err(Error::InvalidInput(
            "--max-packet-size is Mosquitto's: RabbitMQ 3.10's MQTT plugin has no packet size \
             limit to set"
                .into(),
        ));
    }
    if opts.existing_config.is_some() {
        return Err(Error::InvalidInput(
            "--existing-config checks a Mosquitto config; it has no meaning for RabbitMQ".into(),
        ));
    }
    if opts.port == 0 {
        return Err(Error::InvalidInput("--port must not be 0".into()));
    }
    if let Some(bind) = &opts.bind {
        if bind.parse::<IpAddr>().is_err() {
            return Err(Error::InvalidInput(format!(
                "--bind {bind:?}: RabbitMQ listens on an IP address; give one"
            )));
        }
    }
    let nodes = resolve_nodes(opts)?;
    // The certificate names every node's host: DNS names and addresses apart.
    let mut hosts = opts.hosts.clone();
    let mut ips = opts.ips.clone();
    for n in &nodes {
        match n.host.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !hosts.iter().any(|h| h.eq_ignore_ascii_case(&n.host)) => {
                hosts.push(n.host.clone())
            }
            Err(_) => {}
        }
    }
    let store = Store::open(dir)?;
    let mut registry = store.registry()?;
    let ca = store.ca(&registry)?;
    let layout = &store.layout;
    let install_dir = match &opts.install_dir {
        Some(d) if !d.is_absolute() => {
            return Err(Error::InvalidInput(format!(
                "--install-dir {} must be an absolute path (it is written into the config files)",
                d.display()
            )))
        }
        Some(d) => d.clone(),
        None => std::path::absolute(layout.broker_dir())
            .context(|| "resolving the broker folder".to_string())?,
    };
    rabbitmq_conf::check_path(&install_dir)?;
    let issued = ca.issue(
        Leaf::Server {
            hosts: &hosts,
            ips: &ips,
        },
        opts.days,
    )?;
    let record = BrokerRecord {
        hosts,
        ips,
        port: nodes[0].port,
        bind: opts.bind.clone(),
        install_dir,
        platform: Platform::Plain,
        max_packet_size: MAX_PACKET_SIZE,
        engine: Engine::Rabbitmq,
        cert: issued.record,
        nodes,
    };
    // Every file's text is made before anything is written.
    let mut node_files = Vec::new();
    for n in &record.nodes {
        node_files.push((
            n.name.clone(),
            [
                rabbitmq_conf::render_rabbitmq_conf(&record, n)?,
                rabbitmq_conf::render_advanced_config(&record)?,
                rabbitmq_conf::ENABLED_PLUGINS.to_string(),
                rabbitmq_conf::render_env(&record, n)?,
            ],
        ));
    }
    let install = rabbitmq_conf::install_steps(&record, &layout.broker_dir())?;
    let warnings = leftovers(layout, Engine::Rabbitmq, &record.nodes);
    let previous = registry.broker.replace(record.clone());

    let mut tx = store.transaction();
    let crl_pem = match previous {
        Some(old) => {
            registry.retired.push(RetiredCert {
                subject: BROKER_SUBJECT.to_string(),
                cert: old.cert,
                revoked_at: Some(crate::pki::now()),
            });
            let crl = crate::crl::sign_next(&store, &mut registry, &ca)?;
            tx.stage(&layout.crl(), crl.as_bytes(), PUBLIC)?;
            crl
        }
        None => crate::fsutil::read_text_bounded(&layout.crl(), crate::store::CRL_LIMIT, "CRL")?,
    };
    tx.create_dir_all(&layout.broker_dir())?;
    stage_server_key_for(&mut tx, layout, &issued.key_pem, Engine::Rabbitmq)?;
    tx.stage(
        &layout.broker_file("server.crt"),
        issued.cert_pem.as_bytes(),
        PUBLIC,
    )?;
    tx.stage(&layout.broker_file("ca.crt"), ca.cert_pem(), PUBLIC)?;
    stage_rabbitmq_updates(&mut tx, layout, &registry, &crl_pem, &ca)?;
    for (name, texts) in &node_files {
        let node_dir = layout.broker_file(&rabbitmq_conf::node_dir(name));
        for (file, text) in rabbitmq_conf::NODE_FILES.iter().zip(texts) {
            tx.stage(&node_dir.join(file), text.as_bytes(), PUBLIC)?;
        }
    }
    tx.stage(&layout.broker_file("INSTALL"), install.as_bytes(), PUBLIC)?;
    store.stage_registry(&mut tx, &registry)?;
    tx.commit()?;
    Ok(BrokerReport {
        record,
        checked: None,
        warnings,
    })
}

/// Files in the broker folder that the configuration for `engine` (with `nodes`) no longer
/// writes or updates: another engine's, or a node no longer in the cluster.
fn leftovers(layout: &Layout, engine: Engine, nodes: &[NodeRecord]) -> Vec<String> {
    let dir = layout.broker_dir();
    let mut stale: Vec<String> = Vec::new();
    let others: &[&str] = match engine {
        Engine::Mosquitto => &["definitions", "nodes", "crl", "INSTALL"],
        // definitions.json: where an earlier version kept the definitions in one file.
        Engine::Rabbitmq => &["mosquitto.conf", "acl", "definitions.json"],
    };
    for f in others {
        if std::fs::symlink_metadata(dir.join(f)).is_ok() {
            stale.push(f.to_string());
        }
    }
    if engine == Engine::Rabbitmq {
        if let Ok(entries) = std::fs::read_dir(dir.join("nodes")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !nodes.iter().any(|n| n.name == name) {
                    stale.push(format!("nodes/{name}"));
                }
            }
        }
    }
    if stale.is_empty() {
        return Vec::new();
    }
    stale.sort();
    vec![format!(
        "{} also holds {}, which this configuration neither uses nor updates any more: remove \
         them (and from the broker) so that no one installs them by mistake",
        dir.display(),
        stale.join(", ")
    )]
}

/// Stages what a RabbitMQ broker folder keeps in step with the registry: `crl.pem`, the CRL in
/// hash-dir form (`crl/<CA hash>.r0`) and the definitions (`definitions/`).
fn stage_rabbitmq_updates(
    tx: &mut Transaction,
    layout: &Layout,
    registry: &Registry,
    crl_pem: &str,
    ca: &Ca,
) -> Result<()> {
    let ca_der = x509_parser::pem::parse_x509_pem(ca.cert_pem())
        .map(|(_, pem)| pem.contents)
        .map_err(|_| Error::Corrupt {
            path: layout.ca_cert(),
            reason: "is not a PEM certificate".into(),
        })?;
    let name = rabbitmq_conf::crl_file_name(&ca_der)?;
    tx.stage(&layout.broker_file("crl.pem"), crl_pem.as_bytes(), PUBLIC)?;
    tx.stage(
        &layout.broker_file(rabbitmq_conf::CRL_DIR).join(name),
        crl_pem.as_bytes(),
        PUBLIC,
    )?;
    stage_definitions(tx, layout, registry)
}

/// Stages the definitions files whose contents changed (one device's change rewrites its own
/// file, and the operators' when a revocation changed their rights). A file that is missing,
/// not a regular file or different is written; the others are already what they should be.
fn stage_definitions(tx: &mut Transaction, layout: &Layout, registry: &Registry) -> Result<()> {
    let dir = layout.broker_file(rabbitmq_conf::DEFINITIONS_DIR);
    let empty = rabbitmq_conf::render_empty_definitions();
    for (name, text) in rabbitmq_conf::render_definition_files(registry) {
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path);
        // A device file no device needs yet is not written (a small fleet has a few files).
        if meta.is_err() && text == empty {
            continue;
        }
        let same = meta.is_ok_and(|m| m.is_file())
            && crate::fsutil::read_bounded(&path, DEFINITIONS_LIMIT, "definitions")
                .is_ok_and(|old| old == text.as_bytes());
        if !same {
            tx.stage(&path, text.as_bytes(), PUBLIC)?;
        }
    }
    Ok(())
}

/// Largest definitions file read back to compare (one 256th of a fleet of millions).
const DEFINITIONS_LIMIT: u64 = 256 << 20;

/// Stages the broker folder's user list (Mosquitto's ACL, RabbitMQ's definitions) after the
/// users changed (`operator add`, `device add`) when a broker folder exists; returns whether it
/// did. The CRL is not touched.
pub fn stage_users_update(
    tx: &mut Transaction,
    layout: &Layout,
    registry: &Registry,
) -> Result<bool> {
    let Some(b) = &registry.broker else {
        return Ok(false);
    };
    if !layout.broker_dir().is_dir() {
        return Ok(false);
    }
    match b.engine {
        Engine::Mosquitto => tx.stage(
            &layout.broker_file("acl"),
            render_acl(registry).as_bytes(),
            PUBLIC,
        )?,
        Engine::Rabbitmq => stage_definitions(tx, layout, registry)?,
    }
    Ok(true)
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

/// Stages the broker's private key. Mosquitto reads it after dropping to user `mosquitto`:
/// give the group read access where that group exists, otherwise keep it owner-only. RabbitMQ's
/// is owner-only (its install steps give it to user rabbitmq).
pub fn stage_server_key_for(
    tx: &mut Transaction,
    layout: &Layout,
    key_pem: &str,
    engine: Engine,
) -> Result<()> {
    match engine {
        Engine::Mosquitto => stage_server_key(tx, layout, key_pem),
        Engine::Rabbitmq => tx.stage(
            &layout.broker_file("server.key"),
            key_pem.as_bytes(),
            SECRET,
        ),
    }
}

/// [`stage_server_key_for`] Mosquitto.
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

/// Stages `<dir>/broker/acl` and `crl.pem` (Mosquitto), or `crl.pem`, the CRL's hash-dir file
/// and the definitions (RabbitMQ), when a broker folder exists.
pub fn stage_broker_updates(
    tx: &mut Transaction,
    layout: &Layout,
    registry: &Registry,
    crl_pem: &str,
    ca: &Ca,
) -> Result<()> {
    let Some(b) = &registry.broker else {
        return Ok(());
    };
    if !layout.broker_dir().is_dir() {
        return Ok(());
    }
    match b.engine {
        Engine::Mosquitto => {
            tx.stage(&layout.broker_file("crl.pem"), crl_pem.as_bytes(), PUBLIC)?;
            tx.stage(
                &layout.broker_file("acl"),
                render_acl(registry).as_bytes(),
                PUBLIC,
            )?;
        }
        Engine::Rabbitmq => stage_rabbitmq_updates(tx, layout, registry, crl_pem, ca)?,
    }
    Ok(())
}

/// What the user runs to install `folder` (the broker folder `provision broker` wrote) on the
/// broker, for the record's platform. Paths are quoted for the shell.
pub fn install_steps(b: &BrokerRecord, folder: &Path) -> String {
    if b.engine == Engine::Rabbitmq {
        // Checked when the configuration was written.
        return rabbitmq_conf::install_steps(b, folder).unwrap_or_else(|e| format!("{e}\n"));
    }
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
