//! The application loop: reach the broker over TCP, run one MQTT connection through
//! `mqtt-client-nb`, translate its events for the `led-device` logic, repeat with backoff.

use core::fmt::Write as _;

use embassy_futures::select::{select, Either};
use embassy_net::{tcp::TcpSocket, Stack};
use embassy_time::{with_timeout, Duration, Instant, Timer};
use embedded_io_async::{Read, Write};
use esp_println::println;
use led_device::{Device, Outgoing, PlatformInfo, Qos, TextBuf, MAX_TOPIC_LEN, OFFLINE};
use mqtt_client_nb::mqtt_sansio::session::{EndCause, Reconnect};
use mqtt_client_nb::mqtt_sansio::{PacketId, ProtocolVersion, Publish, QoS, TopicName};
use mqtt_client_nb::{Client, Clock, EmbassyClock, Error, Event, Journal, Options, Will};

use crate::{config, led::Led, net, wifi};

/// Sleep between readings (`SLEEP_SECS`): one reading per wake, deep sleep in between.
#[cfg(feature = "persistent-session")]
pub mod sleep;
/// `mqtts://`: TLS 1.3 between the socket and the client.
#[cfg(feature = "tls")]
mod tls;

/// After a refusal retrying cannot fix (bad credentials, banned), the device still tries
/// again this rarely: it has no one to ask, and the broker's configuration may change.
const RETRY_AFTER_STOP: Duration = Duration::from_secs(600);
/// TCP socket buffers. The MQTT client keeps its own packet buffers below.
const TCP_BUF: usize = 1536;
/// Largest MQTT packet in each direction: commands are a few bytes, telemetry under 200.
const MQTT_BUF: usize = 512;
/// Session store: the CONNECT, queued and unacknowledged messages, subscriptions.
const MQTT_STORE: usize = 1024;

/// Connects, runs the MQTT connection until it ends, and reconnects, forever.
#[cfg(not(feature = "persistent-session"))]
pub async fn run(stack: Stack<'static>, device: &mut Device, led: &mut Led) -> ! {
    let (mut tcp_rx, mut tcp_tx) = ([0u8; TCP_BUF], [0u8; TCP_BUF]);
    let (mut mqtt_rx, mut mqtt_tx) = ([0u8; MQTT_BUF], [0u8; MQTT_BUF]);
    let mut store = [0u8; MQTT_STORE];
    #[cfg(feature = "tls")]
    let mut records = tls::Records::new();
    let (id, will_topic) = identity(device);
    let options = options(id.as_str(), will_topic.as_str(), device.will());
    // Bound before the await, not matched around it: the future would keep the `Result`
    // beside the client (another 1.2 KB of static RAM).
    #[cfg_attr(feature = "tls", allow(unused_mut))]
    let mut client = match Client::new(options, &mut mqtt_rx, &mut mqtt_tx, &mut store) {
        Ok(client) => client,
        Err(e) => fatal("MQTT client", e),
    };
    let socket = socket(stack, &mut tcp_rx, &mut tcp_tx);
    #[cfg(feature = "tls")]
    let socket = (socket, &mut records);
    // drive() borrows the client, or with TLS takes it.
    #[cfg(not(feature = "tls"))]
    let client = &mut client;
    let drive = core::pin::pin!(drive(stack, socket, client, device, led));
    Outlined(drive).await
}

/// A pinned future polled by a function of its own that is never inlined: [`drive`]'s
/// state machine (the connection loop, with the MQTT client's poll in it) stays out of the
/// task's whatever the optimiser's inlining thresholds make of their sizes. When `drive`
/// shrinks below them, it is compiled into the task instead, for about 900 bytes more flash
/// (`budget.sh`); this wrapper costs 20.
struct Outlined<'f, F: core::future::Future>(core::pin::Pin<&'f mut F>);

impl<F: core::future::Future> core::future::Future for Outlined<'_, F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<F::Output> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

