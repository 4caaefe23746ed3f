//! The demo's output: one line per thing that happened, stamped with the time since the start
//! and the speaker, coloured when stdout is a terminal.
//!
//! ```text
//! [ 0.412s] controller  -> led/set  on
//! ```
//!
//! Lines are written under one lock, so the lines of the device, the controller and the broker
//! never interleave, and timestamps only go up. Before each line, the broker's log (when the
//! demo started the broker) is read for new lines, so what mosquitto logged before, say, the
//! will arrived is printed before that.

use std::env;
use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::broker::LogTail;

/// Who says a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The demo itself: what it does next, the summary.
    Demo,
    /// The MQTT broker (mosquitto's log, when the demo started it).
    Broker,
    /// The simulated ESP32 LED device.
    Device,
    /// The controller on the PC (`mqtt-client-tokio`).
    Controller,
}

impl Speaker {
    fn label(self) -> &'static str {
        match self {
            Speaker::Demo => "demo",
            Speaker::Broker => "broker",
            Speaker::Device => "device",
            Speaker::Controller => "controller",
        }
    }

    /// SGR colour: bold, magenta, yellow, cyan.
    fn sgr(self) -> &'static str {
        match self {
            Speaker::Demo => "1",
            Speaker::Broker => "35",
            Speaker::Device => "33",
            Speaker::Controller => "36",
        }
    }
}

/// How a line's text is highlighted (with colour only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// As is.
    Plain,
    /// Green: the demo's success.
    Good,
    /// Red: something went wrong.
    Bad,
    /// Grey: background detail (installer output, the broker log after a failure).
    Dim,
}

impl Tone {
    fn sgr(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some("1;32"),
            Tone::Bad => Some("1;31"),
            Tone::Dim => Some("2"),
        }
    }
}

/// Whether to colour stdout: it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn color_wanted() -> bool {
    io::stdout().is_terminal() && env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The demo's transcript on stdout. Share it by reference or in an `Arc`.
#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    color: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    broker_log: Option<LogTail>,
}

impl Transcript {
    /// A transcript whose clock starts now, coloured if `color`.
    pub fn new(color: bool) -> Self {
        Self {
            start: Instant::now(),
            color,
            state: Mutex::new(State::default()),
        }
    }

    /// When the transcript's clock started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Prints one line: `[  t.ttts] speaker     text`.
    pub fn say(&self, speaker: Speaker, tone: Tone, text: impl Display) {
        let mut state = self.lock();
        self.flush_broker_locked(&mut state);
        self.write_line(speaker, tone, &text.to_string());
    }

    /// Prints a line without timestamp or speaker (the banner and the footer).
    pub fn plain(&self, tone: Tone, text: impl Display) {
        let _state = self.lock();
        let text = text.to_string();
        let line = match (self.color, tone.sgr()) {
            (true, Some(sgr)) => format!("\x1b[{sgr}m{text}\x1b[0m"),
            _ => text,
        };
        print_line(&line);
    }

    /// From now on, prints what the broker logs (see [`LogTail`]) before every line and on
    /// [`Transcript::flush_broker`].
    pub(crate) fn follow_broker_log(&self, tail: LogTail) {
        self.lock().broker_log = Some(tail);
    }

    /// Stops following the broker's log and returns the tail reader, if there was one.
    pub(crate) fn unfollow_broker_log(&self) -> Option<LogTail> {
        self.lock().broker_log.take()
    }

    /// Prints what the broker logged since the last line (nothing if the demo did not start
    /// the broker).
    pub fn flush_broker(&self) {
        let mut state = self.lock();
        self.flush_broker_locked(&mut state);
    }

    fn flush_broker_locked(&self, state: &mut State) {
        let Some(tail) = state.broker_log.as_mut() else {
            return;
        };
        for line in tail.new_lines() {
            self.write_line(Speaker::Broker, Tone::Plain, &line);
        }
    }

    fn write_line(&self, speaker: Speaker, tone: Tone, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        let stamp = format!("[{t:6.3}s]");
        let label = format!("{:<10}", speaker.label());
        let line = if self.color {
            let text = match tone.sgr() {
                Some(sgr) => format!("\x1b[{sgr}m{text}\x1b[0m"),
                None => text.to_owned(),
            };
            format!(
                "\x1b[2m{stamp}\x1b[0m \x1b[{}m{label}\x1b[0m  {text}",
                speaker.sgr()
            )
        } else {
            format!("{stamp} {label}  {text}")
        };
        print_line(&line);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while printing leaves nothing half-updated worth refusing to print over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes one line to stdout and flushes it, so a pipe (the CI test) sees it at once. A closed
/// stdout (`demo | head`) is not worth failing the demo over.
fn print_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
