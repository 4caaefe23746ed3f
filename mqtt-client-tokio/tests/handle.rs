//! The handle shares the session with the driver (quinn's shape): a command reaches the
//! session from the calling task and returns its packet identifier or its error at once,
//! without waiting for the driver task to run.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mqtt_client_tokio::{Client, Error, Message, Options, QoS, QueueFull};
use tokio::time::timeout;

/// A loopback port nothing listens on: the driver's attempts fail, which these tests do not
/// need to get anywhere.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("mqtt://127.0.0.1:{port}")
}

fn options() -> Options {
    let mut o = Options::new(&dead_url()).unwrap();
    o.protocol.client_id = "handle-test".into();
    o.policy.backoff_min = Duration::from_millis(50);
    o
}

/// Polls once, with a waker that does nothing: `Some` only if the future needed no other
/// task to make progress.
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn publish_returns_its_packet_id_before_the_driver_runs() {
    // On a current-thread runtime the driver task cannot run until this test awaits.
    let (client, _events) = Client::new(options()).unwrap();
    let mut ids = Vec::new();
    for (i, qos) in [QoS::AtLeastOnce, QoS::AtMostOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let message = Message::new("t", format!("m{i}"), qos);
        let delivery = poll_once(client.publish_queued(message))
            .expect("publish waited for the driver")
            .expect("publish refused");
        ids.push(delivery.packet_id().map(|id| id.get()));
    }
    assert_eq!(ids, [Some(1), None, Some(2)]);

    // Refusals come back at once too.
    let bad = Message::new("a/+/b", "x", QoS::AtLeastOnce);
    let err = poll_once(client.publish_queued(bad))
        .expect("a refusal waited for the driver")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTopic(_)), "{err}");
    let err = poll_once(client.ack(&Message::new("t", "x", QoS::AtMostOnce)));
    assert!(matches!(err, Some(Ok(()))), "{err:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_store_waits_for_room_without_blocking_other_commands() {
    let mut o = options();
    o.policy.offline_queue_bytes = 1024;
    o.policy.queue_full = QueueFull::Wait;
    let (client, _events) = Client::new(o).unwrap();
    let payload = vec![0u8; 200];
    let mut queued = 0;
    let mut waiting = None;
    for _ in 0..20 {
        let publish = client.publish_queued(Message::new("t", payload.clone(), QoS::AtLeastOnce));
        let mut publish = Box::pin(publish);
        if poll_once(publish.as_mut()).is_some() {
            queued += 1;
        } else {
            waiting = Some(publish);
            break;
        }
    }
    assert!(queued > 0, "nothing fit in the store");
    assert!(waiting.is_some(), "the store never filled");
    // A subscribe is not stuck behind the waiting publish: it is queued at once and only
    // waits for SUBACK.
    let mut subscribe = Box::pin(client.subscribe("s", QoS::AtMostOnce));
    assert!(poll_once(subscribe.as_mut()).is_none());
    // Stopping fails what waits, with the stop reason.
    client.disconnect().await.unwrap();
    let waited = timeout(Duration::from_secs(5), waiting.unwrap())
        .await
        .expect("the waiting publish was not completed at stop");
    assert!(waited.is_err());
}

#[tokio::test]
async fn commands_fail_at_once_after_a_stop_and_the_last_handle_stops_the_driver() {
    let (client, mut events) = Client::new(options()).unwrap();
    let clone = client.clone();
    client.disconnect().await.unwrap();
    let err = poll_once(clone.publish("t", QoS::AtLeastOnce, false, "late"))
        .expect("a command after the stop waited")
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err}");
    // The events stream ends once the driver has stopped.
    let ended = timeout(Duration::from_secs(5), async {
        while events.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "events did not end after the stop");

    // Dropping every handle (no disconnect call) stops the driver too.
    let (client, mut events) = Client::new(options()).unwrap();
    let clone = client.clone();
    drop(client);
    assert!(!clone.is_connected());
    drop(clone);
    let ended = timeout(Duration::from_secs(5), async {
        while events.recv().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "events did not end after the last handle was dropped"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_queue_grows_on_demand_up_to_the_offline_limit() {
    let mut o = options();
    o.policy.offline_queue_bytes = 64 * 1024;
    let (client, _events) = Client::new(o).unwrap();
    // 300 messages of 100 bytes: far more than the 4 KiB a client starts with.
    for i in 0..300 {
        let message = Message::new("t", vec![1u8; 100], QoS::AtLeastOnce);
        let delivery = poll_once(client.publish_queued(message))
            .expect("publish waited")
            .unwrap_or_else(|e| panic!("message {i} refused: {e}"));
        drop(delivery);
    }
    // The limit still holds: a message larger than it is refused as too large, and the
    // queue is full once the limit is reached.
    let huge = Message::new("t", vec![0u8; 70 * 1024], QoS::AtLeastOnce);
    let err = poll_once(client.publish_queued(huge)).unwrap().unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let mut refused = None;
    for _ in 0..1_000 {
        let message = Message::new("t", vec![1u8; 100], QoS::AtLeastOnce);
        if let Err(e) = poll_once(client.publish_queued(message)).unwrap() {
            refused = Some(e);
            break;
        }
    }
    assert!(matches!(refused, Some(Error::QueueFull)), "{refused:?}");
}
