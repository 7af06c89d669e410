//! The device firmware core, written against traits so that the same code runs on the ESP8266 and,
//! for development and tests, as a host program talking to a real broker.
#![cfg_attr(not(test), no_std)]

/// The SPI master driver for the ATmega168 IO expander (docs/spi-link.md).
pub mod avr_link;

pub mod app;
pub mod avr_io;
pub mod backoff;
pub mod board;
pub mod clock;
pub mod command;
pub mod machine;
pub mod mqtt;
pub mod ota;
pub mod settings;

#[cfg(test)]
mod transcripts;
