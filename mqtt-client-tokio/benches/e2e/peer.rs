//! rumqttc 0.25, 3.1.1 (`rumqttc`) or 5.0 (`rumqttc::v5`), behind one small interface: the
//! event loop is polled on a local task and its events reach a callback as [`Seen`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{INFLIGHT, REQUESTS};

/// The events the benchmark looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    ConnAck,
    SubAck,
    Publish,
    PubAck,
    PubComp,
    /// A PUBLISH was written.
    Sent,
    Other,
}

/// A connected rumqttc client of either version.
pub(crate) enum Peer {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

fn seen_v4(e: &rumqttc::Event) -> Seen {
    use rumqttc::{Event, Outgoing, Packet};
    match e {
        Event::Incoming(Packet::ConnAck(_)) => Seen::ConnAck,
        Event::Incoming(Packet::SubAck(_)) => Seen::SubAck,
        Event::Incoming(Packet::Publish(_)) => Seen::Publish,
        Event::Incoming(Packet::PubAck(_)) => Seen::PubAck,
        Event::Incoming(Packet::PubComp(_)) => Seen::PubComp,
        Event::Outgoing(Outgoing::Publish(_)) => Seen::Sent,
        _ => Seen::Other,
    }
}

fn seen_v5(e: &rumqttc::v5::Event) -> Seen {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::Event;
    use rumqttc::Outgoing;
    match e {
        Event::Incoming(Packet::ConnAck(_)) => Seen::ConnAck,
        Event::Incoming(Packet::SubAck(_)) => Seen::SubAck,
        Event::Incoming(Packet::Publish(_)) => Seen::Publish,
        Event::Incoming(Packet::PubAck(_)) => Seen::PubAck,
        Event::Incoming(Packet::PubComp(_)) => Seen::PubComp,
        Event::Outgoing(Outgoing::Publish(_)) => Seen::Sent,
        _ => Seen::Other,
    }
}

impl Peer {
    /// Connects (in-flight window `INFLIGHT`, request queue `REQUESTS`, keep alive 60 s,
    /// Nagle off as ours by default: otherwise round trips wait for delayed ACKs, ~40 ms)
    /// and polls the event loop on a local task; `on_event` sees every event. Returns once
    /// CONNACK arrived.
    pub(crate) async fn connect(
        v5: bool,
        id: String,
        port: u16,
        mut on_event: impl FnMut(Seen) + 'static,
    ) -> Self {
        let connected = Arc::new(Notify::new());
        let notify = Arc::clone(&connected);
        let mut on_event = move |seen: Seen| {
            if seen == Seen::ConnAck {
                notify.notify_one();
            }
            on_event(seen);
        };
        let peer = if v5 {
            let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
            o.set_keep_alive(Duration::from_secs(60));
            // The broker's Receive Maximum (mosquitto: 20) applies too; the smaller wins.
            o.set_outgoing_inflight_upper_limit(INFLIGHT);
            let mut network = rumqttc::NetworkOptions::new();
            network.set_tcp_nodelay(true);
            o.set_network_options(network);
            let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(o, REQUESTS);
            tokio::task::spawn_local(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(event) => on_event(seen_v5(&event)),
                        Err(e) => panic!("rumqttc v5: {e}"),
                    }
                }
            });
            Self::V5(client)
        } else {
            let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
            o.set_keep_alive(Duration::from_secs(60));
            o.set_inflight(INFLIGHT);
            let (client, mut eventloop) = rumqttc::AsyncClient::new(o, REQUESTS);
            eventloop.network_options.set_tcp_nodelay(true);
            tokio::task::spawn_local(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(event) => on_event(seen_v4(&event)),
                        Err(e) => panic!("rumqttc: {e}"),
                    }
                }
            });
            Self::V4(client)
        };
        connected.notified().await;
        peer
    }

    pub(crate) async fn publish(&self, topic: &str, qos: u8, payload: Vec<u8>) {
        match self {
            Self::V4(c) => c.publish(topic, qos_v4(qos), false, payload).await.unwrap(),
            Self::V5(c) => c.publish(topic, qos_v5(qos), false, payload).await.unwrap(),
        }
    }

    pub(crate) async fn subscribe(&self, filter: &str, qos: u8) {
        match self {
            Self::V4(c) => c.subscribe(filter, qos_v4(qos)).await.unwrap(),
            Self::V5(c) => c.subscribe(filter, qos_v5(qos)).await.unwrap(),
        }
    }
}

fn qos_v4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos_v5(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}
