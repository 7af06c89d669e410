//! Test harness shared by the workspace's integration tests: a provisioned directory in a temp
//! folder and a real Mosquitto 2.0 started from the config `provision broker` wrote, on a free
//! loopback port, stopped by PID when dropped.

use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod rabbitmq;

use provision::device_config::{self, ConfigOptions};
use provision::{broker, device, init};

/// Debian installs the broker outside a normal user's PATH.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A provisioned directory (CA, operator, devices) in a temp folder.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// `provision init` plus `provision device add` for `devices`.
    pub fn new(devices: &[&str]) -> Pki {
        Pki::with_prefix("provision-test-", devices)
    }

    /// [`Pki::new`] in a temp folder whose name starts with `prefix` (e.g. one with a space).
    pub fn with_prefix(prefix: &str, devices: &[&str]) -> Pki {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("temp dir");
        // The broker reads its files after dropping to user `mosquitto`: the tree must be
        // traversable (tempdir makes it 0700).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        init::init(
            dir.path(),
            &init::InitOptions {
                ca_name: "test CA".into(),
                days: 30,
                operator_days: 30,
                force: false,
            },
        )
        .expect("provision init");
        if !devices.is_empty() {
            let ids: Vec<String> = devices.iter().map(|s| s.to_string()).collect();
            device::add(dir.path(), &ids, 30).expect("provision device add");
        }
        Pki { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.path().join("ca/ca.crt")
    }
    pub fn operator(&self) -> Identity {
        Identity {
            cert: self.path().join("operator/operator.crt"),
            key: self.path().join("operator/operator.key"),
        }
    }
    /// `provision operator add NAME`: another operator identity. The broker allows one
    /// connection per identity, so clients that run at the same time each need their own.
    pub fn add_operator(&self, name: &str) -> Identity {
        let added = provision::operator::add(self.path(), name, 30).expect("operator add");
        Identity {
            cert: added.cert,
            key: added.key,
        }
    }
    pub fn device(&self, id: &str) -> Identity {
        Identity {
            cert: self.path().join("devices").join(id).join("device.crt"),
            key: self.path().join("devices").join(id).join("device.key"),
        }
    }

    /// `provision device config` options as tests want them by default: SSID "lab", no
    /// password, the broker `provision broker` recorded, telemetry every second, no pin, written
    /// to `<pki>/<file>`. Change fields with struct update syntax.
    pub fn config_options(&self, id: &str, file: &str) -> ConfigOptions {
        ConfigOptions {
            id: id.to_string(),
            wifi_ssid: "lab".into(),
            wifi_password_file: None,
            brokers: Vec::new(),
            broker_host: None,
            broker_port: None,
            telemetry_period_s: 1,
            pin_broker: false,
            output: self.path().join(file),
        }
    }

    /// Runs `provision device config` and returns the blob's path.
    pub fn write_config(&self, opts: &ConfigOptions) -> PathBuf {
        device_config::write_config(self.path(), opts).expect("provision device config");
        opts.output.clone()
    }
}

/// A client certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running Mosquitto using `<pki>/broker/mosquitto.conf`.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    conf: PathBuf,
    log: PathBuf,
}

