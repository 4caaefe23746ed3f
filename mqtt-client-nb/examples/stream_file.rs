//! An over-the-air update in miniature: one client streams a firmware-sized file (1 MiB of
//! pseudo-random bytes) to a topic through a 1 KiB transmit buffer, and a second client, the
//! device, receives it through a 1 KiB receive buffer, hashing each chunk as it arrives (as
//! it would write it to a flash partition) and checking the SHA-256 that was published
//! beside the image. Neither side ever holds the image in its MQTT buffers.
//!
//! Run on a PC with embassy's executor and time driver for `std`, against a local mosquitto:
//!
//! ```sh
//! mosquitto -p 1884 &
//! cargo run -p mqtt-client-nb --features embassy-time --example stream_file -- 127.0.0.1:1884
//! cargo run -p mqtt-client-nb --features embassy-time --example stream_file -- 127.0.0.1:1884 v5
//! ```
//!
//! The image is published at QoS 1: if the connection drops half-way, the session sends it
//! again whole after the reconnect, reading the file from the start again, and the device
//! starts over when a chunk with offset 0 arrives.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use async_io::Async;
use embassy_executor::Spawner;
use embassy_futures::select::{select, Either};
use embedded_io_adapters::futures_03::FromFutures;
use mqtt_client_nb::mqtt_sansio::{PacketId, ProtocolVersion, QoS};
use mqtt_client_nb::{Client, EmbassyClock, Event, Options};
use sha2::{Digest, Sha256};

type Tcp = FromFutures<Async<TcpStream>>;

const IMAGE_LEN: usize = 1 << 20;
const IMAGE_TOPIC: &str = "ota/device-1/image";
const DIGEST_TOPIC: &str = "ota/device-1/sha256";

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let mut args = std::env::args().skip(1);
    let broker: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:1884".into())
        .parse()
        .expect("usage: stream_file [IP:PORT] [v5]");
    let version = match args.next().as_deref() {
        Some("v5") => ProtocolVersion::V5,
        _ => ProtocolVersion::V3_1_1,
    };
    spawner.spawn(run(broker, version).expect("one instance of the task"));
}

/// The "file": 1 MiB of xorshift output. On a board, a partition read through the flash
/// driver; anything that can be read again from any offset.
fn firmware() -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..IMAGE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What the device has received of the update so far.
struct Update {
    expected: Option<Vec<u8>>,
    hasher: Sha256,
    received: usize,
}

#[embassy_executor::task]
async fn run(broker: SocketAddr, version: ProtocolVersion) {
    let image = firmware();
    let digest = Sha256::digest(&image);
    // The payload source: asked for `buf.len()` bytes from `offset`, again after a reconnect.
    let mut file = |_id: Option<PacketId>, offset: usize, buf: &mut [u8]| {
        let n = buf.len().min(image.len().saturating_sub(offset));
        buf[..n].copy_from_slice(&image[offset..offset + n]);
        n
    };

    // The update server: 1 KiB each way, 4 KiB of session store.
    let (mut srx, mut stx, mut sstore) = ([0u8; 1024], [0u8; 1024], [0u8; 4096]);
    let mut options = Options::new(version);
    options.client_id = Some("ota-server");
    let mut server: Client<'_, Tcp> =
        Client::new(options, &mut srx, &mut stx, &mut sstore).expect("buffers large enough");
    server.set_payload_source(&mut file);

    // The device: 1 KiB each way; it accepts packets up to 2 MiB, streamed through `rx`.
    let (mut drx, mut dtx, mut dstore) = ([0u8; 1024], [0u8; 1024], [0u8; 2048]);
    let mut options = Options::new(version);
    options.client_id = Some("ota-device-1");
    options.maximum_packet_size = 2 << 20;
    let mut device: Client<'_, Tcp> =
        Client::new(options, &mut drx, &mut dtx, &mut dstore).expect("buffers large enough");

    let mut update = Update {
        expected: None,
        hasher: Sha256::new(),
        received: 0,
    };
    let (mut server_up, mut subscribed, mut sent) = (false, false, false);
    let mut started = Instant::now();
    loop {
        // Events borrow their client: note what to do, act after the match.
        let mut subscribe = false;
        match select(
            server.poll_reconnecting(&EmbassyClock, |_, _| open(broker)),
            device.poll_reconnecting(&EmbassyClock, |_, _| open(broker)),
        )
        .await
        {
            Either::First(Event::Connected { .. }) => server_up = true,
            Either::First(Event::Published { reason_code, .. }) => {
                println!("server: the broker took a message ({reason_code:?})");
            }
            Either::First(Event::Error(e)) | Either::Second(Event::Error(e)) => {
                println!("error: {e}");
            }
            Either::Second(Event::Connected { .. }) => subscribe = true,
            Either::Second(Event::Subscribed { .. }) => subscribed = true,
            Either::Second(Event::Message(m)) if m.topic.as_str() == DIGEST_TOPIC => {
                update.expected = Some(m.payload.to_vec());
            }
            Either::Second(Event::MessageChunk(chunk)) => {
                if chunk.offset == 0 {
                    // A new delivery (or the same one again after a lost connection).
                    update.hasher = Sha256::new();
                    update.received = 0;
                }
                update.hasher.update(chunk.message.payload);
                update.received += chunk.message.payload.len();
                if chunk.is_last() {
                    let got = std::mem::take(&mut update.hasher).finalize();
                    let ok = update.expected.as_deref() == Some(got.as_slice());
                    println!(
                        "device: {} bytes in {:?}, SHA-256 {}",
                        update.received,
                        started.elapsed(),
                        if ok {
                            "matches: update verified"
                        } else {
                            "MISMATCH"
                        }
                    );
                    std::process::exit(if ok { 0 } else { 1 });
                }
            }
            _ => {}
        }
        if subscribe {
            // Clean session on every connection: subscribe again.
            let _ = device.subscribe("ota/device-1/#", QoS::AtLeastOnce);
        }
        if server_up && subscribed && !sent {
            sent = true;
            started = Instant::now();
            server
                .publish(DIGEST_TOPIC, QoS::AtLeastOnce, false, &digest)
                .expect("the digest fits");
            server
                .publish_streamed(IMAGE_TOPIC, QoS::AtLeastOnce, false, IMAGE_LEN)
                .expect("the header fits");
            println!("server: streaming {IMAGE_LEN} bytes to {IMAGE_TOPIC}");
        }
        // Give up if nothing came through for a long time.
        if started.elapsed() > Duration::from_secs(120) {
            println!("no update within 2 minutes");
            std::process::exit(2);
        }
    }
}

/// Opens a new TCP connection.
async fn open(broker: SocketAddr) -> std::io::Result<Tcp> {
    let stream = Async::<TcpStream>::connect(broker).await?;
    stream.get_ref().set_nodelay(true)?;
    Ok(FromFutures::new(stream))
}
