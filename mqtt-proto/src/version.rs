//! The protocol versions this crate speaks.

/// An MQTT protocol version, as carried by CONNECT's protocol name and level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolVersion {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3), still spoken by esp-mqtt and libmosquitto.
    V3_1,
    /// MQTT 3.1.1 (protocol name `MQTT`, level 4).
    V3_1_1,
    /// MQTT 5.0 (protocol name `MQTT`, level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V5 => 5,
        }
    }

    /// The protocol name CONNECT carries for this version.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 | Self::V5 => "MQTT",
        }
    }

    /// The version for a protocol name and level, or `None` when the pair is not one we speak.
    pub fn from_name_and_level(name: &str, level: u8) -> Option<Self> {
        match (name, level) {
            ("MQIsdp", 3) => Some(Self::V3_1),
            ("MQTT", 4) => Some(Self::V3_1_1),
            ("MQTT", 5) => Some(Self::V5),
            _ => None,
        }
    }

    /// Whether this version has properties, reason codes and AUTH (5.0).
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }

    /// [`ProtocolVersion::is_v5`] as the crate's own code branches on it: always `false` when
    /// the `v5` feature is off, so that the optimiser drops every 5.0 path. The entry points
    /// (`Packet::decode`, `Packet::encode`, `Session::new`) refuse 5.0 in such a build first
    /// (see [`ProtocolVersion::check_built`]), so no 5.0 packet is ever treated as 3.1.1.
    #[inline]
    pub(crate) const fn v5(self) -> bool {
        cfg!(feature = "v5") && self.is_v5()
    }

    /// Whether this build speaks `self`: `false` only for 5.0 without the `v5` feature.
    #[inline]
    pub(crate) const fn is_built(self) -> bool {
        cfg!(feature = "v5") || !self.is_v5()
    }
}

impl core::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::V3_1 => "3.1",
            Self::V3_1_1 => "3.1.1",
            Self::V5 => "5.0",
        })
    }
}
