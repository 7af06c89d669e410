//! The limits in the config `provision broker` writes, against a real Mosquitto 2.0 with
//! mosquitto_pub/sub: what one device can park on the broker, and what a burst from a fleet does
//! to an operator that is slow to read.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use broker_testkit::{mosquitto_client_args, Broker, Identity, MosquittoSub, Pki};

fn publish(pki: &Pki, broker: &Broker, who: &Identity, extra: &[&str], msg: &str) -> Output {
    Command::new("mosquitto_pub")
        .args(mosquitto_client_args(pki, broker, Some(who)))
        .args(["-q", "1"])
        .args(extra)
        .args(["-m", msg])
        .output()
        .expect("mosquitto_pub")
}

fn sub(pki: &Pki, broker: &Broker, who: &Identity, extra: &[&str]) -> MosquittoSub {
    let mut args = mosquitto_client_args(pki, broker, Some(who));
    args.extend(extra.iter().map(|s| s.to_string()));
    MosquittoSub::start(&args, || broker.log())
}

const QUIET: Duration = Duration::from_secs(2);

#[test]
fn max_packet_size_is_the_devices_receive_buffer() {
    assert_eq!(
        provision::broker::MAX_PACKET_SIZE as usize,
        esp_client::settings::RX_BUF,
        "the broker must refuse every packet the device could not receive"
    );
    // The largest OTA chunk, with its topic and MQTT header, still gets through.
    const {
        assert!(
            wire_format::ota_proto::MAX_CHUNK_PACKET <= provision::broker::MAX_PACKET_SIZE as usize
        )
    };
    let pki = Pki::new(&[]);
    let _broker = Broker::start(&pki);
    let conf = std::fs::read_to_string(pki.path().join("broker/mosquitto.conf")).unwrap();
    assert!(conf.contains("\nmax_packet_size 2048\n"), "{conf}");
}

#[test]
fn an_oversized_retained_publish_is_refused_and_a_fitting_one_is_kept() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let dev = pki.device("dev-a");
    let topic = "devices/dev-a/reply/park";

    // 4 KiB retained: more than any device can receive. The broker drops the connection.
    let big = "x".repeat(4096);
    let out = publish(&pki, &broker, &dev, &["-r", "-t", topic], &big);
    assert!(
        !out.status.success(),
        "a 4 KiB retained publish was accepted"
    );
    // A publish that fits (a 2048-byte packet at most) is still retained: the limit is not
    // tighter than the device's buffer.
    let fits = "y".repeat(1900);
    let out = publish(
        &pki,
        &broker,
        &dev,
        &["-r", "-t", "devices/dev-a/reply/ok"],
        &fits,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A new subscriber sees only the one that fits.
    let op = sub(&pki, &broker, &pki.operator(), &["-t", "devices/+/reply/#"]);
    let got = op.messages(QUIET);
    assert_eq!(got, vec![format!("devices/dev-a/reply/ok {fits}")]);
    assert!(
        broker.log().contains("disconnected due to oversize packet"),
        "{}",
        broker.log()
    );
}

#[test]
fn an_oversized_command_from_the_operator_never_reaches_the_device() {
    let pki = Pki::new(&["dev-a"]);
    let broker = Broker::start(&pki);
    let dev_sub = sub(
        &pki,
        &broker,
        &pki.device("dev-a"),
        &["-t", "devices/dev-a/cmd/#"],
    );
    let out = publish(
        &pki,
        &broker,
        &pki.operator(),
        &["-t", "devices/dev-a/cmd/x"],
        &"z".repeat(3000),
    );
    assert!(!out.status.success(), "a 3000-byte command was accepted");
    let out = publish(
        &pki,
        &broker,
        &pki.operator(),
        &["-t", "devices/dev-a/cmd/x"],
        "small",
    );
    assert!(out.status.success());
    assert_eq!(dev_sub.messages(QUIET), vec!["devices/dev-a/cmd/x small"]);
}

