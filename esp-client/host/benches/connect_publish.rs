//! Side by side on one loopback Mosquitto from `provision broker` (docs/benchmarks.md,
//! "esp-client"):
//! 1. connect latency, TCP + TLS 1.2 handshake + CONNECT/CONNACK: the host device's transport and
//!    MQTT codec vs `mosquitto_pub` doing the same (whole process, so its start-up is included;
//!    `mosquitto_pub --help` is timed as the floor of that);
//! 2. QoS 1 publish throughput: the device's transport and codec with the core's in-flight window
//!    (4) vs rumqttc (window 4, and its default 100).
//!
//! `cargo bench -p esp-client-host --bench connect_publish` measures; under `cargo test` (no
//! `--bench` argument) it runs a few iterations as a smoke test.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_testkit::{rustls_config, Broker, Pki};
use embedded_io::{Read, ReadReady, Write};
use esp_client::board::{Server, TlsMaterial, Transport};
use esp_client::mqtt::{self, Connect, Packet, Publish, QoS};
use esp_client_host::tls::TlsTransport;
use wire_format::device_config::DeviceConfig;

const ID: &str = "bench-1";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Reads until one whole packet is in `buf`, returns its length.
fn read_packet(t: &mut TlsTransport, buf: &mut [u8], have: &mut usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some((_, total))) = mqtt::frame_len(&buf[..*have]) {
            if *have >= total {
                return total;
            }
        }
        assert!(Instant::now() < deadline, "no packet from the broker");
        if t.read_ready().expect("read_ready") {
            let n = t.read(&mut buf[*have..]).expect("read");
            assert!(n > 0, "broker closed");
            *have += n;
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

fn consume(buf: &mut [u8], have: &mut usize, n: usize) {
    buf.copy_within(n..*have, 0);
    *have -= n;
}

/// TCP + TLS + CONNECT/CONNACK with the device's own code; returns the time to CONNACK.
fn device_connect(t: &mut TlsTransport, cfg: &DeviceConfig<'_>, floor: u64) -> Duration {
    let tls = TlsMaterial {
        ca_der: cfg.ca_cert_der,
        client_cert_der: cfg.client_cert_der,
        client_key_der: cfg.client_key_der,
        broker_pin: None,
        time_floor_unix: floor,
    };
    let start = Instant::now();
    t.connect_blocking(
        Server {
            host: cfg.brokers.as_slice()[0].host,
            port: cfg.brokers.as_slice()[0].port,
        },
        &tls,
        Duration::from_secs(5),
    )
    .expect("connect");
    let mut buf = [0u8; 512];
    let n = Connect {
        client_id: ID,
        keep_alive_s: 60,
        clean_session: true,
        will: None,
    }
    .emit(&mut buf)
    .unwrap();
    t.write_all(&buf[..n]).unwrap();
    t.flush().unwrap();
    let mut have = 0;
    let n = read_packet(t, &mut buf, &mut have);
    assert_eq!(
        Packet::parse(&buf[..n]),
        Ok(Packet::ConnAck {
            session_present: false,
            code: 0
        })
    );
    start.elapsed()
}

/// `count` QoS 1 publishes of `size` bytes with at most `window` unacknowledged.
fn device_publish(t: &mut TlsTransport, count: u16, size: usize, window: usize) -> Duration {
    let payload = vec![b'x'; size];
    let topic = format!("devices/{ID}/telemetry");
    let mut out = vec![0u8; size + 64];
    let mut rx = [0u8; 2048];
    let mut have = 0;
    let (mut sent, mut acked, mut inflight) = (0u16, 0u16, 0usize);
    let start = Instant::now();
    while acked < count {
        while sent < count && inflight < window {
            sent += 1;
            let p = Publish {
                topic: &topic,
                payload: &payload,
                qos: QoS::AtLeastOnce,
                retain: false,
                dup: false,
                pkid: sent,
            };
            let n = p.emit(&mut out).unwrap();
            t.write_all(&out[..n]).unwrap();
            inflight += 1;
        }
        t.flush().unwrap();
        let n = read_packet(t, &mut rx, &mut have);
        if let Ok(Packet::PubAck { .. }) = Packet::parse(&rx[..n]) {
            acked += 1;
            inflight -= 1;
        }
        consume(&mut rx, &mut have, n);
    }
    start.elapsed()
}

fn rumqttc_publish(pki: &Pki, broker: &Broker, count: usize, size: usize, window: u16) -> Duration {
    let mut opts = rumqttc::MqttOptions::new(ID, "127.0.0.1", broker.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(window);
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(rustls_config(&pki.ca_cert(), &pki.device(ID), false)),
    ));
    let (client, mut conn) = rumqttc::Client::new(opts, 64);
    let topic = format!("devices/{ID}/telemetry");
    // Wait for the connection before timing.
    for ev in conn.iter() {
        if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) = ev {
            break;
        }
    }
    let payload = vec![b'x'; size];
    let pub_thread = std::thread::spawn(move || {
        for _ in 0..count {
            client
                .publish(
                    topic.clone(),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    payload.clone(),
                )
                .unwrap();
        }
        client
    });
    let start = Instant::now();
    let mut acked = 0;
    for ev in conn.iter() {
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                acked += 1;
                if acked == count {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("rumqttc: {e}"),
        }
    }
    let took = start.elapsed();
    let client = pub_thread.join().unwrap();
    let _ = client.disconnect();
    took
}