impl Broker {
    /// Runs `provision broker` for localhost/127.0.0.1 on a free port and starts Mosquitto with
    /// the config it wrote. Retries with another port if the chosen one was taken meanwhile.
    pub fn start(pki: &Pki) -> Broker {
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            broker::configure(
                pki.path(),
                &broker::BrokerOptions {
                    hosts: vec!["localhost".into()],
                    ips: vec!["127.0.0.1".parse().unwrap()],
                    port,
                    bind: Some("127.0.0.1".into()),
                    install_dir: None,
                    days: 30,
                    platform: provision::registry::Platform::Plain,
                    max_packet_size: None,
                    existing_config: None,
                    engine: provision::registry::Engine::Mosquitto,
                    nodes: Vec::new(),
                    node_count: None,
                },
            )
            .expect("provision broker");
            let mut b = Broker {
                child: None,
                port,
                conf: pki.path().join("broker/mosquitto.conf"),
                log: pki.path().join("mosquitto.log"),
            };
            match b.spawn() {
                Ok(()) => return b,
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => panic!("mosquitto did not start:\n{log}"),
            }
        }
        panic!("mosquitto found no free port:\n{last_log}");
    }

    /// Starts Mosquitto from any config file `conf` that listens on `port` (e.g. a Debian-style
    /// main config that includes the drop-in `provision broker` wrote), logging to `log`.
    /// Returns the log when it does not start.
    pub fn start_config(conf: PathBuf, port: u16, log: PathBuf) -> Result<Broker, String> {
        let mut b = Broker {
            child: None,
            port,
            conf,
            log,
        };
        b.spawn()?;
        Ok(b)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = File::create(&self.log).expect("log file");
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {MOSQUITTO} (apt-get install mosquitto): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.log();
            if text.contains(" running") {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited with {status}\n{text}"));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("not running after 10 s\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    /// Everything the broker logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGHUP and waits until the broker says it reloaded.
    pub fn reload(&self) {
        let before = self.log().matches("Reloading config").count();
        signal(self.pid(), libc::SIGHUP);
        self.wait_for_reload(before);
    }

    /// Waits until the log shows one more "Reloading config" than `before` (for reloads that
    /// someone else, e.g. `provision device revoke --reload-pid`, triggered).
    pub fn wait_for_reload(&self, before: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log().matches("Reloading config").count() <= before {
            assert!(
                Instant::now() < deadline,
                "broker did not reload:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker (SIGTERM to its PID, then waits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Kills the broker as a power cut or the OOM killer would (SIGKILL to its PID, then
    /// reaps it): no orderly close of its connections. `restart` starts it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Stops and starts the broker again on the same port and config.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(log) => panic!("mosquitto did not restart:\n{log}"),
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; the pid is our own child's.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// A rustls client config that trusts only `ca` and presents `identity` (ring provider only).
pub fn rustls_config(ca: &Path, identity: &Identity, tls13: bool) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&identity.cert)
        .expect("cert file")
        .map(|c| c.expect("cert PEM"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&identity.key).expect("key PEM");
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS12]
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client cert");
    Arc::new(config)
}

/// A synchronous rumqttc client over rustls to the broker on 127.0.0.1.
pub fn rumqttc_client(
    client_id: &str,
    port: u16,
    ca: &Path,
    identity: &Identity,
) -> (rumqttc::Client, rumqttc::Connection) {
    let mut opts = rumqttc::MqttOptions::new(client_id, "localhost", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(rustls_config(ca, identity, false)),
    ));
    rumqttc::Client::new(opts, 16)
}

/// Arguments that make `mosquitto_pub`/`mosquitto_sub` connect to `broker` as `identity`.
pub fn mosquitto_client_args(
    pki: &Pki,
    broker: &Broker,
    identity: Option<&Identity>,
) -> Vec<String> {
    let mut args = vec![
        "-h".to_string(),
        "localhost".into(),
        "-p".into(),
        broker.port().to_string(),
        "--cafile".into(),
        pki.ca_cert().display().to_string(),
    ];
    if let Some(id) = identity {
        args.extend([
            "--cert".into(),
            id.cert.display().to_string(),
            "--key".into(),
            id.key.display().to_string(),
        ]);
    }
    args
}

/// A `mosquitto_sub` (a client no one here wrote) whose output lines arrive on a channel.
pub struct MosquittoSub {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl MosquittoSub {
    /// Runs `mosquitto_sub -d -v` with `args` (connection arguments first, e.g. from
    /// [`mosquitto_client_args`], then `-t TOPIC`, `-q 1`, ...) and returns once the broker
    /// acknowledged the subscription.
    pub fn start(args: &[String], broker_log: impl Fn() -> String) -> MosquittoSub {
        use std::io::BufRead;
        // stdbuf: mosquitto_sub block-buffers stdout into a pipe; we need each line as it comes.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-d", "-v"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub (apt-get install mosquitto-clients)");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let sub = MosquittoSub { child, lines };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.lines.recv_timeout(left) {
                Ok(l) if l.contains("received SUBACK") => return sub,
                Ok(_) => {}
                Err(_) => panic!("mosquitto_sub never got its SUBACK:\n{}", broker_log()),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the subscriber: a paused operator is a slow one.
    pub fn pause(&self, paused: bool) {
        signal(
            self.child.id(),
            if paused { libc::SIGSTOP } else { libc::SIGCONT },
        );
    }

    /// Message lines ("topic payload") received within `wait` (the debug lines are skipped).
    pub fn messages(&self, wait: Duration) -> Vec<String> {
        self.messages_until(wait, usize::MAX)
    }

    /// Like [`MosquittoSub::messages`], but returns as soon as `count` messages arrived.
    pub fn messages_until(&self, wait: Duration, count: usize) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while got.len() < count {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    if !line.starts_with("Client ") && !line.starts_with("Subscribed") {
                        got.push(line);
                    }
                }
                Err(_) => break,
            }
        }
        got
    }
}

impl Drop for MosquittoSub {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
