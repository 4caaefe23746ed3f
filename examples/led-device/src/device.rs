//! The device state machine.

use core::fmt::Write;

use crate::buf::TextBuf;
use crate::command::Command;
use crate::id::{DeviceId, MAX_ID_LEN};
use crate::telemetry::{PlatformInfo, Telemetry, MAX_TELEMETRY_LEN};

/// Payload of the status topic while the device is connected.
pub const ONLINE: &str = "online";
/// Payload of the status topic once the device is gone: the last will.
pub const OFFLINE: &str = "offline";

/// Longest topic the device uses: `devices/` + a [`MAX_ID_LEN`]-byte id + `/led/error`.
///
/// A driver that must keep a topic while it mutates the [`Device`] (e.g. the will topic, held
/// by the MQTT client for every reconnect) copies it into a `TextBuf<MAX_TOPIC_LEN>`.
pub const MAX_TOPIC_LEN: usize = "devices/".len() + MAX_ID_LEN + "/led/error".len();
/// Longest payload the device builds itself (telemetry, error reports).
const MAX_PAYLOAD_LEN: usize = MAX_TELEMETRY_LEN;
/// Longest rejected command echoed back in an error report.
const MAX_ECHO_LEN: usize = 24;

/// Quality of service of an outgoing message or a subscription (the two levels the device uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    /// QoS 0: fire and forget.
    AtMostOnce,
    /// QoS 1: acknowledged, possibly duplicated.
    AtLeastOnce,
}

/// A message for the platform to publish (or, for [`Device::will`], to register as the will).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// Topic name, e.g. `devices/esp32-a1b2c3/led/state`.
    pub topic: &'a str,
    /// Payload bytes (UTF-8 text or JSON).
    pub payload: &'a [u8],
    /// Requested quality of service.
    pub qos: Qos,
    /// Whether the broker keeps it as the topic's retained message.
    pub retain: bool,
}

/// A topic filter to subscribe to after every connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription<'a> {
    /// The filter (a plain topic name here, no wildcards).
    pub filter: &'a str,
    /// Maximum QoS requested.
    pub qos: Qos,
}

/// What the platform must do after [`Device::on_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaction<'a> {
    /// Drive the LED to this state (`true` = lit); `None` leaves it alone.
    pub led: Option<bool>,
    /// Publish this (the new LED state, or an error report).
    pub publish: Option<Outgoing<'a>>,
}

impl Reaction<'_> {
    /// Nothing to do.
    pub const NONE: Reaction<'static> = Reaction {
        led: None,
        publish: None,
    };

    /// Whether there is nothing to do.
    pub fn is_none(&self) -> bool {
        self.led.is_none() && self.publish.is_none()
    }
}

/// Behaviour settings of a [`Device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Milliseconds between telemetry messages; `0` turns telemetry off.
    pub telemetry_interval_ms: u64,
    /// LED state at power-on.
    pub initial_led: bool,
    /// Report rejected commands on `devices/<id>/led/error` (QoS 0, not retained). When `false`
    /// they are only counted (the `rejected` telemetry field) and otherwise ignored.
    pub report_rejected: bool,
}

impl Default for Config {
    /// Telemetry every 30 s, LED off, rejected commands reported.
    fn default() -> Self {
        Self {
            telemetry_interval_ms: 30_000,
            initial_led: false,
            report_rejected: true,
        }
    }
}

/// The topics of one device, built once.
#[derive(Clone, Copy, Debug)]
struct Topics {
    status: TextBuf<MAX_TOPIC_LEN>,
    led_set: TextBuf<MAX_TOPIC_LEN>,
    led_state: TextBuf<MAX_TOPIC_LEN>,
    led_error: TextBuf<MAX_TOPIC_LEN>,
    telemetry: TextBuf<MAX_TOPIC_LEN>,
}

