//! The simulated device's main loop: the firmware's `app.rs` wiring between `led-device` and
//! `mqtt-client-nb`, over a tokio `TcpStream` instead of an `embassy-net` socket.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use led_device::{Device, DeviceId, Outgoing, Qos, TextBuf, MAX_TOPIC_LEN, OFFLINE};
use mqtt_client_nb::flash::FlashJournal;
use mqtt_client_nb::mqtt_sansio::{PacketId, QoS, TopicName};
use mqtt_client_nb::{Client, Clock, Error, Event, Journal, Options, Will};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch};

use super::config::{ConfigError, SimConfig};
use super::event::SimEvent;
use super::flash::{self, FileFlash};
use super::platform::{FakePlatform, TokioClock};
use super::sleep;

/// The transport: a tokio TCP stream seen through `embedded-io-async`.
pub(crate) type Tcp = FromTokio<TcpStream>;

/// Largest MQTT packet in each direction, as on the board: commands are a few bytes,
/// telemetry under 200.
pub(super) const MQTT_BUF: usize = 512;
/// Session store: the CONNECT, queued and unacknowledged messages, subscriptions (as on the
/// board).
pub(super) const MQTT_STORE: usize = 1024;
/// How long a graceful stop waits for the DISCONNECT to go out.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a graceful stop waits for the broker to close the connection after DISCONNECT.
const LINGER: Duration = Duration::from_secs(2);
/// Events a graceful stop handles at most while waiting.
const STOP_EVENTS: usize = 1000;

/// Requests from the [`SimHandle`](super::SimHandle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Drop the TCP connection without DISCONNECT and reconnect.
    Cut,
    /// Drop the TCP connection without DISCONNECT and end.
    Kill,
    /// Publish `offline`, DISCONNECT, and end.
    Stop,
}

/// Where the loop reports to.
#[derive(Debug)]
pub(crate) struct Outputs {
    pub(crate) led: watch::Sender<bool>,
    pub(crate) connected: watch::Sender<bool>,
    pub(crate) events: broadcast::Sender<SimEvent>,
}

impl Outputs {
    pub(super) fn emit(&self, event: SimEvent) {
        // Without receivers the event has nobody to tell; that is fine.
        let _ = self.events.send(event);
    }
}

/// Checks that the client accepts the configuration, with throw-away buffers of the sizes the
/// loop uses.
pub(crate) fn check(config: &SimConfig, id: &DeviceId) -> Result<(), ConfigError> {
    if config.sleep_between.is_some() && config.flash_image.is_none() {
        return Err(ConfigError::SleepNeedsFlashImage);
    }
    let device = Device::new(*id, device_config(config));
    let will_topic = will_topic(&device);
    let options = options(config, id.as_str(), will_topic.as_str(), device.will());
    let (mut rx, mut tx, mut store) = ([0u8; MQTT_BUF], [0u8; MQTT_BUF], [0u8; MQTT_STORE]);
    Client::<Tcp>::new(options, &mut rx, &mut tx, &mut store).map_err(ConfigError::Client)?;
    Ok(())
}

