//! Transport options against a real mosquitto (started per test by `mqtt-test-support` on
//! free loopback ports): a SOCKS5 proxy (with and without user name and password), a bind
//! address, a Unix domain socket, the byte tap, TLS versions and accepting a certificate
//! issued for another name. The proxy and the Unix socket relay are small servers of this
//! test, on loopback. Every wait is bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_client_tokio::{
    Client, Direction, Options, ProtocolVersion, QoS, Socks5Proxy, Tap, TlsVersion,
};
use mqtt_test_support::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Bound of any single wait.
const WAIT: Duration = Duration::from_secs(10);

fn options(url: &str) -> Options {
    let mut o = Options::new(url).expect("valid url");
    o.protocol.version = ProtocolVersion::V5;
    o.policy.reconnect = false;
    o.policy.connect_timeout = Duration::from_secs(5);
    o
}

/// Connects, publishes a QoS 1 message to itself and receives it.
async fn round_trip(o: Options) -> Result<(), mqtt_client_tokio::Error> {
    let (client, _events) = timeout(WAIT, Client::connect(o))
        .await
        .expect("connect in time")?;
    let mut sub = client.subscribe("transport/t", QoS::AtLeastOnce).await?;
    client
        .publish("transport/t", QoS::AtLeastOnce, false, &b"via"[..])
        .await?;
    let got = timeout(WAIT, sub.recv())
        .await
        .expect("message in time")
        .expect("subscription open");
    assert_eq!(&got.payload[..], b"via");
    client.disconnect().await?;
    Ok(())
}

/// What the SOCKS5 proxy saw: the requested destination.
#[derive(Debug, Default)]
struct ProxyLog {
    destinations: Vec<(String, u16)>,
    authenticated: Vec<(String, String)>,
}

/// A one-connection-at-a-time SOCKS5 proxy on loopback that forwards every CONNECT to
/// `target` (whatever name was asked for, after recording it). With `credentials`, it
/// insists on user name / password authentication.
async fn socks5_proxy(
    target: u16,
    credentials: Option<(&'static str, &'static str)>,
) -> (u16, Arc<Mutex<ProxyLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let log = Arc::new(Mutex::new(ProxyLog::default()));
    let seen = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let _ = serve_socks5(client, target, credentials, seen).await;
            });
        }
    });
    (port, log)
}

async fn serve_socks5(
    mut c: TcpStream,
    target: u16,
    credentials: Option<(&'static str, &'static str)>,
    log: Arc<Mutex<ProxyLog>>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods).await?;
    match credentials {
        None => c.write_all(&[5, 0]).await?,
        Some((user, password)) => {
            if !methods.contains(&2) {
                return c.write_all(&[5, 0xff]).await;
            }
            c.write_all(&[5, 2]).await?;
            let ver_len = [c.read_u8().await?, c.read_u8().await?];
            let mut u = vec![0u8; usize::from(ver_len[1])];
            c.read_exact(&mut u).await?;
            let mut p = vec![0u8; usize::from(c.read_u8().await?)];
            c.read_exact(&mut p).await?;
            let (u, p) = (String::from_utf8_lossy(&u), String::from_utf8_lossy(&p));
            log.lock()
                .unwrap()
                .authenticated
                .push((u.to_string(), p.to_string()));
            if u != user || p != password {
                return c.write_all(&[1, 1]).await;
            }
            c.write_all(&[1, 0]).await?;
        }
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            c.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut name = vec![0u8; usize::from(c.read_u8().await?)];
            c.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return Ok(()),
    };
    let port = c.read_u16().await?;
    log.lock().unwrap().destinations.push((host, port));
    let mut upstream = TcpStream::connect(("127.0.0.1", target)).await?;
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut c, &mut upstream).await?;
    Ok(())
}

