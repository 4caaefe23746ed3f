//! A scripted broker on a virtual clock for session tests: the test plays the broker by
//! handing the session encoded packets, and reads back what the session transmits.
#![allow(dead_code)]

use mqtt_sansio::session::{
    CommandError, Event, Instant, LostReason, Message, Notice, ProtocolError, Read, Session,
    SessionConfig,
};
use mqtt_sansio::{
    ConnAck, Connect, Decoded, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS,
    QosPid, ReasonCode, TopicName,
};

/// An event copied out of the session, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Connected {
        session_present: bool,
    },
    Refused(ReasonCode),
    Message {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        dup: bool,
        pid: Option<u16>,
    },
    Published {
        pid: u16,
        qos: QoS,
        reason: ReasonCode,
    },
    Subscribed {
        pid: u16,
        codes: Vec<ReasonCode>,
    },
    Unsubscribed {
        pid: u16,
        codes: Vec<ReasonCode>,
    },
    Pong(u64),
    Auth(ReasonCode),
    Disconnected(ReasonCode),
    Lost(LostReason),
    Abandoned {
        pid: u16,
        payload: Option<Vec<u8>>,
    },
    Dropped {
        pid: Option<u16>,
        reason: ReasonCode,
    },
    RequestDropped {
        pid: u16,
        reason: ReasonCode,
    },
    Retrying {
        pid: u16,
        reason: ReasonCode,
        retry: u8,
    },
    Overrun {
        in_flight: u16,
        deferred: bool,
    },
    Skipped {
        pid: Option<u16>,
        qos: QoS,
        size: u32,
    },
    Resubscribed {
        pid: u16,
        filters: Vec<String>,
        codes: Vec<ReasonCode>,
    },
    NotRenewable {
        pid: u16,
        index: u16,
    },
    RenewalDropped(ReasonCode),
    FellBack,
    Chunk {
        topic: String,
        data: Vec<u8>,
        offset: usize,
        total: usize,
        qos: QoS,
        dup: bool,
        pid: Option<u16>,
    },
}

pub fn copy_event(e: &Event<'_>) -> Ev {
    match *e {
        Event::Connected {
            session_present, ..
        } => Ev::Connected { session_present },
        Event::ConnectionRefused { reason_code, .. } => Ev::Refused(reason_code),
        Event::Message(p) => Ev::Message {
            topic: p.topic.as_str().to_string(),
            payload: p.payload.to_vec(),
            qos: p.qos_pid.qos(),
            dup: p.dup,
            pid: p.packet_id().map(PacketId::get),
        },
        Event::Published {
            packet_id,
            qos,
            reason_code,
            ..
        } => Ev::Published {
            pid: packet_id.get(),
            qos,
            reason: reason_code,
        },
        Event::Subscribed {
            packet_id,
            reason_codes,
            ..
        } => Ev::Subscribed {
            pid: packet_id.get(),
            codes: reason_codes.iter().collect(),
        },
        Event::Unsubscribed {
            packet_id,
            reason_codes,
            ..
        } => Ev::Unsubscribed {
            pid: packet_id.get(),
            codes: reason_codes.iter().collect(),
        },
        Event::Pong { round_trip } => Ev::Pong(round_trip.as_millis() as u64),
        Event::Auth(a) => Ev::Auth(a.reason_code),
        Event::Disconnected { reason_code, .. } => Ev::Disconnected(reason_code),
        Event::ConnectionLost(r) => Ev::Lost(r),
        // The payload is filled in from `Session::abandoned_message` by the caller.
        Event::PublishAbandoned { packet_id, .. } => Ev::Abandoned {
            pid: packet_id.get(),
            payload: None,
        },
        Event::PublishDropped {
            packet_id,
            reason_code,
        } => Ev::Dropped {
            pid: packet_id.map(PacketId::get),
            reason: reason_code,
        },
        Event::RequestDropped {
            packet_id,
            reason_code,
        } => Ev::RequestDropped {
            pid: packet_id.get(),
            reason: reason_code,
        },
        Event::Notice(Notice::PublishRetrying {
            packet_id,
            reason_code,
            retry,
        }) => Ev::Retrying {
            pid: packet_id.get(),
            reason: reason_code,
            retry,
        },
        Event::Notice(Notice::ReceiveMaximumExceeded {
            in_flight,
            deferred,
            ..
        }) => Ev::Overrun {
            in_flight,
            deferred,
        },
        Event::Notice(Notice::MessageSkipped {
            packet_id,
            qos,
            size,
        }) => Ev::Skipped {
            pid: packet_id.map(PacketId::get),
            qos,
            size,
        },
        Event::Resubscribed {
            packet_id,
            subscriptions,
            reason_codes,
            ..
        } => Ev::Resubscribed {
            pid: packet_id.get(),
            filters: subscriptions
                .iter()
                .map(|s| s.filter.as_str().to_string())
                .collect(),
            codes: reason_codes.iter().collect(),
        },
        Event::Notice(Notice::SubscriptionNotRenewable { packet_id, index }) => Ev::NotRenewable {
            pid: packet_id.get(),
            index,
        },
        Event::Notice(Notice::RenewalDropped { reason_code }) => Ev::RenewalDropped(reason_code),
        Event::Notice(Notice::FellBackToV311) => Ev::FellBack,
        Event::MessageChunk(c) => Ev::Chunk {
            topic: c.message.topic.as_str().to_string(),
            data: c.message.payload.to_vec(),
            offset: c.offset,
            total: c.total_len,
            qos: c.message.qos_pid.qos(),
            dup: c.message.dup,
            pid: c.message.packet_id().map(PacketId::get),
        },
        other => panic!("unexpected event {other:?}"),
    }
}

