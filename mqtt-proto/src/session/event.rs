//! What the session tells the application.

use core::time::Duration;

use crate::{
    AckProperties, Auth, ConnAckProperties, DisconnectProperties, PacketId, Publish, QoS,
    ReasonCode, Seq, Subscription,
};

/// Something the application should know about. Events borrow from the packet that was just
/// read (see [`Session::event`](super::Session::event)) or from the session's store, so handle
/// (or copy) each one before feeding the session again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The broker accepted the connection.
    Connected {
        /// Whether the broker resumed a stored session; if not, unacknowledged messages of the
        /// previous connection are reported as [`Event::PublishAbandoned`], and subscriptions
        /// kept for renewal ([`SessionConfig::subscription_bytes`](super::SessionConfig)) are
        /// subscribed again ([`Event::Resubscribed`]).
        session_present: bool,
        /// The broker's limits and assignments (5.0); also kept in
        /// [`Session::limits`](super::Session::limits).
        properties: ConnAckProperties<'a>,
    },
    /// The broker refused the connection; it will close it.
    ConnectionRefused {
        /// Why.
        reason_code: ReasonCode,
        /// Details (5.0), e.g. a Server Reference to try instead.
        properties: ConnAckProperties<'a>,
    },
    /// A message arrived. Delivered once for QoS 2, even if the broker sends it again.
    Message(Publish<'a>),
    /// A chunk of a message too large for the driver's receive buffer
    /// ([`SessionConfig::receive_capacity`](super::SessionConfig::receive_capacity)), in
    /// order, each with the message's topic, flags and properties. The message is
    /// acknowledged after its last chunk ([`Chunk::is_last`](super::Chunk::is_last)); if
    /// the connection ends before, nothing was acknowledged and the broker sends it again
    /// from offset 0 (QoS 1 and 2). A QoS 2 message is delivered once, as for
    /// [`Event::Message`].
    MessageChunk(super::Chunk<'a>),
    /// A QoS 1 or 2 publish completed: PUBACK or PUBCOMP, or a PUBREC carrying an error
    /// (5.0 [MQTT-4.4.0-2]: treated as acknowledged and never resent).
    Published {
        /// Identifier returned by [`Session::publish`](super::Session::publish).
        packet_id: PacketId,
        /// Its QoS.
        qos: QoS,
        /// Outcome; [`ReasonCode::is_error`] tells whether the broker took the message.
        reason_code: ReasonCode,
        /// Details (5.0).
        properties: AckProperties<'a>,
    },
    /// A SUBSCRIBE was answered: granted QoS or a failure per filter.
    Subscribed {
        /// Identifier returned by [`Session::subscribe`](super::Session::subscribe).
        packet_id: PacketId,
        /// One per filter, in order.
        reason_codes: Seq<'a, ReasonCode>,
        /// Details (5.0).
        properties: AckProperties<'a>,
    },
    /// A SUBSCRIBE the session sent on its own to renew kept subscriptions
    /// ([`SessionConfig::subscription_bytes`](super::SessionConfig)) after a broker came back
    /// without our session, was answered. Filters the broker refused are no longer kept (and
    /// the application no longer has them); the others are subscribed again as before.
    Resubscribed {
        /// The renewal's own identifier, never one returned by
        /// [`Session::subscribe`](super::Session::subscribe).
        packet_id: PacketId,
        /// The filters renewed, with the options they were kept with.
        subscriptions: Seq<'a, Subscription<'a>>,
        /// One per filter, in order: granted QoS or why the broker refused it.
        reason_codes: Seq<'a, ReasonCode>,
        /// Details (5.0).
        properties: AckProperties<'a>,
    },
    /// An UNSUBSCRIBE was answered.
    Unsubscribed {
        /// Identifier returned by [`Session::unsubscribe`](super::Session::unsubscribe).
        packet_id: PacketId,
        /// One per filter (5.0; empty in 3.1.1).
        reason_codes: Seq<'a, ReasonCode>,
        /// Details (5.0).
        properties: AckProperties<'a>,
    },
    /// PINGRESP arrived.
    Pong {
        /// Time from PINGREQ transmitted to PINGRESP received.
        round_trip: Duration,
    },
    /// An AUTH step from the broker (5.0 enhanced authentication).
    Auth(Auth<'a>),
    /// The broker sent DISCONNECT; the connection is over.
    Disconnected {
        /// Why.
        reason_code: ReasonCode,
        /// Details (5.0), e.g. a Server Reference.
        properties: DisconnectProperties<'a>,
    },
    /// The connection must be closed: a deadline passed or the broker broke the protocol.
    /// Close the transport and call
    /// [`Session::handle_transport_closed`](super::Session::handle_transport_closed).
    ConnectionLost(LostReason),
    /// A QoS 1 or 2 message that was sent but not acknowledged was dropped because the broker
    /// no longer had the session (session present 0, or clean start).
    /// [`Session::abandoned_message`](super::Session::abandoned_message) lends the message
    /// right after, so it can be published again.
    PublishAbandoned {
        /// Its identifier.
        packet_id: PacketId,
        /// Whether the broker had received it (a QoS 2 message past PUBREC, whose PUBCOMP
        /// never came); its bytes are gone then.
        reached_broker: bool,
    },
    /// A queued message could not be sent on this connection and was dropped: it is larger than
    /// the broker's maximum packet size, or above its maximum QoS.
    PublishDropped {
        /// Its identifier, for QoS 1 and 2.
        packet_id: Option<PacketId>,
        /// Why ([`ReasonCode::PacketTooLarge`] or [`ReasonCode::QoSNotSupported`]).
        reason_code: ReasonCode,
    },
    /// A queued SUBSCRIBE or UNSUBSCRIBE could not be sent to this broker and was dropped:
    /// CONNACK said it does not support what it asks for (shared subscriptions, wildcards,
    /// subscription identifiers), or it exceeds the broker's Maximum Packet Size. Requests
    /// made while connected are refused by the command instead.
    RequestDropped {
        /// Identifier returned by [`Session::subscribe`](super::Session::subscribe) or
        /// [`Session::unsubscribe`](super::Session::unsubscribe).
        packet_id: PacketId,
        /// Why, e.g. [`ReasonCode::SharedSubscriptionsNotSupported`].
        reason_code: ReasonCode,
    },
    /// Something the session coped with on its own: a transient refusal it retries, a
    /// broker over our Receive Maximum, a message over our maximum size it skipped. Nothing
    /// was lost and the connection goes on; worth a log line.
    Notice(Notice),
}

/// Why the session gave up on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LostReason {
    /// No CONNACK within the configured timeout.
    ConnAckTimeout,
    /// No PINGRESP within the ping timeout.
    KeepAliveTimeout,
    /// The broker broke the protocol; a DISCONNECT with this reason was sent on 5.0.
    ProtocolError(ReasonCode),
    /// DISCONNECT was transmitted (ours): close the transport.
    DisconnectSent,
    /// The application's authenticator refused the broker ([`Session::authentication_failed`](super::Session::authentication_failed)):
    /// a DISCONNECT with Not Authorized was queued (5.0); close the transport once it is out.
    AuthenticationFailed,
    /// Our graceful end on 3.1.1 asked for the will, which 3.1.1's DISCONNECT cannot do:
    /// the open handshakes were drained and nothing more is sent. Close the transport
    /// without DISCONNECT, so that the broker publishes the will.
    ClosedForWill,
    /// A DISCONNECT was transmitted to have the broker send again, on a new connection, the
    /// QoS 2 messages the session had no room for
    /// ([`Notice::ReceiveMaximumExceeded`] with `deferred`): close the transport and
    /// connect again at once (the session resumes).
    Resync,
}

/// What the session coped with on its own ([`Event::Notice`]), for the application's log: the
/// broker broke a rule or refused something, and nothing was lost. Both clients report these
/// as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The broker refused a message with a transient reason code (Quota Exceeded, Server
    /// Busy, Message Rate Too High): the session sends it again, as a new delivery under the
    /// same packet identifier, after a delay that doubles with each retry. Once
    /// [`SessionConfig::refused_retries`](super::SessionConfig) are used up, the refusal is
    /// reported as [`Event::Published`] with the broker's code instead.
    PublishRetrying {
        /// The message's identifier.
        packet_id: PacketId,
        /// The broker's code.
        reason_code: ReasonCode,
        /// Which retry comes next.
        retry: u8,
    },
    /// The broker sent more unacknowledged QoS 1 and 2 messages than our Receive Maximum
    /// allows. Reported once per connection: the excess is accepted while the store can track
    /// it ([`SessionConfig::incoming_slots`](super::SessionConfig)). `deferred` (reported
    /// once too) says a QoS 2 message found no room and was left unacknowledged: the broker
    /// keeps it and sends it again on the next connection, which the session makes once the
    /// messages it holds are released ([`LostReason::Resync`]).
    ReceiveMaximumExceeded {
        /// Our Receive Maximum.
        receive_maximum: u16,
        /// Incoming messages in flight when it was noticed.
        in_flight: u16,
        /// A message was left with the broker for lack of room.
        deferred: bool,
    },
    /// A PUBLISH larger than [`SessionConfig::maximum_packet_size`](super::SessionConfig)
    /// arrived. It was acknowledged per its QoS (so the broker does not send it again, which
    /// would end every connection the same way) but not delivered. The driver drops its
    /// bytes as [`Read::Skip`](super::Read::Skip) said.
    MessageSkipped {
        /// The message's identifier, for QoS 1 and 2.
        packet_id: Option<PacketId>,
        /// Its QoS.
        qos: QoS,
        /// Its size in bytes.
        size: u32,
    },
    /// Granted subscriptions that will not be renewed after a lost session: the table of
    /// kept subscriptions ([`SessionConfig::subscription_bytes`](super::SessionConfig)) had no
    /// room for filter `index` of the SUBSCRIBE `packet_id`. Neither it nor the filters that
    /// SUBSCRIBE granted after it are kept. The subscriptions work; only their renewal is
    /// left to the application.
    SubscriptionNotRenewable {
        /// Identifier returned by [`Session::subscribe`](super::Session::subscribe).
        packet_id: PacketId,
        /// Position (from 0) of the first filter not kept.
        index: u16,
    },
    /// A kept subscription could not be renewed on this connection and was removed from the
    /// table: the broker's CONNACK rules out what it uses
    /// ([`ReasonCode::SharedSubscriptionsNotSupported`],
    /// [`ReasonCode::WildcardSubscriptionsNotSupported`],
    /// [`ReasonCode::SubscriptionIdentifiersNotSupported`], 5.0 options after a fallback to
    /// 3.1.1: [`ReasonCode::UnsupportedProtocolVersion`]), or no SUBSCRIBE carrying it fits
    /// the broker's Maximum Packet Size, the transmit buffer or the log
    /// ([`ReasonCode::PacketTooLarge`]). The application must subscribe again if it can.
    RenewalDropped {
        /// Why.
        reason_code: ReasonCode,
    },
    /// The broker refused our 5.0 CONNECT as Unsupported Protocol Version and
    /// [`SessionConfig::fallback_to_v311`](super::SessionConfig) is set: once this transport
    /// is closed, the session speaks 3.1.1 for the rest of its life
    /// ([`Session::version`](super::Session::version)), and
    /// [`Session::handle_transport_closed`](super::Session::handle_transport_closed) asks for
    /// a prompt reconnect. 5.0-only properties of queued packets are left out from then on.
    FellBackToV311,
}
