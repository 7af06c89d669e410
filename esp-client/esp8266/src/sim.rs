//! The core's scenarios on a fake board and a scripted broker, `no_std` and allocation-free so
//! that the very same code runs on the host (`cargo test`) and on the LX106 core in QEMU
//! (`qemu-system-xtensa -M sim -cpu lx106`, output through semihosting). Both runs must print the
//! same transcript, byte for byte: `tests/lx106-transcript.txt`.
//!
//! The broker side decodes what the device sends with its own small MQTT 3.1.1 reader (not the
//! core's codec), so a device that encodes wrongly shows up as a `broker: malformed` line and a
//! failed scenario.

use core::fmt::Write;

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use esp_client::board::{
    AvrError, AvrLink, Board, ConnectError, NetStatus, Server, TlsMaterial, Transport,
};
use esp_client::machine::{Device, State, StateKind};
use esp_client::settings::Settings;
use wire_format::device_config::{Brokers, DeviceConfig, Endpoint};

/// The device id every scenario uses.
pub const ID: &str = "kitchen-sensor-1";
const BUILD_TIME: u64 = 1_760_000_000;
const SOURCE_TIME: u64 = 1_770_000_000;
/// The flash chip (4 MiB), with the device's config and state sectors where the chip has them.
const FLASH_LEN: usize = 4 << 20;
const CONFIG: usize = 0x3F_9000;
const STATE: usize = 0x3F_A000;

/// Why a scenario failed (the transcript says more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// The output sink refused a line.
    Output,
    /// The device sent bytes the broker could not decode.
    Malformed(&'static str),
    /// The core asked to be polled at once, forever.
    Spin,
    /// A scenario's expectation did not hold.
    Expectation(&'static str),
}

impl From<core::fmt::Error> for SimError {
    fn from(_: core::fmt::Error) -> Self {
        SimError::Output
    }
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SimError::Output => f.write_str("the output sink failed"),
            SimError::Malformed(what) => write!(f, "the device sent a malformed packet: {what}"),
            SimError::Spin => f.write_str("the core asks to be polled again at once, forever"),
            SimError::Expectation(what) => write!(f, "expectation failed: {what}"),
        }
    }
}

/// NOR flash over a borrowed buffer (the device's 4 MiB: a `Vec` on the host, RAM that QEMU
/// provides at 0x50000000 on the LX106). Writes only clear bits, so a missing erase shows.
pub struct SliceFlash<'a>(pub &'a mut [u8]);

impl ErrorType for SliceFlash<'_> {
    type Error = NorFlashErrorKind;
}

impl ReadNorFlash for SliceFlash<'_> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let o = offset as usize;
        let src = self
            .0
            .get(o..o + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for SliceFlash<'_> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if !from.is_multiple_of(4096) || !to.is_multiple_of(4096) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let r = self
            .0
            .get_mut(from as usize..to as usize)
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        r.fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let o = offset as usize;
        let d = self
            .0
            .get_mut(o..o + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        for (d, s) in d.iter_mut().zip(bytes) {
            *d &= *s;
        }
        Ok(())
    }
}

