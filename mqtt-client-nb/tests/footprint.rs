//! RAM the client needs beside the caller's buffers: the client struct and the `poll`
//! future, printed for the record (`cargo test -p mqtt-client-nb --test footprint -- --nocapture`).

use core::convert::Infallible;
use core::mem::{size_of, size_of_val};

use mqtt_client_nb::mqtt_sansio::session::Session;
use mqtt_client_nb::mqtt_sansio::ProtocolVersion;
use mqtt_client_nb::{Client, Clock, Options};

/// A transport of size zero, so the figures are the client's own.
struct NoTransport;

impl embedded_io_async::ErrorType for NoTransport {
    type Error = Infallible;
}

impl embedded_io_async::Read for NoTransport {
    async fn read(&mut self, _: &mut [u8]) -> Result<usize, Infallible> {
        core::future::pending().await
    }
}

impl embedded_io_async::Write for NoTransport {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

struct NoClock;

impl Clock for NoClock {
    fn now_ms(&self) -> u64 {
        0
    }

    async fn sleep_until(&self, _: u64) {
        core::future::pending().await
    }
}

#[test]
fn client_struct_and_poll_future_sizes() {
    let (mut rx, mut tx, mut store) = ([0u8; 1024], [0u8; 1024], [0u8; 2048]);
    let mut client: Client<'_, NoTransport> = Client::new(
        Options::new(ProtocolVersion::V5),
        &mut rx,
        &mut tx,
        &mut store,
    )
    .unwrap();
    let client_size = size_of::<Client<'static, NoTransport>>();
    let session_size = size_of::<Session<&'static mut [u8]>>();
    let poll_size = size_of_val(&client.poll(&NoClock));
    println!(
        "pointer width {} bits: Client {client_size} B (of which Session {session_size} B), \
         poll future {poll_size} B",
        usize::BITS
    );
    // Loose bounds, so a regression shows up: the session dominates. Beside it: the options
    // (with the reconnect policy), buffer offsets, and 96 bytes for a Server Reference.
    assert!(client_size < session_size + 640);
    assert!(poll_size < 1024);
}
