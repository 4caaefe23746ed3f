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

use mqtt_client_nb::mqtt_proto::ProtocolVersion;
use mqtt_test_support::reliability::nb::NbClient;
use mqtt_test_support::reliability::{self, Summary};

const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn check(summary: Summary) {
    println!("{summary}");
    summary.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_through_random_cuts_v3_1_1() {
    check(reliability::publish_through_cuts(&NbClient::default(), V4, 11).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_through_random_cuts_v5() {
    check(reliability::publish_through_cuts(&NbClient::default(), V5, 12).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_through_random_cuts_v3_1_1() {
    check(reliability::subscribe_through_cuts(&NbClient::default(), V4, 13).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_through_random_cuts_v5() {
    check(reliability::subscribe_through_cuts(&NbClient::default(), V5, 14).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_and_killed_mid_stream_v3_1_1() {
    check(reliability::broker_restart(&NbClient::default(), V4).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_and_killed_mid_stream_v5() {
    check(reliability::broker_restart(&NbClient::default(), V5).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connection_noticed_by_keep_alive_v3_1_1() {
    check(reliability::stalled_connection(&NbClient::default(), V4).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connection_noticed_by_keep_alive_v5() {
    check(reliability::stalled_connection(&NbClient::default(), V5).await);
}

/// The same cut scenario with small buffers: 256-byte receive and transmit buffers and a
/// 1 KiB store, so the store is full most of the time and publishes wait for room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_through_random_cuts_with_small_buffers() {
    let small = NbClient {
        rx: 256,
        tx: 256,
        store: 1024,
    };
    check(reliability::publish_through_cuts(&small, V5, 15).await);
}
