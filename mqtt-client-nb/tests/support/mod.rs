//! Shared by the integration tests: a tokio clock, owned copies of events, bounded drivers.
#![allow(dead_code)]

pub mod flash;

use std::time::Duration;

use mqtt_client_nb::mqtt_sansio::session::Notice;
use mqtt_client_nb::mqtt_sansio::{PacketId, QoS, ReasonCode};
use mqtt_client_nb::{Client, Clock, DeleteReason, Error, Event, Journal};

/// The client's transport over a tokio TCP stream.
pub type Tcp = embedded_io_adapters::tokio_1::FromTokio<tokio::net::TcpStream>;

/// A TCP connection to `addr` (bounded wait), with Nagle off.
pub async fn tcp(addr: std::net::SocketAddr) -> Tcp {
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    stream.set_nodelay(true).unwrap();
    embedded_io_adapters::tokio_1::FromTokio::new(stream)
}

/// [`Clock`] over `tokio::time` (so paused test time works too).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        tokio::time::sleep_until(self.start + Duration::from_millis(deadline_ms)).await;
    }
}

/// An event copied out of the client, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    BeforeConnect,
    Connected {
        session_present: bool,
    },
    Disconnected,
    Subscribed {
        pid: u16,
        codes: Vec<ReasonCode>,
    },
    Unsubscribed {
        pid: u16,
    },
    Resubscribed {
        pid: u16,
        filters: Vec<String>,
        codes: Vec<ReasonCode>,
    },
    Published {
        pid: u16,
        qos: QoS,
        reason: ReasonCode,
    },
    Message {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        retain: bool,
        dup: bool,
    },
    Deleted {
        pid: Option<u16>,
        reason: DeleteReason,
    },
    Auth,
    RequestDropped {
        pid: u16,
        reason: ReasonCode,
    },
    Notice(Notice),
    Error(Error),
    Chunk {
        topic: String,
        data: Vec<u8>,
        offset: usize,
        total: usize,
        qos: QoS,
        dup: bool,
        last: bool,
    },
}

pub fn copy(event: &Event<'_>) -> Ev {
    match *event {
        Event::BeforeConnect => Ev::BeforeConnect,
        Event::Connected {
            session_present, ..
        } => Ev::Connected { session_present },
        Event::Disconnected => Ev::Disconnected,
        Event::Subscribed {
            packet_id,
            reason_codes,
        } => Ev::Subscribed {
            pid: packet_id.get(),
            codes: reason_codes.iter().collect(),
        },
        Event::Unsubscribed { packet_id, .. } => Ev::Unsubscribed {
            pid: packet_id.get(),
        },
        Event::Resubscribed {
            packet_id,
            subscriptions,
            reason_codes,
        } => Ev::Resubscribed {
            pid: packet_id.get(),
            filters: subscriptions
                .iter()
                .map(|s| s.filter.as_str().to_owned())
                .collect(),
            codes: reason_codes.iter().collect(),
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
        Event::Message(p) => Ev::Message {
            topic: p.topic.as_str().to_owned(),
            payload: p.payload.to_vec(),
            qos: p.qos_pid.qos(),
            retain: p.retain,
            dup: p.dup,
        },
        Event::Deleted {
            packet_id, reason, ..
        } => Ev::Deleted {
            pid: packet_id.map(PacketId::get),
            reason,
        },
        Event::Auth(_) => Ev::Auth,
        Event::RequestDropped {
            packet_id,
            reason_code,
        } => Ev::RequestDropped {
            pid: packet_id.get(),
            reason: reason_code,
        },
        Event::Notice(n) => Ev::Notice(n),
        Event::Error(e) => Ev::Error(e),
        Event::MessageChunk(c) => Ev::Chunk {
            topic: c.message.topic.as_str().to_owned(),
            data: c.message.payload.to_vec(),
            offset: c.offset,
            total: c.total_len,
            qos: c.message.qos_pid.qos(),
            dup: c.message.dup,
            last: c.is_last(),
        },
        _ => panic!("unknown event {event:?}"),
    }
}

/// Polls until `want` matches an event (returned with everything seen before it), at most
/// `limit` events and `secs` seconds.
pub async fn poll_until<S, C, J>(
    client: &mut Client<'_, S, J>,
    clock: &C,
    secs: u64,
    mut want: impl FnMut(&Ev) -> bool,
) -> Vec<Ev>
where
    S: embedded_io_async::Read + embedded_io_async::Write,
    C: Clock,
    J: Journal,
{
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    for _ in 0..10_000 {
        let ev = tokio::time::timeout_at(deadline, async { copy(&client.poll(clock).await) })
            .await
            .unwrap_or_else(|_| panic!("timed out after {secs} s; saw {seen:?}"));
        let done = want(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
    panic!("no matching event in 10,000: {seen:?}");
}

/// Polls for `ms` milliseconds, collecting what comes (bounded to 10,000 events).
pub async fn poll_for<S, C, J>(client: &mut Client<'_, S, J>, clock: &C, ms: u64) -> Vec<Ev>
where
    S: embedded_io_async::Read + embedded_io_async::Write,
    C: Clock,
    J: Journal,
{
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    for _ in 0..10_000 {
        match tokio::time::timeout_at(deadline, async { copy(&client.poll(clock).await) }).await {
            Ok(ev) => {
                let offline = ev == Ev::Error(Error::NotConnected);
                seen.push(ev);
                if offline {
                    return seen;
                }
            }
            Err(_) => return seen,
        }
    }
    seen
}
