//! What a build without the optional protocol features does: it refuses, with a typed error,
//! what it leaves out, and never handles it as something else; without the session features,
//! it behaves as if they were configured off. Run with
//! `cargo test -p mqtt-sansio --no-default-features --test features` and, for the session
//! features (the scripted broker needs `server`),
//! `cargo test -p mqtt-sansio --no-default-features --features server --test features`.

#[cfg(feature = "server")]
mod support;

#[cfg(not(feature = "v5"))]
mod without_v5 {
    use mqtt_sansio::session::{CommandError, Session, SessionConfig};
    use mqtt_sansio::{
        Connect, DecodeError, Decoded, EncodeError, Packet, ProtocolVersion, Publish, TopicName,
    };

    const V5: ProtocolVersion = ProtocolVersion::V5;

    #[test]
    fn decoding_for_5_0_is_refused() {
        // PINGRESP: valid in every version.
        let err = Packet::decode(&[0xD0, 0], V5, u32::MAX).unwrap_err();
        assert_eq!(err, DecodeError::FeatureDisabled("v5"));
        assert!(matches!(
            Packet::decode(&[0xD0, 0], ProtocolVersion::V3_1_1, u32::MAX),
            Ok(Decoded::Packet { .. })
        ));
    }

    #[test]
    fn encoding_for_5_0_is_refused() {
        let publish = Packet::Publish(Publish::new(TopicName::new("a").unwrap(), b"x"));
        let mut buf = [0u8; 32];
        assert_eq!(
            publish.encode(V5, &mut buf),
            Err(EncodeError::FeatureDisabled("v5"))
        );
        assert_eq!(
            publish.encoded_len(V5),
            Err(EncodeError::FeatureDisabled("v5"))
        );
        // A CONNECT is encoded for the version it names, whatever the caller passes.
        let connect = Packet::Connect(Connect::new(V5, "id"));
        assert_eq!(
            connect.encode(ProtocolVersion::V3_1_1, &mut buf),
            Err(EncodeError::FeatureDisabled("v5"))
        );
        assert!(publish.encode(ProtocolVersion::V3_1_1, &mut buf).is_ok());
    }

    #[test]
    fn a_5_0_session_is_refused() {
        let err = Session::new(SessionConfig::new(V5), [0u8; 4096]).err();
        assert_eq!(
            err,
            Some(CommandError::Encode(EncodeError::FeatureDisabled("v5")))
        );
        assert!(Session::new(SessionConfig::new(ProtocolVersion::V3_1_1), [0u8; 4096]).is_ok());
    }

    #[test]
    fn a_5_0_session_created_unchecked_cannot_connect() {
        assert_eq!(
            SessionConfig::new(V5).check(4096),
            Err(CommandError::Encode(EncodeError::FeatureDisabled("v5")))
        );
        let mut s = Session::from_checked(SessionConfig::new(V5), [0u8; 4096]);
        let err = s.connect(&Connect::new(V5, "id")).err();
        assert_eq!(
            err,
            Some(CommandError::Encode(EncodeError::FeatureDisabled("v5")))
        );
        let mut buf = [0u8; 64];
        assert!(matches!(
            s.poll_transmit(mqtt_sansio::session::Instant::from_millis(0), &mut buf),
            Ok(None)
        ));
    }

    #[test]
    fn a_5_0_message_in_a_journal_is_refused() {
        use mqtt_sansio::journal::{JournalError, Record};
        use mqtt_sansio::{PacketId, QoS};

        let mut config = SessionConfig::new(ProtocolVersion::V3_1_1);
        config.journal = true;
        let mut s = Session::new(config, [0u8; 4096]).unwrap();
        // A QoS 1 PUBLISH to "t" with packet id 1, encoded as 5.0 (empty properties).
        let record = Record::Queued {
            packet_id: PacketId::new(1).unwrap(),
            qos: QoS::AtLeastOnce,
            v5: true,
            sent_before: false,
            packet: b"\x32\x06\x00\x01t\x00\x01\x00",
        };
        assert_eq!(s.restore(&record), Err(JournalError::FeatureDisabled("v5")));
        // The same message encoded as 3.1.1 is restored.
        let record = Record::Queued {
            packet_id: PacketId::new(1).unwrap(),
            qos: QoS::AtLeastOnce,
            v5: false,
            sent_before: false,
            packet: b"\x32\x05\x00\x01t\x00\x01",
        };
        assert_eq!(s.restore(&record), Ok(()));
    }

