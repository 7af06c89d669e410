//! The operator's MQTT client: mutual TLS (rustls, ring) with an operator identity from the
//! provisioning directory, to the broker `provision broker` configured. `provision watch`,
//! `provision cmd` and `provision ota push` talk to devices through it.
//!
//! The broker's certificate is checked against our CA *and* the host name used to reach it, so a
//! broker address that is not in the broker certificate's names is refused (use one of the
//! `--host`/`--ip` names given to `provision broker`).
//!
//! A broker may have several endpoints (the nodes of a RabbitMQ cluster,
//! [`BrokerRecord::endpoints`](crate::registry::BrokerRecord::endpoints)). The client tries them
//! in order and takes the first that completes TCP, TLS and CONNACK; when every one fails, the
//! error names each endpoint with its own reason.
//!
//! A background thread drives the connection. Messages arrive on a channel; after a dropped
//! connection it reconnects — to the next endpoint, so a dead node is left behind — and
//! subscribes again (clean sessions: nothing is left on the broker when the tool exits).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{ConnectReturnCode, ConnectionError, Event as RawEvent, Packet, QoS};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::pki::OPERATOR_CN;
use crate::registry::{DeviceStatus, Registry};
use crate::store::Store;
use crate::store::PEM_LIMIT;

/// The operator identity used when none is named (`provision init` creates it).
pub const DEFAULT_OPERATOR: &str = OPERATOR_CN;

/// A connection that stayed up this long was healthy: after it drops, reconnect quickly.
const STABLE: Duration = Duration::from_secs(10);

/// Largest message accepted from the broker. Anything bigger drops the connection (rumqttc
/// cannot skip a packet), so it is far above what devices send.
pub const MAX_INCOMING: usize = 256 * 1024;

/// How to reach the broker and as whom.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The provisioning directory (`--dir`).
    pub dir: PathBuf,
    /// Operator identity name (`--operator`).
    pub operator: String,
    /// `HOST:PORT` overriding the broker `provision broker` recorded (`--broker`).
    pub broker: Option<String>,
    /// TCP + TLS + CONNACK budget, per endpoint.
    pub connect_timeout: Duration,
}

impl ConnectOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ConnectOptions {
            dir: dir.into(),
            operator: DEFAULT_OPERATOR.into(),
            broker: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Where the broker is: a name or address that must be in its certificate, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl BrokerAddr {
    /// Parses `HOST:PORT` (`[v6]:PORT` for IPv6 addresses).
    pub fn parse(s: &str) -> Result<BrokerAddr> {
        let bad =
            |why: &str| Error::InvalidInput(format!("--broker {s:?}: {why} (expected HOST:PORT)"));
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(|| bad("no ]:PORT"))?;
            (h, p)
        } else {
            s.rsplit_once(':').ok_or_else(|| bad("no port"))?
        };
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number 1-65535"))?;
        if port == 0 {
            return Err(bad("the port is not a number 1-65535"));
        }
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.parse::<std::net::IpAddr>().is_err() && !crate::broker::is_dns_name(host) {
            return Err(bad("the host is neither a DNS name nor an IP address"));
        }
        Ok(BrokerAddr {
            host: host.to_string(),
            port,
        })
    }

    /// Every endpoint of the broker `provision broker` recorded, in the order to try them
    /// ([`BrokerRecord::endpoints`](crate::registry::BrokerRecord::endpoints)); never empty.
    pub fn from_registry(registry: &Registry, dir: &Path) -> Result<Vec<BrokerAddr>> {
        let b = registry
            .broker
            .as_ref()
            .ok_or_else(|| Error::NoBroker(dir.to_path_buf()))?;
        let all: Vec<BrokerAddr> = b
            .endpoints()
            .into_iter()
            .map(|(host, port)| BrokerAddr { host, port })
            .collect();
        if all.is_empty() {
            return Err(Error::NoBroker(dir.to_path_buf()));
        }
        Ok(all)
    }

