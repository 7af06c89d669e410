//! The host device (the real `esp-client-host` binary) on a real three-node RabbitMQ cluster
//! (started from the files `provision broker --engine rabbitmq` wrote, on loopback, stopped by
//! the test): its config names the three nodes, node 3 first, and asks for a persistent session
//! (as `provision device config` writes it for RabbitMQ). Node 3 is killed (SIGKILL) under it; the
//! device comes online on another node, its replicated session with it, and its telemetry goes
//! on. A QoS 1
//! `mosquitto_sub` (a client no one here wrote) on node 1 sees every sample the device sent,
//! none missing, none dropped by the device.
//!
//! The `provision` binary is found next to `esp-client-host` (the same target directory);
//! `cargo test --workspace` builds both.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_testkit::rabbitmq::{Cluster, NodeFiles};
use broker_testkit::{free_port, MosquittoSub, Pki};
use provision::device_config::ConfigOptions;
use support::DeviceProc;

const ID: &str = "dev-1";

fn provision_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_esp-client-host")).with_file_name("provision");
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo build -p provision-cli --bin provision`)",
        p.display()
    );
    p
}

/// `seq` and `dropped` of each telemetry line ("topic {json}").
fn samples(lines: &[String]) -> Vec<(u64, u64)> {
    let topic = format!("devices/{ID}/telemetry ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&topic))
        .map(|json| {
            let v: serde_json::Value = serde_json::from_str(json).expect("telemetry is JSON");
            (v["seq"].as_u64().unwrap(), v["dropped"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn the_devices_node_is_killed_and_it_goes_on_on_another_node_losing_nothing() {
    let pki = Pki::new(&[ID]);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut cmd = Command::new(provision_bin());
    cmd.arg("--dir").arg(pki.path()).args([
        "broker",
        "--engine",
        "rabbitmq",
        "--host",
        "localhost",
    ]);
    for (i, p) in ports.iter().enumerate() {
        cmd.args(["--node", &format!("rabbit-{}=127.0.0.1:{p}", i + 1)]);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = Cluster::start(&NodeFiles::generated(pki.path()).unwrap())
        .unwrap_or_else(|e| panic!("the RabbitMQ cluster did not start:\n{e}"));

    // The operator watches on node 1, QoS 1.
    let sub = MosquittoSub::start(
        &[
            "-h",
            "localhost",
            "-p",
            &ports[0].to_string(),
            "--cafile",
            &pki.ca_cert().display().to_string(),
            "--cert",
            &pki.operator().cert.display().to_string(),
            "--key",
            &pki.operator().key.display().to_string(),
            "-i",
            "_operator-watch",
            "-q",
            "1",
            "-t",
            &format!("devices/{ID}/telemetry"),
        ]
        .map(String::from),
        || cluster.log_tail(0, 30),
    );
    // The device knows every node, node 3 first.
    let flash = pki.write_config(&ConfigOptions {
        brokers: [ports[2], ports[0], ports[1]]
            .iter()
            .map(|p| ("127.0.0.1".to_string(), *p))
            .collect(),
        ..pki.config_options(ID, "dev.flash")
    });
    let dev = DeviceProc::start(&flash, &[]);
    dev.expect(
        &format!("broker 127.0.0.1:{} (endpoint 1 of 3)", ports[2]),
        Duration::from_secs(10),
    );
    dev.expect("=> Online", Duration::from_secs(20));
    let before = sub.messages_until(Duration::from_secs(15), 3);
    assert_eq!(before.len(), 3, "telemetry through node 3: {before:?}");

    let killed = Instant::now();
    cluster.kill(2);
    dev.expect("=> Online", Duration::from_secs(60));
    let failover = killed.elapsed();
    let mut seen = samples(&before);
    let last_before = seen.iter().map(|s| s.0).max().unwrap();
    let after = samples(&sub.messages_until(Duration::from_secs(20), 5));
    assert!(
        after.iter().any(|s| s.0 > last_before + 2),
        "telemetry goes on through the other nodes: {after:?} after {last_before}\n{}",
        dev.log()
    );
    seen.extend(&after);
    // Nothing lost: every sample from the first to the last, once or (a retransmission of one
    // node 3 never acknowledged) twice; none dropped by the device.
    let mut seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    seqs.sort_unstable();
    let total = seqs.len();
    seqs.dedup();
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "a sample is missing\n{}",
        dev.log()
    );
    assert_eq!(first, 1);
    assert!(seen.iter().all(|s| s.1 == 0), "{seen:?}");
    eprintln!(
        "cluster failover: online on another node {:.2} s after node 3 was killed; samples \
         {first}..={last}, {} duplicate(s)",
        failover.as_secs_f64(),
        total - seqs.len()
    );
}
