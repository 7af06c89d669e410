//! A real RabbitMQ 3.10 cluster on loopback, started from the files `provision broker --engine
//! rabbitmq` wrote and stopped by PID.
//!
//! Every node is its own process group (the `rabbitmq-server` script, its `beam.smp` and the
//! VM's helpers), with its own node name, distribution port, MQTT port, data and log folders under
//! one temp folder, and one shared Erlang cookie (`HOME/.erlang.cookie`). The cluster starts its
//! own `epmd` on a free port bound to 127.0.0.1 and pins Erlang distribution to 127.0.0.1, so it
//! never meets another cluster on the same machine. Ports are chosen free at run time.
//!
//! Everything is killed by process group when the [`Cluster`] is dropped, at process exit for
//! the [`shared`] one, and by a reaper process when the test process itself dies (it holds a
//! pipe from us and kills the groups it was told about when that pipe closes).
//!
//! Starting a node takes ≈ 15 s on an idle machine and much longer under load, so the nodes start
//! in parallel and a test binary shares one cluster between its tests ([`shared`]).
//!
//! `RABBITMQ_TEST_KEEP=1` keeps the nodes' folders (data, logs) after the run, and says where.

use std::fs::{self, File};
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::{free_port, signal, Pki};

/// The server and CLI scripts themselves: `/usr/sbin/rabbitmq-server` is a wrapper that switches
/// to the `rabbitmq` user and its folders when run as root.
pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
pub const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
pub const EPMD: &str = "epmd";

/// How long one node may take to start (≈ 15 s idle; 46 s was seen with the machine loaded).
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// What a node logs once it has booted.
const BOOTED: &str = "Server startup complete";
/// What it prints on its console then.
const BOOTED_CONSOLE: &str = "Starting broker... completed";

/// Where one node's generated files are and which MQTT port its config listens on.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    /// Short node name (`rabbit-1`); the Erlang node is `rabbit-1@localhost`.
    pub name: String,
    pub mqtt_port: u16,
    /// `rabbitmq.conf`, `advanced.config` and `enabled_plugins`, and `rabbitmq-env.conf` when
    /// `provision broker` wrote one (the node then reads its settings from there; the harness
    /// overrides only the distribution port, data and log folders, and epmd).
    pub conf_dir: PathBuf,
}

impl NodeFiles {
    /// The nodes of the RabbitMQ broker `provision broker --engine rabbitmq` recorded in the
    /// provisioning directory `dir`, with the folders it wrote for them (`broker/nodes/<name>`).
    pub fn generated(dir: &Path) -> Result<Vec<NodeFiles>, String> {
        let store = provision::store::Store::open_read(dir).map_err(|e| e.to_string())?;
        let registry = store.registry().map_err(|e| e.to_string())?;
        let broker = registry
            .broker
            .ok_or("no broker in the registry: run provision broker --engine rabbitmq")?;
        if broker.nodes.is_empty() {
            return Err("the registry's broker has no RabbitMQ nodes".into());
        }
        let nodes: Vec<NodeFiles> = broker
            .nodes
            .iter()
            .map(|n| NodeFiles {
                name: n.name.clone(),
                mqtt_port: n.port,
                conf_dir: dir.join("broker/nodes").join(&n.name),
            })
            .collect();
        for n in &nodes {
            for f in ["rabbitmq.conf", "advanced.config", "enabled_plugins"] {
                if !n.conf_dir.join(f).is_file() {
                    return Err(format!("{} is missing", n.conf_dir.join(f).display()));
                }
            }
        }
        Ok(nodes)
    }

    fn env_file(&self) -> Option<PathBuf> {
        Some(self.conf_dir.join("rabbitmq-env.conf")).filter(|p| p.is_file())
    }
}

struct Node {
    files: NodeFiles,
    dist_port: u16,
    amqp_port: u16,
    data: PathBuf,
    child: Option<Child>,
    /// "Server startup complete" lines in the log before the current start.
    boots_before: usize,
}

impl Node {
    fn erlang_name(&self) -> String {
        format!("{}@localhost", self.files.name)
    }
    fn log_path(&self) -> PathBuf {
        self.data
            .join("log")
            .join(format!("{}.log", self.erlang_name()))
    }
    fn stdout_path(&self) -> PathBuf {
        self.data.join("stdout.log")
    }
}

/// A running RabbitMQ cluster (or the pieces of one being started).
pub struct Cluster {
    work: Option<tempfile::TempDir>,
    home: PathBuf,
    epmd_port: u16,
    epmd: Mutex<Option<Child>>,
    nodes: Vec<Mutex<Node>>,
    reaper: Mutex<Option<(Child, ChildStdin)>>,
}

