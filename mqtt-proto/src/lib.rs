//! Zero-copy, allocation-free MQTT 3.1, 3.1.1 and 5.0 codec.
//!
//! Decoding borrows from the input: a [`Publish`] holds its topic and payload as slices of the
//! received bytes, and 5.0 properties that may repeat (user properties, subscription identifiers)
//! are iterated in place. Encoding writes into a caller buffer whose required size is known
//! up front through [`Packet::encoded_len`]. Nothing in this crate allocates.
//!
//! ```
//! use mqtt_sansio::{Decoded, Packet, ProtocolVersion, Publish, QosPid, TopicName};
//!
//! let publish = Publish::new(TopicName::new("sensors/esp32/temp")?, b"21.5");
//! let mut buf = [0u8; 64];
//! let n = Packet::Publish(publish).encode(ProtocolVersion::V3_1_1, &mut buf)?;
//! match Packet::decode(&buf[..n], ProtocolVersion::V3_1_1, u32::MAX)? {
//!     Decoded::Packet { packet: Packet::Publish(p), len } => {
//!         assert_eq!(len, n);
//!         assert_eq!(p.topic.as_str(), "sensors/esp32/temp");
//!         assert_eq!(p.payload, b"21.5");
//!         assert_eq!(p.qos_pid, QosPid::AtMostOnce);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every receiver-side check the specifications demand is tagged in the source with its
//! conformance id (e.g. `[MQTT-3.3.2-2]`) and has a test named after it.
#![no_std]
// One reviewed exception, measured: `wire::ascii_at_least` (an ASCII field as `&str` without
// `from_utf8`'s byte loop), compiled only for speed; a build for size has no unsafe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod auth;
mod error;
pub mod journal;
mod packet;
mod properties;
mod qos;
mod reason_code;
mod seq;
pub mod session;
pub mod topic;
mod version;
mod wire;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use error::{DecodeError, EncodeError};
pub use packet::{
    Auth, ConnAck, Connect, Decoded, Disconnect, FixedHeader, Packet, PacketType, PubResponse,
    Publish, RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck,
    Unsubscribe, Will,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, SubscriptionIdentifiers, UnsubscribeProperties,
    UserProperties, WillProperties,
};
pub use qos::{PacketId, QoS, QosPid};
pub use reason_code::ReasonCode;
pub use seq::{Element, Seq, SeqIter};
pub use topic::{TopicError, TopicFilter, TopicName};
pub use version::ProtocolVersion;

/// The largest remaining length a fixed header can express (268,435,455 bytes).
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;
/// `defmt::Format` derives on types with borrowed fields are conditional on their fields: this
/// fails to compile if one of the public types lost its `Format`.
#[cfg(feature = "defmt")]
const _: fn() = || {
    fn format<T: defmt::Format>() {}
    format::<Packet<'static>>();
    format::<Decoded<'static>>();
    format::<DecodeError>();
    format::<EncodeError>();
    format::<session::CommandError>();
    format::<session::ProtocolError>();
    format::<session::EndCause>();
    format::<session::Reconnect>();
    format::<journal::Record<'static>>();
    format::<journal::JournalError>();
    format::<journal::Stop>();
};
