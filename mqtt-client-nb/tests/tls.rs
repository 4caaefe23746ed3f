//! The client over TLS 1.3 from `embedded-tls` (no_std, no allocator, the same
//! `embedded-io-async` traits as the client: what a board uses to reach a cloud broker)
//! against mosquitto's TLS listener on a free loopback port: the broker verified against its
//! CA and its name, a broker from another CA or under another name refused with a typed
//! error, mutual TLS with an ECDSA client certificate, and one client reconnecting over TLS
//! with the same record buffers. Both protocol versions. Every wait is bounded.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CryptoProvider, SignatureScheme, TlsConfig, TlsConnection,
    TlsContext, TlsError, TlsVerifier,
};
use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS};
use mqtt_client_nb::{Client, Options};
use mqtt_test_support::{Broker, TlsMaterial};
use p256::ecdsa::{DerSignature, SigningKey};
use rand_core::OsRng;
use support::{poll_until, Ev, TokioClock};
use tokio::net::TcpStream;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
/// The largest TLS record (16 KiB of plaintext and its overhead), as `embedded-tls` needs for
/// reading; writing can use less.
const RECORD_RX: usize = 16_640;
const RECORD_TX: usize = 4096;

type Tls<'a> = TlsConnection<'a, FromTokio<TcpStream>, Aes128GcmSha256>;

/// Randomness, the broker's CA and, for mutual TLS, the client's key and certificate.
struct Provider<'a> {
    verifier: CertVerifier<'a, Aes128GcmSha256, SystemTime, 4096>,
    client: Option<(SigningKey, &'a [u8])>,
}

impl CryptoProvider for Provider<'_> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl embedded_tls::CryptoRngCore {
        OsRng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut self.verifier)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<DerSignature>, SignatureScheme), TlsError> {
        let (key, _) = self.client.as_ref().ok_or(TlsError::InvalidPrivateKey)?;
        Ok((key.clone(), SignatureScheme::EcdsaSecp256r1Sha256))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.client
            .as_ref()
            .map(|(_, cert)| Certificate::X509(*cert))
    }
}

/// The P-256 secret scalar inside a PKCS#8 document as the test CA writes it (ring's layout:
/// the SEC1 `ECPrivateKey` holds `02 01 01 04 20` and then the 32-byte key).
fn signing_key(pkcs8: &[u8]) -> SigningKey {
    const MARK: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8
        .windows(MARK.len())
        .position(|w| w == MARK)
        .expect("a P-256 private key in the PKCS#8 document")
        + MARK.len();
    let secret = p256::SecretKey::from_slice(&pkcs8[at..at + 32]).expect("a valid P-256 key");
    SigningKey::from(&secret)
}

/// Opens TLS 1.3 to `addr`, verifying `localhost` against `ca`, with the client certificate
/// when `client` is set.
async fn open<'b>(
    addr: SocketAddr,
    ca: &[u8],
    client: Option<(&TlsMaterial, &'b [u8])>,
    rx: &'b mut [u8],
    tx: &'b mut [u8],
) -> Result<Tls<'b>, TlsError> {
    open_named(addr, TlsMaterial::SERVER_NAME, ca, client, rx, tx).await
}

/// [`open`], verifying `name` instead of `localhost`.
async fn open_named<'b>(
    addr: SocketAddr,
    name: &str,
    ca: &[u8],
    client: Option<(&TlsMaterial, &'b [u8])>,
    rx: &'b mut [u8],
    tx: &'b mut [u8],
) -> Result<Tls<'b>, TlsError> {
    let tcp = support::tcp(addr).await;
    let mut tls = TlsConnection::new(tcp, rx, tx);
    let config = TlsConfig::new().with_server_name(name);
    let provider = Provider {
        verifier: CertVerifier::new(Certificate::X509(ca)),
        client: client.map(|(m, cert)| (signing_key(m.client_key_der()), cert)),
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        tls.open(TlsContext::new(&config, provider)),
    )
    .await
    .expect("TLS handshake timed out")?;
    Ok(tls)
}