/// Encodes a broker packet.
pub fn enc(packet: Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = vec![0u8; packet.encoded_len(version).unwrap()];
    packet.encode(version, &mut buf).unwrap();
    buf
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub fn topic(s: &str) -> TopicName<'_> {
    TopicName::new(s).unwrap()
}

pub struct Harness {
    pub s: Session<Vec<u8>>,
    /// The receive buffer of a driver with a fixed one (`feed_wire`): unprocessed input,
    /// with a streamed PUBLISH's header at its front while `rx_header` is non-zero.
    pub rx: Vec<u8>,
    pub rx_header: usize,
    /// Bytes of a skipped packet still to arrive.
    pub rx_skip: usize,
    /// The transmit buffer's size.
    pub tx_cap: usize,
    /// Payloads of streamed messages (`Session::publish_streamed`), by packet id (`None`
    /// for QoS 0), which the harness fills payload transmits from.
    pub payloads: Vec<(Option<u16>, Vec<u8>)>,
    /// Payload pieces transmitted.
    pub pieces: usize,
    pub now: u64,
    pub version: ProtocolVersion,
    /// Transmitted packets not yet looked at.
    pub sent: Vec<Vec<u8>>,
    pub events: Vec<Ev>,
    /// What the session journaled (`SessionConfig::journal`), snapshots included, as a
    /// backend that appends everything would hold it.
    pub journal: Vec<u8>,
    /// Every packet transmitted, with the journal's length when it went out.
    pub wire_log: Vec<(usize, Vec<u8>)>,
}

impl Harness {
    pub fn new(version: ProtocolVersion) -> Self {
        Self::with(SessionConfig::new(version), 16 * 1024)
    }

    pub fn with(config: SessionConfig, store: usize) -> Self {
        let version = config.version;
        Self {
            s: Session::new(config, vec![0u8; store]).unwrap(),
            rx: Vec::new(),
            rx_header: 0,
            rx_skip: 0,
            tx_cap: 70 * 1024,
            payloads: Vec::new(),
            pieces: 0,
            now: 1_000,
            version,
            sent: Vec::new(),
            events: Vec::new(),
            journal: Vec::new(),
            wire_log: Vec::new(),
        }
    }

