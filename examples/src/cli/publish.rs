//! `mqtt pub`.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::time::Duration;

use mqtt_client_tokio::{Bytes, Delivery, Error, Message, Properties, ProtocolVersion, QoS};
use tokio::sync::mpsc;

use super::args::{MessageArgs, PubArgs};
use super::connect::{Kind, Plan, Session};
use super::exit::{reason_string, Exit, Failure};
use super::props::PropertySet;
use super::trace::{print_stderr, print_stdout};

/// Publishes not yet acknowledged before `pub -l` waits for the oldest: bounds memory and
/// the session's queue (which it scans per message), while the in-flight window does the
/// flow control.
const MAX_PENDING: usize = 128;
/// Lines read ahead of the publisher.
const LINE_QUEUE: usize = 256;

/// Where the payloads come from.
pub enum Source {
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
    if props.unsent_warning().is_some() {
        return Err(Failure::usage(
            "-D subscribe / unsubscribe properties belong to sub and rr",
        ));
    }
    let mut plan = Plan::new(&args.conn, &props, Kind::Pub)?;
    if let Some(n) = args.max_inflight {
        plan.options.protocol.max_inflight = Some(n);
    }
    let topic = args
        .topic
        .clone()
        .or_else(|| plan.url_topic.clone())
        .ok_or_else(|| Failure::usage("Error: Both topic and message must be supplied."))?;
    mqtt_sansio::TopicName::new(&topic).map_err(|_| {
        Failure::usage(format!(
            "Invalid publish topic '{topic}', does it contain '+' or '#'?"
        ))
    })?;
    let source = source(&args.source)?;
    let version = plan.version;
    let session = plan
        .connect()
        .await
        .map_err(|f| refused_publisher(f, version))?;
    let publisher = Publisher {
        session: &session,
        topic,
        qos: args.qos,
        retain: args.retain,
        properties: props.publish,
        pending: VecDeque::new(),
        not_sent: 0,
        sent: 0,
        quiet: args.conn.quiet,
        receipts: args.receipts,
    };
    let outcome = publisher.publish_all(source, &args).await;
    session.close().await;
    outcome
}

/// mosquitto_pub adds a second line when the broker refuses the connection.
fn refused_publisher(mut failure: Failure, version: ProtocolVersion) -> Failure {
    if matches!(failure.exit, Exit::ConnectionRefused(_)) {
        failure.message.push_str(if version == ProtocolVersion::V5 {
            "\nError: A network protocol error occurred when communicating with the broker."
        } else {
            "\nError: The connection was refused."
        });
    }
    failure
}

/// Reads the payload of `-m`, `-f`, `-s` or `-n`, before connecting (as mosquitto_pub).
///
/// # Errors
/// A usage failure when none or several are given, or the file cannot be read.
pub fn source(args: &MessageArgs) -> Result<Source, Failure> {
    let given = [
        args.message.is_some(),
        args.file.is_some(),
        args.stdin_line,
        args.stdin_file,
        args.null_message,
    ];
    match given.iter().filter(|g| **g).count() {
        1 => {}
        0 => {
            return Err(Failure::usage(
                "Error: Both topic and message must be supplied.",
            ))
        }
        _ => {
            return Err(Failure::usage(
                "Error: Only one type of message can be sent at once.\n",
            ))
        }
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
    /// Queued publishes with their message numbers, oldest first.
    pending: VecDeque<(u64, Pending)>,
    /// `--receipts`.
    receipts: bool,
    /// QoS 0 messages lost with a connection.
    not_sent: u64,
    /// Messages queued so far: mosquitto's message number ("mid") of the next is one more.
    sent: u64,
    /// `--quiet`.
    quiet: bool,
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
        while let Some((mid, pending)) = self.pending.pop_front() {
            let outcome = pending.outcome().await;
            self.settle(mid, outcome)?;
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
        self.sent += 1;
        let pending = if self.receipts {
            Pending::Receipts(tokio::spawn(receipts(self.sent, delivery)))
        } else {
            Pending::Delivery(delivery)
        };
        self.pending.push_back((self.sent, pending));
        while self.pending.len() > MAX_PENDING {
            if let Some((mid, oldest)) = self.pending.pop_front() {
                let outcome = oldest.outcome().await;
                self.settle(mid, outcome)?;
            }
        }
        Ok(())
    }

    /// One publish's outcome. A refusal (5.0 PUBACK/PUBREC failure) is a warning, as in
    /// mosquitto_pub, which exits with 0 after it.
    fn settle(
        &mut self,
        mid: u64,
        outcome: Result<mqtt_client_tokio::ReasonCode, Error>,
    ) -> Result<(), Failure> {
        match outcome {
            Ok(_) => Ok(()),
            Err(Error::NotSent) => {
                self.not_sent += 1;
                Ok(())
            }
            Err(Error::Rejected(code)) => {
                if !self.quiet {
                    let mid = mid % 65_536;
                    print_stderr(&format!(
                        "Warning: Publish {mid} failed: {}.",
                        reason_string(code)
                    ));
                }
                Ok(())
            }
            Err(e) => Err(Failure::operation("Error publishing", &e)),
        }
    }
}

/// A queued publish: its delivery, or with `--receipts` the task that prints its receipts.
enum Pending {
    Delivery(Delivery),
    Receipts(tokio::task::JoinHandle<Result<mqtt_client_tokio::ReasonCode, Error>>),
}

impl Pending {
    async fn outcome(self) -> Result<mqtt_client_tokio::ReasonCode, Error> {
        match self {
            Self::Delivery(d) => d.await,
            Self::Receipts(task) => task.await.unwrap_or(Err(Error::Closed)),
        }
    }
}

/// Prints `stored N` once message `mid` is stored and `acked N` once the broker
/// acknowledged it, and returns the outcome.
async fn receipts(
    mid: u64,
    mut delivery: Delivery,
) -> Result<mqtt_client_tokio::ReasonCode, Error> {
    delivery.stored().await?;
    print_stdout(format!("stored {mid}\n").as_bytes());
    let outcome = delivery.await;
    if outcome.is_ok() {
        print_stdout(format!("acked {mid}\n").as_bytes());
    }
    outcome
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
