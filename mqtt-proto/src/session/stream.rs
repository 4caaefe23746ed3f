//! Streamed reception: a PUBLISH larger than the driver's receive buffer
//! ([`SessionConfig::receive_capacity`](super::SessionConfig::receive_capacity)) but within
//! our Maximum Packet Size is handed to the application in chunks.
//!
//! The driver keeps the packet's header (fixed header, topic, packet identifier, properties)
//! at the front of its input while the payload passes behind it, so every chunk's event can
//! borrow the topic and properties with no copy and no allocation. The session parses the
//! header once when the packet starts ([`Read::Stream`]), decodes it again (cheaply, without
//! the payload) for each chunk ([`Read::Chunk`]), and does the QoS bookkeeping only once the
//! last payload byte was handed over: a message interrupted by a lost connection was never
//! acknowledged, so the broker sends it again, from the first byte.

use super::incoming::{self, InState};
use super::read::Outcome;
use super::{Event, Instant, Phase, ProtocolError, Read, Session};
use crate::{DecodeError, FixedHeader, PacketId, PacketType, Publish, QoS, QosPid, ReasonCode};

/// A PUBLISH being received in chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stream {
    /// Bytes of fixed and variable header, which the driver keeps at the front of its input.
    header_len: usize,
    /// Payload bytes in all.
    total: usize,
    /// Payload bytes handed over so far.
    passed: usize,
    /// Chunks are reported (false for a QoS 2 message delivered before, or one the incoming
    /// table has no room for).
    deliver: bool,
    /// What to do once the last byte passed.
    finish: Finish,
}

/// The QoS bookkeeping of a streamed message, done after its last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// QoS 0, or a QoS 2 message left with the broker (no room to track it): nothing.
    Nothing,
    /// QoS 1: PUBACK (unless acks are manual).
    PubAck(PacketId),
    /// QoS 2 delivered now: track it and PUBREC (unless acks are manual).
    Track(PacketId),
    /// QoS 2 delivered before and awaiting PUBREL: PUBREC again.
    PubRecAgain(PacketId),
}

/// A chunk of a streamed message ([`Event::MessageChunk`]): the message's header with this
/// chunk as its payload, and where the chunk lies in the whole payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chunk<'a> {
    /// The message: topic, QoS and packet identifier, DUP and RETAIN flags and 5.0
    /// properties, the same in every chunk; `payload` holds this chunk's bytes only.
    pub message: Publish<'a>,
    /// Position of this chunk's first byte in the whole payload.
    pub offset: usize,
    /// Length of the whole payload.
    pub total_len: usize,
}

