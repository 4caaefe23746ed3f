//! The pump against a scripted broker on a virtual clock: the bytes it sends are decoded and
//! checked, the broker's answers are encoded with the workspace's codec.

use std::time::Duration;

use mqtt_client_wasm::{Error, Event, Io, Options, Pump, QoS, ReasonCode};
use mqtt_sansio::{
    ConnAck, Decoded, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QosPid, SubAck,
    TopicName,
};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn options() -> Options {
    Options::new("ws://127.0.0.1:9/").credentials("demo", "secret")
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = vec![0; packet.encoded_len(version).unwrap()];
    packet.encode(version, &mut buf).unwrap();
    buf
}

/// A summary of every packet in `bytes`, e.g. `PUBLISH a/b q1 dup=false`.
fn describe(bytes: &[u8], version: ProtocolVersion) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Ok(Decoded::Packet { packet, len }) = Packet::decode(rest, version, u32::MAX) else {
            panic!("undecodable bytes from the pump: {rest:?}");
        };
        out.push(match packet {
            Packet::Connect(c) => format!(
                "CONNECT user={:?} pass={:?} clean={}",
                c.username,
                c.password.map(|p| String::from_utf8_lossy(p).into_owned()),
                c.clean_start
            ),
            Packet::Publish(p) => format!(
                "PUBLISH {} {:?} dup={} {}",
                p.topic.as_str(),
                p.qos_pid,
                p.dup,
                String::from_utf8_lossy(p.payload)
            ),
            Packet::PubAck(a) => format!("PUBACK {}", a.packet_id.get()),
            Packet::PubRec(a) => format!("PUBREC {}", a.packet_id.get()),
            Packet::PubRel(a) => format!("PUBREL {}", a.packet_id.get()),
            Packet::PubComp(a) => format!("PUBCOMP {}", a.packet_id.get()),
            Packet::Subscribe(s) => format!("SUBSCRIBE {}", s.packet_id.get()),
            Packet::PingReq => "PINGREQ".into(),
            Packet::Disconnect(_) => "DISCONNECT".into(),
            other => format!("{other:?}"),
        });
        rest = &rest[len..];
    }
    out
}

/// A pump and its virtual clock.
struct Rig {
    pump: Pump,
    now: u64,
    /// A completion a test keeps for later.
    pending: Option<mqtt_client_wasm::Completion<ReasonCode>>,
}

impl Rig {
    fn new(options: Options) -> Self {
        Self {
            pump: Pump::new(options, 42).unwrap(),
            now: 1_000,
            pending: None,
        }
    }

    /// Everything the pump asks for now, with sends decoded.
    fn io(&mut self) -> Vec<String> {
        self.pump.handle_timeout(self.now);
        let mut out = Vec::new();
        for _ in 0..100 {
            match self.pump.poll_io(self.now) {
                Some(Io::Send(bytes)) => out.extend(describe(&bytes, self.version())),
                Some(Io::Open) => out.push("open".into()),
                Some(Io::Close) => out.push("close".into()),
                Some(other) => out.push(format!("{other:?}")),
                None => return out,
            }
        }
        panic!("poll_io does not run dry: {out:?}");
    }

    fn version(&self) -> ProtocolVersion {
        self.pump.options().version
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.pump.poll_event()).collect()
    }

    fn feed(&mut self, packet: &Packet<'_>) {
        self.pump
            .handle_bytes(self.now, &encode(packet, self.version()));
    }

    /// Connects: open, CONNECT, CONNACK.
    fn connected(options: Options) -> Self {
        let mut rig = Self::new(options);
        rig.pump.start(rig.now);
        assert_eq!(rig.io(), ["open"]);
        rig.pump.handle_open(rig.now);
        let clean = rig.pump.options().clean_start;
        assert_eq!(
            rig.io(),
            [format!(
                "CONNECT user=Some(\"demo\") pass=Some(\"secret\") clean={clean}"
            )]
        );
        rig.feed(&Packet::ConnAck(ConnAck::new(ReasonCode::Success)));
        assert_eq!(
            rig.events(),
            [Event::Connected {
                session_present: false
            }]
        );
        assert!(rig.pump.is_connected());
        rig
    }
}

