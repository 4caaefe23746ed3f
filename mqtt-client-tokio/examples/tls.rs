//! TLS with your own CA, and mutual TLS with a client certificate (rustls; features `tls`
//! and `ring` or `aws-lc-rs`, on by default).
//!
//! Certificates read from files named by environment variables:
//! - `MQTT_CA_FILE`: PEM CA certificate(s) to trust instead of the system's roots;
//! - `MQTT_CERT_FILE` and `MQTT_KEY_FILE`: PEM client certificate chain and private key, for
//!   mutual TLS (both or neither);
//! - `MQTT_TLS_NAME`: the name to verify when it is not the URL's host (e.g. connecting to
//!   127.0.0.1 with a certificate for `localhost`).
//!
//! A CA, a server and a client certificate, and a local mosquitto that requires them:
//!
//! ```sh
//! openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj /CN=demo-ca
//! for who in server client; do
//!   openssl req -newkey rsa:2048 -nodes -keyout $who.key -subj /CN=localhost \
//!     -addext subjectAltName=DNS:localhost \
//!     | openssl x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
//!       -copy_extensions copy -out $who.pem
//! done
//! chmod 644 server.key    # mosquitto started as root reads it as user mosquitto
//! printf 'listener 8884 127.0.0.1\nallow_anonymous true\ncafile ca.pem\ncertfile server.pem\nkeyfile server.key\nrequire_certificate true\n' > mtls.conf
//! mosquitto -c mtls.conf &
//! MQTT_CA_FILE=ca.pem MQTT_CERT_FILE=client.pem MQTT_KEY_FILE=client.key \
//!   cargo run -p mqtt-client-tokio --example tls -- mqtts://localhost:8884
//! ```
//!
//! Without `require_certificate true` (and without the client variables) it is one-way TLS.

use std::env;

use mqtt_client_tokio::{Client, Error, Options, QoS};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = env::args()
        .nth(1)
        .unwrap_or_else(|| "mqtts://localhost:8884".into());
    let mut options = Options::new(&url)?;
    let tls = &mut options.transport.tls;
    tls.ca_pem = read("MQTT_CA_FILE")?;
    tls.client_cert_pem = read("MQTT_CERT_FILE")?;
    tls.client_key_pem = read("MQTT_KEY_FILE")?;
    tls.server_name = env::var("MQTT_TLS_NAME").ok();
    // A complete rustls ClientConfig can be given instead: `tls.config = Some(Arc::new(..))`
    // with `mqtt_client_tokio::rustls`.

    // An untrusted server certificate, or a broker that wants a client certificate we did
    // not present, fails here with Error::Io.
    let (client, _events) = Client::connect(options).await?;
    let mut echo = client.subscribe("example/tls", QoS::AtLeastOnce).await?;
    client
        .publish("example/tls", QoS::AtLeastOnce, false, "over TLS")
        .await?;
    if let Some(message) = echo.recv().await {
        println!(
            "{}: {}",
            message.topic,
            String::from_utf8_lossy(&message.payload)
        );
    }
    client.disconnect().await
}

/// The file an environment variable names, if it is set.
fn read(variable: &str) -> Result<Option<Vec<u8>>, Error> {
    let Ok(path) = env::var(variable) else {
        return Ok(None);
    };
    std::fs::read(&path)
        .map(Some)
        .map_err(|e| Error::InvalidOptions(format!("{variable}={path}: {e}")))
}
