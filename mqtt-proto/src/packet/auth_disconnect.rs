//! DISCONNECT and AUTH: bodies made of the 5.0 reason code and properties tail alone.

use super::{reason_tail, Lengths};
use crate::properties::{AuthProperties, DisconnectProperties};
use crate::wire::{self, Write};
use crate::{DecodeError, EncodeError, PacketType, ProtocolVersion, ReasonCode};

/// DISCONNECT: a graceful end of the connection, with a reason in 5.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Disconnect<'a> {
    /// Why (5.0): [`ReasonCode::Success`] is a normal disconnection, which discards the will.
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: DisconnectProperties<'a>,
}

impl Default for Disconnect<'_> {
    fn default() -> Self {
        Self::new(ReasonCode::Success)
    }
}

impl<'a> Disconnect<'a> {
    /// A DISCONNECT with `reason_code` and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }

    pub(crate) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        if !version.v5() {
            return if body.is_empty() {
                Ok(Self::default())
            } else {
                Err(DecodeError::LengthMismatch)
            };
        }
        let (reason_code, properties) =
            wire::finish(reason_tail::decode(body, PacketType::Disconnect))?;
        Ok(Self {
            reason_code,
            properties,
        })
    }

    pub(crate) fn lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
        if !version.v5() {
            reason_tail::check_v3(self.reason_code, &self.properties)?;
            return Ok(Lengths::default());
        }
        let (body, props) =
            reason_tail::lengths(self.reason_code, &self.properties, PacketType::Disconnect)?;
        Ok(Lengths {
            body,
            props,
            extra: 0,
        })
    }

    pub(crate) fn encode_body(&self, w: &mut impl Write, version: ProtocolVersion, lens: Lengths) {
        if version.v5() {
            reason_tail::encode(w, self.reason_code, &self.properties, lens.body, lens.props);
        }
    }
}

/// AUTH (5.0 only): a step of an enhanced authentication or re-authentication exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Auth<'a> {
    /// [`ReasonCode::Success`], [`ReasonCode::ContinueAuthentication`] or
    /// [`ReasonCode::ReAuthenticate`].
    pub reason_code: ReasonCode,
    /// Authentication method, data and diagnostics.
    pub properties: AuthProperties<'a>,
}

impl<'a> Auth<'a> {
    /// One step of the exchange of `method` carrying `data`: a client's answer to a challenge
    /// ([`ReasonCode::ContinueAuthentication`]), the start of a re-authentication
    /// ([`ReasonCode::ReAuthenticate`]), or a broker's challenge. Encoding it on 3.1.1 fails
    /// with [`EncodeError`]: AUTH is 5.0 only.
    pub fn new(reason_code: ReasonCode, method: &'a str, data: &'a [u8]) -> Self {
        Self {
            reason_code,
            properties: AuthProperties {
                authentication_method: Some(method),
                authentication_data: Some(data),
                ..AuthProperties::default()
            },
        }
    }

    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let (reason_code, properties) = wire::finish(reason_tail::decode(body, PacketType::Auth))?;
        Ok(Self {
            reason_code,
            properties,
        })
    }

    pub(crate) fn lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
        if !version.v5() {
            return Err(EncodeError::NotInVersion("AUTH"));
        }
        let (body, props) =
            reason_tail::lengths(self.reason_code, &self.properties, PacketType::Auth)?;
        Ok(Lengths {
            body,
            props,
            extra: 0,
        })
    }

    pub(crate) fn encode_body(&self, w: &mut impl Write, _version: ProtocolVersion, lens: Lengths) {
        reason_tail::encode(w, self.reason_code, &self.properties, lens.body, lens.props);
    }
}
