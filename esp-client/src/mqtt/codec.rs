//! A compact MQTT 3.1.1 codec: the packets a device-side client sends and receives, over caller
//! buffers, without allocation. Outgoing packets are `emit`ted into a slice; incoming bytes are
//! framed with [`frame_len`] and parsed with [`Packet::parse`]. Anything malformed is an error
//! naming the problem; nothing here panics on broker bytes (see fuzz/fuzz_targets/mqtt_decode.rs).
//!
//! Why our own and not a crate: docs/esp-client.md, "MQTT codec".

/// Constants of the format.
pub mod consts {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBACK: u8 = 4;
    pub const SUBSCRIBE: u8 = 8;
    pub const SUBACK: u8 = 9;
    pub const PINGREQ: u8 = 12;
    pub const PINGRESP: u8 = 13;
    pub const DISCONNECT: u8 = 14;
    /// "MQTT", protocol level 4 (3.1.1).
    pub const PROTOCOL_NAME: &[u8] = b"\x00\x04MQTT";
    pub const PROTOCOL_LEVEL: u8 = 4;
    /// Remaining length: at most four 7-bit groups.
    pub const MAX_REMAINING_LEN: usize = 268_435_455;
    /// Fixed header: type byte + up to four length bytes.
    pub const MAX_FIXED_HEADER: usize = 5;
    /// SUBACK return code for a refused subscription.
    pub const SUBACK_FAILURE: u8 = 0x80;
    /// Topic filters one SUBSCRIBE/SUBACK may carry here.
    pub const MAX_FILTERS: usize = 4;
}
use consts::*;

/// Quality of service. QoS 2 is outside this client's subset (it subscribes with QoS 1 at most, so
/// a broker never sends it QoS 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
}

/// Why bytes from the broker were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining-length field uses more than four bytes.
    BadRemainingLength,
    /// The packet is larger than the receive buffer: `len` bytes, at most `max`.
    TooLarge { len: usize, max: usize },
    /// A packet type a client never receives, or a reserved one.
    UnexpectedType(u8),
    /// The fixed-header flags are wrong for this packet type.
    BadFlags { kind: u8, flags: u8 },
    /// The packet body is shorter or longer than its type requires.
    BadLength { kind: u8, len: usize },
    /// QoS 2 or the invalid QoS 3 in a PUBLISH.
    UnsupportedQoS(u8),
    /// A topic that is not UTF-8, is empty, or holds a wildcard or NUL.
    BadTopic,
    /// A QoS 1 PUBLISH or an ack with packet id 0.
    ZeroPacketId,
    /// More SUBACK return codes than [`consts::MAX_FILTERS`].
    TooManyCodes(usize),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::BadRemainingLength => {
                write!(f, "MQTT remaining length longer than 4 bytes")
            }
            DecodeError::TooLarge { len, max } => write!(
                f,
                "MQTT packet of {len} bytes exceeds the {max}-byte receive buffer"
            ),
            DecodeError::UnexpectedType(t) => {
                write!(f, "MQTT packet type {t} is not expected by a client")
            }
            DecodeError::BadFlags { kind, flags } => {
                write!(
                    f,
                    "MQTT packet type {kind} has invalid header flags {flags:#x}"
                )
            }
            DecodeError::BadLength { kind, len } => {
                write!(f, "MQTT packet type {kind} has invalid length {len}")
            }
            DecodeError::UnsupportedQoS(q) => write!(f, "MQTT PUBLISH with unsupported QoS {q}"),
            DecodeError::BadTopic => write!(
                f,
                "MQTT PUBLISH topic is empty, not UTF-8 or has a wildcard"
            ),
            DecodeError::ZeroPacketId => write!(f, "MQTT packet id 0 where one is required"),
            DecodeError::TooManyCodes(n) => write!(f, "MQTT SUBACK with {n} return codes"),
        }
    }
}

