//! The RabbitMQ 3.10 configuration `provision broker --engine rabbitmq` writes: pure functions
//! from the registry to file contents (the caller stages them in a [`crate::fsutil::Transaction`]).
//!
//! # Layout
//!
//! ```text
//! <dir>/broker/                         shared by every node; install it as a whole in the same
//!                                       folder (--install-dir) on every node's host
//!   ca.crt server.crt server.key        the CA and the one broker certificate (every node's host
//!                                       in its names) with its key
//!   crl.pem                             the CRL
//!   crl/<hash>.r0                       the same CRL in hash-dir form: <hash> is OpenSSL's subject
//!                                       hash of the CA (`openssl x509 -hash`); RabbitMQ re-reads
//!                                       it on every TLS handshake
//!   definitions/                        cluster-wide users (every operator, every active device,
//!                                       no passwords, no guest), their queue permissions and the
//!                                       topic permissions that are the ACL, imported by every
//!                                       node at boot (every file, in name order):
//!     operators.json                    the operators (their rights name the revoked devices)
//!     devices-<xx>.json                 the devices whose id's SHA-1 starts with byte <xx>
//!                                       (up to 256 files: one device's change rewrites one small
//!                                       file; a file once written stays, if need be without users)
//!   INSTALL                             the install steps
//!   nodes/<name>/rabbitmq.conf          node <name>: MQTT TLS listener on its endpoint, no plain
//!                                       listeners, certificate login, definitions import at boot
//!   nodes/<name>/advanced.config        its TLS options (all of them: this list replaces
//!                                       rabbitmq.conf's) and the CRL check
//!   nodes/<name>/enabled_plugins        [rabbitmq_mqtt].
//!   nodes/<name>/rabbitmq-env.conf      its node name, config file paths and Erlang
//!                                       distribution port (RABBITMQ_CONF_ENV_FILE, or
//!                                       /etc/rabbitmq/rabbitmq-env.conf)
//! ```
//!
//! Every path inside the files is absolute and points into the install folder (by default the
//! broker folder itself), so the files run unchanged where they were written. Several nodes can
//! run on one machine: each has its own MQTT port (from `--node NAME=HOST:PORT`) and listener
//! address, and its own distribution port. Nothing else in the files is node-local: a node's
//! data and log folders follow RabbitMQ's defaults (`RABBITMQ_MNESIA_BASE`, `RABBITMQ_LOG_BASE`,
//! per node name), and every `RABBITMQ_<NAME>` environment variable overrides `<NAME>` of the
//! env file, so a test harness runs every node of a cluster on loopback with its own data
//! folder, epmd and distribution port by setting environment variables only: it points
//! `RABBITMQ_CONFIG_FILE`, `RABBITMQ_ADVANCED_CONFIG_FILE` and `RABBITMQ_ENABLED_PLUGINS_FILE` at
//! `nodes/<name>/`, or `RABBITMQ_CONF_ENV_FILE` at `nodes/<name>/rabbitmq-env.conf`.
//!
//! The Erlang node name is `<name>@localhost` when every node is on loopback, `<name>@<host>` for
//! single-label host names, and `<name>@<host>` with long names (`USE_LONGNAME=true`) when a
//! host is dotted or an address.
//!
//! # The ACL as topic permissions
//!
//! RabbitMQ's MQTT plugin publishes to the `amq.topic` exchange with the topic as the routing key,
//! `/` turned into `.` and `+` into `*` (a `.` in a topic stays a `.`, and is delivered as `/`).
//! A topic permission is a regular expression over routing keys, checked on every publish
//! (write) and subscribe (read). [`device_topic_permissions`] and
//! [`operator_topic_permissions`] are the Mosquitto ACL ([`crate::broker::render_acl`]) in
//! that form: for every topic, a publish or subscription is allowed exactly when Mosquitto would
//! allow the topic it is delivered as (one bound: the operators' right to clear a revoked
//! device's `status` covers the [`MAX_CLEARABLE_REVOKED`] most recent revocations, where the
//! Mosquitto ACL lists them all). A user without topic permissions may use every topic, so
//! every user gets them.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use sha1::{Digest as _, Sha1};

use crate::error::{Error, Result};
use crate::registry::{BrokerRecord, DeviceStatus, NodeRecord, Registry};

/// The plugins a node runs.
pub const ENABLED_PLUGINS: &str = "[rabbitmq_mqtt].\n";

/// Erlang distribution port of the first node (RabbitMQ's default); further nodes on the same
/// host take the next ports.
pub const DIST_PORT_BASE: u16 = 25672;

/// The folder of node `name` inside the broker folder.
pub fn node_dir(name: &str) -> String {
    format!("nodes/{name}")
}

/// Files each node's folder holds.
pub const NODE_FILES: [&str; 4] = [
    "rabbitmq.conf",
    "advanced.config",
    "enabled_plugins",
    "rabbitmq-env.conf",
];

/// The folder of the definitions inside the broker folder.
pub const DEFINITIONS_DIR: &str = "definitions";
/// The operators' definitions file.
pub const OPERATORS_FILE: &str = "operators.json";

/// The definitions file of device `id`: `devices-<xx>.json`, `<xx>` the first byte of the SHA-1
/// of its id.
pub fn device_file(id: &str) -> String {
    format!("devices-{:02x}.json", Sha1::digest(id.as_bytes())[0])
}

/// A definitions file without users (the vhost only).
pub fn render_empty_definitions() -> String {
    write_definitions(std::iter::empty(), &[], &[], true)
}

/// Every definitions file (name, contents): the operators', and the 256 device files (one
/// without devices holds only the vhost: [`render_empty_definitions`]; the broker folder
/// leaves it out until a device needs it).
pub fn render_definition_files(registry: &Registry) -> Vec<(String, String)> {
    let revoked = clearable_revoked(registry);
    let mut shards: Vec<Vec<&str>> = vec![Vec::new(); 256];
    for (id, d) in &registry.devices {
        if d.status == DeviceStatus::Active {
            shards[Sha1::digest(id.as_bytes())[0] as usize].push(id);
        }
    }
    let mut files = vec![(
        OPERATORS_FILE.to_string(),
        write_definitions(
            registry.operator_names().map(|n| (n, true)),
            &[],
            &revoked,
            true,
        ),
    )];
    for (i, ids) in shards.into_iter().enumerate() {
        files.push((
            format!("devices-{i:02x}.json"),
            write_definitions(ids.into_iter().map(|id| (id, false)), &[], &revoked, true),
        ));
    }
    files
}

/// Where the CRL goes in hash-dir form, inside the broker folder.
pub const CRL_DIR: &str = "crl";

