//! Reliability of the client under faults, both protocol versions, persistent sessions:
//! numbered QoS 1 and QoS 2 streams through a proxy that cuts connections at random, the other
//! direction, broker restarts (stop, and save + kill), and a stalled connection noticed by
//! keep alive. The scenarios live in `mqtt_test_support::reliability`; each counts at a
//! reference client connected straight to the broker.
//!
//! Counts scale with `MQTT_RELIABILITY_SCALE` (a factor, default 1). The default is the full
//! size: 2,000 QoS 1 + 2,000 QoS 2 messages per cut scenario, 1,000 + 1,000 across the broker
//! restarts, 500 + 500 through the stall; the nine tests take ~25 s on 2 cores. A quicker run
//! is `MQTT_RELIABILITY_SCALE=0.25`, a longer one e.g.
//! `MQTT_RELIABILITY_SCALE=5 cargo test -p mqtt-client-nb --test reliability -- --nocapture`
//! (10,000 + 10,000), which also prints each scenario's counts, faults and timings.

use mqtt_client_nb::mqtt_sansio::ProtocolVersion;
use mqtt_test_support::reliability;
use mqtt_test_support::reliability::nb::NbClient;

mqtt_test_support::reliability_tests!(NbClient::default(), 10);

/// The same cut scenario with small buffers: 256-byte receive and transmit buffers and a
/// 1 KiB store, so the store is full most of the time and publishes wait for room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_through_random_cuts_with_small_buffers() {
    let small = NbClient {
        rx: 256,
        tx: 256,
        store: 1024,
    };
    let summary = reliability::publish_through_cuts(&small, ProtocolVersion::V5, 15).await;
    println!("{summary}");
    summary.assert_ok();
}
