//! The transmit side of a non-blocking transport: whole packets are encoded into a fixed queue,
//! and the queue is offered to the transport whenever it says it can take bytes. A packet is
//! either queued whole or not at all, so a partial write never cuts one in the middle.

use embedded_io::{Error as _, ErrorKind, Write, WriteReady};

use crate::mqtt::EncodeError;

/// A byte queue of `N` bytes: `buf[start..end]` waits to be written.
pub struct TxQueue<const N: usize> {
    buf: [u8; N],
    start: usize,
    end: usize,
}

/// The transport failed while writing (any error but `Interrupted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFailed(pub ErrorKind);

impl<const N: usize> Default for TxQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TxQueue<N> {
    pub const fn new() -> Self {
        TxQueue {
            buf: [0; N],
            start: 0,
            end: 0,
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Room for another packet.
    pub fn free(&self) -> usize {
        N - self.len()
    }

    /// Forgets everything (new connection).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Encodes one packet with `emit` into the free space. `Ok(false)`: it does not fit now
    /// (bytes still waiting; try again after they went out). A packet that does not fit even an
    /// empty queue is an error.
    pub fn push_with(
        &mut self,
        emit: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> Result<bool, EncodeError> {
        self.compact();
        match emit(&mut self.buf[self.end..]) {
            Ok(n) => {
                self.end += n;
                Ok(true)
            }
            Err(EncodeError::BufferTooSmall { need, .. }) if need <= N && !self.is_empty() => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Queues `bytes` whole, or nothing (`false`).
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.free() {
            return false;
        }
        self.compact();
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
        true
    }

    /// Offers the waiting bytes to `w` for as long as it takes them without blocking. Returns
    /// how many it took.
    pub fn write_to<W: Write + WriteReady>(&mut self, w: &mut W) -> Result<usize, WriteFailed> {
        let mut total = 0;
        while !self.is_empty() {
            match w.write_ready() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(WriteFailed(e.kind())),
            }
            match w.write(&self.buf[self.start..self.end]) {
                Ok(0) => break,
                Ok(n) => {
                    let n = n.min(self.len());
                    self.start += n;
                    total += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => break,
                Err(e) => return Err(WriteFailed(e.kind())),
            }
        }
        if self.is_empty() {
            self.clear();
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Takes at most `chunk` bytes per write, and only every other time it is asked.
    struct Slow {
        out: Vec<u8>,
        chunk: usize,
        ready: bool,
    }
    impl embedded_io::ErrorType for Slow {
        type Error = ErrorKind;
    }
    impl WriteReady for Slow {
        fn write_ready(&mut self) -> Result<bool, ErrorKind> {
            self.ready = !self.ready;
            Ok(self.ready)
        }
    }
    impl Write for Slow {
        fn write(&mut self, b: &[u8]) -> Result<usize, ErrorKind> {
            let n = b.len().min(self.chunk);
            self.out.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    #[test]
    fn whole_packets_in_order_through_a_slow_writer() {
        let mut q = TxQueue::<16>::new();
        let mut w = Slow {
            out: Vec::new(),
            chunk: 3,
            ready: false,
        };
        let mut want = Vec::new();
        let mut next = 0u8;
        for _ in 0..200 {
            let pkt = [next; 5];
            if q.push(&pkt) {
                want.extend_from_slice(&pkt);
                next = next.wrapping_add(1);
            }
            q.write_to(&mut w).unwrap();
        }
        while !q.is_empty() {
            q.write_to(&mut w).unwrap();
        }
        assert_eq!(w.out, want);
        assert!(next > 50, "{next}");
    }

    #[test]
    fn a_packet_that_does_not_fit_waits_or_is_an_error() {
        let mut q = TxQueue::<8>::new();
        assert!(q.push(&[1; 6]));
        assert!(!q.push(&[2; 3]));
        let too_small = |b: &mut [u8]| {
            Err(EncodeError::BufferTooSmall {
                need: 4,
                have: b.len(),
            })
        };
        assert_eq!(q.push_with(too_small), Ok(false));
        q.clear();
        let huge = |b: &mut [u8]| {
            Err(EncodeError::BufferTooSmall {
                need: 9,
                have: b.len(),
            })
        };
        assert!(q.push_with(huge).is_err());
    }
}
