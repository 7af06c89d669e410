//! The whole chain with the real AVR firmware: the device core (in-process, over the host
//! board's rustls transport and file flash) talks to a real Mosquitto, and its AVR is the
//! avr-slave ELF running in simavr behind esp-client's SPI link driver. An operator's `set-pin` command
//! must change the simulated chip's port register, and an ADC voltage applied to the simulated
//! pin must come back in a `read-adc` reply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use avr_sim_tests::adapter;
use avr_sim_tests::firmware::Mcu;
use avr_sim_tests::sim::Sim;
use broker_testkit::{rumqttc_client, Broker, Pki};
use esp_client::avr_io::AvrIo;
use esp_client::avr_link::AvrLink;
use esp_client::machine::Device;
use esp_client_host::board::HostBoard;
use esp_client_host::flash::FileFlash;
use esp_client_host::tls::TlsTransport;
use esp_client_host::{run, settings, Exit};
use rumqttc::{Event, Packet, QoS};

const ID: &str = "sim-dev-1";

#[test]
fn commands_reach_the_real_avr_firmware_in_simavr() {
    let pki = Pki::new(&[ID]);
    let broker = Broker::start(&pki);
    let flash = pki.write_config(&pki.config_options(ID, "sim.flash"));

    let (spi, delay, sim) = adapter::attach(Sim::boot(Mcu::Atmega168));
    sim.borrow_mut().set_adc_mv(3, 1_250); // a quarter of AVCC: ~256 counts
    let avr = AvrIo::new(AvrLink::new(spi, delay));
    let tls = TlsTransport::new(false);
    let mut board = HostBoard::with_avr(FileFlash::open(&flash).unwrap(), tls, true, avr);
    let mut device = Box::new(Device::new(settings()));

    // The operator runs in its own thread; the device loop runs here (the simulator is not Send).
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = mpsc::channel();
    let (op_client, mut conn) = rumqttc_client(
        "operator-sim",
        broker.port(),
        &pki.ca_cert(),
        &pki.operator(),
    );
    let op_stop = stop.clone();
    let operator = std::thread::spawn(move || {
        op_client
            .subscribe(format!("devices/{ID}/#"), QoS::AtLeastOnce)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut sent_pin = false;
        let mut replies = Vec::new();
        for event in conn.iter() {
            if Instant::now() > deadline {
                break;
            }
            let Ok(Event::Incoming(Packet::Publish(p))) = event else {
                continue;
            };
            let payload = String::from_utf8_lossy(&p.payload).into_owned();
            if p.topic.ends_with("/telemetry") && !sent_pin {
                sent_pin = true;
                let cmd = format!("devices/{ID}/cmd/set-pin");
                op_client
                    .publish(cmd, QoS::AtLeastOnce, false, "pin=17 level=1 req=sim-1")
                    .unwrap();
                let cmd = format!("devices/{ID}/cmd/read-adc");
                op_client
                    .publish(cmd, QoS::AtLeastOnce, false, "channel=3 req=sim-2")
                    .unwrap();
            }
            if p.topic.contains("/reply/") {
                replies.push(payload);
                if replies.len() == 2 {
                    break;
                }
            }
        }
        op_stop.store(true, Ordering::Relaxed);
        let _ = done_tx.send(replies);
    });

    assert_eq!(run(&mut device, &mut board, &stop), Exit::Stopped);
    let replies = done
        .recv_timeout(Duration::from_secs(5))
        .expect("operator finished");
    operator.join().unwrap();

    assert!(replies.len() == 2, "replies: {replies:?}");
    assert_eq!(
        replies[0],
        r#"{"req":"sim-1","ok":true,"pin":17,"level":1}"#
    );
    // PD1 (pin 17) is now an output driven high in the simulated chip's registers.
    let (port, ddr, _) = sim.borrow().port_state('D');
    assert_eq!(
        (port & 0b10, ddr & 0b10),
        (0b10, 0b10),
        "PORTD {port:#010b} DDRD {ddr:#010b}"
    );
    let value: u32 = replies[1]
        .split("\"value\":")
        .nth(1)
        .and_then(|v| v.trim_end_matches('}').parse().ok())
        .unwrap_or_else(|| panic!("no value in {}", replies[1]));
    assert!(
        (250..=262).contains(&value),
        "1.25 V on ADC3 read as {value}"
    );
}
