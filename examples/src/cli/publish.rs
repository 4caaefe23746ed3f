//! `mqtt pub`.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::time::Duration;

use mqtt_client_tokio::{Bytes, Delivery, Error, Message, Properties, QoS};
use tokio::sync::mpsc;

use super::args::PubArgs;
use super::connect::{Plan, Session};
use super::exit::{Exit, Failure};
use super::props::PropertySet;

/// Publishes not yet acknowledged before `pub -l` waits for the oldest: bounds memory and
/// the session's queue (which it scans per message), while the in-flight window does the
/// flow control.
const MAX_PENDING: usize = 128;
/// Lines read ahead of the publisher.
const LINE_QUEUE: usize = 256;

/// Where the payloads come from.
enum Source {
    /// One payload (`-m`, `-f`, `-s`, `-n`).
    One(Bytes),
    /// `-l`: stdin, one message per line.
    Lines,
}

/// Runs `mqtt pub`.
///
/// # Errors
/// A failure with its exit code.
pub async fn run(args: PubArgs) -> Result<(), Failure> {
    let props = PropertySet::parse(&args.conn.properties).map_err(Failure::usage)?;
    let plan = Plan::new(&args.conn, &props)?;
    let topic = args
        .topic
        .clone()
        .or_else(|| plan.url_topic.clone())
        .ok_or_else(|| Failure::usage("no topic: give -t TOPIC (or -L mqtt://host/TOPIC)"))?;
    mqtt_sansio::TopicName::new(&topic)
        .map_err(|e| Failure::usage(format!("invalid topic {topic:?}: {e}")))?;
    let source = source(&args)?;
    let session = plan.connect(args.conn.debug).await?;
    let publisher = Publisher {
        session: &session,
        topic,
        qos: args.qos,
        retain: args.retain,
        properties: props.publish,
        pending: VecDeque::new(),
        not_sent: 0,
    };
    let outcome = publisher.publish_all(source, &args).await;
    session.close().await;
    outcome
}

/// Reads the payload of `-m`, `-f`, `-s` or `-n`, before connecting (as mosquitto_pub).
fn source(args: &PubArgs) -> Result<Source, Failure> {
    let given = [
        args.message.is_some(),
        args.file.is_some(),
        args.stdin_line,
        args.stdin_file,
        args.null_message,
    ];
    match given.iter().filter(|g| **g).count() {
        1 => {}
        0 => return Err(Failure::usage("no message: give one of -m, -f, -l, -s, -n")),
        _ => return Err(Failure::usage("give only one of -m, -f, -l, -s, -n")),
    }
    Ok(if let Some(m) = &args.message {
        Source::One(Bytes::from(m.clone()))
    } else if let Some(path) = &args.file {
        let data = std::fs::read(path)
            .map_err(|e| Failure::usage(format!("-f {}: {e}", path.display())))?;
        Source::One(Bytes::from(data))
    } else if args.stdin_file {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        Source::One(Bytes::from(data))
    } else if args.null_message {
        Source::One(Bytes::new())
    } else {
        Source::Lines
    })
}

struct Publisher<'a> {
    session: &'a Session,
    topic: String,
    qos: QoS,
    retain: bool,
    properties: Properties,
    /// Queued publishes, oldest first.
    pending: VecDeque<Delivery>,
    /// QoS 0 messages lost with a connection.
    not_sent: u64,
}

impl Publisher<'_> {
    async fn publish_all(mut self, source: Source, args: &PubArgs) -> Result<(), Failure> {
        match source {
            Source::One(payload) => {
                let delay = Duration::from_secs_f64(args.repeat_delay.max(0.0));
                for i in 0..args.repeat.max(1) {
                    if i > 0 && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    self.queue(payload.clone()).await?;
                }
            }
            Source::Lines => {
                let mut lines = stdin_lines();
                while let Some(line) = lines.recv().await {
                    self.queue(Bytes::from(line?)).await?;
                }
            }
        }
        while let Some(delivery) = self.pending.pop_front() {
            self.settle(delivery.await)?;
        }
        match self.not_sent {
            0 => Ok(()),
            n => Err(Failure::new(
                Exit::Error,
                format!("{n} QoS 0 messages were not sent: the connection dropped"),
            )),
        }
    }

    /// Queues one message; waits for the oldest outcome when too many are pending.
    async fn queue(&mut self, payload: Bytes) -> Result<(), Failure> {
        let message = Message::new(self.topic.clone(), payload, self.qos)
            .retain(self.retain)
            .properties(self.properties.clone());
        let delivery = self
            .session
            .client
            .publish_queued(message)
            .await
            .map_err(|e| Failure::operation("Error publishing", &e))?;
        self.pending.push_back(delivery);
        while self.pending.len() > MAX_PENDING {
            if let Some(oldest) = self.pending.pop_front() {
                self.settle(oldest.await)?;
            }
        }
        Ok(())
    }

    fn settle(
        &mut self,
        outcome: Result<mqtt_client_tokio::ReasonCode, Error>,
    ) -> Result<(), Failure> {
        match outcome {
            Ok(_) => Ok(()),
            Err(Error::NotSent) => {
                self.not_sent += 1;
                Ok(())
            }
            Err(e) => Err(Failure::operation("Error publishing", &e)),
        }
    }
}

/// Stdin, line by line, read on a thread of its own (blocking reads do not stall the
/// runtime). A trailing `\n` is removed, as mosquitto_pub does.
fn stdin_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(LINE_QUEUE);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}