/// rumqttc from `Client::new` to CONNACK (its own runtime start included).
fn rumqttc_connect(pki: &Pki, broker: &Broker) -> Duration {
    let start = Instant::now();
    let mut opts = rumqttc::MqttOptions::new(ID, "127.0.0.1", broker.port());
    opts.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(rustls_config(&pki.ca_cert(), &pki.device(ID), false)),
    ));
    let (client, mut conn) = rumqttc::Client::new(opts, 8);
    for ev in conn.iter() {
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => panic!("rumqttc: {e}"),
        }
    }
    let took = start.elapsed();
    let _ = client.disconnect();
    for ev in conn.iter() {
        if ev.is_err() {
            break;
        }
    }
    took
}

fn time_process(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    let took = start.elapsed();
    assert!(status.success() || status.code() == Some(1), "{status}");
    took
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (connects, publishes) = if measuring { (50, 5_000) } else { (2, 40) };

    let pki = Pki::new(&[ID]);
    let broker = Broker::start(&pki);
    let flash = pki.write_config(&provision::device_config::ConfigOptions {
        broker_host: Some("127.0.0.1".into()),
        broker_port: Some(broker.port()),
        telemetry_period_s: 30,
        ..pki.config_options(ID, "bench.flash")
    });
    let blob = std::fs::read(&flash).unwrap();
    let cfg = DeviceConfig::parse(&blob).unwrap();
    let floor = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // 1. Connect latency.
    let mut t = TlsTransport::new(false);
    let ours: Vec<Duration> = (0..connects)
        .map(|_| {
            let d = device_connect(&mut t, &cfg, floor);
            t.close();
            d
        })
        .collect();
    // The same with a new transport each time: the rustls config built on every connect, as a
    // transport did before it kept its config per TLS material.
    let fresh: Vec<Duration> = (0..connects)
        .map(|_| {
            let mut t = TlsTransport::new(false);
            let d = device_connect(&mut t, &cfg, floor);
            t.close();
            d
        })
        .collect();
    let dev = pki.device(ID);
    let args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port().to_string(),
        "--cafile",
        &pki.ca_cert().display().to_string(),
        "--cert",
        &dev.cert.display().to_string(),
        "--key",
        &dev.key.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let topic = format!("devices/{ID}/telemetry");
    let theirs: Vec<Duration> = (0..connects)
        .map(|_| {
            time_process(Command::new("mosquitto_pub").args(&args).args([
                "--tls-version",
                "tlsv1.2",
                "-i",
                ID,
                "-t",
                &topic,
                "-m",
                "x",
            ]))
        })
        .collect();
    let rumqttc_connects: Vec<Duration> = (0..connects)
        .map(|_| rumqttc_connect(&pki, &broker))
        .collect();
    let startup: Vec<Duration> = (0..connects)
        .map(|_| time_process(Command::new("mosquitto_pub").arg("--help")))
        .collect();

    // 2. QoS 1 throughput, 100-byte payloads.
    let size = 100;
    device_connect(&mut t, &cfg, floor);
    let ours_pub = device_publish(&mut t, publishes as u16, size, 4);
    t.close();
    let r4 = rumqttc_publish(&pki, &broker, publishes, size, 4);
    let r100 = rumqttc_publish(&pki, &broker, publishes, size, 100);

    let rate = |d: Duration| format!("{:.0} msg/s", publishes as f64 / d.as_secs_f64());
    println!("esp-client connect + QoS 1 benchmark ({connects} connects, {publishes} publishes of {size} B, loopback, TLS 1.2, P-256)");
    println!("| measurement | median / rate |");
    println!("| --- | --- |");
    println!(
        "| host device: TCP + TLS 1.2 + CONNACK | {} |",
        ms(median(ours))
    );
    println!(
        "| host device: the same, its rustls config built for each connect | {} |",
        ms(median(fresh))
    );
    println!(
        "| rumqttc 0.25: Client::new to CONNACK (TLS 1.2) | {} |",
        ms(median(rumqttc_connects))
    );
    println!(
        "| mosquitto_pub: whole process (connect, publish, disconnect) | {} |",
        ms(median(theirs))
    );
    println!(
        "| mosquitto_pub --help (process start-up floor) | {} |",
        ms(median(startup))
    );
    println!("| host device: QoS 1, window 4 | {} |", rate(ours_pub));
    println!("| rumqttc 0.25: QoS 1, inflight 4 | {} |", rate(r4));
    println!("| rumqttc 0.25: QoS 1, inflight 100 | {} |", rate(r100));
}
