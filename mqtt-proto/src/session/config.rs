//! What the session is configured with, and what the broker told it in CONNACK.

use core::num::NonZeroU32;
use core::time::Duration;

use super::ReconnectPolicy;
use crate::properties::SubscribeProperties;
use crate::{ConnAckProperties, ProtocolVersion, QoS, ReasonCode, Subscription};

/// Session configuration: fixed for the life of a [`Session`](super::Session), but for what
/// a fallback to 3.1.1 changes ([`SessionConfig::fallback_to_v311`]).
///
/// The store the caller hands to the session is split into regions sized from this
/// configuration (see [`SessionConfig::reserved_bytes`]); what is left holds queued and
/// in-flight outgoing packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Protocol version spoken on every connection of this session.
    pub version: ProtocolVersion,
    /// How many QoS 1 and 2 messages from the broker may be unacknowledged at once, advertised
    /// as Receive Maximum in 5.0.
    pub receive_maximum: u16,
    /// Incoming QoS 2 messages (and, with manual acks, messages waiting for the application)
    /// the store can track at once, 4 bytes each: at least `receive_maximum`, or, when
    /// `incoming_slots_limit` lets the table grow to `receive_maximum`, the size it starts
    /// at (a driver that grows it as [`Session::wants_room`](super::Session::wants_room) asks
    /// takes as many messages as a table of `receive_maximum` slots). Brokers do
    /// exceed the Receive Maximum (mosquitto resuming a session, 3.1.1 brokers that cannot
    /// know it): the excess is accepted while it fits here and reported once per connection
    /// ([`Notice::ReceiveMaximumExceeded`](super::Notice::ReceiveMaximumExceeded)). A QoS 2
    /// message beyond it is left unacknowledged, so the broker keeps it and sends it again on
    /// the next connection; nothing is lost and the connection is not dropped.
    pub incoming_slots: u16,
    /// The incoming table may grow up to this many slots, for a store that can grow: full, it
    /// asks for twice its size ([`Session::wants_room`](super::Session::wants_room)), and it
    /// goes back to its first size once empty. 0 (the default), or no more than the table's
    /// first size: it never grows. [`Session::restore`](super::Session::restore) fills the
    /// table as it is and refuses what does not fit: a journaled session starts at its limit.
    pub incoming_slots_limit: u16,
    /// Largest packet accepted from the broker, advertised as Maximum Packet Size in 5.0. A
    /// larger PUBLISH is skipped: acknowledged per its QoS, not delivered, and reported
    /// ([`Notice::MessageSkipped`](super::Notice::MessageSkipped)); any other larger packet ends
    /// the connection (0x95 in 5.0).
    pub maximum_packet_size: u32,
    /// Largest packet the driver can hold in its receive buffer, when it has a fixed one (0:
    /// no limit, every packet is decoded whole). A PUBLISH larger than this and within
    /// [`SessionConfig::maximum_packet_size`] is streamed: [`Read::Stream`](super::Read::Stream),
    /// then [`Event::MessageChunk`](super::Event::MessageChunk)s through
    /// [`Read::Chunk`](super::Read::Chunk). Its header (fixed header, topic, packet
    /// identifier, 5.0 properties) plus one payload byte must fit: a message whose header
    /// does not is skipped as if over the maximum packet size
    /// ([`Notice::MessageSkipped`](super::Notice::MessageSkipped)). Any other packet larger
    /// than this is the driver's to refuse. Streaming needs the `receive-streaming` feature;
    /// without it [`Session::new`](super::Session::new) lowers `maximum_packet_size` to this.
    pub receive_capacity: usize,
    /// Highest topic alias the broker may use towards us (5.0; 0 disables incoming aliases).
    pub topic_alias_maximum: u16,
    /// Bytes of the store reserved for the topics of incoming aliases.
    pub incoming_alias_bytes: usize,
    /// Assign topic aliases to outgoing PUBLISHes automatically (5.0, least recently used
    /// replaced first), when the broker allows any.
    pub outgoing_topic_aliases: bool,
    /// Bytes of the store reserved for the topics of outgoing aliases.
    pub outgoing_alias_bytes: usize,
    /// Leave PUBACK and PUBREC to [`Session::ack`](super::Session::ack) instead of sending
    /// them as soon as a message is delivered.
    pub manual_acks: bool,
    /// How long to wait for CONNACK after CONNECT was transmitted.
    pub connack_timeout: Duration,
    /// How long to wait for PINGRESP; `None` uses half the keep alive, so a dead connection is
    /// noticed within 1.5 keep alive intervals.
    pub ping_timeout: Option<Duration>,
    /// Bytes of the store reserved for the CONNECT, DISCONNECT or AUTH being sent. A command
    /// whose packet is larger fails with [`CommandError::StoreFull`](super::CommandError)
    /// (a driver with a growable store may grow the region,
    /// [`Region::Control`](super::Region::Control), and try again);
    /// [`SessionConfig::control_len`] sizes it for a CONNECT.
    pub control_bytes: usize,
    /// Largest packet the driver can transmit: its transmit buffer, when it has a fixed one
    /// (0: no limit). Commands that would queue a larger packet are refused with
    /// [`CommandError::TransmitBufferTooSmall`](super::CommandError), counting the topic alias
    /// the session may add.
    pub transmit_capacity: usize,
    /// At most this many QoS 1 and 2 publishes (PUBRELs included) in flight to the broker, on
    /// top of the broker's Receive Maximum (5.0). A 3.1.1 broker cannot announce its limit, yet
    /// many enforce one (mosquitto: 20) by dropping what exceeds it with a plain PUBACK.
    /// Default: 20 on 3.1.1 (mosquitto's window), 65,535 on 5.0 (only the broker's limit
    /// applies).
    pub max_inflight: u16,
    /// When and whether to reconnect; see [`Session::handle_transport_closed`](super::Session::handle_transport_closed).
    pub reconnect: ReconnectPolicy,
    /// How long a graceful [`Session::disconnect`](super::Session::disconnect) waits for open
    /// handshakes to complete (PUBREL to answer, acknowledgements of what we sent) before the
    /// DISCONNECT goes out anyway.
    pub drain_timeout: Duration,
    /// How often a message the broker refused with a transient reason (Quota Exceeded,
    /// Server Busy, Message Rate Too High) is sent again before its refusal is reported.
    pub refused_retries: u8,
    /// Delay before the first such retry; it doubles with each further one.
    pub refused_retry_delay: Duration,
    /// Bytes of the store that keep a client identifier the broker assigned (5.0), so that
    /// reconnects resume the same session; 0 disables it. An identifier longer than this is
    /// not kept and the next connection asks for a new one. Reserved twice: once to keep it,
    /// once more in the control region for the CONNECT that carries it.
    pub assigned_id_bytes: usize,
    /// Bytes of the store that keep the subscriptions the broker granted, so that the session
    /// renews them itself when a broker comes back without our session (CONNACK session
    /// present 0, e.g. after the session expired or the broker restarted): it queues
    /// SUBSCRIBEs ahead of everything else queued, reported as
    /// [`Event::Resubscribed`](super::Event::Resubscribed). 0 (the default) turns this off
    /// and leaves renewal to the application.
    ///
    /// Each kept filter takes 8 bytes plus its length. A filter is kept with its options
    /// (QoS, No Local, Retain As Published, Retain Handling) and the 5.0 Subscription
    /// Identifier of its SUBSCRIBE; user properties are not kept and not renewed. It is added
    /// when SUBACK grants it, replaced when it is subscribed again, and removed when the broker
    /// refuses it or an UNSUBACK reports it gone (Success or No Subscription Existed). A
    /// granted filter that finds no room still works but is not renewed, which
    /// [`Notice::SubscriptionNotRenewable`](super::Notice::SubscriptionNotRenewable) reports.
    /// Needs the `subscription-renewal` feature; without it nothing is kept or renewed.
    pub subscription_bytes: usize,
    /// The subscription table may grow up to this many bytes, for a store that can grow: when
    /// the filters of the SUBSCRIBEs awaiting SUBACK would not fit it, it asks for room
    /// ([`Session::wants_room`](super::Session::wants_room)). 0 (the default), or no more
    /// than `subscription_bytes`: it never grows. Renewal needs a first size above 0.
    pub subscription_bytes_limit: usize,
    /// The queue of outgoing packets may grow up to this many bytes of capacity, for a store
    /// that can grow: a renewal SUBSCRIBE that does not fit the queue as it is (a filter
    /// longer than the queue, or a queue full of unacknowledged messages) asks for room
    /// ([`Session::wants_room`](super::Session::wants_room),
    /// [`Region::Queue`](super::Region::Queue)) instead of waiting, or of being dropped as
    /// too large. Commands need no limit here: one that does not fit fails with
    /// [`CommandError::StoreFull`](super::CommandError::StoreFull) and the driver grows the
    /// store ([`Session::resize_store`](super::Session::resize_store)). 0 (the default), or
    /// no more than the queue's first capacity: it never grows for a renewal.
    pub queue_bytes_limit: usize,
    /// Slots of the packet-id index, 6 bytes each, at the front of the log: a PUBACK, PUBREC,
    /// PUBCOMP, SUBACK or UNSUBACK then finds the packet it acknowledges without walking
    /// every queued packet, so a long queue does not slow each acknowledgement down. A slot
    /// is a hint checked against the packet it names; with 0, or when two packets in flight
    /// share a slot (identifiers equal modulo the slot count), the log is walked. Make it at
    /// least the number of packets in flight. Default: 0 (short queues, small stores).
    pub index_slots: u16,
    /// When a 5.0 CONNECT is refused as Unsupported Protocol Version (a 3.1.1-only broker's
    /// `20 02 00 01`, or a 5.0 CONNACK 0x84), speak 3.1.1 for the rest of the session's life:
    /// [`Session::handle_transport_closed`](super::Session::handle_transport_closed) asks for
    /// a prompt reconnect instead of stopping, every later CONNECT is 3.1.1, and
    /// [`Notice::FellBackToV311`](super::Notice::FellBackToV311) says so. Off by default: the
    /// refusal is reported and the session stops. What 3.1.1 cannot carry is left out of
    /// packets queued before the switch (properties) or dropped with
    /// [`Event::RequestDropped`](super::Event::RequestDropped) (a SUBSCRIBE with 5.0-only
    /// options); kept subscriptions that need 5.0 are dropped
    /// ([`Notice::RenewalDropped`](super::Notice::RenewalDropped)). A
    /// [`SessionConfig::max_inflight`] left at the 5.0 default becomes the 3.1.1 default, as
    /// [`Session::config`](super::Session::config) then shows: a 3.1.1 broker cannot
    /// announce its window.
    pub fallback_to_v311: bool,
    /// Describe every change of the durable state as a journal record
    /// ([`Session::poll_journal`](super::Session::poll_journal)), so that a backend can keep
    /// it and a new session can be recovered from it after a crash
    /// ([`Session::restore`](super::Session::restore)). Nothing is transmitted before the
    /// records that precede it were taken. Streamed PUBLISHes are not journaled (their
    /// payload is not in the store). The broker is asked to keep the session too
    /// ([`Session::connect`](super::Session::connect)). Off by default.
    pub journal: bool,
}

