//! Wi-Fi station: join, stay joined, rejoin with exponential backoff, sample the RSSI.

use core::sync::atomic::{AtomicI32, Ordering};

use embassy_futures::select::{select, Either};
use embassy_time::{Duration, Timer};
use esp_println::println;
use esp_radio::wifi::WifiController;

/// Last RSSI in dBm; `i32::MIN` while unknown. Plain load/store: the C3 has no atomic RMW.
static RSSI: AtomicI32 = AtomicI32::new(i32::MIN);

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const RSSI_PERIOD: Duration = Duration::from_secs(10);

/// The RSSI of the access point in dBm, if connected and sampled.
pub fn rssi() -> Option<i32> {
    match RSSI.load(Ordering::Relaxed) {
        i32::MIN => None,
        dbm => Some(dbm),
    }
}

/// Keeps the station connected forever. The station configuration (SSID, password) was given
/// to the controller at creation.
#[embassy_executor::task]
pub async fn wifi_task(mut controller: WifiController<'static>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        println!("wifi: connecting to {:?}", crate::config::WIFI_SSID);
        match controller.connect_async().await {
            Ok(info) => {
                println!("wifi: connected, channel {}", info.channel);
                backoff = BACKOFF_MIN;
                let lost = select(
                    controller.wait_for_disconnect_async(),
                    sample_rssi(&controller),
                )
                .await;
                RSSI.store(i32::MIN, Ordering::Relaxed);
                if let Either::First(Ok(info)) = lost {
                    println!("wifi: disconnected: {:?}", info.reason);
                }
            }
            Err(e) => {
                println!(
                    "wifi: connect failed: {e:?}; retry in {} s",
                    backoff.as_secs()
                );
                Timer::after(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn sample_rssi(controller: &WifiController<'static>) -> ! {
    loop {
        if let Ok(dbm) = controller.rssi() {
            RSSI.store(dbm, Ordering::Relaxed);
        }
        Timer::after(RSSI_PERIOD).await;
    }
}
