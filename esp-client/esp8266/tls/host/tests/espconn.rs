//! The chip's transport glue (espconn_tls.c, the file the firmware links) on the host, over a
//! simulation of the SDK's espconn on real sockets (sdk-sim/espconn_sim.c), against a real
//! Mosquitto: the same calls the core's Transport makes (start, poll, read/write that may
//! report "would block", close), driven by polling between passes of the simulated SDK task
//! loop, as on the chip. What the simulation cannot prove is in docs/esp8266-tls.md.

mod common;

use std::time::{Duration, Instant};

use common::*;
use esp_client::mqtt::{Connect, Packet, Publish, QoS};

#[repr(C)]
struct EspconnTls {
    _private: [u8; 0],
}

extern "C" {
    fn espconn_tls_new() -> *mut EspconnTls;
    fn espconn_tls_start(
        c: *mut EspconnTls,
        host: *const u8,
        port: u16,
        ca: *const u8,
        ca_len: usize,
        cert: *const u8,
        cert_len: usize,
        key: *const u8,
        key_len: usize,
        pin: *const u8,
        floor: u64,
        seed: *const u8,
    ) -> i32;
    fn espconn_tls_poll_connect(c: *mut EspconnTls, cert: *const u8, cert_len: usize) -> i32;
    fn espconn_tls_read(c: *mut EspconnTls, buf: *mut u8, len: usize) -> i32;
    fn espconn_tls_write_ready(c: *mut EspconnTls) -> i32;
    fn espconn_tls_write(c: *mut EspconnTls, buf: *const u8, len: usize) -> i32;
    fn espconn_tls_close(c: *mut EspconnTls);
    fn espconn_sim_run() -> i32;
    fn espconn_sim_wdt_feeds() -> u64;
    fn espconn_sim_window() -> u32;
    fn espconn_tls_stack_high_water(c: *const EspconnTls) -> usize;
}

const ETLS_PENDING: i32 = 0;
const ETLS_READY: i32 = 1;
const ETLS_WOULD_BLOCK: i32 = -1;
const ETLS_ERR_DNS: i32 = -10;
const ETLS_ERR_TCP: i32 = -11;
const ETLS_ERR_SERVER_CERT: i32 = -12;

struct Conn {
    c: *mut EspconnTls,
}

impl Conn {
    fn new() -> Conn {
        let c = unsafe { espconn_tls_new() };
        assert!(!c.is_null());
        Conn { c }
    }

