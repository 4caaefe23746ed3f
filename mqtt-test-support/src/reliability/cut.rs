//! The scenario's side of a client under test: commands out, reports in, and a log of them.

use std::time::Duration;

use mqtt_sansio::QoS;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ClientConfig, ClientUnderTest, Command, ErrorKind, Io, Report, Reporter, Tally};

/// Poll interval of the waits.
const POLL: Duration = Duration::from_millis(5);

/// Everything a client under test reported, with the time it arrived.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CutLog {
    /// Connections accepted, with session present.
    pub connects: Vec<(Instant, bool)>,
    /// Connections ended.
    pub disconnects: Vec<Instant>,
    /// Errors.
    pub errors: Vec<(Instant, ErrorKind, String)>,
    /// Messages received.
    pub received: Tally,
    /// Publishes acknowledged (by payload; a payload acknowledged twice shows as duplicate).
    pub acked: Tally,
    /// Publishes acknowledged with an error reason code.
    pub refused: u64,
    /// Messages the client gave up on.
    pub abandoned: u64,
    /// SUBACKs, and whether they granted everything.
    pub subscribed: Vec<bool>,
    /// Commands that failed.
    pub command_failures: Vec<String>,
    /// The client reported [`Report::Stopped`].
    pub stopped: bool,
}

impl CutLog {
    fn push(&mut self, now: Instant, report: Report) {
        match report {
            Report::Connected { session_present } => self.connects.push((now, session_present)),
            Report::Error { kind, detail } => self.errors.push((now, kind, detail)),
            Report::Disconnected => self.disconnects.push(now),
            Report::Subscribed { ok } => self.subscribed.push(ok),
            Report::Published { payload, ok } => {
                if ok {
                    self.acked.record(&payload, None, false);
                } else {
                    self.refused += 1;
                }
            }
            Report::Message {
                payload, qos, dup, ..
            } => self.received.record(&payload, Some(qos), dup),
            Report::Abandoned { .. } => self.abandoned += 1,
            Report::CommandFailed { detail } => self.command_failures.push(detail),
            Report::Stopped => self.stopped = true,
        }
    }

    /// Reconnects where a persistent session was lost (session present 0 after the first).
    pub fn sessions_lost(&self) -> usize {
        self.connects.iter().skip(1).filter(|(_, sp)| !sp).count()
    }

    /// The first connection accepted at or after `t`.
    pub fn connected_after(&self, t: Instant) -> Option<Instant> {
        self.connects.iter().map(|(at, _)| *at).find(|at| *at >= t)
    }

    /// The first error of `kind` at or after `t`.
    pub fn error_after(&self, t: Instant, kind: ErrorKind) -> Option<Instant> {
        self.errors
            .iter()
            .find(|(at, k, _)| *at >= t && *k == kind)
            .map(|(at, _, _)| *at)
    }

    /// Counts of errors by kind, for reports.
    pub fn error_summary(&self) -> String {
        let mut kinds: Vec<(ErrorKind, usize)> = Vec::new();
        for (_, k, _) in &self.errors {
            match kinds.iter_mut().find(|(kind, _)| kind == k) {
                Some((_, n)) => *n += 1,
                None => kinds.push((*k, 1)),
            }
        }
        format!("{kinds:?}")
    }
}

/// A started client under test.
#[derive(Debug)]
pub struct Cut {
    name: String,
    commands: mpsc::UnboundedSender<Command>,
    reports: mpsc::UnboundedReceiver<(Instant, Report)>,
    /// What it reported so far (updated by [`Cut::drain`] and the waits).
    pub log: CutLog,
}

impl Cut {
    /// Starts `client` with `config`.
    pub fn start(client: &dyn ClientUnderTest, config: ClientConfig) -> Self {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        client.start(
            config,
            Io {
                commands: commands_rx,
                reports: Reporter(reports_tx),
            },
        );
        Self {
            name: client.name(),
            commands,
            reports,
            log: CutLog::default(),
        }
    }

    /// The client's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a command.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Asks for a publish.
    pub fn publish(&self, topic: &str, payload: Vec<u8>, qos: QoS) {
        self.send(Command::Publish {
            topic: topic.to_owned(),
            payload,
            qos,
        });
    }

    /// Takes every report that has arrived into the log.
    pub fn drain(&mut self) {
        while let Ok((at, report)) = self.reports.try_recv() {
            self.log.push(at, report);
        }
    }

    /// Waits until `condition` holds for the log, at most `timeout`.
    ///
    /// # Errors
    /// A description with the log's counters when `timeout` passed first.
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&CutLog) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if condition(&self.log) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: no {what} within {timeout:?}; connects {}, errors {}",
                    self.name,
                    self.log.connects.len(),
                    self.log.error_summary()
                ));
            }
            tokio::select! {
                Some((at, report)) = self.reports.recv() => self.log.push(at, report),
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Asks the client to stop and waits for it (at most `timeout`).
    pub async fn stop(&mut self, timeout: Duration) {
        self.send(Command::Stop);
        let _ = self.wait_until(timeout, "stop", |l| l.stopped).await;
    }
}
