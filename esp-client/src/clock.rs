//! The device's idea of wall-clock time, for certificate validation only: the ESP8266 has no RTC
//! and BearSSL refuses to validate without a time. The floor is
//! max(time source, firmware build time, last time persisted in flash), advanced by the monotonic
//! clock. The persisted record lives in the state sector (docs/device-config.md).

/// The state sector record: magic, seconds since 1970, CRC-32 of the first 12 bytes.
pub mod record {
    pub const MAGIC: [u8; 4] = *b"ESPT";
    pub const LEN: usize = 16;
    /// Persist again only when the time moved this far (flash wear: at most one erase an hour).
    pub const MIN_STEP_S: u64 = 3_600;
}

/// Encodes a persisted time record.
pub fn emit_record(unix: u64) -> [u8; record::LEN] {
    let mut r = [0u8; record::LEN];
    r[..4].copy_from_slice(&record::MAGIC);
    r[4..12].copy_from_slice(&unix.to_le_bytes());
    let crc = wire_format::device_config::crc32(&r[..12]);
    r[12..].copy_from_slice(&crc.to_le_bytes());
    r
}

/// Decodes a persisted time record; `None` for an erased, foreign or damaged one.
pub fn parse_record(r: &[u8]) -> Option<u64> {
    let r = r.get(..record::LEN)?;
    if r[..4] != record::MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes([r[12], r[13], r[14], r[15]]);
    if crc != wire_format::device_config::crc32(&r[..12]) {
        return None;
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&r[4..12]);
    Some(u64::from_le_bytes(t))
}

/// Wall-clock floor, anchored to the monotonic clock.
///
/// Two parts: the *trusted* floor (build time, the persisted record, or a time a TLS handshake
/// was validated at and succeeded) and an *unconfirmed* answer of the time source, which is not
/// authenticated (SNTP). Certificates are validated at the higher of the two ([`TimeFloor::at`]),
/// but only the trusted floor is ever persisted ([`TimeFloor::trusted`]): a source answer
/// becomes trusted when a handshake validated at it succeeds ([`TimeFloor::confirm`]), and is
/// dropped when the broker's certificate fails at it ([`TimeFloor::reject_source`]). A spoofed
/// answer costs one failed connect, never a persisted floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFloor {
    /// Trusted floor (unix seconds) at `anchor_ms`.
    floor_s: u64,
    anchor_ms: u64,
    /// The source's answer (unix seconds at a monotonic time), while above the trusted floor
    /// and not yet confirmed.
    source: Option<(u64, u64)>,
    /// Whether the time source was asked (and answered) since boot.
    synced: bool,
}

impl TimeFloor {
    /// Start from what is known without a network: build time and the persisted time.
    pub fn new(build_unix: u64, persisted: Option<u64>, now_ms: u64) -> Self {
        TimeFloor {
            floor_s: build_unix.max(persisted.unwrap_or(0)),
            anchor_ms: now_ms,
            source: None,
            synced: false,
        }
    }

    /// A time source answered. An answer above the trusted floor is used for validation but
    /// stays unconfirmed; one below it changes nothing (a lying source cannot roll the device
    /// back to accept expired certificates).
    pub fn sync(&mut self, source_unix: u64, now_ms: u64) {
        self.synced = true;
        if source_unix > self.trusted(now_ms) {
            self.source = Some((source_unix, now_ms));
        }
    }

    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The floor certificates are validated at, at `now_ms`.
    pub fn at(&self, now_ms: u64) -> u64 {
        let trusted = self.trusted(now_ms);
        match self.source {
            Some((s, anchor)) => trusted.max(s + now_ms.saturating_sub(anchor) / 1000),
            None => trusted,
        }
    }

    /// The trusted floor at `now_ms`: the only one that may be persisted.
    pub fn trusted(&self, now_ms: u64) -> u64 {
        self.floor_s + now_ms.saturating_sub(self.anchor_ms) / 1000
    }

    /// Whether the floor at `now_ms` rests on an unconfirmed source answer.
    pub fn unconfirmed(&self, now_ms: u64) -> bool {
        self.at(now_ms) > self.trusted(now_ms)
    }

    /// A TLS handshake validated at `floor_s` (taken at `at_ms`) succeeded: the broker's
    /// certificate chain is valid then, so that time is trusted from now on.
    pub fn confirm(&mut self, floor_s: u64, at_ms: u64) {
        if floor_s > self.trusted(at_ms) {
            self.floor_s = floor_s;
            self.anchor_ms = at_ms;
        }
        self.source = None;
    }

    /// The broker's certificate failed at the source's time: forget that answer.
    pub fn reject_source(&mut self) {
        self.source = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_is_the_max_of_the_three_and_advances() {
        let build = 1_760_000_000;
        let t = TimeFloor::new(build, None, 0);
        assert_eq!(t.at(5_000), build + 5);
        let t = TimeFloor::new(build, Some(build + 100), 0);
        assert_eq!(t.at(0), build + 100);
        let mut t = TimeFloor::new(build, Some(build + 100), 1_000);
        t.sync(build + 50, 2_000); // an older source does not lower it
        assert_eq!(t.at(2_000), build + 101);
        t.sync(build + 10_000, 3_000);
        assert_eq!((t.at(4_000), t.synced()), (build + 10_001, true));
    }

    #[test]
    fn a_source_answer_is_trusted_only_once_confirmed() {
        let build = 1_760_000_000;
        let mut t = TimeFloor::new(build, None, 0);
        t.sync(build + 10_000, 1_000);
        assert_eq!((t.at(2_000), t.trusted(2_000)), (build + 10_001, build + 2));
        assert!(t.unconfirmed(2_000));
        // Rejected: back to the trusted floor, which kept running.
        let mut r = t;
        r.reject_source();
        assert_eq!((r.at(5_000), r.unconfirmed(5_000)), (build + 5, false));
        // Confirmed at the floor a handshake used: trusted from then on.
        t.confirm(t.at(2_000), 2_000);
        assert_eq!(
            (t.trusted(3_000), t.unconfirmed(3_000)),
            (build + 10_002, false)
        );
        // A later, lower answer changes nothing.
        t.sync(build, 4_000);
        assert_eq!(t.at(4_000), build + 10_003);
    }

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let r = emit_record(1_760_000_123);
        assert_eq!(parse_record(&r), Some(1_760_000_123));
        assert_eq!(parse_record(&[0xFF; 16]), None);
        assert_eq!(parse_record(&r[..15]), None);
        for i in 0..16 {
            let mut bad = r;
            bad[i] ^= 0x10;
            assert_eq!(parse_record(&bad), None, "byte {i}");
        }
    }
}
