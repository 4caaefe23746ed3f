//! `mqtt-client-tokio` as a [`ClientUnderTest`]: its own driver task and reconnect policy,
//! messages from subscription streams, connection news from its event stream. Feature
//! `client-tokio`.

use std::time::Duration;

use mqtt_client_tokio::{Client, Error, Event, Message, Options, QueueFull};
use mqtt_sansio::QoS;

use super::{ClientConfig, ClientUnderTest, Command, ErrorKind, Io, Report, Reporter};

/// How long a graceful stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// `mqtt-client-tokio` with an offline queue (session store) of this many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokioClient {
    /// `Policy::offline_queue_bytes`.
    pub offline_queue_bytes: usize,
}

impl Default for TokioClient {
    /// A 1 MiB offline queue (the client's default).
    fn default() -> Self {
        Self {
            offline_queue_bytes: 1024 * 1024,
        }
    }
}

impl ClientUnderTest for TokioClient {
    fn name(&self) -> String {
        "tokio".into()
    }

    fn start(&self, config: ClientConfig, io: Io) {
        tokio::spawn(run(*self, config, io));
    }
}

/// The report class of an error.
pub fn error_kind(e: &Error) -> ErrorKind {
    match e {
        Error::KeepAliveTimeout => ErrorKind::KeepAliveTimeout,
        Error::Io(_) | Error::ConnectionClosed => ErrorKind::Transport,
        Error::ConnectTimeout => ErrorKind::Open,
        Error::Protocol(_) => ErrorKind::Protocol,
        Error::ConnectionRefused(_) | Error::ServerDisconnected { .. } => ErrorKind::Broker,
        _ => ErrorKind::Other,
    }
}

/// The client's options for `config`.
pub fn options(config: &ClientConfig, sizes: TokioClient) -> Result<Options, Error> {
    let mut o = Options::new(&format!("mqtt://{}", config.addr))?;
    o.protocol.version = config.version;
    o.protocol.client_id.clone_from(&config.client_id);
    o.protocol.keep_alive = Duration::from_secs(u64::from(config.keep_alive));
    o.protocol.clean_start = !config.persistent;
    o.protocol.session_expiry_interval = config.persistent.then_some(3600);
    o.policy.backoff_min = config.backoff_initial;
    o.policy.backoff_max = config.backoff_max;
    o.policy.connect_timeout = Duration::from_secs(5);
    o.policy.offline_queue_bytes = sizes.offline_queue_bytes;
    // Never fail a publish for a full queue: wait for room, as the scenarios expect.
    o.policy.queue_full = QueueFull::Wait;
    // Connection news, acknowledgements and every message: never let them lag.
    o.policy.event_buffer = 1 << 16;
    Ok(o)
}

async fn run(sizes: TokioClient, config: ClientConfig, mut io: Io) {
    let (client, mut events) = match options(&config, sizes).and_then(Client::new) {
        Ok(c) => c,
        Err(e) => {
            io.reports.send(Report::CommandFailed {
                detail: format!("Client::new: {e}"),
            });
            io.reports.send(Report::Stopped);
            return;
        }
    };
    // Each pass handles one command or one event; Stop (or the scenario's end) ends it.
    loop {
        tokio::select! {
            command = io.commands.recv() => match command {
                Some(Command::Publish { topic, payload, qos }) => {
                    publish(&client, Message::new(topic, payload, qos), &io.reports).await;
                }
                Some(Command::Subscribe { filter, qos }) => {
                    tokio::spawn(subscription(client.clone(), filter, qos, io.reports.clone()));
                }
                Some(Command::Stop) | None => break,
            },
            Some(event) = events.recv() => {
                for report in to_reports(event) {
                    io.reports.send(report);
                }
            }
        }
    }
    let _ = tokio::time::timeout(STOP_TIMEOUT, client.disconnect()).await;
    io.reports.send(Report::Stopped);
}

/// Queues the message in order, then reports its acknowledgement from a task of its own.
async fn publish(client: &Client, message: Message, reports: &Reporter) {
    let (payload, qos) = (message.payload.to_vec(), message.qos);
    match client.publish_queued(message).await {
        Ok(delivery) => {
            let reports = reports.clone();
            tokio::spawn(async move {
                let report = match delivery.await {
                    _ if qos == QoS::AtMostOnce => return,
                    Ok(code) => Report::Published {
                        payload,
                        ok: !code.is_error(),
                    },
                    Err(Error::Abandoned) => Report::Abandoned {
                        payload: Some(payload),
                    },
                    Err(Error::Rejected(_)) => Report::Published { payload, ok: false },
                    Err(Error::Closed) => return,
                    Err(e) => Report::CommandFailed {
                        detail: format!("publish: {e}"),
                    },
                };
                reports.send(report);
            });
        }
        Err(e) => {
            reports.send(Report::CommandFailed {
                detail: format!("publish_queued: {e}"),
            });
        }
    }
}

/// Subscribes and forwards the subscription's messages until it ends.
async fn subscription(client: Client, filter: String, qos: QoS, reports: Reporter) {
    let mut sub = match client.subscribe(filter, qos).await {
        Ok(sub) => sub,
        Err(Error::Rejected(_)) => {
            reports.send(Report::Subscribed { ok: false });
            return;
        }
        Err(e) => {
            reports.send(Report::CommandFailed {
                detail: format!("subscribe: {e}"),
            });
            return;
        }
    };
    reports.send(Report::Subscribed { ok: true });
    // Ends with the client.
    while let Some(m) = sub.recv().await {
        let report = Report::Message {
            topic: m.topic,
            payload: m.payload.to_vec(),
            qos: m.qos,
            dup: m.dup,
        };
        if !reports.send(report) {
            return;
        }
    }
}

fn to_reports(event: Event) -> Vec<Report> {
    let report = match event {
        Event::Connected {
            session_present, ..
        } => Report::Connected { session_present },
        Event::Disconnected { error } => {
            let error = Report::Error {
                kind: error_kind(&error),
                detail: error.to_string(),
            };
            return vec![error, Report::Disconnected];
        }
        Event::Error(error) => Report::Error {
            kind: error_kind(&error),
            detail: error.to_string(),
        },
        Event::Lagged { missed } => Report::CommandFailed {
            detail: format!("{missed} events missed"),
        },
        _ => return Vec::new(),
    };
    vec![report]
}
