//! Manual acknowledgements: the client does not acknowledge QoS 1 and 2 messages on receipt;
//! the application calls `Client::ack` once it has processed (here: stored) each one. If the
//! program dies before that, the broker sends the message again on the next connection of
//! the same session.
//!
//! Against a local mosquitto on a free port:
//!
//! ```sh
//! mosquitto -p 1884 &
//! cargo run -p mqtt-client-tokio --example manual_acks -- mqtt://127.0.0.1:1884
//! mosquitto_pub -p 1884 -t example/jobs/1 -m 'resize photo.jpg' -q 1   # in another shell
//! ```

use std::time::Duration;

use mqtt_client_tokio::{Client, Options, QoS};

#[tokio::main]
async fn main() -> Result<(), mqtt_client_tokio::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mqtt://127.0.0.1:1884".into());
    let mut options = Options::new(&url)?;
    options.protocol.client_id = "manual-acks-example".into();
    options.protocol.manual_acks = true;
    // A session the broker keeps for an hour, resumed by the next run: unacknowledged
    // messages come back.
    options.protocol.clean_start = false;
    options.protocol.session_expiry_interval = Some(3600);
    // At most this many unacknowledged messages at a time (5.0 Receive Maximum).
    options.protocol.receive_maximum = 8;

    let (client, _events) = Client::connect(options).await?;
    let mut jobs = client.subscribe("example/jobs/#", QoS::AtLeastOnce).await?;
    client
        .publish("example/jobs/0", QoS::AtLeastOnce, false, "example job")
        .await?;

    loop {
        let message = match tokio::time::timeout(Duration::from_secs(10), jobs.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) | Err(_) => break, // stream ended, or 10 s without a job
        };
        println!(
            "job {}: {} (redelivered: {})",
            message.topic,
            String::from_utf8_lossy(&message.payload),
            message.dup
        );
        store(&message.payload).await;
        // PUBACK (QoS 1) or PUBREC (QoS 2) goes out only now. Acknowledge in the order the
        // messages arrived, as MQTT requires.
        client.ack(&message).await?;
    }
    client.disconnect().await
}

/// Stands for the work that must be done before the broker may forget the message.
async fn store(_payload: &[u8]) {
    tokio::time::sleep(Duration::from_millis(50)).await;
}