/// [`run`] with the session kept in flash ([`config::SESSION_FLASH`]): restored at boot,
/// journaled before anything is sent, resumed with the broker (Clean Session 0). With
/// [`config::SLEEP_SECS`], one reading per wake and deep sleep in between ([`sleep`]). A
/// journal that cannot be restored (written by a build with a larger session store, or
/// damaged) is erased once and the session starts clean, rather than resetting the device
/// forever.
#[cfg(feature = "persistent-session")]
pub async fn run(
    stack: Stack<'static>,
    device: &mut Device,
    led: &mut Led,
    flash: esp_hal::peripherals::FLASH<'static>,
    deep_sleep: sleep::DeepSleep,
) -> ! {
    use embassy_embedded_hal::adapter::BlockingAsync;
    use mqtt_client_nb::flash::FlashJournal;
    use mqtt_client_nb::StorageError;

    let (mut tcp_rx, mut tcp_tx) = ([0u8; TCP_BUF], [0u8; TCP_BUF]);
    let (mut mqtt_rx, mut mqtt_tx) = ([0u8; MQTT_BUF], [0u8; MQTT_BUF]);
    let mut store = [0u8; MQTT_STORE];
    // A journal record holds a whole PUBLISH and 12 bytes.
    let mut records = [0u8; MQTT_BUF + 16];
    #[cfg(feature = "tls")]
    let mut tls_records = tls::Records::new();
    let (id, will_topic) = identity(device);
    let options = options(id.as_str(), will_topic.as_str(), device.will());
    let mut flash = BlockingAsync::new(esp_storage::FlashStorage::new(flash));
    let mut erased = false;
    loop {
        let journal = match FlashJournal::new(&mut flash, config::SESSION_FLASH, &mut records) {
            Ok(journal) => journal,
            Err(e) => fatal("session flash", Error::Storage(e)),
        };
        // As in the other `run`: the client bound, and borrowed by the loop.
        let client = Client::with_journal(options, &mut mqtt_rx, &mut mqtt_tx, &mut store, journal);
        let mut client = match client.await {
            Ok(client) => client,
            Err(Error::Storage(
                e @ (StorageError::Corrupted
                | StorageError::Restore(_)
                | StorageError::RecordTooLarge { .. }),
            )) if !erased => {
                let what = storage(&e);
                println!("mqtt: session flash unreadable ({what}); erasing it, new session");
                let erase = FlashJournal::new(&mut flash, config::SESSION_FLASH, &mut records);
                if let Err(e) = async { erase?.erase().await }.await {
                    fatal("session flash erase", Error::Storage(e));
                }
                erased = true;
                continue;
            }
            Err(e) => fatal("MQTT client", e),
        };
        let socket = socket(stack, &mut tcp_rx, &mut tcp_tx);
        // Not with TLS (a compile-time check in config.rs).
        if config::SLEEP_SECS != 0 {
            sleep::wake(stack, socket, &mut client, device, led, deep_sleep).await
        }
        #[cfg(feature = "tls")]
        let socket = (socket, &mut tls_records);
        #[cfg(not(feature = "tls"))]
        let client = &mut client;
        let drive = core::pin::pin!(drive(stack, socket, client, device, led));
        Outlined(drive).await
    }
}

/// The device id and will topic, copied out of the device: the client keeps its options (and
/// so the will) for every reconnect, while the device must stay mutable.
fn identity(device: &Device) -> (led_device::DeviceId, TextBuf<MAX_TOPIC_LEN>) {
    let mut will_topic = TextBuf::<MAX_TOPIC_LEN>::new();
    // Cannot fail: every device topic fits MAX_TOPIC_LEN.
    let _ = will_topic.write_str(device.will().topic);
    (*device.id(), will_topic)
}

/// The socket for the device's lifetime: the client hands it back after each connection.
fn socket<'s>(stack: Stack<'static>, rx: &'s mut [u8], tx: &'s mut [u8]) -> TcpSocket<'s> {
    let mut socket = TcpSocket::new(stack, rx, tx);
    // With keep-alive on, the broker or we send something at least every keep-alive period,
    // so a connection silent for three periods is dead even if no PINGRESP was due yet.
    socket.set_timeout(
        (config::KEEP_ALIVE_SECS > 0)
            .then(|| Duration::from_secs(u64::from(config::KEEP_ALIVE_SECS) * 3)),
    );
    socket
}

/// What [`drive`] connects over with TLS: the TCP socket and the TLS record buffers.
#[cfg(feature = "tls")]
type Link<'s, 'r> = (TcpSocket<'s>, &'r mut tls::Records);