    #[test]
    fn the_control_region_is_sized_for_3_1_1() {
        let mut connect = Connect::new(V5, "id");
        connect.password = Some(b"secret");
        let len = SessionConfig::control_len(&connect).unwrap();
        connect.protocol = ProtocolVersion::V3_1;
        connect.username = Some("");
        let v3_1 = Packet::Connect(connect)
            .encoded_len(ProtocolVersion::V3_1)
            .unwrap();
        assert!(len >= v3_1, "{len} < {v3_1}");
    }
}

/// A 3.1.1-only build still keeps its session in a journal: what was open comes back.
#[cfg(all(feature = "server", not(feature = "v5")))]
mod journal_without_v5 {
    use mqtt_sansio::journal::{Record, Replay};
    use mqtt_sansio::session::SessionConfig;
    use mqtt_sansio::{Packet, ProtocolVersion, QoS};

    use crate::support::{dec, incoming, puback, pubrec, Ev, Harness};

    const V: ProtocolVersion = ProtocolVersion::V3_1_1;

    fn config() -> SessionConfig {
        let mut c = SessionConfig::new(V);
        c.journal = true;
        c.max_inflight = u16::MAX;
        c
    }

    #[test]
    fn a_3_1_1_session_is_journaled_and_recovered() {
        let mut h = Harness::with(config(), 16 * 1024);
        h.connect(false, false);
        for (payload, qos) in [
            (&b"a"[..], QoS::AtLeastOnce),
            (b"b", QoS::AtLeastOnce),
            (b"c", QoS::ExactlyOnce),
        ] {
            h.publish("t", payload, qos).unwrap();
        }
        h.take_sent();
        h.feed_packet(puback(1)).unwrap();
        h.feed_packet(pubrec(3)).unwrap();
        h.feed_packet(incoming("in", b"x", QoS::ExactlyOnce, 7))
            .unwrap();
        h.take_sent();
        h.take_events();

        let records: Vec<Record<'_>> = Replay::new(&h.journal).collect();
        // Resuming is 5.0's business (3.1.1 keeps its Clean Session): no record of it.
        assert!(!records.contains(&Record::Resumable), "{records:?}");
        assert!(records
            .iter()
            .all(|r| !matches!(r, Record::Queued { v5: true, .. })));

        let mut r = Harness::with(config(), 16 * 1024);
        for record in &records {
            r.s.restore(record).unwrap();
        }
        let mut resent: Vec<(&str, u16)> = r
            .connect(false, true)
            .iter()
            .filter_map(|b| match dec(b, V) {
                Packet::Publish(p) => Some(("publish", p.qos_pid.packet_id()?.get())),
                Packet::PubRel(p) => Some(("pubrel", p.packet_id.get())),
                _ => None,
            })
            .collect();
        resent.sort();
        // Message 2 again, and the PUBREL of message 3.
        assert_eq!(resent, [("publish", 2), ("pubrel", 3)]);
        // The incoming QoS 2 message is not delivered twice.
        r.feed_packet(incoming("in", b"x", QoS::ExactlyOnce, 7))
            .unwrap();
        let delivered = r
            .take_events()
            .iter()
            .any(|e| matches!(e, Ev::Message { .. }));
        assert!(!delivered);
    }
}

