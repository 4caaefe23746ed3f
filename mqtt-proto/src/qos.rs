//! Quality of service levels and packet identifiers.

use core::num::NonZeroU16;

/// Delivery guarantee of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: delivered at most once, no acknowledgement.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: delivered at least once, acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: delivered exactly once, by the PUBREC / PUBREL / PUBCOMP exchange.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for its wire value, or `None` for 3 and above (a malformed packet).
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }
}

/// A packet identifier: never zero, as [MQTT-2.2.1-3] requires where one is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The first identifier a fresh session hands out.
    pub const MIN: Self = Self(NonZeroU16::MIN);

    /// The identifier for `value`, or `None` for zero.
    pub const fn new(value: u16) -> Option<Self> {
        match NonZeroU16::new(value) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// The wire value.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The identifier after this one, wrapping from 65,535 to 1.
    pub const fn next(self) -> Self {
        match self.0.checked_add(1) {
            Some(v) => Self(v),
            None => Self::MIN,
        }
    }
}

impl From<PacketId> for u16 {
    fn from(id: PacketId) -> u16 {
        id.get()
    }
}

/// A PUBLISH's QoS together with the packet identifier that QoS 1 and 2 require and QoS 0 forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QosPid {
    /// QoS 0 has no packet identifier [MQTT-2.2.1-2].
    #[default]
    AtMostOnce,
    /// QoS 1 with its packet identifier.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet identifier.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// Pairs `qos` with `id`; the id is ignored for QoS 0.
    pub const fn new(qos: QoS, id: PacketId) -> Self {
        match qos {
            QoS::AtMostOnce => Self::AtMostOnce,
            QoS::AtLeastOnce => Self::AtLeastOnce(id),
            QoS::ExactlyOnce => Self::ExactlyOnce(id),
        }
    }

    /// The QoS level.
    pub const fn qos(self) -> QoS {
        match self {
            Self::AtMostOnce => QoS::AtMostOnce,
            Self::AtLeastOnce(_) => QoS::AtLeastOnce,
            Self::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, `None` for QoS 0.
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            Self::AtMostOnce => None,
            Self::AtLeastOnce(id) | Self::ExactlyOnce(id) => Some(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_id_wraps_past_65535_to_1() {
        let last = PacketId::new(u16::MAX).unwrap();
        assert_eq!(last.next(), PacketId::MIN);
        assert_eq!(PacketId::MIN.next().get(), 2);
        assert_eq!(PacketId::new(0), None);
    }

    #[test]
    fn qos_from_u8_rejects_3() {
        assert_eq!(QoS::from_u8(2), Some(QoS::ExactlyOnce));
        assert_eq!(QoS::from_u8(3), None);
    }

    #[test]
    fn qos_pid_drops_id_for_qos0() {
        assert_eq!(
            QosPid::new(QoS::AtMostOnce, PacketId::MIN).packet_id(),
            None
        );
        assert_eq!(
            QosPid::new(QoS::ExactlyOnce, PacketId::MIN).qos(),
            QoS::ExactlyOnce
        );
    }
}
