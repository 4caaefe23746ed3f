//! Sleep between readings (`SLEEP_SECS`, with `persistent-session`): every wake is a fresh
//! boot that restores the MQTT session from flash, joins Wi-Fi, connects, publishes one
//! reading (the telemetry JSON, at QoS 1), takes the commands the broker kept for the device
//! while it slept, publishes `offline` and disconnects. `Client::flush_for_sleep` returns once
//! the session is durable in flash, and the chip goes into deep sleep with a timer wakeup.
//!
//! Deep sleep powers the RAM off: what the next wake knows is the journal in flash and the
//! RTC timer, which counts on from power-on (the readings' `uptime_s`). The LED is off while
//! the chip sleeps and starts from `initial_led` at every wake.

use embassy_net::{tcp::TcpSocket, Stack};
use embassy_time::{with_timeout, Duration, Instant};
use esp_hal::peripherals::{LPWR, RTC_TIMER};
use esp_hal::rtc_cntl::sleep::{LowPower, RtcSleepConfig};
use esp_hal::rtc_cntl::Rtc;
use esp_println::println;
use led_device::{Device, Outgoing, Qos};
use mqtt_client_nb::mqtt_sansio::PacketId;
use mqtt_client_nb::{Client, EmbassyClock, Error, Event, Journal};

use super::{announce, describe, fatal, obey, platform_info, publish};
use crate::{config, led::Led, net};

/// Longest a wake lasts: Wi-Fi join, DHCP, DNS, TCP, the MQTT exchange. A wake that has not
/// had its reading acknowledged by then sleeps anyway; the reading is in the journal and goes
/// out at the next wake.
const AWAKE_LIMIT: Duration = Duration::from_secs(30);

/// The RTC timer and the sleep controller.
pub struct DeepSleep {
    rtc: Rtc<'static>,
    low_power: LowPower<'static>,
}

impl DeepSleep {
    pub fn new(rtc_timer: RTC_TIMER<'static>, lpwr: LPWR<'static>) -> Self {
        Self {
            rtc: Rtc::new(rtc_timer),
            low_power: LowPower::new(lpwr),
        }
    }

    /// Milliseconds since power-on, counting through deep sleep.
    fn rtc_ms(&self) -> u64 {
        self.rtc.time_since_power_up().as_millis()
    }

    /// Deep sleep until `secs` from now; the wake is a reset.
    fn sleep(&mut self, secs: u16) -> ! {
        let wake_at =
            esp_hal::time::Instant::now() + esp_hal::time::Duration::from_secs(u64::from(secs));
        self.low_power.set_wakeup_deadline(wake_at);
        self.low_power.sleep_deep(RtcSleepConfig::deep())
    }
}

/// One wake: connect, publish the reading, disconnect, flush for sleep, deep sleep.
pub async fn wake<'s, J: Journal>(
    stack: Stack<'static>,
    socket: TcpSocket<'s>,
    client: &mut Client<'_, TcpSocket<'s>, J>,
    device: &mut Device,
    led: &mut Led,
    mut deep_sleep: DeepSleep,
) -> ! {
    let rtc_ms = deep_sleep.rtc_ms();
    let awake = with_timeout(AWAKE_LIMIT, async {
        net::wait_for_ip(stack).await;
        let Some(addr) = net::resolve(stack, config::MQTT_HOST).await else {
            return;
        };
        let mut socket = socket;
        if let Err(e) = socket.connect((addr, config::MQTT_PORT)).await {
            println!("mqtt: TCP connect failed: {e:?}");
            return;
        }
        if let Err(e) = client.connect(socket) {
            // Client::with_journal checked that the CONNECT fits.
            fatal("MQTT connect", e);
        }
        session(client, device, led, rtc_ms).await;
    })
    .await;
    if awake.is_err() {
        println!("sleep: still awake after {} s", AWAKE_LIMIT.as_secs());
    }
    if let Some(mut socket) = client.close() {
        // Send the FIN after our DISCONNECT (or the RST after a timeout), briefly.
        socket.close();
        let _ = with_timeout(Duration::from_millis(500), socket.flush()).await;
    }
    let next = match client.flush_for_sleep(&EmbassyClock).await {
        Ok(next) => next,
        Err(e) => fatal("flush for sleep", e),
    };
    println!(
        "sleep: awake {} ms (session due at {next:?}); sleeping {} s",
        Instant::now().as_millis(),
        config::SLEEP_SECS
    );
    deep_sleep.sleep(config::SLEEP_SECS)
}

/// Runs the connection: the reading after CONNACK, and once the broker acknowledged it,
/// `offline` and DISCONNECT. Returns when the connection is over.
async fn session<J: Journal>(
    client: &mut Client<'_, TcpSocket<'_>, J>,
    device: &mut Device,
    led: &mut Led,
    rtc_ms: u64,
) {
    let clock = EmbassyClock;
    let mut reading: Option<PacketId> = None;
    let mut disconnecting = false;
    loop {
        match client.poll(&clock).await {
            Event::Connected { .. } => {
                announce(client, device, rtc_ms);
                reading = device
                    .poll_telemetry(rtc_ms, platform_info())
                    .and_then(|out| publish(client, at_least_once(out)));
            }
            Event::Message(message) => {
                if let Some(out) = obey(device, led, &message) {
                    publish(client, out);
                }
            }
            // The reading is with the broker, and so are the commands it kept while the
            // device slept: it sends those right after CONNACK, before it reads what the
            // device sent. The DISCONNECT waits for the rest (SUBACK, replies) to be
            // acknowledged.
            Event::Published { packet_id, .. } if Some(packet_id) == reading && !disconnecting => {
                publish(client, device.will());
                match client.disconnect() {
                    Ok(()) => disconnecting = true,
                    Err(e) => {
                        let (what, code) = describe(&e);
                        println!("mqtt: DISCONNECT refused: {what} {code:#04x}");
                    }
                }
            }
            Event::Error(Error::NotConnected) | Event::Disconnected => return,
            Event::Error(e) => {
                let (what, code) = describe(&e);
                println!("mqtt: {what} {code:#04x}");
            }
            _ => {}
        }
    }
}

/// The reading goes at QoS 1 (the device logic sends telemetry at QoS 0): the journal keeps
/// it across the sleep until the broker has it.
fn at_least_once(message: Outgoing<'_>) -> Outgoing<'_> {
    Outgoing {
        qos: Qos::AtLeastOnce,
        ..message
    }
}
