//! The authenticator hook on a 3.1.1 connection, in builds with and without `v5`
//! (scripts/test.sh runs this file with `--no-default-features` too): the outcome of a
//! failed `finish` must not depend on which code the build carries.

mod support;

use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_client_nb::mqtt_sansio::auth::{AuthError, Authenticator};
use mqtt_client_nb::mqtt_sansio::session::{EndCause, LostReason, Reconnect};
use mqtt_client_nb::mqtt_sansio::ProtocolVersion;
use mqtt_client_nb::{Client, Error, Options};
use support::{poll_until, Ev, TokioClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A mechanism that never accepts the broker: a 3.1.1 CONNACK carries no final proof.
struct Distrustful;

impl Authenticator for Distrustful {
    fn method(&self) -> &str {
        "TEST"
    }

    fn start(&mut self, _: &mut [u8]) -> Result<usize, AuthError> {
        Ok(0)
    }

    fn respond(&mut self, _: &[u8], _: &mut [u8]) -> Result<usize, AuthError> {
        Err(AuthError::OutOfOrder)
    }

    fn finish(&mut self, outcome: Option<&[u8]>) -> Result<(), AuthError> {
        assert_eq!(outcome, None);
        Err(AuthError::ServerNotVerified)
    }
}

/// A 3.1.1 broker accepts the connection, the authenticator refuses it: the connection ends
/// with `Error::Authentication` (not a `Connected` dropped in silence) and is not retried.
#[tokio::test(start_paused = true)]
async fn a_failed_finish_after_a_3_1_1_connack_ends_the_connection() {
    let clock = TokioClock::new();
    let (mut rx, mut tx, mut store) = (vec![0; 512], vec![0; 512], vec![0; 4096]);
    let options = Options::new(ProtocolVersion::V3_1_1);
    let mut client: Client<'_, FromTokio<DuplexStream>> =
        Client::new(options, &mut rx, &mut tx, &mut store).unwrap();
    let mut auth = Distrustful;
    client.set_authenticator(&mut auth);
    let (ours, mut broker) = tokio::io::duplex(1024);
    client.connect(FromTokio::new(ours)).unwrap();
    let broker = tokio::spawn(async move {
        let mut connect = [0u8; 256];
        let n = broker.read(&mut connect).await.unwrap();
        assert_eq!(connect.first(), Some(&0x10), "{:?}", &connect[..n]);
        broker.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
        // 3.1.1 has no DISCONNECT for this: the client just closes.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), broker.read_to_end(&mut rest)).await;
        rest
    });
    let seen = poll_until(&mut client, &clock, 5, |e| {
        matches!(e, Ev::Connected { .. } | Ev::Error(_))
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&Ev::Error(Error::Authentication(
            AuthError::ServerNotVerified
        ))),
        "{seen:?}"
    );
    let rest = poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
    assert_eq!(rest, [Ev::Disconnected]);
    drop(client.close());
    assert_eq!(broker.await.unwrap(), []);
    assert_eq!(
        client.reconnect(),
        Some(Reconnect::Stop(EndCause::Lost(
            LostReason::AuthenticationFailed
        )))
    );
}