impl Chunk<'_> {
    /// Whether this chunk ends the payload. A message is acknowledged (per its QoS) only
    /// after its last chunk; one cut short by a lost connection starts again at offset 0
    /// when the broker sends it again.
    pub fn is_last(&self) -> bool {
        self.offset + self.message.payload.len() >= self.total_len
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    /// Starts streaming the PUBLISH at the front of `buf` if it is one that must be
    /// streamed: larger than the receive capacity, within our maximum packet size. `None`
    /// for any other packet (decoded whole as usual).
    pub(super) fn start_stream(
        &mut self,
        now: Instant,
        buf: &[u8],
    ) -> Option<Result<Read<'static>, ProtocolError>> {
        let capacity = self.config.receive_capacity;
        if !cfg!(feature = "receive-streaming")
            || capacity == 0
            || self.conn.phase != Phase::Connected
        {
            return None;
        }
        let fixed = match FixedHeader::decode(buf) {
            Ok(Some(h)) if h.packet_type == PacketType::Publish => h,
            // Errors and other packets go the usual way, which reports them.
            _ => return None,
        };
        let size = fixed.packet_len();
        if size <= capacity || size > self.config.maximum_packet_size as usize {
            return None;
        }
        if let Err(e) = fixed.check(self.version()) {
            return Some(Err(self.fail(ProtocolError::Decode(e))));
        }
        let header_len = match publish_header_len(buf, &fixed, self.version().v5()) {
            Ok(Some(len)) if len < capacity => len,
            // The header (and one payload byte) cannot fit the driver's buffer: the message
            // cannot be delivered at all.
            Ok(Some(_)) => return Some(self.skip_oversized(now, buf, size as u32)),
            Ok(None) if buf.len() >= capacity => {
                return Some(self.skip_oversized(now, buf, size as u32))
            }
            Ok(None) => return Some(Ok(Read::Incomplete { needed: None })),
            Err(e) => return Some(Err(self.fail(ProtocolError::Decode(e)))),
        };
        let Some(header) = buf.get(..header_len) else {
            return Some(Ok(Read::Incomplete {
                needed: core::num::NonZeroUsize::new(header_len - buf.len()),
            }));
        };
        let publish = match decode_header(header, &fixed, self.version()) {
            Ok(p) => p,
            Err(e) => return Some(Err(self.fail(ProtocolError::Decode(e)))),
        };
        self.conn.last_rx = now;
        if let Err(e) = self.take_alias(&publish) {
            return Some(Err(self.fail(e)));
        }
        let (deliver, finish) = self.stream_plan(&publish);
        self.stream = Some(Stream {
            header_len,
            total: size - header_len,
            passed: 0,
            deliver,
            finish,
        });
        Some(Ok(Read::Stream {
            header_len,
            payload_len: size - header_len,
        }))
    }

    /// Whether a streamed message is delivered, and what its last byte triggers: the same
    /// decisions as for a whole PUBLISH, taken up front, with the table changed only at
    /// the end.
    fn stream_plan(&mut self, p: &Publish<'_>) -> (bool, Finish) {
        match p.qos_pid {
            QosPid::AtMostOnce => (true, Finish::Nothing),
            QosPid::AtLeastOnce(pid) => (true, Finish::PubAck(pid)),
            QosPid::ExactlyOnce(pid) => {
                let region = super::store_region(&self.store, &self.layout.incoming());
                match self.incoming.find(region, pid.get()) {
                    // Delivered before (its PUBREC was lost): acknowledged again, not
                    // delivered twice.
                    Some((_, InState::AwaitingRel, _)) => (false, Finish::PubRecAgain(pid)),
                    // Delivered before and waiting for the application's ack.
                    Some(_) => (false, Finish::Nothing),
                    None if self.incoming.len()
                        >= self.layout.incoming().len() / incoming::ENTRY =>
                    {
                        // No room to remember it: leave it with the broker.
                        self.report_overrun(true);
                        (false, Finish::Nothing)
                    }
                    None => (true, Finish::Track(pid)),
                }
            }
        }
    }

    /// Hands over the payload bytes that follow the header in `buf` (the header the last
    /// [`Read::Stream`] named, then the payload received since).
    pub(super) fn read_chunk<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a [u8],
        stream: Stream,
    ) -> Result<Read<'a>, ProtocolError> {
        let left = stream.total - stream.passed;
        let available = buf.len().saturating_sub(stream.header_len);
        let len = available.min(left);
        if len == 0 {
            return Ok(Read::Incomplete {
                needed: core::num::NonZeroUsize::new(
                    stream.header_len + 1 - buf.len().min(stream.header_len),
                ),
            });
        }
        self.conn.last_rx = now;
        let offset = stream.passed;
        let last = len == left;
        if last {
            self.stream = None;
            self.finish_stream(stream.finish);
        } else if let Some(s) = &mut self.stream {
            s.passed += len;
        }
        self.last_read = if stream.deliver {
            Outcome::Chunk {
                header_len: stream.header_len,
                offset,
                len,
                total: stream.total,
            }
        } else {
            Outcome::Silent
        };
        let this: &'a Self = self;
        let event = match this.last_read {
            Outcome::Chunk { .. } => this.chunk_event(&buf[..stream.header_len + len]),
            _ => None,
        };
        Ok(Read::Chunk { len, last, event })
    }

    /// The QoS bookkeeping once a streamed message's last byte was handed over.
    fn finish_stream(&mut self, finish: Finish) {
        let manual = self.config.manual_acks;
        match finish {
            Finish::Nothing => {}
            Finish::PubAck(pid) => {
                if !manual {
                    self.queue_ack(PacketType::PubAck, pid, ReasonCode::Success);
                }
            }
            Finish::PubRecAgain(pid) => {
                self.queue_ack(PacketType::PubRec, pid, ReasonCode::Success);
            }
            Finish::Track(pid) => {
                if self.incoming.len() >= usize::from(self.config.receive_maximum) {
                    self.report_overrun(false);
                }
                let state = if manual {
                    InState::AwaitingApp
                } else {
                    InState::AwaitingRel
                };
                let region = super::store_region_mut(&mut self.store, &self.layout.incoming());
                // `stream_plan` saw room, and nothing else was inserted while the payload
                // passed (the broker's packets cannot interleave with it).
                if self
                    .incoming
                    .insert(region, pid.get(), state, QoS::ExactlyOnce)
                    && !manual
                {
                    self.queue_ack(PacketType::PubRec, pid, ReasonCode::Success);
                }
            }
        }
    }

    /// The event of the last chunk, from the header followed by the chunk's bytes; also for
    /// [`Session::event`](super::Session::event).
    pub(super) fn chunk_event<'s>(&'s self, bytes: &'s [u8]) -> Option<Event<'s>> {
        if !cfg!(feature = "receive-streaming") {
            return None;
        }
        let Outcome::Chunk {
            header_len,
            offset,
            total,
            len,
        } = self.last_read
        else {
            return None;
        };
        let fixed = FixedHeader::decode(bytes).ok()??;
        let header = bytes.get(..header_len)?;
        let payload = bytes.get(header_len..header_len + len)?;
        let mut message = decode_header(header, &fixed, self.version()).ok()?;
        message.payload = payload;
        self.resolve_alias(&mut message);
        Some(Event::MessageChunk(Chunk {
            message,
            offset,
            total_len: total,
        }))
    }

    /// Whether a streamed message is being received: its header stays at the front of the
    /// input until [`Read::Chunk`] says `last`.
    pub fn is_streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// Forgets a message cut short by the end of the transport; it was not acknowledged.
    pub(super) fn drop_stream(&mut self) {
        self.stream = None;
    }
}

