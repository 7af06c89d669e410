//! The LX106 build of the TLS library, proven against the same broker: a session the host build
//! had with a real Mosquitto (fixed seed, fixed time floor) is replayed on the LX106 core in
//! QEMU, where the chip's build must produce the very same bytes, accept the broker's recorded
//! flight and decrypt its CONNACK, on its own stack (the chip's esptls_call_on_stack), whose
//! use it reports. Needs gcc-xtensa-lx106, picolibc-xtensa-lx106-elf and qemu-system-misc.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use esp8266_tls::Session;
use esp_client::mqtt::{Connect, Packet};

fn c_array(out: &mut String, name: &str, data: &[u8]) {
    writeln!(
        out,
        "static const unsigned char {name}[{}] = {{",
        data.len().max(1)
    )
    .unwrap();
    for chunk in data.chunks(16) {
        out.push('\t');
        for b in chunk {
            write!(out, "0x{b:02x}, ").unwrap();
        }
        out.push('\n');
    }
    out.push_str("};\n");
}

/// Records one session: handshake, CONNECT, CONNACK. Returns transcript.h's text.
fn record(setup: &Setup, m: &Material, seed: &[u8; 32]) -> String {
    let tls = m.tls();
    let sock = std::net::TcpStream::connect(("127.0.0.1", setup.broker.port())).unwrap();
    let mut s = Session::start(sock, "localhost", &tls, seed).expect("start");
    s.record();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.poll_handshake(&tls).is_none() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(s.established(), "handshake failed: {:?}", s.fault());
    let mut connect = [0u8; 64];
    let n = Connect {
        client_id: DEVICE,
        keep_alive_s: 30,
        clean_session: true,
        will: None,
    }
    .emit(&mut connect)
    .unwrap();
    write_all(&mut s, m, &connect[..n]);
    let connack = read_packet(&mut s, m, Duration::from_secs(10)).expect("CONNACK");
    assert!(matches!(
        Packet::parse(&connack).unwrap(),
        Packet::ConnAck { code: 0, .. }
    ));
    let (input, output) = s.recorded().unwrap();

    let mut h = String::from("/* Written by esp8266-tls's lx106 test: one recorded session. */\n");
    writeln!(h, "static const char T_HOST[] = \"localhost\";").unwrap();
    writeln!(h, "static const uint64_t T_FLOOR = {}u;", m.floor).unwrap();
    c_array(&mut h, "T_SEED", seed);
    c_array(&mut h, "T_CA", &m.ca);
    c_array(&mut h, "T_CERT", &m.cert);
    c_array(&mut h, "T_KEY", &m.key);
    c_array(&mut h, "T_IN", input);
    c_array(&mut h, "T_OUT", output);
    c_array(&mut h, "T_APP_OUT", &connect[..n]);
    c_array(&mut h, "T_APP_IN", &connack);
    h
}

fn run_replay(dir: &Path, transcript: &str) -> (bool, String) {
    let header = dir.join("transcript.h");
    std::fs::write(&header, transcript).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../qemu/run-replay.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&header)
        .arg(dir.join("lx106"))
        .output()
        .expect("run bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "the LX106 replay could not be built or run (needs gcc-xtensa-lx106, \
         picolibc-xtensa-lx106-elf, qemu-system-misc):\n{text}"
    );
    (out.status.success(), text)
}

#[test]
fn the_lx106_build_replays_a_broker_session_bit_exactly() {
    let setup = Setup::new();
    let m = Material::of(&setup.pki, DEVICE);
    let seed = [0x5au8; 32];
    let transcript = record(&setup, &m, &seed);
    let dir = tempfile::tempdir().unwrap();
    if let Ok(keep) = std::env::var("ESPTLS_REPLAY_DIR") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(Path::new(&keep).join("transcript.h"), &transcript).unwrap();
    }

    let (ok, text) = run_replay(dir.path(), &transcript);
    assert!(ok, "replay on the LX106 failed:\n{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("replay ok"))
        .unwrap_or_else(|| panic!("no result line:\n{text}"));
    eprintln!("{line}");
    let used: usize = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(used > 1024, "the stack measurement saw nothing: {line}");
    let field = |name: &str| -> usize {
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words.iter().position(|w| *w == name).unwrap();
        words[i + 1].parse().unwrap()
    };
    // CPU budget (docs/esp8266-tls.md, "Time"): the longest single call into the engine is the
    // longest the chip stays in one SDK callback.
    let longest = field("kinsns_longest_call");
    let total = field("kinsns_total");
    assert!(longest > 1000, "the instruction count saw nothing: {line}");
    assert!(
        longest <= 60_000,
        "one engine call took {longest}k instructions, the budget is 60,000k"
    );
    eprintln!("LX106 instructions: session {total}k, longest engine call {longest}k");
    memory_gate(&dir.path().join("lx106/sizes.txt"), used);

    // The replay can fail: another seed gives another ClientHello, which the recording refutes.
    let other_seed = transcript.replacen("0x5a, ", "0x5b, ", 1);
    let (ok, text) = run_replay(dir.path(), &other_seed);
    assert!(
        !ok,
        "a different seed must not reproduce the session:\n{text}"
    );
    assert!(text.contains("replay FAILED sent bytes differ"), "{text}");
}