/// A byte queue of fixed capacity.
struct Queue<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Queue<N> {
    const fn new() -> Self {
        Queue {
            buf: [0; N],
            len: 0,
        }
    }
    fn push(&mut self, bytes: &[u8]) -> Result<(), SimError> {
        let end = self.len + bytes.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(SimError::Expectation(
                "a simulated socket buffer overflowed",
            ))?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
    fn take(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A fixed-size text buffer for the last retained status.
struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    const fn new() -> Self {
        Text {
            buf: [0; N],
            len: 0,
        }
    }
    fn set(&mut self, b: &[u8]) {
        let n = b.len().min(N);
        self.buf[..n].copy_from_slice(&b[..n]);
        self.len = n;
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Printable form of a payload (the device only sends ASCII; anything else shows as `?`).
struct Ascii<'a>(&'a [u8]);

impl core::fmt::Display for Ascii<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0 {
            f.write_char(if (0x20..0x7F).contains(&b) {
                b as char
            } else {
                '?'
            })?;
        }
        Ok(())
    }
}

/// Reads MQTT 3.1.1 fields from a packet body.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self, what: &'static str) -> Result<u8, SimError> {
        let (&v, rest) = self.b.split_first().ok_or(SimError::Malformed(what))?;
        self.b = rest;
        Ok(v)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, SimError> {
        Ok(u16::from(self.u8(what)?) << 8 | u16::from(self.u8(what)?))
    }
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SimError> {
        if self.b.len() < n {
            return Err(SimError::Malformed(what));
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(v)
    }
    fn string(&mut self, what: &'static str) -> Result<&'a [u8], SimError> {
        let n = self.u16(what)? as usize;
        self.bytes(n, what)
    }
}

/// The whole packet at the start of `b`: (first byte, header length, total length), or `None`
/// while incomplete.
fn frame(b: &[u8]) -> Result<Option<(u8, usize, usize)>, SimError> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut i = 1;
    loop {
        let Some(&d) = b.get(i) else {
            return Ok(None);
        };
        if i > 4 {
            return Err(SimError::Malformed("remaining length longer than 4 bytes"));
        }
        len |= usize::from(d & 0x7F) << (7 * (i - 1));
        i += 1;
        if d & 0x80 == 0 {
            break;
        }
    }
    Ok((b.len() >= i + len).then_some((first, i, i + len)))
}

/// The broker at the other end of the fake TLS connection.
pub struct Broker {
    /// Accepts connections.
    up: bool,
    /// Endpoints (hosts) that are down, as nodes of a cluster: TCP refused.
    dead: [Option<&'static str>; 2],
    /// The endpoint (host) of the current connection.
    on: Option<&'static str>,
    /// A connection is open.
    conn: bool,
    /// `connect_start` was called; the next `poll_connect` answers.
    connecting: bool,
    /// The broker side closed it (the device reads EOF).
    closed_by_broker: bool,
    answer_ping: bool,
    to_device: Queue<8192>,
    from_device: Queue<1024>,
    /// The Will of the current connection, and the last retained status.
    will: Text<16>,
    status: Text<16>,
    connects: u32,
    fault: Option<SimError>,
    /// Broker-side lines, printed by the board between its own.
    log: Queue<4096>,
}

impl Broker {
    fn new() -> Self {
        Broker {
            up: true,
            dead: [None; 2],
            on: None,
            conn: false,
            connecting: false,
            closed_by_broker: false,
            answer_ping: true,
            to_device: Queue::new(),
            from_device: Queue::new(),
            will: Text::new(),
            status: Text::new(),
            connects: 0,
            fault: None,
            log: Queue::new(),
        }
    }

    fn note(&mut self, args: core::fmt::Arguments<'_>) {
        struct W<'a>(&'a mut Queue<4096>);
        impl Write for W<'_> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                self.0.push(s.as_bytes()).map_err(|_| core::fmt::Error)
            }
        }
        let mut w = W(&mut self.log);
        if w.write_str("broker: ").is_err()
            || w.write_fmt(args).is_err()
            || w.write_str("\n").is_err()
        {
            self.fault = Some(SimError::Expectation("the broker log overflowed"));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.to_device.push(bytes) {
            self.fault = Some(e);
        }
    }

    /// Sends a PUBLISH on `devices/<ID>/<suffix>` (QoS 1 with packet id `pkid`, or QoS 0).
    fn publish(&mut self, suffix: &str, payload: &[u8], qos1: Option<u16>) {
        let topic_len = "devices/".len() + ID.len() + 1 + suffix.len();
        let mut remaining = 2 + topic_len + payload.len() + if qos1.is_some() { 2 } else { 0 };
        let mut hdr = [0u8; 5];
        hdr[0] = if qos1.is_some() { 0x32 } else { 0x30 };
        let mut n = 1;
        loop {
            let mut b = (remaining % 128) as u8;
            remaining /= 128;
            if remaining > 0 {
                b |= 0x80;
            }
            hdr[n] = b;
            n += 1;
            if remaining == 0 {
                break;
            }
        }
        self.send(&hdr[..n]);
        self.send(&[(topic_len >> 8) as u8, topic_len as u8]);
        self.send(b"devices/");
        self.send(ID.as_bytes());
        self.send(b"/");
        self.send(suffix.as_bytes());
        if let Some(id) = qos1 {
            self.send(&id.to_be_bytes());
        }
        self.send(payload);
    }

    /// A PUBLISH on `devices/<ID>/cmd/<name>`, QoS 1, packet id 77.
    pub fn command(&mut self, name: &str, payload: &str) {
        self.note(format_args!(
            "-> PUBLISH devices/{ID}/cmd/{name} qos=1 id=77 \"{payload}\""
        ));
        let mut suffix = [0u8; 64];
        let n = 4 + name.len();
        if n > suffix.len() {
            self.fault = Some(SimError::Expectation("scripted command too long"));
            return;
        }
        suffix[..4].copy_from_slice(b"cmd/");
        suffix[4..n].copy_from_slice(name.as_bytes());
        let suffix = core::str::from_utf8(&suffix[..n]).unwrap_or("cmd/?");
        self.publish(suffix, payload.as_bytes(), Some(77));
    }