/// Length of a PUBLISH's fixed and variable header at the front of `buf`, `None` while
/// `buf` ends inside it.
///
/// # Errors
/// The header runs past the packet ([`DecodeError::LengthMismatch`]) or its property length
/// is over four bytes.
fn publish_header_len(
    buf: &[u8],
    fixed: &FixedHeader,
    v5: bool,
) -> Result<Option<usize>, DecodeError> {
    let start = usize::from(fixed.header_len);
    let Some(b) = buf.get(start..start + 2) else {
        return Ok(None);
    };
    let qos_bytes = if (fixed.flags >> 1) & 3 == 0 { 0 } else { 2 };
    let mut end = start + 2 + usize::from(u16::from_be_bytes([b[0], b[1]])) + qos_bytes;
    if v5 {
        let mut value = 0usize;
        let mut done = false;
        for i in 0..4 {
            let Some(&byte) = buf.get(end + i) else {
                return if end + i >= fixed.packet_len() {
                    Err(DecodeError::LengthMismatch)
                } else {
                    Ok(None)
                };
            };
            value |= usize::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                end += i + 1 + value;
                done = true;
                break;
            }
        }
        if !done {
            return Err(DecodeError::VarIntTooLong);
        }
    }
    if end > fixed.packet_len() {
        return Err(DecodeError::LengthMismatch);
    }
    Ok(Some(end))
}

/// Decodes a PUBLISH's header (`header_len` bytes from the fixed header on) as a PUBLISH with
/// an empty payload.
fn decode_header<'h>(
    header: &'h [u8],
    fixed: &FixedHeader,
    version: crate::ProtocolVersion,
) -> Result<Publish<'h>, DecodeError> {
    let body = header
        .get(usize::from(fixed.header_len)..)
        .ok_or(DecodeError::LengthMismatch)?;
    // `start_stream` only streams a PUBLISH.
    Publish::decode(fixed.flags, body, version)
}
