//! Where the payload of a streamed message comes from.

use mqtt_sansio::PacketId;

/// Supplies the payloads of streamed messages ([`Client::publish_streamed`](crate::Client::publish_streamed))
/// while they are transmitted, a transmit buffer at a time: a file, a flash partition, a
/// generator. Set one with [`Client::set_payload_source`](crate::Client::set_payload_source).
///
/// A QoS 1 or 2 message is resent whole, from offset 0, when a connection ends before the
/// broker acknowledged it: the source must be able to give the same bytes again, from any
/// offset, until [`Event::Published`](crate::Event::Published) (or
/// [`Event::Deleted`](crate::Event::Deleted)) reports the message done. A closure
/// `FnMut(Option<PacketId>, usize, &mut [u8]) -> usize` is a source.
pub trait PayloadSource {
    /// Writes bytes of the payload of message `packet_id` (as
    /// [`Client::publish_streamed`](crate::Client::publish_streamed) returned it; `None` for
    /// QoS 0 messages, which are sent in the order they were queued) from `offset` into
    /// `buf`, and returns how many: `buf.len()`, or fewer, in which case it is asked again
    /// for the rest. Returning 0 fails the message ([`Error::PayloadSource`](crate::Error::PayloadSource))
    /// and ends the connection.
    fn read(&mut self, packet_id: Option<PacketId>, offset: usize, buf: &mut [u8]) -> usize;
}

impl<F: FnMut(Option<PacketId>, usize, &mut [u8]) -> usize> PayloadSource for F {
    fn read(&mut self, packet_id: Option<PacketId>, offset: usize, buf: &mut [u8]) -> usize {
        self(packet_id, offset, buf)
    }
}

/// Fills `buf` from `source` at `offset` of message `packet_id`; false when the source has
/// no bytes.
pub(crate) fn fill(
    source: &mut (dyn PayloadSource + Send),
    packet_id: Option<PacketId>,
    offset: usize,
    buf: &mut [u8],
) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        let n = source.read(packet_id, offset + filled, &mut buf[filled..]);
        if n == 0 {
            return false;
        }
        filled += n.min(buf.len() - filled);
    }
    true
}
