//! The interrupt side of the link: one byte in, the next byte out.
//!
//! An AVR SPI slave has no transmit buffer: the byte the interrupt writes to SPDR goes out during
//! the *next* transfer. So [`Link::on_byte`] returns what the master will read one transfer later,
//! and the master polls until it sees a response start (docs/spi-link.md).

use wire_format::spi_link::{request_remaining, IDLE, MAX_REQ_FRAME, MAX_RESP_FRAME, REQ_SOF};

/// Receive state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxState {
    /// Waiting for [`REQ_SOF`]; everything else (polls, garbage) is dropped.
    Hunt,
    /// Collecting a request; `len` bytes are in.
    Frame { len: u8 },
    /// A complete request waits for the main loop; bytes are dropped until it answers.
    Held { len: u8 },
}

/// Framing state shared by the SPI interrupt and the main loop (kept small: it lives in RAM).
#[derive(Debug)]
pub struct Link {
    state: RxState,
    rx: [u8; MAX_REQ_FRAME],
    tx: [u8; MAX_RESP_FRAME],
    tx_len: u8,
    tx_pos: u8,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    /// Idle link, hunting for a request.
    pub const fn new() -> Link {
        Link {
            state: RxState::Hunt,
            rx: [0; MAX_REQ_FRAME],
            tx: [0; MAX_RESP_FRAME],
            tx_len: 0,
            tx_pos: 0,
        }
    }

    /// Current receive state.
    pub fn state(&self) -> RxState {
        self.state
    }

    /// One byte from the master; returns the byte to load for the next transfer.
    pub fn on_byte(&mut self, byte: u8) -> u8 {
        let next = match self.state {
            RxState::Hunt if byte == REQ_SOF => {
                // A new request: whatever the master did not read of the last answer is stale.
                self.tx_pos = self.tx_len;
                self.rx[0] = byte;
                RxState::Frame { len: 1 }
            }
            RxState::Hunt => RxState::Hunt,
            RxState::Frame { len } => {
                let len = len as usize;
                match self.rx.get_mut(len) {
                    Some(slot) => {
                        *slot = byte;
                        match request_remaining(&self.rx[..len + 1]) {
                            Some(_) => RxState::Frame { len: len as u8 + 1 },
                            None => RxState::Held { len: len as u8 + 1 },
                        }
                    }
                    // Unreachable by `request_remaining`'s contract; hand over what we have.
                    None => RxState::Held { len: len as u8 },
                }
            }
            RxState::Held { len } => RxState::Held { len },
        };
        self.state = next;
        self.next_out()
    }

    fn next_out(&mut self) -> u8 {
        match self.tx.get(self.tx_pos as usize) {
            Some(&b) if self.tx_pos < self.tx_len => {
                self.tx_pos += 1;
                b
            }
            _ => IDLE,
        }
    }

    /// The complete request waiting for the main loop, copied out (the link keeps it held).
    /// Bytes past the frame's end are stale; the frame's own length byte says where it ends.
    ///
    /// Whole fixed-size buffers are copied here and in [`Link::respond`]: the main loop calls
    /// both with interrupts off, and a fixed-size copy compiles to a few loads and stores where
    /// a slice copy calls a slow generic `memcpy` that delayed the SPI interrupt past the next
    /// byte (docs/spi-link.md, "Timing").
    pub fn request(&self) -> Option<[u8; MAX_REQ_FRAME]> {
        match self.state {
            RxState::Held { .. } => Some(self.rx),
            _ => None,
        }
    }

