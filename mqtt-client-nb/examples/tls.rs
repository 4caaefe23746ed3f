//! `mqtt-client-nb` over TLS 1.3 with `embedded-tls` (no_std, no allocator, the same
//! `embedded-io-async` traits as this client), verifying the broker against your own CA.
//! Run on a PC with embassy's executor and a host TCP socket; on a board the socket is an
//! `embassy-net` `TcpSocket` and the record buffers are `static`.
//!
//! `embedded-tls` verifies ECDSA P-256 chains (feature `rustpki`). A CA, a server certificate
//! for `localhost` and a mosquitto listener on a free port:
//!
//! ```sh
//! openssl ecparam -name prime256v1 -genkey -noout -out ca.key
//! openssl req -x509 -new -key ca.key -sha256 -days 30 -subj /CN=demo-ca -out ca.pem
//! openssl ecparam -name prime256v1 -genkey -noout -out server.key
//! openssl req -new -key server.key -subj /CN=localhost -addext subjectAltName=DNS:localhost \
//!   | openssl x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -sha256 \
//!     -copy_extensions copy -out server.pem
//! printf 'listener 8884 127.0.0.1\nallow_anonymous true\ncafile ca.pem\ncertfile server.pem\nkeyfile server.key\n' > tls.conf
//! chmod 644 server.key    # mosquitto started as root reads it as user mosquitto
//! mosquitto -c tls.conf &
//! cargo run -p mqtt-client-nb --features embassy-time --example tls -- 127.0.0.1:8884 ca.pem
//! mosquitto_pub -p 8884 --cafile ca.pem -h localhost -t demo/tls -m hello
//! ```
//!
//! The CA file can also come from `MQTT_CA_FILE`, the name to verify from `MQTT_TLS_NAME`
//! (default `localhost`). It prints what arrives on `demo/#` for a minute, then disconnects.
//!
//! One connection only: `TlsConnection` borrows its record buffers for its whole life, so
//! a reconnect loop (see `embassy.rs`) would keep them in `static`s. Cancel safety:
//! `embedded-tls` keeps a partly received record in the connection, so a `read` that
//! `poll` drops loses nothing; a `flush` dropped halfway through a record is not resumed.

use std::net::{SocketAddr, TcpStream};
use std::time::SystemTime;

use async_io::Async;
use embassy_executor::Spawner;
use embassy_futures::select::{select, Either};
use embassy_time::{Instant, Timer};
use embedded_io_adapters::futures_03::FromFutures;
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CryptoProvider, TlsConfig, TlsConnection, TlsContext, TlsError,
    TlsVerifier,
};
use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS};
use mqtt_client_nb::{Client, EmbassyClock, Event, Options};
use rand_core::OsRng;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The host TCP stream as an `embedded-io-async` stream.
type Tcp = FromFutures<Async<TcpStream>>;

/// Randomness and certificate verification for `embedded-tls`.
struct Provider<'a> {
    rng: OsRng,
    verifier: CertVerifier<'a, Aes128GcmSha256, SystemTime, 4096>,
}

impl CryptoProvider for Provider<'_> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = &'static [u8];

    fn rng(&mut self) -> impl embedded_tls::CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut self.verifier)
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let mut args = std::env::args().skip(1);
    let broker: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8884".into())
        .parse()
        .expect("usage: tls [IP:PORT] [CA.pem]");
    let ca_file = args
        .next()
        .or_else(|| std::env::var("MQTT_CA_FILE").ok())
        .unwrap_or_else(|| "ca.pem".into());
    let ca = CertificateDer::from_pem_file(&ca_file)
        .unwrap_or_else(|e| panic!("reading the CA certificate {ca_file}: {e}"));
    let name = std::env::var("MQTT_TLS_NAME").unwrap_or_else(|_| "localhost".into());
    // The task is 'static: leak what it borrows (on a board: `static` data).
    let ca: &'static [u8] = Vec::from(ca.as_ref()).leak();
    let name: &'static str = name.leak();
    spawner.spawn(run(broker, ca, name).expect("one instance of the task"));
}

#[embassy_executor::task]
async fn run(broker: SocketAddr, ca: &'static [u8], name: &'static str) {
    // The TLS record buffers (20 KiB) live in this future: boxed here, `static` on a board.
    if let Err(error) = Box::pin(session(broker, ca, name)).await {
        eprintln!("{error}");
    }
    std::process::exit(0);
}

async fn session(broker: SocketAddr, ca: &[u8], name: &str) -> Result<(), String> {
    let tcp = Async::<TcpStream>::connect(broker)
        .await
        .map_err(|e| format!("connecting to {broker}: {e}"))?;
    // 16,640 bytes hold the largest TLS record; the write side can be smaller.
    let (mut record_rx, mut record_tx) = ([0u8; 16_640], [0u8; 4096]);
    let mut tls: TlsConnection<'_, Tcp, Aes128GcmSha256> =
        TlsConnection::new(FromFutures::new(tcp), &mut record_rx, &mut record_tx);
    let config = TlsConfig::new().with_server_name(name);
    let provider = Provider {
        rng: OsRng,
        verifier: CertVerifier::new(Certificate::X509(ca)),
    };
    tls.open(TlsContext::new(&config, provider))
        .await
        .map_err(|e| format!("TLS handshake: {e:?}"))?;
    println!("TLS 1.3 up, {name} verified against the CA");

    let (mut rx, mut tx, mut store) = ([0u8; 1024], [0u8; 1024], [0u8; 2048]);
    let mut options = Options::new(ProtocolVersion::V5);
    options.client_id = Some("nb-tls-example");
    let mut client =
        Client::new(options, &mut rx, &mut tx, &mut store).map_err(|e| format!("options: {e}"))?;
    client.connect(tls).map_err(|e| format!("connect: {e}"))?;
    client
        .subscribe("demo/#", QoS::AtLeastOnce)
        .map_err(|e| format!("subscribe: {e}"))?;
    client
        .publish(
            "demo/tls",
            QoS::AtLeastOnce,
            false,
            b"hello over embedded-tls",
        )
        .map_err(|e| format!("publish: {e}"))?;

    // Stop after a minute: DISCONNECT, then poll until the connection has closed.
    let mut until = Instant::now() + embassy_time::Duration::from_secs(60);
    loop {
        match select(client.poll(&EmbassyClock), Timer::at(until)).await {
            Either::First(event) => match event {
                Event::Connected { .. } => println!("connected"),
                Event::Message(message) => println!(
                    "{} {}",
                    message.topic.as_str(),
                    String::from_utf8_lossy(message.payload)
                ),
                Event::Published { packet_id, .. } => println!("published {packet_id:?}"),
                Event::Disconnected => return Ok(()),
                Event::Error(error) => return Err(format!("connection: {error}")),
                _ => {}
            },
            Either::Second(()) => {
                until = Instant::MAX;
                client
                    .disconnect()
                    .map_err(|e| format!("disconnect: {e}"))?;
            }
        }
    }
}