impl Topics {
    fn new(id: &DeviceId) -> Self {
        let topic = |suffix: &str| {
            let mut t = TextBuf::new();
            // Cannot fail: MAX_TOPIC_LEN covers the longest id with the longest suffix.
            let _ = write!(t, "devices/{id}/{suffix}");
            t
        };
        Self {
            status: topic("status"),
            led_set: topic("led/set"),
            led_state: topic("led/state"),
            led_error: topic("led/error"),
            telemetry: topic("telemetry"),
        }
    }
}

/// The LED device: a pure state machine between the MQTT client and the hardware.
///
/// It never touches a clock, socket or pin. The platform passes `now` as milliseconds since
/// boot (monotonic), publishes what the device returns, and drives the LED as told:
///
/// 1. connect with [`client_id`](Self::client_id) and [`will`](Self::will) (`offline`,
///    retained, QoS 1, on `devices/<id>/status`);
/// 2. on every CONNACK, including reconnects: publish all of [`on_connected`](Self::on_connected)
///    (`online` and the LED state, both retained) and subscribe to
///    [`subscriptions`](Self::subscriptions);
/// 3. hand each received message to [`on_message`](Self::on_message) and act on the
///    [`Reaction`];
/// 4. call [`poll_telemetry`](Self::poll_telemetry) whenever
///    [`next_telemetry_at`](Self::next_telemetry_at) has passed;
/// 5. on connection loss call [`on_disconnected`](Self::on_disconnected).
#[derive(Clone, Debug)]
pub struct Device {
    id: DeviceId,
    config: Config,
    topics: Topics,
    led: bool,
    connected: bool,
    next_telemetry: Option<u64>,
    messages: u32,
    rejected: u32,
    payload: TextBuf<MAX_PAYLOAD_LEN>,
}

impl Device {
    /// A disconnected device with the LED at `config.initial_led`.
    pub fn new(id: DeviceId, config: Config) -> Self {
        Self {
            topics: Topics::new(&id),
            id,
            led: config.initial_led,
            config,
            connected: false,
            next_telemetry: None,
            messages: 0,
            rejected: 0,
            payload: TextBuf::new(),
        }
    }

    /// The device id.
    pub fn id(&self) -> &DeviceId {
        &self.id
    }

    /// The MQTT client id: the device id.
    pub fn client_id(&self) -> &str {
        self.id.as_str()
    }

    /// Whether the LED is lit (as far as the device logic has commanded).
    pub fn led(&self) -> bool {
        self.led
    }

    /// Whether [`on_connected`](Self::on_connected) was called more recently than
    /// [`on_disconnected`](Self::on_disconnected).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Messages received on the command topic so far, valid or not.
    pub fn messages_handled(&self) -> u32 {
        self.messages
    }

    /// Messages on the command topic that were not a command.
    pub fn messages_rejected(&self) -> u32 {
        self.rejected
    }

