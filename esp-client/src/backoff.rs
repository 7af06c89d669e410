//! Exponential, capped, jittered backoff between connection attempts. "Equal jitter": half of
//! the capped delay is fixed, the other half random, so a fleet that lost its broker at the same
//! moment does not come back in lockstep, and no device retries sooner than half the delay.

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the first retry.
    pub base_ms: u64,
    /// Longest delay.
    pub cap_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base_ms: 1_000,
            cap_ms: 60_000,
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
        });
        for _ in 0..100 {
            b.next_delay_ms(u32::MAX);
        }
        assert_eq!(b.ceiling_ms(), u64::MAX);
    }
}
