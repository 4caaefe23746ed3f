//! The client against a hostile broker (`mqtt_test_support::hostile`, shared with
//! `mqtt-client-nb`): malformed packets, limits exceeded, floods. Each case must end with
//! `Error::Protocol` carrying the matching reason code, a 5.0 DISCONNECT with that code (none
//! on 3.1.1), the connection closed by the client, no panic and no hang. The 256 MiB case
//! sends a fixed header and 16 bytes: the client must refuse it from the header, not wait to
//! buffer it.

use std::time::Duration;

use mqtt_client_tokio::{Client, Error, Event, Options, ProtocolVersion};
use mqtt_test_support::hostile::{cases, Case, ClientLimits, HostileBroker, Outcome};
use tokio::time::Instant;

/// Every case must be over within this.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest packet the client accepts in these tests.
const MAX_PACKET: u32 = 4096;
/// The receive maximum it announces (5.0).
const RECEIVE_MAXIMUM: u16 = 20;

fn limits(version: ProtocolVersion) -> ClientLimits {
    ClientLimits {
        // A 3.1.1 session cannot announce a limit and accepts at least 1,024.
        receive_maximum: if version.is_v5() {
            RECEIVE_MAXIMUM
        } else {
            1024
        },
        maximum_packet_size: MAX_PACKET,
    }
}

async fn run_case(case: &Case) -> Result<(), String> {
    let limits = limits(case.version);
    let broker = HostileBroker::start(case.script(&limits))
        .await
        .map_err(|e| e.to_string())?;
    let mut o = Options::new(&format!("mqtt://{}", broker.addr())).map_err(|e| e.to_string())?;
    o.protocol.version = case.version;
    o.protocol.client_id = "hostile".into();
    o.protocol.receive_maximum = RECEIVE_MAXIMUM;
    o.protocol.maximum_packet_size = MAX_PACKET;
    o.policy.reconnect = false;
    // Room for every message of the flood, so that none is counted as missed.
    o.policy.event_buffer = 1 << 18;
    let (client, mut events) = Client::new(o).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut outcome = Outcome::new();
    let mut other = Vec::new();
    let polled = tokio::time::timeout(CASE_TIMEOUT, async {
        // Bounded by the timeout and the event stream's end.
        while let Some(event) = events.recv().await {
            match event {
                Event::Message(_) => outcome.deliveries += 1,
                Event::Disconnected {
                    error: Error::Protocol(code),
                }
                | Event::Error(Error::Protocol(code)) => {
                    outcome.reason = Some(code);
                    outcome.elapsed = start.elapsed();
                    break;
                }
                Event::Disconnected { error } | Event::Error(error) => other.push(error),
                Event::Lagged { missed } => {
                    other.push(Error::InvalidOptions(format!("{missed} events missed")))
                }
                _ => {}
            }
        }
    })
    .await;
    let transcript = broker.wait_closed(Duration::from_secs(5)).await;
    drop(client);
    if polled.is_err() {
        return Err(format!(
            "{:?} {}: hung ({} deliveries, other errors {other:?}); {transcript:?}",
            case.version, case.name, outcome.deliveries
        ));
    }
    case.verify(&limits, &outcome, &transcript)
        .map_err(|e| format!("{e}; other errors {other:?}"))?;
    println!(
        "{:<6} {:<46} -> {:?} (DISCONNECT {}) in {} ms{}",
        format!("{:?}", case.version),
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
    for case in cases(version) {
        if let Err(e) = run_case(&case).await {
            failures.push(e);
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