    /// Where `opts` says to connect: `--broker` (one endpoint), else the registry's endpoints.
    pub fn resolve(opts: &ConnectOptions, registry: &Registry) -> Result<Vec<BrokerAddr>> {
        match &opts.broker {
            Some(s) => Ok(vec![BrokerAddr::parse(s)?]),
            None => BrokerAddr::from_registry(registry, &opts.dir),
        }
    }
}

/// An operator identity's certificate and key files.
#[derive(Debug, Clone)]
pub struct OperatorIdentity {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl OperatorIdentity {
    /// Finds operator `name` in the provisioning directory.
    pub fn find(dir: &Path, name: &str) -> Result<OperatorIdentity> {
        let layout = Layout::new(dir);
        let (cert, key) = layout.operator_identity(name)?;
        if !cert.is_file() || !key.is_file() {
            return Err(Error::UnknownOperator {
                name: name.to_string(),
                dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
            });
        }
        Ok(OperatorIdentity {
            name: name.to_string(),
            cert,
            key,
        })
    }
}

/// Checks that every id names a device this directory issued (a typo would otherwise wait for
/// a device that does not exist), and unless `revoked_ok`, one that is not revoked.
pub fn check_devices(registry: &Registry, ids: &[String], revoked_ok: bool) -> Result<()> {
    for id in ids {
        crate::topics::check_id(id)?;
    }
    for id in ids {
        match registry.devices.get(id) {
            None => return Err(Error::UnknownDevice(id.clone())),
            Some(d) if d.status == DeviceStatus::Revoked && !revoked_ok => {
                return Err(Error::InvalidInput(format!(
                    "device {id:?} is revoked: it cannot connect to the broker"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// What arrives from the broker.
#[derive(Debug, Clone)]
pub enum Event {
    /// A message on a subscribed topic.
    Message(Message),
    /// The connection dropped; the client is reconnecting.
    Disconnected(String),
    /// Connected again and subscribed again.
    Reconnected,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Sent by the broker from its retained store (sent before we subscribed).
    pub retained: bool,
}

/// A connected operator.
pub struct Client {
    client: rumqttc::Client,
    events: Receiver<Event>,
    /// The endpoint connected to now (the background thread moves it on a failover).
    addr: Arc<Mutex<BrokerAddr>>,
    operator: String,
}

/// Builds the rustls configuration: only our CA is trusted, the operator certificate is offered.
pub fn tls_config(ca: &Path, identity: &OperatorIdentity) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let corrupt = |path: &Path, what: &str| Error::Corrupt {
        path: path.to_path_buf(),
        reason: what.to_string(),
    };
    let ca_pem = crate::fsutil::read_bounded(ca, PEM_LIMIT, "CA certificate")?;
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| corrupt(ca, &format!("not a PEM certificate ({e})")))?;
        roots
            .add(cert)
            .map_err(|e| corrupt(ca, &format!("not a usable CA certificate ({e})")))?;
    }
    if roots.is_empty() {
        return Err(corrupt(ca, "holds no certificate"));
    }
    let cert_pem = crate::fsutil::read_bounded(&identity.cert, PEM_LIMIT, "operator certificate")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| corrupt(&identity.cert, &format!("not a PEM certificate ({e})")))?;
    if chain.is_empty() {
        return Err(corrupt(&identity.cert, "holds no certificate"));
    }
    let key_pem = crate::fsutil::read_bounded(&identity.key, PEM_LIMIT, "operator key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| corrupt(&identity.key, &format!("not a PEM private key ({e})")))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .map_err(|e| Error::InvalidInput(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| {
        corrupt(
            &identity.key,
            &format!("does not match {} ({e})", identity.cert.display()),
        )
    })?;
    Ok(Arc::new(config))
}

impl Client {
    /// Connects to the first endpoint that answers, subscribes to `filters` (waiting for the
    /// SUBACK, so nothing published after this returns is missed) and starts the background
    /// thread.
    pub fn connect(opts: &ConnectOptions, filters: &[String]) -> Result<Client> {
        let registry = Store::open_read(&opts.dir)?.registry()?;
        Client::connect_to(opts, &registry, filters)
    }

    /// [`Client::connect`] with the registry the command loaded already (it is read once per
    /// command: at 100,000 devices a load takes a noticeable fraction of a second).
    pub fn connect_to(
        opts: &ConnectOptions,
        registry: &Registry,
        filters: &[String],
    ) -> Result<Client> {
        // Read everything under the directory's shared lock, then let go of it: a long `watch`
        // must not keep `device add` waiting.
        let (addrs, identity, tls) = {
            let store = Store::open_read(&opts.dir)?;
            let addrs = BrokerAddr::resolve(opts, registry)?;
            let identity = OperatorIdentity::find(&opts.dir, &opts.operator)?;
            let tls = tls_config(&store.layout.ca_cert(), &identity)?;
            (addrs, identity, tls)
        };
        Client::connect_any(addrs, identity, tls, filters, opts.connect_timeout)
    }

    /// Tries `addrs` in order; the first that connects wins. A failure to connect (name, TCP,
    /// TLS, CONNACK) moves on to the next endpoint; a refused subscription does not (every node
    /// applies the same permissions).
    fn connect_any(
        addrs: Vec<BrokerAddr>,
        identity: OperatorIdentity,
        tls: Arc<rustls::ClientConfig>,
        filters: &[String],
        timeout: Duration,
    ) -> Result<Client> {
        // A broker that enforces client id = user name ignores this; otherwise it keeps two
        // tools run by one operator from taking over each other's session. It starts with the
        // operator's name (with its `_`, which no device id has): RabbitMQ lets each user use
        // only the session queues of its own client ids.
        let client_id = format!("{}-{:08x}", identity.name, rand::random::<u32>());
        let mut failed = Vec::new();
        for at in 0..addrs.len() {
            match Client::connect_with(&addrs, at, &client_id, &identity, &tls, filters, timeout) {
                Ok(client) => return Ok(client),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Failover(e)) => failed.push((addrs[at].clone(), e)),
            }
        }
        Err(every_endpoint_failed(failed))
    }

    #[allow(clippy::too_many_arguments)]
    fn connect_with(
        addrs: &[BrokerAddr],
        at: usize,
        client_id: &str,
        identity: &OperatorIdentity,
        tls: &Arc<rustls::ClientConfig>,
        filters: &[String],
        timeout: Duration,
    ) -> std::result::Result<Client, Attempt> {
        let addr = &addrs[at];
        let (client, mut conn) = rumqttc::Client::new(mqtt_options(client_id, addr, tls), 64);
        conn.eventloop
            .network_options
            .set_connection_timeout(timeout.as_secs().max(1));
        // Small messages (commands, OTA chunks answering requests) go out at once, not after
        // the broker's acknowledgement of the previous segment.
        conn.eventloop.network_options.set_tcp_nodelay(true);

        // Connect and subscribe in this thread, so failures come back as typed errors.
        let deadline = Instant::now() + timeout;
        let fail = |e: ConnectionError| Attempt::Failover(classify(e, addr, &identity.name));
        let mut subacks_due = 0usize;
        let mut connected = false;
        let mut early = Vec::new();
        while !(connected && subacks_due == 0) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let e = Error::BrokerUnreachable {
                    addr: addr.to_string(),
                    reason: format!("no answer within {} s", timeout.as_secs()),
                };
                // Connected but the SUBACKs never came: not the endpoint's fault alone.
                return Err(if connected {
                    Attempt::Fatal(e)
                } else {
                    Attempt::Failover(e)
                });
            }
            match conn.recv_timeout(left) {
                Err(_) => continue,
                Ok(Err(e)) => return Err(fail(e)),
                Ok(Ok(RawEvent::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                    subacks_due = subscribe(&client, filters).map_err(Attempt::Fatal)?;
                }
                Ok(Ok(RawEvent::Incoming(Packet::SubAck(ack)))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        return Err(Attempt::Fatal(Error::NotAuthorized {
                            addr: addr.to_string(),
                            operator: identity.name.clone(),
                            reason: "the broker refused a subscription".into(),
                        }));
                    }
                    subacks_due = subacks_due.saturating_sub(1);
                }
                Ok(Ok(RawEvent::Incoming(Packet::Publish(p)))) => {
                    early.push(Event::Message(Message {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                        retained: p.retain,
                    }))
                }
                Ok(Ok(_)) => {}
            }
        }

        let (tx, events) = mpsc::channel();
        for e in early {
            let _ = tx.send(e);
        }
        let current = Arc::new(Mutex::new(addr.clone()));
        let link = Link {
            client: client.clone(),
            filters: filters.to_vec(),
            operator: identity.name.clone(),
            client_id: client_id.to_string(),
            tls: tls.clone(),
            addrs: addrs.to_vec(),
            at,
            current: current.clone(),
        };
        std::thread::spawn(move || drive(conn, link, tx));
        Ok(Client {
            client,
            events,
            addr: current,
            operator: identity.name.clone(),
        })
    }

