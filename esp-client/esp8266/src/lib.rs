//! The ESP8266 side of esp-client: the board layer over Espressif's NONOS SDK (only built for the
//! chip), the flash layout and slot image format the second-stage loader reads, and the
//! scenarios that run the core on the LX106 in QEMU. docs/esp8266.md explains each part.
#![no_std]

#[cfg(target_arch = "xtensa")]
pub mod chip;
#[cfg(target_arch = "xtensa")]
pub mod hspi;
pub mod image;
pub mod layout;
#[cfg(target_arch = "xtensa")]
pub mod rom;
#[cfg(target_arch = "xtensa")]
pub mod sdk;
pub mod sim;
#[cfg(target_arch = "xtensa")]
pub mod transport;

#[cfg(test)]
extern crate std;
