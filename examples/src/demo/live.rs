//! `--keep-running`: after the story, the device is powered on again and the broker, the
//! device and the control page stay up for people (and the browser test) to click. Lines on
//! stdin act on the story's world: `cut` (power cut), `power` (power on again),
//! `restart-broker`, `quit`; Ctrl-C also ends it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::device_sim::{DeviceSim, SimConfig, SimHandle};

use super::broker::Endpoint;
use super::transcript::{Speaker, Tone, Transcript};
use super::DemoError;

/// Upper bound for a broker restart.
const RESTART_LIMIT: Duration = Duration::from_secs(15);

/// Keeps the world up until `quit`, the end of stdin followed by Ctrl-C, or Ctrl-C.
///
/// # Errors
/// [`DemoError::Usage`] when the device cannot be started again.
pub(super) async fn keep_running(
    transcript: &Arc<Transcript>,
    endpoint: &Endpoint,
    config: SimConfig,
) -> Result<(), DemoError> {
    transcript.say(
        Speaker::Demo,
        Tone::Plain,
        "keep running: the device is powered on again; type cut, power, restart-broker or quit \
         (or press Ctrl-C)",
    );
    let mut device = Some(power_on(transcript, &config)?);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        let line = tokio::select! {
            line = lines.next_line(), if stdin_open => line,
            _ = tokio::signal::ctrl_c() => break,
        };
        let command = match line {
            Ok(Some(line)) => line.trim().to_owned(),
            // No more commands: stay up until Ctrl-C.
            Ok(None) | Err(_) => {
                stdin_open = false;
                continue;
            }
        };
        match command.as_str() {
            "" => {}
            "quit" => break,
            "cut" => match device.take() {
                Some(mut sim) => {
                    transcript.say(Speaker::Demo, Tone::Plain, "power cut");
                    sim.kill().await;
                }
                None => transcript.say(Speaker::Demo, Tone::Dim, "the device is off already"),
            },
            "power" => {
                if device.is_none() {
                    device = Some(power_on(transcript, &config)?);
                } else {
                    transcript.say(Speaker::Demo, Tone::Dim, "the device is on already");
                }
            }
            "restart-broker" => restart_broker(transcript, endpoint).await,
            other => transcript.say(
                Speaker::Demo,
                Tone::Bad,
                format!("unknown command {other:?}: cut, power, restart-broker or quit"),
            ),
        }
    }
    if let Some(mut sim) = device {
        sim.stop().await;
    }
    transcript.say(Speaker::Demo, Tone::Plain, "stopped");
    Ok(())
}

/// Starts the device and reports its LED and connection as they change.
fn power_on(transcript: &Arc<Transcript>, config: &SimConfig) -> Result<SimHandle, DemoError> {
    transcript.say(Speaker::Demo, Tone::Plain, "power on");
    let sim = DeviceSim::spawn(config.clone()).map_err(|e| DemoError::Usage(e.to_string()))?;
    report(transcript, sim.led(), |on| {
        format!("LED {}", if on { "on" } else { "off" })
    });
    report(transcript, sim.connected(), |up| {
        (if up { "connected" } else { "disconnected" }).to_owned()
    });
    Ok(sim)
}

/// Prints every change of `value` as the device's line, until the device ends.
fn report(
    transcript: &Arc<Transcript>,
    mut value: watch::Receiver<bool>,
    text: impl Fn(bool) -> String + Send + 'static,
) {
    let transcript = Arc::clone(transcript);
    tokio::spawn(async move {
        while value.changed().await.is_ok() {
            let now = *value.borrow_and_update();
            transcript.say(Speaker::Device, Tone::Plain, text(now));
        }
    });
}

/// Restarts the broker the demo started (its clients see it go away and come back).
async fn restart_broker(transcript: &Transcript, endpoint: &Endpoint) {
    let Some(broker) = endpoint.started.clone() else {
        transcript.say(
            Speaker::Demo,
            Tone::Bad,
            "restart-broker: the demo did not start this broker",
        );
        return;
    };
    transcript.say(Speaker::Demo, Tone::Plain, "restarting the broker");
    let restart = tokio::task::spawn_blocking(move || broker.restart());
    let text = match tokio::time::timeout(RESTART_LIMIT, restart).await {
        Ok(Ok(Ok(()))) => "the broker is back".to_owned(),
        Ok(Ok(Err(e))) => format!("restarting the broker failed: {e}"),
        Ok(Err(e)) => format!("restarting the broker failed: {e}"),
        Err(_) => format!("the broker did not restart within {RESTART_LIMIT:?}"),
    };
    transcript.say(Speaker::Broker, Tone::Plain, text);
}
