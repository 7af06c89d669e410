//! The MQTT session, apart from the device that uses it (as smoltcp's `socket/tcp.rs` is apart
//! from `iface/`): receive framing and oversize skipping, packet ids, the QoS 1 in-flight table
//! with retransmission, keep-alive, and the transmit queue. It takes no board and does no I/O:
//! the device copies received bytes in ([`Session::rx_buffer`] + [`Session::rx_filled`]), takes
//! the bytes to send out ([`Session::tx_pending`] + [`Session::tx_written`]), calls
//! [`Session::poll`] for the timers, and reads [`Event`]s with [`Session::next_event`].
//!
//! Applications publish through the [`Sender`] half, which pushes back: a publish that finds no
//! in-flight slot or no queue room answers [`Sent::Busy`] and the application tries again later.

use super::codec::{self, consts, Connect, DecodeError, EncodeError, Packet, Publish, QoS};
use super::txqueue::TxQueue;
use crate::settings::{INFLIGHT_BUF, MAX_INFLIGHT, RX_BUF, TX_BUF};

/// PUBACK's length: `next_event` hands out a QoS 1 PUBLISH only while its acknowledgement fits
/// the transmit queue (back-pressure to the broker).
const PUBACK_LEN: usize = 4;

/// Timers of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// A PINGREQ goes out after this long without sending.
    pub keep_alive_s: u16,
    /// No PINGRESP this long after a PINGREQ, or no byte taken by the transport this long:
    /// the connection is dead.
    pub ping_timeout_ms: u64,
    /// A QoS 1 PUBLISH is sent again (DUP) after this long without PUBACK ...
    pub ack_timeout_ms: u64,
    /// ... at most this many times.
    pub max_retransmits: u8,
}

/// Why the session gave up on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Malformed bytes from the broker.
    Protocol(DecodeError),
    /// A packet we had to send did not encode.
    Encode(EncodeError),
    /// No PINGRESP within `ping_timeout_ms`.
    PingTimeout,
    /// A QoS 1 PUBLISH went unacknowledged after every retransmission.
    AckTimeout,
    /// The transport took no byte of a waiting packet for `ping_timeout_ms`.
    SendStalled,
    /// A well-formed packet out of order: anything but CONNACK before CONNACK.
    Unexpected,
}

/// What a received packet means to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    ConnAck {
        session_present: bool,
        code: u8,
    },
    SubAck {
        pkid: u16,
        /// The broker refused at least one filter (0x80).
        refused: bool,
    },
    /// A PUBLISH from the broker. A QoS 1 one was acknowledged already (the PUBACK is queued).
    Publish(Publish<'a>),
    /// A packet larger than the receive buffer announced itself; it is being skipped.
    Oversized {
        len: usize,
    },
}

/// How a publish went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued; for QoS 1, held until PUBACK with this packet id.
    Queued { pkid: u16 },
    /// Every in-flight slot (QoS 1) or the queue is busy: try again later.
    Busy,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// QoS 1 publishes sent again (DUP).
    pub retransmits: u32,
    /// Incoming packets larger than [`RX_BUF`], skipped.
    pub oversized: u32,
}

/// A QoS 1 PUBLISH awaiting PUBACK.
#[derive(Clone, Copy)]
struct Inflight {
    /// 0: free.
    pkid: u16,
    len: usize,
    sent_at: u64,
    retries: u8,
    send: Pending,
    buf: [u8; INFLIGHT_BUF],
}

/// What an in-flight slot still has to send.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Queued (or written); waiting for PUBACK.
    Nothing,
    /// Never sent: queue it as soon as the transmit queue has room.
    First,
    /// Send again with DUP when there is room (new connection, or a retransmission that found
    /// the queue full).
    Again,
}

const FREE: Inflight = Inflight {
    pkid: 0,
    len: 0,
    sent_at: 0,
    retries: 0,
    send: Pending::Nothing,
    buf: [0; INFLIGHT_BUF],
};

/// The sending half: packet ids, the in-flight table and the transmit queue. Applications get
/// a `&mut Sender` to publish (also while they look at a received message).
pub struct Sender {
    tx: TxQueue<TX_BUF>,
    inflight: [Inflight; MAX_INFLIGHT],
    next_pkid: u16,
    /// When the last packet was queued (keep-alive counts from it).
    last_tx: u64,
    retransmits: u32,
}

