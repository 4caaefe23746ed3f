//! The events loop: start the client without waiting for the broker (`Client::new`), and
//! follow everything it reports: connections, reconnects with their backoff, subscriptions,
//! acknowledgements, messages and errors. Stop mosquitto and start it again to watch the
//! client reconnect and resubscribe.
//!
//! Against a local mosquitto on a free port:
//!
//! ```sh
//! mosquitto -p 1884 &
//! cargo run -p mqtt-client-tokio --example events -- mqtt://127.0.0.1:1884
//! mosquitto_pub -p 1884 -t example/events/hi -m hello    # in another shell
//! ```
//!
//! Ctrl-C disconnects gracefully.

use std::time::Duration;

use mqtt_client_tokio::{Client, Event, Message, Options, QoS, Will};

#[tokio::main]
async fn main() -> Result<(), mqtt_client_tokio::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mqtt://127.0.0.1:1884".into());
    let mut options = Options::new(&url)?;
    options.protocol.client_id = "events-example".into();
    options.protocol.keep_alive = Duration::from_secs(10);
    options.protocol.will = Some(Will::new(
        "example/events/status",
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    options.policy.backoff_min = Duration::from_millis(500);
    options.policy.backoff_max = Duration::from_secs(10);

    // Returns at once; commands issued now are queued until the connection is up.
    let (client, mut events) = Client::new(options)?;
    // Messages of this subscription arrive as Event::Message too; the stream is unused.
    let subscribe = client.clone();
    tokio::spawn(async move {
        subscribe
            .subscribe("example/events/#", QoS::AtLeastOnce)
            .await
    });

    let status = Message::new("example/events/status", "online", QoS::AtLeastOnce).retain(true);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Connected { session_present, broker, .. }) => {
                    println!("connected to {broker} (session present: {session_present})");
                    // Fire and forget: the outcome comes back as Event::Published.
                    drop(client.publish_queued(status.clone()).await?);
                }
                Some(Event::Disconnected { error }) => println!("disconnected: {error}"),
                Some(Event::Reconnecting { attempt, delay }) => {
                    println!("reconnecting: attempt {attempt} in {delay:?}");
                }
                Some(Event::Subscribed { reason_codes, .. }) => {
                    println!("subscribed: {reason_codes:?}");
                }
                Some(Event::Published { packet_id, reason_code, .. }) => {
                    println!("published {packet_id:?}: {reason_code:?}");
                }
                Some(Event::Message(message)) => println!(
                    "{}: {}",
                    message.topic,
                    String::from_utf8_lossy(&message.payload)
                ),
                Some(Event::Error(error)) => println!("error: {error}"),
                Some(Event::Lagged { missed }) => println!("{missed} events missed"),
                Some(other) => println!("{other:?}"),
                None => return Ok(()), // the client stopped
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    client.disconnect().await
}
