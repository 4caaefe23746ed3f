//! The quick-start demo (`cargo run -p examples --bin demo`): what the library is for, in a
//! few seconds and one command.
//!
//! 1. **Broker.** Starts a private mosquitto on a free loopback port with a generated config
//!    that requires a user name and password (installing mosquitto from Debian's packages
//!    first if it is missing and the demo runs as root), or uses the broker given with
//!    `--broker`.
//! 2. **Controller.** An `mqtt-client-tokio` client (MQTT 5.0) subscribes to the device's
//!    `status`, `led/state`, `led/error` and `telemetry` topics.
//! 3. **Device.** The simulated ESP32 LED device ([`crate::device_sim`]: the firmware's
//!    `led-device` logic and the `no_std` `mqtt-client-nb` client, MQTT 3.1.1) connects with
//!    the credentials, announces `online` and its LED state, and sends telemetry every second.
//! 4. **Commands.** The controller switches the LED on, off, toggles it, and sends `blink`,
//!    which the device rejects with a report on `led/error`.
//! 5. **Power cut.** The device's TCP connection is dropped without DISCONNECT; the broker
//!    publishes its last will, `offline`, which the controller receives.
//!
//! 6. **Control page.** When the demo started the broker and the `mqtt-client-wasm` bundle is
//!    built (`bash scripts/build-wasm.sh`), a page served on a free port talks to the broker's
//!    WebSocket listener: the LED switch, its state, the device's status and telemetry. With
//!    `--keep-running` the device is powered on again after the story and everything stays up
//!    ([`live`]).
//!
//! Everything is printed as a transcript with timestamps and speakers ([`Transcript`]); every
//! wait is bounded, and a step that does not happen in time fails the run with a
//! [`DemoError`] saying which.
//!
//! ```no_run
//! use examples::demo::{self, DemoOptions};
//!
//! # async fn example() -> Result<(), examples::demo::DemoError> {
//! let summary = demo::run(&DemoOptions::default()).await?;
//! assert_eq!(summary.states, [true, false, true]);
//! # Ok(())
//! # }
//! ```

mod broker;
mod live;
mod page;
mod script;
mod transcript;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use broker::DEFAULT_USERNAME;
pub use script::Summary;
pub use transcript::{color_wanted, Speaker, Tone, Transcript};

use broker::{Endpoint, LogTail};

/// What the demo runs against and how it prints.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DemoOptions {
    /// An existing broker, `mqtt://host:port`; `None` starts a private mosquitto.
    pub broker: Option<String>,
    /// User name for the device and the controller (and the started broker; default
    /// [`DEFAULT_USERNAME`]).
    pub username: Option<String>,
    /// Password for the device and the controller (and the started broker; default: made up
    /// for the run).
    pub password: Option<String>,
    /// The device id (`devices/<id>/...`); default `esp32-xxxxxx` from a made-up MAC address.
    pub device_id: Option<String>,
    /// Also print the device's publishes and everything the started broker logs.
    pub verbose: bool,
    /// Colour the transcript ([`color_wanted`] decides for a terminal).
    pub color: bool,
    /// After the story, power the device on again and keep the broker, the device and the
    /// control page up until `quit` on stdin or Ctrl-C.
    pub keep_running: bool,
    /// Serve the control page, and open the broker's WebSocket listener, on every interface
    /// (for a phone on the same network) instead of loopback only.
    pub lan: bool,
}

/// Why the demo failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DemoError {
    /// The options cannot work (e.g. a `--broker` URL the device cannot use).
    Usage(String),
    /// mosquitto is not installed and the demo may not install it; says how to.
    BrokerMissing(String),
    /// Installing or starting mosquitto failed.
    Broker(String),
    /// An expected step did not happen in time.
    Timeout {
        /// What was awaited.
        what: String,
        /// For how long.
        limit: Duration,
        /// What may explain it (e.g. the device's last connection error).
        hint: Option<String>,
    },
    /// The controller or the device failed.
    Failed(String),
}

