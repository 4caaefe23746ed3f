//! The story: a controller watches the device's topics, the device comes online, the
//! controller switches its LED on, off, toggles it, sends a command the device does not know,
//! and the device loses power, so the broker publishes its last will.
//!
//! One loop ([`Stage::pump`]) reads what the device and the controller report and prints it as
//! it happens, also while the script waits for a PUBACK or pauses between steps, so the
//! timestamps are when things happened. Every wait has a limit.

use std::fmt;
use std::time::Duration;

use mqtt_client_tokio::{
    Bytes, Client, Message, Options, ProtocolVersion, QoS, Subscription, SubscriptionOptions,
};
use tokio::time::Instant;

use crate::device_sim::{DeviceSim, SimConfig, SimEvent, SimHandle};

use super::broker::Endpoint;
use super::transcript::{Speaker, Tone, Transcript};
use super::{DemoError, DemoOptions};

/// Time between telemetry messages of the simulated device (the firmware's default is 30 s).
const TELEMETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Limit for connecting: the controller's CONNACK, the device coming online.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Limit for an answer: PUBACK, SUBACK, a state report, the will.
const REPLY_LIMIT: Duration = Duration::from_secs(5);
/// Limit for the first telemetry message, if none came during the commands.
const TELEMETRY_LIMIT: Duration = Duration::from_secs(3);
/// Pause between steps, so that the transcript reads as a sequence.
const STEP_PAUSE: Duration = Duration::from_millis(300);
/// How often the broker's log is read while nothing else happens.
const LOG_POLL: Duration = Duration::from_millis(25);
/// The topics the controller watches, under `devices/<id>/`.
const WATCHED: [&str; 4] = ["status", "led/state", "led/error", "telemetry"];
/// The commands, with the LED state each must lead to (the LED starts off).
const COMMANDS: [(&str, bool); 3] = [("on", true), ("off", false), ("toggle", true)];
/// A command the device does not know.
const INVALID_COMMAND: &str = "blink";

/// What a successful run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// The LED states the device reported after each command, `true` for on.
    pub states: Vec<bool>,
    /// The command the device rejected.
    pub rejected: String,
    /// Telemetry messages the controller received.
    pub telemetry: u32,
    /// From the power cut to the will arriving at the controller.
    pub will_after: Duration,
    /// From the start of the demo to the will.
    pub total: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let states: Vec<&str> = self.states.iter().map(|&on| led_word(on)).collect();
        write!(
            f,
            "OK in {:.1} s: the LED went {}; {:?} was rejected; {} telemetry message{}; \
             the will \"offline\" came {:.1} ms after the power cut",
            self.total.as_secs_f64(),
            states.join(", "),
            self.rejected,
            self.telemetry,
            if self.telemetry == 1 { "" } else { "s" },
            self.will_after.as_secs_f64() * 1000.0
        )
    }
}

/// Runs the story against `endpoint`.
pub(super) async fn play(
    transcript: &Transcript,
    options: &DemoOptions,
    endpoint: &Endpoint,
    config: SimConfig,
) -> Result<Summary, DemoError> {
    let id = config
        .resolved_id()
        .map_err(|e| DemoError::Usage(format!("--id: {e}")))?
        .as_str()
        .to_owned();
    let prefix = format!("devices/{id}/");
    let client = connect_controller(transcript, endpoint, &id).await?;
    let messages = watch(transcript, &client, &prefix).await?;
    transcript.say(
        Speaker::Device,
        Tone::Plain,
        format!(
            "powering on {id}: led-device logic + mqtt-client-nb (no_std), MQTT 3.1.1, \
             telemetry every {} s",
            TELEMETRY_INTERVAL.as_secs()
        ),
    );
    let sim = DeviceSim::spawn(config).map_err(|e| DemoError::Usage(e.to_string()))?;
    let mut stage = Stage {
        transcript,
        sim,
        device_running: true,
        client,
        messages,
        prefix,
        verbose: options.verbose,
        last_command: None,
        device_problem: None,
        killed_at: None,
        telemetry: 0,
    };
    stage.device_comes_online().await?;
    let mut states = Vec::new();
    for (command, on) in COMMANDS {
        stage.switch(command, on).await?;
        states.push(on);
    }
    stage
        .invalid_command(*states.last().unwrap_or(&false))
        .await?;
    stage.telemetry_seen().await?;
    let (will_after, will_at) = stage.power_cut().await?;
    let telemetry = stage.telemetry;
    stage.wrap_up(options, endpoint).await;
    Ok(Summary {
        states,
        rejected: INVALID_COMMAND.to_owned(),
        telemetry,
        will_after,
        total: will_at.duration_since(Instant::from_std(transcript.start())),
    })
}

