//! The device's applications, each in its own module, on top of the MQTT session: telemetry,
//! commands, and (in `crate::ota`) the update. The device's lifecycle (`machine.rs`) owns the
//! connection; an application only sees a [`Ctx`] while it runs:
//!
//! - **Incoming**: a PUBLISH under `devices/<id>/` is dispatched by its topic to one
//!   application, whose [`App::on_publish`] gets the rest of the topic after its prefix and the
//!   whole message (binary payload, up to the receive buffer, `RX_BUF`). The message borrows
//!   the session's receive buffer: nothing is copied.
//! - **Outgoing**: [`Ctx::publish`] goes through the session with back-pressure: `Sent::Busy`
//!   when every in-flight slot or the transmit queue is taken; the application keeps what it
//!   wanted to send and tries again on a later poll.
//! - **Timers**: [`App::poll`] runs on every poll while online and returns the time it wants to
//!   be polled again at the latest; `Device::poll` returns the earliest of all deadlines.
//! - **Subscriptions**: [`App::FILTER`] is the app's topic filter under `devices/<id>/`, and
//!   [`App::PREFIX`] the topic prefix its messages are dispatched by.
//!
//! docs/esp-client.md, "Applications", describes this seam for someone adding one.

pub mod command;
pub mod telemetry;

use core::fmt::Write as _;

use crate::board::Board;
use crate::command::FmtBuf;
use crate::machine::Failure;
use crate::mqtt::{EncodeError, Publish, QoS, Sender, Sent};
use crate::settings::TOPIC_BUF;

/// What an application gets while it runs.
pub struct Ctx<'a, B: Board> {
    pub board: &'a mut B,
    /// The session's sending half.
    pub out: &'a mut Sender,
    /// `devices/<id>/`.
    pub prefix: &'a str,
    pub now: u64,
}

impl<B: Board> Ctx<'_, B> {
    /// PUBLISH on `devices/<id>/<suffix>`. `Ok(Sent::Busy)`: no room now, try again later.
    pub fn publish(
        &mut self,
        suffix: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<Sent, Failure> {
        let mut topic = FmtBuf::<TOPIC_BUF>::new();
        write!(topic, "{}{suffix}", self.prefix)
            .map_err(|_| Failure::Encode(EncodeError::BadTopic))?;
        self.out
            .publish(self.now, topic.as_str(), payload, qos, retain)
            .map_err(Failure::Encode)
    }
}

/// One application on the device.
pub trait App {
    /// Subscription under `devices/<id>/` (e.g. `cmd/#`); `None`: receives nothing.
    const FILTER: Option<&'static str>;
    /// Messages whose topic under `devices/<id>/` starts with this go to [`App::on_publish`].
    const PREFIX: &'static str;

    /// The session is up (SUBACK received) at `now`.
    fn on_online(&mut self, now: u64) {
        let _ = now;
    }

    /// A message for this application: `rest` is the topic after `devices/<id>/` + `PREFIX`.
    /// A QoS 1 message was acknowledged already. An error drops the connection.
    fn on_publish<B: Board>(
        &mut self,
        ctx: &mut Ctx<'_, B>,
        rest: &str,
        msg: &Publish<'_>,
    ) -> Result<(), Failure> {
        let _ = (ctx, rest, msg);
        Ok(())
    }

    /// Runs while online; returns when it wants to run again at the latest (`u64::MAX`: no
    /// timer).
    fn poll<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) -> Result<u64, Failure> {
        let _ = ctx;
        Ok(u64::MAX)
    }
}