/// Why a packet could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer holds `have` bytes; the packet needs `need`.
    BufferTooSmall { need: usize, have: usize },
    /// A string or binary field longer than 65535 bytes.
    FieldTooLong(usize),
    /// A topic with a wildcard, NUL or nothing in it (PUBLISH / will).
    BadTopic,
    /// Packet id 0 on a packet that needs one.
    ZeroPacketId,
    /// A SUBSCRIBE with no filter or more than [`consts::MAX_FILTERS`].
    BadFilterCount(usize),
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::BufferTooSmall { need, have } => write!(
                f,
                "MQTT packet needs {need} bytes; the transmit buffer has {have}"
            ),
            EncodeError::FieldTooLong(n) => write!(f, "MQTT field of {n} bytes exceeds 65535"),
            EncodeError::BadTopic => write!(f, "MQTT topic is empty or has a wildcard or NUL"),
            EncodeError::ZeroPacketId => write!(f, "MQTT packet id must not be 0"),
            EncodeError::BadFilterCount(n) => write!(f, "MQTT SUBSCRIBE with {n} filters"),
        }
    }
}

/// The retained message a broker publishes for a client that vanishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
}

/// CONNECT. No username/password: on our broker the identity is the client certificate's CN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    pub client_id: &'a str,
    pub keep_alive_s: u16,
    pub clean_session: bool,
    pub will: Option<Will<'a>>,
}

/// PUBLISH, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
    pub dup: bool,
    /// 0 for QoS 0.
    pub pkid: u16,
}

/// SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    pub pkid: u16,
    pub filters: &'a [(&'a str, QoS)],
}

/// A packet from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    ConnAck {
        session_present: bool,
        code: u8,
    },
    Publish(Publish<'a>),
    PubAck {
        pkid: u16,
    },
    SubAck {
        pkid: u16,
        codes: [u8; MAX_FILTERS],
        count: usize,
    },
    PingResp,
}

/// Bytes of a remaining-length field for `len`.
fn varint_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writer over the caller's buffer; fails with [`EncodeError::BufferTooSmall`] instead of
/// panicking.
struct Out<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Out<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    fn field(&mut self, b: &[u8]) {
        self.u16(b.len() as u16);
        self.bytes(b);
    }
}

/// Starts a packet of `body` bytes: checks the buffer and writes the fixed header.
fn begin(buf: &mut [u8], first: u8, body: usize) -> Result<Out<'_>, EncodeError> {
    let need = 1 + varint_len(body) + body;
    if body > MAX_REMAINING_LEN || need > buf.len() {
        return Err(EncodeError::BufferTooSmall {
            need,
            have: buf.len(),
        });
    }
    let mut out = Out { buf, pos: 0 };
    out.u8(first);
    let mut rest = body;
    loop {
        let byte = (rest % 128) as u8;
        rest /= 128;
        if rest == 0 {
            out.u8(byte);
            break;
        }
        out.u8(byte | 0x80);
    }
    Ok(out)
}

fn check_field(b: &[u8]) -> Result<usize, EncodeError> {
    if b.len() > u16::MAX as usize {
        return Err(EncodeError::FieldTooLong(b.len()));
    }
    Ok(2 + b.len())
}

fn check_topic(t: &str) -> Result<usize, EncodeError> {
    if t.is_empty() || t.bytes().any(|c| matches!(c, b'+' | b'#' | 0)) {
        return Err(EncodeError::BadTopic);
    }
    check_field(t.as_bytes())
}

impl Connect<'_> {
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut body = PROTOCOL_NAME.len() + 1 + 1 + 2 + check_field(self.client_id.as_bytes())?;
        let mut flags = if self.clean_session { 0x02 } else { 0 };
        if let Some(w) = &self.will {
            body += check_topic(w.topic)? + check_field(w.payload)?;
            flags |= 0x04 | ((w.qos as u8) << 3) | if w.retain { 0x20 } else { 0 };
        }
        let mut out = begin(buf, CONNECT << 4, body)?;
        out.bytes(PROTOCOL_NAME);
        out.u8(PROTOCOL_LEVEL);
        out.u8(flags);
        out.u16(self.keep_alive_s);
        out.field(self.client_id.as_bytes());
        if let Some(w) = &self.will {
            out.field(w.topic.as_bytes());
            out.field(w.payload);
        }
        Ok(out.pos)
    }
}