/// Without `v5` the broker's limits are 3.1.1's, which the session applies without a
/// CONNACK's properties: everything goes but subscription identifiers, and a PUBACK or
/// PUBREC (which has no reason code in 3.1.1) never refuses a message.
#[cfg(all(feature = "server", not(feature = "v5")))]
mod limits_without_v5 {
    use core::num::NonZeroU32;

    use mqtt_sansio::session::{CommandError, Message};
    use mqtt_sansio::{
        Packet, ProtocolVersion, QoS, ReasonCode, SubAck, SubscribeProperties, Subscription,
        TopicFilter,
    };

    use crate::support::{dec, pubcomp, pubrec, topic, Ev, Harness};

    const V: ProtocolVersion = ProtocolVersion::V3_1_1;

    #[test]
    fn qos_2_retained_shared_and_wildcards_go_out() {
        let mut h = Harness::new(V);
        h.connect(true, false);
        let mut message = Message::new(topic("t"), b"x", QoS::ExactlyOnce);
        message.retain = true;
        let id = h.s.publish(&message).unwrap().unwrap();
        let subs = [
            Subscription::new(TopicFilter::new("$share/g/a/+").unwrap(), QoS::AtLeastOnce),
            Subscription::new(TopicFilter::new("b/#").unwrap(), QoS::ExactlyOnce),
        ];
        let sub = h.s.subscribe(&subs, Default::default()).unwrap();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(matches!(dec(&sent[0], V), Packet::Publish(p) if p.retain));
        assert!(matches!(dec(&sent[1], V), Packet::Subscribe(s) if s.subscriptions.len() == 2));
        h.feed_packet(pubrec(id.get())).unwrap();
        h.feed_packet(pubcomp(id.get())).unwrap();
        let codes = [ReasonCode::GrantedQoS1, ReasonCode::GrantedQoS2];
        h.feed_packet(Packet::SubAck(SubAck::new(sub, &codes)))
            .unwrap();
        let events = h.take_events();
        assert!(
            events.iter().any(|e| matches!(e, Ev::Published { .. })),
            "{events:?}"
        );
        assert!(
            events.iter().any(|e| matches!(e, Ev::Subscribed { .. })),
            "{events:?}"
        );
    }

    #[test]
    fn a_subscription_identifier_is_refused_while_connected() {
        let mut h = Harness::new(V);
        h.connect(true, false);
        let subs = [Subscription::new(
            TopicFilter::new("a").unwrap(),
            QoS::AtMostOnce,
        )];
        let properties = SubscribeProperties {
            subscription_identifier: NonZeroU32::new(7),
            ..SubscribeProperties::default()
        };
        assert_eq!(
            h.s.subscribe(&subs, properties),
            Err(CommandError::Unsupported(
                ReasonCode::SubscriptionIdentifiersNotSupported
            ))
        );
    }
}

#[cfg(not(feature = "server"))]
mod without_server {
    use mqtt_sansio::{
        ConnAck, Connect, DecodeError, EncodeError, Packet, ProtocolVersion, ReasonCode,
    };

    const V: ProtocolVersion = ProtocolVersion::V3_1_1;

    #[test]
    fn connack_is_not_encoded() {
        let connack = Packet::ConnAck(ConnAck::new(ReasonCode::Success));
        let mut buf = [0u8; 16];
        assert_eq!(
            connack.encode(V, &mut buf),
            Err(EncodeError::FeatureDisabled("server"))
        );
    }

    #[test]
    fn connect_is_not_decoded_but_the_client_side_is() {
        // A client encodes CONNECT; only a server decodes it.
        let mut buf = [0u8; 32];
        let n = Packet::Connect(Connect::new(V, "id"))
            .encode(V, &mut buf)
            .unwrap();
        assert_eq!(
            Packet::decode(&buf[..n], V, u32::MAX),
            Err(DecodeError::FeatureDisabled("server"))
        );
        // A CONNACK (server to client) decodes.
        assert!(Packet::decode(&[0x20, 2, 0, 0], V, u32::MAX).is_ok());
    }
}