    /// The operator offers [`OTA_BUNDLE`] (not retained, QoS 1).
    pub fn offer(&mut self) {
        match wire_format::ota_proto::Offer::from_bundle(OTA_BUNDLE) {
            Ok(offer) => {
                self.note(format_args!(
                    "-> PUBLISH devices/{ID}/ota/down/offer qos=1 id=78 ({} bytes)",
                    wire_format::ota_proto::OFFER_LEN
                ));
                self.publish("ota/down/offer", &offer.to_bytes(), Some(78));
            }
            Err(_) => self.fault = Some(SimError::Expectation("the bundle makes an offer")),
        }
    }

    /// Answers a range request from the bundle's image with a chunk (QoS 0).
    fn answer(&mut self, payload: &[u8]) {
        use wire_format::ota_proto::{Chunk, Request, MAX_CHUNK_MSG};
        let Ok(r) = Request::parse(payload) else {
            self.fault = Some(SimError::Malformed("OTA request"));
            return;
        };
        let image = &OTA_BUNDLE[wire_format::ota::IMAGE_OFFSET..];
        let at = r.offset as usize;
        let Some(data) = image.get(at..(at + usize::from(r.len)).min(image.len())) else {
            self.fault = Some(SimError::Expectation("a request inside the image"));
            return;
        };
        let mut buf = [0u8; MAX_CHUNK_MSG];
        let chunk = Chunk {
            bundle_id: r.bundle_id,
            offset: r.offset,
            data,
        };
        match chunk.emit(&mut buf) {
            Ok(n) => {
                self.note(format_args!(
                    "<- request offset={} len={}, -> chunk of {} bytes",
                    r.offset,
                    r.len,
                    data.len()
                ));
                self.publish("ota/down/chunk", &buf[..n], None);
            }
            Err(_) => self.fault = Some(SimError::Expectation("a chunk fits")),
        }
    }

    /// The broker process dies: the connection drops (the Will fires) and it refuses new ones.
    pub fn crash(&mut self) {
        self.note(format_args!("crashes; connection dropped, Will fired"));
        if self.conn {
            self.closed_by_broker = true;
        }
        self.fire_will();
        self.up = false;
    }

    /// One node of a cluster dies: if the device is on it, its connection drops (the Will
    /// fires); from now on it refuses TCP.
    pub fn crash_node(&mut self, host: &'static str) {
        self.note(format_args!("node {host} crashes"));
        if self.conn && self.on == Some(host) {
            self.closed_by_broker = true;
            self.fire_will();
        }
        match self.dead.iter_mut().find(|d| d.is_none()) {
            Some(slot) => *slot = Some(host),
            None => self.fault = Some(SimError::Expectation("at most two dead nodes")),
        }
    }

    fn fire_will(&mut self) {
        if self.will.len > 0 {
            let mut w = Text::<16>::new();
            w.set(self.will.as_bytes());
            self.status.set(w.as_bytes());
            self.will.len = 0;
        }
    }