/// The connection loop of [`run`], whichever journal the client has. It borrows the client
/// (1.2 KB): an async fn keeps an argument it takes by value in its future besides the
/// caller's copy. With TLS it takes the client, which becomes the TLS-typed client for each
/// connection ([`tls::connection`]) and is typed over the TCP socket between connections.
async fn drive<'s, J: Journal>(
    stack: Stack<'static>,
    #[cfg(not(feature = "tls"))] mut socket: TcpSocket<'s>,
    #[cfg(feature = "tls")] (mut socket, records): Link<'s, '_>,
    #[cfg(not(feature = "tls"))] client: &mut Client<'_, TcpSocket<'s>, J>,
    #[cfg(feature = "tls")] mut client: Client<'_, TcpSocket<'s>, J>,
    device: &mut Device,
    led: &mut Led,
) -> ! {
    loop {
        net::wait_for_ip(stack).await;
        if let Some(addr) = net::resolve(stack, config::MQTT_HOST).await {
            println!(
                "mqtt: connecting to {}:{} ({addr})",
                config::MQTT_HOST,
                config::MQTT_PORT
            );
            match socket.connect((addr, config::MQTT_PORT)).await {
                #[cfg(feature = "tls")]
                Ok(()) => {
                    client = tls::connection(client, &mut socket, records, device, led).await;
                }
                #[cfg(not(feature = "tls"))]
                Ok(()) => {
                    if let Err(e) = client.connect(socket) {
                        // Client::connect drops the transport on error; Client::new checked
                        // that the CONNECT fits, so this does not happen.
                        fatal("MQTT connect", e);
                    }
                    connection(client, device, led).await;
                    socket = match client.close() {
                        Some(socket) => socket,
                        // The client returns the transport it was given.
                        None => fatal("MQTT close", Error::NotConnected),
                    };
                }
                Err(e) => {
                    println!("mqtt: TCP connect failed: {e:?}");
                    client.open_failed(EmbassyClock.now_ms());
                }
            }
        } else {
            client.open_failed(EmbassyClock.now_ms());
        }
        device.on_disconnected();
        // Reset the TCP connection (if any) so the socket can connect again; the flush that
        // sends the RST is bounded in case the link is down.
        socket.abort();
        let _ = with_timeout(Duration::from_secs(2), socket.flush()).await;
        // When to try again is the session's decision: a backoff that grows until a
        // connection stays up, so a broker that accepts and drops the device is not stormed.
        match client.reconnect() {
            Some(Reconnect::Stop(cause)) => {
                let code = match cause {
                    EndCause::Refused(code) | EndCause::Disconnected(code) => code.as_u8(),
                    _ => 0,
                };
                println!(
                    "mqtt: refused for good (reason code {code:#04x}); trying again in 10 min"
                );
                Timer::after(RETRY_AFTER_STOP).await;
            }
            Some(Reconnect::At { at, .. } | Reconnect::Redirect { at, .. }) => {
                println!("mqtt: reconnecting at {} ms", at.as_millis());
                Timer::at(Instant::from_millis(at.as_millis())).await;
            }
            _ => {}
        }
    }
}

/// The connect options: 3.1.1, clean session, the device id as client id, credentials if set,
/// and the will from the device logic.
fn options<'a>(client_id: &'a str, will_topic: &'a str, will: Outgoing<'_>) -> Options<'a> {
    let mut options = Options::new(ProtocolVersion::V3_1_1);
    options.client_id = Some(client_id);
    options.keep_alive = core::time::Duration::from_secs(u64::from(config::KEEP_ALIVE_SECS));
    // Clean session: the device subscribes and publishes its state on every connect anyway,
    // and a stale queued `toggle` delivered after an outage would surprise.
    options.clean_start = true;
    if !config::MQTT_USERNAME.is_empty() {
        options.username = Some(config::MQTT_USERNAME);
    }
    if !config::MQTT_PASSWORD.is_empty() {
        options.password = Some(config::MQTT_PASSWORD.as_bytes());
    }
    match TopicName::new(will_topic) {
        Ok(topic) => {
            let mut last_will = Will::new(topic, OFFLINE.as_bytes());
            last_will.qos = qos(will.qos);
            last_will.retain = will.retain;
            options.will = Some(last_will);
        }
        // The device builds topics from a validated id, so they are valid topic names.
        Err(_) => println!("mqtt: will topic {will_topic:?} invalid"),
    }
    options
}

/// Runs one MQTT connection until it ends.
async fn connection<S: Read + Write, J: Journal>(
    client: &mut Client<'_, S, J>,
    device: &mut Device,
    led: &mut Led,
) {
    let clock = EmbassyClock;
    loop {
        // The client's poll is cancel-safe, so racing it against the telemetry timer loses
        // nothing when the timer wins.
        let telemetry_due = async {
            match device.next_telemetry_at() {
                Some(at) => Timer::at(Instant::from_millis(at)).await,
                None => core::future::pending().await,
            }
        };
        let event = match select(client.poll(&clock), telemetry_due).await {
            Either::First(event) => event,
            Either::Second(()) => {
                if let Some(out) = device.poll_telemetry(now_ms(), platform_info()) {
                    publish(client, out);
                }
                continue;
            }
        };
        match event {
            Event::Connected { .. } => announce(client, device, now_ms()),
            Event::Message(message) => {
                if let Some(out) = obey(device, led, &message) {
                    publish(client, out);
                }
            }
            Event::Subscribed { reason_codes, .. } => {
                for code in reason_codes.iter().filter(|code| code.is_error()) {
                    println!(
                        "mqtt: the broker refused a subscription: {:#04x}",
                        code.as_u8()
                    );
                }
            }
            Event::Error(Error::NotConnected) | Event::Disconnected => {
                println!("mqtt: disconnected");
                return;
            }
            Event::Error(e) => {
                let (what, code) = describe(&e);
                println!("mqtt: {what} {code:#04x}");
            }
            _ => {}
        }
    }
}

