//! Decoding and encoding allocate nothing: every packet type, in 3.1.1 and 5.0, with properties,
//! user properties and lists, is measured under a counting global allocator.
//!
//! The allocator counts only on a thread that has switched counting on, and only while it is on,
//! so the test harness (and other tests running in parallel) are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::num::{NonZeroU16, NonZeroU32};

use mqtt_sansio::{
    AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties,
    Decoded, Disconnect, DisconnectProperties, Packet, PacketId, ProtocolVersion, PubResponse,
    Publish, PublishProperties, QoS, QosPid, ReasonCode, RetainHandling, Seq, SubAck, Subscribe,
    SubscribeProperties, Subscription, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, UnsubscribeProperties, Will, WillProperties,
};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // try_with: the allocator can run while this thread's locals are being torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only const-initialised thread locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // A free inside the measured region would mean something allocated was dropped there.
        note_allocation();
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the number of allocator calls this thread made in it.
fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (result, COUNT.with(Cell::get))
}

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

/// What one allocation-free pass over a packet found.
#[derive(Debug, PartialEq)]
struct Pass {
    len: usize,
    same: bool,
    items: usize,
}

/// Encodes `packet` into a stack buffer, decodes it back, compares, and walks its lists.
fn encode_decode(packet: &Packet<'_>, version: ProtocolVersion) -> Pass {
    let mut buf = [0u8; 1024];
    let expected = packet.encoded_len(version).unwrap_or(0);
    let Ok(len) = packet.encode(version, &mut buf) else {
        return Pass {
            len: 0,
            same: false,
            items: 0,
        };
    };
    let (same, items) = match Packet::decode(&buf[..len], version, u32::MAX) {
        Ok(Decoded::Packet {
            packet: decoded, ..
        }) => (decoded == *packet, count_items(&decoded)),
        _ => (false, 0),
    };
    Pass {
        len: if len == expected { len } else { 0 },
        same,
        items,
    }
}

/// Iterates every list a packet holds; decoded lists are parsed again on iteration.
fn count_items(packet: &Packet<'_>) -> usize {
    let users = |u: &Seq<'_, (&str, &str)>| {
        u.iter()
            .filter(|(k, v)| k.len() + v.len() < usize::MAX)
            .count()
    };
    match packet {
        Packet::Connect(c) => {
            users(&c.properties.user_properties)
                + c.will.map_or(0, |w| users(&w.properties.user_properties))
        }
        Packet::ConnAck(c) => users(&c.properties.user_properties),
        Packet::Publish(p) => {
            users(&p.properties.user_properties) + p.properties.subscription_identifiers.len()
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            users(&r.properties.user_properties)
        }
        Packet::Subscribe(s) => {
            s.subscriptions.iter().count() + users(&s.properties.user_properties)
        }
        Packet::SubAck(s) => s.reason_codes.iter().count() + users(&s.properties.user_properties),
        Packet::Unsubscribe(u) => u.filters.iter().count() + users(&u.properties.user_properties),
        Packet::UnsubAck(u) => u.reason_codes.iter().count() + users(&u.properties.user_properties),
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => users(&d.properties.user_properties),
        Packet::Auth(a) => users(&a.properties.user_properties),
    }
}

#[test]
fn the_counter_sees_allocations_on_this_thread_only() {
    let (v, n) = allocations_in(|| vec![1u8; 16]);
    assert!(n >= 1, "a Vec allocation was not counted");
    drop(v);
    // Another thread's allocations are not counted: only what spawning costs this one.
    let ((), n) = allocations_in(|| {
        std::thread::scope(|s| {
            s.spawn(|| (0..1000).for_each(|i| drop(Box::new(i))));
        })
    });
    assert!(n < 1000, "{n} allocations counted");
    let (_, none) = allocations_in(|| 2 + 2);
    assert_eq!(none, 0);
}

