//! `mqtt-client-nb` as a [`ClientUnderTest`]: the client over tokio `TcpStream`s (through
//! `embedded-io-adapters`), kept connected by `poll_reconnecting`, with caller buffers of a
//! chosen size. Feature `client-nb`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_client_nb::mqtt_sansio::session::CommandError;
use mqtt_client_nb::{Client, Clock, Error, Event, Options};
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::TryRecvError;

use super::{ClientConfig, ClientUnderTest, Command, ErrorKind, Io, Report, Reporter};

/// The transport: a tokio `TcpStream` as an `embedded-io-async` stream.
pub type Tcp = FromTokio<TcpStream>;

/// How long a graceful stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// `mqtt-client-nb` with buffers of these sizes (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbClient {
    /// Receive buffer.
    pub rx: usize,
    /// Transmit buffer.
    pub tx: usize,
    /// Session store.
    pub store: usize,
}

impl Default for NbClient {
    /// 1 KiB receive and transmit buffers, a 16 KiB store.
    fn default() -> Self {
        Self {
            rx: 1024,
            tx: 1024,
            store: 16 * 1024,
        }
    }
}

impl ClientUnderTest for NbClient {
    fn name(&self) -> String {
        "nb".into()
    }

    fn start(&self, config: ClientConfig, io: Io) {
        tokio::spawn(run(*self, config, io));
    }
}

/// [`Clock`] over `tokio::time`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
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

/// Opens a TCP connection (5 s at most), with `TCP_NODELAY`.
pub async fn open(addr: SocketAddr) -> std::io::Result<Tcp> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(FromTokio::new(stream))
}

/// The report class of an error.
pub fn error_kind(e: &Error) -> ErrorKind {
    match e {
        Error::KeepAliveTimeout => ErrorKind::KeepAliveTimeout,
        Error::Transport(_) | Error::ConnectionClosed | Error::ConnectionLost => {
            ErrorKind::Transport
        }
        Error::OpenFailed => ErrorKind::Open,
        Error::Protocol(_) => ErrorKind::Protocol,
        Error::Refused(_) | Error::ServerDisconnect(_) => ErrorKind::Broker,
        _ => ErrorKind::Other,
    }
}

async fn run(sizes: NbClient, config: ClientConfig, mut io: Io) {
    let (mut rx, mut tx, mut store) = (vec![0; sizes.rx], vec![0; sizes.tx], vec![0; sizes.store]);
    let mut options = Options::new(config.version);
    options.client_id = Some(&config.client_id);
    options.keep_alive = std::time::Duration::from_secs(config.keep_alive.into());
    options.clean_start = !config.persistent;
    options.session_expiry = if config.persistent { 3600 } else { 0 };
    options.reconnect.initial = config.backoff_initial;
    options.reconnect.max = config.backoff_max;
    let mut client: Client<'_, Tcp> = match Client::new(options, &mut rx, &mut tx, &mut store) {
        Ok(c) => c,
        Err(e) => {
            io.reports.send(Report::CommandFailed {
                detail: format!("Client::new: {e}"),
            });
            io.reports.send(Report::Stopped);
            return;
        }
    };
    let clock = TokioClock::new();
    let addr = config.addr;
    let mut pending = VecDeque::new();
    let mut inflight = HashMap::new();
    // Each pass handles one command or one event; the scenario's Stop (or its end) ends it.
    loop {
        loop {
            match io.commands.try_recv() {
                Ok(c) => pending.push_back(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    pending.push_back(Command::Stop);
                    break;
                }
            }
        }
        if feed(&mut client, &mut pending, &mut inflight, &io.reports) {
            break;
        }
        let reports = tokio::select! {
            command = io.commands.recv() => {
                pending.push_back(command.unwrap_or(Command::Stop));
                continue;
            }
            reports = async {
                let event = client
                    .poll_reconnecting(&clock, |_old, _redirect| open(addr))
                    .await;
                to_reports(&event, &mut inflight)
            } => reports,
        };
        for report in reports {
            if !io.reports.send(report) {
                return;
            }
        }
    }
    stop(&mut client, &clock).await;
    io.reports.send(Report::Stopped);
}

/// Hands pending commands to the client while it takes them; `true` on Stop.
fn feed(
    client: &mut Client<'_, Tcp>,
    pending: &mut VecDeque<Command>,
    inflight: &mut HashMap<u16, Vec<u8>>,
    reports: &Reporter,
) -> bool {
    while let Some(command) = pending.front() {
        let result = match command {
            Command::Stop => return true,
            Command::Subscribe { filter, qos } => client.subscribe(filter, *qos).map(|_| ()),
            Command::Publish {
                topic,
                payload,
                qos,
            } => client.publish(topic, *qos, false, payload).map(|id| {
                if let Some(id) = id {
                    inflight.insert(id.get(), payload.clone());
                }
            }),
        };
        match result {
            // Retried once acknowledgements free room.
            Err(Error::Command(CommandError::StoreFull { .. })) => return false,
            Err(e) => {
                reports.send(Report::CommandFailed {
                    detail: format!("{command:?}: {e}"),
                });
            }
            Ok(()) => {}
        }
        pending.pop_front();
    }
    false
}

fn to_reports(event: &Event<'_>, inflight: &mut HashMap<u16, Vec<u8>>) -> Vec<Report> {
    let report = match event {
        Event::Connected {
            session_present, ..
        } => Report::Connected {
            session_present: *session_present,
        },
        Event::Disconnected => Report::Disconnected,
        Event::Error(e) => Report::Error {
            kind: error_kind(e),
            detail: e.to_string(),
        },
        Event::Subscribed { reason_codes, .. } => Report::Subscribed {
            ok: reason_codes.iter().all(|c| !c.is_error()),
        },
        Event::Published {
            packet_id,
            reason_code,
            ..
        } => Report::Published {
            payload: inflight.remove(&packet_id.get()).unwrap_or_default(),
            ok: !reason_code.is_error(),
        },
        Event::Message(p) => Report::Message {
            topic: p.topic.as_str().to_owned(),
            payload: p.payload.to_vec(),
            qos: p.qos_pid.qos(),
            dup: p.dup,
        },
        Event::Deleted { packet_id, .. } => Report::Abandoned {
            payload: packet_id.and_then(|id| inflight.remove(&id.get())),
        },
        _ => return Vec::new(),
    };
    vec![report]
}

/// Disconnects gracefully if connected, at most [`STOP_TIMEOUT`].
async fn stop(client: &mut Client<'_, Tcp>, clock: &TokioClock) {
    if client.disconnect().is_err() {
        drop(client.close());
        return;
    }
    let _ = tokio::time::timeout(STOP_TIMEOUT, async {
        // Bounded by the timeout; a handful of events at most.
        loop {
            if matches!(
                client.poll(clock).await,
                Event::Disconnected | Event::Error(_)
            ) {
                break;
            }
        }
    })
    .await;
    drop(client.close());
}
