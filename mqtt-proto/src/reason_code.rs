//! MQTT 5.0 reason codes, and the 3.1.1 return codes mapped onto them.

use crate::PacketType;

macro_rules! reason_codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, )*) => {
        /// A reason code: the outcome of an operation, carried by CONNACK, PUBACK, PUBREC, PUBREL,
        /// PUBCOMP, SUBACK, UNSUBACK, DISCONNECT and AUTH in 5.0.
        ///
        /// 3.1.1's CONNACK return codes and SUBACK codes are mapped onto the 5.0 codes with the
        /// same meaning (e.g. return code 4 is [`ReasonCode::BadUserNameOrPassword`]), so one type
        /// serves both versions. Codes that share the value 0x00 (Success, Normal disconnection,
        /// Granted QoS 0) are the single variant [`ReasonCode::Success`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum ReasonCode {
            $( $(#[$doc])* $name = $value, )*
        }

        impl ReasonCode {
            /// The code for a wire value, or `None` for a value 5.0 does not define.
            pub const fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $( $value => Some(Self::$name), )*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    /// 0x00: Success, Normal disconnection, or Granted QoS 0.
    Success = 0x00,
    /// 0x01: Granted QoS 1.
    GrantedQoS1 = 0x01,
    /// 0x02: Granted QoS 2.
    GrantedQoS2 = 0x02,
    /// 0x04: Disconnect with Will Message.
    DisconnectWithWillMessage = 0x04,
    /// 0x10: No matching subscribers.
    NoMatchingSubscribers = 0x10,
    /// 0x11: No subscription existed.
    NoSubscriptionExisted = 0x11,
    /// 0x18: Continue authentication.
    ContinueAuthentication = 0x18,
    /// 0x19: Re-authenticate.
    ReAuthenticate = 0x19,
    /// 0x80: Unspecified error (3.1.1 SUBACK failure).
    UnspecifiedError = 0x80,
    /// 0x81: Malformed Packet.
    MalformedPacket = 0x81,
    /// 0x82: Protocol Error.
    ProtocolError = 0x82,
    /// 0x83: Implementation specific error.
    ImplementationSpecificError = 0x83,
    /// 0x84: Unsupported Protocol Version (3.1.1 return code 1).
    UnsupportedProtocolVersion = 0x84,
    /// 0x85: Client Identifier not valid (3.1.1 return code 2).
    ClientIdentifierNotValid = 0x85,
    /// 0x86: Bad User Name or Password (3.1.1 return code 4).
    BadUserNameOrPassword = 0x86,
    /// 0x87: Not authorized (3.1.1 return code 5).
    NotAuthorized = 0x87,
    /// 0x88: Server unavailable (3.1.1 return code 3).
    ServerUnavailable = 0x88,
    /// 0x89: Server busy.
    ServerBusy = 0x89,
    /// 0x8A: Banned.
    Banned = 0x8A,
    /// 0x8B: Server shutting down.
    ServerShuttingDown = 0x8B,
    /// 0x8C: Bad authentication method.
    BadAuthenticationMethod = 0x8C,
    /// 0x8D: Keep Alive timeout.
    KeepAliveTimeout = 0x8D,
    /// 0x8E: Session taken over.
    SessionTakenOver = 0x8E,
    /// 0x8F: Topic Filter invalid.
    TopicFilterInvalid = 0x8F,
    /// 0x90: Topic Name invalid.
    TopicNameInvalid = 0x90,
    /// 0x91: Packet Identifier in use.
    PacketIdentifierInUse = 0x91,
    /// 0x92: Packet Identifier not found.
    PacketIdentifierNotFound = 0x92,
    /// 0x93: Receive Maximum exceeded.
    ReceiveMaximumExceeded = 0x93,
    /// 0x94: Topic Alias invalid.
    TopicAliasInvalid = 0x94,
    /// 0x95: Packet too large.
    PacketTooLarge = 0x95,
    /// 0x96: Message rate too high.
    MessageRateTooHigh = 0x96,
    /// 0x97: Quota exceeded.
    QuotaExceeded = 0x97,
    /// 0x98: Administrative action.
    AdministrativeAction = 0x98,
    /// 0x99: Payload format invalid.
    PayloadFormatInvalid = 0x99,
    /// 0x9A: Retain not supported.
    RetainNotSupported = 0x9A,
    /// 0x9B: QoS not supported.
    QoSNotSupported = 0x9B,
    /// 0x9C: Use another server.
    UseAnotherServer = 0x9C,
    /// 0x9D: Server moved.
    ServerMoved = 0x9D,
    /// 0x9E: Shared Subscriptions not supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// 0x9F: Connection rate exceeded.
    ConnectionRateExceeded = 0x9F,
    /// 0xA0: Maximum connect time.
    MaximumConnectTime = 0xA0,
    /// 0xA1: Subscription Identifiers not supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// 0xA2: Wildcard Subscriptions not supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether the code reports a failure (0x80 and above).
    pub const fn is_error(self) -> bool {
        self.as_u8() >= 0x80
    }

    /// Whether 5.0 allows this code in a packet of type `packet` (the tables of section 2.4 and
    /// of each packet's variable header). A packet carrying another code is malformed.
    pub const fn is_valid_for(self, packet: PacketType) -> bool {
        use ReasonCode::*;
        match packet {
            PacketType::ConnAck => matches!(
                self,
                Success
                    | UnspecifiedError
                    | MalformedPacket
                    | ProtocolError
                    | ImplementationSpecificError
                    | UnsupportedProtocolVersion
                    | ClientIdentifierNotValid
                    | BadUserNameOrPassword
                    | NotAuthorized
                    | ServerUnavailable
                    | ServerBusy
                    | Banned
                    | BadAuthenticationMethod
                    | TopicNameInvalid
                    | PacketTooLarge
                    | QuotaExceeded
                    | PayloadFormatInvalid
                    | RetainNotSupported
                    | QoSNotSupported
                    | UseAnotherServer
                    | ServerMoved
                    | ConnectionRateExceeded
            ),
            PacketType::PubAck | PacketType::PubRec => matches!(
                self,
                Success
                    | NoMatchingSubscribers
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicNameInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | PayloadFormatInvalid
            ),
            PacketType::PubRel | PacketType::PubComp => {
                matches!(self, Success | PacketIdentifierNotFound)
            }
            PacketType::SubAck => matches!(
                self,
                Success
                    | GrantedQoS1
                    | GrantedQoS2
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | SharedSubscriptionsNotSupported
                    | SubscriptionIdentifiersNotSupported
                    | WildcardSubscriptionsNotSupported
            ),
            PacketType::UnsubAck => matches!(
                self,
                Success
                    | NoSubscriptionExisted
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
            ),
            PacketType::Disconnect => matches!(
                self,
                Success
                    | DisconnectWithWillMessage
                    | UnspecifiedError
                    | MalformedPacket
                    | ProtocolError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | ServerBusy
                    | ServerShuttingDown
                    | KeepAliveTimeout
                    | SessionTakenOver
                    | TopicFilterInvalid
                    | TopicNameInvalid
                    | ReceiveMaximumExceeded
                    | TopicAliasInvalid
                    | PacketTooLarge
                    | MessageRateTooHigh
                    | QuotaExceeded
                    | AdministrativeAction
                    | PayloadFormatInvalid
                    | RetainNotSupported
                    | QoSNotSupported
                    | UseAnotherServer
                    | ServerMoved
                    | SharedSubscriptionsNotSupported
                    | ConnectionRateExceeded
                    | MaximumConnectTime
                    | SubscriptionIdentifiersNotSupported
                    | WildcardSubscriptionsNotSupported
            ),
            PacketType::Auth => matches!(self, Success | ContinueAuthentication | ReAuthenticate),
            _ => false,
        }
    }

    /// The 3.1.1 CONNACK return code for this reason, or `None` where 3.1.1 has no equivalent.
    pub const fn to_v3_connack(self) -> Option<u8> {
        match self {
            Self::Success => Some(0),
            Self::UnsupportedProtocolVersion => Some(1),
            Self::ClientIdentifierNotValid => Some(2),
            Self::ServerUnavailable => Some(3),
            Self::BadUserNameOrPassword => Some(4),
            Self::NotAuthorized => Some(5),
            _ => None,
        }
    }

    /// The reason for a 3.1.1 CONNACK return code, or `None` for the reserved codes 6 to 255.
    pub const fn from_v3_connack(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Success),
            1 => Some(Self::UnsupportedProtocolVersion),
            2 => Some(Self::ClientIdentifierNotValid),
            3 => Some(Self::ServerUnavailable),
            4 => Some(Self::BadUserNameOrPassword),
            5 => Some(Self::NotAuthorized),
            _ => None,
        }
    }

    /// Whether 3.1.1's SUBACK can carry this code (0, 1, 2 and 0x80 only).
    pub const fn is_valid_v3_suback(self) -> bool {
        matches!(
            self,
            Self::Success | Self::GrantedQoS1 | Self::GrantedQoS2 | Self::UnspecifiedError
        )
    }
}

