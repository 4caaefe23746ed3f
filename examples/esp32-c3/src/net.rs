//! The IP side: the embassy-net runner, DNS and the TCP connection to the broker.

use core::net::Ipv4Addr;

use embassy_net::{dns::DnsQueryType, IpAddress, Runner, Stack};
use esp_println::println;
use esp_radio::wifi::Interface;

/// Drives the network stack (DHCP, ARP, TCP timers) forever.
#[embassy_executor::task]
pub async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// Waits until the link is up and DHCP has given us an address.
pub async fn wait_for_ip(stack: Stack<'_>) {
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        println!("net: address {}", config.address);
    }
}

/// Resolves `host` (a name or an IPv4 literal) to an address.
pub async fn resolve(stack: Stack<'_>, host: &str) -> Option<IpAddress> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(IpAddress::Ipv4(ip));
    }
    match stack.dns_query(host, DnsQueryType::A).await {
        Ok(addrs) => addrs.first().copied(),
        Err(e) => {
            println!("net: cannot resolve {host}: {e:?}");
            None
        }
    }
}
