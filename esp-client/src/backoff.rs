//! Exponential, capped, jittered backoff between connection attempts. "Equal jitter": half of
//! the capped delay is fixed, the other half random, so a fleet that lost its broker at the same
//! moment does not come back in lockstep, and no device retries sooner than half the delay.
//!
//! A config with several broker endpoints moves to the next one after each failure: within a
//! round of endpoints a hop waits only [`Backoff::hop_delay_ms`] (uniform in `[0, hop_ms]`) and
//! does not count as a failure; the failure that completes the round waits the growing delay
//! (`machine.rs` applies the rule; docs/esp-client.md, "Backoff and failover").

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the first retry.
    pub base_ms: u64,
    /// Longest delay.
    pub cap_ms: u64,
    /// Longest wait before trying the next broker endpoint within a round.
    pub hop_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base_ms: 1_000,
            cap_ms: 60_000,
            hop_ms: 500,
        }
    }
}

/// Counts consecutive failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    cfg: BackoffConfig,
    failures: u32,
}

impl Backoff {
    pub const fn new(cfg: BackoffConfig) -> Self {
        Backoff { cfg, failures: 0 }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The capped exponential delay for the next failure, before jitter.
    pub fn ceiling_ms(&self) -> u64 {
        let shift = self.failures.min(32);
        self.cfg
            .base_ms
            .saturating_mul(1u64 << shift)
            .min(self.cfg.cap_ms)
    }

    /// Records a failure and returns how long to wait: in `[ceiling/2, ceiling]`.
    pub fn next_delay_ms(&mut self, random: u32) -> u64 {
        let ceiling = self.ceiling_ms();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + u64::from(random) % (ceiling - half + 1)
    }

    /// The wait before trying the next endpoint within a round: uniform in `[0, hop_ms]`, so a
    /// fleet that lost one node spreads over the others; the failure count does not change.
    pub fn hop_delay_ms(&self, random: u32) -> u64 {
        u64::from(random) % (self.cfg.hop_ms.saturating_add(1)).max(1)
    }

    /// Success: the next failure starts from `base_ms` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_and_stays_in_the_jitter_window() {
        let mut b = Backoff::new(BackoffConfig {
            base_ms: 1000,
            cap_ms: 60_000,
            hop_ms: 500,
        });
        let ceilings: std::vec::Vec<u64> = (0..10)
            .map(|i| {
                let c = b.ceiling_ms();
                let d = b.next_delay_ms(i * 7919);
                assert!((c / 2..=c).contains(&d), "{d} outside [{}, {c}]", c / 2);
                c
            })
            .collect();
        assert_eq!(
            ceilings,
            [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]
        );
        // The extremes of the random input hit both ends of the window.
        let mut lo = Backoff::new(BackoffConfig::default());
        assert_eq!(lo.next_delay_ms(0), 500);
        let mut hi = Backoff::new(BackoffConfig::default());
        assert_eq!(hi.next_delay_ms(500), 1000);
        b.reset();
        assert_eq!((b.failures(), b.ceiling_ms()), (0, 1000));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(BackoffConfig {
            base_ms: u64::MAX / 2,
            cap_ms: u64::MAX,
            hop_ms: u64::MAX,
        });
        for _ in 0..100 {
            b.next_delay_ms(u32::MAX);
        }
        assert_eq!(b.ceiling_ms(), u64::MAX);
        assert_eq!(b.hop_delay_ms(u32::MAX), u64::from(u32::MAX));
    }

    #[test]
    fn a_hop_is_short_and_counts_no_failure() {
        let b = Backoff::new(BackoffConfig::default());
        assert_eq!((b.hop_delay_ms(0), b.hop_delay_ms(500)), (0, 500));
        assert!((0..10_000).all(|r| b.hop_delay_ms(r * 7919) <= 500));
        assert_eq!(b.failures(), 0);
        let none = Backoff::new(BackoffConfig {
            hop_ms: 0,
            ..BackoffConfig::default()
        });
        assert_eq!(none.hop_delay_ms(u32::MAX), 0);
    }
}