    /// Takes what the session journals, as a driver does before it transmits, and writes a
    /// snapshot when the session asks for one.
    pub fn drain_journal(&mut self) {
        let mut buf = vec![0u8; self.tx_cap + 64];
        loop {
            let n = self.s.poll_journal(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            self.journal.extend_from_slice(&buf[..n]);
        }
        if self.s.wants_snapshot() {
            let records: Vec<Vec<u8>> = self
                .s
                .snapshot()
                .map(|r| {
                    let mut b = vec![0; r.encoded_len()];
                    r.encode(&mut b).unwrap();
                    b
                })
                .collect();
            self.journal.extend(records.concat());
        }
    }

    pub fn instant(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    /// Drains transmits and session events.
    pub fn flush(&mut self) {
        self.transmit(usize::MAX);
        while let Some(e) = self.s.poll_event() {
            let mut ev = copy_event(&e);
            if let Ev::Abandoned { payload, .. } = &mut ev {
                *payload = self.s.abandoned_message().map(|m| m.payload.to_vec());
            }
            self.events.push(ev);
        }
    }

    /// Transmits at most `max` times through a buffer of `tx_cap` bytes; a streamed
    /// payload's pieces are filled in from `payloads` and appended to their header, so
    /// `sent` holds whole packets once their last piece went.
    pub fn transmit(&mut self, max: usize) {
        let mut buf = vec![0u8; self.tx_cap];
        for _ in 0..max {
            self.drain_journal();
            let Some(t) = self.s.poll_transmit(self.instant(), &mut buf).unwrap() else {
                break;
            };
            match t.payload() {
                Some(p) => {
                    let src = &self
                        .payloads
                        .iter()
                        .find(|(id, _)| *id == p.packet_id.map(PacketId::get))
                        .expect("a payload for the streamed message")
                        .1;
                    assert_eq!(src.len(), p.total_len);
                    let piece = &src[p.offset..p.offset + t.len];
                    self.sent.last_mut().unwrap().extend_from_slice(piece);
                    self.pieces += 1;
                }
                None => {
                    self.sent.push(buf[..t.len].to_vec());
                    self.wire_log
                        .push((self.journal.len(), buf[..t.len].to_vec()));
                }
            }
        }
    }

    /// Takes the packets transmitted since the last call, decoded.
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        self.flush();
        std::mem::take(&mut self.sent)
    }

    pub fn take_events(&mut self) -> Vec<Ev> {
        self.flush();
        std::mem::take(&mut self.events)
    }

    /// Feeds broker bytes (any number of packets) and flushes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let now = self.instant();
            match self.s.handle_read(now, rest)? {
                Read::Packet { len, event } => {
                    if let Some(e) = event {
                        self.events.push(copy_event(&e));
                    }
                    rest = &rest[len..];
                }
                Read::Incomplete { .. } => panic!("incomplete input in test"),
                Read::Skip { len } => rest = &rest[len.min(rest.len())..],
                Read::Blocked => self.transmit(usize::MAX),
                Read::Closing => break,
                other => panic!("{other:?} without a receive capacity"),
            }
        }
        self.flush();
        Ok(())
    }

    /// Plays a driver with a receive buffer of `SessionConfig::receive_capacity` bytes that
    /// gets `bytes` from the wire in reads of at most `piece` bytes, processing its buffer
    /// after each read. Input left at the end stays in `rx` for the next call.
    pub fn feed_wire(&mut self, bytes: &[u8], piece: usize) -> Result<(), ProtocolError> {
        let cap = self.s.config().receive_capacity;
        let mut wire = bytes;
        loop {
            let skipped = self.rx_skip.min(wire.len());
            self.rx_skip -= skipped;
            wire = &wire[skipped..];
            let n = piece.min(cap - self.rx.len()).min(wire.len());
            self.rx.extend_from_slice(&wire[..n]);
            wire = &wire[n..];
            let more = self.process_rx()?;
            if wire.is_empty() && !more {
                break;
            }
            assert!(self.rx.len() < cap || more, "receive buffer full and stuck");
        }
        self.flush();
        Ok(())
    }

    /// Processes the receive buffer until the session needs more input; whether it made
    /// progress that may allow more.
    fn process_rx(&mut self) -> Result<bool, ProtocolError> {
        loop {
            let now = self.instant();
            if self.rx.is_empty() {
                return Ok(false);
            }
            match self.s.handle_read(now, &self.rx)? {
                Read::Packet { len, event } => {
                    if let Some(e) = event {
                        self.events.push(copy_event(&e));
                    }
                    self.rx.drain(..len);
                }
                Read::Stream { header_len, .. } => {
                    assert!(self.rx_header == 0);
                    self.rx_header = header_len;
                }
                Read::Chunk { len, last, event } => {
                    let seen = event.as_ref().map(copy_event);
                    let again = self
                        .s
                        .event(&self.rx[..self.rx_header + len])
                        .as_ref()
                        .map(copy_event);
                    assert_eq!(seen, again, "handle_read's chunk and event() differ");
                    if let Some(e) = seen {
                        self.events.push(e);
                    }
                    self.rx.drain(self.rx_header..self.rx_header + len);
                    if last {
                        self.rx.drain(..self.rx_header);
                        self.rx_header = 0;
                    }
                }
                Read::Incomplete { .. } => return Ok(false),
                Read::Skip { len } => {
                    let from_rx = len.min(self.rx.len());
                    self.rx.drain(..from_rx);
                    self.rx_skip = len - from_rx;
                }
                Read::Blocked => self.transmit(usize::MAX),
                Read::Closing => {
                    self.rx.clear();
                    return Ok(false);
                }
            }
        }
    }

    pub fn feed_packet(&mut self, packet: Packet<'_>) -> Result<(), ProtocolError> {
        let bytes = enc(packet, self.version);
        self.feed(&bytes)
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        let now = self.instant();
        self.s.handle_timeout(now);
        self.flush();
    }

    /// Connects with `clean_start`, answers CONNACK with `session_present`.
    pub fn connect(&mut self, clean_start: bool, session_present: bool) -> Vec<Vec<u8>> {
        let mut c = Connect::new(self.version, "client-1");
        c.clean_start = clean_start;
        c.keep_alive = 10;
        if self.version.is_v5() && !clean_start {
            c.properties.session_expiry_interval = Some(3600);
        }
        self.s.connect(&c).unwrap();
        let sent = self.take_sent();
        assert_eq!(sent.len(), 1, "CONNECT alone before CONNACK");
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.session_present = session_present;
        self.feed_packet(Packet::ConnAck(ack)).unwrap();
        let connected = Ev::Connected { session_present };
        let events = self.take_events();
        assert!(events.contains(&connected), "{events:?}");
        // Keep what else the CONNACK caused (abandoned messages) for the test to see.
        self.events = events.into_iter().filter(|e| *e != connected).collect();
        self.take_sent()
    }

    pub fn publish(
        &mut self,
        t: &str,
        payload: &[u8],
        qos: QoS,
    ) -> Result<Option<PacketId>, CommandError> {
        self.s.publish(&Message::new(topic(t), payload, qos))
    }

    pub fn transport_closed(&mut self) {
        self.rx.clear();
        self.rx_header = 0;
        self.rx_skip = 0;
        let _ = self.s.handle_transport_closed(self.instant());
        self.flush();
    }
}