/// The receiving half: a byte buffer with framing and oversize skipping.
struct Receiver {
    buf: [u8; RX_BUF],
    len: usize,
    /// Bytes of an oversized packet still to discard.
    skip: usize,
    /// Length of the frame handed out by the last `next_event`, dropped at the next call.
    taken: usize,
    oversized: u32,
}

/// One MQTT 3.1.1 client session over one connection at a time (clean session; unacknowledged
/// QoS 1 publishes survive a reconnect and go out again as DUP).
pub struct Session {
    cfg: SessionConfig,
    rx: Receiver,
    out: Sender,
    ping_sent: Option<u64>,
    /// CONNECT sent, CONNACK not received yet.
    awaiting_connack: bool,
}

impl Sender {
    /// Room for another QoS 1 publish right now.
    pub fn can_publish(&self) -> bool {
        self.inflight.iter().any(|s| s.pkid == 0)
    }

    /// QoS 1 publishes sent again (DUP) so far.
    pub fn retransmits(&self) -> u32 {
        self.retransmits
    }

    /// Whether the QoS 1 publish `pkid` still awaits its PUBACK.
    pub fn in_flight(&self, pkid: u16) -> bool {
        pkid != 0 && self.inflight.iter().any(|s| s.pkid == pkid)
    }

    /// Every QoS 1 publish was acknowledged.
    pub fn all_acked(&self) -> bool {
        self.inflight.iter().all(|s| s.pkid == 0)
    }

