//! The session against a scripted broker on a virtual clock: each QoS flow both ways, both
//! protocol versions, byte-exact where the specification fixes the bytes.

mod support;

use mqtt_proto::session::LostReason;
use mqtt_proto::{Packet, ProtocolVersion, QoS, ReasonCode};
use support::*;

#[test]
fn connect_transmits_connect_first_then_connack_connects() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.publish("t", b"queued before connect", QoS::AtLeastOnce)
            .unwrap();
        let mut c = mqtt_proto::Connect::new(v, "dev");
        c.keep_alive = 30;
        h.s.connect(&c).unwrap();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1);
        let Packet::Connect(connect) = dec(&sent[0], v) else {
            panic!()
        };
        assert_eq!(connect.client_id, "dev");
        if v.is_v5() {
            assert_eq!(connect.properties.receive_maximum.unwrap().get(), 16);
            assert_eq!(connect.properties.maximum_packet_size.unwrap().get(), 4096);
        }
        h.feed_packet(Packet::ConnAck(mqtt_proto::ConnAck::new(
            ReasonCode::Success,
        )))
        .unwrap();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1, "the queued publish goes out after CONNACK");
        assert!(matches!(dec(&sent[0], v), Packet::Publish(_)));
    }
}

#[test]
fn qos0_publish_is_sent_once_and_forgotten() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        assert_eq!(h.publish("a/b", b"x", QoS::AtMostOnce).unwrap(), None);
        let sent = h.take_sent();
        assert_eq!(
            sent,
            vec![vec![0x30, 0x06, 0x00, 0x03, b'a', b'/', b'b', b'x']]
                .into_iter()
                .map(|mut p| {
                    if v.is_v5() {
                        // 5.0 adds an empty property length after the topic.
                        p.insert(7, 0);
                        p[1] += 1;
                    }
                    p
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(h.s.store_usage().0, 0);
    }
}

#[test]
fn qos1_publish_completes_on_puback() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        let id = h.publish("t", b"1", QoS::AtLeastOnce).unwrap().unwrap();
        let sent = h.take_sent();
        let Packet::Publish(p) = dec(&sent[0], v) else {
            panic!()
        };
        assert_eq!(p.packet_id(), Some(id));
        assert!(!p.dup);
        assert_eq!(h.s.inflight(), 1);
        h.feed_packet(puback(id.get())).unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Published {
                pid: id.get(),
                qos: QoS::AtLeastOnce,
                reason: ReasonCode::Success
            }]
        );
        assert_eq!(h.s.inflight(), 0);
        assert_eq!(h.s.store_usage().0, 0);
    }
}

#[test]
fn qos2_publish_runs_pubrec_pubrel_pubcomp() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        let id = h
            .publish("t", b"2", QoS::ExactlyOnce)
            .unwrap()
            .unwrap()
            .get();
        assert_eq!(h.take_sent().len(), 1);
        h.feed_packet(pubrec(id)).unwrap();
        assert!(h.take_events().is_empty());
        let sent = h.take_sent();
        assert_eq!(
            sent,
            vec![vec![0x62, 0x02, 0x00, id as u8]],
            "PUBREL, flags 0010"
        );
        h.feed_packet(pubcomp(id)).unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Published {
                pid: id,
                qos: QoS::ExactlyOnce,
                reason: ReasonCode::Success
            }]
        );
        assert_eq!(h.s.inflight(), 0);
    }
}
