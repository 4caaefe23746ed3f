//! Stand-in for `app.rs` in the builds without the `mqtt` feature, which exist only to measure
//! what MQTT adds to the firmware (`./size.sh --compare`, "Footprint" in the README).
//!
//! It keeps everything around the MQTT client: the same TCP socket and buffers, DNS, connect
//! loop with backoff, socket timeout and reset, and a periodic message raced against reading,
//! with the free heap and the RSSI. Instead of MQTT it speaks plain text:
//!
//! - with the `device` feature, every chunk of bytes received is a command for the
//!   `led-device` logic (as if published on `devices/<id>/led/set`), and what the device
//!   publishes goes out as `topic payload\n` lines;
//! - without it, every chunk received toggles the LED and the periodic message is the free
//!   heap and RSSI as raw bytes.
//!
//! Nothing talks this protocol; flash it only to check the Wi-Fi and TCP path.

use embassy_futures::select::{select, Either};
use embassy_net::{tcp::TcpSocket, Stack};
use embassy_time::{with_timeout, Duration, Instant, Timer};
use embedded_io_async::Write as _;
use esp_println::println;
#[cfg(feature = "device")]
use led_device::{Device, Outgoing, PlatformInfo};

use crate::{config, led::Led, net, wifi};

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// TCP socket buffers, as in `app.rs`.
const TCP_BUF: usize = 1536;

/// What the connection drives: the device logic, or the bare LED.
#[cfg(feature = "device")]
type Target<'a> = (&'a mut Device, &'a mut Led);
#[cfg(not(feature = "device"))]
type Target<'a> = (&'a mut bool, &'a mut Led);

/// Connects, runs the text connection until it ends, and reconnects, forever.
#[cfg(feature = "device")]
pub async fn run(stack: Stack<'static>, device: &mut Device, led: &mut Led) -> ! {
    run_with(stack, (device, led)).await
}

/// Connects, runs the text connection until it ends, and reconnects, forever.
#[cfg(not(feature = "device"))]
pub async fn run(stack: Stack<'static>, led: &mut Led) -> ! {
    let mut on = false;
    run_with(stack, (&mut on, led)).await
}

async fn run_with(stack: Stack<'static>, mut target: Target<'_>) -> ! {
    let (mut tcp_rx, mut tcp_tx) = ([0u8; TCP_BUF], [0u8; TCP_BUF]);
    let mut socket = TcpSocket::new(stack, &mut tcp_rx, &mut tcp_tx);
    socket.set_timeout(
        (config::KEEP_ALIVE_SECS > 0)
            .then(|| Duration::from_secs(u64::from(config::KEEP_ALIVE_SECS) * 3)),
    );

    let mut backoff = BACKOFF_MIN;
    loop {
        net::wait_for_ip(stack).await;
        if let Some(addr) = net::resolve(stack, config::MQTT_HOST).await {
            println!(
                "stub: connecting to {}:{} ({addr})",
                config::MQTT_HOST,
                config::MQTT_PORT
            );
            match socket.connect((addr, config::MQTT_PORT)).await {
                Ok(()) => {
                    if connection(&mut socket, &mut target).await {
                        backoff = BACKOFF_MIN;
                    }
                }
                Err(e) => println!("stub: TCP connect failed: {e:?}"),
            }
        }
        #[cfg(feature = "device")]
        target.0.on_disconnected();
        socket.abort();
        let _ = with_timeout(Duration::from_secs(2), socket.flush()).await;
        println!("stub: reconnecting in {} s", backoff.as_secs());
        Timer::after(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Runs one connection until the peer closes it or it fails. Returns whether anything was
/// exchanged.
async fn connection(socket: &mut TcpSocket<'_>, target: &mut Target<'_>) -> bool {
    if hello(socket, target).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    loop {
        let due = next_due(target);
        let wait = async {
            match due {
                Some(at) => Timer::at(Instant::from_millis(at)).await,
                None => core::future::pending().await,
            }
        };
        let result = match select(socket.read(&mut buf), wait).await {
            Either::First(Ok(0)) | Either::First(Err(_)) => {
                println!("stub: disconnected");
                return true;
            }
            Either::First(Ok(n)) => received(socket, target, &buf[..n]).await,
            Either::Second(()) => periodic(socket, target).await,
        };
        if result.is_err() {
            println!("stub: disconnected");
            return true;
        }
    }
}

type Result = core::result::Result<(), embassy_net::tcp::Error>;

#[cfg(feature = "device")]
async fn hello(socket: &mut TcpSocket<'_>, (device, _): &mut Target<'_>) -> Result {
    send(socket, device.will()).await?;
    for sub in device.subscriptions() {
        socket.write_all(sub.filter.as_bytes()).await?;
        socket.write_all(b"\n").await?;
    }
    for out in device.on_connected(now_ms()) {
        send(socket, out).await?;
    }
    Ok(())
}

#[cfg(feature = "device")]
fn next_due((device, _): &Target<'_>) -> Option<u64> {
    device.next_telemetry_at()
}

#[cfg(feature = "device")]
async fn received(
    socket: &mut TcpSocket<'_>,
    (device, led): &mut Target<'_>,
    bytes: &[u8],
) -> Result {
    let [sub] = device.subscriptions();
    let mut topic = led_device::TextBuf::<{ led_device::MAX_TOPIC_LEN }>::new();
    let _ = core::fmt::Write::write_str(&mut topic, sub.filter);
    let reaction = device.on_message(topic.as_str(), bytes);
    if let Some(on) = reaction.led {
        led.set(on);
    }
    match reaction.publish {
        Some(out) => send(socket, out).await,
        None => Ok(()),
    }
}

#[cfg(feature = "device")]
async fn periodic(socket: &mut TcpSocket<'_>, (device, _): &mut Target<'_>) -> Result {
    let info = PlatformInfo {
        free_heap: u32::try_from(esp_alloc::HEAP.free()).ok(),
        rssi: wifi::rssi(),
    };
    match device.poll_telemetry(now_ms(), info) {
        Some(out) => send(socket, out).await,
        None => Ok(()),
    }
}

#[cfg(feature = "device")]
async fn send(socket: &mut TcpSocket<'_>, out: Outgoing<'_>) -> Result {
    socket.write_all(out.topic.as_bytes()).await?;
    socket.write_all(b" ").await?;
    socket.write_all(out.payload).await?;
    socket.write_all(b"\n").await
}

#[cfg(not(feature = "device"))]
async fn hello(socket: &mut TcpSocket<'_>, _: &mut Target<'_>) -> Result {
    socket.write_all(b"hello\n").await
}

#[cfg(not(feature = "device"))]
fn next_due(_: &Target<'_>) -> Option<u64> {
    (config::TELEMETRY_SECS > 0)
        .then(|| now_ms().saturating_add(u64::from(config::TELEMETRY_SECS) * 1000))
}

#[cfg(not(feature = "device"))]
async fn received(_: &mut TcpSocket<'_>, (on, led): &mut Target<'_>, _: &[u8]) -> Result {
    **on = !**on;
    led.set(**on);
    Ok(())
}

#[cfg(not(feature = "device"))]
async fn periodic(socket: &mut TcpSocket<'_>, _: &mut Target<'_>) -> Result {
    let heap = u32::try_from(esp_alloc::HEAP.free()).unwrap_or(u32::MAX);
    let rssi = wifi::rssi().unwrap_or(0);
    socket.write_all(&heap.to_le_bytes()).await?;
    socket.write_all(&rssi.to_le_bytes()).await
}

fn now_ms() -> u64 {
    Instant::now().as_millis()
}
