//! Streamed sending: a PUBLISH whose payload the driver supplies as it goes out, so that a
//! message larger than the transmit buffer (and than the store) can be sent.
//!
//! The log keeps the message's header only (fixed header counting the whole payload, topic,
//! packet identifier, properties), marked as streamed. When it is its turn,
//! [`Session::poll_transmit`] writes the header, then answers with pieces of the payload to
//! fill in ([`Transmit::payload`]), one transmit buffer at a time, before anything else goes
//! out. A QoS 1 or 2 message not acknowledged when the connection ends is resent whole, with
//! DUP, on the next one: the driver is asked for the same bytes again, so its source must
//! be able to read them again.

use super::store::{Entry, Kind, State};
use super::CommandError;
use super::{transmit_fits, Message, Phase, Session, Transmit};
use crate::{EncodeError, FixedHeader, Packet, PacketId, Publish, QoS, QosPid};

/// Largest remaining length of any packet (section 1.5.5).
const MAX_REMAINING: usize = 268_435_455;

/// A piece of a streamed payload that the driver writes into the transmit buffer
/// ([`Transmit::payload`]): `Transmit::len` bytes from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PayloadRequest {
    /// The message, by the packet identifier [`Session::publish_streamed`] returned; `None`
    /// for a QoS 0 message (streamed QoS 0 messages go out in the order they were queued).
    pub packet_id: Option<PacketId>,
    /// Position in the payload of the first byte to write.
    pub offset: usize,
    /// Length of the whole payload.
    pub total_len: usize,
}

impl PayloadRequest {
    /// Whether this piece ends the payload, given its length (`Transmit::len`).
    pub fn is_last(&self, len: usize) -> bool {
        self.offset + len >= self.total_len
    }
}

