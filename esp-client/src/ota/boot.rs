//! The boot decision, shared by the loader (which acts on it) and the application (which reads
//! which slot it runs from). Pure: [`decide`] maps a boot state to a [`Boot`]; [`choose_slot`]
//! reads the state from flash and decides; [`boot`] is what the loader runs before it jumps: it
//! persists the trial-boot count (or the rollback) first, so an image that crashes before its own
//! code runs still uses up a trial boot.

use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use super::layout::{Layout, Slot};
use super::state::{self, BootState, Outcome, Stored, MAX_TRIAL_BOOTS};

/// Why the loader boots the slot it boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootKind {
    /// The confirmed image; nothing pending.
    Normal,
    /// A pending image, on trial boot `attempt` (1..=[`MAX_TRIAL_BOOTS`]).
    Trial { attempt: u8 },
    /// The pending image used up its trial boots: back to the confirmed image.
    RolledBack,
}

/// The loader's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    pub slot: Slot,
    pub kind: BootKind,
    /// The record to persist before jumping (trial accounting or rollback), if any.
    pub persist: Option<BootState>,
}

/// The decision for a boot state (pure).
pub fn decide(s: &BootState) -> Boot {
    match s.pending {
        Some(p) if s.trial_boots < MAX_TRIAL_BOOTS => Boot {
            slot: p,
            kind: BootKind::Trial {
                attempt: s.trial_boots + 1,
            },
            persist: Some(BootState {
                trial_boots: s.trial_boots + 1,
                ..*s
            }),
        },
        Some(_) => Boot {
            slot: s.active,
            kind: BootKind::RolledBack,
            persist: Some(BootState {
                pending: None,
                trial_boots: 0,
                pending_counter: 0,
                outcome: Outcome::RolledBack,
                ..*s
            }),
        },
        None => Boot {
            slot: s.active,
            kind: BootKind::Normal,
            persist: None,
        },
    }
}

/// Reads the boot state from flash and decides (no writes).
pub fn choose_slot<F: ReadNorFlash>(flash: &mut F, layout: &Layout) -> Boot {
    decide(&state::read(flash, layout).state)
}

/// The loader's step before jumping: decide, persist the trial count or the rollback, and
/// return the slot to load. If that write fails, a trial is not started (the confirmed image
/// boots instead), so no trial boot ever goes uncounted.
pub fn boot<F: NorFlash>(flash: &mut F, layout: &Layout) -> Boot {
    let current = state::read(flash, layout);
    let decision = decide(&current.state);
    match decision.persist {
        Some(next) => match state::write(flash, layout, &current, next) {
            Ok(_) => decision,
            Err(_) => Boot {
                slot: current.state.active,
                kind: BootKind::Normal,
                persist: None,
            },
        },
        None => decision,
    }
}

/// Marks a verified image in `slot` to be tried on the next boot. Takes the [`VerifiedImage`]
/// proof: nothing else can make a slot bootable.
///
/// [`VerifiedImage`]: wire_format::ota::VerifiedImage
pub fn mark_pending<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    current: &Stored,
    slot: Slot,
    verified: wire_format::ota::VerifiedImage,
    bundle_id: u32,
) -> Result<Stored, MarkError<F::Error>> {
    let s = current.state;
    if s.pending.is_some() || slot == s.active {
        return Err(MarkError::SlotInUse);
    }
    if verified.header().security_counter < s.floor {
        return Err(MarkError::BelowFloor);
    }
    let next = BootState {
        pending: Some(slot),
        trial_boots: 0,
        pending_counter: verified.header().security_counter,
        outcome: Outcome::None,
        outcome_bundle: bundle_id,
        ..s
    };
    state::write(flash, layout, current, next).map_err(MarkError::Flash)
}

/// Why [`mark_pending`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkError<E> {
    /// An image is pending already, or the slot is the active one.
    SlotInUse,
    /// The image's counter is below the floor (the verifier checked it against an older floor).
    BelowFloor,
    Flash(E),
}

/// Confirms the image running on trial: it becomes the active image and the floor rises to its
/// counter. Returns `Ok(None)` when nothing is on trial. The application calls this from one
/// place only: when the device is online (CONNACK and SUBACK received).
pub fn confirm<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    current: &Stored,
) -> Result<Option<Stored>, F::Error> {
    let s = current.state;
    match s.pending {
        Some(p) if s.trial_boots > 0 => {
            let next = BootState {
                active: p,
                pending: None,
                trial_boots: 0,
                floor: s.floor.max(s.pending_counter),
                pending_counter: 0,
                outcome: Outcome::Confirmed,
                ..s
            };
            state::write(flash, layout, current, next).map(Some)
        }
        _ => Ok(None),
    }
}
