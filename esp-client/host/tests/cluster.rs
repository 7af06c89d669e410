//! The host device (the real `esp-client-host` binary) on a real three-node RabbitMQ cluster run
//! from the files `provision broker --engine rabbitmq` wrote, with the config `provision device
//! config` wrote from the registry (every node, starting at the device's own): the node it is on
//! is killed (SIGKILL), it comes online on another node and its telemetry goes on; a QoS 1
//! `mosquitto_sub` on the third node (a client no one here wrote) sees every sample.

use std::time::{Duration, Instant};

use broker_testkit::rabbitmq::{Cluster, NodeFiles};
use broker_testkit::{free_port, MosquittoSub, Pki};
use provision::registry::{Engine, NodeRecord, Platform};
use wire_format::device_config::DeviceConfig;

mod support;
use support::DeviceProc;

const ID: &str = "dev-1";

fn seqs(lines: &[String]) -> Vec<u64> {
    let topic = format!("devices/{ID}/telemetry ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&topic))
        .map(|json| {
            let v: serde_json::Value = serde_json::from_str(json).expect("telemetry is JSON");
            assert_eq!(v["dropped"], 0, "{json}");
            v["seq"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn kill_9_of_the_devices_node_it_goes_on_on_another_and_nothing_is_lost() {
    let pki = Pki::new(&[ID]);
    let nodes: Vec<NodeRecord> = (1..=3)
        .map(|i| NodeRecord {
            name: format!("rabbit-{i}"),
            host: if i == 2 { "localhost" } else { "127.0.0.1" }.into(),
            port: free_port(),
        })
        .collect();
    provision::broker::configure(
        pki.path(),
        &provision::broker::BrokerOptions {
            hosts: vec!["localhost".into()],
            ips: Vec::new(),
            port: 8883,
            bind: None,
            install_dir: None,
            days: 30,
            platform: Platform::Plain,
            max_packet_size: None,
            existing_config: None,
            engine: Engine::Rabbitmq,
            nodes: nodes.clone(),
            node_count: None,
        },
    )
    .expect("provision broker --engine rabbitmq");
    let files: Vec<NodeFiles> = nodes
        .iter()
        .map(|n| NodeFiles {
            name: n.name.clone(),
            mqtt_port: n.port,
            conf_dir: pki.path().join("broker/nodes").join(&n.name),
        })
        .collect();
    let cluster = Cluster::start(&files)
        .unwrap_or_else(|e| panic!("the RabbitMQ cluster did not start:\n{e}"));

    // The registry's endpoints, starting at this device's node.
    let flash = pki.write_config(&pki.config_options(ID, "dev.flash"));
    let blob = std::fs::read(&flash).unwrap();
    let cfg = DeviceConfig::parse(&blob).unwrap();
    assert_eq!(cfg.brokers.len(), 3);
    let node_of = |port: u16| nodes.iter().position(|n| n.port == port).unwrap();
    let first = node_of(cfg.brokers.as_slice()[0].port);
    let second = node_of(cfg.brokers.as_slice()[1].port);
    let third = node_of(cfg.brokers.as_slice()[2].port);

    // The operator listens on the node that stays up.
    let op = pki.operator();
    let args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        &nodes[third].port.to_string(),
        "--cafile",
        &pki.ca_cert().display().to_string(),
        "--cert",
        &op.cert.display().to_string(),
        "--key",
        &op.key.display().to_string(),
        "-i",
        "_operator-failover",
        "-q",
        "1",
        "-t",
        &format!("devices/{ID}/telemetry"),
    ]
    .map(String::from)
    .to_vec();
    let sub = MosquittoSub::start(&args, || cluster.log_tail(third, 40));

    let dev = DeviceProc::start(&flash, &[]);
    dev.expect("(endpoint 1 of 3)", Duration::from_secs(10));
    dev.expect("=> Online", Duration::from_secs(30));
    let mut seen = seqs(&sub.messages_until(Duration::from_secs(30), 3));
    assert_eq!(seen.len(), 3, "telemetry through the cluster");

    let killed = Instant::now();
    cluster.kill(first);
    let next = &nodes[second];
    dev.expect(
        &format!("broker {}:{} (endpoint 2 of 3)", next.host, next.port),
        Duration::from_secs(15),
    );
    if !dev.wait_for("=> Online", Duration::from_secs(30)) {
        panic!(
            "not online on {}:\n{}\n{}",
            nodes[second].name,
            dev.log(),
            cluster.log_tail(second, 60)
        );
    }
    let failover = killed.elapsed();
    let last_before = *seen.iter().max().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.iter().max().unwrap() < &(last_before + 3) && Instant::now() < deadline {
        seen.extend(seqs(&sub.messages(Duration::from_secs(1))));
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    let last = *unique.last().unwrap();
    assert!(last >= last_before + 3, "telemetry goes on: {seen:?}");
    assert_eq!(
        unique,
        (1..=last).collect::<Vec<_>>(),
        "a sample is missing"
    );
    eprintln!(
        "cluster failover: online on {} {:.2} s after the kill of {}; samples 1..={last}, {} \
         duplicate(s)",
        nodes[second].name,
        failover.as_secs_f64(),
        nodes[first].name,
        seen.len() - unique.len()
    );
}