#[tokio::test]
async fn socks5_proxy_without_and_with_credentials() {
    let broker = Broker::start().expect("mosquitto");
    // The broker's name is resolved by the proxy (socks5h): an unresolvable name works.
    let url = "mqtt://broker.invalid:1883";
    let (port, log) = socks5_proxy(broker.port(), None).await;
    let mut o = options(url);
    o.transport.proxy = Some(Socks5Proxy::parse(&format!("socks5h://127.0.0.1:{port}")).unwrap());
    round_trip(o).await.expect("through the proxy");
    assert_eq!(
        log.lock().unwrap().destinations,
        [("broker.invalid".to_string(), 1883)]
    );

    let (port, log) = socks5_proxy(broker.port(), Some(("user", "pass"))).await;
    let mut o = options(url);
    let proxy = format!("socks5h://user:pass@127.0.0.1:{port}");
    o.transport.proxy = Some(Socks5Proxy::parse(&proxy).unwrap());
    round_trip(o).await.expect("authenticated proxy");
    let mut o = options(url);
    let proxy = format!("socks5h://user:wrong@127.0.0.1:{port}");
    o.transport.proxy = Some(Socks5Proxy::parse(&proxy).unwrap());
    let err = round_trip(o).await.expect_err("wrong proxy password");
    assert!(err.to_string().contains("SOCKS5"), "{err}");
    let log = log.lock().unwrap();
    assert_eq!(log.authenticated.len(), 2);
    assert_eq!(log.destinations.len(), 1);
}

#[tokio::test]
async fn bind_address_chooses_the_local_side() {
    let broker = Broker::start().expect("mosquitto");
    let mut o = options(&broker.url());
    o.transport.bind_address = Some("127.0.0.1".parse().unwrap());
    round_trip(o).await.expect("bound to loopback");
    // An IPv6 bind address cannot reach an IPv4-only broker address.
    let mut o = options(&format!("mqtt://127.0.0.1:{}", broker.port()));
    o.transport.bind_address = Some("::1".parse().unwrap());
    assert!(round_trip(o).await.is_err());
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_replaces_host_and_port() {
    let broker = Broker::start().expect("mosquitto");
    // A relay from a Unix socket in the broker's temp dir to its TCP port.
    let path = broker.dir().join("mqtt.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind unix socket");
    let target = broker.port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(("127.0.0.1", target)).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                }
            });
        }
    });
    let mut o = options("mqtt://nowhere.invalid:1");
    o.transport.unix_socket = Some(path);
    round_trip(o).await.expect("over the unix socket");
}

/// One call of the tap.
type Chunk = (Direction, Vec<u8>);

#[tokio::test]
async fn tap_sees_the_mqtt_bytes_both_ways() {
    let broker = Broker::start().expect("mosquitto");
    let seen: Arc<Mutex<Vec<Chunk>>> = Arc::default();
    let log = Arc::clone(&seen);
    let mut o = options(&broker.url());
    o.transport.tap = Some(Tap::new(move |d, bytes| {
        log.lock().unwrap().push((d, bytes.to_vec()));
    }));
    assert!(format!("{o:?}").contains("Tap(..)"));
    round_trip(o).await.expect("round trip");
    let seen = seen.lock().unwrap();
    let sent: Vec<u8> = seen
        .iter()
        .filter(|(d, _)| *d == Direction::Sent)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let received: Vec<u8> = seen
        .iter()
        .filter(|(d, _)| *d == Direction::Received)
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(sent.first(), Some(&0x10), "CONNECT first");
    assert_eq!(sent.last(), Some(&0x00), "DISCONNECT (5.0, reason 0) last");
    assert_eq!(received.first(), Some(&0x20), "CONNACK first");
    assert!(sent.windows(11).any(|w| w == b"transport/t"));
}

#[tokio::test]
async fn tls_versions_and_a_certificate_for_another_name() {
    let broker = Broker::builder().tls().start().expect("mosquitto");
    let url = broker.tls_url().expect("tls listener");
    let ca = broker.tls().expect("material").ca_pem().as_bytes().to_vec();
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let mut o = options(&url);
        o.transport.tls.ca_pem = Some(ca.clone());
        o.transport.tls.version = Some(version);
        round_trip(o).await.expect("TLS version");
    }
    // The certificate names localhost and 127.0.0.1, not this name: refused, unless told.
    let mut o = options(&url);
    o.transport.tls.ca_pem = Some(ca.clone());
    o.transport.tls.server_name = Some("other.example".into());
    assert!(round_trip(o.clone()).await.is_err());
    o.transport.tls.insecure_skip_hostname = true;
    round_trip(o.clone()).await.expect("--insecure");
    // The chain is still verified: a certificate from another CA is refused.
    let other = mqtt_test_support::TlsMaterial::generate().expect("material");
    o.transport.tls.ca_pem = Some(other.ca_pem().as_bytes().to_vec());
    assert!(round_trip(o).await.is_err());
}
