//! `provision ota push` and `provision ota status` against a real Mosquitto configured by
//! `provision broker`, with protocol peers: small devices written here from the wire-format
//! message types and the bundle `Verifier` (the real checks: target, key, signature, counter,
//! image hash). They connect with their own device certificates, so the broker's ACL applies.
//! They keep the image in memory; flash, slots and reboots are the device's business and are
//! tested with the host device in esp-client-host's OTA tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use broker_testkit::{rumqttc_client, Broker, Pki};
use provision::ota::{BuildOptions, KeyInfo};
use rumqttc::{Event, Packet, QoS};
use wire_format::ota::{self, Target, TrustedKey, Verifier, Version};
use wire_format::ota_proto::{
    self, Chunk, Offer, Phase, Reason, Request, Status, MAX_CHUNK_LEN, MAX_WINDOW,
};

fn v(s: &str) -> Version {
    s.parse().unwrap()
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

fn keygen(pki: &Pki) -> TrustedKey {
    let k: KeyInfo = provision::ota::keygen(pki.path(), None).expect("keygen");
    let mut public_key = [0u8; 32];
    for (i, b) in public_key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&k.public_key_hex[2 * i..2 * i + 2], 16).unwrap();
    }
    TrustedKey {
        key_id: k.key_id,
        public_key,
    }
}

/// A bundle of `len` pseudo-random image bytes.
fn bundle(
    pki: &Pki,
    name: &str,
    version: &str,
    counter: u32,
    len: usize,
    unsigned: bool,
) -> PathBuf {
    let image = pki.path().join(format!("{name}.bin"));
    let bytes: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&image, bytes).unwrap();
    let out = pki.path().join(format!("{name}.bundle"));
    provision::ota::build(
        pki.path(),
        &BuildOptions {
            image,
            out: out.clone(),
            version: v(version),
            target: Target::Esp8266,
            security_counter: counter,
            key_id: None,
            unsigned,
            to_sign: None,
            build_time: Some(1_700_000_000),
        },
    )
    .expect("ota build");
    out
}

fn bundle_id(path: &Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    let mut head = [0u8; ota::HEADER_LEN];
    head.copy_from_slice(&bytes[..ota::HEADER_LEN]);
    ota_proto::bundle_id(&ota::signing_message(&head))
}

#[derive(Clone)]
struct PeerConfig {
    running: Version,
    /// The slot `running` booted from; an update boots the other one.
    slot: ota_proto::Slot,
    floor: u32,
    key: TrustedKey,
    /// Stop asking for more once this many image bytes are stored (a device that lost its
    /// connection); `resume()` lets it go on.
    pause_at: Option<u32>,
    /// Answers status queries (firmware from before them does not).
    answers_queries: bool,
}

/// A download in progress on the peer.
struct Download {
    id: u32,
    version: Version,
    image_len: u32,
    verifier: Verifier<'static>,
    received: u32,
    next_request: u32,
    last_progress: Instant,
    last_percent: u8,
}