/// Fails loudly when RabbitMQ is not installed: a cluster test that cannot run is a failure.
fn require_installed() -> Result<(), String> {
    for tool in [RABBITMQ_SERVER, RABBITMQCTL] {
        if !Path::new(tool).exists() {
            return Err(format!(
                "{tool} is missing: the RabbitMQ cluster tests need Debian's rabbitmq-server \
                 (apt-get install rabbitmq-server); they cannot run without it"
            ));
        }
    }
    let epmd = Command::new(EPMD).arg("-help").output();
    if epmd.is_err() {
        return Err(
            "epmd is missing (it comes with erlang-base, a rabbitmq-server dependency)".into(),
        );
    }
    Ok(())
}

impl Cluster {
    /// Starts one node per entry of `nodes` (all at once), joins every other node to the first
    /// and waits until the cluster reports them all running. On failure every process started so
    /// far is stopped and the error carries the failing node's log tail.
    pub fn start(nodes: &[NodeFiles]) -> Result<Cluster, String> {
        require_installed()?;
        assert!(!nodes.is_empty(), "a cluster needs at least one node");
        let work = tempfile::Builder::new()
            .prefix("rabbitmq-cluster-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let home = work.path().join("home");
        fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        // One cookie for every node and for rabbitmqctl; Erlang wants it private.
        let cookie = home.join(".erlang.cookie");
        let mut secret = [0u8; 24];
        File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        let text: String = secret.iter().map(|b| (b'A' + b % 26) as char).collect();
        fs::write(&cookie, text).map_err(|e| e.to_string())?;
        fs::set_permissions(&cookie, fs::Permissions::from_mode(0o400))
            .map_err(|e| e.to_string())?;

        let reaper = spawn_reaper(work.path())?;
        let mut cluster = Cluster {
            home,
            epmd_port: 0,
            epmd: Mutex::new(None),
            nodes: Vec::new(),
            reaper: Mutex::new(Some(reaper)),
            work: Some(work),
        };
        cluster.start_epmd()?;
        for f in nodes {
            // The node runs in its data folder: a relative config path would miss.
            let mut f = f.clone();
            f.conf_dir = std::path::absolute(&f.conf_dir)
                .map_err(|e| format!("{}: {e}", f.conf_dir.display()))?;
            for name in ["rabbitmq.conf", "advanced.config", "enabled_plugins"] {
                if !f.conf_dir.join(name).is_file() {
                    return Err(format!(
                        "{} is missing: run provision broker --engine rabbitmq",
                        f.conf_dir.join(name).display()
                    ));
                }
            }
            let data = cluster.work_dir().join(&f.name);
            fs::create_dir_all(&data).map_err(|e| e.to_string())?;
            cluster.nodes.push(Mutex::new(Node {
                files: f,
                dist_port: free_port(),
                amqp_port: free_port(),
                data,
                child: None,
                boots_before: 0,
            }));
        }
        // All nodes boot at once: the slow part (the VM and the plugins) overlaps.
        let started: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cluster.nodes.len())
                .map(|i| {
                    let c = &cluster;
                    s.spawn(move || c.spawn_node(i).and_then(|()| c.wait_ready(i)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in started {
            r?;
        }
        let seed = cluster.node_name(0);
        for i in 1..cluster.nodes.len() {
            cluster.ctl_ok(i, &["stop_app"])?;
            cluster.ctl_ok(i, &["join_cluster", &seed])?;
            cluster.ctl_ok(i, &["start_app"])?;
            cluster.wait_listening(i)?;
        }
        cluster.wait_members(nodes.len())?;
        Ok(cluster)
    }

    fn work_dir(&self) -> &Path {
        self.work.as_ref().expect("cluster folder").path()
    }

    fn start_epmd(&mut self) -> Result<(), String> {
        for _ in 0..5 {
            let port = free_port();
            let log = File::create(self.work_dir().join("epmd.log")).map_err(|e| e.to_string())?;
            let child = Command::new(EPMD)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("ERL_EPMD_PORT", port.to_string())
                .env("ERL_EPMD_ADDRESS", "127.0.0.1")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot run epmd: {e}"))?;
            self.reap_later(child.id());
            *self.epmd.lock().unwrap() = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    self.epmd_port = port;
                    return Ok(());
                }
                let mut guard = self.epmd.lock().unwrap();
                if let Some(status) = guard.as_mut().unwrap().try_wait().unwrap() {
                    let pid = guard.take().unwrap().id();
                    drop(guard);
                    self.reaped(pid);
                    let log =
                        fs::read_to_string(self.work_dir().join("epmd.log")).unwrap_or_default();
                    if log.contains("in use") || log.contains("EADDRINUSE") {
                        break;
                    }
                    return Err(format!("epmd exited with {status}: {log}"));
                }
                drop(guard);
                std::thread::sleep(Duration::from_millis(20));
            }
            self.stop_epmd();
        }
        Err("epmd found no free port".into())
    }

    fn stop_epmd(&self) {
        if let Some(mut child) = self.epmd.lock().unwrap().take() {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
            self.reaped(child.id());
        }
    }

    /// The environment every node and every `rabbitmqctl` shares: the cookie's HOME, our epmd,
    /// distribution on loopback, and no system-wide `rabbitmq-env.conf`.
    fn common_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .envs(self.ctl_env());
    }

    /// Environment variables that make `rabbitmqctl` (ours, or one that `provision ... --apply`
    /// runs) reach this cluster's nodes: the cookie's HOME, the cluster's epmd, loopback-only
    /// distribution.
    pub fn ctl_env(&self) -> Vec<(String, String)> {
        let dist = "-kernel inet_dist_use_interface {127,0,0,1}";
        vec![
            ("HOME".into(), self.home.display().to_string()),
            ("ERL_EPMD_PORT".into(), self.epmd_port.to_string()),
            ("ERL_EPMD_ADDRESS".into(), "127.0.0.1".into()),
            ("RABBITMQ_CONF_ENV_FILE".into(), "/dev/null".into()),
            ("RABBITMQ_CTL_ERL_ARGS".into(), dist.into()),
        ]
    }

    fn spawn_node(&self, i: usize) -> Result<(), String> {
        let mut node = self.nodes[i].lock().unwrap();
        node.boots_before = fs::read_to_string(node.log_path())
            .unwrap_or_default()
            .matches(BOOTED)
            .count();
        let log =
            File::create(node.stdout_path()).map_err(|e| format!("{}: {e}", node.files.name))?;
        let conf = &node.files.conf_dir;
        let mut cmd = Command::new(RABBITMQ_SERVER);
        self.common_env(&mut cmd);
        if let Some(env) = node.files.env_file() {
            cmd.env("RABBITMQ_CONF_ENV_FILE", env);
        }
        cmd.env("RABBITMQ_NODENAME", node.erlang_name())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", node.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", node.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", conf.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                conf.join("advanced.config"),
            )
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                conf.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", node.data.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.data.join("log"))
            .env("RABBITMQ_PID_FILE", node.data.join("pid"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .current_dir(&node.data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own group: the script, beam.smp and the VM's helpers die together, and a
            // Ctrl-C on the test run leaves them to the reaper.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {RABBITMQ_SERVER}: {e}"))?;
        self.reap_later(child.id());
        node.child = Some(child);
        Ok(())
    }

    /// Waits until node `i` logged "Server startup complete" since it was (re)started and its
    /// MQTT port accepts connections.
    fn wait_ready(&self, i: usize) -> Result<(), String> {
        let (log_path, console, before) = {
            let n = self.nodes[i].lock().unwrap();
            (n.log_path(), n.stdout_path(), n.boots_before)
        };
        self.wait_until(i, || {
            // The console (new for every start) says it too; the log file may drop lines when
            // the node logs a lot at once (importing a thousand users), so either will do.
            fs::read_to_string(&console)
                .unwrap_or_default()
                .contains(BOOTED_CONSOLE)
                || fs::read_to_string(&log_path)
                    .unwrap_or_default()
                    .matches(BOOTED)
                    .count()
                    > before
        })
    }

    /// Waits until node `i`'s MQTT listener accepts connections (after `start_app`, which does
    /// not log a second "startup complete").
    fn wait_listening(&self, i: usize) -> Result<(), String> {
        self.wait_until(i, || true)
    }

    fn wait_until(&self, i: usize, booted: impl Fn() -> bool) -> Result<(), String> {
        let (port, name) = {
            let n = self.nodes[i].lock().unwrap();
            (n.files.mqtt_port, n.erlang_name())
        };
        let started = Instant::now();
        loop {
            if booted() && self.listening(port) {
                return Ok(());
            }
            {
                let mut n = self.nodes[i].lock().unwrap();
                if let Some(status) = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    let pid = n.child.take().unwrap().id();
                    drop(n);
                    kill_group(pid);
                    self.reaped(pid);
                    return Err(format!(
                        "RabbitMQ node {name} exited with {status} while starting\n{}",
                        self.log_tail(i, 40)
                    ));
                }
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "RabbitMQ node {name} not ready after {} s (MQTT port {port})\n{}",
                    START_TIMEOUT.as_secs(),
                    self.log_tail(i, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn listening(&self, port: u16) -> bool {
        TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(1),
        )
        .is_ok()
    }

    fn wait_members(&self, count: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.ctl(0, &["cluster_status", "--formatter", "json"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let running = self.running_in(&text);
            if out.status.success() && running == count {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the cluster has {running} of {count} nodes running\n{text}{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// How many of our nodes a `cluster_status --formatter json` output lists as running.
    fn running_in(&self, json: &str) -> usize {
        let Some(at) = json.find("\"running_nodes\"") else {
            return 0;
        };
        let rest = &json[at..];
        let list = &rest[..rest.find(']').unwrap_or(rest.len())];
        (0..self.nodes.len())
            .filter(|&i| list.contains(&format!("\"{}\"", self.node_name(i))))
            .count()
    }

    /// The Erlang node name of node `i` (`rabbit-1@localhost`).
    pub fn node_name(&self, i: usize) -> String {
        self.nodes[i].lock().unwrap().erlang_name()
    }

    /// The short name of node `i` (`rabbit-1`).
    pub fn short_name(&self, i: usize) -> String {
        self.nodes[i].lock().unwrap().files.name.clone()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The MQTT TLS port of node `i` (on 127.0.0.1).
    pub fn mqtt_port(&self, i: usize) -> u16 {
        self.nodes[i].lock().unwrap().files.mqtt_port
    }

    /// The PID of node `i`'s process group (None while it is down).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].lock().unwrap().child.as_ref().map(Child::id)
    }

    /// Runs `rabbitmqctl -n NODE ARGS` against node `i`.
    pub fn ctl(&self, i: usize, args: &[&str]) -> Output {
        let mut cmd = Command::new(RABBITMQCTL);
        self.common_env(&mut cmd);
        cmd.arg("-n")
            .arg(self.node_name(i))
            .args(args)
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {RABBITMQCTL}: {e}"))
    }

    /// [`Cluster::ctl`] that must succeed; the error names the command and the node's log tail.
    pub fn ctl_ok(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let out = self.ctl(i, args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "rabbitmqctl -n {} {} failed ({}):\n{}{}\n{}",
                self.node_name(i),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(i, 20)
            ))
        }
    }

    /// The last `lines` lines of node `i`'s log and of its console output.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let n = self.nodes[i].lock().unwrap();
        let tail = |p: &Path| {
            let text = fs::read_to_string(p).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        format!(
            "--- {} log ({}):\n{}\n--- console ({}):\n{}",
            n.erlang_name(),
            n.log_path().display(),
            tail(&n.log_path()),
            n.stdout_path().display(),
            tail(&n.stdout_path())
        )
    }

    /// Everything node `i` logged so far.
    pub fn log(&self, i: usize) -> String {
        let path = self.nodes[i].lock().unwrap().log_path();
        fs::read_to_string(path).unwrap_or_default()
    }

    /// Kills node `i` as a power cut would: SIGKILL to its whole process group (the script,
    /// beam.smp and the VM's helpers), then reaps it. [`Cluster::restart`] brings it back.
    pub fn kill(&self, i: usize) {
        let child = self.nodes[i].lock().unwrap().child.take();
        if let Some(mut child) = child {
            kill_group(child.id());
            let _ = child.wait();
            self.reaped(child.id());
        }
    }

    /// Starts node `i` again on its ports and data (it rejoins the cluster by itself) and waits
    /// until it is ready and the cluster counts it running.
    pub fn restart(&self, i: usize) -> Result<(), String> {
        self.kill(i);
        self.spawn_node(i)?;
        self.wait_ready(i)?;
        self.wait_members(self.nodes.len())
    }

    /// Stops every node and the epmd (SIGKILL to each process group: the data is thrown away),
    /// and removes the cluster's folder.
    pub fn stop(&mut self) {
        self.stop_all();
        if let Some(work) = self.work.take() {
            if std::env::var_os("RABBITMQ_TEST_KEEP").is_some() {
                eprintln!("kept {}", work.keep().display());
            } else {
                let _ = work.close();
            }
        }
    }

    fn stop_all(&self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        self.stop_epmd();
        if let Some((mut child, stdin)) = self.reaper.lock().unwrap().take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    fn reap_later(&self, pgid: u32) {
        if let Some((_, stdin)) = self.reaper.lock().unwrap().as_mut() {
            let _ = writeln!(stdin, "add {pgid}");
        }
    }

    fn reaped(&self, pgid: u32) {
        if let Some((_, stdin)) = self.reaper.lock().unwrap().as_mut() {
            let _ = writeln!(stdin, "del {pgid}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill_group(pgid: u32) {
    // SAFETY: kill(2) has no memory effects; the group is one we created (process_group(0)).
    unsafe {
        libc::kill(-(pgid as i32), libc::SIGKILL);
    }
}

/// A shell that holds the read end of a pipe from this process: told which process groups we
/// started ("add PGID") and reaped ("del PGID"), it SIGKILLs the ones left when the pipe closes,
/// i.e. when this process exits or dies, however it dies, and removes the cluster's folder
/// (unless told "keep").
fn spawn_reaper(work: &Path) -> Result<(Child, ChildStdin), String> {
    // dash's kill takes no `--`: a negative pid right after the signal is a process group.
    const SCRIPT: &str = r#"trap '' INT TERM HUP
groups=" "
keep=
while read -r op g; do
  case "$op" in
    add) groups="$groups$g " ;;
    del) groups=$(printf '%s' "$groups" | sed "s/ $g / /") ;;
    keep) keep=1 ;;
  esac
done
for g in $groups; do kill -9 "-$g" 2>/dev/null; done
if [ -z "$keep" ]; then rm -rf -- "$1"; fi
exit 0"#;
    let mut child = Command::new("sh")
        .args(["-c", SCRIPT, "reaper"])
        .arg(work)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let mut stdin = child.stdin.take().unwrap();
    if std::env::var_os("RABBITMQ_TEST_KEEP").is_some() {
        let _ = writeln!(stdin, "keep");
    }
    Ok((child, stdin))
}

/// One provisioned directory and a cluster started from it, shared by the tests of one test
/// binary (see [`shared`]).
pub struct SharedCluster {
    pub pki: Pki,
    pub cluster: Cluster,
    lock: RwLock<()>,
}

impl SharedCluster {
    /// For tests that leave the cluster as they found it: they run side by side.
    pub fn read(&self) -> RwLockReadGuard<'_, ()> {
        self.lock.read().unwrap_or_else(|e| e.into_inner())
    }

    /// For tests that kill or restart nodes: they run alone, and every node they left down is
    /// started again when the guard goes (also when the test failed).
    pub fn exclusive(&self) -> Exclusive<'_> {
        Exclusive {
            cluster: &self.cluster,
            _guard: self.lock.write().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// A test's sole use of the shared cluster (see [`SharedCluster::exclusive`]).
pub struct Exclusive<'a> {
    cluster: &'a Cluster,
    _guard: RwLockWriteGuard<'a, ()>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        for i in 0..self.cluster.len() {
            if self.cluster.pid(i).is_none() {
                if let Err(e) = self.cluster.restart(i) {
                    eprintln!(
                        "restarting {} after the test: {e}",
                        self.cluster.node_name(i)
                    );
                }
            }
        }
    }
}

static SHARED: OnceLock<Result<SharedCluster, String>> = OnceLock::new();

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(shared)) = SHARED.get() {
        shared.cluster.stop_all();
        if std::env::var_os("RABBITMQ_TEST_KEEP").is_some() {
            eprintln!(
                "kept {} and {}",
                shared.cluster.work_dir().display(),
                shared.pki.path().display()
            );
            return;
        }
        let _ = fs::remove_dir_all(shared.cluster.work_dir());
        let _ = fs::remove_dir_all(shared.pki.path());
    }
}

/// The test binary's one cluster: the first caller runs `setup` (provision a directory, start
/// the cluster); every caller gets the same cluster, or the same error. It is stopped when the
/// process exits.
pub fn shared(setup: impl FnOnce() -> Result<(Pki, Cluster), String>) -> &'static SharedCluster {
    let shared = SHARED.get_or_init(|| {
        // SAFETY: registers a plain function with no captured state.
        unsafe {
            libc::atexit(stop_shared_at_exit);
        }
        setup().map(|(pki, cluster)| SharedCluster {
            pki,
            cluster,
            lock: RwLock::new(()),
        })
    });
    match shared {
        Ok(s) => s,
        Err(e) => panic!("the RabbitMQ cluster did not start:\n{e}"),
    }
}