#[test]
fn every_v5_packet_with_properties_encodes_and_decodes_without_allocating() {
    let users = [("region", "eu"), ("region", "us"), ("k", "v")];
    let ids = [
        NonZeroU32::new(1).unwrap(),
        NonZeroU32::new(70_000).unwrap(),
    ];
    let filter = TopicFilter::new("sensors/+/temp").unwrap();
    let shared = TopicFilter::new("$share/g/a/#").unwrap();
    let subs = [
        Subscription {
            filter,
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::SendIfNew,
            },
        },
        Subscription::new(shared, QoS::ExactlyOnce),
    ];
    let filters = [filter, shared];
    let suback_codes = [ReasonCode::GrantedQoS1, ReasonCode::TopicFilterInvalid];
    let unsuback_codes = [ReasonCode::Success, ReasonCode::NoSubscriptionExisted];
    let ack_props = AckProperties {
        reason_string: Some("why"),
        user_properties: Seq::from_slice(&users),
    };
    let connect = Connect {
        protocol: V5,
        clean_start: false,
        keep_alive: 30,
        properties: ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: NonZeroU16::new(10),
            maximum_packet_size: NonZeroU32::new(4096),
            topic_alias_maximum: Some(8),
            request_response_information: Some(true),
            request_problem_information: Some(true),
            authentication_method: Some("SCRAM-SHA-1"),
            authentication_data: Some(b"data"),
            user_properties: Seq::from_slice(&users),
        },
        client_id: "esp32",
        will: Some(Will {
            topic: TopicName::new("status/esp32").unwrap(),
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(60),
                content_type: Some("text/plain"),
                response_topic: Some(TopicName::new("r").unwrap()),
                correlation_data: Some(b"c"),
                user_properties: Seq::from_slice(&users),
            },
        }),
        username: Some("user"),
        password: Some(b"pass"),
    };
    let connack = ConnAck {
        session_present: true,
        reason_code: ReasonCode::Success,
        properties: ConnAckProperties {
            receive_maximum: NonZeroU16::new(20),
            maximum_qos: Some(QoS::AtLeastOnce),
            assigned_client_identifier: Some("auto-1"),
            topic_alias_maximum: Some(4),
            reason_string: Some("welcome"),
            server_keep_alive: Some(60),
            user_properties: Seq::from_slice(&users),
            ..ConnAckProperties::default()
        },
    };
    let publish = Publish {
        dup: true,
        qos_pid: QosPid::ExactlyOnce(pid(7)),
        retain: false,
        topic: TopicName::new("sensors/esp32/temp").unwrap(),
        properties: PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(30),
            topic_alias: NonZeroU16::new(2),
            response_topic: Some(TopicName::new("reply/here").unwrap()),
            correlation_data: Some(b"id-1"),
            content_type: Some("application/json"),
            subscription_identifiers: Seq::from_slice(&ids),
            user_properties: Seq::from_slice(&users),
        },
        payload: b"{\"t\":21.5}",
    };
    let response = PubResponse {
        packet_id: pid(7),
        reason_code: ReasonCode::Success,
        properties: ack_props,
    };
    let subscribe = Subscribe {
        packet_id: pid(8),
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(70_000),
            user_properties: Seq::from_slice(&users),
        },
        subscriptions: Seq::from_slice(&subs),
    };
    let disconnect = Disconnect {
        reason_code: ReasonCode::ServerShuttingDown,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            reason_string: Some("bye"),
            server_reference: Some("other"),
            user_properties: Seq::from_slice(&users),
        },
    };
    let auth = Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some("SCRAM-SHA-1"),
            authentication_data: Some(b"challenge"),
            reason_string: Some("more"),
            user_properties: Seq::from_slice(&users),
        },
    };
    let packets = [
        Packet::Connect(connect),
        Packet::ConnAck(connack),
        Packet::Publish(publish),
        Packet::PubAck(response),
        Packet::PubRec(response),
        Packet::PubRel(response),
        Packet::PubComp(response),
        Packet::Subscribe(subscribe),
        Packet::SubAck(SubAck {
            properties: ack_props,
            ..SubAck::new(pid(8), &suback_codes)
        }),
        Packet::Unsubscribe(Unsubscribe {
            properties: UnsubscribeProperties {
                user_properties: Seq::from_slice(&users),
            },
            ..Unsubscribe::new(pid(9), &filters)
        }),
        Packet::UnsubAck(UnsubAck {
            properties: ack_props,
            ..UnsubAck::new(pid(9), &unsuback_codes)
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(disconnect),
        Packet::Auth(auth),
    ];
    for packet in &packets {
        let (pass, allocations) = allocations_in(|| encode_decode(packet, V5));
        assert!(
            pass.len > 0 && pass.same,
            "{packet:?} did not round-trip: {pass:?}"
        );
        assert_eq!(allocations, 0, "{packet:?} allocated");
    }
    // The packets that carry user properties did walk them.
    let (pass, _) = allocations_in(|| encode_decode(&packets[2], V5));
    assert_eq!(pass.items, users.len() + ids.len());
}

#[test]
fn every_v311_packet_encodes_and_decodes_without_allocating() {
    let filter = TopicFilter::new("sensors/#").unwrap();
    let subs = [
        Subscription::new(filter, QoS::AtLeastOnce),
        Subscription::new(TopicFilter::new("a/+/b").unwrap(), QoS::AtMostOnce),
    ];
    let filters = [filter];
    let codes = [ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError];
    let connect = Connect {
        will: Some(Will {
            topic: TopicName::new("status").unwrap(),
            payload: b"offline",
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some("user"),
        password: Some(b"pass"),
        ..Connect::new(V311, "esp32")
    };
    let publish = Publish {
        qos_pid: QosPid::AtLeastOnce(pid(1)),
        ..Publish::new(TopicName::new("a/b").unwrap(), b"hello")
    };
    let packets = [
        Packet::Connect(connect),
        Packet::Connect(Connect::new(ProtocolVersion::V3_1, "old")),
        Packet::ConnAck(ConnAck::new(ReasonCode::NotAuthorized)),
        Packet::Publish(publish),
        Packet::PubAck(PubResponse::new(pid(1))),
        Packet::PubRec(PubResponse::new(pid(2))),
        Packet::PubRel(PubResponse::new(pid(2))),
        Packet::PubComp(PubResponse::new(pid(2))),
        Packet::Subscribe(Subscribe::new(pid(3), &subs)),
        Packet::SubAck(SubAck::new(pid(3), &codes)),
        Packet::Unsubscribe(Unsubscribe::new(pid(4), &filters)),
        Packet::UnsubAck(UnsubAck::new(pid(4), &[])),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
    ];
    for packet in &packets {
        let version = match packet {
            Packet::Connect(c) => c.protocol,
            _ => V311,
        };
        let (pass, allocations) = allocations_in(|| encode_decode(packet, version));
        assert!(
            pass.len > 0 && pass.same,
            "{packet:?} did not round-trip: {pass:?}"
        );
        assert_eq!(allocations, 0, "{packet:?} allocated");
    }
}

#[test]
fn refusing_malformed_input_does_not_allocate_either() {
    let malformed: &[&[u8]] = &[
        &[0x30, 0xFF, 0xFF, 0xFF, 0x7F],
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        &[0x00, 0x00],
        &[0x41, 0x02, 0x00, 0x01],
        &[0x30, 0x05, 0x00, 0x03, b'a', 0xFF, b'b'],
        &[0x30, 0x04, 0x00, 0x02, b'a', b'#'],
        &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'#', 0x03],
        &[0x40, 0x06, 0x00, 0x01, 0x00, 0x02, 0x7F, 0x00],
        &[0x20, 0x03, 0x00, 0x04, 0x00],
        &[0x10, 0x03, 0x00, 0x01, b'M'],
    ];
    for bytes in malformed {
        let (results, allocations) =
            allocations_in(|| [V311, V5].map(|v| Packet::decode(bytes, v, 1 << 20).is_err()));
        assert_eq!(results, [true, true], "{bytes:02X?}");
        assert_eq!(allocations, 0, "{bytes:02X?}");
    }
    // And a pseudo-random byte soup, decoded as far as it goes.
    let mut soup = [0u8; 4096];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for b in soup.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let (decoded, allocations) = allocations_in(|| {
        let mut decoded = 0;
        for start in 0..soup.len() {
            for v in [V311, V5] {
                if let Ok(Decoded::Packet { packet, .. }) =
                    Packet::decode(&soup[start..], v, u32::MAX)
                {
                    decoded += 1 + count_items(&packet);
                }
            }
        }
        decoded
    });
    assert_eq!(allocations, 0, "decoded {decoded} packets");
}