impl SessionConfig {
    /// Defaults sized for a small device: a Receive Maximum of 16 with room to track 32
    /// incoming QoS 2 messages, 4 KiB packets, no topic aliases, 512 bytes for CONNECT, a 30 s
    /// CONNACK timeout, a 5 s drain on disconnect, 5 retries of transiently refused messages,
    /// on 5.0 128 bytes for a broker-assigned client identifier, no subscriptions kept for
    /// renewal and no fallback to 3.1.1.
    pub const fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            receive_maximum: 16,
            incoming_slots: 32,
            incoming_slots_limit: 0,
            maximum_packet_size: 4096,
            receive_capacity: 0,
            topic_alias_maximum: 0,
            incoming_alias_bytes: 0,
            outgoing_topic_aliases: false,
            outgoing_alias_bytes: 0,
            manual_acks: false,
            connack_timeout: Duration::from_secs(30),
            ping_timeout: None,
            control_bytes: 512,
            transmit_capacity: 0,
            max_inflight: match version {
                ProtocolVersion::V5 => u16::MAX,
                _ => 20,
            },
            reconnect: ReconnectPolicy::new(),
            drain_timeout: Duration::from_secs(5),
            refused_retries: 5,
            refused_retry_delay: Duration::from_secs(1),
            assigned_id_bytes: match version {
                ProtocolVersion::V5 => 128,
                _ => 0,
            },
            subscription_bytes: 0,
            subscription_bytes_limit: 0,
            queue_bytes_limit: 0,
            index_slots: 0,
            fallback_to_v311: false,
            journal: false,
        }
    }

    /// Bytes a CONNECT needs in the control region whichever version it is sent in: its 5.0
    /// encoding with the properties the session adds (an upper bound for 3.1.1, which leaves
    /// properties out, and for 3.1, whose longer protocol name the 16 bytes cover).
    ///
    /// # Errors
    /// `connect` cannot be encoded.
    pub fn control_len(connect: &crate::Connect<'_>) -> Result<usize, crate::EncodeError> {
        let mut c = *connect;
        c.protocol = ProtocolVersion::V5;
        if !cfg!(feature = "v5") {
            // Without the `v5` feature the session sends 3.1.1 or 3.1, never with properties;
            // an empty user name keeps a lone password encodable (2 bytes more, still a bound).
            c.protocol = ProtocolVersion::V3_1_1;
            c.properties = crate::ConnectProperties::default();
            if let Some(will) = &mut c.will {
                will.properties = crate::WillProperties::default();
            }
            c.username = c.username.or(c.password.map(|_| ""));
        }
        // `Packet::Connect(c).encoded_len(c.protocol)`, measured where the CONNECT is rather
        // than after copying it into a `Packet` (field by field, on a microcontroller).
        if !c.protocol.is_built() {
            return Err(crate::EncodeError::FeatureDisabled("v5"));
        }
        let body = c.lengths()?.body;
        if body > crate::MAX_REMAINING_LENGTH as usize {
            return Err(crate::EncodeError::PacketTooLarge(body));
        }
        Ok(1 + crate::wire::var_int_len(body) + body + 16)
    }

    /// Slots of the incoming table: `incoming_slots`, at least `receive_maximum` unless the
    /// table may grow that far (`incoming_slots_limit`): one that grows as messages arrive
    /// starts at `incoming_slots`.
    pub const fn incoming_table(&self) -> usize {
        let floor = if self.incoming_slots_limit >= self.receive_maximum {
            0
        } else {
            self.receive_maximum
        };
        if self.incoming_slots > floor {
            self.incoming_slots as usize
        } else {
            floor as usize
        }
    }

    /// Bytes of the control region as the session starts: the CONNECT, DISCONNECT or AUTH being
    /// sent, and an assigned identifier for a later CONNECT to carry.
    pub(crate) const fn control_region(&self) -> usize {
        self.control_bytes + self.assigned_id_bytes
    }

    /// Checks that a session of this configuration can be created over a store of
    /// `store_len` bytes: what [`Session::new`](super::Session::new) checks, and what
    /// [`Session::from_checked`](super::Session::from_checked) expects.
    ///
    /// # Errors
    /// [`CommandError::StoreFull`](super::CommandError::StoreFull) when `store_len` is not
    /// larger than [`SessionConfig::reserved_bytes`] plus 64 bytes for the log;
    /// [`CommandError::Encode`](super::CommandError::Encode) with
    /// [`EncodeError::FeatureDisabled`](crate::EncodeError) for a 5.0 configuration in a
    /// build without the `v5` feature.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn check(&self, store_len: usize) -> Result<(), super::CommandError> {
        if !self.version.is_built() {
            return Err(super::CommandError::Encode(
                crate::EncodeError::FeatureDisabled("v5"),
            ));
        }
        let needed = self.reserved_bytes() + 64;
        if store_len < needed {
            return Err(super::CommandError::StoreFull {
                needed,
                available: store_len,
            });
        }
        Ok(())
    }

    /// Bytes of the store taken by the fixed regions; the rest queues outgoing packets.
    pub const fn reserved_bytes(&self) -> usize {
        self.incoming_table() * super::incoming::ENTRY
            + 2 * self.assigned_id_bytes
            + self.incoming_alias_bytes
            + self.outgoing_alias_bytes
            + self.control_bytes
            + self.subscription_bytes
            + self.index_slots as usize * super::store::SLOT
    }
}

