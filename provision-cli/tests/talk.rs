//! `provision watch` and `provision cmd` against a real Mosquitto (configured by `provision
//! broker`) and the host device: the esp-client core with rustls and the in-process AVR, run on
//! a thread of this test (the same `run` loop the `esp-client-host` binary drives).
//!
//! The command table of docs/topics.md is run against the device, so the doc's replies are what
//! the device answers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use broker_testkit::{Broker, Pki};
use esp_client::machine::Device;
use esp_client_host::board::HostBoard;
use esp_client_host::flash::FileFlash;
use esp_client_host::tls::TlsTransport;

const T: Duration = Duration::from_secs(20);

/// The host device on a thread; stopped (orderly: `offline`, DISCONNECT) when dropped.
struct HostDevice {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<esp_client_host::Exit>>,
}

impl HostDevice {
    fn start(flash: &Path) -> HostDevice {
        let flash = FileFlash::open(flash).expect("flash image");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let tls = TlsTransport::new(false);
            let mut board = HostBoard::new(flash, tls, true);
            let mut s = esp_client_host::settings();
            s.connect_timeout_ms = 3_000;
            s.keep_alive_s = 5;
            s.backoff.cap_ms = 1500;
            let mut device = Box::new(Device::new(s));
            esp_client_host::run(&mut device, &mut board, &stop2)
        });
        HostDevice {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn provision(pki: &Pki) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_provision"));
    c.arg("--dir").arg(pki.path()).env_remove("PROVISION_DIR");
    c.env_remove("PROVISION_OPERATOR")
        .env_remove("PROVISION_BROKER");
    c.stdin(Stdio::null());
    c
}

