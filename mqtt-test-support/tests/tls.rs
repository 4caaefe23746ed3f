//! The TLS listener: the generated CA is trusted, another CA is not, mutual TLS needs the
//! client certificate.

mod common;

use std::sync::Arc;

use common::{connect_packet, Conn};
use mqtt_sansio::ReasonCode;
use mqtt_test_support::rustls::pki_types::ServerName;
use mqtt_test_support::rustls::ClientConfig;
use mqtt_test_support::{Broker, TlsMaterial};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

async fn tls_connect(
    port: u16,
    config: ClientConfig,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio::time::timeout(
        common::TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await?
}

#[tokio::test]
async fn tls_handshake_with_the_generated_ca_then_connack() {
    let broker = Broker::builder().tls().start().unwrap();
    let port = broker.tls_port().unwrap();
    assert_ne!(port, broker.port());
    assert_eq!(
        broker.tls_url().unwrap(),
        format!("mqtts://127.0.0.1:{port}")
    );
    let tls = broker.tls().unwrap();
    assert!(tls.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(tls.client_key_pem().contains("PRIVATE KEY"));

    // By DNS name and by IP address: the certificate holds both.
    for name in [TlsMaterial::SERVER_NAME, "127.0.0.1"] {
        let stream = tls_connect(port, tls.client_config().unwrap(), name)
            .await
            .unwrap_or_else(|e| panic!("handshake as {name}: {e}\n{}", broker.log()));
        let (_, code) = Conn::new(stream)
            .connect(connect_packet("tls"))
            .await
            .unwrap();
        assert_eq!(code, ReasonCode::Success);
    }
}

#[tokio::test]
async fn a_client_trusting_another_ca_refuses_the_broker() {
    let broker = Broker::builder().tls().start().unwrap();
    let stranger = TlsMaterial::generate().unwrap();
    let err = tls_connect(
        broker.tls_port().unwrap(),
        stranger.client_config().unwrap(),
        "localhost",
    )
    .await
    .expect_err("handshake must fail against an untrusted CA");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let broker = Broker::builder().mutual_tls().start().unwrap();
    let port = broker.tls_port().unwrap();
    let tls = broker.tls().unwrap();

    let stream = tls_connect(port, tls.mtls_client_config().unwrap(), "localhost")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", broker.log()));
    let (_, code) = Conn::new(stream)
        .connect(connect_packet("mtls"))
        .await
        .unwrap();
    assert_eq!(code, ReasonCode::Success);

    // Without a certificate: with TLS 1.3 the client's handshake may finish before the
    // server's alert arrives, so the failure can surface at the first read instead.
    let refused = match tls_connect(port, tls.client_config().unwrap(), "localhost").await {
        Err(_) => true,
        Ok(stream) => Conn::new(stream)
            .connect(connect_packet("no-cert"))
            .await
            .is_err(),
    };
    assert!(refused, "mosquitto accepted a client without certificate");
}
