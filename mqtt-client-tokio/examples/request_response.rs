//! MQTT 5.0 properties and request/response: a responder answers requests on the response
//! topic each request names, with the request's correlation data; the requester sets content
//! type, message expiry and user properties, and matches answers by correlation data.
//!
//! Against a local mosquitto on a free port (mosquitto 2 speaks 5.0):
//!
//! ```sh
//! mosquitto -p 1884 &
//! cargo run -p mqtt-client-tokio --example request_response -- mqtt://127.0.0.1:1884
//! ```

use std::collections::HashMap;
use std::time::Duration;

use mqtt_client_tokio::{Bytes, Client, Message, Options, Properties, ProtocolVersion, QoS};
use tokio::sync::oneshot;

const REQUESTS: &str = "example/rpc/uppercase";

#[tokio::main]
async fn main() -> Result<(), mqtt_client_tokio::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mqtt://127.0.0.1:1884".into());

    let responder = connect(&url, "rpc-responder").await?;
    let mut requests = responder.subscribe(REQUESTS, QoS::AtLeastOnce).await?;
    let responder_handle = responder.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let Some(reply_to) = request.properties.response_topic.clone() else {
                continue; // not a request: nowhere to answer
            };
            let text = String::from_utf8_lossy(&request.payload).to_uppercase();
            let properties = Properties {
                correlation_data: request.properties.correlation_data.clone(),
                content_type: Some("text/plain".into()),
                payload_format_indicator: Some(true),
                ..Properties::default()
            }
            .user_property("served-by", "rpc-responder");
            let answer = Message::new(reply_to, text, QoS::AtLeastOnce).properties(properties);
            if let Err(error) = responder.publish_message(answer).await {
                eprintln!("answer not delivered: {error}");
            }
        }
    });

    let requester = connect(&url, "rpc-requester").await?;
    // One response topic per client; answers are told apart by correlation data.
    let reply_to = "example/rpc/replies/rpc-requester";
    let mut replies = requester.subscribe(reply_to, QoS::AtLeastOnce).await?;
    let mut waiting: HashMap<Bytes, oneshot::Sender<Message>> = HashMap::new();
    let mut answers = Vec::new();
    for (i, word) in ["hello", "mqtt", "five"].into_iter().enumerate() {
        let correlation = Bytes::from(format!("request-{i}"));
        let (tx, rx) = oneshot::channel();
        waiting.insert(correlation.clone(), tx);
        answers.push((word, rx));
        let properties = Properties {
            response_topic: Some(reply_to.into()),
            correlation_data: Some(correlation),
            content_type: Some("text/plain".into()),
            // The broker drops the request if nobody takes it within 10 s.
            message_expiry_interval: Some(10),
            ..Properties::default()
        }
        .user_property("request-id", i.to_string());
        let request = Message::new(REQUESTS, word, QoS::AtLeastOnce).properties(properties);
        requester.publish_message(request).await?;
    }

    // Route replies to whoever waits for their correlation data.
    tokio::spawn(async move {
        while let Some(reply) = replies.recv().await {
            let waiter = reply
                .properties
                .correlation_data
                .as_ref()
                .and_then(|c| waiting.remove(c));
            if let Some(waiter) = waiter {
                let _ = waiter.send(reply);
            }
        }
    });
    for (word, answer) in answers {
        match tokio::time::timeout(Duration::from_secs(5), answer).await {
            Ok(Ok(reply)) => println!(
                "{word} -> {} (content type {:?}, user properties {:?})",
                String::from_utf8_lossy(&reply.payload),
                reply.properties.content_type,
                reply.properties.user_properties,
            ),
            _ => println!("{word} -> no answer within 5 s"),
        }
    }
    requester.disconnect().await?;
    responder_handle.disconnect().await
}

/// A 5.0 client (the default version, spelled out here).
async fn connect(url: &str, client_id: &str) -> Result<Client, mqtt_client_tokio::Error> {
    let mut options = Options::new(url)?;
    options.protocol.version = ProtocolVersion::V5;
    options.protocol.client_id = client_id.into();
    let (client, _events) = Client::connect(options).await?;
    Ok(client)
}
