//! Choosing MQTT 3.1.1 (the default is 5.0): for brokers that do not speak 5.0, or to match
//! devices that do not. The API stays the same; 5.0-only settings (properties, session expiry,
//! topic aliases) are not sent, and reason codes are those 3.1.1 can express.
//!
//! With 3.1.1 a persistent session is `clean_start = false` alone (there is no expiry
//! interval): the broker keeps subscriptions and queued QoS 1/2 messages while the client
//! is away.
//!
//! Against a local mosquitto on a free port:
//!
//! ```sh
//! mosquitto -p 1884 &
//! cargo run -p mqtt-client-tokio --example v311 -- mqtt://127.0.0.1:1884
//! ```

use mqtt_client_tokio::{Client, Options, ProtocolVersion, QoS};

#[tokio::main]
async fn main() -> Result<(), mqtt_client_tokio::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mqtt://127.0.0.1:1884".into());
    let mut options = Options::new(&url)?;
    options.protocol.version = ProtocolVersion::V3_1_1;
    options.protocol.client_id = "v311-example".into();
    options.protocol.clean_start = false;
    // 3.1.1 brokers cannot announce how many messages they take in flight; mosquitto drops
    // what exceeds its max_inflight_messages (20), so stay below it (20 is the default).
    options.protocol.max_inflight = Some(20);

    let (client, _events) = Client::connect(options).await?;
    let mut readings = client.subscribe("example/v311/#", QoS::ExactlyOnce).await?;
    for i in 0..3 {
        // Success is the only reason code of a 3.1.1 acknowledgement.
        let reason = client
            .publish(format!("example/v311/{i}"), QoS::ExactlyOnce, false, "21.5")
            .await?;
        println!("published {i}: {reason:?}");
    }
    for _ in 0..3 {
        if let Some(message) = readings.recv().await {
            println!(
                "{}: {}",
                message.topic,
                String::from_utf8_lossy(&message.payload)
            );
        }
    }
    client.disconnect().await
}