/// Connects over `tls`, subscribes, publishes a QoS 1 message and a 3 KiB QoS 2 message (more
/// than one TLS write from the 1 KiB transmit buffer's point of view is not needed: the
/// client writes packets, TLS frames them), and checks both come back byte-identical.
async fn round_trip(tls: Tls<'_>, v: ProtocolVersion, id: &str) {
    let (mut rx, mut tx, mut store) = (vec![0u8; 4096], vec![0u8; 4096], vec![0u8; 16_384]);
    let mut options = Options::new(v);
    options.client_id = Some(id);
    let mut client = Client::new(options, &mut rx, &mut tx, &mut store).unwrap();
    let clock = TokioClock::new();
    client.connect(tls).unwrap();
    let seen = poll_until(&mut client, &clock, 10, |e| {
        matches!(e, Ev::Connected { .. } | Ev::Error(_))
    })
    .await;
    assert!(
        matches!(seen.last(), Some(Ev::Connected { .. })),
        "{seen:?}"
    );

    let topic = format!("nb/tls/{id}");
    client.subscribe(&topic, QoS::ExactlyOnce).unwrap();
    let seen = poll_until(&mut client, &clock, 10, |e| {
        matches!(e, Ev::Subscribed { .. })
    })
    .await;
    assert!(
        matches!(seen.last(), Some(Ev::Subscribed { .. })),
        "{seen:?}"
    );

    let small = b"over embedded-tls".to_vec();
    let large: Vec<u8> = (0..3072u32).map(|i| (i % 251) as u8).collect();
    client
        .publish(&topic, QoS::AtLeastOnce, false, &small)
        .unwrap();
    client
        .publish(&topic, QoS::ExactlyOnce, false, &large)
        .unwrap();
    let mut got = Vec::new();
    let seen = poll_until(&mut client, &clock, 10, |e| {
        if let Ev::Message { payload, .. } = e {
            got.push(payload.clone());
        }
        got.len() == 2
    })
    .await;
    assert_eq!(got, [small, large], "{seen:?}");

    client.disconnect().unwrap();
    let seen = poll_until(&mut client, &clock, 10, |e| {
        matches!(e, Ev::Disconnected | Ev::Error(_))
    })
    .await;
    assert!(matches!(seen.last(), Some(Ev::Disconnected)), "{seen:?}");
}

#[tokio::test]
async fn the_broker_is_verified_and_messages_cross_tls_both_ways() {
    let broker = Broker::builder().tls().start().expect("mosquitto with TLS");
    let material = broker.tls().expect("TLS material").clone();
    let addr: SocketAddr = ([127, 0, 0, 1], broker.tls_port().unwrap()).into();
    for v in BOTH {
        let (mut rrx, mut rtx) = (vec![0u8; RECORD_RX], vec![0u8; RECORD_TX]);
        let tls = open(addr, material.ca_der(), None, &mut rrx, &mut rtx)
            .await
            .expect("handshake with the broker's CA");
        round_trip(tls, v, &format!("nb-tls-{v:?}")).await;
    }
}

#[tokio::test]
async fn a_broker_from_another_ca_is_refused() {
    let broker = Broker::builder().tls().start().expect("mosquitto with TLS");
    let addr: SocketAddr = ([127, 0, 0, 1], broker.tls_port().unwrap()).into();
    let stranger = TlsMaterial::generate().unwrap();
    let (mut rrx, mut rtx) = (vec![0u8; RECORD_RX], vec![0u8; RECORD_TX]);
    // `open` bounds the handshake: a refusal is an error, not a hang.
    let refused = open(addr, stranger.ca_der(), None, &mut rrx, &mut rtx).await;
    assert!(
        matches!(refused, Err(TlsError::InvalidCertificate)),
        "a certificate from another CA: {:?}",
        refused.map(|_| ())
    );
}

#[tokio::test]
async fn a_broker_under_another_name_is_refused() {
    let broker = Broker::builder().tls().start().expect("mosquitto with TLS");
    let material = broker.tls().expect("TLS material").clone();
    let addr: SocketAddr = ([127, 0, 0, 1], broker.tls_port().unwrap()).into();
    let (mut rrx, mut rtx) = (vec![0u8; RECORD_RX], vec![0u8; RECORD_TX]);
    // The right CA, but the certificate names `localhost`, not the name we asked for.
    let refused = open_named(
        addr,
        "broker.example",
        material.ca_der(),
        None,
        &mut rrx,
        &mut rtx,
    )
    .await;
    assert!(
        matches!(refused, Err(TlsError::InvalidCertificate)),
        "a certificate for another name: {:?}",
        refused.map(|_| ())
    );
}

