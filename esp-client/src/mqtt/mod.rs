//! MQTT 3.1.1 for the device: the codec (packets over caller buffers) and the session (framing,
//! packet ids, QoS 1 in flight, keep-alive) that the device's lifecycle drives.

mod codec;
pub mod session;
pub mod txqueue;

pub use codec::*;
pub use session::{Event, Sender, Sent, Session, SessionConfig, SessionError, SessionStats};