    /// start + poll_connect until ready or failed, running the simulated SDK between polls.
    fn connect(&mut self, host: &str, port: u16, m: &Material) -> i32 {
        let mut name = host.as_bytes().to_vec();
        name.push(0);
        let seed: [u8; 32] = rand::random();
        let pin = m.pin.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        let rc = unsafe {
            espconn_tls_start(
                self.c,
                name.as_ptr(),
                port,
                m.ca.as_ptr(),
                m.ca.len(),
                m.cert.as_ptr(),
                m.cert.len(),
                m.key.as_ptr(),
                m.key.len(),
                pin,
                m.floor,
                seed.as_ptr(),
            )
        };
        if rc != ETLS_PENDING {
            return rc;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            unsafe { espconn_sim_run() };
            let rc = unsafe { espconn_tls_poll_connect(self.c, m.cert.as_ptr(), m.cert.len()) };
            if rc != ETLS_PENDING {
                return rc;
            }
            assert!(Instant::now() < deadline, "connect did not finish");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn write_all(&mut self, mut data: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !data.is_empty() {
            unsafe { espconn_sim_run() };
            if unsafe { espconn_tls_write_ready(self.c) } != 0 {
                let n = unsafe { espconn_tls_write(self.c, data.as_ptr(), data.len()) };
                assert!(n > 0 || n == ETLS_WOULD_BLOCK, "write failed: {n}");
                if n > 0 {
                    data = &data[n as usize..];
                }
            }
            assert!(Instant::now() < deadline, "write stalled");
        }
        // Let the last records leave (the sent callback acknowledges them).
        for _ in 0..200 {
            unsafe { espconn_sim_run() };
            unsafe { espconn_tls_write_ready(self.c) };
        }
    }

    fn read_packet(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            if let Some((_, total)) = esp_client::mqtt::frame_len(&buf).unwrap() {
                if buf.len() >= total {
                    return buf;
                }
            }
            unsafe { espconn_sim_run() };
            let n = unsafe { espconn_tls_read(self.c, chunk.as_mut_ptr(), 1) };
            match n {
                n if n > 0 => buf.extend_from_slice(&chunk[..n as usize]),
                ETLS_WOULD_BLOCK => std::thread::sleep(Duration::from_micros(200)),
                other => panic!("read failed: {other}"),
            }
            assert!(Instant::now() < deadline, "no packet");
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        unsafe { espconn_tls_close(self.c) };
    }
}

#[test]
fn the_chip_glue_connects_publishes_and_refuses() {
    let setup = Setup::new();
    let port = setup.broker.port();
    let m = Material::of(&setup.pki, DEVICE);
    let mut conn = Conn::new();

    // Refusals first (the same connection object is reused, as on the chip).
    assert_eq!(conn.connect("no-such-host.invalid", port, &m), ETLS_ERR_DNS);
    let closed = broker_testkit::free_port();
    assert_eq!(conn.connect("localhost", closed, &m), ETLS_ERR_TCP);
    assert_eq!(
        conn.connect("127.0.0.1", port, &m),
        ETLS_ERR_SERVER_CERT,
        "an IP address is not a name in the broker certificate"
    );
    let mut late = Material::of(&setup.pki, DEVICE);
    late.floor = now_unix() + 400 * 86400;
    assert_eq!(conn.connect("localhost", port, &late), ETLS_ERR_SERVER_CERT);

    // Closed while its DNS lookup is in flight: the late answer must change nothing.
    let mut name = b"localhost".to_vec();
    name.push(0);
    let seed = [7u8; 32];
    let rc = unsafe {
        espconn_tls_start(
            conn.c,
            name.as_ptr(),
            port,
            m.ca.as_ptr(),
            m.ca.len(),
            m.cert.as_ptr(),
            m.cert.len(),
            m.key.as_ptr(),
            m.key.len(),
            std::ptr::null(),
            m.floor,
            seed.as_ptr(),
        )
    };
    assert_eq!(rc, ETLS_PENDING);
    unsafe { espconn_tls_close(conn.c) };
    assert_eq!(
        unsafe { espconn_sim_run() },
        1,
        "the late DNS answer was delivered"
    );
    assert_eq!(
        unsafe { espconn_tls_poll_connect(conn.c, m.cert.as_ptr(), m.cert.len()) },
        ETLS_ERR_TCP,
        "a closed session stays closed"
    );

    // Then the real thing: handshake, CONNECT, a retained PUBLISH mosquitto_sub receives.
    let feeds_before = unsafe { espconn_sim_wdt_feeds() };
    assert_eq!(conn.connect("localhost", port, &m), ETLS_READY);
    assert_eq!(
        unsafe { espconn_sim_window() },
        1460,
        "TCP window of one MSS"
    );
    assert!(
        unsafe { espconn_sim_wdt_feeds() } > feeds_before,
        "watchdog not fed"
    );
    let mut buf = [0u8; 128];
    let n = Connect {
        client_id: DEVICE,
        keep_alive_s: 30,
        clean_session: true,
        will: None,
    }
    .emit(&mut buf)
    .unwrap();
    conn.write_all(&buf[..n]);
    assert!(matches!(
        Packet::parse(&conn.read_packet()).unwrap(),
        Packet::ConnAck { code: 0, .. }
    ));
    let body = b"online via the chip's espconn glue";
    let n = Publish {
        topic: "devices/dev1/status",
        payload: body,
        qos: QoS::AtLeastOnce,
        retain: true,
        dup: false,
        pkid: 9,
    }
    .emit(&mut buf)
    .unwrap();
    conn.write_all(&buf[..n]);
    assert_eq!(
        Packet::parse(&conn.read_packet()).unwrap(),
        Packet::PubAck { pkid: 9 }
    );
    assert_eq!(
        operator_receives(&setup, "devices/dev1/status").as_deref(),
        Some(&body[..])
    );

    // The engine ran on the struct's own stack (ucontext here, tls_stack.S on the chip).
    let header = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../espconn_tls.h"),
    )
    .unwrap();
    let stack_len: usize = header
        .lines()
        .find_map(|l| l.strip_prefix("#define ESPTLS_STACK_LEN "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let high = unsafe { espconn_tls_stack_high_water(conn.c) };
    eprintln!("engine stack high water on x86-64: {high} of {stack_len} bytes");
    assert!(
        high > 1024 && high + 256 <= stack_len,
        "stack high water {high}"
    );

    // The broker goes away: the next read reports the end, it does not hang or succeed.
    let mut setup = setup;
    setup.broker.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut byte = [0u8; 1];
    loop {
        unsafe { espconn_sim_run() };
        let n = unsafe { espconn_tls_read(conn.c, byte.as_mut_ptr(), 1) };
        if n != ETLS_WOULD_BLOCK {
            assert!(n <= 0, "read data from a stopped broker: {n}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped connection was not noticed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
