//! Sleeping between readings, as the board's `SLEEP_SECS` build does in deep sleep: each wake
//! boots a fresh device and client from the flash image, connects, publishes one reading,
//! handles what the broker kept for it meanwhile, disconnects, and returns from
//! `Client::flush_for_sleep`. Then everything the wake held in RAM is dropped, as deep sleep
//! powers the RAM off, and only the flash image and the "RTC" (a clock counting from
//! power-on) are kept.

use std::path::Path;
use std::time::Duration;

use led_device::{Device, DeviceId, Outgoing, Qos};
use mqtt_client_nb::mqtt_sansio::PacketId;
use mqtt_client_nb::{Client, Error, Event, Journal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::config::SimConfig;
use super::event::SimEvent;
use super::platform::{FakePlatform, TokioClock};
use super::run::{self, Control, Outputs, Tcp, MQTT_BUF, MQTT_STORE, RECORDS};

/// Longest a wake lasts (the firmware's `AWAKE_SECS`). A wake that has not had its reading
/// acknowledged by then sleeps anyway: the reading is in the journal and goes out on the
/// next wake.
pub(super) const AWAKE_LIMIT: Duration = Duration::from_secs(10);

/// How a wake ended.
enum Woken {
    /// Sleep now.
    Sleep,
    /// Killed or stopped (the event was reported): the device is over.
    Over,
}

/// Wakes, sleeps `period`, wakes again, until killed or stopped.
pub(super) async fn run(
    config: &SimConfig,
    id: DeviceId,
    period: Duration,
    image: &Path,
    out: Outputs,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    // What survives deep sleep besides the flash: the RTC counts on from power-on, and the
    // sensor (made-up readings) is outside the chip.
    let power_on = Instant::now();
    let mut platform = FakePlatform::new(config.mac);
    for wake in 1.. {
        let woke = Instant::now();
        out.emit(SimEvent::Woke { wake });
        let wake = Wake {
            config,
            id,
            image,
            period,
            power_on,
            out: &out,
        };
        if let Woken::Over = wake.run(&mut control, &mut platform).await {
            return;
        }
        out.emit(SimEvent::Asleep {
            awake: woke.elapsed(),
            sleep: period,
        });
        let wake_at = Instant::now() + period;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => break,
                request = control.recv() => match request {
                    // Asleep, the device has no connection to cut.
                    Some(Control::Cut) => {}
                    // Disconnected already, with `offline` published.
                    Some(Control::Stop) => {
                        out.emit(SimEvent::Stopped);
                        return;
                    }
                    Some(Control::Kill) | None => {
                        out.emit(SimEvent::Killed);
                        return;
                    }
                },
            }
        }
    }
}

/// One wake: what the device knows when it boots.
struct Wake<'a> {
    config: &'a SimConfig,
    id: DeviceId,
    image: &'a Path,
    period: Duration,
    power_on: Instant,
    out: &'a Outputs,
}