impl core::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self:?} (0x{:02X})", self.as_u8())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_code_round_trips_and_undefined_ones_do_not() {
        let mut defined = 0;
        for v in 0..=255u8 {
            if let Some(code) = ReasonCode::from_u8(v) {
                assert_eq!(code.as_u8(), v);
                defined += 1;
            }
        }
        assert_eq!(defined, 43);
    }

    #[test]
    fn v3_connack_codes_map_both_ways() {
        for code in 0..=5 {
            let reason = ReasonCode::from_v3_connack(code).unwrap();
            assert_eq!(reason.to_v3_connack(), Some(code));
        }
        assert_eq!(ReasonCode::from_v3_connack(6), None);
        assert_eq!(ReasonCode::Banned.to_v3_connack(), None);
    }

    #[test]
    fn validity_per_packet_follows_the_tables() {
        assert!(ReasonCode::PacketIdentifierNotFound.is_valid_for(PacketType::PubRel));
        assert!(!ReasonCode::NoMatchingSubscribers.is_valid_for(PacketType::PubRel));
        assert!(ReasonCode::ReAuthenticate.is_valid_for(PacketType::Auth));
        assert!(!ReasonCode::GrantedQoS1.is_valid_for(PacketType::Disconnect));
        assert!(ReasonCode::KeepAliveTimeout.is_valid_for(PacketType::Disconnect));
        assert!(!ReasonCode::Success.is_valid_for(PacketType::Publish));
    }
}