    /// The endpoint this client is connected to (or reconnecting to).
    pub fn addr(&self) -> BrokerAddr {
        self.addr
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The operator identity it connected as.
    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// Publishes at QoS 1, never retained (a retained command would run again on every
    /// reconnect of the device).
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) -> Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .map_err(|e| Error::BrokerUnreachable {
                addr: self.addr().to_string(),
                reason: format!("the connection is closed ({e})"),
            })
    }

    /// Publishes at QoS 0 (OTA chunks: a lost one is asked for again by the device).
    pub fn publish_qos0(&self, topic: &str, payload: impl Into<Vec<u8>>) -> Result<()> {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload)
            .map_err(|e| Error::BrokerUnreachable {
                addr: self.addr().to_string(),
                reason: format!("the connection is closed ({e})"),
            })
    }

    /// Publishes an empty retained message on `topic`, which deletes what the broker retained.
    pub fn clear_retained(&self, topic: &str) -> Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, Vec::new())
            .map_err(|e| Error::BrokerUnreachable {
                addr: self.addr().to_string(),
                reason: format!("the connection is closed ({e})"),
            })
    }

    /// The next event, waiting at most `timeout`. `None` on timeout.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Event>> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::BrokerUnreachable {
                addr: self.addr().to_string(),
                reason: "the connection thread stopped".into(),
            }),
        }
    }

    /// The next event, waiting as long as it takes.
    pub fn recv(&self) -> Result<Event> {
        self.events.recv().map_err(|_| Error::BrokerUnreachable {
            addr: self.addr().to_string(),
            reason: "the connection thread stopped".into(),
        })
    }

    /// Sends DISCONNECT after everything queued so far, and waits (briefly) for it to go out.
    pub fn disconnect(self) {
        let _ = self.client.disconnect();
        let deadline = Instant::now() + Duration::from_secs(5);
        // The driving thread ends (dropping the sender) once the DISCONNECT is written.
        while Instant::now() < deadline {
            match self.events.recv_timeout(deadline - Instant::now()) {
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// Filter bytes per SUBSCRIBE: brokers configured by `provision broker` refuse packets over
/// 2 KiB (the device's buffer), so many filters go in several packets.
const SUBSCRIBE_BYTES: usize = 1500;

/// Subscribes to `filters` in packets under [`SUBSCRIBE_BYTES`]; returns how many it sent.
fn subscribe(client: &rumqttc::Client, filters: &[String]) -> Result<usize> {
    let mut packets = 0;
    let mut group: Vec<&String> = Vec::new();
    let mut bytes = 0;
    let mut send = |group: &mut Vec<&String>| -> Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        let subs = group
            .iter()
            .map(|f| rumqttc::SubscribeFilter::new((*f).clone(), QoS::AtLeastOnce));
        client
            .try_subscribe_many(subs)
            .map_err(|e| Error::InvalidInput(format!("cannot subscribe to {group:?}: {e}")))?;
        packets += 1;
        group.clear();
        Ok(())
    };
    for f in filters {
        // 2 bytes of length and 1 of QoS per filter.
        if bytes + f.len() + 3 > SUBSCRIBE_BYTES {
            send(&mut group)?;
            bytes = 0;
        }
        bytes += f.len() + 3;
        group.push(f);
    }
    send(&mut group)?;
    Ok(packets)
}

/// One connect attempt's failure: try the next endpoint, or give up.
enum Attempt {
    Failover(Error),
    Fatal(Error),
}

/// The error when every endpoint failed: with one endpoint, its own error; with several, one
/// that names each endpoint with its reason, typed by the common fault (TLS, refusal) when they
/// all failed the same way, else as unreachable.
fn every_endpoint_failed(failed: Vec<(BrokerAddr, Error)>) -> Error {
    if failed.len() == 1 {
        return failed.into_iter().next().map(|(_, e)| e).expect("one");
    }
    if failed.is_empty() {
        return Error::BrokerUnreachable {
            addr: "-".into(),
            reason: "the broker has no endpoint".into(),
        };
    }
    let addr = failed
        .iter()
        .map(|(a, _)| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let reason = failed
        .iter()
        .map(|(a, e)| match e {
            Error::BrokerUnreachable { reason, .. }
            | Error::Tls { reason, .. }
            | Error::NotAuthorized { reason, .. } => format!("{a}: {reason}"),
            other => format!("{a}: {other}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let reason = format!("every endpoint failed ({reason})");
    let all = |f: fn(&Error) -> bool| failed.iter().all(|(_, e)| f(e));
    if all(|e| matches!(e, Error::Tls { .. })) {
        Error::Tls { addr, reason }
    } else if all(|e| matches!(e, Error::NotAuthorized { .. })) {
        let operator = match &failed[0].1 {
            Error::NotAuthorized { operator, .. } => operator.clone(),
            _ => String::new(),
        };
        Error::NotAuthorized {
            addr,
            operator,
            reason,
        }
    } else {
        Error::BrokerUnreachable { addr, reason }
    }
}

/// The MQTT options for one endpoint (the same client id and TLS setup for all).
fn mqtt_options(
    client_id: &str,
    addr: &BrokerAddr,
    tls: &Arc<rustls::ClientConfig>,
) -> rumqttc::MqttOptions {
    let mut mqtt = rumqttc::MqttOptions::new(client_id, addr.host.clone(), addr.port);
    mqtt.set_keep_alive(Duration::from_secs(30));
    mqtt.set_clean_session(true);
    mqtt.set_max_packet_size(MAX_INCOMING, MAX_INCOMING);
    mqtt.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(tls.clone()),
    ));
    mqtt
}

/// What the background thread needs to keep the connection up.
struct Link {
    client: rumqttc::Client,
    filters: Vec<String>,
    operator: String,
    client_id: String,
    tls: Arc<rustls::ClientConfig>,
    addrs: Vec<BrokerAddr>,
    /// Index of the endpoint in use.
    at: usize,
    current: Arc<Mutex<BrokerAddr>>,
}

impl Link {
    /// After a failure: the next endpoint (round robin), used by the next reconnect.
    fn next_endpoint(&mut self, conn: &mut rumqttc::Connection) {
        if self.addrs.len() < 2 {
            return;
        }
        self.at = (self.at + 1) % self.addrs.len();
        let addr = &self.addrs[self.at];
        conn.eventloop.mqtt_options = mqtt_options(&self.client_id, addr, &self.tls);
        if let Ok(mut c) = self.current.lock() {
            *c = addr.clone();
        }
    }
}

/// The background half: polls the connection, forwards messages, reconnects after a failure
/// (rumqttc reconnects on the next poll; with several endpoints, to the next one) and
/// subscribes again.
fn drive(mut conn: rumqttc::Connection, mut link: Link, tx: mpsc::Sender<Event>) {
    let mut backoff = Duration::from_millis(250);
    let mut connected_at = Some(Instant::now());
    loop {
        let Ok(event) = conn.recv() else {
            return;
        };
        let out = match event {
            Ok(RawEvent::Incoming(Packet::Publish(p))) => Some(Event::Message(Message {
                topic: p.topic,
                payload: p.payload.to_vec(),
                retained: p.retain,
            })),
            Ok(RawEvent::Incoming(Packet::ConnAck(_))) => {
                connected_at = Some(Instant::now());
                if !link.filters.is_empty() && subscribe(&link.client, &link.filters).is_err() {
                    return;
                }
                Some(Event::Reconnected)
            }
            Ok(RawEvent::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => None,
            Err(e) => {
                let failed = link
                    .current
                    .lock()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let mut msg = format!("{failed}: {e}");
                match connected_at.take() {
                    // A connection that lasted: try again soon.
                    Some(t) if t.elapsed() >= STABLE => backoff = Duration::from_millis(250),
                    // Closed soon after it opened: the broker may tie the client id to the
                    // identity, and another tool using it took the session over.
                    Some(_) => msg.push_str(&format!(
                        "; if another tool is connected as {}, the broker closes one of \
                         the two: give each tool its own identity (`provision operator add`, \
                         --operator)",
                        link.operator
                    )),
                    None => {}
                }
                link.next_endpoint(&mut conn);
                // Growing pauses also keep two tools sharing an identity from a takeover storm.
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                Some(Event::Disconnected(msg))
            }
        };
        if let Some(out) = out {
            if tx.send(out).is_err() {
                return;
            }
        }
    }
}

/// Sorts a connection failure by fault: network, TLS (either side refused), or MQTT refusal.
fn classify(e: ConnectionError, addr: &BrokerAddr, operator: &str) -> Error {
    let addr_s = addr.to_string();
    match e {
        ConnectionError::Io(io) => Error::BrokerUnreachable {
            addr: addr_s,
            reason: io.to_string(),
        },
        ConnectionError::NetworkTimeout => Error::BrokerUnreachable {
            addr: addr_s,
            reason: "timed out".into(),
        },
        ConnectionError::ConnectionRefused(code) => Error::NotAuthorized {
            addr: addr_s,
            operator: operator.to_string(),
            reason: match code {
                ConnectReturnCode::NotAuthorized => "not authorized".to_string(),
                ConnectReturnCode::BadUserNamePassword => "bad user name or password".into(),
                other => format!("CONNACK {other:?}"),
            },
        },
        ConnectionError::Tls(t) => Error::Tls {
            addr: addr_s,
            reason: tls_reason(&t, addr),
        },
        // With TLS 1.3 the broker refuses a client certificate after the handshake: the refusal
        // arrives on the first read as an I/O error carrying the TLS alert.
        other if find_rustls(&other).is_some() => Error::Tls {
            addr: addr_s,
            reason: describe_rustls(find_rustls(&other).expect("checked"), addr),
        },
        ConnectionError::MqttState(rumqttc::StateError::Io(io)) => Error::BrokerUnreachable {
            addr: addr_s,
            reason: format!("the connection closed before the broker answered ({io})"),
        },
        other => Error::BrokerUnreachable {
            addr: addr_s,
            reason: other.to_string(),
        },
    }
}

fn rustls_error(io: &std::io::Error) -> Option<&rustls::Error> {
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The rustls error somewhere in `e`'s chain of sources (or inside an I/O error in it).
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = err.downcast_ref::<std::io::Error>().and_then(rustls_error) {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

fn tls_reason(t: &rumqttc::TlsError, addr: &BrokerAddr) -> String {
    match t {
        rumqttc::TlsError::TLS(r) => describe_rustls(r, addr),
        rumqttc::TlsError::Io(io) => match rustls_error(io) {
            Some(r) => describe_rustls(r, addr),
            None => format!("the connection closed during the handshake ({io})"),
        },
        rumqttc::TlsError::DNSName(_) => format!("{:?} is not a valid server name", addr.host),
        other => other.to_string(),
    }
}

fn describe_rustls(r: &rustls::Error, addr: &BrokerAddr) -> String {
    use rustls::{AlertDescription as A, CertificateError as C};
    match r {
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
            "the broker's certificate is not valid for {:?}; use a name or address given to \
             `provision broker` (--broker HOST:PORT)",
            addr.host
        ),
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "the broker's certificate is not signed by this directory's CA".into()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the broker's certificate has expired".into()
        }
        rustls::Error::InvalidCertificate(c) => format!("the broker's certificate is refused: {c:?}"),
        rustls::Error::AlertReceived(
            A::CertificateRevoked
            | A::CertificateExpired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateRequired
            | A::AccessDenied,
        ) => format!(
            "the broker refused the operator certificate ({r}): revoked, expired or from another CA?"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failed_endpoint_is_named_and_the_fault_kept_when_they_agree() {
        let a = BrokerAddr::parse("mq1.lan:8883").unwrap();
        let b = BrokerAddr::parse("[::1]:8884").unwrap();
        let unreachable = |addr: &BrokerAddr| Error::BrokerUnreachable {
            addr: addr.to_string(),
            reason: "connection refused".into(),
        };
        let tls = |addr: &BrokerAddr| Error::Tls {
            addr: addr.to_string(),
            reason: "bad certificate".into(),
        };
        // One endpoint: its own error, unchanged.
        let one = every_endpoint_failed(vec![(a.clone(), tls(&a))]);
        assert_eq!(one.to_string(), tls(&a).to_string());
        // Several, different faults: unreachable, each endpoint with its reason.
        let mixed = every_endpoint_failed(vec![(a.clone(), unreachable(&a)), (b.clone(), tls(&b))]);
        assert_eq!(mixed.exit_code(), 11);
        assert_eq!(
            mixed.to_string(),
            "cannot reach the broker at mq1.lan:8883, [::1]:8884: every endpoint failed \
             (mq1.lan:8883: connection refused; [::1]:8884: bad certificate)"
        );
        // Several, all TLS: typed as TLS.
        let all_tls = every_endpoint_failed(vec![(a.clone(), tls(&a)), (b.clone(), tls(&b))]);
        assert!(matches!(all_tls, Error::Tls { .. }), "{all_tls}");
        let refused = |addr: &BrokerAddr| Error::NotAuthorized {
            addr: addr.to_string(),
            operator: "_operator".into(),
            reason: "not authorized".into(),
        };
        let all_refused =
            every_endpoint_failed(vec![(a.clone(), refused(&a)), (b.clone(), refused(&b))]);
        assert_eq!(all_refused.exit_code(), 13);
        assert!(
            all_refused.to_string().contains("_operator"),
            "{all_refused}"
        );
    }

    #[test]
    fn broker_addresses_parse() {
        assert_eq!(
            BrokerAddr::parse("mqtt.home.lan:8883").unwrap(),
            BrokerAddr {
                host: "mqtt.home.lan".into(),
                port: 8883
            }
        );
        assert_eq!(BrokerAddr::parse("127.0.0.1:1").unwrap().port, 1);
        let v6 = BrokerAddr::parse("[::1]:8883").unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:8883");
        for bad in [
            "",
            "host",
            "host:",
            ":8883",
            "host:0",
            "host:70000",
            "a b:1",
            "[::1]8883",
        ] {
            assert!(BrokerAddr::parse(bad).is_err(), "{bad:?}");
        }
    }
}
