//! Encodes a few packets of the LED story with `mqtt-proto` and decodes them back, printing
//! the bytes: what a device sends when it comes online and what a controller sends to it.

use mqtt_proto::{
    Connect, Decoded, Packet, ProtocolVersion, Publish, PublishProperties, QoS, QosPid, Subscribe,
    Subscription, TopicFilter, TopicName, Will,
};

fn show(
    label: &str,
    packet: Packet<'_>,
    version: ProtocolVersion,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut buf = [0u8; 256];
    let n = packet.encode(version, &mut buf)?;
    let hex: Vec<String> = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
    println!("{label} ({version}, {n} bytes)\n  {}", hex.join(" "));
    match Packet::decode(&buf[..n], version, u32::MAX)? {
        Decoded::Packet {
            packet: decoded,
            len,
        } if decoded == packet && len == n => {
            println!(
                "  decoded back to the same {:?} packet",
                decoded.packet_type()
            );
        }
        other => return Err(format!("round trip failed: {other:?}").into()),
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let status = TopicName::new("devices/esp32-a1b2c3/status")?;
    let mut connect = Connect::new(ProtocolVersion::V3_1_1, "esp32-a1b2c3");
    connect.username = Some("device");
    connect.password = Some(b"secret");
    connect.will = Some(Will {
        topic: status,
        payload: b"offline",
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    });
    show(
        "device CONNECT with last will",
        Packet::Connect(connect),
        ProtocolVersion::V3_1_1,
    )?;

    let mut online = Publish::new(status, b"online");
    online.retain = true;
    show(
        "device reports online",
        Packet::Publish(online),
        ProtocolVersion::V3_1_1,
    )?;

    let filter = TopicFilter::new("devices/esp32-a1b2c3/led/set")?;
    let subs = [Subscription::new(filter, QoS::AtLeastOnce)];
    let id = mqtt_proto::PacketId::new(1).ok_or("packet id")?;
    show(
        "device subscribes to commands",
        Packet::Subscribe(Subscribe::new(id, &subs)),
        ProtocolVersion::V5,
    )?;

    let mut command = Publish::new(TopicName::new("devices/esp32-a1b2c3/led/set")?, b"on");
    command.qos_pid = QosPid::AtLeastOnce(id);
    command.properties = PublishProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(30),
        ..Default::default()
    };
    show(
        "controller switches the LED on",
        Packet::Publish(command),
        ProtocolVersion::V5,
    )?;
    Ok(())
}
