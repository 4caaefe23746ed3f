//! Packets: the fixed header, the [`Packet`] enum, and one module per packet family. Every
//! module serves all three protocol versions, taking the version as a parameter.

mod auth_disconnect;
mod connack;
mod connect;
mod fixed_header;
mod pub_response;
mod publish;
mod reason_tail;
mod suback;
mod subscribe;
mod unsubscribe;

use core::num::NonZeroUsize;

pub use auth_disconnect::{Auth, Disconnect};
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use fixed_header::{FixedHeader, PacketType};
pub use pub_response::PubResponse;
pub use publish::Publish;
pub use suback::{SubAck, UnsubAck};
pub use subscribe::{RetainHandling, Subscribe, Subscription, SubscriptionOptions};
pub use unsubscribe::Unsubscribe;

use crate::wire::{SliceWriter, Write};
use crate::{DecodeError, EncodeError, ProtocolVersion, MAX_REMAINING_LENGTH};

/// Any MQTT control packet, borrowing its strings and payloads from the bytes it was decoded
/// from (or from the caller, when built for sending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Packet<'a> {
    /// Client request to connect.
    Connect(Connect<'a>),
    /// Connect acknowledgement.
    ConnAck(ConnAck<'a>),
    /// Application message.
    Publish(Publish<'a>),
    /// QoS 1 acknowledgement.
    PubAck(PubResponse<'a>),
    /// QoS 2 delivery, part 1.
    PubRec(PubResponse<'a>),
    /// QoS 2 delivery, part 2.
    PubRel(PubResponse<'a>),
    /// QoS 2 delivery, part 3.
    PubComp(PubResponse<'a>),
    /// Subscribe request.
    Subscribe(Subscribe<'a>),
    /// Subscribe acknowledgement.
    SubAck(SubAck<'a>),
    /// Unsubscribe request.
    Unsubscribe(Unsubscribe<'a>),
    /// Unsubscribe acknowledgement.
    UnsubAck(UnsubAck<'a>),
    /// Keepalive request.
    PingReq,
    /// Keepalive response.
    PingResp,
    /// Disconnect notification.
    Disconnect(Disconnect<'a>),
    /// 5.0 authentication exchange.
    Auth(Auth<'a>),
}

/// Outcome of [`Packet::decode`] on a buffer that may hold a partial packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
// The packet is returned by value on purpose: boxing it would allocate, which this crate never does.
#[allow(clippy::large_enum_variant)]
pub enum Decoded<'a> {
    /// A whole packet, and how many bytes of the buffer it used.
    Packet {
        /// The packet.
        packet: Packet<'a>,
        /// Bytes consumed from the front of the buffer.
        len: usize,
    },
    /// The buffer holds the start of a packet only. `needed` is how many more bytes the packet
    /// takes, once the fixed header is complete; `None` while the header itself is cut.
    Incomplete {
        /// Bytes still missing, when known.
        needed: Option<NonZeroUsize>,
    },
}

impl<'a> Packet<'a> {
    /// Decodes the packet at the front of `buf`, as spoken by `version` (CONNECT carries its
    /// own version and is decoded whatever `version` says).
    ///
    /// A packet whose fixed header announces more than `max_packet_size` bytes is refused as
    /// soon as the header is read, before its body arrives.
    ///
    /// # Errors
    /// [`DecodeError`] for malformed packets and protocol violations that the bytes alone
    /// show; the connection must then be closed.
    #[inline]
    pub fn decode(
        buf: &'a [u8],
        version: ProtocolVersion,
        max_packet_size: u32,
    ) -> Result<Decoded<'a>, DecodeError> {
        if !version.is_built() {
            return Err(DecodeError::FeatureDisabled("v5"));
        }
        let Some(header) = FixedHeader::decode(buf)? else {
            return Ok(Decoded::Incomplete { needed: None });
        };
        header.check(version)?;
        let len = header.packet_len();
        if len > max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                // packet_len is at most 268,435,460 and fits.
                size: len as u32,
                max: max_packet_size,
            });
        }
        let Some(body) = buf.get(usize::from(header.header_len)..len) else {
            return Ok(Decoded::Incomplete {
                needed: NonZeroUsize::new(len - buf.len()),
            });
        };
        Self::decode_body_into(header, body, version, |packet| {
            Ok(Decoded::Packet { packet, len })
        })
    }

    /// Decodes a body that `header` has delimited.
    ///
    /// # Errors
    /// As [`Packet::decode`].
    #[inline]
    pub fn decode_body(
        header: FixedHeader,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        if !version.is_built() {
            return Err(DecodeError::FeatureDisabled("v5"));
        }
        Self::decode_body_into(header, body, version, Ok)
    }

    /// [`Packet::decode_body`], handing the packet to `wrap` inside each arm so that the caller's
    /// result is built in place: joining the arms into one `Packet` first and wrapping it after
    /// costs a copy of the largest variant (272 bytes) on every packet, PINGREQ included.
    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    fn decode_body_into<R>(
        header: FixedHeader,
        body: &'a [u8],
        version: ProtocolVersion,
        wrap: impl FnOnce(Self) -> Result<R, DecodeError>,
    ) -> Result<R, DecodeError> {
        #[cfg(mqtt_sansio_small)]
        return wrap(Self::decode_any(header, body, version)?);
        #[cfg(not(mqtt_sansio_small))]
        {
            use PacketType as T;
            match header.packet_type {
                // Only a server receives CONNECT (feature `server`).
                T::Connect if cfg!(feature = "server") => {
                    wrap(Self::Connect(Connect::decode(body)?))
                }
                T::Connect => Err(DecodeError::FeatureDisabled("server")),
                T::ConnAck => wrap(Self::ConnAck(ConnAck::decode(body, version)?)),
                T::Publish => wrap(Self::Publish(Publish::decode(header.flags, body, version)?)),
                T::PubAck => wrap(Self::PubAck(PubResponse::decode(T::PubAck, body, version)?)),
                T::PubRec => wrap(Self::PubRec(PubResponse::decode(T::PubRec, body, version)?)),
                T::PubRel => wrap(Self::PubRel(PubResponse::decode(T::PubRel, body, version)?)),
                T::PubComp => wrap(Self::PubComp(PubResponse::decode(
                    T::PubComp,
                    body,
                    version,
                )?)),
                T::Subscribe => wrap(Self::Subscribe(Subscribe::decode(body, version)?)),
                T::SubAck => wrap(Self::SubAck(SubAck::decode(body, version)?)),
                T::Unsubscribe => wrap(Self::Unsubscribe(Unsubscribe::decode(body, version)?)),
                T::UnsubAck => wrap(Self::UnsubAck(UnsubAck::decode(body, version)?)),
                T::PingReq if body.is_empty() => wrap(Self::PingReq),
                T::PingResp if body.is_empty() => wrap(Self::PingResp),
                T::PingReq | T::PingResp => Err(DecodeError::LengthMismatch),
                T::Disconnect => wrap(Self::Disconnect(Disconnect::decode(body, version)?)),
                T::Auth => {
                    // Packet type 15 is reserved before 5.0 (3.1.1 Table 2.1; no conformance id)
                    if !version.v5() {
                        return Err(DecodeError::ReservedPacketType(15));
                    }
                    wrap(Self::Auth(Auth::decode(body)?))
                }
            }
        }
    }

    /// [`Packet::decode_body_into`] compiled for size: every arm makes a `Packet`, and one
    /// error path and one `wrap` follow, at the price of a copy of the packet.
    #[cfg(mqtt_sansio_small)]
    #[inline(never)]
    fn decode_any(
        header: FixedHeader,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        use PacketType as T;
        let response = |t| PubResponse::decode(t, body, version);
        match header.packet_type {
            // Only a server receives CONNECT (feature `server`).
            T::Connect if cfg!(feature = "server") => Connect::decode(body).map(Self::Connect),
            T::Connect => Err(DecodeError::FeatureDisabled("server")),
            T::ConnAck => ConnAck::decode(body, version).map(Self::ConnAck),
            T::Publish => Publish::decode(header.flags, body, version).map(Self::Publish),
            T::PubAck => response(T::PubAck).map(Self::PubAck),
            T::PubRec => response(T::PubRec).map(Self::PubRec),
            T::PubRel => response(T::PubRel).map(Self::PubRel),
            T::PubComp => response(T::PubComp).map(Self::PubComp),
            T::Subscribe => Subscribe::decode(body, version).map(Self::Subscribe),
            T::SubAck => SubAck::decode(body, version).map(Self::SubAck),
            T::Unsubscribe => Unsubscribe::decode(body, version).map(Self::Unsubscribe),
            T::UnsubAck => UnsubAck::decode(body, version).map(Self::UnsubAck),
            T::PingReq if body.is_empty() => Ok(Self::PingReq),
            T::PingResp if body.is_empty() => Ok(Self::PingResp),
            T::PingReq | T::PingResp => Err(DecodeError::LengthMismatch),
            T::Disconnect => Disconnect::decode(body, version).map(Self::Disconnect),
            // Packet type 15 is reserved before 5.0 (3.1.1 Table 2.1; no conformance id)
            T::Auth if !version.v5() => Err(DecodeError::ReservedPacketType(15)),
            T::Auth => Auth::decode(body).map(Self::Auth),
        }
    }

    /// The packet's type.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// The size of the encoded packet, fixed header included.
    ///
    /// # Errors
    /// [`EncodeError`] when the packet cannot be encoded for `version`.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        self.plan(version).map(|plan| plan.total)
    }

    /// Encodes the packet for `version` at the front of `buf` and returns its length. A CONNECT
    /// is encoded for the version it names.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when `buf` is shorter than [`Packet::encoded_len`], or
    /// another [`EncodeError`] when the packet cannot be encoded; nothing is written then.
    #[cfg_attr(not(mqtt_sansio_small), inline)]
    pub fn encode(&self, version: ProtocolVersion, buf: &mut [u8]) -> Result<usize, EncodeError> {
        // The packets sent most often get an encoder of their own, out of line, so that this
        // is a jump to it: no registers saved for the other arms, no three dispatches of the
        // general path. Compiled for size, every packet takes the general path: one copy of
        // each encoder.
        #[cfg(not(mqtt_sansio_small))]
        match self {
            Self::Publish(p) if version.is_built() => return p.encode_packet(version, buf),
            Self::PubAck(p) if version.is_built() => {
                return p.encode_packet(PacketType::PubAck, version, buf);
            }
            Self::PubRec(p) if version.is_built() => {
                return p.encode_packet(PacketType::PubRec, version, buf);
            }
            Self::PubRel(p) if version.is_built() => {
                return p.encode_packet(PacketType::PubRel, version, buf);
            }
            Self::PubComp(p) if version.is_built() => {
                return p.encode_packet(PacketType::PubComp, version, buf);
            }
            Self::PingReq | Self::PingResp if version.is_built() => {
                return encode_empty(self.packet_type(), buf);
            }
            Self::Connect(p) if p.protocol.is_built() => return p.encode_packet(buf),
            _ => {}
        }
        self.check_built(version)?;
        self.encode_general(version, buf)
    }

    /// The general path of [`Packet::encode`], kept out of line so the hot arms above stay small.
    #[inline(never)]
    fn encode_general(
        &self,
        version: ProtocolVersion,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let plan = self.plan(version)?;
        if buf.len() < plan.total {
            return Err(EncodeError::BufferTooSmall {
                needed: plan.total,
                available: buf.len(),
            });
        }
        let mut w = SliceWriter::new(buf);
        self.write(&mut w, version, plan);
        if w.overflow || w.position() != plan.total {
            // Unreachable unless a length computation is wrong; reported rather than panicking.
            return Err(EncodeError::BufferTooSmall {
                needed: w.position().max(plan.total),
                available: plan.total,
            });
        }
        Ok(plan.total)
    }

    /// Encodes the packet into any [`bytes::BufMut`], such as a `BytesMut` that grows.
    ///
    /// # Errors
    /// As [`Packet::encode`], with `BufferTooSmall` when `buf.remaining_mut()` is too small.
    #[cfg(feature = "bytes")]
    pub fn encode_buf<B: bytes::BufMut>(
        &self,
        version: ProtocolVersion,
        buf: &mut B,
    ) -> Result<usize, EncodeError> {
        let plan = self.plan(version)?;
        if buf.remaining_mut() < plan.total {
            return Err(EncodeError::BufferTooSmall {
                needed: plan.total,
                available: buf.remaining_mut(),
            });
        }
        self.write(&mut crate::wire::BufMutWriter(buf), version, plan);
        Ok(plan.total)
    }

    /// Refuses a packet this build cannot encode: any for 5.0 (or a CONNECT naming 5.0) without
    /// the `v5` feature.
    #[inline]
    fn check_built(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        let version = match self {
            Self::Connect(c) => c.protocol,
            _ => version,
        };
        if version.is_built() {
            Ok(())
        } else {
            Err(EncodeError::FeatureDisabled("v5"))
        }
    }

    fn plan(&self, version: ProtocolVersion) -> Result<Plan, EncodeError> {
        self.check_built(version)?;
        let lens = match self {
            Self::ConnAck(_) | Self::SubAck(_) | Self::UnsubAck(_) if !cfg!(feature = "server") => {
                return Err(EncodeError::FeatureDisabled("server"));
            }
            Self::Connect(p) => p.lengths()?,
            Self::ConnAck(p) => p.lengths(version)?,
            Self::Publish(p) => p.lengths(version)?,
            Self::PubAck(p) | Self::PubRec(p) | Self::PubRel(p) | Self::PubComp(p) => {
                p.lengths(self.packet_type(), version)?
            }
            Self::Subscribe(p) => p.lengths(version)?,
            Self::SubAck(p) => p.lengths(version)?,
            Self::Unsubscribe(p) => p.lengths(version)?,
            Self::UnsubAck(p) => p.lengths(version)?,
            Self::PingReq | Self::PingResp => Lengths::default(),
            Self::Disconnect(p) => p.lengths(version)?,
            Self::Auth(p) => p.lengths(version)?,
        };
        if lens.body > MAX_REMAINING_LENGTH as usize {
            return Err(EncodeError::PacketTooLarge(lens.body));
        }
        let total = 1 + crate::wire::var_int_len(lens.body) + lens.body;
        Ok(Plan { lens, total })
    }

    fn write(&self, w: &mut impl Write, version: ProtocolVersion, plan: Plan) {
        let flags = match self {
            Self::Publish(p) => p.header_flags(),
            _ => self.packet_type().fixed_flags(),
        };
        w.put_u8(((self.packet_type() as u8) << 4) | flags);
        w.put_var_int(plan.lens.body);
        let lens = plan.lens;
        match self {
            Self::Connect(p) => p.encode_body(w, lens),
            // `plan` refused the packets only a server sends unless the feature is on.
            Self::ConnAck(p) if cfg!(feature = "server") => p.encode_body(w, version, lens),
            Self::Publish(p) => p.encode_body(w, version, lens),
            Self::PubAck(p) | Self::PubRec(p) | Self::PubRel(p) | Self::PubComp(p) => {
                p.encode_body(w, version, lens)
            }
            Self::Subscribe(p) => p.encode_body(w, version, lens),
            Self::SubAck(p) if cfg!(feature = "server") => p.encode_body(w, version, lens),
            Self::Unsubscribe(p) => p.encode_body(w, version, lens),
            Self::UnsubAck(p) if cfg!(feature = "server") => p.encode_body(w, version, lens),
            Self::ConnAck(_)
            | Self::SubAck(_)
            | Self::UnsubAck(_)
            | Self::PingReq
            | Self::PingResp => {}
            Self::Disconnect(p) => p.encode_body(w, version, lens),
            // `plan` refused AUTH before 5.0, and a build without `v5` has no 5.0.
            Self::Auth(p) if cfg!(feature = "v5") => p.encode_body(w, version, lens),
            Self::Auth(_) => {}
        }
    }
}

/// A packet of `N` bytes written at the front of `buf` in one store, or `BufferTooSmall`.
#[cfg(not(mqtt_sansio_small))]
#[inline(always)]
fn emit_fixed<const N: usize>(buf: &mut [u8], bytes: [u8; N]) -> Result<usize, EncodeError> {
    match buf.first_chunk_mut::<N>() {
        Some(out) => {
            *out = bytes;
            Ok(N)
        }
        None => Err(EncodeError::BufferTooSmall {
            needed: N,
            available: buf.len(),
        }),
    }
}

/// PINGREQ or PINGRESP: a fixed header with nothing after it.
#[cfg(not(mqtt_sansio_small))]
#[inline(never)]
fn encode_empty(packet_type: PacketType, buf: &mut [u8]) -> Result<usize, EncodeError> {
    emit_fixed(buf, [(packet_type as u8) << 4, 0])
}

/// Writes one packet whose body `lens` measured: the fixed header, then `body`.
#[cfg(not(mqtt_sansio_small))]
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
fn emit(
    buf: &mut [u8],
    packet_type: PacketType,
    flags: u8,
    lens: Lengths,
    body: impl FnOnce(&mut SliceWriter<'_>, Lengths),
) -> Result<usize, EncodeError> {
    if lens.body > MAX_REMAINING_LENGTH as usize {
        return Err(EncodeError::PacketTooLarge(lens.body));
    }
    let total = 1 + crate::wire::var_int_len(lens.body) + lens.body;
    let available = buf.len();
    let Some(buf) = buf.get_mut(..total) else {
        return Err(EncodeError::BufferTooSmall {
            needed: total,
            available,
        });
    };
    let mut w = SliceWriter::new(buf);
    w.put_u8(((packet_type as u8) << 4) | flags);
    w.put_var_int(lens.body);
    body(&mut w, lens);
    if w.overflow || w.position() != total {
        // Unreachable unless a length computation is wrong; reported rather than panicking.
        return Err(EncodeError::BufferTooSmall {
            needed: w.position().max(total),
            available: total,
        });
    }
    Ok(total)
}

/// Sizes computed (and validated) before writing, so writing never fails and properties are
/// measured once.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lengths {
    /// The remaining length.
    pub(crate) body: usize,
    /// Content length of the packet's properties (5.0), without its prefix.
    pub(crate) props: usize,
    /// Content length of a second property block (CONNECT's will properties).
    pub(crate) extra: usize,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    lens: Lengths,
    total: usize,
}