impl DemoError {
    fn timeout(what: &str, limit: Duration) -> Self {
        Self::Timeout {
            what: what.to_owned(),
            limit,
            hint: None,
        }
    }
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Usage(msg)
            | DemoError::BrokerMissing(msg)
            | DemoError::Broker(msg)
            | DemoError::Failed(msg) => f.write_str(msg),
            DemoError::Timeout { what, limit, hint } => {
                write!(f, "no sign of {what} within {} s", limit.as_secs_f64())?;
                match hint {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for DemoError {}

/// Runs the demo, printing its transcript on stdout; a failure is printed there too (with
/// the end of the broker's log if the demo started it) before it is returned. The broker the
/// demo started is stopped before this returns.
///
/// # Errors
/// [`DemoError`]: which step failed.
///
/// # Panics
/// Outside a tokio runtime.
pub async fn run(options: &DemoOptions) -> Result<Summary, DemoError> {
    let transcript = Arc::new(Transcript::new(options.color));
    transcript.plain(
        Tone::Plain,
        "mqtt demo: a simulated ESP32 LED device (mqtt-client-nb, MQTT 3.1.1) and a controller \
         (mqtt-client-tokio, MQTT 5.0)\ntalk through an MQTT broker; the controller drives the \
         LED, then the device loses power.\n",
    );
    let result = match prepare(&transcript, options).await {
        Ok(endpoint) => {
            serve_page(&transcript, options, &endpoint);
            let result = match script::device_config(options, &endpoint) {
                Ok(config) => {
                    let result =
                        script::play(&transcript, options, &endpoint, config.clone()).await;
                    match result {
                        Ok(summary) if options.keep_running => {
                            transcript.say(Speaker::Demo, Tone::Good, &summary);
                            live::keep_running(&transcript, &endpoint, config)
                                .await
                                .map(|()| summary)
                        }
                        other => other,
                    }
                }
                Err(e) => Err(e),
            };
            transcript.flush_broker();
            let tail = transcript.unfollow_broker_log();
            if let (Err(_), Some(tail)) = (&result, tail) {
                transcript.say(Speaker::Demo, Tone::Bad, "the end of the broker's log:");
                for line in tail.last_lines(20) {
                    transcript.say(Speaker::Broker, Tone::Dim, line);
                }
            }
            result
        }
        Err(e) => Err(e),
    };
    match &result {
        Ok(summary) => {
            transcript.say(Speaker::Demo, Tone::Good, summary);
            transcript.plain(
                Tone::Plain,
                "\nThe same against your own broker (EMQX, mosquitto, ...):\n    cargo run -p \
                 examples --bin demo -- --broker mqtt://HOST:1883 --username USER --password PASS",
            );
        }
        Err(e) => transcript.say(Speaker::Demo, Tone::Bad, format!("FAILED: {e}")),
    }
    result
}

/// Starts the broker (or takes `--broker`) and, for a started one, follows its log.
async fn prepare(
    transcript: &Arc<Transcript>,
    options: &DemoOptions,
) -> Result<Endpoint, DemoError> {
    if let Some(url) = &options.broker {
        let user = match &options.username {
            Some(user) => format!(", user {user:?}"),
            None => ", no user name".to_owned(),
        };
        transcript.say(
            Speaker::Broker,
            Tone::Plain,
            format!("using {url} (not started by the demo{user})"),
        );
        return Ok(Endpoint {
            url: url.clone(),
            username: options.username.clone(),
            password: options.password.clone(),
            started: None,
            ws_port: None,
        });
    }
    let username = options
        .username
        .clone()
        .unwrap_or_else(|| DEFAULT_USERNAME.to_owned());
    let password = options
        .password
        .clone()
        .unwrap_or_else(broker::generated_password);
    let lan_ws_port = match options.lan {
        true => Some(broker::free_lan_port().map_err(|e| {
            DemoError::Broker(format!("no free port for the WebSocket listener: {e}"))
        })?),
        false => None,
    };
    let (ts, user, pass) = (Arc::clone(transcript), username.clone(), password.clone());
    let broker = tokio::task::spawn_blocking(move || broker::start(&ts, &user, &pass, lan_ws_port))
        .await
        .map_err(|e| DemoError::Broker(format!("the broker launcher failed: {e}")))??;
    let version = broker::version(&broker).unwrap_or_else(|| "?".to_owned());
    transcript.say(
        Speaker::Broker,
        Tone::Plain,
        format!(
            "started mosquitto {version} on {} (loopback only; login required, user {username:?})",
            broker.url()
        ),
    );
    let ws_port = lan_ws_port.or(broker.ws_port());
    if let Some(port) = ws_port {
        let on = if options.lan {
            "every interface"
        } else {
            "loopback"
        };
        transcript.say(
            Speaker::Broker,
            Tone::Plain,
            format!("WebSocket listener for the control page on port {port} ({on}, same login)"),
        );
    }
    transcript.follow_broker_log(LogTail::new(Arc::clone(&broker), options.verbose));
    Ok(Endpoint {
        url: broker.url(),
        username: Some(username),
        password: Some(password),
        started: Some(broker),
        ws_port,
    })
}

/// Starts the control page's server when the demo started the broker and the wasm bundle is
/// built, and prints its URL; otherwise says why there is no page. The story runs either way.
fn serve_page(transcript: &Transcript, options: &DemoOptions, endpoint: &Endpoint) {
    let Some(ws_port) = endpoint.ws_port else {
        transcript.say(
            Speaker::Demo,
            Tone::Dim,
            "no control page with --broker: it needs the WebSocket listener of the broker the \
             demo starts",
        );
        return;
    };
    let dir = page::web_dir();
    if let Some(hint) = page::missing_bundle(&dir) {
        transcript.say(Speaker::Demo, Tone::Dim, hint);
        return;
    }
    let config = page::config_json(
        ws_port,
        endpoint.username.as_deref(),
        endpoint.password.as_deref(),
    );
    match page::PageServer::start(dir, config, options.lan) {
        Ok(server) => {
            let host = if options.lan {
                "<this machine's address>"
            } else {
                "127.0.0.1"
            };
            let later = if options.keep_running {
                ""
            } else {
                " (up while the story runs; --keep-running keeps it up)"
            };
            transcript.say(
                Speaker::Demo,
                Tone::Plain,
                format!("control page: http://{host}:{}/{later}", server.port()),
            );
        }
        Err(e) => transcript.say(
            Speaker::Demo,
            Tone::Bad,
            format!("the control page's server did not start: {e}"),
        ),
    }
}