    /// Decodes and answers every whole packet the device sent.
    fn serve(&mut self) {
        while self.fault.is_none() {
            let (first, hdr, len) = match frame(self.from_device.as_slice()) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    self.fault = Some(e);
                    return;
                }
            };
            let mut body = [0u8; 512];
            let packet = self.from_device.as_slice();
            let n = len - hdr;
            if n > body.len() {
                self.fault = Some(SimError::Malformed("packet larger than the broker accepts"));
                return;
            }
            body[..n].copy_from_slice(&packet[hdr..len]);
            self.from_device.take(len);
            if let Err(e) = self.packet(first, &body[..n]) {
                self.note(format_args!("malformed packet from the device"));
                self.fault = Some(e);
            }
        }
    }

    fn packet(&mut self, first: u8, body: &[u8]) -> Result<(), SimError> {
        let mut r = Reader { b: body };
        match first >> 4 {
            1 => {
                let proto = r.string("protocol name")?;
                let level = r.u8("protocol level")?;
                let flags = r.u8("connect flags")?;
                let keep_alive = r.u16("keep alive")?;
                if proto != b"MQTT" || level != 4 {
                    return Err(SimError::Malformed("not MQTT 3.1.1"));
                }
                let id = r.string("client id")?;
                let mut will_topic: &[u8] = b"";
                let mut will_msg: &[u8] = b"";
                if flags & 0x04 != 0 {
                    will_topic = r.string("will topic")?;
                    will_msg = r.string("will message")?;
                }
                self.note(format_args!(
                    "<- CONNECT client_id={} keep_alive={keep_alive} clean={} will={} \"{}\" retain={}",
                    Ascii(id),
                    flags >> 1 & 1,
                    Ascii(will_topic),
                    Ascii(will_msg),
                    flags >> 5 & 1
                ));
                self.will.set(will_msg);
                self.note(format_args!("-> CONNACK 0"));
                self.send(&[0x20, 2, 0, 0]);
            }
            3 => {
                let qos = first >> 1 & 3;
                let topic = r.string("topic")?;
                let pkid = if qos > 0 { r.u16("packet id")? } else { 0 };
                let payload = r.b;
                if topic.ends_with(b"/ota/up/request") {
                    self.answer(payload);
                } else if topic.ends_with(b"/ota/up/status") {
                    match wire_format::ota_proto::Status::parse(payload) {
                        Ok(st) => self.note(format_args!(
                            "<- PUBLISH {} qos={qos} retain={} id={pkid}: {} received {}/{} running {}",
                            Ascii(topic),
                            first & 1,
                            st.phase,
                            st.received,
                            st.image_len,
                            st.running
                        )),
                        Err(_) => return Err(SimError::Malformed("OTA status")),
                    }
                } else {
                    self.note(format_args!(
                        "<- PUBLISH {} qos={qos} retain={} id={pkid} \"{}\"",
                        Ascii(topic),
                        first & 1,
                        Ascii(payload)
                    ));
                }
                if first & 1 != 0 && topic.ends_with(b"/status") && !topic.ends_with(b"/up/status")
                {
                    self.status.set(payload);
                }
                if qos == 1 {
                    self.send(&[0x40, 2, (pkid >> 8) as u8, pkid as u8]);
                }
            }
            4 => {
                let pkid = r.u16("packet id")?;
                self.note(format_args!("<- PUBACK id={pkid}"));
            }
            8 => {
                let pkid = r.u16("packet id")?;
                let mut codes = [0u8; 8];
                let mut n = 0;
                while !r.b.is_empty() {
                    let filter = r.string("filter")?;
                    let qos = r.u8("requested qos")?;
                    self.note(format_args!(
                        "<- SUBSCRIBE id={pkid} {} qos={qos}",
                        Ascii(filter)
                    ));
                    *codes
                        .get_mut(n)
                        .ok_or(SimError::Malformed("too many filters"))? = qos;
                    n += 1;
                }
                self.send(&[0x90, 2 + n as u8, (pkid >> 8) as u8, pkid as u8]);
                self.send(&codes[..n]);
            }
            12 => {
                if self.answer_ping {
                    self.send(&[0xD0, 0]);
                }
            }
            14 => {
                self.note(format_args!("<- DISCONNECT"));
                self.will.len = 0;
                self.closed_by_broker = true;
            }
            _ => return Err(SimError::Malformed("unexpected packet type")),
        }
        Ok(())
    }
}

