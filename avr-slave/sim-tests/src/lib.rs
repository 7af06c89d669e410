//! Test support: build the real firmware once per MCU, run it in simavr, play SPI master.
//!
//! The tests in `tests/` use it in three ways: raw frames byte by byte (the protocol spec, errors,
//! resync, timing), through `esp_client::avr_link` over [`adapter`] (the real driver against the
//! real firmware), and the ELF's section sizes (the flash/SRAM budget).

/// The embedded-hal `SpiDevice` + `DelayNs` pair over the simulator.
pub mod adapter;
/// Building the firmware for an MCU (once per test run) and measuring its ELF.
pub mod firmware;
/// A simavr instance running the firmware, with the test as SPI master.
pub mod sim;