    /// The last will to register in CONNECT: `offline`, retained, QoS 1, on the status topic.
    ///
    /// The broker publishes it when the device vanishes. A clean DISCONNECT discards the will,
    /// so publish this message yourself before disconnecting on purpose. The topic borrows
    /// the device; a client that keeps it across reconnects needs a copy (see
    /// [`MAX_TOPIC_LEN`]).
    pub fn will(&self) -> Outgoing<'_> {
        self.status(OFFLINE)
    }

    /// The filters to subscribe to after every connect: the command topic, QoS 1.
    pub fn subscriptions(&self) -> [Subscription<'_>; 1] {
        [Subscription {
            filter: self.topics.led_set.as_str(),
            qos: Qos::AtLeastOnce,
        }]
    }

    /// The session is up (CONNACK received) at `now_ms`: returns what to publish, `online` on
    /// the status topic and the current LED state, both retained at QoS 1, and schedules the
    /// first telemetry message for `now_ms`.
    ///
    /// Call it after every reconnect, too: the retained status may by then be the broker's
    /// `offline` will and the state may have been overwritten by another client.
    pub fn on_connected(&mut self, now_ms: u64) -> impl Iterator<Item = Outgoing<'_>> {
        self.connected = true;
        self.next_telemetry = (self.config.telemetry_interval_ms > 0).then_some(now_ms);
        [self.status(ONLINE), self.led_state()].into_iter()
    }

    /// The connection is gone: stops telemetry until the next [`on_connected`](Self::on_connected).
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.next_telemetry = None;
    }

    /// A message arrived. Commands on `devices/<id>/led/set` switch the LED and publish the new
    /// state (retained, QoS 1, even when it did not change, as confirmation). Anything else on
    /// that topic is counted as rejected and, if [`Config::report_rejected`], answered on
    /// `devices/<id>/led/error`. Messages on other topics are ignored.
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) -> Reaction<'_> {
        if topic != self.topics.led_set.as_str() {
            return Reaction::NONE;
        }
        self.messages = self.messages.wrapping_add(1);
        match Command::parse(payload) {
            Some(command) => {
                self.led = command.apply(self.led);
                Reaction {
                    led: Some(self.led),
                    publish: Some(self.led_state()),
                }
            }
            None => {
                self.rejected = self.rejected.wrapping_add(1);
                if !self.config.report_rejected {
                    return Reaction::NONE;
                }
                self.write_error(payload);
                Reaction {
                    led: None,
                    publish: Some(Outgoing {
                        topic: self.topics.led_error.as_str(),
                        payload: self.payload.as_bytes(),
                        qos: Qos::AtMostOnce,
                        retain: false,
                    }),
                }
            }
        }
    }

    /// When the next telemetry message is due (milliseconds since boot), or `None` while
    /// disconnected or with telemetry turned off.
    pub fn next_telemetry_at(&self) -> Option<u64> {
        self.next_telemetry
    }

    /// Returns the telemetry message (JSON, QoS 0, not retained) if one is due at `now_ms`.
    ///
    /// Messages keep a fixed cadence from the connect time; when the platform polls late by
    /// more than one interval, the missed ones are skipped rather than sent in a burst.
    pub fn poll_telemetry(&mut self, now_ms: u64, platform: PlatformInfo) -> Option<Outgoing<'_>> {
        let due = self.next_telemetry?;
        if !self.connected || now_ms < due {
            return None;
        }
        let interval = self.config.telemetry_interval_ms;
        let next = due.saturating_add(interval);
        self.next_telemetry = Some(if next > now_ms {
            next
        } else {
            now_ms.saturating_add(interval)
        });
        let telemetry = Telemetry {
            uptime_s: now_ms / 1000,
            messages: self.messages,
            rejected: self.rejected,
            led: self.led,
            platform,
        };
        // Cannot fail: MAX_TELEMETRY_LEN covers every field at its widest (tested).
        let _ = telemetry.write_json(&mut self.payload);
        Some(Outgoing {
            topic: self.topics.telemetry.as_str(),
            payload: self.payload.as_bytes(),
            qos: Qos::AtMostOnce,
            retain: false,
        })
    }

    fn status(&self, payload: &'static str) -> Outgoing<'_> {
        Outgoing {
            topic: self.topics.status.as_str(),
            payload: payload.as_bytes(),
            qos: Qos::AtLeastOnce,
            retain: true,
        }
    }

    fn led_state(&self) -> Outgoing<'_> {
        Outgoing {
            topic: self.topics.led_state.as_str(),
            payload: crate::led_payload(self.led).as_bytes(),
            qos: Qos::AtLeastOnce,
            retain: true,
        }
    }

    /// `unknown command "blink" (expected on, off or toggle)`; the rejected text is echoed only
    /// when it is short printable ASCII, so the report never carries binary or huge payloads.
    fn write_error(&mut self, payload: &[u8]) {
        let word = payload.trim_ascii();
        let echo = core::str::from_utf8(word).ok().filter(|w| {
            w.len() <= MAX_ECHO_LEN && w.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        });
        self.payload.clear();
        // Cannot fail: the longest form is well under MAX_PAYLOAD_LEN.
        let _ = match echo {
            Some(word) if !word.is_empty() => write!(
                self.payload,
                "unknown command \"{word}\" (expected on, off or toggle)"
            ),
            _ => self
                .payload
                .write_str("unknown command (expected on, off or toggle)"),
        };
    }
}
