//! ESP32-C3 firmware of the LED example device: Wi-Fi station, DHCP, DNS, one TCP connection
//! to an MQTT broker, one LED.
//!
//! Everything the device *decides* (topics, commands, what to publish when, telemetry) lives in
//! the host-tested `led-device` crate; the MQTT protocol lives in `mqtt-sansio` behind
//! `mqtt-client-nb`. This crate only wires hardware to them: peripherals, Wi-Fi, sockets, pin.
#![no_std]
#![no_main]

#[cfg(feature = "mqtt")]
mod app;
/// Without MQTT (size comparisons only): the same connection loop speaking plain text.
#[cfg(not(feature = "mqtt"))]
#[path = "stub.rs"]
mod app;
mod config;
mod led;
mod net;
mod wifi;

use embassy_executor::Spawner;
use embassy_net::StackResources;
use esp_alloc as _;
use esp_backtrace as _;
use esp_hal::{clock::CpuClock, rng::Rng, timer::timg::TimerGroup};
use esp_println::println;
use esp_radio::wifi::{
    sta::StationConfig, AuthenticationMethodConfig, Config as WifiConfig, ControllerConfig,
    Interface, WifiController,
};
#[cfg(feature = "device")]
use led_device::{Device, DeviceId};
use static_cell::StaticCell;

use crate::led::Led;

// The application descriptor the ESP-IDF bootloader (and espflash) look for.
esp_bootloader_esp_idf::esp_app_desc!();

/// Sockets: DHCP, DNS and the broker connection, plus one spare.
const SOCKETS: usize = 4;

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi driver allocates (about 70 KiB with the default buffer counts).
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);

    // The scheduler must run before the radio is initialised.
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    #[cfg(feature = "device")]
    let device_config = led_device::Config {
        // Sleeping between readings, the reading is the telemetry of each wake.
        telemetry_interval_ms: u64::from(match config::SLEEP_SECS {
            0 => config::TELEMETRY_SECS,
            secs => secs,
        }) * 1000,
        ..led_device::Config::default()
    };
    #[cfg(feature = "device")]
    let initial_led = device_config.initial_led;
    #[cfg(not(feature = "device"))]
    let initial_led = false;
    let mut led = Led::new(peripherals.GPIO8, config::LED_ACTIVE_LOW, initial_led);

    let controller = WifiController::new(
        peripherals.WIFI,
        ControllerConfig::default().with_initial_config(WifiConfig::Station(station_config())),
    )
    .expect("Wi-Fi controller init failed");
    let station = Interface::station();
    let mac = station.mac_address();

    #[cfg(feature = "device")]
    let id = match config::DEVICE_ID {
        "" => DeviceId::from_mac(mac),
        id => DeviceId::new(id).expect("DEVICE_ID: 1-23 of [A-Za-z0-9_-]"),
    };
    #[cfg(feature = "device")]
    println!("device {id}, MAC {mac:02x?}");
    #[cfg(feature = "device")]
    let mut device = Device::new(id, device_config);
    #[cfg(not(feature = "device"))]
    println!("MAC {mac:02x?}");

    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        station,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );

    // `.expect`: each task is spawned exactly once, so its pool slot is free.
    spawner.spawn(wifi::wifi_task(controller).expect("wifi task spawned twice"));
    spawner.spawn(net::net_task(runner).expect("net task spawned twice"));

    #[cfg(all(feature = "device", not(feature = "persistent-session")))]
    let run = app::run(stack, &mut device, &mut led);
    #[cfg(feature = "persistent-session")]
    let deep_sleep = app::sleep::DeepSleep::new(peripherals.RTC_TIMER, peripherals.LPWR);
    #[cfg(feature = "persistent-session")]
    let run = app::run(stack, &mut device, &mut led, peripherals.FLASH, deep_sleep);
    #[cfg(not(feature = "device"))]
    let run = app::run(stack, &mut led);
    run.await
}

fn station_config() -> StationConfig {
    let auth = match config::WIFI_PASSWORD {
        "" => AuthenticationMethodConfig::Open,
        password => AuthenticationMethodConfig::Wpa2Personal(
            password
                .try_into()
                .expect("WIFI_PASSWORD longer than 64 bytes"),
        ),
    };
    StationConfig::default()
        .with_ssid(
            config::WIFI_SSID
                .try_into()
                .expect("WIFI_SSID longer than 32 bytes"),
        )
        .with_authentication(auth)
}
