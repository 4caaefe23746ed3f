//! The host device simulator: the ESP32 LED device on a PC.
//!
//! It runs the *same* device logic (`led-device`) and the *same* `no_std` MQTT client
//! (`mqtt-client-nb`) as the firmware in `examples/esp32-c3`, wired together the way the
//! firmware's `app.rs` does it, over a tokio `TcpStream` (through `embedded-io-adapters`)
//! instead of an `embassy-net` socket. Only the hardware is simulated: the LED is a
//! [`watch`] channel, uptime comes from a tokio clock, and free heap and RSSI are made up.
//!
//! ```no_run
//! use std::time::Duration;
//! use examples::device_sim::{DeviceSim, SimConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = SimConfig::from_url("mqtt://127.0.0.1:1883")?.credentials("device", "secret");
//! config.device_id = Some("lamp-1".into());
//! config.telemetry_interval = Duration::from_secs(5);
//! let mut sim = DeviceSim::spawn(config)?;
//! while let Some(event) = sim.next_event().await {
//!     println!("{}: {event}", sim.device_id());
//!     if !*sim.led().borrow() { /* the LED is off */ }
//! #   break;
//! }
//! sim.kill().await; // the broker publishes `offline` on devices/lamp-1/status
//! # Ok(())
//! # }
//! ```
//!
//! The device's MQTT interface (topics, payloads, QoS, retain) is described in the
//! `led-device` crate.

mod config;
mod event;
mod flash;
mod platform;
mod run;
mod sleep;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{parse_broker_url, ConfigError, SimConfig};
pub use event::SimEvent;

use run::{Control, Outputs};

/// Events kept for a receiver that falls behind; older ones are skipped.
const EVENT_CAPACITY: usize = 1024;

/// Starts simulated devices; see [`DeviceSim::spawn`].
#[derive(Debug, Clone, Copy)]
pub struct DeviceSim;

impl DeviceSim {
    /// Starts a simulated device on the current tokio runtime. It connects to the broker,
    /// keeps reconnecting with backoff when the connection fails or drops, and runs until
    /// [`SimHandle::kill`], [`SimHandle::stop`], or until the handle is dropped (which acts
    /// as `kill`).
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid device id, or settings the MQTT client refuses (e.g. a
    /// password without user name on 3.1.1, credentials too long for the device's buffers).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(config: SimConfig) -> Result<SimHandle, ConfigError> {
        let id = config.resolved_id()?;
        run::check(&config, &id)?;
        let (led_tx, led) = watch::channel(config.initial_led);
        let (connected_tx, connected) = watch::channel(false);
        let (events_tx, events) = broadcast::channel(EVENT_CAPACITY);
        let (control, control_rx) = mpsc::unbounded_channel();
        let outputs = Outputs {
            led: led_tx,
            connected: connected_tx,
            events: events_tx,
        };
        let task = tokio::spawn(run::run(config, id, outputs, control_rx));
        Ok(SimHandle {
            device_id: id.as_str().to_owned(),
            led,
            connected,
            events,
            control,
            task: Some(task),
        })
    }
}

/// A running simulated device.
///
/// Dropping the handle kills the device (as [`SimHandle::kill`], without waiting).
#[derive(Debug)]
pub struct SimHandle {
    device_id: String,
    led: watch::Receiver<bool>,
    connected: watch::Receiver<bool>,
    /// The handle's own receiver, there since the start. Only the device task holds the
    /// sender, so the log closes when the device ends.
    events: broadcast::Receiver<SimEvent>,
    control: mpsc::UnboundedSender<Control>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The device id: MQTT client id and the `<id>` in `devices/<id>/...`.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// `devices/<id>/<suffix>`, e.g. `topic("led/set")`.
    pub fn topic(&self, suffix: &str) -> String {
        format!("devices/{}/{suffix}", self.device_id)
    }

    /// The simulated LED: `true` while lit. Await `changed()` on it to follow switches.
    pub fn led(&self) -> watch::Receiver<bool> {
        self.led.clone()
    }

    /// Whether the broker has accepted the current connection (CONNACK seen, not lost since).
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// The next event since the device started (or since the previous call). Events are
    /// kept for this handle from the start, up to 1024 unread; older ones are skipped if it
    /// falls further behind. `None` once the device has ended and every event was read.
    ///
    /// # Cancel safety
    /// Cancel-safe: an event is taken only when this returns it.
    pub async fn next_event(&mut self) -> Option<SimEvent> {
        loop {
            match self.events.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Another receiver of the event log, seeing events from now on (e.g. for a printing
    /// task while the handle's own [`SimHandle::next_event`] serves assertions).
    pub fn subscribe_events(&self) -> broadcast::Receiver<SimEvent> {
        self.events.resubscribe()
    }

    /// Whether the device is still running (not killed, stopped or crashed).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// Simulates a network glitch: drops the TCP connection without DISCONNECT (the broker
    /// publishes the will, `offline`) and lets the device reconnect after its backoff delay.
    pub fn cut_connection(&self) {
        let _ = self.control.send(Control::Cut);
    }

    /// Simulates a power cut: drops the TCP connection without DISCONNECT, so the broker
    /// publishes the will (`offline`, retained, on `devices/<id>/status`), and ends the
    /// device. Returns once the socket is closed. Does nothing if the device already ended.
    ///
    /// # Panics
    /// If the device's task panicked (the panic is resumed here).
    pub async fn kill(&mut self) {
        self.end(Control::Kill).await;
    }

    /// Shuts the device down gracefully: publishes `offline` (retained) itself, sends
    /// DISCONNECT (so the broker discards the will) and waits up to 5 s for that to be
    /// written, then ends the device. Does nothing if the device already ended.
    ///
    /// # Panics
    /// If the device's task panicked (the panic is resumed here).
    pub async fn stop(&mut self) {
        self.end(Control::Stop).await;
    }

    async fn end(&mut self, how: Control) {
        let Some(task) = self.task.take() else {
            return;
        };
        let _ = self.control.send(how);
        if let Err(e) = task.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}
