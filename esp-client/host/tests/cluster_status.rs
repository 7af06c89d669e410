//! Status on demand on a real three-node RabbitMQ cluster (started from the files `provision
//! broker --engine rabbitmq` wrote, on loopback, stopped by the test): the host device
//! (`esp-client-host`) connected to node 3 only, the operator through node 1. RabbitMQ keeps
//! retained messages per node, so the device's retained OTA report is on node 3 and invisible on
//! node 1 (checked with mosquitto_sub on both); `provision ota status` through node 1 still gets
//! the device's answer, live. `provision ota push` through node 1 updates it; `provision watch`
//! through node 1 sees its live messages; `device revoke --apply` clears its retained status on
//! every node.
//!
//! The `provision` binary is found next to `esp-client-host` (the same target directory);
//! `cargo test --workspace` builds both.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_testkit::rabbitmq::{Cluster, NodeFiles};
use broker_testkit::{free_port, Pki};
use support::{ok, provision, provision_bin, DeviceProc};

const T: Duration = Duration::from_secs(60);

/// Whether node `port` holds a retained message on `topic`: a fresh subscription (as an
/// operator tool, mosquitto_sub) that gets one within 3 s.
fn retained_on(pki: &Pki, port: u16, topic: &str) -> Result<(), String> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
        .arg(pki.ca_cert())
        .arg("--cert")
        .arg(pki.operator().cert)
        .arg("--key")
        .arg(pki.operator().key)
        .args(["-i", &format!("_operator-sub{port}"), "-V", "mqttv311"])
        .args([
            "-q",
            "1",
            "-t",
            topic,
            "--retained-only",
            "-C",
            "1",
            "-W",
            "3",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)");
    if out.status.success() && !out.stdout.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mosquitto_sub {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn status_json(pki: &Pki, timeout: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["ota", "status", "dev-3", "--json", "--timeout", timeout];
    args.extend_from_slice(extra);
    let out = ok(provision(pki, &args));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    all[0].clone()
}

#[test]
fn operator_tools_through_node_1_reach_a_device_on_node_3() {
    let pki = Pki::new(&["dev-3"]);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut args = vec![
        "broker".to_string(),
        "--engine".into(),
        "rabbitmq".into(),
        "--host".into(),
        "localhost".into(),
    ];
    for (i, p) in ports.iter().enumerate() {
        args.extend(["--node".into(), format!("rabbit-{}=127.0.0.1:{p}", i + 1)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(provision(&pki, &args));
    ok(provision(&pki, &["ota", "keygen"]));
    let files: Vec<NodeFiles> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| NodeFiles {
            name: format!("rabbit-{}", i + 1),
            mqtt_port: *p,
            conf_dir: pki.path().join(format!("broker/nodes/rabbit-{}", i + 1)),
        })
        .collect();
    let cluster =
        Cluster::start(&files).unwrap_or_else(|e| panic!("the cluster did not start:\n{e}"));
    let (node1, node3) = (cluster.mqtt_port(0), cluster.mqtt_port(2));

    // The device knows node 3 only.
    let mut config = pki.config_options("dev-3", "dev-3.flash");
    config.brokers = vec![("127.0.0.1".into(), node3)];
    let flash = pki.write_config(&config);
    let dev = DeviceProc::start(&flash, &["--timeout-ms", "5000"]);
    dev.expect("Subscribe => Online", T);
    dev.expect("ota: status idle", T);

    // Its retained report is on node 3, and node 1 has none.
    let topic = "devices/dev-3/ota/up/status";
    let deadline = Instant::now() + T;
    while let Err(e) = retained_on(&pki, node3, topic) {
        assert!(
            Instant::now() < deadline,
            "no retained report on node 3 ({e})\n{}\n{}",
            dev.log(),
            cluster.log_tail(2, 40)
        );
    }
    assert!(
        retained_on(&pki, node1, topic).is_err(),
        "node 1 has the retained report: this cluster shares retained messages, the test \
         proves nothing"
    );

    // Through node 1: the device answers the query, live.
    let s = status_json(&pki, "10", &["--broker", &format!("127.0.0.1:{node1}")]);
    assert_eq!(s["answered"], true, "{s}\n{}", dev.log());
    assert_eq!(s["ota_from"], "live", "{s}");
    assert_eq!(s["connection"], "online", "{s}");
    assert_eq!(s["ota"]["state"], "idle", "{s}");
    assert_eq!(s["ota"]["running_version"], "0.0.0", "{s}");
    dev.expect("ota: query answered: idle", T);
    // The same with the registry's endpoints (node 1 first).
    let s = status_json(&pki, "10", &[]);
    assert_eq!(
        (&s["answered"], &s["ota_from"]),
        (&true.into(), &"live".into()),
        "{s}"
    );

    // watch through node 1: the device's live messages, nothing from node 3's retained store.
    let out = ok(provision(
        &pki,
        &[
            "watch",
            "dev-3",
            "--json",
            "--count",
            "2",
            "--broker",
            &format!("127.0.0.1:{node1}"),
        ],
    ));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(m["retained"], false, "{line}");
    }

    // ota push through node 1: offer, chunks and reports all cross to node 3 and back.
    let img = pki.path().join("v1.bin");
    std::fs::write(
        &img,
        (0..60_000u32)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let bundle = pki.path().join("v1.bundle");
    ok(provision(
        &pki,
        &[
            "ota",
            "build",
            img.to_str().unwrap(),
            "--version",
            "1.0.0",
            "--target",
            "esp8266",
            "--security-counter",
            "1",
            "-o",
            bundle.to_str().unwrap(),
        ],
    ));
    let out = provision(
        &pki,
        &[
            "ota",
            "push",
            bundle.to_str().unwrap(),
            "--device",
            "dev-3",
            "--json",
            "--timeout",
            "120",
            "--broker",
            &format!("127.0.0.1:{node1}"),
        ],
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{line}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dev.log()
    );
    let r: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(
        (&r["outcome"], &r["running_version"]),
        (&"confirmed".into(), &"1.0.0".into()),
        "{r}"
    );
    dev.expect("ota: confirmed 1.0.0", T);
    let s = status_json(&pki, "10", &["--broker", &format!("127.0.0.1:{node1}")]);
    assert_eq!(
        (
            &s["answered"],
            &s["ota"]["state"],
            &s["ota"]["running_version"]
        ),
        (&true.into(), &"confirmed".into(), &"1.0.0".into()),
        "{s}"
    );

    // The device gone: through node 1 nothing is known; through node 3, its retained report.
    drop(dev);
    let s = status_json(&pki, "2", &["--broker", &format!("127.0.0.1:{node1}")]);
    assert_eq!(s["answered"], false, "{s}");
    assert!(s["ota"].is_null(), "node 1 retained nothing: {s}");
    let s = status_json(&pki, "2", &["--broker", &format!("127.0.0.1:{node3}")]);
    assert_eq!(s["answered"], false, "{s}");
    assert_eq!(s["ota_from"], "retained", "{s}");

    // Revoked (users updated on the cluster with rabbitmqctl): its retained `status` (the Last
    // Will `offline`, kept by node 3 only) is cleared at every node's endpoint.
    let status = "devices/dev-3/status";
    retained_on(&pki, node3, status).expect("node 3 keeps the Last Will");
    let out = Command::new(provision_bin())
        .arg("--dir")
        .arg(pki.path())
        .args(["device", "revoke", "dev-3", "--apply"])
        .envs(cluster.ctl_env())
        .env(
            "PROVISION_RABBITMQCTL",
            broker_testkit::rabbitmq::RABBITMQCTL,
        )
        .env_remove("PROVISION_BROKER")
        .env_remove("PROVISION_OPERATOR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let all: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert!(
        stdout.contains(&format!(
            "cleared its retained status ({status}) on {}",
            all.join(", ")
        )),
        "{stdout}{stderr}"
    );
    for port in [node1, cluster.mqtt_port(1), node3] {
        assert!(
            retained_on(&pki, port, status).is_err(),
            "still retained on {port}"
        );
    }
    drop(cluster);
}