/// The simulated device: the demo's broker and credentials, telemetry every second, quick
/// reconnects.
pub(super) fn device_config(
    options: &DemoOptions,
    endpoint: &Endpoint,
) -> Result<SimConfig, DemoError> {
    let mut config = SimConfig::from_url(&endpoint.url)
        .map_err(|e| DemoError::Usage(format!("--broker: {e}")))?;
    config.username.clone_from(&endpoint.username);
    config.password.clone_from(&endpoint.password);
    config.device_id.clone_from(&options.device_id);
    config.telemetry_interval = TELEMETRY_INTERVAL;
    config.backoff_initial = Duration::from_millis(200);
    config.backoff_max = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(5);
    Ok(config)
}

/// Connects the controller (MQTT 5.0) as `ctl-<device id>`, waiting for CONNACK.
async fn connect_controller(
    transcript: &Transcript,
    endpoint: &Endpoint,
    device_id: &str,
) -> Result<Client, DemoError> {
    let mut options =
        Options::new(&endpoint.url).map_err(|e| DemoError::Usage(format!("--broker: {e}")))?;
    options.protocol.version = ProtocolVersion::V5;
    // Unique per device; a 3.1.1 broker need not accept ids over 23 characters (5.0 ones
    // usually do), so longer ones are left to the client to generate.
    let client_id = format!("ctl-{device_id}");
    if client_id.len() <= 23 {
        options.protocol.client_id = client_id;
    }
    options.protocol.username.clone_from(&endpoint.username);
    options.protocol.password = endpoint.password.clone().map(Bytes::from);
    options.policy.connect_timeout = Duration::from_secs(5);
    let connected = tokio::time::timeout(CONNECT_LIMIT, Client::connect(options)).await;
    let (client, _events) = match connected {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => {
            let hint = match e {
                mqtt_client_tokio::Error::ConnectionRefused(_) => {
                    " (check --username and --password)"
                }
                _ => "",
            };
            return Err(DemoError::Failed(format!(
                "the controller could not connect to {}: {e}{hint}",
                endpoint.url
            )));
        }
        Err(_) => {
            return Err(DemoError::timeout(
                "the controller's connection",
                CONNECT_LIMIT,
            ))
        }
    };
    let user = match &endpoint.username {
        Some(user) => format!(", user {user:?}"),
        None => String::new(),
    };
    transcript.say(
        Speaker::Controller,
        Tone::Plain,
        format!(
            "connected to {} (mqtt-client-tokio, MQTT 5.0{user})",
            endpoint.url
        ),
    );
    Ok(client)
}

/// Subscribes the controller to the device's topics (QoS 1).
async fn watch(
    transcript: &Transcript,
    client: &Client,
    prefix: &str,
) -> Result<Subscription, DemoError> {
    let filters = WATCHED.map(|t| {
        (
            format!("{prefix}{t}"),
            SubscriptionOptions::new(QoS::AtLeastOnce),
        )
    });
    let subscription = tokio::time::timeout(REPLY_LIMIT, client.subscribe_many(filters))
        .await
        .map_err(|_| DemoError::timeout("the controller's SUBACK", REPLY_LIMIT))?
        .map_err(|e| DemoError::Failed(format!("the controller could not subscribe: {e}")))?;
    if let Some(code) = subscription.reason_codes().iter().find(|c| c.is_error()) {
        return Err(DemoError::Failed(format!(
            "the broker refused the controller's subscription: {code:?}"
        )));
    }
    transcript.say(
        Speaker::Controller,
        Tone::Plain,
        format!("watching {prefix}{{{}}}", WATCHED.join(",")),
    );
    Ok(subscription)
}