impl Publish<'_> {
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut body = check_topic(self.topic)? + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            if self.pkid == 0 {
                return Err(EncodeError::ZeroPacketId);
            }
            body += 2;
        }
        let first = PUBLISH << 4
            | if self.dup { 0x08 } else { 0 }
            | (self.qos as u8) << 1
            | if self.retain { 0x01 } else { 0 };
        let mut out = begin(buf, first, body)?;
        out.field(self.topic.as_bytes());
        if self.qos != QoS::AtMostOnce {
            out.u16(self.pkid);
        }
        out.bytes(self.payload);
        Ok(out.pos)
    }

    /// Sets the DUP flag in an already emitted PUBLISH (retransmission), without re-encoding.
    pub fn set_dup(packet: &mut [u8]) {
        if let Some(first) = packet.first_mut() {
            if *first >> 4 == PUBLISH {
                *first |= 0x08;
            }
        }
    }
}

impl Subscribe<'_> {
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if self.pkid == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        if self.filters.is_empty() || self.filters.len() > MAX_FILTERS {
            return Err(EncodeError::BadFilterCount(self.filters.len()));
        }
        let mut body = 2;
        for (filter, _) in self.filters {
            if filter.is_empty() || filter.contains('\0') {
                return Err(EncodeError::BadTopic);
            }
            body += check_field(filter.as_bytes())? + 1;
        }
        let mut out = begin(buf, SUBSCRIBE << 4 | 0x02, body)?;
        out.u16(self.pkid);
        for (filter, qos) in self.filters {
            out.field(filter.as_bytes());
            out.u8(*qos as u8);
        }
        Ok(out.pos)
    }
}

/// PUBACK for `pkid`.
pub fn emit_puback(pkid: u16, buf: &mut [u8]) -> Result<usize, EncodeError> {
    if pkid == 0 {
        return Err(EncodeError::ZeroPacketId);
    }
    let mut out = begin(buf, PUBACK << 4, 2)?;
    out.u16(pkid);
    Ok(out.pos)
}

/// PINGREQ.
pub fn emit_pingreq(buf: &mut [u8]) -> Result<usize, EncodeError> {
    Ok(begin(buf, PINGREQ << 4, 0)?.pos)
}

/// DISCONNECT.
pub fn emit_disconnect(buf: &mut [u8]) -> Result<usize, EncodeError> {
    Ok(begin(buf, DISCONNECT << 4, 0)?.pos)
}

/// Frames the next packet in `buf`: `Ok(Some((header_len, total_len)))` once the fixed header is
/// complete (the body may still be arriving), `Ok(None)` if more bytes are needed to know.
pub fn frame_len(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((2 + i, 2 + i + len)));
        }
    }
    Err(DecodeError::BadRemainingLength)
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