/// Runs the device until killed or stopped (or until the handle is dropped, which kills it).
/// With [`SimConfig::flash_image`], its session lives in a flash image file and outlives a
/// kill, as the board's lives in its flash partition.
pub(crate) async fn run(
    config: SimConfig,
    id: DeviceId,
    out: Outputs,
    control: mpsc::UnboundedReceiver<Control>,
) {
    if let (Some(period), Some(path)) = (config.sleep_between, &config.flash_image) {
        return sleep::run(&config, id, period, path, out, control).await;
    }
    let (mut mqtt_rx, mut mqtt_tx) = ([0u8; MQTT_BUF], [0u8; MQTT_BUF]);
    let mut store = [0u8; MQTT_STORE];
    let device = Device::new(id, device_config(&config));
    // The client keeps its options (and so the will) for every reconnect while the device
    // stays mutable: copy the will topic out of it, as the firmware does.
    let will_topic = will_topic(&device);
    let options = options(&config, id.as_str(), will_topic.as_str(), device.will());
    let Some(path) = &config.flash_image else {
        match Client::new(options, &mut mqtt_rx, &mut mqtt_tx, &mut store) {
            Ok(client) => drive(client, &config, device, out, control).await,
            // `DeviceSim::spawn` checked the same options with the same buffer sizes.
            Err(e) => out.emit(SimEvent::Error {
                reason: e.to_string(),
            }),
        }
        return;
    };
    let mut records = [0u8; RECORDS];
    let client = match journal(path, &mut records) {
        Ok(journal) => {
            Client::with_journal(options, &mut mqtt_rx, &mut mqtt_tx, &mut store, journal)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    match client {
        Ok(client) => drive(client, &config, device, out, control).await,
        Err(e) => out.emit(SimEvent::Error {
            reason: format!("flash image: {e}"),
        }),
    }
}

/// The journal's record buffer: the largest PUBLISH and a few bytes.
pub(super) const RECORDS: usize = MQTT_BUF + 16;

/// The session journal in the flash image at `path` (created erased when missing).
pub(super) fn journal<'r>(
    path: &Path,
    records: &'r mut [u8],
) -> Result<FlashJournal<'r, FileFlash>, String> {
    let flash = FileFlash::open(path).map_err(|e| e.to_string())?;
    let range = 0..(flash::PAGE * flash::PAGES) as u32;
    FlashJournal::new(flash, range, records).map_err(|e| Error::Storage(e).to_string())
}

/// The device's main loop.
async fn drive<J: Journal>(
    mut client: Client<'_, Tcp, J>,
    config: &SimConfig,
    mut device: Device,
    out: Outputs,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let clock = TokioClock::new();
    let mut platform = FakePlatform::new(config.mac);
    let broker = config.broker_addr();
    loop {
        let telemetry_at = device.next_telemetry_at();
        // Every branch is cancel-safe (the client's poll included), so whichever wins, the
        // others lose nothing.
        tokio::select! {
            request = control.recv() => match request {
                Some(Control::Cut) => {
                    drop(client.close());
                    went_offline(&mut device, &out);
                    out.emit(SimEvent::ConnectionCut);
                }
                Some(Control::Stop) => {
                    stop(&mut client, &mut device, &clock, &out).await;
                    return;
                }
                Some(Control::Kill) | None => {
                    // Power cut: the socket closes without DISCONNECT, the broker publishes
                    // the will.
                    drop(client.close());
                    went_offline(&mut device, &out);
                    out.emit(SimEvent::Killed);
                    return;
                }
            },
            () = clock.sleep_until_opt(telemetry_at) => {
                let info = platform.sample();
                if let Some(message) = device.poll_telemetry(clock.now_ms(), info) {
                    publish(&mut client, message, &out);
                }
            }
            event = client.poll_reconnecting(&clock, |_old, _redirect| {
                open(&broker, config.connect_timeout, &out.events)
            }) => match event {
                Event::Connected { session_present, .. } => {
                    out.emit(SimEvent::Connected { session_present });
                    out.connected.send_replace(true);
                    announce(&mut client, &mut device, clock.now_ms(), &out);
                }
                Event::Message(message) => {
                    let topic = message.topic.as_str();
                    if let Some(reply) = obey(&mut device, topic, message.payload, &out) {
                        publish(&mut client, reply, &out);
                    }
                }
                Event::Subscribed { reason_codes, .. } => {
                    let granted = !reason_codes.iter().any(|code| code.is_error());
                    for sub in device.subscriptions() {
                        out.emit(SimEvent::Subscribed { filter: sub.filter.to_owned(), granted });
                    }
                }
                Event::Disconnected => went_offline(&mut device, &out),
                // `open` reported why.
                Event::Error(Error::OpenFailed) => {}
                Event::Error(e) => out.emit(SimEvent::Error { reason: e.to_string() }),
                _ => {}
            },
        }
    }
}