impl Wake<'_> {
    /// Boots from the flash image and stays awake until the reading is acknowledged and the
    /// device disconnected (or [`AWAKE_LIMIT`]), then returns once `flush_for_sleep` did.
    async fn run(
        &self,
        control: &mut mpsc::UnboundedReceiver<Control>,
        platform: &mut FakePlatform,
    ) -> Woken {
        let (mut rx, mut tx) = ([0u8; MQTT_BUF], [0u8; MQTT_BUF]);
        let (mut store, mut records) = ([0u8; MQTT_STORE], [0u8; RECORDS]);
        let mut device_config = run::device_config(self.config);
        // One reading per wake: the telemetry the device logic schedules at connect.
        device_config.telemetry_interval_ms = duration_ms(self.period).max(1);
        let mut device = Device::new(self.id, device_config);
        let will_topic = run::will_topic(&device);
        let options = run::options(
            self.config,
            self.id.as_str(),
            will_topic.as_str(),
            device.will(),
        );
        let client = match run::journal(self.image, &mut records) {
            Ok(journal) => Client::with_journal(options, &mut rx, &mut tx, &mut store, journal)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let mut client = match client {
            Ok(client) => client,
            Err(e) => {
                self.out.emit(SimEvent::Error {
                    reason: format!("flash image: {e}"),
                });
                return Woken::Over;
            }
        };
        // The clock of the MQTT client starts at the wake, as embassy's does on the board.
        let clock = TokioClock::new();
        let awake = tokio::time::timeout(
            AWAKE_LIMIT,
            self.connected(&mut client, &mut device, &clock, control, platform),
        )
        .await;
        match awake {
            Ok(Ended::Disconnected) => {}
            Ok(Ended::Killed) => {
                drop(client.close());
                run::went_offline(&mut device, self.out);
                self.out.emit(SimEvent::Killed);
                return Woken::Over;
            }
            Ok(Ended::Stop) => {
                run::stop(&mut client, &mut device, &clock, self.out).await;
                return Woken::Over;
            }
            Err(_) => self.out.emit(SimEvent::Error {
                reason: format!(
                    "reading not acknowledged within {} s; sleeping with it in the journal",
                    AWAKE_LIMIT.as_secs()
                ),
            }),
        }
        run::linger(client.close()).await;
        run::went_offline(&mut device, self.out);
        if let Err(e) = client.flush_for_sleep(&clock).await {
            self.out.emit(SimEvent::Error {
                reason: format!("flush for sleep: {e}"),
            });
        }
        Woken::Sleep
    }

    /// Connects (with the session's backoff while the broker is unreachable), publishes the
    /// reading, and once the broker acknowledged it publishes `offline` and disconnects.
    async fn connected<J: Journal>(
        &self,
        client: &mut Client<'_, Tcp, J>,
        device: &mut Device,
        clock: &TokioClock,
        control: &mut mpsc::UnboundedReceiver<Control>,
        platform: &mut FakePlatform,
    ) -> Ended {
        let out = self.out;
        let broker = self.config.broker_addr();
        let mut reading: Option<PacketId> = None;
        let mut disconnecting = false;
        loop {
            tokio::select! {
                request = control.recv() => match request {
                    Some(Control::Cut) => {
                        drop(client.close());
                        run::went_offline(device, out);
                        out.emit(SimEvent::ConnectionCut);
                    }
                    Some(Control::Stop) => return Ended::Stop,
                    Some(Control::Kill) | None => return Ended::Killed,
                },
                event = client.poll_reconnecting(clock, |_old, _redirect| {
                    run::open(&broker, self.config.connect_timeout, &out.events)
                }) => match event {
                    Event::Connected { session_present, .. } => {
                        out.emit(SimEvent::Connected { session_present });
                        out.connected.send_replace(true);
                        let now = self.rtc_ms();
                        run::announce(client, device, now, out);
                        // Once per wake: a reading queued before a lost connection is resent
                        // by the session.
                        if reading.is_none() {
                            reading = device
                                .poll_telemetry(now, platform.sample())
                                .and_then(|message| run::publish(client, at_least_once(message), out));
                        }
                    }
                    Event::Message(message) => {
                        let topic = message.topic.as_str();
                        if let Some(reply) = run::obey(device, topic, message.payload, out) {
                            run::publish(client, reply, out);
                        }
                    }
                    Event::Subscribed { reason_codes, .. } => {
                        let granted = !reason_codes.iter().any(|code| code.is_error());
                        for sub in device.subscriptions() {
                            out.emit(SimEvent::Subscribed { filter: sub.filter.to_owned(), granted });
                        }
                    }
                    // The reading is with the broker, and so are the commands it kept while
                    // the device slept: it sends those right after CONNACK, before it reads
                    // what the device sent. The DISCONNECT waits for the rest (the SUBACK,
                    // replies to those commands) to be acknowledged.
                    Event::Published { packet_id, .. }
                        if Some(packet_id) == reading && !disconnecting =>
                    {
                        run::publish(client, device.will(), out);
                        match client.disconnect() {
                            Ok(()) => disconnecting = true,
                            Err(e) => out.emit(SimEvent::Error { reason: format!("DISCONNECT refused: {e}") }),
                        }
                    }
                    Event::Disconnected if disconnecting => return Ended::Disconnected,
                    Event::Disconnected => run::went_offline(device, out),
                    // `open` reported why.
                    Event::Error(Error::OpenFailed) => {}
                    Event::Error(e) => out.emit(SimEvent::Error { reason: e.to_string() }),
                    _ => {}
                },
            }
        }
    }

    /// Milliseconds since power-on, through every sleep: the board's RTC time, which the
    /// device logic's telemetry reports as `uptime_s`.
    fn rtc_ms(&self) -> u64 {
        duration_ms(self.power_on.elapsed())
    }
}

/// How the connected part of a wake ended.
enum Ended {
    /// After the reading and our DISCONNECT: sleep.
    Disconnected,
    /// [`Control::Kill`]: the power is cut.
    Killed,
    /// [`Control::Stop`]: end gracefully.
    Stop,
}

/// The reading goes at QoS 1 (the device logic sends telemetry at QoS 0): the journal keeps
/// it across the sleep until the broker has it.
fn at_least_once(message: Outgoing<'_>) -> Outgoing<'_> {
    Outgoing {
        qos: Qos::AtLeastOnce,
        ..message
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reading_goes_at_qos_1() {
        let message = Outgoing {
            topic: "devices/x/telemetry",
            payload: b"{}",
            qos: Qos::AtMostOnce,
            retain: false,
        };
        assert_eq!(at_least_once(message).qos, Qos::AtLeastOnce);
    }
}
