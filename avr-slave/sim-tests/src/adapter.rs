//! embedded-hal 1.0 over the simulator, so that esp-client's real driver talks to the real
//! firmware: [`SimSpi`] shifts bytes through simavr's SPI, [`SimDelay`] lets simulated time pass.

use crate::sim::{Sim, FREQUENCY_HZ};
use core::convert::Infallible;
use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};
use std::cell::RefCell;
use std::rc::Rc;

/// The simulator, shared by the bus, the delay and the test that watches the pins.
pub type Shared = Rc<RefCell<Sim>>;

/// The SPI bus with the ATmega on it (simavr does not model /SS, so a transaction is just bytes).
pub struct SimSpi(pub Shared);

/// Delays run the simulated CPU instead of sleeping.
pub struct SimDelay(pub Shared);

/// Bus and delay over one booted simulator.
pub fn attach(sim: Sim) -> (SimSpi, SimDelay, Shared) {
    let shared = Rc::new(RefCell::new(sim));
    (SimSpi(shared.clone()), SimDelay(shared.clone()), shared)
}

impl ErrorType for SimSpi {
    type Error = Infallible;
}

impl SpiDevice for SimSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        let mut sim = self.0.borrow_mut();
        for op in operations {
            match op {
                Operation::Read(buf) => buf.iter_mut().for_each(|b| *b = sim.transfer(0)),
                Operation::Write(buf) => buf.iter().for_each(|&b| {
                    sim.transfer(b);
                }),
                Operation::Transfer(read, write) => {
                    for i in 0..read.len().max(write.len()) {
                        let got = sim.transfer(write.get(i).copied().unwrap_or(0));
                        if let Some(r) = read.get_mut(i) {
                            *r = got;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    buf.iter_mut().for_each(|b| *b = sim.transfer(*b))
                }
                Operation::DelayNs(ns) => sim.run_cycles(ns_to_cycles(*ns)),
            }
        }
        Ok(())
    }
}

fn ns_to_cycles(ns: u32) -> u64 {
    (u64::from(ns) * u64::from(FREQUENCY_HZ)).div_ceil(1_000_000_000)
}

impl DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.borrow_mut().run_cycles(ns_to_cycles(ns));
    }
}