/// Something the device or the controller reported.
#[derive(Debug)]
enum Seen {
    /// The simulated device's event.
    Device(SimEvent),
    /// A message the controller received.
    Message(Received),
}

/// A message the controller received, by topic under `devices/<id>/`.
#[derive(Debug)]
struct Received {
    /// The topic without `devices/<id>/`, e.g. `led/state`.
    suffix: String,
    /// The payload (lossy UTF-8).
    payload: String,
    /// Whether the broker sent it from its retained store (rather than as it was published).
    retained: bool,
    /// When it arrived.
    at: Instant,
}

impl Seen {
    /// Whether this is a live (not retained) message on `suffix` with `payload`.
    fn is_live(&self, suffix: &str, payload: &str) -> bool {
        matches!(self, Seen::Message(m) if !m.retained && m.suffix == suffix && m.payload == payload)
    }

    /// Whether this is a live message on `suffix`.
    fn is_live_on(&self, suffix: &str) -> bool {
        matches!(self, Seen::Message(m) if !m.retained && m.suffix == suffix)
    }
}

/// The running demo: the device, the controller, and what has been seen.
struct Stage<'a> {
    transcript: &'a Transcript,
    sim: SimHandle,
    /// False once the device's event log has ended (after the power cut).
    device_running: bool,
    client: Client,
    messages: Subscription,
    /// `devices/<id>/`.
    prefix: String,
    verbose: bool,
    /// The command the device received last, shown with the LED change it caused.
    last_command: Option<String>,
    /// The device's last connection problem, as a hint when it does not come online.
    device_problem: Option<String>,
    killed_at: Option<Instant>,
    telemetry: u32,
}