#[cfg(all(feature = "server", not(feature = "subscription-renewal")))]
mod without_subscription_renewal {
    use mqtt_sansio::session::SessionConfig;
    use mqtt_sansio::{
        Packet, ProtocolVersion, QoS, ReasonCode, SubAck, Subscription, TopicFilter,
    };

    use crate::support::Harness;

    /// Subscribes to `a/b` and answers with a grant; the packets transmitted before the
    /// SUBACK.
    fn subscribe_granted(h: &mut Harness) -> usize {
        let subs = [Subscription::new(
            TopicFilter::new("a/b").unwrap(),
            QoS::AtLeastOnce,
        )];
        let id = h.s.subscribe(&subs, Default::default()).unwrap();
        let sent = h.take_sent().len();
        h.feed_packet(Packet::SubAck(SubAck::new(id, &[ReasonCode::GrantedQoS1])))
            .unwrap();
        sent
    }

    #[test]
    fn a_lost_session_renews_nothing_even_with_room_to_keep_subscriptions() {
        let mut config = SessionConfig::new(ProtocolVersion::V3_1_1);
        config.subscription_bytes = 256;
        let mut h = Harness::with(config, 16 * 1024);
        h.connect(false, false);
        assert_eq!(subscribe_granted(&mut h), 1);
        h.transport_closed();
        let sent = h.connect(false, false);
        assert!(sent.is_empty(), "{sent:?}");
        // The application subscribes again itself; the SUBACK answers its SUBSCRIBE.
        h.take_events();
        assert_eq!(subscribe_granted(&mut h), 1);
        let events = h.take_events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, crate::support::Ev::Subscribed { .. })),
            "{events:?}"
        );
    }

    #[test]
    fn the_journal_keeps_no_subscriptions_and_restores_a_table_as_none() {
        use mqtt_sansio::journal::{Record, Replay};

        let mut config = SessionConfig::new(ProtocolVersion::V3_1_1);
        config.subscription_bytes = 256;
        config.journal = true;
        let mut h = Harness::with(config, 16 * 1024);
        h.connect(false, false);
        subscribe_granted(&mut h);
        h.take_sent();
        let kept = Replay::new(&h.journal).any(|r| matches!(r, Record::Subscriptions(_)));
        assert!(!kept);
        // A journal from a build that kept "a/b" (identifier 0, renewed, options QoS 1).
        let table = b"\0\0\0\0\0\x01\x03\0a/b";
        let mut r = Harness::with(config, 16 * 1024);
        assert_eq!(r.s.restore(&Record::Subscriptions(table)), Ok(()));
        let sent = r.connect(false, false);
        assert!(sent.is_empty(), "{sent:?}");
        assert!(!r
            .s
            .snapshot()
            .any(|r| matches!(r, Record::Subscriptions(_))));
    }
}

#[cfg(all(feature = "server", not(feature = "receive-streaming")))]
mod without_receive_streaming {
    use mqtt_sansio::session::SessionConfig;
    use mqtt_sansio::{ProtocolVersion, QoS};

    use crate::support::{enc, incoming, Ev, Harness};

    const V: ProtocolVersion = ProtocolVersion::V3_1_1;

    #[test]
    fn a_message_over_the_receive_capacity_is_skipped_not_streamed() {
        let mut config = SessionConfig::new(V);
        config.receive_capacity = 64;
        config.maximum_packet_size = 4096;
        let mut h = Harness::with(config, 16 * 1024);
        assert_eq!(h.s.config().maximum_packet_size, 64);
        h.connect(false, false);
        let payload = [7u8; 200];
        let bytes = enc(incoming("t", &payload, QoS::AtMostOnce, 0), V);
        h.feed(&bytes).unwrap();
        let events = h.take_events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Ev::Skipped { size, .. } if *size as usize == bytes.len())),
            "{events:?}"
        );
    }
}
