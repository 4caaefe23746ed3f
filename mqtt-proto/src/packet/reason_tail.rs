//! The 5.0 tail shared by PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH: a reason code
//! and properties, where "Success without properties" may be left out altogether and
//! properties may be left out after any reason code.

use crate::properties::{self, PropertySet};
use crate::wire::{self, IResult, Write};
use crate::{DecodeError, EncodeError, PacketType, ReasonCode};

/// Parses an optional reason code and optional properties that run to the end of `input`.
pub(crate) fn decode<'a, P: PropertySet<'a>>(
    input: &'a [u8],
    packet_type: PacketType,
) -> IResult<'a, (ReasonCode, P)> {
    if input.is_empty() {
        return Ok((input, (ReasonCode::Success, P::default())));
    }
    let (rest, code) = wire::u8(input)?;
    let Some(reason) = ReasonCode::from_u8(code).filter(|r| r.is_valid_for(packet_type)) else {
        return wire::fail(DecodeError::InvalidReasonCode { packet_type, code });
    };
    if rest.is_empty() {
        return Ok((rest, (reason, P::default())));
    }
    // The property set may be shared with other packets: name this one in the error.
    let (rest, props) =
        properties::decode::<P>(rest).map_err(|e| e.map(|e| e.in_packet(packet_type)))?;
    Ok((rest, (reason, props)))
}

/// Sizes of the tail: (tail length, properties content length).
pub(crate) fn lengths<'a, P: PropertySet<'a>>(
    reason: ReasonCode,
    props: &P,
    packet_type: PacketType,
) -> Result<(usize, usize), EncodeError> {
    if !reason.is_valid_for(packet_type) {
        return Err(EncodeError::InvalidReasonCode(reason));
    }
    let props_len = properties::content_len(props)?;
    let tail = match (props_len, reason) {
        (0, ReasonCode::Success) => 0,
        (0, _) => 1,
        (n, _) => 1 + properties::block_len(n),
    };
    Ok((tail, props_len))
}

/// Writes the tail measured by [`lengths`].
pub(crate) fn encode<'a, P: PropertySet<'a>>(
    w: &mut impl Write,
    reason: ReasonCode,
    props: &P,
    tail: usize,
    props_len: usize,
) {
    if tail == 0 {
        return;
    }
    w.put_u8(reason.as_u8());
    if tail > 1 {
        properties::encode(props, props_len, w);
    }
}

/// Refuses content that 3.1.1 cannot carry: a failure reason code or properties.
pub(crate) fn check_v3<'a, P: PropertySet<'a>>(
    reason: ReasonCode,
    props: &P,
) -> Result<(), EncodeError> {
    if reason != ReasonCode::Success {
        return Err(EncodeError::NotInVersion("reason codes"));
    }
    if !props.is_empty() {
        return Err(EncodeError::NotInVersion("properties"));
    }
    Ok(())
}
