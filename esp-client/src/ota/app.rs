//! The OTA application: the [`Updater`] on the device's MQTT session. Messages under
//! `devices/<id>/ota/down/` go in (retained ones are ignored: an old offer must never start an
//! update by itself), requests and status reports go out, and the device resets when the
//! updater says so. A query is answered with the current report, not retained, so an operator
//! on any node of a clustered broker gets it live (docs/ota-protocol.md, "Status on demand").

use wire_format::device_config::{DeviceConfig, MAX_OTA_KEYS};
use wire_format::ota::{Target, TrustedKey};
use wire_format::ota_proto::{Kind, Query, STATUS_LEN, TOPIC_REQUEST, TOPIC_STATUS};

use super::layout::Layout;
use super::update::{Action, OtaSettings, Out, Running, Updater};
use crate::app::{App, Ctx};
use crate::board::Board;
use crate::machine::Failure;
use crate::mqtt::{Publish, QoS, Sent};

/// Messages the updater may send per poll (a window of requests and a status).
const SENDS_PER_POLL: usize = 6;

pub struct Ota {
    updater: Option<Updater>,
    reboot: bool,
}

impl Default for Ota {
    fn default() -> Self {
        Self::new()
    }
}

impl Ota {
    pub const fn new() -> Self {
        Ota {
            updater: None,
            reboot: false,
        }
    }

    /// At boot: reads the boot state and the running image's header (no OTA without a layout).
    pub fn boot<B: Board>(&mut self, board: &mut B, settings: OtaSettings, now: u64) {
        self.reboot = false;
        self.updater = board.ota_layout().map(|layout: &'static Layout| {
            Updater::new(board.flash(), layout, Target::Esp8266, settings, now)
        });
        if let Some(u) = &self.updater {
            let r = u.running();
            let phase = u.report().phase;
            board.log(format_args!(
                "ota: running {} from slot {} ({phase})",
                r.version, r.slot
            ));
        }
    }

    /// The trusted keys from the device config, on the stack while they are needed (the
    /// updater keeps none).
    fn keys(config: Option<&DeviceConfig<'_>>) -> ([TrustedKey; MAX_OTA_KEYS], usize) {
        let mut keys = [TrustedKey {
            key_id: 0,
            public_key: [0; 32],
        }; MAX_OTA_KEYS];
        let mut n = 0;
        if let Some(config) = config {
            for (slot, entry) in keys.iter_mut().zip(config.ota_keys) {
                let mut id = [0; 4];
                id.copy_from_slice(&entry[..4]);
                let mut public_key = [0; 32];
                public_key.copy_from_slice(&entry[4..]);
                *slot = TrustedKey {
                    key_id: u32::from_le_bytes(id),
                    public_key,
                };
                n += 1;
            }
        }
        (keys, n)
    }

    /// The image running now (`None` on a board without OTA).
    pub fn running(&self) -> Option<Running> {
        self.updater.as_ref().map(Updater::running)
    }

    /// Timers that run in every state (a trial image that cannot get online still resets).
    /// Returns the next deadline.
    pub fn tick(&mut self, now: u64) -> u64 {
        let Some(u) = &mut self.updater else {
            return u64::MAX;
        };
        if u.poll(now) == Action::Reboot {
            self.reboot = true;
        }
        u.next_deadline(now)
    }

    /// Whether the device must reset now.
    pub fn reboot_due(&self) -> bool {
        self.reboot
    }
}

impl App for Ota {
    const FILTER: Option<&'static str> = Some(wire_format::ota_proto::TOPIC_DOWN_FILTER);
    const PREFIX: &'static str = "ota/down/";

    fn enabled(&self) -> bool {
        self.updater.is_some()
    }

    /// Online (CONNACK and SUBACK): the one call that confirms a trial image.
    fn on_online<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) {
        if let Some(u) = &mut self.updater {
            let (keys, n) = Self::keys(ctx.config().as_ref());
            match u.online(ctx.board.flash(), &keys[..n], ctx.now) {
                Ok(true) => {
                    let r = u.running();
                    ctx.board.log(format_args!(
                        "ota: confirmed {} in slot {}",
                        r.version, r.slot
                    ));
                }
                Ok(false) => {}
                Err(_) => ctx.board.log(format_args!("ota: flash error")),
            }
        }
    }

    /// A message under `devices/<id>/ota/down/`; `rest` is the last level.
    fn on_publish<B: Board>(
        &mut self,
        ctx: &mut Ctx<'_, B>,
        rest: &str,
        msg: &Publish<'_>,
    ) -> Result<(), Failure> {
        let Some(u) = &mut self.updater else {
            return Ok(());
        };
        if msg.retain {
            ctx.board.log(format_args!("ota: retained message ignored"));
            return Ok(());
        }
        let kind = match rest {
            "offer" => Kind::Offer,
            "chunk" => Kind::Chunk,
            "query" => Kind::Query,
            _ => return Ok(()),
        };
        if kind == Kind::Query {
            match Query::parse(msg.payload) {
                Ok(Query) => u.on_query(),
                Err(e) => ctx.board.log(format_args!("ota: query dropped: {e}")),
            }
            return Ok(());
        }
        let result = match kind {
            // The status report that follows says what became of it.
            Kind::Offer => {
                let (keys, n) = Self::keys(ctx.config().as_ref());
                u.on_offer(ctx.board.flash(), &keys[..n], msg.payload, ctx.now)
            }
            _ => u.on_chunk(ctx.board.flash(), msg.payload, ctx.now),
        };
        if result.is_err() {
            ctx.board.log(format_args!("ota: flash error"));
        }
        Ok(())
    }

    /// While online: publishes what the updater has to say, as far as the session takes it.
    fn poll<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) -> Result<u64, Failure> {
        let Some(u) = &mut self.updater else {
            return Ok(u64::MAX);
        };
        for _ in 0..SENDS_PER_POLL {
            let out = match u.next_message(ctx.board.flash(), ctx.now) {
                Ok(Some(out)) => out,
                Ok(None) => break,
                Err(_) => {
                    ctx.board.log(format_args!("ota: flash error"));
                    continue;
                }
            };
            let sent = match &out {
                Out::Request(r) => {
                    ctx.publish(TOPIC_REQUEST, &r.to_bytes(), QoS::AtMostOnce, false)
                }
                Out::Status(s) => {
                    let bytes: [u8; STATUS_LEN] = s.to_bytes();
                    ctx.board.log(format_args!(
                        "ota: status {} (bundle {}, running {})",
                        s.phase, s.bundle_version, s.running
                    ));
                    ctx.publish(TOPIC_STATUS, &bytes, QoS::AtLeastOnce, true)
                }
                Out::Answer(s) => {
                    let bytes: [u8; STATUS_LEN] = s.to_bytes();
                    ctx.board
                        .log(format_args!("ota: query answered: {}", s.phase));
                    ctx.publish(TOPIC_STATUS, &bytes, QoS::AtLeastOnce, false)
                }
            }?;
            if matches!(sent, Sent::Busy) {
                u.unsent(&out);
                break;
            }
        }
        if u.poll(ctx.now) == Action::Reboot {
            self.reboot = true;
            return Ok(ctx.now);
        }
        Ok(u.next_deadline(ctx.now))
    }
}