fn number(s: &str) -> usize {
    s.trim()
        .trim_matches('*')
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// The figure in the row of docs/esp8266-tls.md's table whose first cell starts with `label`.
fn doc_figure(doc: &str, label: &str) -> usize {
    let row = doc
        .lines()
        .find(|l| l.starts_with(&format!("| {label}")))
        .unwrap_or_else(|| panic!("docs/esp8266-tls.md has no row {label:?}"));
    number(row.split('|').nth(2).unwrap())
}

fn sizes_figure(sizes: &str, key: &str) -> usize {
    let line = sizes
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("sizes.txt has no {key:?}:\n{sizes}"));
    number(line.rsplit(' ').next().unwrap())
}

/// docs/esp8266-tls.md, "Memory gate": its figures are the measured ones, and the gate holds.
fn memory_gate(sizes_path: &Path, stack_measured: usize) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../..");
    let doc = std::fs::read_to_string(root.join("docs/esp8266-tls.md")).unwrap();
    let sizes = std::fs::read_to_string(sizes_path).unwrap();
    let header =
        std::fs::read_to_string(root.join("esp-client/esp8266/tls/espconn_tls.h")).unwrap();
    let stack_len = number(
        header
            .lines()
            .find_map(|l| l.strip_prefix("#define ESPTLS_STACK_LEN "))
            .expect("ESPTLS_STACK_LEN"),
    );

    let session = sizes_figure(&sizes, "sizeof esptls ");
    let peak = sizes_figure(&sizes, "sizeof espconn_tls ");
    assert_eq!(
        doc_figure(&doc, "TLS session"),
        session,
        "docs vs LX106 sizeof(struct esptls)"
    );
    assert_eq!(
        doc_figure(&doc, "peak TLS memory"),
        peak,
        "docs vs LX106 sizeof(struct espconn_tls)"
    );
    assert_eq!(doc_figure(&doc, "TLS engine stack, allocated"), stack_len);
    let documented = doc_figure(&doc, "TLS engine stack, measured");
    assert!(
        documented.abs_diff(stack_measured) <= 64,
        "docs say the engine stack is {documented} B, the LX106 replay measured {stack_measured} B"
    );
    assert!(
        stack_measured + 512 <= stack_len,
        "the engine used {stack_measured} B of its {stack_len} B stack: less than 512 B left"
    );
    assert!(
        peak >= session + stack_len,
        "the peak must include the session and the stack"
    );

    // The reserve is at least the sum of its parts.
    let reserve = doc_figure(&doc, "WiFi/lwIP reserve");
    let parts_start = doc.find("| part | bytes |").expect("reserve table");
    let parts: usize = doc[parts_start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|') && !l.starts_with("| **total"))
        .map(|l| number(l.split('|').nth(2).unwrap()))
        .sum();
    assert!(
        reserve >= parts,
        "reserve {reserve} B < its parts {parts} B"
    );

    // Heap free at boot: the firmware's size gate guarantees this much.
    let heap = doc_figure(&doc, "heap free at boot, guaranteed");
    let build = std::fs::read_to_string(root.join("esp-client/esp8266/build.sh")).unwrap();
    assert!(
        build.contains(&format!("minimum {heap}")),
        "the firmware's size gate no longer guarantees {heap} B of heap (esp-client/esp8266/build.sh)"
    );
    let margin = doc_figure(&doc, "margin the rule keeps free");
    assert_eq!(margin, 4096);
    eprintln!(
        "memory gate: peak TLS memory {peak} + reserve {reserve} = {} <= heap free at boot {heap} - {margin} = {}",
        peak + reserve,
        heap - margin
    );
    assert!(
        peak + reserve <= heap - margin,
        "memory gate failed: {peak} + {reserve} > {heap} - {margin}"
    );
    let line = format!(
        "{} ≤ {}",
        fmt_thousands(peak + reserve),
        fmt_thousands(heap - margin)
    );
    assert!(
        doc.contains(&line),
        "docs/esp8266-tls.md's gate line should read {line:?}"
    );
    if let Ok(actual) = std::fs::read_to_string(root.join("target/esp8266/sizes.txt")) {
        if let Some(l) = actual
            .lines()
            .find(|l| l.starts_with("heap_free_at_boot_bytes"))
        {
            eprintln!("(the last `just firmware` build: {l})");
        }
    }
}

fn fmt_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