/// The broker accepted us: publish `online` and the LED state, subscribe to commands.
pub(super) fn announce<J: Journal>(
    client: &mut Client<'_, Tcp, J>,
    device: &mut Device,
    now_ms: u64,
    out: &Outputs,
) {
    for message in device.on_connected(now_ms) {
        publish(client, message, out);
    }
    for sub in device.subscriptions() {
        if let Err(e) = client.subscribe(sub.filter, qos(sub.qos)) {
            out.emit(SimEvent::Error {
                reason: format!("subscribe {}: {e}", sub.filter),
            });
        }
    }
}

/// A message arrived: let the device logic react, drive the simulated LED, and return what
/// to publish (the new state or an error report).
pub(super) fn obey<'d>(
    device: &'d mut Device,
    topic: &str,
    payload: &[u8],
    out: &Outputs,
) -> Option<Outgoing<'d>> {
    let text = String::from_utf8_lossy(payload).into_owned();
    let was_on = device.led();
    let reaction = device.on_message(topic, payload);
    match reaction.led {
        Some(on) => {
            out.emit(SimEvent::CommandReceived { payload: text });
            out.led.send_replace(on);
            out.emit(SimEvent::Led {
                on,
                changed: on != was_on,
            });
        }
        // Not a command (messages on other topics get no reaction at all).
        None if reaction.publish.is_some() => {
            out.emit(SimEvent::CommandRejected { payload: text });
        }
        None => {}
    }
    reaction.publish
}