    /// Queues a PUBLISH. QoS 1 is kept (encoded, up to `INFLIGHT_BUF` bytes) until PUBACK and
    /// sent again after `ack_timeout_ms`; QoS 0 goes through the queue only.
    pub fn publish(
        &mut self,
        now: u64,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Sent, EncodeError> {
        if qos == QoS::AtMostOnce {
            let p = Publish {
                topic,
                payload,
                qos,
                retain,
                dup: false,
                pkid: 0,
            };
            return Ok(match self.push(now, |b| p.emit(b))? {
                true => Sent::Queued { pkid: 0 },
                false => Sent::Busy,
            });
        }
        let Some(slot) = self.inflight.iter().position(|s| s.pkid == 0) else {
            return Ok(Sent::Busy);
        };
        let pkid = self.alloc_pkid();
        let p = Publish {
            topic,
            payload,
            qos,
            retain,
            dup: false,
            pkid,
        };
        let s = &mut self.inflight[slot];
        s.len = p.emit(&mut s.buf)?;
        s.pkid = pkid;
        s.sent_at = now;
        s.retries = 0;
        s.send = Pending::First;
        self.send_inflight(now);
        Ok(Sent::Queued { pkid })
    }

    fn alloc_pkid(&mut self) -> u16 {
        loop {
            let id = self.next_pkid;
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            if !self.inflight.iter().any(|s| s.pkid == id) {
                return id;
            }
        }
    }

    /// Queues one packet encoded by `emit`. `Ok(false)`: no room now.
    fn push(
        &mut self,
        now: u64,
        emit: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> Result<bool, EncodeError> {
        let queued = self.tx.push_with(now, emit)?;
        if queued {
            self.last_tx = now;
        }
        Ok(queued)
    }

    /// Queues every in-flight publish that is due, in slot order, as far as there is room.
    fn send_inflight(&mut self, now: u64) {
        for s in self.inflight.iter_mut() {
            if s.pkid == 0 || s.send == Pending::Nothing {
                continue;
            }
            if s.send == Pending::Again {
                Publish::set_dup(&mut s.buf[..s.len]);
            }
            if !self.tx.push(now, &s.buf[..s.len]) {
                break;
            }
            if s.send == Pending::Again {
                self.retransmits += 1;
            }
            s.send = Pending::Nothing;
            s.sent_at = now;
            self.last_tx = now;
        }
    }
}

impl Session {
    pub const fn new(cfg: SessionConfig) -> Self {
        Session {
            cfg,
            rx: Receiver {
                buf: [0; RX_BUF],
                len: 0,
                skip: 0,
                taken: 0,
                oversized: 0,
            },
            out: Sender {
                tx: TxQueue::new(),
                inflight: [FREE; MAX_INFLIGHT],
                next_pkid: 1,
                last_tx: 0,
                retransmits: 0,
            },
            ping_sent: None,
            awaiting_connack: false,
        }
    }

    pub fn stats(&self) -> SessionStats {
        SessionStats {
            retransmits: self.out.retransmits,
            oversized: self.rx.oversized,
        }
    }

    /// The sending half, to publish.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.out
    }

    /// A new transport connection is up: forgets the bytes of the old one and queues CONNECT.
    /// Unacknowledged publishes stay; they go out again (DUP) at [`Session::resume`].
    pub fn connect(&mut self, now: u64, connect: &Connect<'_>) -> Result<(), EncodeError> {
        self.rx.len = 0;
        self.rx.skip = 0;
        self.rx.taken = 0;
        self.out.tx.clear();
        self.ping_sent = None;
        self.awaiting_connack = true;
        // An empty queue always has room for CONNECT (or it is an encode error).
        self.out.push(now, |b| connect.emit(b)).map(|_| ())
    }

    /// Queues a SUBSCRIBE; `Ok(None)`: no room now.
    pub fn subscribe(
        &mut self,
        now: u64,
        filters: &[(&str, QoS)],
    ) -> Result<Option<u16>, EncodeError> {
        let pkid = self.out.alloc_pkid();
        let sub = codec::Subscribe { pkid, filters };
        Ok(self.out.push(now, |b| sub.emit(b))?.then_some(pkid))
    }

    /// The session is established (SUBACK): whatever was left unacknowledged by the last
    /// connection goes out again, as DUP, first.
    pub fn resume(&mut self, now: u64) {
        for s in self.out.inflight.iter_mut().filter(|s| s.pkid != 0) {
            if s.send == Pending::Nothing {
                s.send = Pending::Again;
            }
            s.retries = 0;
        }
        self.ping_sent = None;
        self.out.send_inflight(now);
    }

    /// Queues DISCONNECT if there is room (orderly stop).
    pub fn disconnect(&mut self, now: u64) {
        let _ = self.out.push(now, codec::emit_disconnect);
    }

    /// Where received bytes go: copy at most this many, then call [`Session::rx_filled`].
    pub fn rx_buffer(&mut self) -> &mut [u8] {
        self.drop_taken();
        let rx = &mut self.rx;
        &mut rx.buf[rx.len..]
    }

    /// `n` bytes were copied into [`Session::rx_buffer`].
    pub fn rx_filled(&mut self, n: usize) {
        let rx = &mut self.rx;
        let n = n.min(RX_BUF - rx.len);
        let start = rx.len;
        rx.len += n;
        if rx.skip > 0 {
            // Discard the front of what just came in: the rest of an oversized packet.
            let drop = rx.skip.min(n);
            rx.buf.copy_within(start + drop..rx.len, start);
            rx.len -= drop;
            rx.skip -= drop;
        }
    }

    /// Bytes waiting for the transport.
    pub fn tx_pending(&self) -> &[u8] {
        self.out.tx.pending()
    }

    /// The transport took `n` bytes of [`Session::tx_pending`].
    pub fn tx_written(&mut self, now: u64, n: usize) {
        self.out.tx.consume(now, n);
        self.out.send_inflight(now);
    }

    fn drop_taken(&mut self) {
        let rx = &mut self.rx;
        if rx.taken > 0 {
            rx.buf.copy_within(rx.taken..rx.len, 0);
            rx.len -= rx.taken;
            rx.taken = 0;
        }
    }

    /// The next received packet that means something to the device, with the sending half for
    /// answering it. PUBACK and PINGRESP are handled here. `Ok(None)`: no whole packet yet (or
    /// no room to acknowledge one).
    pub fn next_event(
        &mut self,
        now: u64,
    ) -> Result<Option<(Event<'_>, &mut Sender)>, SessionError> {
        // Packets handled here are consumed in the loop; the first one for the device ends it
        // (owned data only, so that the borrow returned below starts after the loop).
        let (event, total): (Option<Event<'static>>, usize) = loop {
            self.drop_taken();
            let rx = &mut self.rx;
            if rx.skip > 0 {
                return Ok(None);
            }
            let Some((_, total)) =
                codec::frame_len(&rx.buf[..rx.len]).map_err(SessionError::Protocol)?
            else {
                return Ok(None);
            };
            if total > RX_BUF {
                // Too big to ever hold: drop it and carry on, rather than lose the connection
                // to one oversized (possibly retained) message.
                rx.oversized += 1;
                rx.skip = total - rx.len;
                rx.len = 0;
                return Ok(Some((Event::Oversized { len: total }, &mut self.out)));
            }
            if rx.len < total || self.out.tx.free() < PUBACK_LEN {
                return Ok(None);
            }
            rx.taken = total;
            let packet = Packet::parse(&rx.buf[..total]).map_err(SessionError::Protocol)?;
            if self.awaiting_connack {
                if !matches!(packet, Packet::ConnAck { .. }) {
                    return Err(SessionError::Unexpected);
                }
                self.awaiting_connack = false;
            }
            match packet {
                Packet::PubAck { pkid } => {
                    for s in self.out.inflight.iter_mut().filter(|s| s.pkid == pkid) {
                        s.pkid = 0;
                    }
                }
                Packet::PingResp => self.ping_sent = None,
                Packet::ConnAck {
                    session_present,
                    code,
                } => {
                    let e = Event::ConnAck {
                        session_present,
                        code,
                    };
                    break (Some(e), total);
                }
                Packet::SubAck { pkid, codes, count } => {
                    let refused = codes[..count].contains(&consts::SUBACK_FAILURE);
                    break (Some(Event::SubAck { pkid, refused }), total);
                }
                Packet::Publish(p) => {
                    if p.qos == QoS::AtLeastOnce {
                        let pkid = p.pkid;
                        self.out
                            .push(now, |b| codec::emit_puback(pkid, b))
                            .map_err(SessionError::Encode)?;
                    }
                    // Borrowed again below, after the loop.
                    break (None, total);
                }
            }
        };
        let event = match event {
            Some(e) => e,
            None => match Packet::parse(&self.rx.buf[..total]) {
                Ok(Packet::Publish(p)) => Event::Publish(p),
                // Parsed as a PUBLISH a moment ago.
                _ => return Err(SessionError::Protocol(DecodeError::BadRemainingLength)),
            },
        };
        Ok(Some((event, &mut self.out)))
    }

    /// Timers: retransmissions, keep-alive, a transport that stopped taking bytes. Returns
    /// when it wants to be polled again at the latest.
    pub fn poll(&mut self, now: u64) -> Result<u64, SessionError> {
        let out = &mut self.out;
        if out
            .tx
            .waiting_since()
            .is_some_and(|since| now >= since + self.cfg.ping_timeout_ms)
        {
            return Err(SessionError::SendStalled);
        }
        let mut next = u64::MAX;
        for s in out.inflight.iter_mut() {
            if s.pkid == 0 || s.send != Pending::Nothing {
                continue;
            }
            let due = s.sent_at + self.cfg.ack_timeout_ms;
            if now < due {
                next = next.min(due);
                continue;
            }
            if s.retries >= self.cfg.max_retransmits {
                return Err(SessionError::AckTimeout);
            }
            s.retries += 1;
            s.send = Pending::Again;
        }
        out.send_inflight(now);
        let keep_alive = u64::from(self.cfg.keep_alive_s) * 1000;
        match self.ping_sent {
            Some(at) if now >= at + self.cfg.ping_timeout_ms => {
                return Err(SessionError::PingTimeout)
            }
            Some(at) => next = next.min(at + self.cfg.ping_timeout_ms),
            None if now >= out.last_tx + keep_alive => {
                if out
                    .push(now, codec::emit_pingreq)
                    .map_err(SessionError::Encode)?
                {
                    self.ping_sent = Some(now);
                    next = next.min(now + self.cfg.ping_timeout_ms);
                }
            }
            None => next = next.min(out.last_tx + keep_alive),
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    //! The session alone: bytes in, events out, no board. Broker packets are written by
    //! rumqttc's codec.
    use super::*;
    use bytes::BytesMut;
    use rumqttc::mqttbytes::v4 as r;
    use std::vec::Vec;

    const CFG: SessionConfig = SessionConfig {
        keep_alive_s: 60,
        ping_timeout_ms: 10_000,
        ack_timeout_ms: 5_000,
        max_retransmits: 2,
    };

    fn bytes(p: r::Packet) -> Vec<u8> {
        let mut b = BytesMut::new();
        p.write(&mut b, 1 << 20).unwrap();
        b.to_vec()
    }

    fn feed(s: &mut Session, mut data: &[u8]) {
        while !data.is_empty() {
            let buf = s.rx_buffer();
            let n = buf.len().min(data.len());
            assert!(n > 0, "receive buffer full");
            buf[..n].copy_from_slice(&data[..n]);
            s.rx_filled(n);
            data = &data[n..];
        }
    }

    /// Everything the session queued, parsed by rumqttc.
    fn sent(s: &mut Session) -> Vec<r::Packet> {
        let mut b = BytesMut::from(s.tx_pending());
        let n = b.len();
        s.tx_written(0, n);
        let mut out = Vec::new();
        while !b.is_empty() {
            out.push(r::Packet::read(&mut b, 1 << 20).unwrap());
        }
        out
    }

    fn connected() -> Session {
        let mut s = Session::new(CFG);
        let c = Connect {
            client_id: "d",
            keep_alive_s: 60,
            clean_session: true,
            will: None,
        };
        s.connect(0, &c).unwrap();
        sent(&mut s);
        feed(
            &mut s,
            &bytes(r::Packet::ConnAck(r::ConnAck::new(
                r::ConnectReturnCode::Success,
                false,
            ))),
        );
        assert!(matches!(
            s.next_event(0).unwrap().unwrap().0,
            Event::ConnAck { code: 0, .. }
        ));
        s
    }

    #[test]
    fn frames_split_anywhere_oversized_skipped_and_publishes_acknowledged() {
        let mut s = connected();
        let mut big = r::Publish::new("t/big", rumqttc::mqttbytes::QoS::AtMostOnce, vec![7; 3000]);
        big.pkid = 0;
        let mut small = r::Publish::new("t/cmd", rumqttc::mqttbytes::QoS::AtLeastOnce, "hi");
        small.pkid = 9;
        let mut stream = bytes(r::Packet::Publish(big));
        stream.extend(bytes(r::Packet::Publish(small)));
        let mut events = Vec::new();
        // One byte at a time: framing and skipping must not care where reads end.
        for b in &stream {
            feed(&mut s, core::slice::from_ref(b));
            while let Some((e, _)) = s.next_event(0).unwrap() {
                events.push(match e {
                    Event::Publish(p) => std::format!("{} {:?}", p.topic, p.payload),
                    other => std::format!("{other:?}"),
                });
            }
        }
        assert_eq!(events, ["Oversized { len: 3010 }", "t/cmd [104, 105]"]);
        assert_eq!(s.stats().oversized, 1);
        assert_eq!(sent(&mut s), [r::Packet::PubAck(r::PubAck::new(9))]);
    }

    #[test]
    fn publishes_push_back_and_are_retransmitted_then_time_out() {
        let mut s = connected();
        let out = s.sender();
        for i in 0..MAX_INFLIGHT {
            assert!(matches!(
                out.publish(0, "t", &[i as u8], QoS::AtLeastOnce, false),
                Ok(Sent::Queued { .. })
            ));
        }
        assert_eq!(
            out.publish(0, "t", b"x", QoS::AtLeastOnce, false),
            Ok(Sent::Busy)
        );
        assert_eq!(sent(&mut s).len(), MAX_INFLIGHT);
        // PUBACK for the first frees one slot.
        feed(&mut s, &bytes(r::Packet::PubAck(r::PubAck::new(1))));
        assert!(s.next_event(0).unwrap().is_none());
        assert!(s.sender().can_publish());
        // The other three go out again with DUP at 5 s and 10 s, then the session gives up.
        assert_eq!(s.poll(4_999).map(|_| ()), Ok(()));
        assert!(sent(&mut s).is_empty());
        s.poll(5_000).unwrap();
        let again = sent(&mut s);
        assert_eq!(again.len(), 3);
        assert!(again
            .iter()
            .all(|p| matches!(p, r::Packet::Publish(p) if p.dup)));
        s.poll(10_000).unwrap();
        sent(&mut s);
        assert_eq!(s.poll(15_000), Err(SessionError::AckTimeout));
        assert_eq!(s.stats().retransmits, 6);
    }

    #[test]
    fn anything_before_connack_is_out_of_order() {
        let mut s = Session::new(CFG);
        let c = Connect {
            client_id: "d",
            keep_alive_s: 60,
            clean_session: true,
            will: None,
        };
        s.connect(0, &c).unwrap();
        feed(&mut s, &bytes(r::Packet::PubAck(r::PubAck::new(1))));
        assert_eq!(s.next_event(0).map(|_| ()), Err(SessionError::Unexpected));
    }
}
