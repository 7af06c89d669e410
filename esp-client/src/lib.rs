//! The device firmware core, written against traits so that the same code runs on the ESP8266 and,
//! for development and tests, as a host program talking to a real broker.
#![cfg_attr(not(test), no_std)]
