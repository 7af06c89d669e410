//! Over-the-air updates, device side: the flash layout, the boot state and boot decision (shared
//! with the loader), the slot trailer, and the update state machine that downloads, verifies,
//! marks, confirms and reports (docs/ota-protocol.md, docs/flash-layout.md).

pub mod app;
pub mod boot;
pub mod layout;
pub mod state;
pub mod trailer;
pub mod update;

pub use app::Ota;
pub use boot::{boot, choose_slot, decide, Boot, BootKind};
pub use layout::{Layout, Slot, SlotRegion, SECTOR};
pub use state::{BootState, Outcome, MAX_TRIAL_BOOTS};
pub use update::{Action, OtaSettings, Out, Running, Updater};

#[cfg(test)]
mod powercut;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
