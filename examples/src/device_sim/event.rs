//! What the simulated device reports: one [`SimEvent`] per thing that happened, for a demo to
//! print or a test to wait for.

use std::fmt;

/// Something the simulated device did or saw. `Display` gives one human-readable log line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// Opening a TCP connection to the broker.
    Connecting {
        /// `host:port`.
        broker: String,
    },
    /// The TCP connection could not be opened (or the client refused it); a retry follows
    /// after the backoff delay.
    ConnectFailed {
        /// Why.
        reason: String,
    },
    /// The broker accepted the connection (CONNACK).
    Connected {
        /// Whether the broker resumed an earlier session.
        session_present: bool,
    },
    /// The broker answered the subscription to the command topic.
    Subscribed {
        /// The filter.
        filter: String,
        /// Whether it granted it.
        granted: bool,
    },
    /// A message arrived on the command topic.
    CommandReceived {
        /// The payload, as text (lossy UTF-8).
        payload: String,
    },
    /// The device logic rejected a command (the LED stays as it is).
    CommandRejected {
        /// The payload, as text (lossy UTF-8).
        payload: String,
    },
    /// The simulated LED was driven.
    Led {
        /// Whether it is lit now.
        on: bool,
        /// Whether that differs from before (a repeated `on` confirms without a change).
        changed: bool,
    },
    /// A message was handed to the MQTT client to publish: status, LED state, error report.
    /// Telemetry is reported as [`SimEvent::Telemetry`] instead.
    Published {
        /// Topic.
        topic: String,
        /// Payload (lossy UTF-8).
        payload: String,
        /// Retained.
        retain: bool,
    },
    /// A telemetry message was handed to the MQTT client.
    Telemetry {
        /// The JSON document.
        json: String,
    },
    /// A publish could not be queued (store full, or the client refused it).
    PublishFailed {
        /// Topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The MQTT client reported an error; the connection ends after most errors.
    Error {
        /// What the client said.
        reason: String,
    },
    /// The connection to the broker is gone; the device reconnects after a backoff delay
    /// unless it was stopped or killed.
    Disconnected,
    /// [`SimHandle::cut_connection`](super::SimHandle::cut_connection): the TCP connection
    /// was dropped without DISCONNECT; the device reconnects.
    ConnectionCut,
    /// [`SimHandle::kill`](super::SimHandle::kill): the device lost power. Its TCP connection
    /// was dropped without DISCONNECT, so the broker publishes its will.
    Killed,
    /// Sleep between readings ([`SimConfig::sleep_between`](super::SimConfig)): the device
    /// woke (or was powered on) and boots from its flash image, with nothing else kept.
    Woke {
        /// Which wake this is, from 1 at power-on.
        wake: u32,
    },
    /// Sleep between readings: `Client::flush_for_sleep` returned, so everything the device
    /// holds is durable, and it sleeps now. Its RAM is dropped.
    Asleep {
        /// From the wake (before the flash image was read) to here.
        awake: std::time::Duration,
        /// How long it sleeps.
        sleep: std::time::Duration,
    },
    /// [`SimHandle::stop`](super::SimHandle::stop): the device ended gracefully. If it was
    /// connected, it published `offline` (a [`SimEvent::Published`] before this) and sent
    /// DISCONNECT.
    Stopped,
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::Connecting { broker } => write!(f, "connecting to {broker}"),
            SimEvent::ConnectFailed { reason } => write!(f, "connect failed: {reason}"),
            SimEvent::Connected { session_present } => write!(
                f,
                "connected ({})",
                if *session_present {
                    "session resumed"
                } else {
                    "new session"
                }
            ),
            SimEvent::Subscribed { filter, granted } => match granted {
                true => write!(f, "subscribed to {filter}"),
                false => write!(f, "subscription to {filter} refused"),
            },
            SimEvent::CommandReceived { payload } => write!(f, "command received: {payload:?}"),
            SimEvent::CommandRejected { payload } => write!(f, "command rejected: {payload:?}"),
            SimEvent::Led { on, changed } => {
                f.write_str(if *on { "LED (*) on" } else { "LED ( ) off" })?;
                if !changed {
                    f.write_str(" (unchanged)")?;
                }
                Ok(())
            }
            SimEvent::Published {
                topic,
                payload,
                retain,
            } => write!(
                f,
                "published {topic} = {payload:?}{}",
                if *retain { " (retained)" } else { "" }
            ),
            SimEvent::Telemetry { json } => write!(f, "telemetry {json}"),
            SimEvent::PublishFailed { topic, reason } => {
                write!(f, "publish to {topic} dropped: {reason}")
            }
            SimEvent::Error { reason } => write!(f, "mqtt error: {reason}"),
            SimEvent::Disconnected => f.write_str("disconnected"),
            SimEvent::ConnectionCut => f.write_str("connection cut (no DISCONNECT)"),
            SimEvent::Killed => f.write_str("killed: connection dropped without DISCONNECT"),
            SimEvent::Woke { wake } => write!(f, "woke (wake {wake}), booting from flash"),
            SimEvent::Asleep { awake, sleep } => write!(
                f,
                "asleep for {:.3} s after {:.1} ms awake",
                sleep.as_secs_f64(),
                awake.as_secs_f64() * 1e3
            ),
            SimEvent::Stopped => f.write_str("stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_read_well() {
        let line = SimEvent::Published {
            topic: "devices/x/led/state".into(),
            payload: "on".into(),
            retain: true,
        }
        .to_string();
        assert_eq!(line, r#"published devices/x/led/state = "on" (retained)"#);
        let led = SimEvent::Led {
            on: true,
            changed: true,
        };
        assert_eq!(led.to_string(), "LED (*) on");
    }
}
