//! The transmit side of a non-blocking transport: whole packets are encoded into a fixed queue,
//! and the queue is offered to the transport whenever it says it can take bytes. A packet is
//! either queued whole or not at all, so a partial write never cuts one in the middle. The queue
//! also keeps the clock of a transport that stops taking bytes ([`TxQueue::waiting_since`]).

use super::codec::EncodeError;

/// A byte queue of `N` bytes: `buf[start..end]` waits to be written.
pub struct TxQueue<const N: usize> {
    buf: [u8; N],
    start: usize,
    end: usize,
    /// When the transport last took bytes, or the first of the waiting bytes was queued.
    since: u64,
}

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
            since: 0,
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

    /// Since when bytes have waited for the transport without it taking any (`None`: nothing
    /// waits).
    pub fn waiting_since(&self) -> Option<u64> {
        (!self.is_empty()).then_some(self.since)
    }

    /// Encodes one packet with `emit` into the free space at `now`. `Ok(false)`: it does not
    /// fit now (bytes still waiting; try again after they went out). A packet that does not fit
    /// even an empty queue is an error.
    pub fn push_with(
        &mut self,
        now: u64,
        emit: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
    ) -> Result<bool, EncodeError> {
        if self.is_empty() {
            self.since = now;
        }
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

    /// Queues `bytes` whole at `now`, or nothing (`false`).
    pub fn push(&mut self, now: u64, bytes: &[u8]) -> bool {
        if bytes.len() > self.free() {
            return false;
        }
        let copy = |b: &mut [u8]| {
            b[..bytes.len()].copy_from_slice(bytes);
            Ok(bytes.len())
        };
        self.push_with(now, copy) == Ok(true)
    }

    /// The bytes waiting, oldest first.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The first `n` waiting bytes went out at `now`.
    pub fn consume(&mut self, now: u64, n: usize) {
        if n > 0 {
            self.since = now;
        }
        self.start += n.min(self.len());
        if self.is_empty() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn whole_packets_in_order_through_a_slow_writer() {
        let mut q = TxQueue::<16>::new();
        let (mut out, mut want) = (Vec::new(), Vec::new());
        let mut next = 0u8;
        for round in 0..200 {
            let pkt = [next; 5];
            if q.push(round, &pkt) {
                want.extend_from_slice(&pkt);
                next = next.wrapping_add(1);
            }
            // A writer that takes 3 bytes every other round.
            if round % 2 == 0 {
                let n = q.pending().len().min(3);
                out.extend_from_slice(&q.pending()[..n]);
                q.consume(round, n);
            }
        }
        out.extend_from_slice(q.pending());
        q.consume(200, q.len());
        assert!(q.is_empty());
        assert_eq!(out, want);
        assert!(next > 50, "{next}");
    }

    #[test]
    fn a_packet_that_does_not_fit_waits_or_is_an_error() {
        let mut q = TxQueue::<8>::new();
        assert!(q.push(0, &[1; 6]));
        assert!(!q.push(0, &[2; 3]));
        let too_small = |b: &mut [u8]| {
            Err(EncodeError::BufferTooSmall {
                need: 4,
                have: b.len(),
            })
        };
        assert_eq!(q.push_with(0, too_small), Ok(false));
        q.clear();
        let huge = |b: &mut [u8]| {
            Err(EncodeError::BufferTooSmall {
                need: 9,
                have: b.len(),
            })
        };
        assert!(q.push_with(0, huge).is_err());
    }

    #[test]
    fn the_wait_counts_from_the_first_queued_byte_or_the_last_taken() {
        let mut q = TxQueue::<16>::new();
        assert_eq!(q.waiting_since(), None);
        assert!(q.push(10, &[1; 4]));
        // More bytes behind waiting ones do not restart the clock.
        assert!(q.push(20, &[2; 4]));
        assert_eq!(q.waiting_since(), Some(10));
        // Nothing taken: still waiting since 10.
        q.consume(30, 0);
        assert_eq!(q.waiting_since(), Some(10));
        q.consume(40, 3);
        assert_eq!(q.waiting_since(), Some(40));
        q.consume(50, 5);
        assert_eq!(q.waiting_since(), None);
        // An empty queue starts a new wait with the next packet, not from the last progress.
        assert!(q.push(90, &[3; 2]));
        assert_eq!(q.waiting_since(), Some(90));
        // A packet that does not fit is not queued and leaves the clock alone.
        assert!(!q.push(95, &[4; 15]));
        assert_eq!(q.waiting_since(), Some(90));
    }
}
