//! The host device (the real `esp-client-host` binary) with a config naming two broker
//! endpoints, against two real Mosquittos: the one it is on is killed (SIGKILL), it comes online
//! on the other and its telemetry goes on; a QoS 1 `mosquitto_sub` on each broker (a client no
//! one here wrote) sees every sample, none missing. And TLS checks each endpoint's own name.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use broker_testkit::{free_port, mosquitto_client_args, Broker, MosquittoSub, Pki};
use provision::device_config::ConfigOptions;
use support::DeviceProc;

const ID: &str = "dev-1";

/// A second Mosquitto from the same `provision broker` config (same certificate, CA, ACL and
/// CRL), listening on another free port.
fn second_broker(pki: &Pki, first: &Broker) -> Broker {
    let conf = std::fs::read_to_string(pki.path().join("broker/mosquitto.conf")).unwrap();
    let listener = format!("listener {} 127.0.0.1", first.port());
    assert!(conf.contains(&listener), "{conf}");
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let path = pki.path().join("mosquitto-b.conf");
        std::fs::write(
            &path,
            conf.replace(&listener, &format!("listener {port} 127.0.0.1")),
        )
        .unwrap();
        match Broker::start_config(path, port, pki.path().join("mosquitto-b.log")) {
            Ok(b) => return b,
            Err(log) if log.contains("Address already in use") => last = log,
            Err(log) => panic!("the second mosquitto did not start:\n{log}"),
        }
    }
    panic!("the second mosquitto found no free port:\n{last}");
}

/// A QoS 1 `mosquitto_sub` on `broker` for the device's telemetry.
fn telemetry_sub(pki: &Pki, broker: &Broker) -> MosquittoSub {
    let mut args = mosquitto_client_args(pki, broker, Some(&pki.operator()));
    args.extend([
        "-t".into(),
        format!("devices/{ID}/telemetry"),
        "-q".into(),
        "1".into(),
    ]);
    MosquittoSub::start(&args, || broker.log())
}

/// `seq` and `dropped` of each telemetry line ("topic {json}"; mosquitto_sub's own lines, such
/// as a lost connection's, are skipped).
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

fn config(pki: &Pki, brokers: &[(&str, u16)]) -> PathBuf {
    pki.write_config(&ConfigOptions {
        brokers: brokers.iter().map(|(h, p)| (h.to_string(), *p)).collect(),
        ..pki.config_options(ID, "dev.flash")
    })
}

#[test]
fn the_node_the_device_is_on_is_killed_and_it_goes_on_on_the_other() {
    let pki = Pki::new(&[ID]);
    let mut a = Broker::start(&pki);
    let b = second_broker(&pki, &a);
    let (sub_a, sub_b) = (telemetry_sub(&pki, &a), telemetry_sub(&pki, &b));
    // Two names of the broker certificate, one per endpoint.
    let flash = config(&pki, &[("127.0.0.1", a.port()), ("localhost", b.port())]);
    let dev = DeviceProc::start(&flash, &[]);
    dev.expect(
        &format!("broker 127.0.0.1:{} (endpoint 1 of 2)", a.port()),
        Duration::from_secs(10),
    );
    dev.expect("=> Online", Duration::from_secs(20));
    let on_a = sub_a.messages_until(Duration::from_secs(15), 3);
    assert_eq!(on_a.len(), 3, "telemetry on the first broker: {on_a:?}");

    let killed = Instant::now();
    a.kill();
    dev.expect(
        &format!("broker localhost:{} (endpoint 2 of 2)", b.port()),
        Duration::from_secs(10),
    );
    dev.expect("=> Online", Duration::from_secs(10));
    let failover = killed.elapsed();
    // What reached the first broker's subscriber before the kill (it dies with its broker).
    let mut seen = samples(&on_a);
    seen.extend(samples(&sub_a.messages(Duration::from_millis(200))));
    let last_on_a = seen.iter().map(|s| s.0).max().unwrap();
    let on_b = samples(&sub_b.messages_until(Duration::from_secs(15), 4));
    assert!(
        on_b.iter().any(|s| s.0 > last_on_a + 2),
        "telemetry goes on on the second broker: {on_b:?} after {last_on_a}"
    );
    seen.extend(&on_b);
    // Nothing lost: every sample from the first to the last, once or (a retransmission of one
    // the first broker never acknowledged) twice; none dropped by the device.
    let mut seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    seqs.sort_unstable();
    let total = seqs.len();
    seqs.dedup();
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "a sample is missing"
    );
    assert_eq!(first, 1);
    assert!(seen.iter().all(|s| s.1 == 0), "{seen:?}");
    eprintln!(
        "failover: online on the second broker {:.2} s after the kill; samples {first}..={last}, \
         {} duplicate(s)",
        failover.as_secs_f64(),
        total - seqs.len()
    );
}

#[test]
fn each_endpoint_is_checked_against_its_own_name() {
    let pki = Pki::new(&[ID]);
    let mut a = Broker::start(&pki);
    // Written while the certificate names localhost and 127.0.0.1 ...
    let flash = config(&pki, &[("localhost", a.port()), ("127.0.0.1", a.port())]);
    // ... then the broker gets a certificate for other.test and 127.0.0.1 only.
    provision::broker::configure(
        pki.path(),
        &provision::broker::BrokerOptions {
            hosts: vec!["other.test".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            port: a.port(),
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
    a.restart();
    let dev = DeviceProc::start(&flash, &[]);
    // The same broker, reached as localhost: refused, since its certificate lacks that name.
    let refused = dev.expect("=> Backoff", Duration::from_secs(15));
    assert!(
        refused.contains("broker certificate refused")
            && refused.contains("not valid for name \"localhost\""),
        "{refused}"
    );
    dev.expect(
        &format!("broker 127.0.0.1:{} (endpoint 2 of 2)", a.port()),
        Duration::from_secs(5),
    );
    dev.expect("=> Online", Duration::from_secs(10));
}
