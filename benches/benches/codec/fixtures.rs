//! The workloads, built with our codec. Every peer is checked against these bytes and packets
//! before anything is measured.

use core::num::{NonZeroU16, NonZeroU32};

use mqtt_sansio::{
    Connect, ConnectProperties, Packet, PacketId, ProtocolVersion, PubResponse, Publish,
    PublishProperties, QoS, QosPid, RetainHandling, Seq, Subscribe, SubscribeProperties,
    Subscription, SubscriptionOptions, TopicFilter, TopicName, Will, WillProperties,
};

/// One packet to decode and encode.
pub(crate) struct Workload {
    /// Criterion group suffix, e.g. `pub_qos0_64B`.
    pub name: &'static str,
    pub version: ProtocolVersion,
    pub packet: Packet<'static>,
    /// `packet` encoded by our codec: the input every decoder gets.
    pub bytes: Vec<u8>,
}

pub(crate) const TOPIC: &str = "sensors/esp32-001/temperature";

/// A printable payload of `len` bytes, leaked so packets can borrow it for the whole run.
pub(crate) fn payload(len: usize) -> &'static [u8] {
    let text = b"{\"t\":21.5,\"rh\":40.2,\"p\":1013.2}";
    let bytes: Vec<u8> = text.iter().copied().cycle().take(len).collect();
    bytes.leak()
}

fn topic(name: &'static str) -> TopicName<'static> {
    TopicName::new(name).expect("valid topic name")
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id")
}

pub(crate) fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let len = packet.encoded_len(version).expect("encodable");
    let mut buf = vec![0; len];
    let n = packet.encode(version, &mut buf).expect("encodes");
    assert_eq!(n, len);
    buf
}

fn workload(name: &'static str, version: ProtocolVersion, packet: Packet<'static>) -> Workload {
    Workload {
        name,
        version,
        bytes: encode(&packet, version),
        packet,
    }
}

pub(crate) fn publish(qos_pid: QosPid, len: usize) -> Publish<'static> {
    Publish {
        qos_pid,
        ..Publish::new(topic(TOPIC), payload(len))
    }
}

fn publish_v5() -> Packet<'static> {
    static USER: [(&str, &str); 2] = [("sensor", "bme280"), ("unit", "celsius")];
    static CORRELATION: [u8; 16] = *b"0123456789abcdef";
    let properties = PublishProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(3600),
        topic_alias: NonZeroU16::new(5),
        response_topic: Some(topic("replies/esp32-001")),
        correlation_data: Some(&CORRELATION),
        content_type: Some("application/json"),
        user_properties: Seq::from_slice(&USER),
        ..PublishProperties::default()
    };
    Packet::Publish(Publish {
        properties,
        ..publish(QosPid::AtLeastOnce(pid(10)), 256)
    })
}

fn connect(version: ProtocolVersion) -> Packet<'static> {
    static USER: [(&str, &str); 1] = [("fw", "1.4.2")];
    let v5 = version.is_v5();
    let mut will = Will {
        topic: topic("sensors/esp32-001/status"),
        payload: b"offline",
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties::default(),
    };
    let mut connect = Connect {
        keep_alive: 60,
        username: Some("device"),
        password: Some(b"secret"),
        ..Connect::new(version, "esp32-001")
    };
    if v5 {
        will.properties = WillProperties {
            will_delay_interval: Some(5),
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(600),
            content_type: Some("text/plain"),
            ..WillProperties::default()
        };
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: NonZeroU16::new(32),
            maximum_packet_size: NonZeroU32::new(1 << 20),
            topic_alias_maximum: Some(16),
            request_problem_information: Some(true),
            user_properties: Seq::from_slice(&USER),
            ..ConnectProperties::default()
        };
    }
    connect.will = Some(will);
    Packet::Connect(connect)
}

/// Ten filters of typical shapes: plain, `+`, `#`, `$SYS`.
pub(crate) const FILTERS: [(&str, QoS); 10] = [
    ("sensors/+/temperature", QoS::AtLeastOnce),
    ("sensors/+/humidity", QoS::AtLeastOnce),
    ("home/livingroom/#", QoS::AtMostOnce),
    ("home/kitchen/light", QoS::ExactlyOnce),
    ("devices/esp32-001/cmd", QoS::AtLeastOnce),
    ("devices/esp32-001/ota/#", QoS::AtLeastOnce),
    ("$SYS/broker/uptime", QoS::AtMostOnce),
    ("alerts/+", QoS::ExactlyOnce),
    ("metrics/cpu/+/load", QoS::AtMostOnce),
    ("logs/#", QoS::AtMostOnce),
];

fn subscribe(version: ProtocolVersion) -> Packet<'static> {
    let subs: Vec<Subscription<'static>> = FILTERS
        .iter()
        .enumerate()
        .map(|(i, &(filter, qos))| {
            let filter = TopicFilter::new(filter).expect("valid filter");
            let mut options = SubscriptionOptions::new(qos);
            if version.is_v5() {
                // Vary the 5.0-only options so they are really encoded and parsed.
                options.no_local = i % 2 == 0;
                options.retain_as_published = i % 3 == 0;
                options.retain_handling = match i % 3 {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                };
            }
            Subscription { filter, options }
        })
        .collect();
    let mut subscribe = Subscribe::new(pid(7), subs.leak());
    if version.is_v5() {
        subscribe.properties = SubscribeProperties {
            subscription_identifier: NonZeroU32::new(42),
            ..SubscribeProperties::default()
        };
    }
    Packet::Subscribe(subscribe)
}

/// Every per-packet workload, in report order.
pub(crate) fn workloads() -> Vec<Workload> {
    use ProtocolVersion::{V3_1_1, V5};
    vec![
        workload(
            "pub_qos0_64B",
            V3_1_1,
            Packet::Publish(publish(QosPid::AtMostOnce, 64)),
        ),
        workload(
            "pub_qos1_1KiB",
            V3_1_1,
            Packet::Publish(publish(QosPid::AtLeastOnce(pid(10)), 1024)),
        ),
        workload(
            "pub_qos1_64KiB",
            V3_1_1,
            Packet::Publish(publish(QosPid::AtLeastOnce(pid(10)), 64 * 1024)),
        ),
        workload("pub_v5_props_256B", V5, publish_v5()),
        workload("connect_v311", V3_1_1, connect(V3_1_1)),
        workload("connect_v5", V5, connect(V5)),
        workload("subscribe10_v311", V3_1_1, subscribe(V3_1_1)),
        workload("subscribe10_v5", V5, subscribe(V5)),
        workload("puback", V3_1_1, Packet::PubAck(PubResponse::new(pid(10)))),
        workload("pingreq", V3_1_1, Packet::PingReq),
    ]
}

/// Back-to-back copies of the 64 B QoS 0 publish, as many as fit in 1 MiB, and their count.
pub(crate) fn stream() -> (Vec<u8>, usize) {
    let one = encode(
        &Packet::Publish(publish(QosPid::AtMostOnce, 64)),
        ProtocolVersion::V3_1_1,
    );
    let count = (1 << 20) / one.len();
    (one.repeat(count), count)
}
