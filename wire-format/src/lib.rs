//! `no_std`, allocation-free wire formats shared by `provision`, `esp-client` and `avr-slave`.
//!
//! Each format lives in its own module with one constants block, a checked view over bytes and a
//! `Repr` with `parse`/`emit` (the smoltcp pattern). Nothing here panics on outside bytes.
#![no_std]
#![forbid(unsafe_code)]

/// Device ids: `[a-z0-9][a-z0-9-]{0,62}`. The id becomes the certificate CN, the MQTT username and
/// a topic level, so it must never contain MQTT wildcards, separators or upper case.
pub mod device_id;

/// The device config blob (`provision device config` writes it, the firmware reads it from flash).
pub mod device_config;

/// The SPI link between the ESP8266 (master) and the ATmega168 (slave); spec in docs/spi-link.md.
pub mod spi_link;

/// Signed OTA bundles (format v1) and, with feature `verify`, the streaming verifier.
pub mod ota;

/// The OTA transfer protocol over MQTT (offer, range request, chunk, status); spec in
/// docs/ota-protocol.md.
pub mod ota_proto;