#[test]
fn qos1_publish_completes_on_puback() {
    let mut rig = Rig::connected(options());
    let mut done = rig
        .pump
        .publish("devices/x/led/set", b"on", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(
        rig.io(),
        ["PUBLISH devices/x/led/set AtLeastOnce(PacketId(1)) dup=false on"]
    );
    assert!(done.try_take().is_none(), "no PUBACK yet");
    rig.feed(&Packet::PubAck(PubResponse::new(pid(1))));
    assert_eq!(done.try_take(), Some(Ok(ReasonCode::Success)));
    assert_eq!(
        rig.events(),
        [Event::Published {
            packet_id: pid(1),
            reason_code: ReasonCode::Success
        }]
    );
}

#[test]
fn qos2_publish_completes_on_pubcomp_after_pubrel() {
    let mut rig = Rig::connected(options());
    let mut done = rig
        .pump
        .publish("t", b"x", QoS::ExactlyOnce, false)
        .unwrap();
    assert_eq!(rig.io(), ["PUBLISH t ExactlyOnce(PacketId(1)) dup=false x"]);
    rig.feed(&Packet::PubRec(PubResponse::new(pid(1))));
    assert_eq!(rig.io(), ["PUBREL 1"]);
    assert!(done.try_take().is_none(), "PUBREC does not complete QoS 2");
    rig.feed(&Packet::PubComp(PubResponse::new(pid(1))));
    assert_eq!(done.try_take(), Some(Ok(ReasonCode::Success)));
}

#[test]
fn qos0_publish_completes_when_written() {
    let mut rig = Rig::connected(options());
    let mut done = rig.pump.publish("t", b"0", QoS::AtMostOnce, false).unwrap();
    assert!(done.try_take().is_none());
    assert_eq!(rig.io(), ["PUBLISH t AtMostOnce dup=false 0"]);
    assert_eq!(done.try_take(), Some(Ok(ReasonCode::Success)));
}

#[test]
fn a_failed_puback_rejects_the_publish() {
    let mut rig = Rig::connected(options());
    let mut done = rig
        .pump
        .publish("t", b"x", QoS::AtLeastOnce, false)
        .unwrap();
    rig.io();
    let mut ack = PubResponse::new(pid(1));
    ack.reason_code = ReasonCode::NotAuthorized;
    rig.feed(&Packet::PubAck(ack));
    assert_eq!(
        done.try_take(),
        Some(Err(Error::NotDelivered(ReasonCode::NotAuthorized)))
    );
}

#[test]
fn subscription_and_incoming_messages_split_across_frames() {
    let mut rig = Rig::connected(options());
    let mut granted = rig
        .pump
        .subscribe("devices/+/status", QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(rig.io(), ["SUBSCRIBE 1"]);
    rig.feed(&Packet::SubAck(SubAck::new(
        pid(1),
        &[ReasonCode::GrantedQoS1],
    )));
    assert_eq!(granted.try_take(), Some(Ok(vec![ReasonCode::GrantedQoS1])));
    rig.events();
    let mut publish = Publish::new(TopicName::new("devices/x/status").unwrap(), b"online");
    publish.qos_pid = QosPid::AtLeastOnce(pid(7));
    publish.retain = true;
    let bytes = encode(&Packet::Publish(publish), V5);
    // One byte at a time: WebSocket frames need not follow packet boundaries.
    for b in &bytes {
        rig.pump.handle_bytes(rig.now, std::slice::from_ref(b));
    }
    let events = rig.events();
    let [Event::Message(m)] = events.as_slice() else {
        panic!("one message expected: {events:?}");
    };
    assert_eq!(
        (m.topic.as_str(), m.payload.as_slice()),
        ("devices/x/status", &b"online"[..])
    );
    assert_eq!((m.qos, m.retain), (QoS::AtLeastOnce, true));
    assert_eq!(rig.io(), ["PUBACK 7"], "the session acknowledges");
}

#[test]
fn a_broker_that_lost_the_session_gets_the_subscription_again() {
    let mut rig = Rig::connected(options());
    let mut granted = rig
        .pump
        .subscribe("devices/+/status", QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(rig.io(), ["SUBSCRIBE 1"]);
    rig.feed(&Packet::SubAck(SubAck::new(
        pid(1),
        &[ReasonCode::GrantedQoS1],
    )));
    assert_eq!(granted.try_take(), Some(Ok(vec![ReasonCode::GrantedQoS1])));
    rig.events();
    rig.pump.handle_closed(rig.now, None);
    rig.events();
    rig.now = rig.pump.poll_timeout().expect("a reconnect deadline");
    assert_eq!(rig.io(), ["open"]);
    rig.pump.handle_open(rig.now);
    rig.io();
    // A broker restarted without persistence: no session. The session renews the filter
    // by itself, with its options; the page does nothing.
    rig.feed(&Packet::ConnAck(ConnAck::new(ReasonCode::Success)));
    let sent = rig.io();
    let [renewal] = sent.as_slice() else {
        panic!("one SUBSCRIBE expected: {sent:?}");
    };
    assert!(renewal.starts_with("SUBSCRIBE "), "{sent:?}");
    let id: u16 = renewal["SUBSCRIBE ".len()..].parse().unwrap();
    rig.feed(&Packet::SubAck(SubAck::new(
        pid(id),
        &[ReasonCode::GrantedQoS1],
    )));
    let events = rig.events();
    assert!(
        events.contains(&Event::Resubscribed {
            packet_id: pid(id),
            reason_codes: vec![ReasonCode::GrantedQoS1],
        }),
        "{events:?}"
    );
}

/// Loses the connection with one QoS 1 publish unacknowledged, waits for the session's
/// reconnect delay, reconnects and answers CONNACK with `session_present`; returns what the
/// pump sent after CONNACK and the publish's completion.
fn reconnect_with_one_unacked(options: Options, session_present: bool) -> (Rig, Vec<String>) {
    let mut rig = Rig::connected(options);
    let done = rig
        .pump
        .publish("t", b"x", QoS::AtLeastOnce, false)
        .unwrap();
    rig.io();
    rig.pump
        .handle_closed(rig.now, Some(Error::Transport("closed (code 1006)".into())));
    let events = rig.events();
    assert!(
        matches!(
            &events[0],
            Event::Disconnected {
                error: Error::Transport(_)
            }
        ),
        "{events:?}"
    );
    let Event::Reconnecting { attempt, delay } = events[1] else {
        panic!("reconnecting expected: {events:?}");
    };
    assert_eq!(attempt, 1);
    // The session's policy as configured: 500 ms, jittered down to half at most.
    assert!(delay >= Duration::from_millis(250) && delay <= Duration::from_millis(500));
    let at = rig.pump.poll_timeout().expect("a reconnect deadline");
    assert_eq!(at, rig.now + delay.as_millis() as u64);
    rig.now = at - 1;
    assert_eq!(rig.io(), Vec::<String>::new(), "not before the delay");
    rig.now = at;
    assert_eq!(rig.io(), ["open"]);
    rig.pump.handle_open(rig.now);
    let connect = rig.io();
    assert!(
        connect[0].starts_with("CONNECT user=Some(\"demo\")"),
        "{connect:?}"
    );
    let mut connack = ConnAck::new(ReasonCode::Success);
    connack.session_present = session_present;
    rig.feed(&Packet::ConnAck(connack));
    let sent = rig.io();
    rig.pending = Some(done);
    (rig, sent)
}

#[test]
fn a_resumed_session_resends_after_the_reconnect_delay() {
    let mut options = options().version(ProtocolVersion::V3_1_1).client_id("page");
    options.clean_start = false;
    let (mut rig, sent) = reconnect_with_one_unacked(options, true);
    assert_eq!(sent, ["PUBLISH t AtLeastOnce(PacketId(1)) dup=true x"]);
    rig.feed(&Packet::PubAck(PubResponse::new(pid(1))));
    let mut done = rig.pending.take().unwrap();
    assert_eq!(done.try_take(), Some(Ok(ReasonCode::Success)));
}

#[test]
fn a_lost_session_fails_the_unacknowledged_publish() {
    let (mut rig, sent) = reconnect_with_one_unacked(options(), false);
    assert_eq!(
        sent,
        Vec::<String>::new(),
        "the session does not resend: {sent:?}"
    );
    let mut done = rig.pending.take().unwrap();
    assert_eq!(done.try_take(), Some(Err(Error::SessionLost)));
}

#[test]
fn bad_credentials_stop_without_reconnecting() {
    let mut rig = Rig::new(options());
    rig.pump.start(rig.now);
    rig.io();
    rig.pump.handle_open(rig.now);
    rig.io();
    let mut waiting = rig
        .pump
        .publish("t", b"x", QoS::AtLeastOnce, false)
        .unwrap();
    rig.feed(&Packet::ConnAck(ConnAck::new(
        ReasonCode::BadUserNameOrPassword,
    )));
    assert_eq!(rig.io(), ["close"]);
    let events = rig.events();
    assert_eq!(
        events[0],
        Event::Error(Error::Refused(ReasonCode::BadUserNameOrPassword))
    );
    assert!(
        matches!(events[1], Event::Error(Error::Stopped(_))),
        "{events:?}"
    );
    assert_eq!(rig.pump.poll_timeout(), None, "no reconnect");
    assert!(matches!(waiting.try_take(), Some(Err(Error::Stopped(_)))));
}

#[test]
fn keep_alive_pings_at_the_sessions_deadline() {
    let mut rig = Rig::connected(options().keep_alive(Duration::from_secs(5)));
    let at = rig.pump.poll_timeout().expect("keep alive deadline");
    assert_eq!(at, rig.now + 5_000);
    rig.now = at;
    assert_eq!(rig.io(), ["PINGREQ"]);
}

#[test]
fn disconnect_sends_disconnect_closes_and_stays_down() {
    let mut rig = Rig::connected(options());
    rig.pump.disconnect();
    assert_eq!(rig.io(), ["DISCONNECT", "close"]);
    assert_eq!(
        rig.events(),
        [Event::Disconnected {
            error: Error::Closed
        }]
    );
    assert_eq!(rig.pump.poll_timeout(), None);
    assert_eq!(
        rig.pump
            .publish("t", b"x", QoS::AtLeastOnce, false)
            .unwrap_err(),
        Error::Closed
    );
}

#[test]
fn a_failed_open_backs_off_longer_each_time() {
    let mut rig = Rig::new(options());
    rig.pump.start(rig.now);
    let mut delays = Vec::new();
    for _ in 0..4 {
        assert_eq!(rig.io(), ["open"]);
        rig.pump
            .handle_closed(rig.now, Some(Error::Transport("refused".into())));
        let at = rig.pump.poll_timeout().unwrap();
        delays.push(at - rig.now);
        rig.now = at;
    }
    // Doubling up to the configured maximum, with jitter over [d/2, d].
    assert!(delays[3] > delays[0], "{delays:?}");
    assert!(
        delays.iter().all(|&d| (250..=10_000).contains(&d)),
        "{delays:?}"
    );
}
