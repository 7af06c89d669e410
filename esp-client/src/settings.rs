//! Every buffer size and every timeout of the core, in one place. Sizes are constants (they set
//! the RAM budget, checked in `machine::tests::ram_budget`); timeouts are a [`Settings`] value
//! with defaults, so the host port and tests can shorten them.

use crate::backoff::BackoffConfig;

/// The config sector, read whole at boot.
pub const CONFIG_BUF: usize = wire_format::device_config::MAX_LEN;
/// Largest MQTT packet the device accepts; bigger ones are skipped with an error. Below the
/// ESP8266's TLS receive buffer (design.md: keep messages to the device at 1-4 KiB).
pub const RX_BUF: usize = 2048;
/// Largest packet the device sends that is not kept for retransmission (CONNECT, SUBSCRIBE, acks).
pub const TX_BUF: usize = 512;
/// QoS 1 publishes awaiting PUBACK.
pub const MAX_INFLIGHT: usize = 4;
/// Largest QoS 1 PUBLISH (kept until acknowledged, for retransmission).
pub const INFLIGHT_BUF: usize = 384;
/// `devices/<id>/<suffix>`: 8 + 63 + 1 + the longest suffix we build.
pub const TOPIC_BUF: usize = 112;
/// A command's name (the topic level after `cmd/`).
pub const CMD_NAME_BUF: usize = 32;
/// A command's payload.
pub const CMD_PAYLOAD_BUF: usize = 128;
/// Telemetry and reply payloads.
pub const PAYLOAD_BUF: usize = 256;
/// RAM the OTA application may add to `Device` (its state between chunks; the chunks
/// themselves are read in place from the receive buffer).
pub const OTA_RAM_BUDGET: usize = 1536;
/// RAM budget of the core's state (`Device`): 9 KiB for the lifecycle, the session and the
/// applications without OTA, plus [`OTA_RAM_BUDGET`]. Figures stated in
/// docs/esp-client.md, checked by `transcripts::ram_budget`.
pub const RAM_BUDGET: usize = 9 * 1024 + OTA_RAM_BUDGET;

/// Timeouts and protocol parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Offset of the config sector in the board's flash region.
    pub config_offset: u32,
    /// Offset of the state sector (persisted time).
    pub state_offset: u32,
    /// Firmware build time, seconds since 1970: the lowest the time floor can be.
    pub build_time_unix: u64,
    /// MQTT keep-alive; a PINGREQ goes out after this long without sending.
    pub keep_alive_s: u16,
    /// No PINGRESP this long after a PINGREQ: the connection is dead.
    pub ping_timeout_ms: u64,
    /// Joining the network may take this long.
    pub network_timeout_ms: u64,
    /// Waiting for the time source; after this the floor is used as it is.
    pub time_sync_timeout_ms: u64,
    /// TCP + TLS handshake, from `Transport::connect_start` to an established connection.
    pub connect_timeout_ms: u64,
    pub connack_timeout_ms: u64,
    pub suback_timeout_ms: u64,
    /// A QoS 1 PUBLISH is sent again (DUP) after this long without PUBACK ...
    pub ack_timeout_ms: u64,
    /// ... at most this many times; then the connection is considered dead.
    pub max_retransmits: u8,
    /// Longest sleep between polls while connected (how fast commands are noticed).
    pub idle_poll_ms: u64,
    /// Telemetry reads ADC channels `0..adc_channels`.
    pub adc_channels: u8,
    /// After a reboot command, wait this long at most for the reply's PUBACK.
    pub reboot_grace_ms: u64,
    pub backoff: BackoffConfig,
    /// The OTA updater's timers.
    pub ota: crate::ota::OtaSettings,
    /// The backoff starts from its first delay again only after a connection stayed online
    /// this long (a broker that cuts every session right after SUBACK meets a growing delay).
    pub stable_after_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config_offset: 0,
            state_offset: CONFIG_BUF as u32,
            build_time_unix: 0,
            keep_alive_s: 60,
            ping_timeout_ms: 10_000,
            network_timeout_ms: 30_000,
            time_sync_timeout_ms: 10_000,
            connect_timeout_ms: 10_000,
            connack_timeout_ms: 10_000,
            suback_timeout_ms: 10_000,
            ack_timeout_ms: 5_000,
            max_retransmits: 3,
            idle_poll_ms: 20,
            adc_channels: 4,
            reboot_grace_ms: 2_000,
            backoff: BackoffConfig::default(),
            ota: crate::ota::OtaSettings::default(),
            stable_after_ms: 30_000,
        }
    }
}