    /// Queues the first `len` bytes of `frame` as the answer to the held request and starts
    /// hunting again.
    pub fn respond(&mut self, frame: &[u8; MAX_RESP_FRAME], len: usize) {
        self.tx = *frame;
        self.tx_len = len.min(MAX_RESP_FRAME) as u8;
        self.tx_pos = 0;
        self.state = RxState::Hunt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire_format::spi_link::{Request, POLL, RESP_SOF, RESYNC_POLLS};

    fn feed(link: &mut Link, bytes: &[u8]) -> [u8; 16] {
        let mut out = [0xEE; 16];
        for (i, &b) in bytes.iter().enumerate() {
            out[i] = link.on_byte(b);
        }
        out
    }

    #[test]
    fn collects_a_request_and_holds_it() {
        let mut link = Link::new();
        let mut buf = [0; MAX_REQ_FRAME];
        let n = Request::WritePin { pin: 1, high: true }.emit(&mut buf);
        let out = feed(&mut link, &buf[..n]);
        assert!(out[..n].iter().all(|&b| b == IDLE));
        assert_eq!(link.state(), RxState::Held { len: n as u8 });
        let got = link.request().unwrap();
        assert_eq!(&got[..n], &buf[..n]);
        // Held: polls and even a new SOF are dropped until the main loop answers.
        feed(&mut link, &[POLL, REQ_SOF, POLL]);
        assert_eq!(link.request(), Some(got));
    }

    #[test]
    fn answer_goes_out_byte_by_byte_then_idle() {
        let mut link = Link::new();
        let mut buf = [0; MAX_REQ_FRAME];
        let n = Request::Status.emit(&mut buf);
        feed(&mut link, &buf[..n]);
        link.respond(&[RESP_SOF, 8, 0, 0, 0x42, 0, 0, 0], 5);
        assert_eq!(link.state(), RxState::Hunt);
        let out = feed(&mut link, &[POLL; 7]);
        assert_eq!(&out[..7], &[RESP_SOF, 8, 0, 0, 0x42, IDLE, IDLE]);
    }

    #[test]
    fn a_new_request_drops_an_unread_answer() {
        let mut link = Link::new();
        let mut buf = [0; MAX_REQ_FRAME];
        let n = Request::Status.emit(&mut buf);
        feed(&mut link, &buf[..n]);
        link.respond(&[RESP_SOF, 8, 0, 0, 0x42, 0, 0, 0], 5);
        // The master read two bytes, then gave up and sent a new request.
        feed(&mut link, &[POLL, POLL]);
        let out = feed(&mut link, &buf[..n]);
        // (The byte loaded before the SOF still goes out during it; the master ignores it.)
        assert!(out[..n].iter().all(|&b| b == IDLE), "{out:?}");
        assert!(link.request().is_some());
    }

    #[test]
    fn an_oversized_length_ends_the_frame_at_once() {
        let mut link = Link::new();
        feed(&mut link, &[REQ_SOF, 0x03, 0x40]);
        assert_eq!(link.state(), RxState::Held { len: 3 });
    }

    #[test]
    fn resync_polls_finish_any_half_frame() {
        for prefix_len in 1..MAX_REQ_FRAME {
            let mut link = Link::new();
            let mut buf = [0; MAX_REQ_FRAME];
            Request::SetPwm { pin: 22, duty: 9 }.emit(&mut buf);
            feed(&mut link, &buf[..prefix_len]);
            feed(&mut link, &[POLL; RESYNC_POLLS]);
            // Either held (the main loop will answer it with an error) or already hunting.
            assert!(
                matches!(link.state(), RxState::Held { .. } | RxState::Hunt),
                "{prefix_len}"
            );
            if link.request().is_some() {
                link.respond(&[0; MAX_RESP_FRAME], 0);
            }
            feed(&mut link, &[POLL; RESYNC_POLLS]);
            assert_eq!(link.state(), RxState::Hunt);
        }
    }

    #[test]
    fn garbage_while_hunting_is_ignored() {
        let mut link = Link::new();
        let out = feed(&mut link, &[0x00, 0xFF, 0x5A, 0x13, 0x37]);
        assert_eq!(link.state(), RxState::Hunt);
        assert!(out[..5].iter().all(|&b| b == IDLE));
    }
}
