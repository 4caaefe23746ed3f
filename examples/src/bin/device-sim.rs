//! `device-sim`: the ESP32 LED device on a PC. The firmware's device logic and `no_std` MQTT
//! client over a tokio TCP socket, printing what it does.
//!
//! ```text
//! device-sim --broker mqtt://127.0.0.1:1883 --username device --password secret --id lamp-1
//! ```
//!
//! Ctrl-C stops it gracefully (it publishes `offline` and disconnects); killing the process
//! (`kill -9`) or pulling the network makes the broker publish the will instead.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use examples::device_sim::{DeviceSim, SimConfig, SimEvent};
use mqtt_sansio::ProtocolVersion;

const USAGE: &str = "\
Usage: device-sim --broker mqtt://HOST:PORT [options]

Runs the ESP32 LED example device on this machine: same device logic, same no_std MQTT
client, over TCP. It publishes devices/<id>/status (online; will: offline),
devices/<id>/led/state and devices/<id>/telemetry, and obeys on/off/toggle on
devices/<id>/led/set.

Options:
  --broker URL          broker to connect to, mqtt://host:port (required)
  --username NAME       MQTT user name
  --password SECRET     MQTT password
  --id ID               device id (1-23 of A-Z a-z 0-9 _ -); default esp32-xxxxxx from a fake MAC
  --telemetry-secs N    seconds between telemetry messages, 0 = off (default 30)
  --protocol V          MQTT version: 3.1.1 (default) or 5
  --keep-alive SECS     MQTT keep alive (default 30)
  --led-on              start with the LED lit
  --flash-image FILE    keep the MQTT session in this 16 KiB flash image (created
                        when missing), as the board keeps it in flash: killed and
                        started again on the same file, the device resumes its session
                        (Clean Session 0) and resends what was unacknowledged
  --sleep-between SECS  sleep between readings (needs --flash-image), as the board's
                        SLEEP_SECS build: each wake boots a fresh client from the flash
                        image, publishes one reading (telemetry, QoS 1), takes the
                        commands the broker kept, disconnects and flushes for sleep;
                        prints how long each wake took, and the median at the end
  -h, --help            show this help

Ctrl-C stops gracefully (publishes offline, then DISCONNECT); kill -9 leaves the
broker to publish the will.";

/// The command line, parsed.
#[derive(Debug)]
struct Args {
    config: SimConfig,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut broker = None;
    let mut username = None;
    let mut password = None;
    let mut id = None;
    let mut telemetry_secs = 30u64;
    let mut protocol = ProtocolVersion::V3_1_1;
    let mut keep_alive = 30u16;
    let mut led_on = false;
    let mut flash_image = None;
    let mut sleep_between = None;
    while let Some(arg) = args.next() {
        // `--flag=value` and `--flag value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--broker" => broker = Some(value()?),
            "--username" => username = Some(value()?),
            "--password" => password = Some(value()?),
            "--id" => id = Some(value()?),
            "--telemetry-secs" => {
                telemetry_secs = number(&flag, &value()?)?;
            }
            "--keep-alive" => keep_alive = number(&flag, &value()?)?,
            "--protocol" => {
                protocol = match value()?.as_str() {
                    "3.1.1" | "3" | "4" | "311" => ProtocolVersion::V3_1_1,
                    "5" | "5.0" => ProtocolVersion::V5,
                    other => return Err(format!("--protocol: {other:?} is not 3.1.1 or 5")),
                }
            }
            "--led-on" => led_on = true,
            "--flash-image" => flash_image = Some(value()?.into()),
            "--sleep-between" => {
                let secs: f64 = number(&flag, &value()?)?;
                let period = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("{flag}: {secs} is not a number of seconds"))?;
                sleep_between = Some(period);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let broker = broker.ok_or("--broker is required")?;
    let mut config = SimConfig::from_url(&broker).map_err(|e| e.to_string())?;
    config.username = username;
    config.password = password;
    config.device_id = id;
    config.telemetry_interval = Duration::from_secs(telemetry_secs);
    config.protocol = protocol;
    config.keep_alive_secs = keep_alive;
    config.initial_led = led_on;
    if sleep_between.is_some() && flash_image.is_none() {
        return Err("--sleep-between needs --flash-image: the session sleeps in flash".into());
    }
    config.flash_image = flash_image;
    config.sleep_between = sleep_between;
    config.resolved_id().map_err(|e| format!("--id: {e}"))?;
    Ok(Some(Args { config }))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a valid number"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("device-sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let broker = args.config.broker_addr();
    let mut sim = match DeviceSim::spawn(args.config) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("device-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    // Wake-to-sleep times of the sleep-between-readings mode.
    let mut awake = Vec::new();
    let mut log = |event: &SimEvent| {
        let t = start.elapsed().as_secs_f64();
        println!("[{t:8.3}s] {event}");
        if let SimEvent::Asleep { awake: time, .. } = event {
            awake.push(*time);
        }
    };
    println!("device {} -> {broker} (Ctrl-C to stop)", sim.device_id());
    loop {
        tokio::select! {
            event = sim.next_event() => match event {
                Some(event) => log(&event),
                None => return ExitCode::FAILURE,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    println!("stopping...");
    tokio::select! {
        () = sim.stop() => {}
        _ = tokio::signal::ctrl_c() => sim.kill().await,
    }
    while let Ok(Some(event)) = tokio::time::timeout(Duration::ZERO, sim.next_event()).await {
        log(&event);
    }
    if !awake.is_empty() {
        awake.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "wake to sleep over {} wakes: median {:.1} ms, min {:.1} ms, max {:.1} ms",
            awake.len(),
            ms(awake[awake.len() / 2]),
            ms(awake[0]),
            ms(awake[awake.len() - 1])
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_all_flags() {
        let args = parse(&[
            "--broker",
            "mqtt://127.0.0.1:4242",
            "--username=device",
            "--password",
            "secret",
            "--id",
            "lamp-1",
            "--telemetry-secs",
            "5",
            "--protocol",
            "5",
            "--led-on",
            "--flash-image",
            "lamp.flash",
            "--sleep-between",
            "0.5",
        ])
        .unwrap()
        .unwrap();
        let c = args.config;
        assert_eq!(c.flash_image, Some("lamp.flash".into()));
        assert_eq!(c.sleep_between, Some(Duration::from_millis(500)));
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 4242));
        assert_eq!(c.username.as_deref(), Some("device"));
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(c.device_id.as_deref(), Some("lamp-1"));
        assert_eq!(c.telemetry_interval, Duration::from_secs(5));
        assert_eq!(c.protocol, ProtocolVersion::V5);
        assert!(c.initial_led);
    }

    #[test]
    fn broker_is_required_and_errors_are_reported() {
        assert!(parse(&[]).unwrap_err().contains("--broker"));
        assert!(parse(&["--broker"]).is_err());
        assert!(parse(&["--broker", "mqtts://h:1"]).is_err());
        assert!(parse(&["--broker", "h:1", "--id", "a/b"]).is_err());
        assert!(parse(&["--broker", "h:1", "--telemetry-secs", "x"]).is_err());
        assert!(parse(&["--broker", "h:1", "--bogus"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
        let sleep = parse(&["--broker", "h:1", "--sleep-between", "2"]).unwrap_err();
        assert!(sleep.contains("--flash-image"), "{sleep}");
        assert!(parse(&[
            "--broker",
            "h:1",
            "--sleep-between",
            "-1",
            "--flash-image",
            "f"
        ])
        .is_err());
    }
}