/// Whether `host` is this machine's loopback.
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// How the nodes name themselves to Erlang distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Every node on loopback: `<name>@localhost`, short names.
    Local,
    /// Single-label host names: `<name>@<host>`, short names.
    Short,
    /// Dotted names or addresses: `<name>@<host>`, long names.
    Long,
}

/// The naming the nodes share (Erlang refuses a cluster that mixes short and long names).
pub fn naming(nodes: &[NodeRecord]) -> Result<Naming> {
    if nodes.iter().all(|n| is_loopback(&n.host)) {
        return Ok(Naming::Local);
    }
    if let Some(n) = nodes.iter().find(|n| n.host.contains(':')) {
        return Err(Error::InvalidInput(format!(
            "node {} is on the IPv6 address {}, which an Erlang node name cannot carry: give \
             the node a DNS name (the certificate then names it)",
            n.name, n.host
        )));
    }
    let single = |n: &NodeRecord| !n.host.contains('.');
    if nodes.iter().all(single) {
        return Ok(Naming::Short);
    }
    if let Some(n) = nodes.iter().find(|n| single(n)) {
        return Err(Error::InvalidInput(format!(
            "node {} is on {:?}, a single-label name, while other nodes are on dotted names or \
             addresses: Erlang names a cluster's nodes all in one way, so give every node a \
             dotted name (or every node a single-label one)",
            n.name, n.host
        )));
    }
    Ok(Naming::Long)
}

/// The Erlang node name of `node` (`rabbit-1@localhost`).
pub fn erlang_node_name(naming: Naming, node: &NodeRecord) -> String {
    match naming {
        Naming::Local => format!("{}@localhost", node.name),
        Naming::Short | Naming::Long => format!("{}@{}", node.name, node.host),
    }
}

/// The Erlang distribution port of each node: [`DIST_PORT_BASE`] for a node alone on its host,
/// the next ports for further nodes on the same host.
pub fn dist_ports(nodes: &[NodeRecord]) -> Vec<u16> {
    let mut per_host: std::collections::HashMap<String, u16> = Default::default();
    nodes
        .iter()
        .map(|n| {
            let key = if is_loopback(&n.host) {
                "localhost".to_string()
            } else {
                n.host.clone()
            };
            let next = per_host.entry(key).or_insert(0);
            let port = DIST_PORT_BASE.saturating_add(*next);
            *next += 1;
            port
        })
        .collect()
}

/// A path written into rabbitmq.conf, advanced.config (an Erlang string) and the env file (a
/// shell word): only characters all three take as they are.
pub fn check_path(p: &Path) -> Result<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "/._+-@%,:=~".contains(c);
    match p.to_str() {
        Some(s) if !s.is_empty() && s.chars().all(ok) => Ok(s.to_string()),
        _ => Err(Error::InvalidInput(format!(
            "{} contains characters RabbitMQ's config files cannot carry as they are (spaces, \
             quotes, #, non-ASCII): use --install-dir with letters, digits and / . _ - only",
            p.display()
        ))),
    }
}

fn path(install: &str, rel: &str) -> String {
    format!("{}/{rel}", install.trim_end_matches('/'))
}

/// `rabbitmq.conf` of `node`: only the MQTT TLS listener, certificate login, the ACL's vhost and
/// exchange, quorum queues for sessions, and the definitions imported at boot.
pub fn render_rabbitmq_conf(b: &BrokerRecord, node: &NodeRecord) -> Result<String> {
    let install = check_path(&b.install_dir)?;
    let listen = match (&b.bind, node.host.parse::<IpAddr>()) {
        (Some(addr), _) => format!("{addr}:{}", node.port),
        (None, Ok(ip)) => format!("{ip}:{}", node.port),
        (None, Err(_)) => node.port.to_string(),
    };
    Ok(format!(
        "\
# RabbitMQ 3.10 configuration of node {name}, written by `provision broker --engine rabbitmq`.
# Regenerate rather than edit. TLS options and the CRL check are in advanced.config.

# No AMQP and no plaintext MQTT: the one listener is MQTT over TLS.
listeners.tcp = none
mqtt.listeners.tcp = none
mqtt.listeners.ssl.default = {listen}

# Every client proves its identity with a certificate from our CA; the certificate CN is the
# user (its id), which the definitions create without a password. No anonymous clients.
mqtt.allow_anonymous = false
mqtt.ssl_cert_login = true
ssl_cert_login_from = common_name

# Topics: MQTT `/` is `.` on the exchange the topic permissions name.
mqtt.vhost = /
mqtt.exchange = amq.topic
# Persistent sessions survive the loss of the node that held them.
mqtt.durable_queue_type = quorum

# Users and permissions: every file of the folder, imported at boot when they changed since
# the last import (and by `rabbitmqctl import_definitions FILE`). RabbitMQ 3.10 reads a folder
# only with skip_if_unchanged.
definitions.import_backend = local_filesystem
definitions.local.path = {defs}
definitions.skip_if_unchanged = true
",
        name = node.name,
        defs = path(&install, DEFINITIONS_DIR),
    ))
}