/// An error as a fixed text and, from the broker, its reason code (else 0). The firmware
/// prints no `Debug` or `Display` of the MQTT types: their text and the formatting code
/// behind it would take several KB of flash (see "Footprint" in README.md).
fn describe(error: &Error) -> (&'static str, u8) {
    match error {
        Error::NotConnected => ("not connected", 0),
        Error::Transport(_) => ("transport error", 0),
        Error::ConnectionClosed => ("connection closed by the broker", 0),
        Error::Refused(code) => ("connection refused", code.as_u8()),
        Error::ServerDisconnect(code) => ("disconnected by the broker", code.as_u8()),
        Error::ConnAckTimeout => ("no CONNACK in time", 0),
        Error::KeepAliveTimeout => ("no PINGRESP in time", 0),
        Error::Protocol(e) => ("protocol violation", e.reason_code().as_u8()),
        Error::ConnectionLost => ("connection lost", 0),
        Error::Command(_) => ("command refused", 0),
        Error::Topic(_) => ("invalid topic", 0),
        Error::TxBufferTooSmall { .. } => ("transmit buffer too small", 0),
        Error::RxBufferFull => ("receive buffer full", 0),
        #[cfg(feature = "persistent-session")]
        Error::Storage(e) => (storage(e), 0),
        _ => ("error", 0),
    }
}

/// A session flash error as a fixed text, as [`describe`] does for the others.
#[cfg(feature = "persistent-session")]
fn storage(error: &mqtt_client_nb::StorageError) -> &'static str {
    use mqtt_client_nb::StorageError;
    match error {
        StorageError::Full => "session flash full",
        StorageError::InvalidLayout => "session flash range unusable",
        StorageError::Medium => "session flash failed",
        StorageError::Corrupted => "session flash corrupted",
        StorageError::RecordTooLarge { .. } => "session record too large",
        StorageError::Restore(_) => "session not restorable",
        _ => "session flash error",
    }
}

/// The broker accepted the connection: publish `online` and the LED state, subscribe to the
/// commands.
fn announce<S: Read + Write, J: Journal>(
    client: &mut Client<'_, S, J>,
    device: &mut Device,
    now: u64,
) {
    println!("mqtt: connected as {}", device.client_id());
    for out in device.on_connected(now) {
        publish(client, out);
    }
    for sub in device.subscriptions() {
        if let Err(e) = client.subscribe(sub.filter, qos(sub.qos)) {
            let (what, code) = describe(&e);
            println!("mqtt: subscribe {} failed: {what} {code:#04x}", sub.filter);
        }
    }
}

/// A message arrived: let the device logic react and drive the LED; returns the reply to
/// publish.
fn obey<'d>(device: &'d mut Device, led: &mut Led, message: &Publish<'_>) -> Option<Outgoing<'d>> {
    let reaction = device.on_message(message.topic.as_str(), message.payload);
    if let Some(on) = reaction.led {
        led.set(on);
    }
    reaction.publish
}

/// Queues a message from the device logic. A refusal (store full while the broker is slow)
/// loses that one message; the state is re-published on the next change or connect. Returns
/// the packet identifier of a QoS 1 message.
fn publish<S: Read + Write, J: Journal>(
    client: &mut Client<'_, S, J>,
    out: Outgoing<'_>,
) -> Option<PacketId> {
    match client.publish(out.topic, qos(out.qos), out.retain, out.payload) {
        Ok(packet_id) => packet_id,
        Err(e) => {
            let (what, code) = describe(&e);
            println!("mqtt: publish to {} dropped: {what} {code:#04x}", out.topic);
            None
        }
    }
}

fn qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

/// What the telemetry reports of the board: free heap and Wi-Fi signal.
fn platform_info() -> PlatformInfo {
    PlatformInfo {
        free_heap: u32::try_from(esp_alloc::HEAP.free()).ok(),
        rssi: wifi::rssi(),
    }
}

/// Milliseconds since boot, the time base of the device logic and of `EmbassyClock`.
fn now_ms() -> u64 {
    Instant::now().as_millis()
}

/// An error that means the firmware is built wrong (buffers too small, bad settings):
/// report it and restart rather than run without MQTT.
fn fatal(what: &str, error: Error) -> ! {
    let (error, code) = describe(&error);
    println!("{what}: {error} {code:#04x}; restarting in 10 s");
    // Blocks the executor, deliberately: nothing else is worth running.
    esp_hal::delay::Delay::new().delay_millis(10_000);
    esp_hal::system::software_reset()
}