impl embedded_io::ErrorType for Broker {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Broker {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if !self.conn {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        let n = buf.len().min(self.to_device.len);
        buf[..n].copy_from_slice(&self.to_device.as_slice()[..n]);
        self.to_device.take(n);
        Ok(n) // 0 after the broker closed: EOF
    }
}

impl embedded_io::ReadReady for Broker {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        if !self.conn {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        Ok(self.to_device.len > 0 || self.closed_by_broker)
    }
}

impl embedded_io::Write for Broker {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if !self.conn {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        if self.closed_by_broker {
            return Err(embedded_io::ErrorKind::BrokenPipe);
        }
        if self.from_device.push(buf).is_err() {
            return Err(embedded_io::ErrorKind::OutOfMemory);
        }
        self.serve();
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::WriteReady for Broker {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        if !self.conn {
            return Err(embedded_io::ErrorKind::NotConnected);
        }
        Ok(true)
    }
}

impl Transport for Broker {
    fn connect_start(
        &mut self,
        _server: Server<'_>,
        _tls: &TlsMaterial<'_>,
    ) -> Result<(), ConnectError> {
        self.close();
        self.connecting = true;
        Ok(())
    }
    /// The whole handshake happens on the first poll.
    fn poll_connect(
        &mut self,
        server: Server<'_>,
        tls: &TlsMaterial<'_>,
    ) -> core::task::Poll<Result<(), ConnectError>> {
        if !core::mem::take(&mut self.connecting) {
            return core::task::Poll::Ready(Err(ConnectError::Tcp));
        }
        if !self.up || self.dead.contains(&Some(server.host)) {
            self.note(format_args!(
                "refuses TCP from the device ({}:{})",
                server.host, server.port
            ));
            return core::task::Poll::Ready(Err(ConnectError::Tcp));
        }
        self.on = NODES.iter().find(|n| n.host == server.host).map(|n| n.host);
        self.connects += 1;
        self.note(format_args!(
            "TLS connection from the device to {}:{} (time floor {})",
            server.host, server.port, tls.time_floor_unix
        ));
        self.conn = true;
        self.closed_by_broker = false;
        self.to_device.len = 0;
        self.from_device.len = 0;
        core::task::Poll::Ready(Ok(()))
    }
    fn close(&mut self) {
        if self.conn && !self.closed_by_broker {
            self.fire_will();
        }
        self.conn = false;
        self.connecting = false;
    }
}

/// The IO co-processor: ports B, C, D and eight ADC channels.
pub struct FakeAvr {
    ports: [u8; 3],
    adc: [u16; 8],
}

impl AvrLink for FakeAvr {
    fn set_pin(&mut self, pin: u8, high: bool) -> Result<(), AvrError> {
        let (port, bit) = (pin as usize / 8, pin % 8);
        let p = self.ports.get_mut(port).ok_or(AvrError::Refused(2))?;
        if high {
            *p |= 1 << bit;
        } else {
            *p &= !(1 << bit);
        }
        Ok(())
    }
    fn read_ports(&mut self) -> Result<[u8; 3], AvrError> {
        Ok(self.ports)
    }
    fn read_adc(&mut self, channel: u8) -> Result<u16, AvrError> {
        self.adc
            .get(channel as usize)
            .copied()
            .ok_or(AvrError::Refused(3))
    }
}

/// The fake board: every line it logs goes to `out`, after the broker's lines.
pub struct SimBoard<'o, 'f, W: Write> {
    pub broker: Broker,
    /// The whole 4 MiB flash chip, laid out as the ESP8266's.
    flash: SliceFlash<'f>,
    avr: FakeAvr,
    rng: u32,
    network: NetStatus,
    time_source: Option<u64>,
    out: &'o mut W,
    out_failed: bool,
    /// Kinds of the states entered, newest last (the scenarios check a few).
    last: StateKind,
    resets: u32,
}

impl<W: Write> SimBoard<'_, '_, W> {
    fn flush_broker(&mut self) {
        if self.broker.log.len > 0 {
            let text = core::str::from_utf8(self.broker.log.as_slice()).unwrap_or("?\n");
            if self.out.write_str(text).is_err() {
                self.out_failed = true;
            }
            self.broker.log.len = 0;
        }
    }

    fn line(&mut self, args: core::fmt::Arguments<'_>) {
        self.flush_broker();
        if self.out.write_fmt(args).is_err() || self.out.write_str("\n").is_err() {
            self.out_failed = true;
        }
    }
}

impl<'f, W: Write> Board for SimBoard<'_, 'f, W> {
    type Transport = Broker;
    type Flash = SliceFlash<'f>;
    type Avr = FakeAvr;

    fn now_ms(&mut self) -> u64 {
        0 // the scenario passes the time to `poll`
    }
    fn transport(&mut self) -> &mut Broker {
        &mut self.broker
    }
    fn flash(&mut self) -> &mut Self::Flash {
        &mut self.flash
    }
    fn avr(&mut self) -> &mut FakeAvr {
        &mut self.avr
    }
    fn random_u32(&mut self) -> u32 {
        self.rng = self.rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        self.rng >> 8
    }
    fn network(&mut self, _ssid: &str, _password: &str) -> NetStatus {
        self.network
    }
    fn time_source(&mut self) -> Option<u64> {
        self.time_source
    }
    fn feed_watchdog(&mut self) {}
    fn reset(&mut self) {
        self.resets += 1;
        // What the loader does at every boot: the OTA boot decision, persisted before the jump.
        let b = esp_client::ota::boot(&mut self.flash, &esp_client::ota::Layout::ESP8266_4M);
        self.line(format_args!(
            "loader: reset; boots slot {} ({:?})",
            b.slot, b.kind
        ));
    }
    fn ota_layout(&self) -> Option<&'static esp_client::ota::Layout> {
        Some(&esp_client::ota::Layout::ESP8266_4M)
    }
    fn log(&mut self, line: core::fmt::Arguments<'_>) {
        self.line(format_args!("device: {line}"));
    }
    fn transition(&mut self, now_ms: u64, from: &State, to: &State) {
        self.last = to.kind();
        self.line(format_args!("device: [{now_ms} ms] {from} => {to}"));
    }
}

