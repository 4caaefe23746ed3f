//! The peer codecs: each turns one of our packets into its own type (outside any timing), and
//! decodes and encodes the way its documentation shows.

use mqtt_sansio::{Packet, PacketId, QoS, QosPid};

fn qos_index(qos: QoS) -> u8 {
    qos as u8
}

fn pid_value(qos_pid: QosPid) -> u16 {
    qos_pid.packet_id().map_or(0, PacketId::get)
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 password for peers that keep it as a String")
}

/// rumqttc's 3.1.1 codec (`rumqttc::mqttbytes::v4`): decodes from and encodes into a
/// `BytesMut`; decoding splits the packet off the front of the buffer.
pub(crate) mod rumqttc_v4 {
    use bytes::{Bytes, BytesMut};
    use rumqttc::mqttbytes::v4::{
        Connect, LastWill, Login, Packet as P, PubAck, Publish, Subscribe, SubscribeFilter,
    };
    use rumqttc::mqttbytes::{Protocol, QoS};

    use super::{pid_value, utf8, Packet};

    pub(crate) const MAX: usize = 268_435_460;

    fn qos(q: mqtt_sansio::QoS) -> QoS {
        rumqttc::mqttbytes::qos(super::qos_index(q)).expect("QoS 0..2")
    }

    pub(crate) fn convert(packet: &Packet<'_>) -> Option<P> {
        Some(match packet {
            Packet::Publish(p) => P::Publish(Publish {
                dup: p.dup,
                qos: qos(p.qos_pid.qos()),
                retain: p.retain,
                topic: p.topic.as_str().to_owned(),
                pkid: pid_value(p.qos_pid),
                payload: Bytes::copy_from_slice(p.payload),
            }),
            Packet::Connect(c) if !c.protocol.is_v5() => P::Connect(Connect {
                protocol: Protocol::V4,
                keep_alive: c.keep_alive,
                client_id: c.client_id.to_owned(),
                clean_session: c.clean_start,
                last_will: c.will.map(|w| LastWill {
                    topic: w.topic.as_str().to_owned(),
                    message: Bytes::copy_from_slice(w.payload),
                    qos: qos(w.qos),
                    retain: w.retain,
                }),
                login: c.username.map(|u| Login {
                    username: u.to_owned(),
                    password: c.password.map(utf8).unwrap_or_default(),
                }),
            }),
            Packet::Subscribe(s) => P::Subscribe(Subscribe {
                pkid: s.packet_id.get(),
                filters: s
                    .subscriptions
                    .iter()
                    .map(|sub| SubscribeFilter {
                        path: sub.filter.as_str().to_owned(),
                        qos: qos(sub.options.qos),
                    })
                    .collect(),
            }),
            Packet::PubAck(a) => P::PubAck(PubAck {
                pkid: a.packet_id.get(),
            }),
            Packet::PingReq => P::PingReq,
            _ => return None,
        })
    }

    pub(crate) fn decode(buf: &mut BytesMut) -> Result<P, rumqttc::mqttbytes::Error> {
        P::read(buf, MAX)
    }

    pub(crate) fn encode(
        packet: &P,
        buf: &mut BytesMut,
    ) -> Result<usize, rumqttc::mqttbytes::Error> {
        packet.write(buf, MAX)
    }
}

/// rumqttc's 5.0 codec (`rumqttc::v5::mqttbytes::v5`).
pub(crate) mod rumqttc_v5 {
    use bytes::{Bytes, BytesMut};
    use rumqttc::v5::mqttbytes::v5::{
        Connect, ConnectProperties, Filter, LastWill, LastWillProperties, Login, Packet as P,
        PubAck, PubAckReason, Publish, PublishProperties, RetainForwardRule, Subscribe,
        SubscribeProperties,
    };
    use rumqttc::v5::mqttbytes::QoS;

    use super::{pid_value, qos_index, utf8, Packet};