/// One client, many TLS connections: the client waits between connections typed over the
/// plain TCP stream and becomes the TLS-typed client for each (`Client::for_transport`), so
/// every `TlsConnection` borrows the same record buffers in turn. A message queued while
/// disconnected goes out over the next connection.
#[tokio::test]
async fn one_client_reconnects_over_tls_with_the_same_record_buffers() {
    let broker = Broker::builder().tls().start().expect("mosquitto with TLS");
    let material = broker.tls().expect("TLS material").clone();
    let addr: SocketAddr = ([127, 0, 0, 1], broker.tls_port().unwrap()).into();
    let (mut rrx, mut rtx) = (vec![0u8; RECORD_RX], vec![0u8; RECORD_TX]);
    let (mut rx, mut tx, mut store) = (vec![0u8; 2048], vec![0u8; 2048], vec![0u8; 8192]);
    let mut options = Options::new(ProtocolVersion::V5);
    options.client_id = Some("nb-tls-reconnect");
    // The broker keeps the subscription across the connections; the first one starts clean.
    options.session_expiry = 60;
    let mut idle: Client<'_, FromTokio<TcpStream>> =
        Client::new(options, &mut rx, &mut tx, &mut store).unwrap();
    let clock = TokioClock::new();
    let topic = "nb/tls/reconnect";
    for round in 0..3u8 {
        let tls = open(addr, material.ca_der(), None, &mut rrx, &mut rtx)
            .await
            .expect("handshake");
        let mut client = idle.for_transport::<Tls<'_>>();
        client.connect(tls).unwrap();
        if round == 0 {
            client.subscribe(topic, QoS::AtLeastOnce).unwrap();
            client
                .publish(topic, QoS::AtLeastOnce, false, &[round])
                .unwrap();
        }
        // QoS 1: the previous round's message may come again (its PUBACK had not gone out
        // when that connection was dropped).
        let seen = poll_until(
            &mut client,
            &clock,
            10,
            |e| matches!(e, Ev::Message { payload, .. } if payload == &[round]),
        )
        .await;
        assert!(
            matches!(seen.last(), Some(Ev::Message { payload, .. }) if payload == &[round]),
            "round {round}: {seen:?}"
        );
        // The connection ends without DISCONNECT; the TLS connection is dropped with the
        // TLS-typed client, which frees the record buffers for the next round.
        idle = client.for_transport();
        assert!(!idle.has_transport());
        idle.publish(topic, QoS::AtLeastOnce, false, &[round + 1])
            .unwrap();
    }
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let broker = Broker::builder()
        .mutual_tls()
        .start()
        .expect("mosquitto with mutual TLS");
    let material = broker.tls().expect("TLS material").clone();
    let addr: SocketAddr = ([127, 0, 0, 1], broker.tls_port().unwrap()).into();
    for v in BOTH {
        let (mut rrx, mut rtx) = (vec![0u8; RECORD_RX], vec![0u8; RECORD_TX]);
        let cert = material.client_cert_der().to_vec();
        let tls = open(
            addr,
            material.ca_der(),
            Some((&material, &cert)),
            &mut rrx,
            &mut rtx,
        )
        .await
        .expect("handshake with a client certificate");
        round_trip(tls, v, &format!("nb-mtls-{v:?}")).await;
    }

    // Without a certificate the broker ends the connection: at the handshake, or (TLS 1.3)
    // at the first read after it, so CONNACK never comes.
    let (mut rrx, mut rtx) = (vec![0u8; RECORD_RX], vec![0u8; RECORD_TX]);
    if let Ok(tls) = open(addr, material.ca_der(), None, &mut rrx, &mut rtx).await {
        let (mut rx, mut tx, mut store) = (vec![0u8; 1024], vec![0u8; 1024], vec![0u8; 4096]);
        let mut options = Options::new(ProtocolVersion::V3_1_1);
        options.client_id = Some("nb-mtls-anonymous");
        let mut client = Client::new(options, &mut rx, &mut tx, &mut store).unwrap();
        client.connect(tls).unwrap();
        let clock = TokioClock::new();
        let seen = poll_until(&mut client, &clock, 10, |e| {
            matches!(e, Ev::Connected { .. } | Ev::Error(_))
        })
        .await;
        assert!(matches!(seen.last(), Some(Ev::Error(_))), "{seen:?}");
    }
}
