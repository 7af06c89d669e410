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
//! The device holds its applications in [`Apps`], declared by one list (`apps!` below): the
//! subscription, the dispatch, `on_online` and `poll` loop over it in its order.
//!
//! docs/esp-client.md, "Applications", describes this seam for someone adding one.

pub mod command;
pub mod telemetry;

use core::fmt::Write as _;

use wire_format::device_config::DeviceConfig;

use crate::board::Board;
use crate::command::FmtBuf;
use crate::machine::{Config, Failure};
use crate::mqtt::consts::MAX_FILTERS;
use crate::mqtt::{EncodeError, Publish, QoS, Sender, Sent};
use crate::ota::Ota;
use crate::settings::TOPIC_BUF;
use command::Commands;
use telemetry::Telemetry;

/// What an application gets while it runs.
pub struct Ctx<'a, B: Board> {
    pub board: &'a mut B,
    /// The session's sending half.
    pub out: &'a mut Sender,
    /// `devices/<id>/`.
    pub prefix: &'a str,
    /// The config sector as checked at boot.
    pub(crate) config: &'a Config,
    pub now: u64,
}

impl<'a, B: Board> Ctx<'a, B> {
    /// The device's config (`None` only before it was loaded).
    pub fn config(&self) -> Option<DeviceConfig<'a>> {
        self.config.get()
    }

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

    /// Whether the application runs on this board; one that does not is not subscribed.
    fn enabled(&self) -> bool {
        true
    }

    /// The session is up (SUBACK received).
    fn on_online<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) {
        let _ = ctx;
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

/// Declares [`Apps`] from the list of applications: the one place an application is named.
macro_rules! apps {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        /// The device's applications.
        pub struct Apps {
            $($(#[$doc])* pub $name: $ty,)*
        }

        impl Apps {
            /// How many applications subscribe at most (the topic buffers the subscription
            /// needs).
            pub const FILTERS: usize = 0 $(+ <$ty as App>::FILTER.is_some() as usize)*;

            /// Each enabled application's subscription under `devices/<id>/`, in order.
            pub fn filters(&self, mut f: impl FnMut(&'static str)) {
                $(if let (Some(filter), true) = (<$ty as App>::FILTER, self.$name.enabled()) {
                    f(filter);
                })*
            }

            /// Hands a message to the first application whose `PREFIX` starts `suffix` (the
            /// topic after `devices/<id>/`).
            pub fn on_publish<B: Board>(
                &mut self,
                ctx: &mut Ctx<'_, B>,
                suffix: &str,
                msg: &Publish<'_>,
            ) -> Result<(), Failure> {
                $(if let Some(rest) = suffix.strip_prefix(<$ty as App>::PREFIX) {
                    return self.$name.on_publish(ctx, rest, msg);
                })*
                Ok(())
            }

            pub fn on_online<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) {
                $(self.$name.on_online(ctx);)*
            }

            /// Polls every application; the earliest of their deadlines.
            pub fn poll<B: Board>(&mut self, ctx: &mut Ctx<'_, B>) -> Result<u64, Failure> {
                let mut next = u64::MAX;
                $(next = next.min(self.$name.poll(ctx)?);)*
                Ok(next)
            }
        }
    };
}

apps! {
    telemetry: Telemetry,
    commands: Commands,
    /// Over-the-air updates (off on a board without an OTA layout).
    ota: Ota,
}

/// The subscription always carries the commands' filter, so it is never empty, and it fits one
/// SUBSCRIBE.
const _: () = assert!(Commands::FILTER.is_some() && Apps::FILTERS <= MAX_FILTERS);
