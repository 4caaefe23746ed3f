//! `mqtt-client-nb` on embassy, run on a PC: embassy's executor and time driver for `std`,
//! and a host TCP socket (async-io, adapted to `embedded-io-async`) where a board has an
//! `embassy-net` `TcpSocket`. Everything else is what the firmware does: caller-owned
//! buffers, `EmbassyClock`, `poll_reconnecting` with the session's reconnect policy, commands
//! between polls.
//!
//! Against a local mosquitto on a free port:
//!
//! ```sh
//! mosquitto -p 1884 &
//! mosquitto_sub -p 1884 -t 'demo/#' -v &
//! cargo run -p mqtt-client-nb --features embassy-time --example embassy -- 127.0.0.1:1884
//! mosquitto_pub -p 1884 -t demo/led/set -m on     # the example answers on demo/led/state
//! ```
//!
//! It publishes `online` (retained) on `demo/status` after each connection, with the will
//! `offline`; stop mosquitto and start it again to watch it reconnect with backoff.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use async_io::Async;
use embassy_executor::Spawner;
use embedded_io_adapters::futures_03::FromFutures;
use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS, TopicName};
use mqtt_client_nb::{Client, EmbassyClock, Event, Options, Will};

/// The transport: a TCP stream of the host, as an `embedded-io-async` `Read + Write`.
type Tcp = FromFutures<Async<TcpStream>>;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let broker: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1884".into())
        .parse()
        .expect("usage: embassy [IP:PORT]");
    spawner.spawn(run(broker).expect("one instance of the task"));
}

#[embassy_executor::task]
async fn run(broker: SocketAddr) {
    // On a board these are `static` buffers (static_cell) or live in the task's future.
    let (mut rx, mut tx, mut store) = ([0u8; 1024], [0u8; 1024], [0u8; 4096]);
    let mut options = Options::new(ProtocolVersion::V3_1_1);
    options.client_id = Some("embassy-example");
    options.keep_alive = Duration::from_secs(30);
    let will_topic = TopicName::new("demo/status").expect("a valid topic");
    let mut will = Will::new(will_topic, b"offline");
    (will.qos, will.retain) = (QoS::AtLeastOnce, true);
    options.will = Some(will);
    // Backoff between attempts (with jitter; reset once a connection stayed up).
    options.reconnect.initial = Duration::from_millis(500);
    options.reconnect.max = Duration::from_secs(30);
    let mut client: Client<'_, Tcp> =
        Client::new(options, &mut rx, &mut tx, &mut store).expect("buffers large enough");

    loop {
        // An event borrows the client: decide here, act once the borrow has ended.
        let mut led = None;
        let mut connected = false;
        match client
            .poll_reconnecting(&EmbassyClock, |_old, _redirect| open(broker))
            .await
        {
            Event::Connected {
                session_present, ..
            } => {
                println!("connected (session present: {session_present})");
                connected = true;
            }
            Event::Message(message) => {
                println!("{} {:?}", message.topic.as_str(), message.payload);
                led = Some(message.payload == b"on");
            }
            Event::Published { packet_id, .. } => println!("published {packet_id:?}"),
            Event::Disconnected => println!("disconnected; reconnecting"),
            Event::Error(error) => println!("error: {error}"),
            _ => {}
        }
        if connected {
            // The session is new on every connection here (clean session): subscribe again.
            let _ = client.subscribe("demo/led/set", QoS::AtLeastOnce);
            let _ = client.publish("demo/status", QoS::AtLeastOnce, true, b"online");
        }
        if let Some(on) = led {
            let state: &[u8] = if on { b"on" } else { b"off" };
            if let Err(error) = client.publish("demo/led/state", QoS::AtLeastOnce, true, state) {
                println!("not published: {error}");
            }
        }
    }
}

/// Opens a new TCP connection (the old one, if any, is dropped).
async fn open(broker: SocketAddr) -> std::io::Result<Tcp> {
    let stream = Async::<TcpStream>::connect(broker).await?;
    stream.get_ref().set_nodelay(true)?;
    Ok(FromFutures::new(stream))
}