/// 200 devices each send 50 QoS 1 messages while the operator's subscriber is paused (a slow
/// operator): every acknowledged message must reach the operator once it reads again.
#[test]
fn a_burst_of_200_devices_times_50_qos1_messages_reaches_a_paused_qos1_operator_complete() {
    const DEVICES: usize = 200;
    const EACH: usize = 50;
    let ids: Vec<String> = (0..DEVICES).map(|i| format!("burst-{i:03}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let pki = Pki::new(&id_refs);
    let broker = Broker::start(&pki);
    let op = sub(
        &pki,
        &broker,
        &pki.operator(),
        &["-q", "1", "-t", "devices/+/telemetry"],
    );
    op.pause(true);

    // Devices publish in waves of 25 concurrent clients; each reads its 50 lines from stdin
    // (`-l`) and exits once every PUBACK is in.
    for wave in ids.chunks(25) {
        let children: Vec<_> = wave
            .iter()
            .map(|id| {
                let mut child = Command::new("mosquitto_pub")
                    .args(mosquitto_client_args(&pki, &broker, Some(&pki.device(id))))
                    .args(["-q", "1", "-l", "-t"])
                    .arg(format!("devices/{id}/telemetry"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("mosquitto_pub");
                let mut stdin = child.stdin.take().unwrap();
                let lines: String = (0..EACH).map(|n| format!("{id}:{n}\n")).collect();
                stdin.write_all(lines.as_bytes()).unwrap();
                drop(stdin);
                child
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "a device's publish failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    op.pause(false);
    let got = op.messages_until(Duration::from_secs(60), DEVICES * EACH);
    let unique: HashSet<&String> = got.iter().collect();
    let dropped_log = broker.log().contains("Outgoing messages are being dropped");
    assert_eq!(
        unique.len(),
        DEVICES * EACH,
        "the operator received {} of {} messages ({} with duplicates); broker dropped: {dropped_log}",
        unique.len(),
        DEVICES * EACH,
        got.len()
    );
    assert!(!dropped_log, "{}", broker.log());
}

/// docs/broker-setup.md's limits table says what the code writes.
#[test]
fn the_documented_limits_are_the_written_ones() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/broker-setup.md"
    ))
    .unwrap();
    use provision::broker::*;
    for (name, value) in [
        ("max_packet_size", MAX_PACKET_SIZE.to_string()),
        ("max_inflight_messages", MAX_INFLIGHT_MESSAGES.to_string()),
        ("max_queued_messages", MAX_QUEUED_MESSAGES.to_string()),
        (
            "max_queued_bytes",
            format!("{} MiB", MAX_QUEUED_BYTES / (1024 * 1024)),
        ),
    ] {
        let row = format!("| `{name}` | {value} |");
        assert!(doc.contains(&row), "docs/broker-setup.md lacks {row:?}");
        assert!(
            doc.contains(&format!("\n{name} {}\n", value.replace(" MiB", "")))
                || name == "max_queued_bytes",
            "the config sample in docs/broker-setup.md lacks {name}"
        );
    }
    assert!(doc.contains(&format!("max_queued_bytes {MAX_QUEUED_BYTES}\n")));
    assert!(
        doc.contains("| `set_tcp_nodelay` | true |") && doc.contains("\nset_tcp_nodelay true\n")
    );
}

/// `--max-packet-size` is the user's explicit choice for a shared broker: never below what a
/// device receives, and said in the config when raised.
#[test]
fn max_packet_size_can_be_raised_for_a_shared_broker_but_not_lowered() {
    let pki = Pki::new(&[]);
    let run = |size: &str| {
        assert_cmd::Command::cargo_bin("provision")
            .unwrap()
            .arg("--dir")
            .arg(pki.path())
            .args(["broker", "--host", "localhost", "--max-packet-size", size])
            .assert()
    };
    run("2047").code(3).stderr(predicates::str::contains(
        "--max-packet-size 2047 must be between 2048",
    ));
    assert!(!pki.path().join("broker").exists());
    run("262144").success();
    let conf = std::fs::read_to_string(pki.path().join("broker/mosquitto.conf")).unwrap();
    assert!(conf.contains("\nmax_packet_size 262144\n"), "{conf}");
    assert!(
        conf.contains("devices skip packets over 2048 bytes"),
        "{conf}"
    );
}
