//! Telemetry: every period, one sample of the AVR's ports and ADC channels on
//! `devices/<id>/telemetry`, QoS 1.

use core::fmt::Write as _;

use super::{App, Ctx};
use crate::board::{AvrError, AvrLink, Board};
use crate::command::{FmtBuf, Json};
use crate::machine::Failure;
use crate::mqtt::{QoS, Sent};
use crate::settings::{MAX_INFLIGHT, PAYLOAD_BUF};

pub struct Telemetry {
    pub period_ms: u64,
    /// ADC channels `0..adc_channels` go into a sample.
    pub adc_channels: u8,
    next: u64,
    seq: u32,
    pub sent: u32,
    /// Samples skipped because every in-flight slot was busy.
    pub dropped: u32,
    /// Samples the broker acknowledged (PUBACK).
    pub acked: u32,
    /// Packet ids of samples awaiting PUBACK (0: none).
    pending: [u16; MAX_INFLIGHT],
}

impl Telemetry {
    pub const fn new(adc_channels: u8) -> Self {
        Telemetry {
            period_ms: 0,
            adc_channels,
            next: 0,
            seq: 0,
            sent: 0,
            dropped: 0,
            acked: 0,
            pending: [0; MAX_INFLIGHT],
        }
    }

    /// One sample: port levels and ADC channels from the AVR.
    fn sample<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) -> Result<(), Failure> {
        self.seq += 1;
        let mut out = FmtBuf::<PAYLOAD_BUF>::new();
        let _ = write!(
            out,
            "{{\"seq\":{},\"uptime_s\":{}",
            self.seq,
            ctx.now / 1000
        );
        let mark = out.len();
        let channels = self.adc_channels;
        let board = &mut *ctx.board;
        let sample = (|| -> Result<(), AvrError> {
            let [b, c, d] = board.avr().read_ports()?;
            let _ = write!(
                out,
                ",\"ports\":{{\"b\":{b},\"c\":{c},\"d\":{d}}},\"adc\":["
            );
            for ch in 0..channels {
                let v = board.avr().read_adc(ch)?;
                let _ = write!(out, "{}{v}", if ch == 0 { "" } else { "," });
            }
            let _ = out.write_str("]");
            Ok(())
        })();
        if let Err(e) = sample {
            // An error halfway (say the third ADC channel) would leave `"adc":[1,2` open.
            out.truncate(mark);
            let mut msg = FmtBuf::<96>::new();
            let _ = write!(msg, "{e}");
            let _ = write!(out, ",\"avr_error\":{}", Json(msg.as_str()));
        }
        let _ = write!(
            out,
            ",\"dropped\":{},\"retransmits\":{}}}",
            self.dropped,
            ctx.out.retransmits()
        );
        match ctx.publish("telemetry", out.as_bytes(), QoS::AtLeastOnce, false)? {
            Sent::Queued { pkid } => {
                self.sent += 1;
                if let Some(p) = self.pending.iter_mut().find(|p| **p == 0) {
                    *p = pkid;
                }
            }
            Sent::Busy => self.dropped += 1,
        }
        Ok(())
    }
}

impl App for Telemetry {
    const FILTER: Option<&'static str> = None;
    const PREFIX: &'static str = "telemetry";

    fn on_online<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) {
        self.next = ctx.now;
    }

    fn poll<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) -> Result<u64, Failure> {
        for p in self.pending.iter_mut().filter(|p| **p != 0) {
            if !ctx.out.in_flight(*p) {
                *p = 0;
                self.acked += 1;
            }
        }
        if ctx.now >= self.next {
            self.sample(ctx)?;
            self.next = ctx.now + self.period_ms;
        }
        Ok(self.next)
    }
}
