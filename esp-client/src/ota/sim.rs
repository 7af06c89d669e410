//! An in-memory NOR flash for the power-cut simulation (MCUboot's `sim/` idea): erase sets a
//! sector to FF, a write can only clear bits, and the power can be cut at operation `k`. The
//! cut operation either does not happen, or lands torn (a part of its bytes), and every later
//! operation fails until [`SimFlash::power_on`].

use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// How the cut operation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The operation does not happen at all.
    Before,
    /// Only the first half of its bytes lands (an erase leaves the rest as it was; a write
    /// programs half its bytes).
    Torn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// The power is off.
    PowerCut,
    /// Misaligned or out of range.
    Nor(NorFlashErrorKind),
    /// A write that needs a 0 -> 1 transition (programming a non-erased byte): a bug in the
    /// code under test, never in flash.
    NotErased { addr: u32 },
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::Nor(k) => *k,
            _ => NorFlashErrorKind::Other,
        }
    }
}

pub struct SimFlash {
    pub mem: Vec<u8>,
    /// Erase and write operations performed since creation (a cut one included).
    pub ops: u64,
    cut: Option<(u64, Cut)>,
    pub dead: bool,
    /// Writes that needed a 0 -> 1 transition.
    pub violations: u32,
    pub erases: u64,
    pub bytes_written: u64,
}

impl SimFlash {
    pub fn new(len: usize) -> SimFlash {
        SimFlash {
            mem: std::vec![0xFF; len],
            ops: 0,
            cut: None,
            dead: false,
            violations: 0,
            erases: 0,
            bytes_written: 0,
        }
    }

    /// A flash holding `mem`.
    pub fn with(mem: Vec<u8>) -> SimFlash {
        SimFlash {
            mem,
            ..SimFlash::new(0)
        }
    }

    /// Cuts the power at operation number `op` (counted by [`Self::ops`]).
    pub fn cut_at(&mut self, op: u64, how: Cut) {
        self.cut = Some((op, how));
    }

    /// Power back on (a cut scheduled for later stays scheduled).
    pub fn power_on(&mut self) {
        self.dead = false;
    }

    /// Whether operation `self.ops` is the one to cut; advances the counter.
    fn begin_op(&mut self) -> Result<Option<Cut>, SimError> {
        if self.dead {
            return Err(SimError::PowerCut);
        }
        let n = self.ops;
        self.ops += 1;
        match self.cut {
            Some((k, how)) if k == n => {
                self.dead = true;
                self.cut = None;
                Ok(Some(how))
            }
            _ => Ok(None),
        }
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, SimError> {
        let start = offset as usize;
        let end = start
            .checked_add(len)
            .ok_or(SimError::Nor(NorFlashErrorKind::OutOfBounds))?;
        if end > self.mem.len() {
            return Err(SimError::Nor(NorFlashErrorKind::OutOfBounds));
        }
        Ok(start..end)
    }
}

impl ErrorType for SimFlash {
    type Error = SimError;
}

impl ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerCut);
        }
        let r = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.mem[r]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for SimFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        if !from.is_multiple_of(4096) || !to.is_multiple_of(4096) || to < from {
            return Err(SimError::Nor(NorFlashErrorKind::NotAligned));
        }
        let r = self.range(from, (to - from) as usize)?;
        let cut = self.begin_op()?;
        self.erases += u64::from((to - from) / 4096);
        let end = match cut {
            None => r.end,
            Some(Cut::Before) => return Err(SimError::PowerCut),
            Some(Cut::Torn) => r.start + r.len() / 2,
        };
        self.mem[r.start..end].fill(0xFF);
        if cut.is_some() {
            return Err(SimError::PowerCut);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        if !offset.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(SimError::Nor(NorFlashErrorKind::NotAligned));
        }
        let r = self.range(offset, bytes.len())?;
        let cut = self.begin_op()?;
        let n = match cut {
            None => bytes.len(),
            Some(Cut::Before) => return Err(SimError::PowerCut),
            Some(Cut::Torn) => bytes.len() / 2,
        };
        for (i, b) in bytes[..n].iter().enumerate() {
            let cell = &mut self.mem[r.start + i];
            if *b & !*cell != 0 {
                self.violations += 1;
                return Err(SimError::NotErased {
                    addr: (r.start + i) as u32,
                });
            }
            *cell &= *b;
        }
        self.bytes_written += n as u64;
        if cut.is_some() {
            return Err(SimError::PowerCut);
        }
        Ok(())
    }
}