impl<'a> Packet<'a> {
    /// Parses one whole packet (`frame` is exactly `total_len` bytes from [`frame_len`]).
    pub fn parse(frame: &'a [u8]) -> Result<Self, DecodeError> {
        let (header, total) = frame_len(frame)?.ok_or(DecodeError::BadRemainingLength)?;
        let kind = frame[0] >> 4;
        let flags = frame[0] & 0x0F;
        if total != frame.len() {
            return Err(DecodeError::BadLength {
                kind,
                len: frame.len(),
            });
        }
        let body = &frame[header..];
        let bad_len = DecodeError::BadLength {
            kind,
            len: body.len(),
        };
        let fixed_flags = |want: u8| {
            if flags == want {
                Ok(())
            } else {
                Err(DecodeError::BadFlags { kind, flags })
            }
        };
        match kind {
            CONNACK => {
                fixed_flags(0)?;
                if body.len() != 2 || body[0] & 0xFE != 0 {
                    return Err(bad_len);
                }
                Ok(Packet::ConnAck {
                    session_present: body[0] & 1 == 1,
                    code: body[1],
                })
            }
            PUBLISH => {
                let qos = match (flags >> 1) & 0x03 {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    q => return Err(DecodeError::UnsupportedQoS(q)),
                };
                if body.len() < 2 {
                    return Err(bad_len);
                }
                let tlen = be16(body) as usize;
                let mut pos = 2 + tlen;
                let topic = body.get(2..pos).ok_or(bad_len)?;
                let topic = core::str::from_utf8(topic).map_err(|_| DecodeError::BadTopic)?;
                if topic.is_empty() || topic.bytes().any(|c| matches!(c, b'+' | b'#' | 0)) {
                    return Err(DecodeError::BadTopic);
                }
                let pkid = if qos == QoS::AtLeastOnce {
                    let id = body.get(pos..pos + 2).ok_or(bad_len)?;
                    pos += 2;
                    match be16(id) {
                        0 => return Err(DecodeError::ZeroPacketId),
                        id => id,
                    }
                } else {
                    0
                };
                Ok(Packet::Publish(Publish {
                    topic,
                    payload: &body[pos..],
                    qos,
                    retain: flags & 1 == 1,
                    dup: flags & 0x08 != 0,
                    pkid,
                }))
            }
            PUBACK => {
                fixed_flags(0)?;
                if body.len() != 2 {
                    return Err(bad_len);
                }
                match be16(body) {
                    0 => Err(DecodeError::ZeroPacketId),
                    pkid => Ok(Packet::PubAck { pkid }),
                }
            }
            SUBACK => {
                fixed_flags(0)?;
                if body.len() < 3 {
                    return Err(bad_len);
                }
                let rc = &body[2..];
                if rc.len() > MAX_FILTERS {
                    return Err(DecodeError::TooManyCodes(rc.len()));
                }
                let mut codes = [0; MAX_FILTERS];
                codes[..rc.len()].copy_from_slice(rc);
                Ok(Packet::SubAck {
                    pkid: be16(body),
                    codes,
                    count: rc.len(),
                })
            }
            PINGRESP => {
                fixed_flags(0)?;
                if !body.is_empty() {
                    return Err(bad_len);
                }
                Ok(Packet::PingResp)
            }
            other => Err(DecodeError::UnexpectedType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Round trips against rumqttc's independent encoder/decoder (`mqttbytes::v4`).
    use super::*;
    use bytes::BytesMut;
    use rumqttc::mqttbytes::v4 as r;
    use rumqttc::mqttbytes::QoS as RQoS;

    fn theirs(bytes: &[u8]) -> r::Packet {
        let mut b = BytesMut::from(bytes);
        let p = r::Packet::read(&mut b, 1 << 20).expect("rumqttc parses our bytes");
        assert!(b.is_empty(), "rumqttc left {} bytes", b.len());
        p
    }

    fn encode(p: r::Packet) -> std::vec::Vec<u8> {
        let mut b = BytesMut::new();
        p.write(&mut b, 1 << 20).unwrap();
        b.to_vec()
    }

    fn ours(bytes: &[u8]) -> Packet<'_> {
        let (_, total) = frame_len(bytes).unwrap().unwrap();
        assert_eq!(total, bytes.len());
        Packet::parse(bytes).unwrap()
    }

    #[test]
    fn connect_with_will_reads_in_rumqttc() {
        let mut buf = [0u8; 256];
        let c = Connect {
            client_id: "kitchen-sensor-1",
            keep_alive_s: 30,
            clean_session: true,
            will: Some(Will {
                topic: "devices/kitchen-sensor-1/status",
                payload: b"offline",
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
        };
        let n = c.emit(&mut buf).unwrap();
        let r::Packet::Connect(rc) = theirs(&buf[..n]) else {
            panic!("not a connect")
        };
        assert_eq!(rc.client_id, "kitchen-sensor-1");
        assert_eq!(rc.keep_alive, 30);
        assert!(rc.clean_session);
        assert!(rc.login.is_none());
        let w = rc.last_will.unwrap();
        assert_eq!(
            (w.topic.as_str(), &w.message[..]),
            ("devices/kitchen-sensor-1/status", &b"offline"[..])
        );
        assert_eq!((w.qos, w.retain), (RQoS::AtLeastOnce, true));

        // And byte for byte what rumqttc writes for the same packet.
        let mut same = r::Connect::new("kitchen-sensor-1");
        same.keep_alive = 30;
        same.clean_session = true;
        same.last_will = Some(r::LastWill::new(
            "devices/kitchen-sensor-1/status",
            "offline",
            RQoS::AtLeastOnce,
            true,
        ));
        assert_eq!(encode(r::Packet::Connect(same)), &buf[..n]);
    }

    #[test]
    fn publish_round_trips_both_ways() {
        let payloads: [&[u8]; 4] = [b"", b"x", &[0xAB; 200], &[7; 20_000]];
        for payload in payloads {
            for (qos, pkid) in [
                (QoS::AtMostOnce, 0),
                (QoS::AtLeastOnce, 1),
                (QoS::AtLeastOnce, 65535),
            ] {
                for (retain, dup) in [(false, false), (true, false), (false, true)] {
                    let p = Publish {
                        topic: "devices/a/telemetry",
                        payload,
                        qos,
                        retain,
                        dup,
                        pkid,
                    };
                    let mut buf = std::vec![0u8; 21_000];
                    let n = p.emit(&mut buf).unwrap();
                    let r::Packet::Publish(rp) = theirs(&buf[..n]) else {
                        panic!()
                    };
                    assert_eq!(rp.topic, p.topic);
                    assert_eq!(&rp.payload[..], payload);
                    assert_eq!((rp.retain, rp.dup, rp.pkid), (retain, dup, pkid));
                    assert_eq!(rp.qos as u8, qos as u8);
                    let back = encode(r::Packet::Publish(rp));
                    assert_eq!(back, &buf[..n]);
                    assert_eq!(ours(&back), Packet::Publish(p));
                }
            }
        }
    }

    #[test]
    fn subscribe_puback_ping_disconnect_read_in_rumqttc() {
        let mut buf = [0u8; 128];
        let filters = [
            ("devices/a/cmd/#", QoS::AtLeastOnce),
            ("devices/a/ota/#", QoS::AtMostOnce),
        ];
        let n = Subscribe {
            pkid: 7,
            filters: &filters,
        }
        .emit(&mut buf)
        .unwrap();
        let r::Packet::Subscribe(s) = theirs(&buf[..n]) else {
            panic!()
        };
        assert_eq!(s.pkid, 7);
        assert_eq!(s.filters.len(), 2);
        assert_eq!(
            (s.filters[0].path.as_str(), s.filters[0].qos),
            ("devices/a/cmd/#", RQoS::AtLeastOnce)
        );
        assert_eq!(
            (s.filters[1].path.as_str(), s.filters[1].qos),
            ("devices/a/ota/#", RQoS::AtMostOnce)
        );

        let n = emit_puback(513, &mut buf).unwrap();
        assert_eq!(theirs(&buf[..n]), r::Packet::PubAck(r::PubAck::new(513)));
        let n = emit_pingreq(&mut buf).unwrap();
        assert_eq!(theirs(&buf[..n]), r::Packet::PingReq);
        let n = emit_disconnect(&mut buf).unwrap();
        assert_eq!(theirs(&buf[..n]), r::Packet::Disconnect);
    }

    #[test]
    fn broker_packets_from_rumqttc_parse() {
        let b = encode(r::Packet::ConnAck(r::ConnAck::new(
            r::ConnectReturnCode::Success,
            true,
        )));
        assert_eq!(
            ours(&b),
            Packet::ConnAck {
                session_present: true,
                code: 0
            }
        );
        let b = encode(r::Packet::ConnAck(r::ConnAck::new(
            r::ConnectReturnCode::NotAuthorized,
            false,
        )));
        assert_eq!(
            ours(&b),
            Packet::ConnAck {
                session_present: false,
                code: 5
            }
        );
        let b = encode(r::Packet::PubAck(r::PubAck::new(42)));
        assert_eq!(ours(&b), Packet::PubAck { pkid: 42 });
        let codes = std::vec![
            r::SubscribeReasonCode::Success(RQoS::AtLeastOnce),
            r::SubscribeReasonCode::Failure
        ];
        let b = encode(r::Packet::SubAck(r::SubAck::new(9, codes)));
        assert_eq!(
            ours(&b),
            Packet::SubAck {
                pkid: 9,
                codes: [1, 0x80, 0, 0],
                count: 2
            }
        );
        let b = encode(r::Packet::PingResp);
        assert_eq!(ours(&b), Packet::PingResp);
    }

    #[test]
    fn framing_waits_for_bytes_and_measures() {
        let mut buf = [0u8; 300];
        let p = Publish {
            topic: "t",
            payload: &[1; 200],
            qos: QoS::AtMostOnce,
            retain: false,
            dup: false,
            pkid: 0,
        };
        let n = p.emit(&mut buf).unwrap();
        assert_eq!(frame_len(&buf[..0]), Ok(None));
        assert_eq!(frame_len(&buf[..2]), Ok(None)); // two-byte length, one seen
        assert_eq!(frame_len(&buf[..3]), Ok(Some((3, n))));
        assert_eq!(
            frame_len(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(DecodeError::BadRemainingLength)
        );
        assert_eq!(
            frame_len(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]),
            Ok(Some((5, 5 + MAX_REMAINING_LEN)))
        );
    }

    #[test]
    fn bad_packets_are_named_errors() {
        assert_eq!(
            Packet::parse(&[0x10, 0]),
            Err(DecodeError::UnexpectedType(1))
        );
        assert_eq!(
            Packet::parse(&[0x21, 2, 0, 0]),
            Err(DecodeError::BadFlags { kind: 2, flags: 1 })
        );
        assert_eq!(
            Packet::parse(&[0x20, 1, 0]),
            Err(DecodeError::BadLength { kind: 2, len: 1 })
        );
        assert_eq!(
            Packet::parse(&[0x36, 3, 0, 1, b'a']),
            Err(DecodeError::UnsupportedQoS(3))
        );
        assert_eq!(
            Packet::parse(&[0x30, 3, 0, 1, b'#']),
            Err(DecodeError::BadTopic)
        );
        assert_eq!(
            Packet::parse(&[0x30, 3, 0, 1, 0xFF]),
            Err(DecodeError::BadTopic)
        );
        assert_eq!(
            Packet::parse(&[0x30, 2, 0, 5]),
            Err(DecodeError::BadLength { kind: 3, len: 2 })
        );
        assert_eq!(
            Packet::parse(&[0x32, 5, 0, 1, b'a', 0, 0]),
            Err(DecodeError::ZeroPacketId)
        );
        assert_eq!(
            Packet::parse(&[0x40, 2, 0, 0]),
            Err(DecodeError::ZeroPacketId)
        );
        assert_eq!(
            Packet::parse(&[0x90, 7, 0, 1, 0, 0, 0, 0, 0]),
            Err(DecodeError::TooManyCodes(5))
        );
        assert_eq!(
            Packet::parse(&[0xD0, 1, 0]),
            Err(DecodeError::BadLength { kind: 13, len: 1 })
        );
    }

    #[test]
    fn encode_limits_are_clear_errors() {
        let mut small = [0u8; 10];
        let p = Publish {
            topic: "devices/a/t",
            payload: b"hello",
            qos: QoS::AtLeastOnce,
            retain: false,
            dup: false,
            pkid: 1,
        };
        assert_eq!(
            p.emit(&mut small),
            Err(EncodeError::BufferTooSmall { need: 22, have: 10 })
        );
        let mut buf = [0u8; 64];
        assert_eq!(
            Publish { pkid: 0, ..p }.emit(&mut buf),
            Err(EncodeError::ZeroPacketId)
        );
        assert_eq!(
            Publish { topic: "a/+", ..p }.emit(&mut buf),
            Err(EncodeError::BadTopic)
        );
        assert_eq!(
            Subscribe {
                pkid: 1,
                filters: &[]
            }
            .emit(&mut buf),
            Err(EncodeError::BadFilterCount(0))
        );
        let mut dup = buf;
        let n = p.emit(&mut dup).unwrap();
        Publish::set_dup(&mut dup[..n]);
        assert_eq!(
            Packet::parse(&dup[..n]),
            Ok(Packet::Publish(Publish { dup: true, ..p }))
        );
    }

    /// What the fuzz target does, on a fixed pseudo-random stream so that CI runs it too.
    #[test]
    fn random_packets_never_panic_and_publish_round_trips() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = [0u8; 64];
        let mut parsed = 0;
        for _ in 0..100_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let len = 2 + (x % 62) as usize;
            buf[0] = [0x20, 0x30, 0x32, 0x3B, 0x40, 0x90, 0xD0, buf[0]][(x >> 8) as usize % 8];
            buf[1] = (len - 2) as u8;
            if buf[0] >> 4 == 3 {
                buf[2] = 0; // a plausible topic length
            }
            let frame = &buf[..len];
            assert_eq!(frame_len(frame), Ok(Some((2, len))));
            if let Ok(p) = Packet::parse(frame) {
                parsed += 1;
                if let Packet::Publish(p) = p {
                    let mut out = [0u8; 80];
                    let n = p.emit(&mut out).unwrap();
                    assert_eq!(&out[..n], frame);
                }
            }
        }
        assert!(parsed > 1000, "the generator reaches the parsers: {parsed}");
    }
}
