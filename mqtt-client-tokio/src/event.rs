//! What the client tells the application: events, and what the broker said in CONNACK.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::session::Notice;
use mqtt_sansio::{PacketId, QoS, ReasonCode};
use std::sync::Arc;

use crate::state::Shared;

use crate::{Error, Message};

/// Something that happened to the client (as esp-mqtt reports it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The broker accepted the connection.
    Connected {
        /// Whether the broker resumed the session. When it did not, the session subscribes
        /// again to the granted filters ([`Event::Resubscribed`] follows), and resends (QoS 1)
        /// or fails (QoS 2) messages the broker had not acknowledged.
        session_present: bool,
        /// The broker, without credentials.
        broker: String,
        /// What the broker said in CONNACK (5.0): assigned client identifier, limits,
        /// response information, reason string, user properties.
        connack: Box<ConnAckInfo>,
    },
    /// An established connection ended.
    Disconnected {
        /// Why ([`Error::Closed`] after [`Client::disconnect`](crate::Client::disconnect)).
        error: Error,
    },
    /// The client waits `delay` before connection attempt `attempt` (1-based, counted since
    /// the last successful connection).
    Reconnecting {
        /// Attempt number.
        attempt: u32,
        /// Delay before it.
        delay: Duration,
    },
    /// A SUBSCRIBE was answered.
    Subscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// One per filter.
        reason_codes: Vec<ReasonCode>,
    },
    /// The session renewed, by itself, the subscriptions a broker had lost with the session
    /// ([`Policy::subscription_bytes`](crate::Policy::subscription_bytes)); a filter the
    /// broker refuses now is also reported as [`Event::Error`] and no longer renewed.
    Resubscribed {
        /// The renewal's packet identifier (never one a `subscribe` call used).
        packet_id: PacketId,
        /// One per renewed filter.
        reason_codes: Vec<ReasonCode>,
    },
    /// An UNSUBSCRIBE was answered.
    Unsubscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// One per filter (empty on 3.1.1).
        reason_codes: Vec<ReasonCode>,
    },
    /// A QoS 1 or 2 message was acknowledged (PUBACK, PUBCOMP, or a failure PUBREC).
    Published {
        /// Its packet identifier.
        packet_id: PacketId,
        /// The broker's reason code.
        reason_code: ReasonCode,
        /// The broker's reason string (5.0), if any.
        reason_string: Option<String>,
        /// The acknowledgement's user properties (5.0).
        user_properties: Vec<(String, String)>,
    },
    /// A 5.0 enhanced-authentication step from the broker: answer a Continue Authentication
    /// with [`Client::auth`](crate::Client::auth); Success ends a re-authentication.
    Auth {
        /// Continue Authentication, or Success.
        reason_code: ReasonCode,
        /// The broker's authentication data (the challenge).
        data: Option<Bytes>,
    },
    /// Something the session coped with on its own, worth a log line: a message the broker
    /// refused for now and that goes again, a broker exceeding our Receive Maximum, a
    /// message over the maximum packet size that was skipped. Nothing was lost.
    Notice(Notice),
    /// Subscription streams were full and QoS 0 messages were dropped (QoS 1 and 2 messages
    /// wait, unacknowledged, which holds the broker back instead).
    SlowConsumer {
        /// QoS 0 messages dropped since the last report.
        dropped_qos0: u64,
    },
    /// A message arrived (also delivered to the streams of the subscriptions it matches).
    Message(Message),
    /// Something failed: a connection attempt, a message that could not be delivered, a
    /// re-subscription the broker refused.
    Error(Error),
    /// The event buffer was full and `missed` events were dropped before this one. Messages
    /// are never lost this way from subscription streams.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// What a broker said in CONNACK (5.0; empty on 3.1.1), owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnAckInfo {
    /// The client identifier the broker assigned, when we sent none. The client reuses it
    /// on reconnects.
    pub assigned_client_identifier: Option<String>,
    /// Keep alive the broker imposes, in seconds.
    pub server_keep_alive: Option<u16>,
    /// Session expiry the broker grants, in seconds.
    pub session_expiry_interval: Option<u32>,
    /// Receive Maximum of the broker.
    pub receive_maximum: Option<u16>,
    /// Largest packet the broker accepts.
    pub maximum_packet_size: Option<u32>,
    /// Highest QoS the broker supports.
    pub maximum_qos: Option<QoS>,
    /// Whether retained messages are supported.
    pub retain_available: Option<bool>,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: Option<bool>,
    /// Whether subscription identifiers are supported.
    pub subscription_identifier_available: Option<bool>,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: Option<bool>,
    /// Topic Alias Maximum of the broker.
    pub topic_alias_maximum: Option<u16>,
    /// Response Information (for request/response topics), if requested and given.
    pub response_information: Option<String>,
    /// Another server to use.
    pub server_reference: Option<String>,
    /// A human-readable reason.
    pub reason_string: Option<String>,
    /// User properties.
    pub user_properties: Vec<(String, String)>,
}

impl ConnAckInfo {
    pub(crate) fn new(p: &mqtt_sansio::ConnAckProperties<'_>) -> Self {
        Self {
            assigned_client_identifier: p.assigned_client_identifier.map(str::to_string),
            server_keep_alive: p.server_keep_alive,
            session_expiry_interval: p.session_expiry_interval,
            receive_maximum: p.receive_maximum.map(|v| v.get()),
            maximum_packet_size: p.maximum_packet_size.map(|v| v.get()),
            maximum_qos: p.maximum_qos,
            retain_available: p.retain_available,
            wildcard_subscription_available: p.wildcard_subscription_available,
            subscription_identifier_available: p.subscription_identifier_available,
            shared_subscription_available: p.shared_subscription_available,
            topic_alias_maximum: p.topic_alias_maximum,
            response_information: p.response_information.map(str::to_string),
            server_reference: p.server_reference.map(str::to_string),
            reason_string: p.reason_string.map(str::to_string),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// The client's events. Buffered up to [`Policy::event_buffer`](crate::Policy); when the
/// buffer is full, events are counted and reported as [`Event::Lagged`] instead of slowing
/// the connection down. Drop it if you do not need it. Ends when the client stops.
#[derive(Debug)]
pub struct Events {
    pub(crate) shared: Arc<Shared>,
}

impl Events {
    /// The next event; `None` once the client has stopped.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let polled = self.shared.lock().events.poll_recv(cx);
        polled.map(|event| event.map(|event| *event))
    }
}

impl futures_core::Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_event(cx)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.shared.lock().events.close();
    }
}