/// What the broker allows on the current connection (5.0 CONNACK properties, with the
/// specification's defaults where absent; 3.1.1 brokers get the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerLimits {
    /// How many QoS 1 and 2 publishes may be unacknowledged at once.
    pub receive_maximum: u16,
    /// Largest packet the broker accepts, if it said.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Highest topic alias the broker accepts (0: none).
    pub topic_alias_maximum: u16,
    /// Highest QoS the broker supports.
    pub maximum_qos: QoS,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: bool,
    /// Whether subscription identifiers are supported.
    pub subscription_identifier_available: bool,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: bool,
    /// Keep alive in force, in seconds (the broker's Server Keep Alive overrides ours).
    pub keep_alive: u16,
    /// Session expiry in force, in seconds.
    pub session_expiry_interval: u32,
}

impl BrokerLimits {
    /// The limits before CONNACK says otherwise.
    pub const fn defaults(keep_alive: u16, session_expiry_interval: u32) -> Self {
        Self {
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifier_available: true,
            shared_subscription_available: true,
            keep_alive,
            session_expiry_interval,
        }
    }

    /// The reason a SUBSCRIBE would be refused by a broker with these limits, if any: a
    /// shared subscription, a wildcard or a subscription identifier the broker said it does
    /// not support.
    pub fn refuses<'s>(
        &self,
        subscriptions: impl IntoIterator<Item = Subscription<'s>>,
        properties: &SubscribeProperties<'_>,
    ) -> Option<ReasonCode> {
        if properties.subscription_identifier.is_some() && !self.subscription_identifier_available {
            return Some(ReasonCode::SubscriptionIdentifiersNotSupported);
        }
        subscriptions.into_iter().find_map(|s| {
            if s.filter.shared().is_some() && !self.shared_subscription_available {
                Some(ReasonCode::SharedSubscriptionsNotSupported)
            } else if s.filter.has_wildcards() && !self.wildcard_subscription_available {
                Some(ReasonCode::WildcardSubscriptionsNotSupported)
            } else {
                None
            }
        })
    }

    /// Applies CONNACK's properties.
    pub(crate) fn apply(&mut self, p: &ConnAckProperties<'_>) {
        if let Some(v) = p.receive_maximum {
            self.receive_maximum = v.get();
        }
        self.maximum_packet_size = p.maximum_packet_size;
        self.topic_alias_maximum = p.topic_alias_maximum.unwrap_or(0);
        self.maximum_qos = p.maximum_qos.unwrap_or(QoS::ExactlyOnce);
        self.retain_available = p.retain_available.unwrap_or(true);
        self.wildcard_subscription_available = p.wildcard_subscription_available.unwrap_or(true);
        self.subscription_identifier_available =
            p.subscription_identifier_available.unwrap_or(true);
        self.shared_subscription_available = p.shared_subscription_available.unwrap_or(true);
        if let Some(k) = p.server_keep_alive {
            self.keep_alive = k;
        }
        if let Some(s) = p.session_expiry_interval {
            self.session_expiry_interval = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Connect, EncodeError, Packet, TopicName, Will, WillProperties};

    /// `control_len` measures the CONNECT as `Packet::encoded_len` does, plus 16 bytes.
    #[test]
    fn control_len_is_the_encoded_length_of_the_connect_it_bounds() {
        let topic = TopicName::new("dev/1/status").unwrap();
        let will = Will {
            topic,
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        };
        // What `control_len` measures: 5.0 with the `v5` feature, else 3.1.1.
        let version = if cfg!(feature = "v5") {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V3_1_1
        };
        for with_will in [false, true] {
            for id in ["", "device-1", &"x".repeat(300)] {
                let mut c = Connect::new(version, id);
                c.username = Some("user");
                c.password = Some(b"secret");
                c.will = with_will.then_some(will);
                let expected = Packet::Connect(c).encoded_len(version).unwrap() + 16;
                assert_eq!(SessionConfig::control_len(&c), Ok(expected), "{id:?}");
            }
        }
        // Its errors are the encoder's.
        let mut c = Connect::new(version, "id");
        c.will = Some(Will {
            topic: TopicName::EMPTY,
            ..will
        });
        assert_eq!(
            SessionConfig::control_len(&c),
            Err(EncodeError::EmptyTopicWithoutAlias)
        );
    }
}
