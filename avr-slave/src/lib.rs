//! The ATmega SPI-slave's protocol engine, kept free of registers so that it runs (and is tested)
//! on the host. The AVR binary in `firmware/` is a thin layer: its SPI interrupt feeds
//! [`link::Link`], its main loop hands complete requests to [`engine::Engine`] with a
//! register-backed [`engine::Board`].
//!
//! Protocol: `wire_format::spi_link`, spec in docs/spi-link.md.
#![no_std]
#![forbid(unsafe_code)]

/// Command execution over a [`engine::Board`]: validation, error bookkeeping, the handshake.
pub mod engine;
/// Byte-level framing, run inside the SPI interrupt.
pub mod link;

#[cfg(test)]
mod proptests;