impl Stage<'_> {
    /// Waits until the device is online, subscribed to its commands, and has reported its LED.
    async fn device_comes_online(&mut self) -> Result<(), DemoError> {
        let (mut online, mut subscribed, mut state) = (false, false, false);
        self.until("the device to come online", CONNECT_LIMIT, |seen| {
            online |= seen.is_live("status", "online");
            state |= seen.is_live_on("led/state");
            subscribed |= matches!(
                seen,
                Seen::Device(SimEvent::Subscribed { granted: true, .. })
            );
            online && subscribed && state
        })
        .await
        .map(drop)
    }

    /// Sends `command` and waits for the state report `on`; checks the simulated LED.
    async fn switch(&mut self, command: &str, on: bool) -> Result<(), DemoError> {
        self.pause().await?;
        let want = led_word(on);
        self.command(
            command,
            &format!("the state report {want:?} after {command:?}"),
            |seen| seen.is_live("led/state", want),
        )
        .await?;
        self.check_led(on)
    }

    /// Sends a command the device does not know and waits for its error report.
    async fn invalid_command(&mut self, led: bool) -> Result<(), DemoError> {
        self.pause().await?;
        self.command(
            INVALID_COMMAND,
            &format!("the device to report the invalid command {INVALID_COMMAND:?}"),
            |seen| seen.is_live_on("led/error"),
        )
        .await?;
        self.check_led(led)
    }

    /// Makes sure at least one telemetry message arrived.
    async fn telemetry_seen(&mut self) -> Result<(), DemoError> {
        if self.telemetry == 0 {
            self.until("telemetry", TELEMETRY_LIMIT, |seen| {
                seen.is_live_on("telemetry")
            })
            .await?;
        }
        Ok(())
    }

    /// Kills the device (TCP dropped, no DISCONNECT) and waits for its will. Returns the time
    /// from the kill to the will, and when the will arrived.
    async fn power_cut(&mut self) -> Result<(Duration, Instant), DemoError> {
        self.pause().await?;
        self.transcript.say(
            Speaker::Demo,
            Tone::Plain,
            "power cut: the device's TCP connection drops without DISCONNECT",
        );
        let killed = Instant::now();
        self.killed_at = Some(killed);
        tokio::time::timeout(REPLY_LIMIT, self.sim.kill())
            .await
            .map_err(|_| DemoError::timeout("the device to die", REPLY_LIMIT))?;
        let will = self
            .until("the last will \"offline\"", REPLY_LIMIT, |seen| {
                seen.is_live("status", "offline")
            })
            .await?;
        let at = match will {
            Seen::Message(m) => m.at,
            Seen::Device(_) => Instant::now(),
        };
        Ok((at.duration_since(killed), at))
    }

    /// Shows the rest of the device's events, clears what the run left retained on a broker
    /// that outlives it (when the device id was made up), and disconnects the controller.
    async fn wrap_up(&mut self, options: &DemoOptions, endpoint: &Endpoint) {
        let _ = self.idle(Duration::from_millis(50)).await;
        if endpoint.started.is_none() && options.device_id.is_none() {
            for suffix in ["status", "led/state"] {
                let topic = format!("{}{suffix}", self.prefix);
                let clear = self
                    .client
                    .publish(topic, QoS::AtLeastOnce, true, Bytes::new());
                let _ = tokio::time::timeout(REPLY_LIMIT, clear).await;
            }
            self.transcript.say(
                Speaker::Controller,
                Tone::Plain,
                format!(
                    "cleared the retained status and led/state of {}* (a device id made up for this run)",
                    self.prefix
                ),
            );
        }
        let _ = tokio::time::timeout(REPLY_LIMIT, self.client.disconnect()).await;
        self.transcript.flush_broker();
    }

    /// Publishes `payload` on `led/set` (QoS 1), and shows what happens until the PUBACK has
    /// come and `want` has matched (the answer may arrive before the PUBACK); fails after
    /// [`REPLY_LIMIT`].
    async fn command(
        &mut self,
        payload: &str,
        what: &str,
        mut want: impl FnMut(&Seen) -> bool,
    ) -> Result<(), DemoError> {
        self.transcript.say(
            Speaker::Controller,
            Tone::Plain,
            format!("-> led/set  {payload}"),
        );
        let client = self.client.clone();
        let topic = format!("{}led/set", self.prefix);
        let publish = client.publish(topic, QoS::AtLeastOnce, false, payload.to_owned());
        let deadline = tokio::time::sleep(REPLY_LIMIT);
        tokio::pin!(publish, deadline);
        let (mut acked, mut answered) = (false, false);
        while !(acked && answered) {
            tokio::select! {
                result = &mut publish, if !acked => {
                    result.map_err(|e| {
                        DemoError::Failed(format!("publishing {payload:?}: {e}"))
                    })?;
                    acked = true;
                }
                () = &mut deadline => {
                    let what = match acked {
                        true => what.to_owned(),
                        false => format!("the PUBACK of {payload:?}"),
                    };
                    return Err(DemoError::timeout(&what, REPLY_LIMIT));
                }
                seen = self.next_seen() => {
                    let seen = seen?;
                    self.show(&seen);
                    answered |= want(&seen);
                }
            }
        }
        Ok(())
    }

    /// Checks the simulated LED.
    fn check_led(&self, on: bool) -> Result<(), DemoError> {
        match *self.sim.led().borrow() == on {
            true => Ok(()),
            false => Err(DemoError::Failed(format!(
                "the device reported the LED {}, but it is not",
                led_word(on)
            ))),
        }
    }

    async fn pause(&mut self) -> Result<(), DemoError> {
        self.idle(STEP_PAUSE).await
    }

    /// Shows what happens for `duration`.
    async fn idle(&mut self, duration: Duration) -> Result<(), DemoError> {
        self.pump(Instant::now() + duration, |_| false)
            .await
            .map(drop)
    }

    /// Shows what happens until `want` matches; fails after `limit`.
    async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        want: impl FnMut(&Seen) -> bool,
    ) -> Result<Seen, DemoError> {
        match self.pump(Instant::now() + limit, want).await? {
            Some(seen) => Ok(seen),
            None => Err(DemoError::Timeout {
                what: what.to_owned(),
                limit,
                hint: self.device_problem.clone(),
            }),
        }
    }

    /// Shows what happens until `want` matches (returning that) or until `deadline` (`None`).
    async fn pump(
        &mut self,
        deadline: Instant,
        mut want: impl FnMut(&Seen) -> bool,
    ) -> Result<Option<Seen>, DemoError> {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return Ok(None),
                seen = self.next_seen() => {
                    let seen = seen?;
                    self.show(&seen);
                    if want(&seen) {
                        return Ok(Some(seen));
                    }
                }
            }
        }
    }

    /// The next event of the device or message of the controller; prints the broker's log
    /// meanwhile.
    ///
    /// When both are ready, the device's event goes first: the device reports what it does
    /// (LED switched, connected, killed) before it publishes what follows from it, so this is
    /// the order in which things happened.
    ///
    /// # Cancel safety
    /// Cancel-safe: both sources are, and the log is read in whole lines.
    async fn next_seen(&mut self) -> Result<Seen, DemoError> {
        loop {
            tokio::select! {
                biased;
                event = self.sim.next_event(), if self.device_running => match event {
                    Some(event) => return Ok(Seen::Device(event)),
                    None => self.device_running = false,
                },
                message = self.messages.recv() => {
                    let message = message.ok_or_else(|| {
                        DemoError::Failed("the controller's connection ended".into())
                    })?;
                    return Ok(Seen::Message(self.received(message)));
                }
                () = tokio::time::sleep(LOG_POLL) => self.transcript.flush_broker(),
            }
        }
    }

    fn received(&self, message: Message) -> Received {
        let suffix = message
            .topic
            .strip_prefix(&self.prefix)
            .unwrap_or(&message.topic)
            .to_owned();
        Received {
            suffix,
            payload: String::from_utf8_lossy(&message.payload).into_owned(),
            retained: message.retain,
            at: Instant::now(),
        }
    }

    /// Prints `seen` (unless it is a detail left out without `--verbose`) and counts it.
    fn show(&mut self, seen: &Seen) {
        let (speaker, text) = match seen {
            Seen::Message(m) => {
                if m.suffix == "telemetry" && !m.retained {
                    self.telemetry += 1;
                }
                (Speaker::Controller, self.describe_message(m))
            }
            Seen::Device(event) => match self.describe_event(event) {
                Some(text) => (Speaker::Device, text),
                None => return,
            },
        };
        self.transcript.say(speaker, Tone::Plain, text);
    }

    fn describe_message(&self, m: &Received) -> String {
        let mut text = format!("<- {}  {}", m.suffix, m.payload);
        if m.retained {
            text.push_str("  (retained, from before)");
        }
        if m.suffix == "status" && m.payload == "offline" && self.killed_at.is_some() {
            text.push_str("  (the last will, published by the broker)");
        }
        text
    }

    /// The device's event as a transcript line, or `None` for details the controller's lines
    /// already show (its publishes) unless `--verbose`.
    fn describe_event(&mut self, event: &SimEvent) -> Option<String> {
        match event {
            SimEvent::ConnectFailed { reason } | SimEvent::Error { reason } => {
                self.device_problem = Some(format!("the device said: {reason}"));
            }
            SimEvent::Connected { .. } => self.device_problem = None,
            _ => {}
        }
        if self.verbose {
            return Some(event.to_string());
        }
        match event {
            SimEvent::CommandReceived { payload } => {
                self.last_command = Some(payload.clone());
                None
            }
            SimEvent::Led { .. } => Some(match self.last_command.take() {
                Some(command) => format!("{command:?} -> {event}"),
                None => event.to_string(),
            }),
            SimEvent::CommandRejected { payload } => {
                self.last_command = None;
                let led = led_word(*self.sim.led().borrow());
                Some(format!(
                    "{payload:?} rejected: not on/off/toggle, the LED stays {led}"
                ))
            }
            SimEvent::Published { .. } | SimEvent::Telemetry { .. } => None,
            _ => Some(event.to_string()),
        }
    }
}

fn led_word(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}
