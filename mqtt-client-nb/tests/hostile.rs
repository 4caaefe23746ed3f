//! The client against a hostile broker (`mqtt_test_support::hostile`): malformed packets,
//! limits exceeded, floods. Each case must end with the matching typed error, a 5.0
//! DISCONNECT with the matching reason code (none on 3.1.1), the connection closed by the
//! client, no panic and no hang, in normal and in small buffers (the client allocates
//! nothing: its memory is the three buffers, whatever the broker sends).

use std::time::Duration;

use mqtt_client_nb::mqtt_sansio::ProtocolVersion;
use mqtt_client_nb::{Client, Error, Event, Options};
use mqtt_test_support::hostile::{cases, Case, ClientLimits, HostileBroker, Outcome};
use mqtt_test_support::reliability::nb::{open, Tcp, TokioClock};
use tokio::time::Instant;

/// Every case must be over within this.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy)]
struct Sizes {
    rx: usize,
    tx: usize,
    store: usize,
}

const NORMAL: Sizes = Sizes {
    rx: 1024,
    tx: 1024,
    store: 4096,
};

/// About the least the client accepts: the CONNECT must fit `tx`, the store needs 4 bytes per
/// receive-maximum slot (20), a 64-byte control region and a 64-byte log.
const SMALL: Sizes = Sizes {
    rx: 64,
    tx: 64,
    store: 256,
};

/// Runs the client against `case` and returns what it did, or a description of a hang.
async fn run_case(case: &Case, sizes: Sizes) -> Result<(), String> {
    let limits = ClientLimits {
        receive_maximum: 20,
        maximum_packet_size: sizes.rx as u32,
    };
    let broker = HostileBroker::start(case.script(&limits))
        .await
        .map_err(|e| e.to_string())?;
    let (mut rx, mut tx, mut store) = (vec![0; sizes.rx], vec![0; sizes.tx], vec![0; sizes.store]);
    let mut options = Options::new(case.version);
    options.client_id = Some("hostile");
    options.receive_maximum = limits.receive_maximum;
    let mut client: Client<'_, Tcp> = Client::new(options, &mut rx, &mut tx, &mut store)
        .map_err(|e| format!("Client::new: {e}"))?;
    client
        .connect(open(broker.addr()).await.map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let clock = TokioClock::new();
    let start = Instant::now();
    let mut outcome = Outcome::new();
    let mut other_errors = Vec::new();
    let polled = tokio::time::timeout(CASE_TIMEOUT, async {
        // Bounded by the timeout; a flood case takes ~100k passes.
        loop {
            match client.poll(&clock).await {
                Event::Message(_) => outcome.deliveries += 1,
                Event::Error(Error::Protocol(e)) if outcome.error.is_none() => {
                    outcome.error = Some(e);
                    outcome.elapsed = start.elapsed();
                }
                Event::Error(e) => other_errors.push(e),
                Event::Disconnected => break,
                _ => {}
            }
        }
    })
    .await;
    drop(client.close());
    let transcript = broker.wait_closed(Duration::from_secs(5)).await;
    if polled.is_err() {
        return Err(format!(
            "{:?} {}: hung ({} deliveries, error {:?}, other errors {other_errors:?}); {transcript:?}",
            case.version, case.name, outcome.deliveries, outcome.error
        ));
    }
    case.verify(&limits, &outcome, &transcript)?;
    println!(
        "{:<6} {:>5}-byte rx  {:<46} -> {:?} (DISCONNECT {}) in {} ms{}",
        format!("{:?}", case.version),
        sizes.rx,
        case.name,
        outcome.reason_code(),
        transcript
            .disconnect_reason()
            .map_or("none".into(), |r| format!("{r:#04x}")),
        outcome.elapsed.as_millis(),
        if outcome.deliveries > 0 {
            format!(", {} messages delivered first", outcome.deliveries)
        } else {
            String::new()
        }
    );
    Ok(())
}

async fn all_cases(version: ProtocolVersion) {
    let mut failures = Vec::new();
    for sizes in [NORMAL, SMALL] {
        for case in cases(version) {
            if let Err(e) = run_case(&case, sizes).await {
                failures.push(format!("{}-byte rx: {e}", sizes.rx));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_broker_v3_1_1() {
    all_cases(ProtocolVersion::V3_1_1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_broker_v5() {
    all_cases(ProtocolVersion::V5).await;
}
