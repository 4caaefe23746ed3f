//! What [`Client::poll`](crate::Client::poll) reports, after esp-mqtt's `esp_mqtt_event_id_t`.

use mqtt_sansio::session::{Chunk, Notice};
use mqtt_sansio::{
    AckProperties, Auth, ConnAckProperties, PacketId, Publish, QoS, ReasonCode, Seq, Subscription,
};

use crate::Error;

/// An event of the connection. Events borrow from the client's receive buffer and session
/// store, so they live until the next call on the client; copy out what you need to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A transport was handed in and CONNECT is about to be sent (`MQTT_EVENT_BEFORE_CONNECT`).
    /// Commands issued now are sent right after CONNACK.
    BeforeConnect,
    /// The broker accepted the connection (`MQTT_EVENT_CONNECTED`).
    Connected {
        /// Whether the broker resumed the previous session. If not, messages the broker may
        /// have seen are reported as [`Event::Deleted`], and subscriptions must be renewed:
        /// by the client itself with [`Options::subscription_bytes`](crate::Options), by the
        /// application otherwise.
        session_present: bool,
        /// 5.0 CONNACK properties (assigned client id, server keep alive, limits, ...).
        properties: ConnAckProperties<'a>,
    },
    /// The connection is over and the transport was dropped (`MQTT_EVENT_DISCONNECTED`):
    /// after our DISCONNECT, or after an [`Event::Error`] that said why. Hand in a new
    /// transport with [`Client::connect`](crate::Client::connect); unacknowledged QoS 1 and 2
    /// messages are resent on it.
    Disconnected,
    /// A SUBSCRIBE was answered (`MQTT_EVENT_SUBSCRIBED`).
    Subscribed {
        /// Identifier returned by [`Client::subscribe`](crate::Client::subscribe).
        packet_id: PacketId,
        /// Granted QoS or failure per filter, in order ([`ReasonCode::is_error`]).
        reason_codes: Seq<'a, ReasonCode>,
    },
    /// The client renewed kept subscriptions ([`Options::subscription_bytes`](crate::Options))
    /// after a broker came back without our session, and the broker answered. Filters it
    /// refused are no longer kept and no longer subscribed.
    Resubscribed {
        /// The renewal's own identifier, never one [`Client::subscribe`](crate::Client::subscribe)
        /// returned.
        packet_id: PacketId,
        /// The filters renewed, with their options.
        subscriptions: Seq<'a, Subscription<'a>>,
        /// Granted QoS or failure per filter, in order ([`ReasonCode::is_error`]).
        reason_codes: Seq<'a, ReasonCode>,
    },
    /// An UNSUBSCRIBE was answered (`MQTT_EVENT_UNSUBSCRIBED`).
    Unsubscribed {
        /// Identifier returned by [`Client::unsubscribe`](crate::Client::unsubscribe).
        packet_id: PacketId,
        /// One per filter on 5.0; empty on 3.1.1.
        reason_codes: Seq<'a, ReasonCode>,
    },
    /// A QoS 1 or 2 message was acknowledged by the broker (`MQTT_EVENT_PUBLISHED`): PUBACK,
    /// PUBCOMP, or a 5.0 PUBREC with an error. QoS 0 messages have no completion event.
    Published {
        /// Identifier returned by [`Client::publish`](crate::Client::publish).
        packet_id: PacketId,
        /// Its QoS.
        qos: QoS,
        /// [`ReasonCode::Success`], or (5.0) why the broker did not take the message.
        reason_code: ReasonCode,
        /// 5.0 properties of the acknowledgement (reason string, user properties).
        properties: AckProperties<'a>,
    },
    /// A message arrived (`MQTT_EVENT_DATA`), whole: topic, payload, QoS, retain flag and
    /// 5.0 properties. A QoS 2 message is delivered once even if the broker resends it.
    Message(Publish<'a>),
    /// A piece of a message larger than the receive buffer (`MQTT_EVENT_DATA` with
    /// `current_data_offset` and `total_data_len`), when
    /// [`Options::maximum_packet_size`](crate::Options::maximum_packet_size) allows such
    /// messages. Pieces come in order, each with the message's topic, QoS and packet id,
    /// flags and 5.0 properties, its `offset` and the `total_len` of the payload; the
    /// message is acknowledged after the last one ([`Chunk::is_last`]). When the connection
    /// ends before, nothing was acknowledged: a QoS 1 or 2 message comes again from offset
    /// 0 (with DUP), so restart whatever you were assembling when a chunk with offset 0
    /// arrives. A QoS 2 message is delivered once, as for [`Event::Message`].
    MessageChunk(Chunk<'a>),
    /// A queued QoS 1 or 2 message was removed without being acknowledged
    /// (`MQTT_EVENT_DELETED`), or a QoS 0 message could not be sent on this connection.
    Deleted {
        /// Its identifier (QoS 1 and 2).
        packet_id: Option<PacketId>,
        /// Why.
        reason: DeleteReason,
        /// The message as it was queued, when the session still has it (to publish again).
        message: Option<Publish<'a>>,
    },
    /// A queued SUBSCRIBE or UNSUBSCRIBE was dropped unsent: the broker's CONNACK said it
    /// cannot serve it (shared subscriptions, wildcards, subscription identifiers, size).
    RequestDropped {
        /// Identifier returned by [`Client::subscribe`](crate::Client::subscribe) or
        /// [`Client::unsubscribe`](crate::Client::unsubscribe).
        packet_id: PacketId,
        /// Why, e.g. [`ReasonCode::SharedSubscriptionsNotSupported`].
        reason_code: ReasonCode,
    },
    /// Something the session coped with on its own, worth a log line: a message the broker
    /// refused for now and that goes again, a broker exceeding our Receive Maximum, a message
    /// too large for the receive buffer that was skipped. The connection goes on.
    Notice(Notice),
    /// A 5.0 enhanced-authentication step from the broker; answer with
    /// [`Client::auth`](crate::Client::auth).
    Auth(Auth<'a>),
    /// Something went wrong (`MQTT_EVENT_ERROR`). Unless it is [`Error::NotConnected`], the
    /// connection is over and [`Event::Disconnected`] follows.
    Error(Error),
}

/// Why a queued message was removed without an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteReason {
    /// The broker did not resume the session (clean session, or the session expired), so it
    /// may or may not have received the message.
    SessionLost,
    /// The broker's limits on this connection rule it out:
    /// [`ReasonCode::PacketTooLarge`] or [`ReasonCode::QoSNotSupported`].
    Refused(ReasonCode),
}