/// `advanced.config`: the complete TLS options (this list replaces any `ssl_options` of
/// rabbitmq.conf) with the CRL check by hash dir.
pub fn render_advanced_config(b: &BrokerRecord) -> Result<String> {
    let install = check_path(&b.install_dir)?;
    let ciphers = crate::broker::CIPHERS
        .split(':')
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",\n        ");
    Ok(format!(
        "\
%% RabbitMQ 3.10 advanced configuration written by `provision broker --engine rabbitmq`.
%% Regenerate rather than edit. The same on every node.
[
 {{rabbit, [
   {{ssl_options, [
      {{cacertfile, \"{ca}\"}},
      {{certfile, \"{cert}\"}},
      {{keyfile, \"{key}\"}},
      %% Every client presents a certificate our CA signed directly.
      {{verify, verify_peer}},
      {{fail_if_no_peer_cert, true}},
      {{depth, 1}},
      %% TLS 1.2, forward secrecy and AEAD only; the first suite is what the ESP8266 speaks.
      {{versions, ['tlsv1.2']}},
      {{ciphers, [
        {ciphers}
      ]}},
      {{honor_cipher_order, true}},
      %% Revoked certificates: the CRL in {crl}/<CA hash>.r0, read at every handshake. A
      %% missing CRL refuses every client.
      {{crl_check, peer}},
      {{crl_cache, {{ssl_crl_hash_dir, {{internal, [{{dir, \"{crl}\"}}]}}}}}}
   ]}}
 ]}}
].
",
        ca = path(&install, "ca.crt"),
        cert = path(&install, "server.crt"),
        key = path(&install, "server.key"),
        crl = path(&install, CRL_DIR),
    ))
}

/// `rabbitmq-env.conf` of `node` (a shell fragment RabbitMQ sources; `RABBITMQ_<NAME>` in the
/// environment overrides `<NAME>` here).
pub fn render_env(b: &BrokerRecord, node: &NodeRecord) -> Result<String> {
    let install = check_path(&b.install_dir)?;
    let naming = naming(&b.nodes)?;
    let index = b
        .nodes
        .iter()
        .position(|n| n.name == node.name)
        .ok_or_else(|| Error::InvalidInput(format!("no node {:?}", node.name)))?;
    let dist_port = dist_ports(&b.nodes)[index];
    let dir = path(&install, &node_dir(&node.name));
    let mut text = format!(
        "\
# rabbitmq-env.conf of node {name}, written by `provision broker --engine rabbitmq`.
# RabbitMQ reads /etc/rabbitmq/rabbitmq-env.conf, or the file RABBITMQ_CONF_ENV_FILE names.
# An environment variable RABBITMQ_<NAME> overrides <NAME> below.
NODENAME={node_name}
CONFIG_FILE={dir}/rabbitmq.conf
ADVANCED_CONFIG_FILE={dir}/advanced.config
ENABLED_PLUGINS_FILE={dir}/enabled_plugins
# Erlang distribution (node to node, and rabbitmqctl): epmd on 4369 and this port.
DIST_PORT={dist_port}
",
        name = node.name,
        node_name = erlang_node_name(naming, node),
    );
    match naming {
        Naming::Local => text.push_str(
            "\
# Every node is on this machine: distribution stays on loopback.
export ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
",
        ),
        Naming::Short => {}
        Naming::Long => text.push_str("USE_LONGNAME=true\n"),
    }
    Ok(text)
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One topic level of any name but a lone `#` (Mosquitto's `+`, which also matches a
/// subscription's `+`, here `*`; a `#` level in a subscription would reach across levels).
const ANY_LEVEL: &str = r"(?:[^.#][^.]*|#[^.]+)?";
/// Mosquitto's `/#` after a topic: nothing, or any further levels.
const ANY_BELOW: &str = r"(?:\..*)?";

fn anchored(alternatives: &[String]) -> String {
    // (?s): `.` matches a line break too; \z: the very end (`$` would allow a final newline).
    format!("(?s)^(?:{})\\z", alternatives.join("|"))
}

/// What the ACL's `pattern` lines give every user, devices and operators alike: its own
/// subtree `devices/<user>/` (write, read).
fn own_subtree(user: &str) -> (String, String) {
    let me = format!(r"devices\.{}\.", regex_escape(user));
    (
        format!(r"{me}(?:telemetry|status|reply{ANY_BELOW}|ota\.up{ANY_BELOW})"),
        format!(r"{me}(?:cmd|ota\.down){ANY_BELOW}"),
    )
}

/// A device's topic permissions on `amq.topic` (write, read): its own subtree only
/// (docs/topics.md).
pub fn device_topic_permissions(id: &str) -> (String, String) {
    let (write, read) = own_subtree(id);
    (anchored(&[write]), anchored(&[read]))
}

/// Operator `name`'s topic permissions on `amq.topic` (write, read): every device's commands
/// and updates; every device's telemetry, status, replies and OTA reports; the status of each
/// revoked device, to clear its retained `online`; and, as every user, its own subtree.
pub fn operator_topic_permissions<'a>(
    name: &str,
    revoked: impl Iterator<Item = &'a str>,
) -> (String, String) {
    let (own_write, own_read) = own_subtree(name);
    let mut write = vec![
        format!(r"devices\.{ANY_LEVEL}\.(?:cmd|ota\.down){ANY_BELOW}"),
        own_write,
    ];
    let revoked: Vec<String> = revoked.map(regex_escape).collect();
    if !revoked.is_empty() {
        write.push(format!(r"devices\.(?:{})\.status", revoked.join("|")));
    }
    (
        anchored(&write),
        anchored(&[
            format!(
                r"devices\.{ANY_LEVEL}\.(?:telemetry|status|reply{ANY_BELOW}|ota\.up{ANY_BELOW})"
            ),
            own_read,
        ]),
    )
}

/// How many revoked devices the operators may still clear the retained `status` of: the most
/// recently revoked ones. The clearing happens at revocation (`device revoke` does it, or prints
/// the command), so older ones need no right any more, and the list must stay short: RabbitMQ
/// checks topic permissions with Erlang's `re`, which refuses a pattern of about 32 KB or more
/// (3,000 listed ids), and then refuses every publish the operator makes.
pub const MAX_CLEARABLE_REVOKED: usize = 256;

/// The revoked devices whose `status` the operators may clear (see [`MAX_CLEARABLE_REVOKED`]),
/// in id order.
pub fn clearable_revoked(registry: &Registry) -> Vec<&str> {
    let mut revoked: Vec<(Option<time::OffsetDateTime>, &str)> = registry
        .revoked()
        .map(|(id, d)| (d.revoked_at, id.as_str()))
        .collect();
    if revoked.len() > MAX_CLEARABLE_REVOKED {
        // Newest first; the same time sorts by id, so the choice is the same on every run.
        revoked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        revoked.truncate(MAX_CLEARABLE_REVOKED);
    }
    let mut ids: Vec<&str> = revoked.into_iter().map(|(_, id)| id).collect();
    ids.sort_unstable();
    ids
}

/// The queues a user's MQTT sessions may use (configure, write, read on the vhost): the
/// plugin names them `mqtt-subscription-<client id>qos0|qos1`. A device's client id is its id;
/// an operator tool's is its name, optionally followed by `-` and a suffix of its own (two tools
/// of one operator). Naming only its own queues keeps a client that reuses another's client id
/// from reading that one's queued messages.
pub fn queue_pattern(user: &str, is_operator: bool) -> String {
    let suffix = if is_operator { r"(?:-[0-9a-z]+)?" } else { "" };
    format!(
        r"^mqtt-subscription-{}{suffix}qos[01]\z",
        regex_escape(user)
    )
}

/// The three entries one user has in the definitions: the user, its vhost permissions and its
/// topic permissions.
fn user_entries(name: &str, operator: bool, revoked: &[&str]) -> [String; 3] {
    // Publishing needs write on the exchange, subscribing read on it.
    let q = queue_pattern(name, operator);
    let qx = format!(r"{q}|^amq\.topic\z");
    let (write, read) = if operator {
        operator_topic_permissions(name, revoked.iter().copied())
    } else {
        device_topic_permissions(name)
    };
    // Written field by field (a fleet of 100,000 has 300,000 entries); every string is
    // JSON-escaped by serde_json.
    let js = |v: &str| serde_json::to_string(v).expect("a string serializes");
    let name = js(name);
    [
        format!(
            r#"{{"name":{name},"password_hash":"","hashing_algorithm":"rabbit_password_hashing_sha256","tags":[],"limits":{{}}}}"#
        ),
        format!(
            r#"{{"user":{name},"vhost":"/","configure":{},"write":{qx},"read":{qx}}}"#,
            js(&q),
            qx = js(&qx)
        ),
        format!(
            r#"{{"user":{name},"vhost":"/","exchange":"amq.topic","write":{},"read":{}}}"#,
            js(&write),
            js(&read)
        ),
    ]
}

/// Writes a definitions document for `users` (name, is operator), one entry per line (a large
/// fleet's file stays fast to write and to diff).
/// `topics_only` are operators whose topic permissions go along without their user entry.
fn write_definitions<'a>(
    users: impl Iterator<Item = (&'a str, bool)>,
    topics_only: &[&str],
    revoked: &[&str],
    header: bool,
) -> String {
    let mut sections: [Vec<String>; 3] = Default::default();
    for (name, operator) in users {
        for (section, entry) in sections
            .iter_mut()
            .zip(user_entries(name, operator, revoked))
        {
            section.push(entry);
        }
    }
    for name in topics_only {
        let [_, _, topics] = user_entries(name, true, revoked);
        sections[2].push(topics);
    }
    let list = |entries: &[String]| {
        if entries.is_empty() {
            "[]".to_string()
        } else {
            format!("[\n    {}\n  ]", entries.join(",\n    "))
        }
    };
    let mut text = String::from("{\n");
    if header {
        text.push_str("  \"rabbit_version\": \"3.10.8\",\n  \"rabbitmq_version\": \"3.10.8\",\n");
    }
    let _ = write!(
        text,
        "  \"users\": {},\n  \"vhosts\": [{{\"name\": \"/\"}}],\n  \"permissions\": {},\n  \
         \"topic_permissions\": {}",
        list(&sections[0]),
        list(&sections[1]),
        list(&sections[2]),
    );
    if header {
        text.push_str(
            ",\n  \"parameters\": [],\n  \"global_parameters\": [],\n  \"policies\": [],\n  \
             \"queues\": [],\n  \"exchanges\": [],\n  \"bindings\": []",
        );
    }
    text.push_str("\n}\n");
    text
}

/// All definitions in one document (what the files of [`render_definition_files`] hold
/// together): the `/` vhost; every operator and every active device as a user without a
/// password (they log in with their certificate); their queue permissions; their topic
/// permissions. No `guest`.
pub fn render_definitions(registry: &Registry) -> String {
    let revoked = clearable_revoked(registry);
    let operators = registry.operator_names().map(|n| (n, true));
    let devices = registry
        .devices
        .iter()
        .filter(|(_, d)| d.status == DeviceStatus::Active)
        .map(|(id, _)| (id.as_str(), false));
    write_definitions(operators.chain(devices), &[], &revoked, true)
}

/// The definitions of the active devices and operators among `users`, and every operator's
/// topic permissions (a revocation changes them), for `rabbitmqctl import_definitions` after
/// an add: an import adds and updates, never removes, so importing what changed is enough and
/// stays fast in a large fleet.
pub fn render_definitions_for(registry: &Registry, users: &[&str]) -> String {
    let revoked = clearable_revoked(registry);
    let operators: Vec<&str> = registry.operator_names().collect();
    let named = users.iter().copied().filter_map(|u| {
        if operators.contains(&u) {
            Some((u, true))
        } else {
            registry
                .devices
                .get(u)
                .filter(|d| d.status == DeviceStatus::Active)
                .map(|_| (u, false))
        }
    });
    // The operators' topic permissions, which name the revoked devices, go along.
    let others: Vec<&str> = operators
        .iter()
        .copied()
        .filter(|o| !users.contains(o))
        .collect();
    write_definitions(named, &others, &revoked, false)
}

/// OpenSSL's subject name hash (`openssl x509 -hash`, `X509_NAME_hash`) of the certificate
/// `cert_der`, as eight lower-case hex digits: SHA-1 over the subject's RDNs in canonical form
/// (string values as UTF-8 with ASCII letters lower-cased and white space trimmed and
/// collapsed; no outer SEQUENCE header), the first four bytes read little-endian. Erlang's
/// `public_key:short_name_hash`, which RabbitMQ's CRL lookup uses, computes the same.
pub fn subject_hash(cert_der: &[u8]) -> Result<String> {
    let bad = |why: &str| Error::InvalidInput(format!("CA certificate: {why}"));
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| bad(&e.to_string()))?;
    let mut canon = Vec::new();
    for rdn in cert.subject().iter() {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for atv in rdn.iter() {
            let mut body = Vec::new();
            der(&mut body, 0x06, atv.attr_type().as_bytes());
            let value = atv.attr_value();
            let header = &value.header;
            let tag = header.tag().0;
            match canonical_string(tag, value.data) {
                Some(text) => der(&mut body, 0x0c, canonicalize(&text).as_bytes()),
                None => {
                    if tag >= 31 {
                        return Err(bad("a name attribute with a high tag number"));
                    }
                    let class = (header.class() as u8) << 6;
                    let constructed = if header.is_constructed() { 0x20 } else { 0 };
                    der(&mut body, class | constructed | tag as u8, value.data);
                }
            }
            let mut entry = Vec::new();
            der(&mut entry, 0x30, &body);
            entries.push(entry);
        }
        // DER orders a SET OF by the encodings.
        entries.sort();
        der(&mut canon, 0x31, &entries.concat());
    }
    let digest = Sha1::digest(&canon);
    let value = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
    Ok(format!("{value:08x}"))
}

/// The text of a string-typed value OpenSSL canonicalizes (`ASN1_MASK_CANON`), or None.
fn canonical_string(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString
        12 | 19 | 22 | 26 => Some(String::from_utf8_lossy(data).into_owned()),
        // T61String: OpenSSL reads it as Latin-1
        20 => Some(data.iter().map(|&b| b as char).collect()),
        // UniversalString: UTF-32BE
        28 => Some(
            data.chunks(4)
                .map(|c| {
                    let v = c.iter().fold(0u32, |a, &b| a << 8 | b as u32);
                    char::from_u32(v).unwrap_or('\u{fffd}')
                })
                .collect(),
        ),
        // BMPString: UTF-16BE
        30 => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// OpenSSL's `asn1_string_canon`: trim ASCII white space, collapse inner runs to one space,
/// lower-case ASCII letters; other bytes stay as they are.
fn canonicalize(s: &str) -> String {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|&b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !space(b))
        .map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut i = start;
    while i < end {
        let b = bytes[i];
        if space(b) {
            out.push(b' ');
            while i < end && space(bytes[i]) {
                i += 1;
            }
        } else {
            out.push(b.to_ascii_lowercase());
            i += 1;
        }
    }
    String::from_utf8(out).expect("ASCII changes keep UTF-8 valid")
}

fn der(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// The file name of the CRL in the hash dir for the CA certificate `ca_der` (`<hash>.r0`).
pub fn crl_file_name(ca_der: &[u8]) -> Result<String> {
    Ok(format!("{}.r0", subject_hash(ca_der)?))
}

/// The install steps for the broker folder `folder` (also written to `INSTALL` in it).
pub fn install_steps(b: &BrokerRecord, folder: &Path) -> Result<String> {
    let install = check_path(&b.install_dir)?;
    let naming = naming(&b.nodes)?;
    let sw = |s: &str| crate::shell_word(s);
    let same = std::path::absolute(folder).ok().as_deref() == Some(b.install_dir.as_path());
    let first = erlang_node_name(naming, &b.nodes[0]);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "RabbitMQ 3.10 cluster of {} node(s), written by `provision broker --engine rabbitmq`.\n",
        b.nodes.len()
    );
    if !same {
        let _ = writeln!(
            t,
            "0. Copy the folder {} to {} on every node's host (server.key stays private:\n   \
             owner rabbitmq, mode 0600).",
            sw(&folder.display().to_string()),
            sw(&install)
        );
    }
    let _ = writeln!(
        t,
        "1. On every node's host (Debian 12), as root:\n   \
         apt-get install rabbitmq-server\n   \
         chown rabbitmq {key}; chmod 0600 {key}\n   \
         The nodes of one cluster share one Erlang cookie: copy /var/lib/rabbitmq/.erlang.cookie\n   \
         of the first host to the others (owner rabbitmq, mode 0400) before starting them.",
        key = sw(&path(&install, "server.key")),
    );
    let _ = writeln!(t, "2. Start each node with its own env file:");
    for n in &b.nodes {
        let env = path(
            &install,
            &format!("{}/rabbitmq-env.conf", node_dir(&n.name)),
        );
        let _ = writeln!(
            t,
            "   {} ({}:{}): cp {} /etc/rabbitmq/rabbitmq-env.conf; systemctl restart rabbitmq-server\n      \
             (several nodes on one host: RABBITMQ_CONF_ENV_FILE={} rabbitmq-server -detached)",
            n.name,
            n.host,
            n.port,
            sw(&env),
            sw(&env)
        );
    }
    if b.nodes.len() > 1 {
        let _ = writeln!(t, "3. Join every other node to {first}:");
        for n in &b.nodes[1..] {
            let name = erlang_node_name(naming, n);
            let _ = writeln!(
                t,
                "   rabbitmqctl -n {name} stop_app && rabbitmqctl -n {name} join_cluster {first} \
                 && rabbitmqctl -n {name} start_app"
            );
        }
    }
    let _ = writeln!(
        t,
        "4. Check: rabbitmqctl -n {first} list_users   (your operators and devices, no guest)\n   \
         rabbitmqctl -n {first} cluster_status\n\n\
         Erlang distribution (epmd 4369 and each node's DIST_PORT in its env file) is plain TCP:\n\
         keep it on a private network, or configure TLS distribution, between hosts.\n\n\
         After `provision device add`, `device revoke`, `operator add` or a renewal: copy\n\
         {defs}/ and {crl}/ (the CRL, read at every handshake) to every host again, then\n\
         run the rabbitmqctl commands the command prints (or pass it --apply).",
        crl = CRL_DIR,
        defs = DEFINITIONS_DIR,
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{CaRecord, CertRecord, DeviceRecord};
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::process::Command;

    fn cert_record(serial: &str) -> CertRecord {
        CertRecord {
            serial: serial.into(),
            not_before: time::OffsetDateTime::UNIX_EPOCH,
            not_after: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// Devices dev-a and dev-b active, dev-r revoked; operators _operator and _ops-laptop.
    fn registry() -> Registry {
        let mut devices = BTreeMap::new();
        for (i, id) in ["dev-a", "dev-b"].iter().enumerate() {
            devices.insert(
                id.to_string(),
                DeviceRecord {
                    status: DeviceStatus::Active,
                    cert: cert_record(&format!("A{i}")),
                    revoked_at: None,
                },
            );
        }
        devices.insert(
            "dev-r".into(),
            DeviceRecord {
                status: DeviceStatus::Revoked,
                cert: cert_record("B0"),
                revoked_at: Some(time::OffsetDateTime::UNIX_EPOCH),
            },
        );
        let mut operators = BTreeMap::new();
        operators.insert("_ops-laptop".to_string(), cert_record("C1"));
        Registry {
            format: crate::registry::FORMAT,
            ca: CaRecord {
                name: "test".into(),
                cert: cert_record("01"),
            },
            operator: cert_record("02"),
            operators,
            crl_number: 1,
            broker: None,
            devices,
            ota_keys: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// Mosquitto's topic matching (`mosquitto_topic_matches_sub`): `+` one level, `#` the rest,
    /// including the parent level.
    fn mosquitto_matches(pattern: &str, topic: &str) -> bool {
        let p: Vec<&str> = pattern.split('/').collect();
        let t: Vec<&str> = topic.split('/').collect();
        for (i, level) in p.iter().enumerate() {
            match *level {
                "#" => return true,
                "+" if i < t.len() => {}
                l if i < t.len() && t[i] == l => {}
                _ => return false,
            }
        }
        p.len() == t.len()
    }

    /// The Mosquitto ACL `render_acl` writes, as (user, access) -> allowed topic patterns.
    fn mosquitto_acl(reg: &Registry) -> impl Fn(&str, &str, &str) -> bool {
        let text = crate::broker::render_acl(reg);
        let mut patterns: Vec<(String, String)> = Vec::new();
        let mut users: Vec<(String, String, String)> = Vec::new();
        let mut current = String::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["pattern", access, topic] => {
                    patterns.push((access.to_string(), topic.to_string()))
                }
                ["user", name] => current = name.to_string(),
                ["topic", access, topic] => {
                    users.push((current.clone(), access.to_string(), topic.to_string()))
                }
                _ => panic!("unexpected ACL line {line:?}"),
            }
        }
        move |user: &str, access: &str, topic: &str| {
            let denied = users
                .iter()
                .any(|(u, a, t)| u == user && a == "deny" && mosquitto_matches(t, topic));
            let pattern = patterns
                .iter()
                .any(|(a, t)| a == access && mosquitto_matches(&t.replace("%u", user), topic));
            let own = users
                .iter()
                .any(|(u, a, t)| u == user && a == access && mosquitto_matches(t, topic));
            !denied && (pattern || own)
        }
    }

    /// What the MQTT plugin makes of a topic (`/` to `.`, `+` to `*`) and the topic a message
    /// with that routing key is delivered as.
    fn routing_key(topic: &str) -> String {
        topic.replace('/', ".").replace('+', "*")
    }
    fn delivered_as(key: &str) -> String {
        key.replace('*', "+").replace('.', "/")
    }

    fn permissions(reg: &Registry, user: &str) -> (regex::Regex, regex::Regex) {
        let defs: serde_json::Value = serde_json::from_str(&render_definitions(reg)).unwrap();
        let entry = defs["topic_permissions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user"] == user)
            .unwrap_or_else(|| panic!("{user} has no topic permissions"));
        assert_eq!(entry["exchange"], "amq.topic");
        assert_eq!(entry["vhost"], "/");
        let re = |k: &str| regex::Regex::new(entry[k].as_str().unwrap()).unwrap();
        (re("write"), re("read"))
    }

    /// Topics without wildcards: each user's publish and subscribe are allowed exactly when the
    /// Mosquitto ACL allows the topic the message is delivered as.
    const TOPICS: &[&str] = &[
        "devices/dev-a/telemetry",
        "devices/dev-a/status",
        "devices/dev-a/reply",
        "devices/dev-a/reply/",
        "devices/dev-a/reply/set-pin",
        "devices/dev-a/reply/a/b",
        "devices/dev-a/ota/up",
        "devices/dev-a/ota/up/request",
        "devices/dev-a/ota/up/status",
        "devices/dev-a/ota/down",
        "devices/dev-a/ota/down/offer",
        "devices/dev-a/ota/down/chunk/x",
        "devices/dev-a/ota",
        "devices/dev-a/ota/sideways",
        "devices/dev-a/otax/up",
        "devices/dev-a/cmd",
        "devices/dev-a/cmd/reboot",
        "devices/dev-a/cmd/a/b",
        "devices/dev-a/cmd/",
        "devices/dev-a/telemetry/x",
        "devices/dev-a/telemetryx",
        "devices/dev-a/statusx",
        "devices/dev-a",
        "devices/dev-a/",
        "devices/dev-a/telemetry\n",
        "devices/dev-a/cmd\nx",
        "devices/dev-a/reply/x\ny",
        "devices/dev-a/ota.up",
        "devices/dev-a/ota.up/x",
        "devices/dev-a/reply/x.y",
        "devices/dev-a.cmd/x",
        "devices/dev-a/cmd.x",
        "devices/dev-b/telemetry",
        "devices/dev-b/status",
        "devices/dev-b/reply/x",
        "devices/dev-b/ota/up/status",
        "devices/dev-b/cmd/reboot",
        "devices/dev-b/ota/down/offer",
        "devices/dev-r/status",
        "devices/dev-r/telemetry",
        "devices/dev-r/cmd/x",
        "devices/dev-ab/telemetry",
        "devices/dev/telemetry",
        "devices/dev-a-b/cmd/x",
        "devices//telemetry",
        "devices//cmd/x",
        "devices/DEV-A/telemetry",
        "devices/_operator/telemetry",
        "devices/_operator/cmd/x",
        "devices/a.b/telemetry",
        "devices/a.b/cmd/x",
        "/devices/dev-a/telemetry",
        "devices",
        "devices/",
        "other/topic",
        "$SYS/broker/uptime",
        "dev-a/telemetry",
    ];

    #[test]
    fn topic_permissions_are_the_mosquitto_acl() {
        let reg = registry();
        let acl = mosquitto_acl(&reg);
        let mut checked = 0;
        for user in ["dev-a", "dev-b", "_operator", "_ops-laptop"] {
            let (write, read) = permissions(&reg, user);
            for topic in TOPICS {
                let key = routing_key(topic);
                let delivered = delivered_as(&key);
                for (access, re) in [("write", &write), ("read", &read)] {
                    let mosquitto = acl(user, access, &delivered);
                    assert_eq!(
                        re.is_match(&key),
                        mosquitto,
                        "{user} {access} {topic:?} (routing key {key:?}): Mosquitto says \
                         {mosquitto}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 4 * 2 * TOPICS.len());
    }

    /// Subscriptions with wildcards: RabbitMQ checks the binding key once; allowed exactly when
    /// every topic the filter can match is readable under the Mosquitto ACL.
    #[test]
    fn wildcard_subscriptions() {
        let reg = registry();
        let cases: &[(&str, &str, bool)] = &[
            ("dev-a", "devices/dev-a/cmd/#", true),
            ("dev-a", "devices/dev-a/cmd/+", true),
            ("dev-a", "devices/dev-a/ota/down/#", true),
            ("dev-a", "devices/dev-a/#", false),
            ("dev-a", "devices/+/cmd/#", false),
            ("dev-a", "devices/dev-b/cmd/#", false),
            ("dev-a", "devices/#", false),
            ("dev-a", "#", false),
            ("dev-a", "+/dev-a/cmd/x", false),
            ("dev-a", "devices/dev-a/+", false),
            ("_operator", "devices/+/telemetry", true),
            ("_operator", "devices/+/status", true),
            ("_operator", "devices/+/reply/#", true),
            ("_operator", "devices/+/ota/up/#", true),
            ("_operator", "devices/dev-a/reply/+", true),
            ("_operator", "devices/+/+", false),
            ("_operator", "devices/+/cmd/#", false),
            ("_operator", "devices/#", false),
            ("_operator", "devices/#/telemetry", false),
            ("_operator", "devices/+/#", false),
            ("_operator", "#", false),
            ("_ops-laptop", "devices/+/telemetry", true),
            ("_ops-laptop", "devices/+/ota/down/#", false),
        ];
        for (user, filter, allowed) in cases {
            let (_, read) = permissions(&reg, user);
            assert_eq!(
                read.is_match(&routing_key(filter)),
                *allowed,
                "{user} subscribing to {filter}"
            );
        }
    }

    #[test]
    fn definitions_have_every_active_user_without_password_and_no_guest() {
        let reg = registry();
        let defs: serde_json::Value = serde_json::from_str(&render_definitions(&reg)).unwrap();
        let names = |section: &str, key: &str| -> Vec<String> {
            defs[section]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v[key].as_str().unwrap().to_string())
                .collect()
        };
        let expected = ["_operator", "_ops-laptop", "dev-a", "dev-b"];
        assert_eq!(names("users", "name"), expected);
        assert_eq!(names("permissions", "user"), expected);
        assert_eq!(names("topic_permissions", "user"), expected);
        for u in defs["users"].as_array().unwrap() {
            assert_eq!(u["password_hash"], "", "{u}");
        }
        assert_eq!(defs["vhosts"], json!([{"name": "/"}]));
        // Each user's queues are its own: a device reusing another's client id cannot declare
        // or read the other's session queue.
        let perm = |user: &str, kind: &str| {
            let p = defs["permissions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["user"] == user)
                .unwrap();
            regex::Regex::new(p[kind].as_str().unwrap()).unwrap()
        };
        for kind in ["configure", "write", "read"] {
            let a = perm("dev-a", kind);
            assert!(a.is_match("mqtt-subscription-dev-aqos0"));
            assert!(a.is_match("mqtt-subscription-dev-aqos1"));
            assert!(!a.is_match("mqtt-subscription-dev-bqos1"));
            assert!(!a.is_match("mqtt-subscription-dev-a-bqos1"));
            assert!(!a.is_match("mqtt-subscription-dev-aqos1\n"));
            let op = perm("_operator", kind);
            assert!(op.is_match("mqtt-subscription-_operatorqos1"));
            assert!(op.is_match("mqtt-subscription-_operator-1a2b3c4dqos0"));
            assert!(!op.is_match("mqtt-subscription-dev-aqos1"));
            assert!(!op.is_match("mqtt-subscription-_ops-laptopqos1"));
        }
        assert!(perm("dev-a", "write").is_match("amq.topic"));
        assert!(!perm("dev-a", "configure").is_match("amq.topic"));
        assert!(!perm("dev-a", "write").is_match("amq.direct"));
    }

    #[test]
    fn the_definition_files_together_are_the_definitions() {
        let reg = registry();
        let whole: serde_json::Value = serde_json::from_str(&render_definitions(&reg)).unwrap();
        let files = render_definition_files(&reg);
        assert_eq!(files.len(), 257);
        let mut merged: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
        for (name, text) in &files {
            let doc: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(doc["vhosts"], json!([{"name": "/"}]), "{name}");
            for section in ["users", "permissions", "topic_permissions"] {
                merged
                    .entry(section)
                    .or_default()
                    .extend(doc[section].as_array().unwrap().iter().cloned());
                for v in doc[section].as_array().unwrap() {
                    let user = v.get("name").or(v.get("user")).unwrap().as_str().unwrap();
                    let home = if user.starts_with('_') {
                        OPERATORS_FILE.to_string()
                    } else {
                        device_file(user)
                    };
                    assert_eq!(*name, home, "{user} in {name}");
                }
            }
        }
        let key = |v: &serde_json::Value| v.to_string();
        for (section, mut got) in merged {
            let mut want = whole[section].as_array().unwrap().clone();
            got.sort_by_key(key);
            want.sort_by_key(key);
            assert_eq!(got, want, "{section}");
        }
    }

    #[test]
    fn partial_definitions_carry_only_the_named_users_and_every_operators_topics() {
        let reg = registry();
        let defs: serde_json::Value =
            serde_json::from_str(&render_definitions_for(&reg, &["dev-b"])).unwrap();
        assert_eq!(defs["users"].as_array().unwrap().len(), 1);
        assert_eq!(defs["users"][0]["name"], "dev-b");
        assert_eq!(defs["permissions"].as_array().unwrap().len(), 1);
        let topic_users: Vec<&str> = defs["topic_permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["user"].as_str().unwrap())
            .collect();
        assert_eq!(topic_users, ["dev-b", "_operator", "_ops-laptop"]);
    }

    fn openssl_hash(pem: &[u8]) -> String {
        let mut child = Command::new("openssl")
            .args(["x509", "-noout", "-hash"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl (apt-get install openssl) must be installed for this test");
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(pem).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn der_of(pem: &[u8]) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem).unwrap().1.contents
    }

    #[test]
    fn subject_hash_is_openssls_for_every_string_type() {
        use rcgen::{DnType, DnValue};
        let values: Vec<DnValue> = vec![
            DnValue::Utf8String("provision root CA".into()),
            DnValue::Utf8String("  Mixed   CASE\tname  ".into()),
            DnValue::Utf8String("Ünïcödé ÄÖ ca".into()),
            DnValue::PrintableString("Printable CA".try_into().unwrap()),
            DnValue::Ia5String("ia5 CA@example.org".try_into().unwrap()),
            DnValue::TeletexString("Teletex CA".try_into().unwrap()),
            DnValue::BmpString("BMP Ca".try_into().unwrap()),
            DnValue::UniversalString("Universal CA".try_into().unwrap()),
        ];
        for v in values {
            let mut params = rcgen::CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, v.clone());
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Some  Org");
            params.distinguished_name.push(DnType::CountryName, "DE");
            let key = rcgen::KeyPair::generate().unwrap();
            let pem = params.self_signed(&key).unwrap().pem();
            assert_eq!(
                subject_hash(&der_of(pem.as_bytes())).unwrap(),
                openssl_hash(pem.as_bytes()),
                "{v:?}"
            );
        }
    }

    #[test]
    fn subject_hash_is_openssls_for_multi_valued_and_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        for subject in [
            "/CN=a+O=B/OU= x  Y ",
            "/O=Zed+CN=Alpha+OU=mid/CN=second",
            "/CN=The CA/emailAddress=ROOT@Example.ORG",
            "/C=DE/ST=Bayern/L=M\u{fc}nchen/CN=ca",
        ] {
            let key = dir.path().join("k.pem");
            let crt = dir.path().join("c.pem");
            let out = Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-utf8"])
                .args(["-multivalue-rdn", "-subj", subject, "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&crt)
                .output()
                .expect("openssl (apt-get install openssl) must be installed for this test");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let pem = std::fs::read(&crt).unwrap();
            assert_eq!(
                subject_hash(&der_of(&pem)).unwrap(),
                openssl_hash(&pem),
                "{subject}"
            );
        }
    }

    fn broker(nodes: &[(&str, &str, u16)], install: &str) -> BrokerRecord {
        BrokerRecord {
            hosts: vec!["mq.example.org".into()],
            ips: Vec::new(),
            port: nodes[0].2,
            bind: None,
            install_dir: install.into(),
            platform: crate::registry::Platform::Plain,
            max_packet_size: 2048,
            engine: crate::registry::Engine::Rabbitmq,
            cert: cert_record("0A"),
            nodes: nodes
                .iter()
                .map(|(name, host, port)| NodeRecord {
                    name: name.to_string(),
                    host: host.to_string(),
                    port: *port,
                })
                .collect(),
        }
    }

    #[test]
    fn node_files_name_their_node_and_nothing_else_differs() {
        let b = broker(
            &[
                ("rabbit-1", "127.0.0.1", 41001),
                ("rabbit-2", "127.0.0.1", 41002),
            ],
            "/etc/rabbitmq/provision",
        );
        let conf1 = render_rabbitmq_conf(&b, &b.nodes[0]).unwrap();
        let conf2 = render_rabbitmq_conf(&b, &b.nodes[1]).unwrap();
        assert!(conf1.contains("\nmqtt.listeners.ssl.default = 127.0.0.1:41001\n"));
        assert!(conf2.contains("\nmqtt.listeners.ssl.default = 127.0.0.1:41002\n"));
        for line in [
            "listeners.tcp = none",
            "mqtt.listeners.tcp = none",
            "mqtt.allow_anonymous = false",
            "mqtt.ssl_cert_login = true",
            "ssl_cert_login_from = common_name",
            "mqtt.vhost = /",
            "mqtt.exchange = amq.topic",
            "mqtt.durable_queue_type = quorum",
            "definitions.import_backend = local_filesystem",
            "definitions.local.path = /etc/rabbitmq/provision/definitions",
            "definitions.skip_if_unchanged = true",
        ] {
            assert!(conf1.lines().any(|l| l == line), "{line}");
        }
        let adv = render_advanced_config(&b).unwrap();
        for needle in [
            "{cacertfile, \"/etc/rabbitmq/provision/ca.crt\"}",
            "{certfile, \"/etc/rabbitmq/provision/server.crt\"}",
            "{keyfile, \"/etc/rabbitmq/provision/server.key\"}",
            "{verify, verify_peer}",
            "{fail_if_no_peer_cert, true}",
            "{depth, 1}",
            "{versions, ['tlsv1.2']}",
            "\"ECDHE-ECDSA-AES128-GCM-SHA256\"",
            "\"ECDHE-ECDSA-AES256-GCM-SHA384\"",
            "\"ECDHE-ECDSA-CHACHA20-POLY1305\"",
            "{honor_cipher_order, true}",
            "{crl_check, peer}",
            "{crl_cache, {ssl_crl_hash_dir, {internal, [{dir, \"/etc/rabbitmq/provision/crl\"}]}}}",
        ] {
            assert!(adv.contains(needle), "{needle}");
        }
        let env1 = render_env(&b, &b.nodes[0]).unwrap();
        let env2 = render_env(&b, &b.nodes[1]).unwrap();
        assert!(env1.contains("NODENAME=rabbit-1@localhost\n"));
        assert!(env2.contains("NODENAME=rabbit-2@localhost\n"));
        assert!(env1.contains("DIST_PORT=25672\n") && env2.contains("DIST_PORT=25673\n"));
        assert!(env2.contains("CONFIG_FILE=/etc/rabbitmq/provision/nodes/rabbit-2/rabbitmq.conf\n"));
        assert!(env1.contains("ERL_EPMD_ADDRESS=127.0.0.1"));
    }

    #[test]
    fn node_naming_across_hosts() {
        let b = broker(
            &[
                ("rabbit-1", "mq1.example.org", 8883),
                ("rabbit-2", "10.0.0.2", 8883),
            ],
            "/etc/rabbitmq/provision",
        );
        let env = render_env(&b, &b.nodes[1]).unwrap();
        assert!(env.contains("NODENAME=rabbit-2@10.0.0.2\n"), "{env}");
        assert!(env.contains("USE_LONGNAME=true") && env.contains("DIST_PORT=25672\n"));
        assert!(!env.contains("ERL_EPMD_ADDRESS"));
        // A name-bound listener binds every address; an address-bound one only its own.
        assert!(render_rabbitmq_conf(&b, &b.nodes[0])
            .unwrap()
            .contains("\nmqtt.listeners.ssl.default = 8883\n"));
        let short = broker(&[("a", "mq1", 8883), ("b", "mq2", 8883)], "/x");
        assert!(render_env(&short, &short.nodes[0])
            .unwrap()
            .contains("NODENAME=a@mq1\n"));
        let mixed = broker(&[("a", "mq1", 8883), ("b", "mq2.example.org", 8883)], "/x");
        assert!(render_env(&mixed, &mixed.nodes[0])
            .unwrap_err()
            .to_string()
            .contains("single-label"));
    }

    #[test]
    fn operators_may_clear_only_the_most_recently_revoked_so_the_pattern_stays_small() {
        let mut r = registry();
        let t0 = time::OffsetDateTime::UNIX_EPOCH;
        for i in 0..10_000u32 {
            r.devices.insert(
                format!("old-{i:05}"),
                DeviceRecord {
                    status: DeviceStatus::Revoked,
                    cert: cert_record(&format!("D{i}")),
                    revoked_at: Some(t0 + time::Duration::seconds(i64::from(i) + 1)),
                },
            );
        }
        let ids = clearable_revoked(&r);
        assert_eq!(ids.len(), MAX_CLEARABLE_REVOKED);
        // The newest revocations are kept (the one just revoked among them), the oldest dropped.
        assert!(ids.contains(&"old-09999") && ids.contains(&"old-09744"));
        assert!(!ids.contains(&"old-09743") && !ids.contains(&"dev-r"));
        let (write, _) = operator_topic_permissions("_operator", ids.iter().copied());
        // Erlang's re (RabbitMQ's topic check) refuses patterns from about 32 KB: it failed
        // with every revoked id listed (10,000: 110 KB).
        assert!(write.len() < 8 * 1024, "{} bytes", write.len());
        let defs = render_definitions(&r);
        let longest = defs.lines().map(str::len).max().unwrap();
        assert!(longest < 8 * 1024, "a definitions line of {longest} bytes");
        // A small fleet keeps every revoked device.
        assert_eq!(clearable_revoked(&registry()), vec!["dev-r"]);
    }

    #[test]
    fn paths_the_config_files_cannot_carry_are_refused() {
        for bad in [
            "/home/me/My PKI",
            "/a\"b",
            "/a#b",
            "/a\\b",
            "/ä",
            "/a'b",
            "/a$b",
        ] {
            let b = broker(&[("rabbit-1", "127.0.0.1", 1)], bad);
            assert!(render_advanced_config(&b).is_err(), "{bad}");
            assert!(render_rabbitmq_conf(&b, &b.nodes[0]).is_err(), "{bad}");
        }
    }
}
