//! `mqtts://`: TLS 1.3 from `embedded-tls` (pure Rust, no_std) between the TCP socket and the
//! MQTT client. The broker's chain must lead to the CA built in (`MQTT_CA_CERT`) and its
//! certificate must name `MQTT_TLS_NAME`.
//!
//! A `TlsConnection` borrows its record buffers, so the client cannot be typed over it for
//! good: it waits between connections typed over the TCP socket, and for each connection
//! becomes the TLS-typed client (`Client::for_transport`) and back, which drops the TLS
//! connection and frees the buffers for the next one.

use embassy_net::tcp::TcpSocket;
use embassy_time::{with_timeout, Duration};
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CryptoProvider, CryptoRngCore, NoClock, TlsConfig, TlsConnection,
    TlsContext, TlsError, TlsVerifier,
};
use esp_hal::rng::Trng;
use esp_println::println;
use led_device::Device;
use mqtt_client_nb::{Client, Clock, EmbassyClock, Journal};

use super::{connection as run_connection, fatal, MQTT_BUF};
use crate::{config, led::Led};

/// Incoming records: brokers send up to 16 KiB of plaintext per record (few honour the
/// Maximum Fragment Length extension), and a record is decrypted whole.
const RECORD_RX: usize = 16_640;
/// Outgoing records: one MQTT packet (at most `MQTT_BUF`) and the record overhead.
const RECORD_TX: usize = MQTT_BUF + embedded_tls::TLS_RECORD_OVERHEAD;
/// The broker's certificate chain as it arrives (leaf and intermediates, DER), kept from
/// its verification to the check of its signature over the handshake.
const CHAIN_MAX: usize = 6144;
/// A handshake that takes longer is given up (the socket's own timeout is keep-alive based).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The TLS record buffers, lent to one connection at a time.
pub struct Records {
    rx: [u8; RECORD_RX],
    tx: [u8; RECORD_TX],
}

impl Records {
    pub const fn new() -> Self {
        Self {
            rx: [0; RECORD_RX],
            tx: [0; RECORD_TX],
        }
    }
}

/// TLS over the borrowed socket, with the borrowed record buffers.
type Tls<'t, 's> = TlsConnection<'t, &'t mut TcpSocket<'s>, Aes128GcmSha256>;

/// Opens TLS on the connected `socket`, runs one MQTT connection over it until it ends and
/// returns the client, typed over the socket again. A failed handshake counts for the
/// reconnect backoff like a refused TCP connection.
pub async fn connection<'b, 's, J: Journal>(
    mut client: Client<'b, TcpSocket<'s>, J>,
    socket: &mut TcpSocket<'s>,
    records: &mut Records,
    device: &mut Device,
    led: &mut Led,
) -> Client<'b, TcpSocket<'s>, J> {
    let Some(tls) = open(socket, records).await else {
        client.open_failed(EmbassyClock.now_ms());
        return client;
    };
    let mut secure = client.for_transport::<Tls<'_, 's>>();
    if let Err(e) = secure.connect(tls) {
        // Client::new checked that the CONNECT fits, so this does not happen.
        fatal("MQTT connect", e);
    }
    run_connection(&mut secure, device, led).await;
    // Drops the TLS connection (no close_notify: the broker has gone, or we give up on it).
    secure.for_transport()
}

/// The handshake: TLS 1.3, the broker verified against [`config::MQTT_CA_CERT`] and
/// [`config::MQTT_TLS_NAME`]. Says why on failure.
async fn open<'t, 's>(
    socket: &'t mut TcpSocket<'s>,
    records: &'t mut Records,
) -> Option<Tls<'t, 's>> {
    if config::MQTT_CA_CERT.is_empty() {
        println!("mqtt: no CA certificate built in; build with MQTT_CA_CERT=ca.pem");
        return None;
    }
    // Random numbers for the key exchange: the RNG is a true one while the radio is on.
    let Ok(rng) = Trng::try_new() else {
        println!("mqtt: no entropy for TLS (the radio is off)");
        return None;
    };
    let mut tls = TlsConnection::new(socket, &mut records.rx, &mut records.tx);
    let config = TlsConfig::new().with_server_name(config::MQTT_TLS_NAME);
    // Lent, not moved, to the handshake, so that its chain buffer is in the future once.
    let mut provider = Provider {
        rng,
        verifier: CertVerifier::new(Certificate::X509(config::MQTT_CA_CERT)),
    };
    let handshake = tls.open(TlsContext::new(&config, &mut provider));
    match with_timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(())) => {
            println!("mqtt: TLS 1.3 up, {} verified", config::MQTT_TLS_NAME);
            Some(tls)
        }
        Ok(Err(e)) => {
            println!("mqtt: TLS handshake failed: {}", describe(&e));
            None
        }
        Err(_) => {
            println!("mqtt: TLS handshake timed out");
            None
        }
    }
}

/// What a handshake error means for the person reading the serial log.
fn describe(error: &TlsError) -> &'static str {
    match error {
        TlsError::InvalidCertificate => {
            "the broker's certificate does not lead to MQTT_CA_CERT or does not name \
             MQTT_TLS_NAME"
        }
        TlsError::InvalidSignature => "a signature in the broker's chain does not verify",
        TlsError::InvalidSignatureScheme => "the broker signs with an unsupported algorithm",
        TlsError::HandshakeAborted(..) => "the broker aborted the handshake (TLS 1.3 off?)",
        TlsError::OutOfMemory | TlsError::InsufficientSpace => {
            "the broker's certificate chain is larger than the buffers"
        }
        TlsError::Io(_) | TlsError::ConnectionClosed => "the connection failed",
        _ => "protocol error",
    }
}

/// Randomness and certificate verification for `embedded-tls`. No client certificate. No
/// clock: the board does not know the date, so certificate validity periods are not checked.
struct Provider {
    rng: Trng,
    verifier: CertVerifier<'static, Aes128GcmSha256, NoClock, CHAIN_MAX>,
}

impl CryptoProvider for Provider {
    type CipherSuite = Aes128GcmSha256;
    type Signature = &'static [u8];

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut self.verifier)
    }
}