/// A protocol peer: a device that speaks docs/ota-protocol.md.
struct Peer {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    /// Image bytes received in chunks (duplicates included).
    chunk_bytes: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Peer {
    fn start(pki: &Pki, broker: &Broker, id: &str, cfg: PeerConfig) -> Peer {
        let (client, mut conn) = rumqttc_client(
            &format!("{id}-peer"),
            broker.port(),
            &pki.ca_cert(),
            &pki.device(id),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let chunk_bytes = Arc::new(AtomicU32::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (id, s, pz, cb, l) = (
            id.to_string(),
            stop.clone(),
            paused.clone(),
            chunk_bytes.clone(),
            log.clone(),
        );
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let keys: &'static [TrustedKey] = Box::leak(Box::new([cfg.key]));
            let mut cfg = cfg;
            let prefix = format!("devices/{id}/");
            let status_topic = format!("{prefix}ota/up/status");
            let request_topic = format!("{prefix}ota/up/request");
            let mut dl: Option<Download> = None;
            let mut running_id = 0u32;
            let last_said = std::cell::Cell::new(None::<Status>);
            let say = |client: &rumqttc::Client, st: Status| {
                last_said.set(Some(st));
                l.lock().unwrap().push(format!("{}", st.phase));
                let _ = client.try_publish(
                    &status_topic,
                    QoS::AtLeastOnce,
                    true,
                    st.to_bytes().to_vec(),
                );
            };
            let status = |cfg: &PeerConfig, phase: Phase, dl: Option<&Download>, id: u32| Status {
                phase,
                bundle_id: id,
                running: cfg.running,
                running_slot: cfg.slot,
                bundle_version: dl.map(|d| d.version).unwrap_or(Version {
                    major: 0,
                    minor: 0,
                    patch: 0,
                }),
                received: dl.map(|d| d.received).unwrap_or(0),
                image_len: dl.map(|d| d.image_len).unwrap_or(0),
                floor: cfg.floor,
            };
            let request_more = |client: &rumqttc::Client, d: &mut Download, paused: bool| {
                if paused {
                    return;
                }
                // At most MAX_WINDOW outstanding, in order.
                while d.next_request < d.image_len
                    && d.next_request < d.received + (MAX_WINDOW * MAX_CHUNK_LEN) as u32
                {
                    let len = (d.image_len - d.next_request).min(MAX_CHUNK_LEN as u32) as u16;
                    let r = Request {
                        bundle_id: d.id,
                        offset: d.next_request,
                        len,
                    };
                    let _ = client.try_publish(
                        &request_topic,
                        QoS::AtMostOnce,
                        false,
                        r.to_bytes().to_vec(),
                    );
                    d.next_request += u32::from(len);
                }
            };
            while !s.load(Ordering::Relaxed) {
                // The device's own request timeout: ask again from what it has.
                if let Some(d) = dl.as_mut() {
                    if !pz.load(Ordering::Relaxed)
                        && d.received < d.image_len
                        && d.last_progress.elapsed() > Duration::from_secs(2)
                    {
                        d.next_request = d.received;
                        d.last_progress = Instant::now();
                        request_more(&client, d, false);
                    }
                    if let Some(at) = cfg.pause_at {
                        if d.received >= at {
                            pz.store(true, Ordering::Relaxed);
                            cfg.pause_at = None;
                        }
                    }
                }
                let event = match conn.recv_timeout(Duration::from_millis(100)) {
                    Err(_) => continue,
                    Ok(Err(_)) => {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    Ok(Ok(e)) => e,
                };
                let p = match event {
                    Event::Incoming(Packet::ConnAck(_)) => {
                        let _ =
                            client.try_subscribe(format!("{prefix}ota/down/+"), QoS::AtLeastOnce);
                        continue;
                    }
                    Event::Incoming(Packet::SubAck(_)) => {
                        let _ = ready_tx.send(());
                        let _ = client.try_publish(
                            format!("{prefix}status"),
                            QoS::AtLeastOnce,
                            true,
                            "online",
                        );
                        continue;
                    }
                    Event::Incoming(Packet::Publish(p)) if !p.retain => p,
                    _ => continue,
                };
                if p.topic.ends_with("/ota/down/query") {
                    // The current report, live (not retained).
                    if let (true, Ok(_), Some(st)) = (
                        cfg.answers_queries,
                        ota_proto::Query::parse(&p.payload),
                        last_said.get().or(Some(status(&cfg, Phase::Idle, None, 0))),
                    ) {
                        l.lock().unwrap().push(format!("answered {}", st.phase));
                        let _ = client.try_publish(
                            &status_topic,
                            QoS::AtLeastOnce,
                            false,
                            st.to_bytes().to_vec(),
                        );
                    }
                    continue;
                }
                if p.topic.ends_with("/ota/down/offer") {
                    let Ok(offer) = Offer::parse(&p.payload) else {
                        continue;
                    };
                    let mut head = [0u8; ota::HEADER_LEN];
                    head.copy_from_slice(&offer.bundle_prefix[..ota::HEADER_LEN]);
                    let id = ota_proto::bundle_id(&ota::signing_message(&head));
                    if id == running_id {
                        say(&client, status(&cfg, Phase::Confirmed, None, id));
                        continue;
                    }
                    match dl.as_mut() {
                        Some(d) if d.id == id => {
                            // The same bundle: continue from what is stored.
                            d.next_request = d.received;
                            d.last_progress = Instant::now();
                            let st = status(
                                &cfg,
                                Phase::Downloading {
                                    percent: ota_proto::percent(d.received, d.image_len),
                                },
                                Some(d),
                                id,
                            );
                            say(&client, st);
                            request_more(&client, d, pz.load(Ordering::Relaxed));
                            continue;
                        }
                        Some(d) => {
                            let st = status(&cfg, Phase::Refused(Reason::Busy), Some(d), d.id);
                            say(&client, st);
                            continue;
                        }
                        None => {}
                    }
                    let mut verifier = Verifier::new(keys, Target::Esp8266, cfg.floor);
                    if let Err(e) = verifier.update(&offer.bundle_prefix) {
                        say(
                            &client,
                            status(&cfg, Phase::Refused(Reason::from(e)), None, id),
                        );
                        continue;
                    }
                    let header = *verifier.authenticated_header().expect("header checked");
                    let mut d = Download {
                        id,
                        version: header.version,
                        image_len: header.image_len,
                        verifier,
                        received: 0,
                        next_request: 0,
                        last_progress: Instant::now(),
                        last_percent: 0,
                    };
                    say(
                        &client,
                        status(&cfg, Phase::Downloading { percent: 0 }, Some(&d), id),
                    );
                    request_more(&client, &mut d, false);
                    dl = Some(d);
                } else if p.topic.ends_with("/ota/down/chunk") {
                    let Ok(chunk) = Chunk::parse(&p.payload) else {
                        continue;
                    };
                    cb.fetch_add(chunk.data.len() as u32, Ordering::Relaxed);
                    let Some(d) = dl.as_mut() else { continue };
                    if chunk.bundle_id != d.id || chunk.offset != d.received {
                        continue;
                    }
                    if d.verifier.update(chunk.data).is_err() {
                        continue;
                    }
                    d.received += chunk.data.len() as u32;
                    d.last_progress = Instant::now();
                    let percent = ota_proto::percent(d.received, d.image_len);
                    if percent / 10 > d.last_percent / 10 && d.received < d.image_len {
                        d.last_percent = percent;
                        let st = status(&cfg, Phase::Downloading { percent }, Some(d), d.id);
                        say(&client, st);
                    }
                    if d.received == d.image_len {
                        let d = dl.take().unwrap();
                        say(&client, status(&cfg, Phase::Verifying, Some(&d), d.id));
                        match d.verifier.finish() {
                            Ok(img) => {
                                say(&client, status(&cfg, Phase::PendingReboot, None, d.id));
                                cfg.running = img.header().version;
                                cfg.slot = match cfg.slot {
                                    ota_proto::Slot::A => ota_proto::Slot::B,
                                    ota_proto::Slot::B => ota_proto::Slot::A,
                                };
                                say(&client, status(&cfg, Phase::Trial, None, d.id));
                                cfg.floor = img.header().security_counter;
                                running_id = d.id;
                                say(&client, status(&cfg, Phase::Confirmed, None, d.id));
                            }
                            Err(e) => say(
                                &client,
                                status(&cfg, Phase::Refused(Reason::from(e)), None, d.id),
                            ),
                        }
                    } else {
                        // Pausing takes effect at the chunk that reaches `pause_at`.
                        if cfg.pause_at.is_some_and(|at| d.received >= at) {
                            pz.store(true, Ordering::Relaxed);
                            cfg.pause_at = None;
                        }
                        request_more(&client, d, pz.load(Ordering::Relaxed));
                    }
                }
            }
            let _ = client.disconnect();
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("peer subscribed");
        Peer {
            stop,
            paused,
            chunk_bytes,
            thread: Some(thread),
            log,
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join(", ")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const T: Duration = Duration::from_secs(60);

fn peer_config(key: TrustedKey) -> PeerConfig {
    PeerConfig {
        running: v("1.0.0"),
        slot: ota_proto::Slot::A,
        floor: 1,
        key,
        pause_at: None,
        answers_queries: true,
    }
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn push_updates_two_devices_in_parallel_and_status_shows_it() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let broker = Broker::start(&pki);
    let key = keygen(&pki);
    let b = bundle(&pki, "v2", "2.0.0", 2, 40 * 1024 + 17, false);
    let a = Peer::start(&pki, &broker, "dev-a", peer_config(key));
    let bb = Peer::start(&pki, &broker, "dev-b", peer_config(key));

    let out = run(
        &pki,
        &[
            "ota",
            "push",
            b.to_str().unwrap(),
            "--device",
            "dev-a",
            "--device",
            "dev-b",
            "--parallel",
            "2",
            "--json",
            "--timeout",
            "60",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        out.status.success(),
        "{err}\npeer a: {}\npeer b: {}",
        a.log(),
        bb.log()
    );
    let results = json_lines(&out);
    assert_eq!(results.len(), 2);
    for (r, id) in results.iter().zip(["dev-a", "dev-b"]) {
        assert_eq!(r["device"], id);
        assert_eq!(r["outcome"], "confirmed", "{r}");
        assert_eq!(r["running_version"], "2.0.0", "{r}");
        assert_eq!(r["running_slot"], "B", "{r}");
        assert_eq!(r["bundle_version"], "2.0.0");
        assert_eq!(r["bytes_sent"], 40 * 1024 + 17, "{r}");
        let (transfer, total) = (r["transfer_seconds"].as_f64(), r["seconds"].as_f64());
        assert!(
            transfer.is_some_and(|t| t > 0.0 && t <= total.unwrap()),
            "{r}"
        );
    }
    // Not a terminal: plain progress lines on stderr.
    assert!(err.contains("dev-a: offered"), "{err}");
    assert!(err.contains("dev-b: sent "), "{err}");
    assert!(err.contains("dev-a: confirmed 2.0.0"), "{err}");

    // ota status asks the devices; they answer live.
    let out = run(&pki, &["ota", "status", "dev-a", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s[0]["device"], "dev-a");
    assert_eq!(s[0]["answered"], true, "{s}");
    assert_eq!(s[0]["ota_from"], "live", "{s}");
    assert_eq!(s[0]["connection"], "online");
    assert_eq!(s[0]["connection_from"], "live");
    assert_eq!(s[0]["ota"]["state"], "confirmed");
    assert_eq!(s[0]["ota"]["running_version"], "2.0.0");
    assert_eq!(s[0]["ota"]["running_slot"], "B");
    assert_eq!(s[0]["ota"]["security_floor"], 2);
    let out = run(&pki, &["ota", "status"]);
    let table = text(&out.stdout);
    assert!(
        table.contains("dev-b") && table.contains("confirmed"),
        "{table}"
    );
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["DEVICE", "CONN", "RUNNING", "SLOT", "STATE", "BUNDLE", "FLOOR", "FROM"],
        "{table}"
    );
    let row_b: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("dev-b "))
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row_b,
        [
            "dev-b",
            "online",
            "2.0.0",
            "B",
            "confirmed",
            "-",
            "2",
            "live"
        ],
        "{table}"
    );

    // `watch` decodes the retained OTA report, slot included.
    let out = run(&pki, &["watch", "dev-a", "--count", "2"]);
    let seen = text(&out.stdout);
    assert!(out.status.success(), "{seen}{}", text(&out.stderr));
    let ota_line = seen
        .lines()
        .find(|l| l.contains("ota/up/status"))
        .unwrap_or_else(|| panic!("{seen}"));
    assert!(
        ota_line.contains("state=confirmed") && ota_line.contains("running_slot=B"),
        "{seen}"
    );

    // The same bundle again: the devices run it already and say so at once.
    let out = run(
        &pki,
        &["ota", "push", b.to_str().unwrap(), "--device", "dev-a"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with("dev-a confirmed 2.0.0, running 2.0.0 from slot B (0 bytes sent"),
        "{}",
        text(&out.stdout)
    );
}

/// `ota status` asks every device: one that answers is shown live; one whose firmware does not
/// answer is shown with what the broker retained, marked so; one that is not connected and never
/// reported is listed as silent. Without ids, every device in service is asked.
#[test]
fn ota_status_asks_the_devices_and_marks_retained_and_silent_ones() {
    let pki = Pki::new(&["dev-a", "dev-b", "dev-c"]);
    let broker = Broker::start(&pki);
    let key = keygen(&pki);
    let a = Peer::start(&pki, &broker, "dev-a", peer_config(key));
    // dev-b's last report, retained by the broker (published by mosquitto_pub as dev-b).
    let report = Status {
        phase: Phase::Idle,
        bundle_id: 0,
        running: v("0.9.0"),
        running_slot: ota_proto::Slot::A,
        bundle_version: v("0.0.0"),
        received: 0,
        image_len: 0,
        floor: 1,
    };
    let file = pki.path().join("dev-b-report.bin");
    std::fs::write(&file, report.to_bytes()).unwrap();
    let pubd = Command::new("mosquitto_pub")
        .args(broker_testkit::mosquitto_client_args(
            &pki,
            &broker,
            Some(&pki.device("dev-b")),
        ))
        .args(["-q", "1", "-r", "-t", "devices/dev-b/ota/up/status", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(pubd.status.success(), "{}", text(&pubd.stderr));
    // Then dev-b's old firmware connects (client id = identity: the publisher above had to be
    // gone first).
    let old = PeerConfig {
        answers_queries: false,
        running: v("0.9.0"),
        ..peer_config(key)
    };
    let b = Peer::start(&pki, &broker, "dev-b", old);

    let out = run(&pki, &["ota", "status", "--json", "--timeout", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_id = |id: &str| {
        s.as_array()
            .unwrap()
            .iter()
            .find(|d| d["device"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {s}"))
            .clone()
    };
    let da = by_id("dev-a");
    assert_eq!(
        (&da["answered"], &da["ota_from"], &da["ota"]["state"]),
        (
            &serde_json::json!(true),
            &serde_json::json!("live"),
            &serde_json::json!("idle")
        ),
        "{s}\n{}",
        a.log()
    );
    assert_eq!(da["ota"]["running_version"], "1.0.0");
    let db = by_id("dev-b");
    assert_eq!(db["answered"], false, "{s}");
    assert_eq!(db["ota_from"], "retained", "{s}");
    assert_eq!(db["ota"]["running_version"], "0.9.0", "{s}");
    assert_eq!(
        (&db["connection"], &db["connection_from"]),
        (&serde_json::json!("online"), &serde_json::json!("retained")),
        "{s}\n{}",
        text(&out.stderr)
    );
    let dc = by_id("dev-c");
    assert_eq!(dc["answered"], false, "{s}");
    assert!(dc["ota"].is_null() && dc["connection"].is_null(), "{s}");
    assert!(a.log().contains("answered idle"), "{}", a.log());
    assert!(!b.log().contains("answered"), "{}", b.log());

    let out = run(&pki, &["ota", "status", "--timeout", "1"]);
    let table = text(&out.stdout);
    let row = |id: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{table}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        row("dev-a"),
        ["dev-a", "online", "1.0.0", "A", "idle", "-", "1", "live"],
        "{table}"
    );
    assert_eq!(
        row("dev-b"),
        [
            "dev-b",
            "no-answer",
            "0.9.0",
            "A",
            "idle",
            "-",
            "1",
            "retained"
        ],
        "{table}"
    );
    assert_eq!(
        row("dev-c"),
        [
            "dev-c",
            "no-answer",
            "-",
            "-",
            "no",
            "report",
            "-",
            "-",
            "-"
        ],
        "{table}"
    );
    assert!(
        table.contains("2 of 3 did not answer within 1.0 s"),
        "{table}"
    );

    // A named device only; a revoked one is not asked; an unknown one is an error.
    let out = run(&pki, &["ota", "status", "dev-a", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s.as_array().unwrap().len(), 1, "{s}");
    let out = run(&pki, &["ota", "status", "dev-x"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("dev-x"), "{}", text(&out.stderr));
    let out = run(&pki, &["ota", "status", "dev-a", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn refusals_name_the_failed_check_and_exit_16() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let key = keygen(&pki);
    let mut cfg = peer_config(key);
    cfg.floor = 5;
    let peer = Peer::start(&pki, &broker, "dev-a", cfg);

    // Below the device's floor: the device refuses; nothing is downloaded.
    let old = bundle(&pki, "old", "0.9.0", 2, 4096, false);
    let out = run(
        &pki,
        &["ota", "push", old.to_str().unwrap(), "--device", "dev-a"],
    );
    assert_eq!(out.status.code(), Some(16), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("dev-a refused: security-counter"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("did not confirm on 1 of 1 device"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(peer.chunk_bytes.load(Ordering::Relaxed), 0);

    // An unsigned bundle: refused here before anything is sent (9)...
    let unsigned = bundle(&pki, "unsigned", "3.0.0", 9, 4096, true);
    let out = run(
        &pki,
        &[
            "ota",
            "push",
            unsigned.to_str().unwrap(),
            "--device",
            "dev-a",
        ],
    );
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("signature"),
        "{}",
        text(&out.stderr)
    );
    // ...and by the device when sent anyway.
    let out = run(
        &pki,
        &[
            "ota",
            "push",
            unsigned.to_str().unwrap(),
            "--device",
            "dev-a",
            "--no-verify",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(16));
    let r = &json_lines(&out)[0];
    assert_eq!(r["outcome"], "refused");
    assert_eq!(r["reason"], "signature");
    assert_eq!(peer.chunk_bytes.load(Ordering::Relaxed), 0);
}

#[test]
fn a_stopped_download_continues_and_another_bundle_is_refused_meanwhile() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let key = keygen(&pki);
    let len = 64 * 1024;
    let b = bundle(&pki, "v2", "2.0.0", 2, len, false);
    let other = bundle(&pki, "v3", "3.0.0", 3, 4096, false);
    let mut cfg = peer_config(key);
    cfg.pause_at = Some(len as u32 / 2);
    let peer = Peer::start(&pki, &broker, "dev-a", cfg);

    // The device stops asking at half: push gives up after its timeout (exit 16), saying where.
    let out = run(
        &pki,
        &[
            "ota",
            "push",
            b.to_str().unwrap(),
            "--device",
            "dev-a",
            "--timeout",
            "3",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(16), "{}", text(&out.stderr));
    let r = &json_lines(&out)[0];
    assert_eq!(r["outcome"], "timed-out");
    assert!(
        r["reason"].as_str().unwrap().contains("downloading 50%"),
        "{r}"
    );
    let first = r["bytes_sent"].as_u64().unwrap();
    assert!(first >= len as u64 / 2 && first < len as u64, "{r}");

    // Another bundle while that download stands: refused, naming the one in progress.
    let out = run(
        &pki,
        &["ota", "push", other.to_str().unwrap(), "--device", "dev-a"],
    );
    assert_eq!(out.status.code(), Some(16));
    let said = text(&out.stdout);
    assert!(
        said.contains("busy: the device is downloading another bundle (2.0.0, id "),
        "{said}"
    );
    assert!(said.contains(&format!("{:08x}", bundle_id(&b))), "{said}");

    // The same bundle again: the download continues where it stopped.
    peer.resume();
    let out = run(
        &pki,
        &[
            "ota",
            "push",
            b.to_str().unwrap(),
            "--device",
            "dev-a",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        peer.log()
    );
    let r = &json_lines(&out)[0];
    assert_eq!(r["outcome"], "confirmed");
    let second = r["bytes_sent"].as_u64().unwrap();
    assert!(
        second <= len as u64 - first + (MAX_WINDOW * MAX_CHUNK_LEN) as u64,
        "first {first}, second {second}"
    );
}

#[test]
fn a_device_that_never_answers_times_out() {
    let pki = Pki::new(&["dev-a"]);
    let _broker = Broker::start(&pki);
    keygen(&pki);
    let b = bundle(&pki, "v2", "2.0.0", 2, 1000, false);
    let started = Instant::now();
    let out = run(
        &pki,
        &[
            "ota",
            "push",
            b.to_str().unwrap(),
            "--device",
            "dev-a",
            "--timeout",
            "2",
        ],
    );
    assert!(started.elapsed() < T);
    assert_eq!(out.status.code(), Some(16));
    assert!(
        text(&out.stdout).contains("dev-a timed-out: no answer from the device"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bad_bundles_and_arguments_are_refused_before_connecting() {
    let pki = Pki::new(&["dev-a"]);
    keygen(&pki);
    let b = bundle(&pki, "v2", "2.0.0", 2, 1000, false);
    let bytes = std::fs::read(&b).unwrap();
    let short = pki.path().join("short.bundle");
    std::fs::write(&short, &bytes[..bytes.len() - 1]).unwrap();
    let long = pki.path().join("long.bundle");
    std::fs::write(&long, [&bytes[..], b"x"].concat()).unwrap();
    // A FIFO is refused at once, not opened and waited on for a writer.
    let fifo = pki.path().join("fifo.bundle");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let bs = b.to_str().unwrap();
    // No broker is configured: every refusal below comes before any connection attempt.
    for (args, code, says) in [
        (
            vec!["ota", "push", "/dev/zero", "--device", "dev-a"],
            3,
            "not a regular file",
        ),
        (
            vec!["ota", "push", fifo.to_str().unwrap(), "--device", "dev-a"],
            3,
            "not a regular file",
        ),
        (
            vec!["ota", "push", short.to_str().unwrap(), "--device", "dev-a"],
            9,
            "length",
        ),
        (
            vec!["ota", "push", long.to_str().unwrap(), "--device", "dev-a"],
            9,
            "length",
        ),
        (
            vec!["ota", "push", bs, "--device", "dev-a", "--device", "dev-a"],
            3,
            "named twice",
        ),
        (
            vec!["ota", "push", bs, "--device", "Dev/A"],
            3,
            "invalid device id",
        ),
        (vec!["ota", "push", bs], 2, "--device"),
        (
            vec!["ota", "push", bs, "--device", "dev-a", "--parallel", "0"],
            2,
            "parallel",
        ),
        (
            vec!["ota", "push", bs, "--device", "dev-a"],
            4,
            "provision broker",
        ),
    ] {
        let out = run(&pki, &args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn push_survives_a_broker_restart_halfway() {
    let pki = Pki::new(&["dev-a"]);
    let mut broker = Broker::start(&pki);
    let key = keygen(&pki);
    let len = 64 * 1024;
    let b = bundle(&pki, "v2", "2.0.0", 2, len, false);
    let mut cfg = peer_config(key);
    cfg.pause_at = Some(len as u32 / 2);
    let peer = Peer::start(&pki, &broker, "dev-a", cfg);
    let push = provision(&pki)
        .args([
            "ota",
            "push",
            b.to_str().unwrap(),
            "--device",
            "dev-a",
            "--json",
            "--timeout",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    while peer.chunk_bytes.load(Ordering::Relaxed) < len as u32 / 2 {
        assert!(Instant::now() < deadline, "no progress: {}", peer.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.restart();
    peer.resume();
    let out = push.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}\n{}", peer.log());
    assert!(err.contains("connection to the broker lost"), "{err}");
    assert!(err.contains("dev-a: offered again"), "{err}");
    let r = &json_lines(&out)[0];
    assert_eq!(r["outcome"], "confirmed");
    // Resumed, not restarted: at most one window sent twice.
    let sent = r["bytes_sent"].as_u64().unwrap();
    assert!(
        sent <= len as u64 + (MAX_WINDOW * MAX_CHUNK_LEN) as u64,
        "{r}"
    );
}

/// On a terminal, progress is a bar per device (indicatif), not lines. `script` (util-linux)
/// gives the command a pseudo-terminal.
#[test]
fn a_terminal_gets_a_progress_bar() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let key = keygen(&pki);
    let b = bundle(&pki, "v2", "2.0.0", 2, 256 * 1024, false);
    let _peer = Peer::start(&pki, &broker, "dev-a", peer_config(key));
    let cmd = format!(
        "{} --dir {} ota push {} --device dev-a",
        env!("CARGO_BIN_EXE_provision"),
        pki.path().display(),
        b.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "120")
        .env_remove("PROVISION_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let all = text(&out.stdout);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("dev-a [") && all.contains("=>"),
        "no bar: {all:?}"
    );
    assert!(
        !all.contains("dev-a: sent "),
        "plain lines on a terminal: {all:?}"
    );
    assert!(all.contains("dev-a confirmed 2.0.0"), "{all:?}");
}