/// Opens a TCP connection to `broker`, reporting the attempt and any failure.
pub(super) async fn open(
    broker: &str,
    timeout: Duration,
    events: &broadcast::Sender<SimEvent>,
) -> Result<Tcp, ()> {
    let _ = events.send(SimEvent::Connecting {
        broker: broker.to_owned(),
    });
    let reason = match tokio::time::timeout(timeout, TcpStream::connect(broker)).await {
        Ok(Ok(stream)) => {
            // MQTT packets are small and latency matters more than segment count.
            let _ = stream.set_nodelay(true);
            return Ok(FromTokio::new(stream));
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", timeout.as_millis()),
    };
    let _ = events.send(SimEvent::ConnectFailed { reason });
    Err(())
}

/// The graceful end: `offline` (the will is discarded by a clean DISCONNECT, so the device
/// publishes it itself), DISCONNECT, and wait for it to be written.
pub(super) async fn stop<J: Journal>(
    client: &mut Client<'_, Tcp, J>,
    device: &mut Device,
    clock: &TokioClock,
    out: &Outputs,
) {
    if client.is_connected() {
        publish(client, device.will(), out);
        match client.disconnect() {
            Ok(()) => {
                let ended = tokio::time::timeout(STOP_TIMEOUT, async {
                    for _ in 0..STOP_EVENTS {
                        match client.poll(clock).await {
                            Event::Disconnected | Event::Error(Error::NotConnected) => return,
                            // The connection ends; `Disconnected` follows.
                            Event::Error(e) => out.emit(SimEvent::Error {
                                reason: e.to_string(),
                            }),
                            _ => {}
                        }
                    }
                })
                .await;
                if ended.is_err() {
                    out.emit(SimEvent::Error {
                        reason: format!(
                            "DISCONNECT not written within {} s",
                            STOP_TIMEOUT.as_secs()
                        ),
                    });
                }
            }
            Err(e) => out.emit(SimEvent::Error {
                reason: format!("DISCONNECT refused: {e}"),
            }),
        }
    }
    linger(client.close()).await;
    went_offline(device, out);
    out.emit(SimEvent::Stopped);
}

/// Closes a connection after our DISCONNECT without losing it: half-close, then read until the
/// broker closes too (at most `LINGER`). Simply dropping the socket while the broker's last
/// acknowledgements sit unread in it makes the kernel answer with a reset, and the broker may
/// then discard the DISCONNECT it has not processed yet and publish the will after all.
pub(super) async fn linger(transport: Option<Tcp>) {
    let Some(transport) = transport else {
        return;
    };
    let mut stream = transport.into_inner();
    let _ = tokio::time::timeout(LINGER, async {
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 256];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The connection is gone (whichever way): tell the device logic and the handle.
pub(super) fn went_offline(device: &mut Device, out: &Outputs) {
    if device.is_connected() {
        device.on_disconnected();
        out.connected.send_replace(false);
        out.emit(SimEvent::Disconnected);
    }
}

/// Queues a message from the device logic. A refusal (store full while the broker is slow)
/// loses that one message; the state is re-published on the next change or connect. Returns
/// the packet identifier of a QoS 1 message.
pub(super) fn publish<J: Journal>(
    client: &mut Client<'_, Tcp, J>,
    message: Outgoing<'_>,
    out: &Outputs,
) -> Option<PacketId> {
    let result = client.publish(
        message.topic,
        qos(message.qos),
        message.retain,
        message.payload,
    );
    let topic = message.topic.to_owned();
    let payload = String::from_utf8_lossy(message.payload).into_owned();
    let packet_id = result.as_ref().ok().copied().flatten();
    out.emit(match result {
        Err(e) => SimEvent::PublishFailed {
            topic,
            reason: e.to_string(),
        },
        Ok(_) if topic.ends_with("/telemetry") => SimEvent::Telemetry { json: payload },
        Ok(_) => SimEvent::Published {
            topic,
            payload,
            retain: message.retain,
        },
    });
    packet_id
}

pub(super) fn device_config(config: &SimConfig) -> led_device::Config {
    led_device::Config {
        telemetry_interval_ms: u64::try_from(config.telemetry_interval.as_millis())
            .unwrap_or(u64::MAX),
        initial_led: config.initial_led,
        ..led_device::Config::default()
    }
}

pub(super) fn will_topic(device: &Device) -> TextBuf<MAX_TOPIC_LEN> {
    let mut topic = TextBuf::new();
    // Cannot fail: every device topic fits MAX_TOPIC_LEN.
    let _ = topic.write_str(device.will().topic);
    topic
}

/// The connect options, as the firmware's: clean session, the device id as client id,
/// credentials if set, and the will (`offline`, retained, QoS 1) from the device logic.
pub(super) fn options<'a>(
    config: &'a SimConfig,
    client_id: &'a str,
    will_topic: &'a str,
    will: Outgoing<'_>,
) -> Options<'a> {
    let mut options = Options::new(config.protocol);
    options.client_id = Some(client_id);
    options.keep_alive = Duration::from_secs(config.keep_alive_secs.into());
    options.reconnect.initial = config.backoff_initial;
    options.reconnect.max = config.backoff_max;
    // Devices cut off together should not come back together: seed the jitter per device.
    options.reconnect.seed = config.mac.iter().fold(0x9E37_79B9_7F4A_7C15, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3)
    });
    // Clean session: the device subscribes and publishes its state on every connect anyway,
    // and a stale queued `toggle` delivered after an outage would surprise. (With a flash
    // image the session is kept on both sides instead: `Client::with_journal`.)
    options.clean_start = true;
    options.username = config.username.as_deref();
    options.password = config.password.as_deref().map(str::as_bytes);
    // The device builds topics from a validated id, so they are valid topic names.
    if let Ok(topic) = TopicName::new(will_topic) {
        let mut last_will = Will::new(topic, OFFLINE.as_bytes());
        last_will.qos = qos(will.qos);
        last_will.retain = will.retain;
        options.will = Some(last_will);
    }
    options
}

fn qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}
