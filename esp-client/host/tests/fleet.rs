//! `esp-fleet`: many device cores in one process against a real Mosquitto from `provision
//! broker`, each device with its own certificate, config blob and flash file. A QoS 1 operator
//! subscriber (rumqttc, not our code) must receive every telemetry sample the devices got a
//! PUBACK for: nothing acknowledged is lost; duplicates are counted, not failed.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_testkit::{rumqttc_client, Broker, Pki};
use rumqttc::{Event, Packet, QoS};

const DEVICES: usize = 20;

#[test]
fn a_fleet_of_twenty_comes_online_and_loses_no_acknowledged_telemetry() {
    let ids: Vec<String> = (0..DEVICES).map(|i| format!("fleet-{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let pki = Pki::new(&refs);
    let broker = Broker::start(&pki);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    for id in &ids {
        pki.write_config(&provision::device_config::ConfigOptions {
            output: dir.join(format!("{id}.flash")),
            ..pki.config_options(id, "unused")
        });
    }

    let (client, mut conn) = rumqttc_client(
        "operator-fleet",
        broker.port(),
        &pki.ca_cert(),
        &pki.operator(),
    );
    client
        .subscribe("devices/+/telemetry", QoS::AtLeastOnce)
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for event in conn.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let text = String::from_utf8_lossy(&p.payload).into_owned();
                    if tx.send((p.topic.clone(), text)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("operator subscribed");

    let out = Command::new(env!("CARGO_BIN_EXE_esp-fleet"))
        .arg("--dir")
        .arg(&dir)
        .args(["--seconds", "8", "--report-every", "0", "--json"])
        .output()
        .expect("esp-fleet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));

    // Let the broker hand over what it still holds for the operator: until every acknowledged
    // sample has arrived (a generous deadline for a loaded machine), then a short quiet spell for
    // late duplicates.
    let acked = report["telemetry_acked"].as_u64().unwrap();
    let mut seen = Vec::new();
    let mut unique = HashSet::new();
    let mut per_device: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let wait = if (unique.len() as u64) < acked {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(500)
        };
        let Ok((topic, payload)) = rx.recv_timeout(wait) else {
            break;
        };
        let v: serde_json::Value = serde_json::from_str(&payload).expect("telemetry is JSON");
        let seq = v["seq"].as_u64().expect("seq");
        let id = topic.split('/').nth(1).unwrap().to_string();
        if unique.insert((id.clone(), seq)) {
            *per_device.entry(id).or_default() += 1;
        }
        seen.push((topic, payload));
    }
    let duplicates = seen.len() - unique.len();
    eprintln!(
        "report {report}\noperator: {} messages, {} unique, {duplicates} duplicates",
        seen.len(),
        unique.len()
    );
    assert_eq!(report["devices"], DEVICES);
    assert_eq!(report["online"], DEVICES, "{stderr}");
    assert_eq!(report["connects"], DEVICES, "one connection each: {stderr}");
    assert!(
        acked >= (DEVICES * 5) as u64,
        "telemetry every second for 8 s: {report}"
    );
    assert!(
        unique.len() as u64 >= acked,
        "{} acknowledged samples never reached the operator",
        acked - unique.len() as u64
    );
    assert_eq!(
        per_device.len(),
        DEVICES,
        "every device's telemetry arrived"
    );
    assert!(report["connect_ms"]["max"].as_u64().unwrap() > 0);
    // All on the broker's one endpoint.
    assert_eq!(
        report["online_by_endpoint"],
        serde_json::json!({ format!("localhost:{}", broker.port()): DEVICES })
    );
}