/// Decodes one transmitted packet.
/// The packet identifiers of the PUBRECs among `sent`, in order.
pub fn pubrec_ids(sent: &[Vec<u8>], version: ProtocolVersion) -> Vec<u16> {
    sent.iter()
        .filter_map(|b| match dec(b, version) {
            Packet::PubRec(r) => Some(r.packet_id.get()),
            _ => None,
        })
        .collect()
}

pub fn dec(bytes: &[u8], version: ProtocolVersion) -> Packet<'_> {
    match Packet::decode(bytes, version, u32::MAX).unwrap() {
        Decoded::Packet { packet, len } => {
            assert_eq!(len, bytes.len(), "one packet per transmit");
            packet
        }
        other => panic!("incomplete transmit {other:?}"),
    }
}

pub fn puback(n: u16) -> Packet<'static> {
    Packet::PubAck(PubResponse::new(pid(n)))
}
pub fn pubrec(n: u16) -> Packet<'static> {
    Packet::PubRec(PubResponse::new(pid(n)))
}
pub fn pubrel(n: u16) -> Packet<'static> {
    Packet::PubRel(PubResponse::new(pid(n)))
}
pub fn pubcomp(n: u16) -> Packet<'static> {
    Packet::PubComp(PubResponse::new(pid(n)))
}

pub fn incoming<'a>(t: &'a str, payload: &'a [u8], qos: QoS, id: u16) -> Packet<'a> {
    let mut p = Publish::new(topic(t), payload);
    p.qos_pid = QosPid::new(qos, pid(id.max(1)));
    Packet::Publish(p)
}

pub const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
