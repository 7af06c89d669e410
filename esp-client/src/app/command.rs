//! Commands: `devices/<id>/cmd/<name>` runs on the AVR (or reboots the device), and the reply
//! goes to `devices/<id>/reply/<name>`. Parsing is in `crate::command`.

use core::fmt::Write as _;

use super::{App, Ctx};
use crate::board::{AvrError, AvrLink, Board};
use crate::command::{self, Command, FmtBuf, Json};
use crate::machine::Failure;
use crate::mqtt::{Publish, QoS, Sent};
use crate::settings::{CMD_NAME_BUF, CMD_PAYLOAD_BUF, PAYLOAD_BUF};

pub struct Commands {
    /// After a reboot command, wait this long at most for the reply's PUBACK.
    pub reboot_grace_ms: u64,
    /// A reboot was asked for: reset once the reply is acknowledged or at this time.
    reboot_at: Option<u64>,
    /// Commands received (answered or refused).
    pub count: u32,
}

impl Commands {
    pub const fn new(reboot_grace_ms: u64) -> Self {
        Commands {
            reboot_grace_ms,
            reboot_at: None,
            count: 0,
        }
    }

    /// Whether to reboot now: asked for, and the reply acknowledged or the grace time over.
    pub fn reboot_due(&self, now: u64, all_acked: bool) -> bool {
        self.reboot_at.is_some_and(|at| all_acked || now >= at)
    }

    /// Answers a command that is not run with `error`.
    fn refuse<B: Board>(
        &mut self,
        ctx: &mut Ctx<'_, B>,
        name: &str,
        payload: &[u8],
        error: &str,
    ) -> Result<(), Failure> {
        let mut reply = FmtBuf::<PAYLOAD_BUF>::new();
        let _ = reply.write_str("{");
        if let Some(req) = command::request_id(&payload[..payload.len().min(CMD_PAYLOAD_BUF)]) {
            let _ = write!(reply, "\"req\":\"{req}\",");
        }
        let _ = write!(reply, "\"ok\":false,\"error\":{}}}", Json(error));
        self.reply(ctx, name, &reply)
    }

    fn reply<B: Board>(
        &mut self,
        ctx: &mut Ctx<'_, B>,
        name: &str,
        reply: &FmtBuf<PAYLOAD_BUF>,
    ) -> Result<(), Failure> {
        ctx.board
            .log(format_args!("cmd/{name} -> {}", reply.as_str()));
        let mut suffix = FmtBuf::<{ 6 + CMD_NAME_BUF }>::new();
        let _ = write!(suffix, "reply/{name}");
        if ctx.publish(suffix.as_str(), reply.as_bytes(), QoS::AtLeastOnce, false)? == Sent::Busy {
            ctx.board.log(format_args!(
                "reply to cmd/{name} dropped: every in-flight slot is busy"
            ));
        }
        Ok(())
    }

    /// Runs one command and publishes its reply on `reply/<name>`.
    fn run<B: Board>(
        &mut self,
        ctx: &mut Ctx<'_, B>,
        name: &str,
        payload: &[u8],
    ) -> Result<(), Failure> {
        let mut reply = FmtBuf::<PAYLOAD_BUF>::new();
        let _ = reply.write_str("{");
        if let Some(req) = command::request_id(&payload[..payload.len().min(CMD_PAYLOAD_BUF)]) {
            let _ = write!(reply, "\"req\":\"{req}\",");
        }
        let parsed = if payload.len() > CMD_PAYLOAD_BUF {
            Err(command::CommandError::TooLong {
                len: payload.len(),
                max: CMD_PAYLOAD_BUF,
            })
        } else {
            command::parse(name, payload)
        };
        let result: Result<(), AvrError> = match parsed {
            Ok(Command::SetPin { pin, high }) => ctx.board.avr().set_pin(pin, high).map(|()| {
                let _ = write!(
                    reply,
                    "\"ok\":true,\"pin\":{pin},\"level\":{}",
                    u8::from(high)
                );
            }),
            Ok(Command::ReadAdc { channel }) => ctx.board.avr().read_adc(channel).map(|v| {
                let _ = write!(reply, "\"ok\":true,\"channel\":{channel},\"value\":{v}");
            }),
            Ok(Command::Reboot) => {
                let _ = write!(reply, "\"ok\":true,\"rebooting\":true");
                self.reboot_at = Some(ctx.now + self.reboot_grace_ms);
                Ok(())
            }
            Err(e) => {
                let mut msg = FmtBuf::<96>::new();
                let _ = write!(msg, "{e}");
                let _ = write!(reply, "\"ok\":false,\"error\":{}", Json(msg.as_str()));
                Ok(())
            }
        };
        if let Err(e) = result {
            let mut msg = FmtBuf::<96>::new();
            let _ = write!(msg, "{e}");
            let _ = write!(reply, "\"ok\":false,\"error\":{}", Json(msg.as_str()));
        }
        let _ = reply.write_str("}");
        self.reply(ctx, name, &reply)
    }
}

/// The error a retained command is answered with.
pub const RETAINED: &str =
    "a retained command is not run (clear it: publish an empty retained message to its topic)";

impl App for Commands {
    const FILTER: Option<&'static str> = Some("cmd/#");
    const PREFIX: &'static str = "cmd/";

    fn on_publish<B: Board>(
        &mut self,
        ctx: &mut Ctx<'_, B>,
        name: &str,
        msg: &Publish<'_>,
    ) -> Result<(), Failure> {
        if name.is_empty() || name.len() > CMD_NAME_BUF {
            return Ok(());
        }
        self.count += 1;
        if msg.retain {
            // The broker keeps a retained command and hands it to every new subscription: run,
            // it would run again after every reconnect (a retained `reboot` is a reboot loop).
            // Live commands arrive with RETAIN clear, even when published with it.
            return self.refuse(ctx, name, msg.payload, RETAINED);
        }
        self.run(ctx, name, msg.payload)
    }
}
