//! Hardware-independent logic of the LED example device.
//!
//! An ESP32 (or anything else) joins a network, connects to an MQTT broker and exposes one LED:
//!
//! | topic                      | direction | payload                      | QoS | retained |
//! |----------------------------|-----------|------------------------------|-----|----------|
//! | `devices/<id>/status`      | out       | `online`; will: `offline`    | 1   | yes      |
//! | `devices/<id>/led/set`     | in        | `on`, `off`, `toggle`        | 1   | -        |
//! | `devices/<id>/led/state`   | out       | `on`, `off`                  | 1   | yes      |
//! | `devices/<id>/led/error`   | out       | text: why a command failed   | 0   | no       |
//! | `devices/<id>/telemetry`   | out       | JSON, see below              | 0   | no       |
//!
//! Commands are trimmed of ASCII whitespace and compared ignoring ASCII case. Anything else on
//! `led/set` is rejected: the LED stays as it is, the `rejected` counter goes up and, unless
//! [`Config::report_rejected`] is off, a short explanation goes to `led/error` (not retained,
//! so it does not greet later subscribers). Rejections are reported rather than silently
//! dropped because a user typing `blink` into an MQTT tool otherwise sees nothing happen.
//!
//! Telemetry, every [`Config::telemetry_interval_ms`] while connected, first right after
//! connecting; `free_heap` and `rssi` appear only when the platform knows them:
//!
//! ```json
//! {"uptime_s":61,"messages":3,"rejected":1,"led":"on","free_heap":51200,"rssi":-61}
//! ```
//!
//! [`Device`] is a pure state machine: it knows nothing about the MQTT client, clocks or pins
//! and returns borrowed [`Outgoing`] messages built in fixed-size buffers. No heap, no
//! dependencies, so it runs in host unit tests exactly as on the chip.
//!
//! ```
//! use led_device::{Config, Device, DeviceId, PlatformInfo};
//!
//! let mut device = Device::new(DeviceId::from_mac([0x24, 0x6f, 0x28, 0xa1, 0xb2, 0xc3]), Config::default());
//! assert_eq!(device.client_id(), "esp32-a1b2c3");
//! assert_eq!(device.will().topic, "devices/esp32-a1b2c3/status");
//!
//! let hello: Vec<_> = device.on_connected(0).map(|m| (m.topic, m.payload)).collect();
//! assert_eq!(hello[0], ("devices/esp32-a1b2c3/status", &b"online"[..]));
//!
//! let reaction = device.on_message("devices/esp32-a1b2c3/led/set", b" ON\n");
//! assert_eq!(reaction.led, Some(true));
//! assert_eq!(reaction.publish.unwrap().payload, b"on");
//!
//! assert!(device.poll_telemetry(0, PlatformInfo::default()).is_some());
//! assert!(device.poll_telemetry(1_000, PlatformInfo::default()).is_none());
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

mod buf;
mod command;
mod device;
mod id;
mod telemetry;

pub use buf::TextBuf;
pub use command::Command;
pub use device::{
    Config, Device, Outgoing, Qos, Reaction, Subscription, MAX_TOPIC_LEN, OFFLINE, ONLINE,
};
pub use id::{DeviceId, IdError, MAX_ID_LEN};
pub use telemetry::{PlatformInfo, MAX_TELEMETRY_LEN};

/// The payload for an LED state: `on` or `off`.
pub fn led_payload(led: bool) -> &'static str {
    if led {
        "on"
    } else {
        "off"
    }
}