fn run(pki: &Pki, args: &[&str]) -> Output {
    provision(pki).args(args).output().expect("provision runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A running `provision watch`; its stdout lines arrive on a channel.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    /// stderr after the first line.
    errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watch {
    fn start(pki: &Pki, args: &[&str]) -> Watch {
        let mut child = provision(pki)
            .arg("watch")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("provision watch");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        // It says on stderr when it is subscribed.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        assert!(first.starts_with("watching on "), "{first}");
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = errors.clone();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        Watch {
            child,
            lines,
            errors,
        }
    }

    /// The next line containing every one of `needles`.
    fn expect(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + T;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if needles.iter().all(|n| l.contains(n)) => return l,
                Ok(l) => seen.push(l),
                Err(_) => panic!("no line with {needles:?}; saw:\n{}", seen.join("\n")),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn device_flash(pki: &Pki, id: &str) -> PathBuf {
    pki.write_config(&pki.config_options(id, &format!("{id}.flash")))
}

/// (name, example arguments, documented reply) from docs/topics.md's command table.
fn documented_commands() -> Vec<(String, Vec<String>, serde_json::Value)> {
    let doc = include_str!("../../docs/topics.md");
    let section = doc.split("The commands the device knows:").nth(1).unwrap();
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let name = cells[0].trim_start_matches("| ").trim_matches('`');
            let reply = serde_json::from_str(cells[2].trim_matches('`')).expect(row);
            let example = cells[3].trim_end_matches(" |").trim_matches('`');
            let args = example
                .split_whitespace()
                .skip(4)
                .map(String::from)
                .collect();
            (name.to_string(), args, reply)
        })
        .collect()
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn watch_follows_and_cmd_runs_every_documented_command() {
    let pki = Pki::new(&["dev-1"]);
    // One identity per tool running at the same time: the broker ties the client id to it.
    for name in ["_watch", "_watch-json"] {
        provision::operator::add(pki.path(), name, 30).unwrap();
    }
    let broker = Broker::start(&pki);
    let watch = Watch::start(&pki, &["dev-1", "--operator", "_watch"]);
    let json_watch = Watch::start(&pki, &["--json", "--operator", "_watch-json"]);
    let _dev = HostDevice::start(&device_flash(&pki, "dev-1"));

    watch.expect(&["dev-1 status online"]);
    let line = watch.expect(&["dev-1 telemetry seq="]);
    assert!(
        line.contains(" ports.b=0 ") && line.contains(" adc=["),
        "{line}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&json_watch.expect(&["\"topic\":\"telemetry\""])).unwrap();
    assert_eq!(j["device"], "dev-1");
    assert!(j["payload"]["seq"].as_u64().is_some(), "{j}");

    // Every command of docs/topics.md, with its example arguments; the reply has the
    // documented fields. reboot last: the device comes back online.
    let mut commands = documented_commands();
    commands.sort_by_key(|(n, _, _)| n == "reboot");
    assert_eq!(commands.len(), 3);
    for (name, args, documented) in &commands {
        let mut argv = vec!["cmd", "dev-1", name.as_str()];
        argv.extend(args.iter().map(String::as_str));
        argv.push("--json");
        let out = run(&pki, &argv);
        assert!(out.status.success(), "{argv:?}: {}", text(&out.stderr));
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(
            keys(&reply),
            keys(documented),
            "{name}: {reply} vs the doc's {documented}"
        );
        watch.expect(&[&format!("dev-1 reply/{name} "), "ok=true"]);
    }
    watch.expect(&["dev-1 status offline"]);
    watch.expect(&["dev-1 status online"]);

    // Readable output, and the pin really changed on the AVR (telemetry shows PC1 high).
    let out = run(&pki, &["cmd", "dev-1", "set-pin", "pin=9", "level=1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "dev-1 set-pin: ok pin=9 level=1\n");
    watch.expect(&["dev-1 telemetry", "ports.c=2"]);

    // Refusals: exit 14, the device's reason on stderr, the reply on stdout with --json.
    let out = run(&pki, &["cmd", "dev-1", "dance"]);
    assert_eq!(out.status.code(), Some(15), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("refused cmd/dance: unknown command \"dance\""),
        "{err}"
    );
    let out = run(
        &pki,
        &["cmd", "dev-1", "set-pin", "pin=300", "level=1", "--json"],
    );
    assert_eq!(out.status.code(), Some(15));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"], "bad value for pin=");
    let out = run(&pki, &["cmd", "dev-1", "set-pin", "pin=2", "level=1"]);
    assert_eq!(out.status.code(), Some(15));
    assert!(
        text(&out.stderr).contains("the pin is not free"),
        "{}",
        text(&out.stderr)
    );

    // The broker address given by IP (in the certificate's IP SANs) works too.
    let addr = format!("127.0.0.1:{}", broker.port());
    let out = run(
        &pki,
        &["cmd", "dev-1", "read-adc", "channel=1", "--broker", &addr],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("dev-1 read-adc: ok channel=1 value="));
    drop(broker);
}

#[test]
fn cmd_to_a_silent_device_times_out_with_a_hint() {
    let pki = Pki::new(&["dev-1", "dev-2"]);
    let _broker = Broker::start(&pki);
    let _dev = HostDevice::start(&device_flash(&pki, "dev-1"));
    let out = run(&pki, &["cmd", "dev-2", "reboot", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(14));
    let err = text(&out.stderr);
    assert!(
        err.contains("no answer from device \"dev-2\" within 1 s"),
        "{err}"
    );
    assert!(err.contains("never reported a status"), "{err}");

    // A revoked device cannot connect: cmd says so at once; watch may still follow its status.
    provision::device::revoke(pki.path(), "dev-2").unwrap();
    let out = run(&pki, &["cmd", "dev-2", "reboot"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("\"dev-2\" is revoked"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&pki, &["watch", "dev-2", "--count", "0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn connection_failures_are_typed() {
    let pki = Pki::new(&["dev-1"]);
    // No broker configured yet.
    let out = run(&pki, &["watch"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("provision broker"),
        "{}",
        text(&out.stderr)
    );

    let broker = Broker::start(&pki);
    // Nothing listens there: unreachable, exit 10.
    let closed = format!("127.0.0.1:{}", broker_testkit::free_port());
    let out = run(&pki, &["cmd", "dev-1", "reboot", "--broker", &closed]);
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot reach the broker at 127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );

    // Bad names and addresses are refused before any connection.
    for (args, code) in [
        (vec!["watch", "--broker", "localhost"], 3),
        (vec!["watch", "--operator", "../ca/ca"], 3),
        (vec!["watch", "--operator", "_nobody"], 4),
        (vec!["watch", "dev/#"], 3),
        (vec!["cmd", "dev-1", "set-pin", "pin"], 3),
        (vec!["cmd", "dev-1", "set-pin", "req=1"], 3),
        (vec!["cmd", "+", "reboot"], 3),
        (vec!["cmd", "nobody", "reboot"], 4),
        (vec!["watch", "dev-1", "nobody"], 4),
    ] {
        let out = run(&pki, &args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // An operator certificate from another CA: the broker refuses it in the handshake (11).
    let other = Pki::new(&[]);
    let op = pki.path().join("operator");
    std::fs::copy(other.operator().cert, op.join("_stranger.crt")).unwrap();
    std::fs::copy(other.operator().key, op.join("_stranger.key")).unwrap();
    let out = run(&pki, &["watch", "--operator", "_stranger"]);
    assert_eq!(out.status.code(), Some(12), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused the operator certificate"),
        "{}",
        text(&out.stderr)
    );

    // A broker whose certificate is not for the address used (the same CA signed it, for
    // another name): refused by our side, exit 11, naming the host. An independent TLS server
    // (openssl s_server) plays that broker.
    let copy = Pki::new(&[]);
    for f in ["ca/ca.crt", "ca/ca.key"] {
        std::fs::copy(pki.path().join(f), copy.path().join(f)).unwrap();
    }
    std::fs::remove_dir_all(copy.path().join("registry")).unwrap();
    std::fs::create_dir(copy.path().join("registry")).unwrap();
    for f in std::fs::read_dir(pki.path().join("registry")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy.path().join("registry").join(f.file_name())).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--dir")
        .arg(copy.path())
        .args(["broker", "--host", "elsewhere.example", "--ip", "10.9.9.9"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let port = broker_testkit::free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(copy.path().join("broker/server.crt"))
        .arg("-key")
        .arg(copy.path().join("broker/server.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run(&pki, &["watch", "--broker", &addr]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(12), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not valid for \"127.0.0.1\""),
        "{}",
        text(&out.stderr)
    );
    drop(broker);
}

/// The exit-code table is one text: `provision --help` and the README say the same, and every
/// code is in it.
#[test]
fn exit_codes_in_help_and_readme_agree() {
    let help = Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--help")
        .output()
        .unwrap();
    let para = |t: &str| -> String {
        let start = t.find("Exit codes: 0 ok").expect("an exit code table");
        let rest = &t[start..];
        // The table is the first sentence; the README writes code in backticks.
        let end = rest.find(".").expect("a full stop");
        rest[..end]
            .replace('`', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let readme = include_str!("../../README.md");
    let help = para(&text(&help.stdout));
    assert_eq!(help, para(readme));
    for code in 2..=16 {
        assert!(
            help.contains(&format!(" {code} ")),
            "{code} missing: {help}"
        );
    }
}

/// Many devices: the filters go out in several SUBSCRIBE packets (the broker refuses packets
/// over 2 KiB), or with `+` above 16 devices; either way only the named devices are shown.
#[test]
fn watch_follows_many_devices_through_a_broker_with_small_packets() {
    let ids: Vec<String> = (0..20)
        .map(|i| format!("{i:02}-{}", "long-device-name-".repeat(3)))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let pki = Pki::new(&refs);
    let broker = Broker::start(&pki);
    let publish = |id: &str, msg: &str| {
        let out = Command::new("mosquitto_pub")
            .args(broker_testkit::mosquitto_client_args(
                &pki,
                &broker,
                Some(&pki.device(id)),
            ))
            .args([
                "-q",
                "1",
                "-t",
                &format!("devices/{id}/telemetry"),
                "-m",
                msg,
            ])
            .output()
            .expect("mosquitto_pub");
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    // 16 named devices: 64 filters of ~70 bytes, more than one packet can carry.
    let mut args: Vec<&str> = refs[..16].to_vec();
    args.push("--json");
    let watch = Watch::start(&pki, &args);
    publish(refs[17], r#"{"seq":99}"#);
    publish(refs[15], r#"{"seq":15}"#);
    let line = watch.expect(&["\"seq\":"]);
    assert!(
        line.contains(refs[15]) && line.contains("\"seq\":15"),
        "{line}"
    );
    drop(watch);

    // 18 named devices: one `+` filter per topic, the others' messages dropped here.
    let mut args: Vec<&str> = refs[..18].to_vec();
    args.push("--json");
    let watch = Watch::start(&pki, &args);
    publish(refs[19], r#"{"seq":19}"#);
    publish(refs[17], r#"{"seq":17}"#);
    let line = watch.expect(&["\"seq\":"]);
    assert!(
        line.contains(refs[17]) && line.contains("\"seq\":17"),
        "{line}"
    );
}

/// The broker ties the client id to the identity: a second tool connected as the same operator
/// closes the first one's session. The first says what probably happened.
#[test]
fn two_tools_sharing_an_identity_are_told_why_they_lose_the_connection() {
    let pki = Pki::new(&["dev-1"]);
    let _broker = Broker::start(&pki);
    let first = Watch::start(&pki, &[]);
    let _second = Watch::start(&pki, &[]);
    let deadline = Instant::now() + T;
    loop {
        let errors = first.errors.lock().unwrap().join("\n");
        if errors.contains("if another tool is connected as _operator")
            && errors.contains("provision operator add")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{errors}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