/// The payload still owed to the wire after a streamed PUBLISH's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owed {
    packet_id: Option<PacketId>,
    offset: usize,
    total: usize,
    /// A QoS 0 message, complete once its last byte is written.
    qos0: bool,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    /// Queues a message whose payload of `payload_len` bytes the driver supplies while it is
    /// transmitted ([`Transmit::payload`]), so that it need fit neither the transmit buffer
    /// nor the store: only its header (topic, packet identifier, properties and up to 5
    /// bytes of fixed header) is kept. `message.payload` is left out.
    ///
    /// QoS 1 and 2 messages are resent whole, with DUP, after a reconnect until
    /// acknowledged: the payload must stay readable, from any offset, until
    /// [`Event::Published`](super::Event::Published) (or
    /// [`Event::PublishAbandoned`](super::Event::PublishAbandoned), which has no message
    /// to lend back for a streamed one). A streamed message queued in 5.0 is dropped
    /// ([`Event::PublishDropped`](super::Event::PublishDropped)) if the session falls back
    /// to 3.1.1 before it goes out. Outgoing topic aliases are not applied to it.
    ///
    /// # Errors
    /// As [`Session::publish`], with the header alone checked against the transmit buffer
    /// and the whole packet against the broker's Maximum Packet Size;
    /// [`CommandError::Encode`] with [`EncodeError::PacketTooLarge`] beyond MQTT's largest
    /// packet (256 MiB).
    pub fn publish_streamed(
        &mut self,
        message: &Message<'_>,
        payload_len: usize,
    ) -> Result<Option<PacketId>, CommandError> {
        self.check_publish(message)?;
        let version = self.version();
        let header = Publish {
            dup: false,
            // A placeholder identifier: the length does not depend on it.
            qos_pid: match message.qos {
                QoS::AtMostOnce => QosPid::AtMostOnce,
                qos => QosPid::new(qos, PacketId::MIN),
            },
            retain: message.retain,
            topic: message.topic,
            properties: message.properties,
            payload: &[],
        };
        let empty_len = Packet::Publish(header).encoded_len(version)?;
        let variable = variable_len(empty_len);
        let remaining = variable + payload_len;
        if remaining > MAX_REMAINING {
            return Err(EncodeError::PacketTooLarge(remaining).into());
        }
        let header_len = 1 + var_int_len(remaining) + variable;
        transmit_fits(self.config.transmit_capacity, header_len)?;
        if self.conn.phase == Phase::Connected {
            self.check_broker_size(header_len + payload_len)?;
        }
        let mark = self.id_mark();
        let pid = match message.qos {
            QoS::AtMostOnce => None,
            _ => Some(self.allocate_packet_id()?),
        };
        let publish = Publish {
            qos_pid: pid.map_or(QosPid::AtMostOnce, |id| QosPid::new(message.qos, id)),
            ..header
        };
        let (kind, pid_raw) = match pid {
            Some(id) => (Kind::Publish, id.get()),
            None => (Kind::Publish0, 0),
        };
        self.reported = None;
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let entry = Entry {
            kind,
            state: State::Unsent,
            pid: pid_raw,
            qos: message.qos,
            v5: version.v5(),
            streamed: true,
        };
        let mut result = Ok(0);
        let appended = self.log.append(region, entry, header_len, |buf| {
            // The header without payload, shifted so that a fixed header counting the
            // payload (as long or longer) replaces its own.
            let shift = header_len - empty_len;
            result = Packet::Publish(publish).encode(version, &mut buf[shift..]);
            if result.is_ok() {
                buf[0] = buf[shift];
                write_var_int(&mut buf[1..], remaining);
            }
        });
        if let Err(e) = appended {
            self.restore_ids(mark);
            return Err(e);
        }
        result?;
        Ok(pid)
    }

    /// After a streamed record's header went out: the payload is owed next.
    pub(super) fn owe_payload(&mut self, header: &[u8], kind: Kind, pid: u16) {
        let total = match FixedHeader::decode(header) {
            Ok(Some(h)) => h.packet_len().saturating_sub(header.len()),
            _ => 0,
        };
        // An empty payload: the header was the whole packet.
        self.conn.owed = (total > 0).then_some(Owed {
            packet_id: PacketId::new(pid),
            offset: 0,
            total,
            qos0: kind == Kind::Publish0,
        });
    }

    /// The next piece of the payload owed: `buf.len()` bytes at most, which the driver fills.
    pub(super) fn transmit_payload(
        &mut self,
        owed: Owed,
        buf: &[u8],
        completes_qos0: &mut bool,
    ) -> Result<usize, EncodeError> {
        let left = owed.total - owed.offset;
        let n = left.min(buf.len());
        if n == 0 {
            // `left` is never 0 (see `owe_payload`): the buffer is empty.
            return Err(EncodeError::BufferTooSmall {
                needed: 1,
                available: buf.len(),
            });
        }
        self.conn.piece = Some(PayloadRequest {
            packet_id: owed.packet_id,
            offset: owed.offset,
            total_len: owed.total,
        });
        if n == left {
            self.conn.owed = None;
            *completes_qos0 = owed.qos0;
        } else {
            self.conn.owed = Some(Owed {
                offset: owed.offset + n,
                ..owed
            });
        }
        Ok(n)
    }

    /// Whether the payload of a streamed PUBLISH is being transmitted: until its last piece,
    /// [`Session::poll_transmit`] hands out nothing else.
    pub fn is_sending_payload(&self) -> bool {
        self.conn.owed.is_some()
    }
}

impl Transmit {
    /// The piece of a streamed payload this transmit asks for, if it is one.
    pub fn payload(&self) -> Option<PayloadRequest> {
        self.payload
    }
}

/// Length of a packet's variable header and payload, from the length of the whole
/// (`1 + var_int_len(n) + n`).
fn variable_len(packet_len: usize) -> usize {
    (1..=4)
        .map(|k| packet_len.saturating_sub(1 + k))
        .find(|&n| 1 + var_int_len(n) + n == packet_len)
        .unwrap_or(0)
}

/// Bytes of a variable byte integer holding `n`.
fn var_int_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `n` as a variable byte integer at the front of `buf` (long enough, as sized by
/// `var_int_len`).
fn write_var_int(buf: &mut [u8], mut n: usize) {
    for b in buf.iter_mut().take(4) {
        let low = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            *b = low;
            return;
        }
        *b = low | 0x80;
    }
}
