//! Publish and subscribe: subscribe to a filter, publish a few messages at each QoS, print
//! what comes back, disconnect.
//!
//! Against a local mosquitto on a free port:
//!
//! ```sh
//! mosquitto -p 1884 &
//! cargo run -p mqtt-client-tokio --example pubsub -- mqtt://127.0.0.1:1884
//! ```
//!
//! The URL may carry credentials (`mqtt://user:password@host:port`) and be `mqtts://`,
//! `ws://` or `wss://`; see `tls.rs` for your own CA.

use std::time::Duration;

use mqtt_client_tokio::{Client, Event, Options, QoS};

#[tokio::main]
async fn main() -> Result<(), mqtt_client_tokio::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mqtt://127.0.0.1:1884".into());
    let mut options = Options::new(&url)?;
    options.protocol.client_id = "pubsub-example".into();

    // Waits for CONNACK; afterwards the client reconnects by itself.
    let (client, mut events) = Client::connect(options).await?;
    // Connection events, errors and reconnects; `events.rs` shows the whole loop.
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Disconnected { error } | Event::Error(error) = event {
                eprintln!("event: {error}");
            }
        }
    });

    // Resolves once the broker granted the subscription (SUBACK).
    let mut greetings = client
        .subscribe("example/greetings/#", QoS::ExactlyOnce)
        .await?;

    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let topic = format!("example/greetings/{i}");
        // Resolves when the broker has the message: PUBACK (QoS 1), PUBCOMP (QoS 2), or
        // once written (QoS 0). The reason code is 5.0's (e.g. NoMatchingSubscribers).
        let reason = client
            .publish(topic, qos, false, format!("hello at {qos:?}"))
            .await?;
        println!("published at {qos:?}: {reason:?}");
    }

    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(5), greetings.recv()).await {
            Ok(Some(message)) => println!(
                "{} ({:?}): {}",
                message.topic,
                message.qos,
                String::from_utf8_lossy(&message.payload)
            ),
            Ok(None) | Err(_) => break,
        }
    }

    client.unsubscribe("example/greetings/#").await?;
    // Sends DISCONNECT once the open handshakes are done; await it before returning.
    client.disconnect().await
}