    fn qos(q: mqtt_sansio::QoS) -> QoS {
        match qos_index(q) {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    fn users(u: &mqtt_sansio::UserProperties<'_>) -> Vec<(String, String)> {
        u.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn publish_properties(p: &mqtt_sansio::PublishProperties<'_>) -> Option<PublishProperties> {
        if p.is_empty() {
            return None;
        }
        Some(PublishProperties {
            payload_format_indicator: p.payload_format_indicator.map(u8::from),
            message_expiry_interval: p.message_expiry_interval,
            topic_alias: p.topic_alias.map(|a| a.get()),
            response_topic: p.response_topic.map(|t| t.as_str().to_owned()),
            correlation_data: p.correlation_data.map(Bytes::copy_from_slice),
            user_properties: users(&p.user_properties),
            subscription_identifiers: p
                .subscription_identifiers
                .iter()
                .map(|id| id.get() as usize)
                .collect(),
            content_type: p.content_type.map(str::to_owned),
        })
    }

    fn connect_properties(p: &mqtt_sansio::ConnectProperties<'_>) -> Option<ConnectProperties> {
        if p.is_empty() {
            return None;
        }
        Some(ConnectProperties {
            session_expiry_interval: p.session_expiry_interval,
            receive_maximum: p.receive_maximum.map(|v| v.get()),
            max_packet_size: p.maximum_packet_size.map(|v| v.get()),
            topic_alias_max: p.topic_alias_maximum,
            request_response_info: p.request_response_information.map(u8::from),
            request_problem_info: p.request_problem_information.map(u8::from),
            user_properties: users(&p.user_properties),
            authentication_method: p.authentication_method.map(str::to_owned),
            authentication_data: p.authentication_data.map(Bytes::copy_from_slice),
        })
    }

    fn will_properties(p: &mqtt_sansio::WillProperties<'_>) -> Option<LastWillProperties> {
        if p.is_empty() {
            return None;
        }
        Some(LastWillProperties {
            delay_interval: p.will_delay_interval,
            payload_format_indicator: p.payload_format_indicator.map(u8::from),
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.map(str::to_owned),
            response_topic: p.response_topic.map(|t| t.as_str().to_owned()),
            correlation_data: p.correlation_data.map(Bytes::copy_from_slice),
            user_properties: users(&p.user_properties),
        })
    }

    pub(crate) fn convert(packet: &Packet<'_>) -> Option<P> {
        Some(match packet {
            Packet::Publish(p) => P::Publish(Publish {
                dup: p.dup,
                qos: qos(p.qos_pid.qos()),
                retain: p.retain,
                topic: Bytes::copy_from_slice(p.topic.as_str().as_bytes()),
                pkid: pid_value(p.qos_pid),
                payload: Bytes::copy_from_slice(p.payload),
                properties: publish_properties(&p.properties),
            }),
            Packet::Connect(c) if c.protocol.is_v5() => P::Connect(
                Connect {
                    keep_alive: c.keep_alive,
                    client_id: c.client_id.to_owned(),
                    clean_start: c.clean_start,
                    properties: connect_properties(&c.properties),
                },
                c.will.map(|w| LastWill {
                    topic: Bytes::copy_from_slice(w.topic.as_str().as_bytes()),
                    message: Bytes::copy_from_slice(w.payload),
                    qos: qos(w.qos),
                    retain: w.retain,
                    properties: will_properties(&w.properties),
                }),
                c.username.map(|u| Login {
                    username: u.to_owned(),
                    password: c.password.map(utf8).unwrap_or_default(),
                }),
            ),
            Packet::Subscribe(s) => P::Subscribe(Subscribe {
                pkid: s.packet_id.get(),
                filters: s
                    .subscriptions
                    .iter()
                    .map(|sub| Filter {
                        path: sub.filter.as_str().to_owned(),
                        qos: qos(sub.options.qos),
                        nolocal: sub.options.no_local,
                        preserve_retain: sub.options.retain_as_published,
                        retain_forward_rule: match sub.options.retain_handling {
                            mqtt_sansio::RetainHandling::SendAtSubscribe => {
                                RetainForwardRule::OnEverySubscribe
                            }
                            mqtt_sansio::RetainHandling::SendIfNew => {
                                RetainForwardRule::OnNewSubscribe
                            }
                            mqtt_sansio::RetainHandling::DoNotSend => RetainForwardRule::Never,
                        },
                    })
                    .collect(),
                properties: (!s.properties.is_empty()).then(|| SubscribeProperties {
                    id: s
                        .properties
                        .subscription_identifier
                        .map(|v| v.get() as usize),
                    user_properties: users(&s.properties.user_properties),
                }),
            }),
            Packet::PubAck(a) => P::PubAck(PubAck {
                pkid: a.packet_id.get(),
                reason: PubAckReason::Success,
                properties: None,
            }),
            _ => return None,
        })
    }

    pub(crate) fn decode(buf: &mut BytesMut) -> Result<P, rumqttc::v5::mqttbytes::Error> {
        P::read(buf, None)
    }

    pub(crate) fn encode(
        packet: &P,
        buf: &mut BytesMut,
    ) -> Result<usize, rumqttc::v5::mqttbytes::Error> {
        packet.write(buf, None)
    }
}

/// mqttrs: borrowed decode from a slice, encode into a slice. 3.1.1 only.
pub(crate) mod mqttrs {
    use ::mqttrs::{
        Connect, LastWill, Packet as P, Pid, Protocol, Publish, QoS, QosPid, Subscribe,
        SubscribeTopic,
    };

    use super::{qos_index, Packet};

    fn qos(q: mqtt_sansio::QoS) -> QoS {
        match qos_index(q) {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    fn pid(id: mqtt_sansio::PacketId) -> Pid {
        Pid::try_from(id.get()).expect("non-zero")
    }

    pub(crate) fn convert<'a>(packet: &Packet<'a>) -> Option<P<'a>> {
        Some(match packet {
            Packet::Publish(p) => P::Publish(Publish {
                dup: p.dup,
                qospid: match p.qos_pid {
                    mqtt_sansio::QosPid::AtMostOnce => QosPid::AtMostOnce,
                    mqtt_sansio::QosPid::AtLeastOnce(id) => QosPid::AtLeastOnce(pid(id)),
                    mqtt_sansio::QosPid::ExactlyOnce(id) => QosPid::ExactlyOnce(pid(id)),
                },
                retain: p.retain,
                topic_name: p.topic.as_str(),
                payload: p.payload,
            }),
            Packet::Connect(c) if !c.protocol.is_v5() => P::Connect(Connect {
                protocol: Protocol::MQTT311,
                keep_alive: c.keep_alive,
                client_id: c.client_id,
                clean_session: c.clean_start,
                last_will: c.will.map(|w| LastWill {
                    topic: w.topic.as_str(),
                    message: w.payload,
                    qos: qos(w.qos),
                    retain: w.retain,
                }),
                username: c.username,
                password: c.password,
            }),
            Packet::Subscribe(s) => P::Subscribe(Subscribe {
                pid: pid(s.packet_id),
                topics: s
                    .subscriptions
                    .iter()
                    .map(|sub| SubscribeTopic {
                        topic_path: sub.filter.as_str().to_owned(),
                        qos: qos(sub.options.qos),
                    })
                    .collect(),
            }),
            Packet::PubAck(a) => P::Puback(pid(a.packet_id)),
            Packet::PingReq => P::Pingreq,
            _ => return None,
        })
    }

    pub(crate) fn decode(buf: &[u8]) -> Result<Option<P<'_>>, ::mqttrs::Error> {
        ::mqttrs::decode_slice(buf)
    }

    pub(crate) fn encode(packet: &P<'_>, buf: &mut [u8]) -> Result<usize, ::mqttrs::Error> {
        ::mqttrs::encode_slice(packet, buf)
    }

    /// `decode_slice` does not say how many bytes it used: a caller walking a buffer of several
    /// packets must read the fixed header's remaining length itself.
    pub(crate) fn frame_len(buf: &[u8]) -> usize {
        let mut len = 0usize;
        for (i, &b) in buf.iter().enumerate().skip(1).take(4) {
            len |= usize::from(b & 0x7F) << (7 * (i - 1));
            if b & 0x80 == 0 {
                return 1 + i + len;
            }
        }
        buf.len()
    }
}

/// mqtt-protocol (crate `mqtt`): decodes from any `io::Read` (here a `&[u8]`), owning its
/// strings and payload; encodes into any `io::Write` (here a `&mut [u8]`). 3.1.1 only.
pub(crate) mod mqtt_sansiocol {
    use mqtt::packet::{
        ConnectPacket, PingreqPacket, PubackPacket, PublishPacket, QoSWithPacketIdentifier,
        SubscribePacket, VariablePacket,
    };
    use mqtt::{Decodable, Encodable, QualityOfService, TopicFilter, TopicName};

    use super::{qos_index, utf8, Packet};

    fn qos(q: mqtt_sansio::QoS) -> QualityOfService {
        match qos_index(q) {
            0 => QualityOfService::Level0,
            1 => QualityOfService::Level1,
            _ => QualityOfService::Level2,
        }
    }

    pub(crate) fn convert(packet: &Packet<'_>) -> Option<VariablePacket> {
        Some(match packet {
            Packet::Publish(p) => {
                let q =
                    QoSWithPacketIdentifier::new(qos(p.qos_pid.qos()), super::pid_value(p.qos_pid));
                let mut out = PublishPacket::new(
                    TopicName::new(p.topic.as_str()).expect("valid topic"),
                    q,
                    p.payload,
                );
                out.set_dup(p.dup);
                out.set_retain(p.retain);
                out.into()
            }
            Packet::Connect(c) if !c.protocol.is_v5() => {
                let mut out = ConnectPacket::new(c.client_id);
                out.set_keep_alive(c.keep_alive);
                out.set_clean_session(c.clean_start);
                if let Some(w) = c.will {
                    out.set_will(Some((
                        TopicName::new(w.topic.as_str()).expect("valid topic"),
                        w.payload.to_vec(),
                    )));
                    out.set_will_qos(qos_index(w.qos));
                    out.set_will_retain(w.retain);
                }
                out.set_user_name(c.username.map(str::to_owned));
                out.set_password(c.password.map(utf8));
                out.into()
            }
            Packet::Subscribe(s) => SubscribePacket::new(
                s.packet_id.get(),
                s.subscriptions
                    .iter()
                    .map(|sub| {
                        let filter = TopicFilter::new(sub.filter.as_str()).expect("valid filter");
                        (filter, qos(sub.options.qos))
                    })
                    .collect(),
            )
            .into(),
            Packet::PubAck(a) => PubackPacket::new(a.packet_id.get()).into(),
            Packet::PingReq => PingreqPacket::new().into(),
            _ => return None,
        })
    }

    /// Decodes one packet and advances `buf` past it.
    pub(crate) fn decode(
        buf: &mut &[u8],
    ) -> Result<VariablePacket, mqtt::packet::VariablePacketError> {
        VariablePacket::decode(buf)
    }

    pub(crate) fn encode(packet: &VariablePacket, buf: &mut [u8]) -> std::io::Result<()> {
        let mut w = buf;
        packet.encode(&mut w)
    }
}
