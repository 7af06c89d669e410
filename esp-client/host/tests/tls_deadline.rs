//! The connect deadline is the core's, and the host transport never blocks the superloop while
//! a connection is being opened: against a server that accepts and then dribbles bytes, every
//! `Device::poll` returns at once, the handshake is cut at `connect_timeout_ms` however short
//! each single read is, the log says where it stood, and the retry waits its backoff from the
//! failure.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use broker_testkit::Pki;
use esp_client::machine::{Device, Failure, State};
use esp_client_host::board::HostBoard;
use esp_client_host::flash::FileFlash;
use esp_client_host::settings;
use esp_client_host::tls::TlsTransport;
use provision::device_config::ConfigOptions;

#[test]
fn a_dribbling_server_cannot_stretch_the_handshake_or_block_a_poll() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pki = Pki::new(&["dev-1"]);
    let flash = pki.write_config(&ConfigOptions {
        broker_host: Some("127.0.0.1".into()),
        broker_port: Some(port),
        ..pki.config_options("dev-1", "dev.flash")
    });
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // A record header announcing a 16 KiB handshake message, then a byte every 200 ms: every
        // read returns well within any per-read timeout, the handshake never ends.
        let _ = s.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]);
        for _ in 0..150 {
            std::thread::sleep(Duration::from_millis(200));
            if s.write_all(&[0x02]).is_err() {
                return;
            }
        }
    });

    let mut board = HostBoard::new(
        FileFlash::open(&flash).unwrap(),
        TlsTransport::new(false),
        false,
    );
    let mut s = settings();
    // Long enough that the bounds below hold on a loaded machine, far short of the dribble (30 s).
    s.connect_timeout_ms = 3_000;
    s.time_sync_timeout_ms = 0;
    let mut device = Box::new(Device::new(s));
    let start = Instant::now();
    let mut longest = Duration::ZERO;
    let mut entered = None;
    let cause = loop {
        assert!(start.elapsed() < Duration::from_secs(20), "never gave up");
        let now = start.elapsed().as_millis() as u64;
        let t = Instant::now();
        device.poll(now, &mut board);
        longest = longest.max(t.elapsed());
        match *device.state() {
            State::TlsConnect { deadline } => entered = entered.or(Some((now, deadline))),
            State::Backoff { cause, .. } => break cause,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (at, deadline) = entered.expect("went through TlsConnect");
    assert_eq!(deadline - at, 3_000);
    assert_eq!(cause, Failure::ConnectTimeout);
    let given_up = start.elapsed();
    // Cut at the deadline, not stretched by the dribble (which would go on for 30 s); the slack
    // above the 3 s is for a loaded machine, where the test's own sleeps and polls run late.
    assert!(
        given_up >= Duration::from_millis(3_000) && given_up < Duration::from_millis(8_000),
        "{given_up:?}"
    );
    // Polls return at once; a blocking handshake would hold one for the whole 3 s. A third of
    // that still proves it and leaves room for a scheduler that runs the test thread late.
    assert!(
        longest < Duration::from_millis(1_000),
        "a poll took {longest:?}"
    );
    let why = board.tls.last_error.clone().unwrap_or_default();
    assert!(
        why.starts_with(&format!(
            "TLS handshake with 127.0.0.1:{port}: not done after"
        )),
        "{why}"
    );

    // The backoff delay counts from the failure, not from before the connect: the next
    // attempt starts at least half the first delay (500 ms) after the give-up.
    assert!(matches!(device.state(), State::Backoff { .. }));
    let failed_at = start.elapsed();
    loop {
        let now = start.elapsed().as_millis() as u64;
        device.poll(now, &mut board);
        if matches!(device.state(), State::TlsConnect { .. }) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never retried");
        std::thread::sleep(Duration::from_millis(5));
    }
    let gap = start.elapsed() - failed_at;
    assert!(
        gap >= Duration::from_millis(490),
        "retried {gap:?} after the failure"
    );
}