/// The cluster of the failover scenario, as its config names it.
const NODES: [Endpoint<'static>; 3] = [
    Endpoint {
        host: "node-1.local",
        port: 8883,
    },
    Endpoint {
        host: "node-2.local",
        port: 8884,
    },
    Endpoint {
        host: "node-3.local",
        port: 8885,
    },
];

fn config_blob(buf: &mut [u8], brokers: &[Endpoint<'_>]) -> Result<usize, SimError> {
    let brokers =
        Brokers::new(brokers).map_err(|_| SimError::Expectation("at most four endpoints"))?;
    let cfg = DeviceConfig {
        device_id: ID,
        wifi_ssid: "home",
        wifi_password: "secret-pass",
        brokers,
        telemetry_period_s: 30,
        ca_cert_der: b"\x30\x03ca!",
        client_cert_der: b"\x30\x03crt",
        client_key_der: b"\x30\x03key",
        broker_pin: None,
        ota_keys: &[wire_format::device_config::ota_key_entry(
            OTA_KEY.key_id,
            &OTA_KEY.public_key,
        )],
        persistent_session: false,
    };
    cfg.emit(buf)
        .map_err(|_| SimError::Expectation("the config blob did not encode"))
}

/// One scenario's world: the device, its board and virtual time.
struct World<'o, 'f, W: Write> {
    dev: Device,
    board: SimBoard<'o, 'f, W>,
    now: u64,
}

impl<W: Write> World<'_, '_, W> {
    /// Polls the device whenever it asks to be, from `now` to `until`.
    fn run(&mut self, until: u64) -> Result<(), SimError> {
        let mut same = 0;
        while self.now < until {
            let next = self.dev.poll(self.now, &mut self.board);
            self.board.flush_broker();
            if let Some(e) = self.board.broker.fault {
                return Err(e);
            }
            if self.board.out_failed {
                return Err(SimError::Output);
            }
            if next <= self.now {
                same += 1;
                if same >= 100 {
                    return Err(SimError::Spin);
                }
            } else {
                same = 0;
                self.now = next.min(until);
            }
        }
        Ok(())
    }

    fn expect(&self, kind: StateKind, what: &'static str) -> Result<(), SimError> {
        if self.dev.state().kind() == kind {
            Ok(())
        } else {
            Err(SimError::Expectation(what))
        }
    }

    fn stats(&mut self, out_label: &str) -> Result<(), SimError> {
        let s = self.dev.stats();
        let connects = self.board.broker.connects;
        let mut status = Text::<16>::new();
        status.set(self.board.broker.status.as_bytes());
        self.board.line(format_args!(
            "stats after {out_label}: connects={} telemetry_sent={} commands={} retransmits={} broker_connects={} retained_status=\"{}\"",
            s.connects,
            s.telemetry_sent,
            s.commands,
            s.retransmits,
            connects,
            Ascii(status.as_bytes()),
        ));
        if self.board.out_failed {
            return Err(SimError::Output);
        }
        Ok(())
    }
}

/// The OTA scenario's bundle: a 12,000-byte image signed by the test key [`OTA_KEY`]
/// (tests/ota-bundle.bin; a host test rebuilds it and must get the same bytes).
pub static OTA_BUNDLE: &[u8] = include_bytes!("../tests/ota-bundle.bin");
/// The test key's public half, id 1 (the seed is `[7; 32]`, in the host test only).
pub const OTA_KEY: wire_format::ota::TrustedKey = wire_format::ota::TrustedKey {
    key_id: 1,
    public_key: OTA_PUBLIC_KEY,
};
const OTA_PUBLIC_KEY: [u8; 32] = [
    0xea, 0x4a, 0x6c, 0x63, 0xe2, 0x9c, 0x52, 0x0a, 0xbe, 0xf5, 0x50, 0x7b, 0x13, 0x2e, 0xc5, 0xf9,
    0x95, 0x47, 0x76, 0xae, 0xbe, 0xbe, 0x7b, 0x92, 0x42, 0x1e, 0xea, 0x69, 0x14, 0x46, 0xd2, 0x2c,
];

/// Runs every scenario in order, printing the transcript to `out`. `flash` (4 MiB) is the
/// device's flash chip.
pub fn run_all<W: Write>(out: &mut W, flash: &mut [u8]) -> Result<(), SimError> {
    if flash.len() < FLASH_LEN {
        return Err(SimError::Expectation("a 4 MiB flash"));
    }
    flash.fill(0xFF);
    config_blob(
        &mut flash[CONFIG..CONFIG + 4096],
        &[Endpoint {
            host: "broker.local",
            port: 8883,
        }],
    )?;
    let flash = SliceFlash(flash);
    let settings = Settings {
        build_time_unix: BUILD_TIME,
        config_offset: CONFIG as u32,
        state_offset: STATE as u32,
        ..Settings::default()
    };
    writeln!(
        out,
        "== esp-client core on {}: boot, command round trip, dropped connection, OTA, failover",
        if cfg!(target_arch = "xtensa") {
            "LX106"
        } else {
            "host"
        }
    )?;
    // The arch line differs between the two runs on purpose; everything after it must not.
    let mut w = World {
        dev: Device::new(settings),
        board: SimBoard {
            broker: Broker::new(),
            flash,
            avr: FakeAvr {
                ports: [0b0000_0001, 0, 0b1000_0000],
                adc: [512, 1023, 0, 7, 0, 0, 0, 0],
            },
            rng: 1,
            network: NetStatus::Up,
            time_source: Some(SOURCE_TIME),
            out,
            out_failed: false,
            last: StateKind::Boot,
            resets: 0,
        },
        now: 0,
    };

    w.board.line(format_args!("== scenario: boot to online"));
    w.run(31_000)?;
    w.expect(StateKind::Online, "online after boot")?;
    if w.board.broker.status.as_bytes() != b"online" {
        return Err(SimError::Expectation("retained status is online"));
    }
    if w.board.flash.0[STATE..STATE + 4] != *b"ESPT" {
        return Err(SimError::Expectation("the synced time was persisted"));
    }
    w.stats("boot")?;

    w.board
        .line(format_args!("== scenario: command round trip"));
    w.board.broker.command("set-pin", "pin=9 level=1 req=r1");
    w.run(32_000)?;
    w.board.broker.command("read-adc", "channel=1");
    w.run(33_000)?;
    w.board.broker.command("fly", "");
    w.run(34_000)?;
    if w.board.avr.ports[1] & 0b10 == 0 {
        return Err(SimError::Expectation("set-pin drove PC1 high"));
    }
    if w.dev.stats().commands != 3 {
        return Err(SimError::Expectation("three commands handled"));
    }
    w.stats("commands")?;

    w.board.line(format_args!(
        "== scenario: dropped connection, backoff, reconnect"
    ));
    w.board.broker.crash();
    w.run(50_000)?;
    w.expect(StateKind::Backoff, "backing off while the broker is down")?;
    if w.board.broker.status.as_bytes() != b"offline" {
        return Err(SimError::Expectation("the Will set the status offline"));
    }
    w.board.broker.up = true;
    w.board
        .line(format_args!("broker: back up at {} ms", w.now));
    w.run(90_000)?;
    w.expect(StateKind::Online, "online again after the broker came back")?;
    if w.board.broker.status.as_bytes() != b"online" {
        return Err(SimError::Expectation("retained status is online again"));
    }
    w.stats("reconnect")?;
    if w.board.resets != 0 {
        return Err(SimError::Expectation("no reset"));
    }
    w.board.line(format_args!(
        "== scenario: OTA over MQTT: offer, download, verify, reset, trial boot, confirm"
    ));
    w.board.broker.offer();
    let start = w.now;
    while w.board.resets == 0 && w.now < start + 60_000 {
        let until = w.now + 1_000;
        w.run(until)?;
    }
    if w.board.resets != 1 {
        return Err(SimError::Expectation(
            "the device resets after the download",
        ));
    }
    let until = w.now + 30_000;
    w.run(until)?;
    w.expect(StateKind::Online, "online again on the new image")?;
    let stored =
        esp_client::ota::state::read(&mut w.board.flash, &esp_client::ota::Layout::ESP8266_4M);
    let s = stored.state;
    w.board.line(format_args!(
        "flash: boot state active slot {} pending {:?} floor {} outcome {:?}",
        s.active, s.pending, s.floor, s.outcome
    ));
    if s.active != esp_client::ota::Slot::B || s.pending.is_some() || s.floor != 1 {
        return Err(SimError::Expectation(
            "the new image is confirmed in slot B",
        ));
    }
    let image = &OTA_BUNDLE[wire_format::ota::IMAGE_OFFSET..];
    let b = esp_client::ota::Layout::ESP8266_4M.slots[1].image as usize;
    if w.board.flash.0.get(b..b + image.len()) != Some(image) {
        return Err(SimError::Expectation("slot B holds the image"));
    }
    w.stats("OTA")?;
    failover(&mut w)?;
    w.board.line(format_args!("== all scenarios passed"));
    if w.board.out_failed {
        return Err(SimError::Output);
    }
    Ok(())
}

/// The failover scenario, in its own frame (LLVM's Xtensa backend cannot spill registers in
/// one that holds every scenario's locals).
#[inline(never)]
fn failover<W: Write>(w: &mut World<'_, '_, W>) -> Result<(), SimError> {
    w.board.line(format_args!(
        "== scenario: a cluster: the first node is down, the device's node dies, the next serves"
    ));
    // A new config naming three nodes, flashed while the device runs; a reboot command loads it.
    let sector = &mut w.board.flash.0[CONFIG..CONFIG + 4096];
    sector.fill(0xFF);
    config_blob(sector, &NODES)?;
    w.board.broker.crash_node("node-1.local");
    w.board.broker.command("reboot", "");
    let until = w.now + 10_000;
    w.run(until)?;
    w.expect(StateKind::Online, "online on the second node")?;
    if w.dev.endpoint() != Some(NODES[1]) || w.board.broker.on != Some("node-2.local") {
        return Err(SimError::Expectation("the device is on node 2"));
    }
    w.board.broker.crash_node("node-2.local");
    let until = w.now + 5_000;
    w.run(until)?;
    w.expect(StateKind::Online, "online on the third node")?;
    if w.dev.endpoint() != Some(NODES[2]) || w.board.broker.status.as_bytes() != b"online" {
        return Err(SimError::Expectation("the device is on node 3, online"));
    }
    w.stats("failover")
}

#[cfg(test)]
mod tests {
    use std::string::String;
    use std::vec::Vec;

    /// tests/ota-bundle.bin is what this makes: a pseudo-random 12,000-byte image (three flash
    /// sectors, the last one partial), version 1.2.0, counter 1, signed with the seed-[7; 32]
    /// Ed25519 key. `UPDATE_TRANSCRIPT=1` rewrites it too.
    #[test]
    fn the_ota_fixture_is_reproducible() {
        use ed25519_dalek::{Signer, SigningKey};
        use wire_format::ota::{sha256, signing_message, Header, Target, Version};
        let key = SigningKey::from_bytes(&[7; 32]);
        assert_eq!(key.verifying_key().to_bytes(), super::OTA_PUBLIC_KEY);
        let mut x = 0x1234_5678u32;
        let image: Vec<u8> = (0..12_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let header = Header {
            target: Target::Esp8266,
            key_id: 1,
            security_counter: 1,
            image_len: image.len() as u32,
            version: Version {
                major: 1,
                minor: 2,
                patch: 0,
            },
            build_time: 1_760_000_000,
            image_sha256: sha256(&image),
        }
        .to_bytes();
        let sig = key.sign(&signing_message(&header)).to_bytes();
        let bundle = [&header[..], &sig[..], &image[..]].concat();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ota-bundle.bin");
        if std::env::var_os("UPDATE_TRANSCRIPT").is_some() {
            std::fs::write(path, &bundle).unwrap();
        }
        assert_eq!(std::fs::read(path).unwrap(), bundle, "{path} is stale");
    }

    /// The host run prints the committed transcript (the LX106 run in QEMU must print the same:
    /// tests/lx106.rs). `UPDATE_TRANSCRIPT=1` rewrites the file after a deliberate change.
    #[test]
    fn host_transcript_matches_the_committed_one() {
        let mut out = String::new();
        let mut flash = std::vec![0xFFu8; 4 << 20];
        let r = super::run_all(&mut out, &mut flash);
        assert!(r.is_ok(), "{:?}\n{out}", r);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lx106-transcript.txt");
        let body = out.split_once('\n').unwrap().1;
        if std::env::var_os("UPDATE_TRANSCRIPT").is_some() {
            std::fs::write(path, body).unwrap();
        }
        let want = std::fs::read_to_string(path).unwrap();
        assert_eq!(body, want, "transcript differs from {path}");
    }
}
