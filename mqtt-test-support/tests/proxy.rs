//! The fault proxy: forwarding, cuts, stalls, split and coalesced writes, counters.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::{connect_packet, decode, encode, tcp, Conn, TIMEOUT};
use mqtt_sansio::{Packet, ReasonCode};
use mqtt_test_support::{Broker, Direction, FaultMode, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const SHORT: Duration = Duration::from_millis(300);

fn connect_len(client_id: &str) -> u64 {
    encode(Packet::Connect(connect_packet(client_id))).len() as u64
}

async fn ping(conn: &mut Conn<TcpStream>, wait: Duration) -> std::io::Result<()> {
    conn.send(Packet::PingReq).await?;
    let raw = conn.recv_raw(wait).await?;
    assert!(matches!(decode(&raw), Packet::PingResp));
    Ok(())
}

async fn proxy(broker: &Broker, mode: FaultMode) -> FaultProxy {
    FaultProxy::start(broker.addr(), mode).await.unwrap()
}

#[tokio::test]
async fn forwards_both_ways_and_counts_bytes() {
    let broker = Broker::start().unwrap();
    let proxy = proxy(&broker, FaultMode::new()).await;
    assert_eq!(proxy.addr().ip().to_string(), "127.0.0.1");
    assert_eq!(proxy.url(), format!("mqtt://127.0.0.1:{}", proxy.port()));
    assert_eq!(proxy.upstream(), broker.addr());

    let mut conn = tcp(proxy.addr()).await;
    let (_, code) = conn.connect(connect_packet("fwd")).await.unwrap();
    assert_eq!(code, ReasonCode::Success);
    ping(&mut conn, TIMEOUT).await.unwrap();
    conn.disconnect().await.unwrap();

    let stats = proxy
        .wait_for(TIMEOUT, |s| {
            s.active == 0 && s.bytes_to_broker == connect_len("fwd") + 4
        })
        .await
        .unwrap();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.bytes_to_client, 4 + 2); // CONNACK + PINGRESP
    assert_eq!(
        (stats.cuts, stats.stalls, stats.upstream_failures),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn cuts_after_n_bytes_to_the_client_once_then_lets_reconnects_through() {
    let broker = Broker::start().unwrap();
    let proxy = proxy(&broker, FaultMode::new()).await;
    proxy.set_mode(
        FaultMode::new()
            .cut_after(Direction::ToClient, 4)
            .connections(1),
    );

    let mut first = tcp(proxy.addr()).await;
    let (_, code) = first.connect(connect_packet("cut1")).await.unwrap();
    assert_eq!(code, ReasonCode::Success, "the CONNACK is delivered whole");
    let err = first.recv_raw(TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);

    let mut second = tcp(proxy.addr()).await;
    second.connect(connect_packet("cut2")).await.unwrap();
    ping(&mut second, TIMEOUT).await.unwrap();

    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.cuts), (2, 1));
    assert_eq!(stats.bytes_to_client, 4 + 4 + 2);
}

#[tokio::test]
async fn cuts_after_n_bytes_to_the_broker_inside_connect() {
    let broker = Broker::start().unwrap();
    let proxy = proxy(&broker, FaultMode::new().cut_after(Direction::ToBroker, 5)).await;
    let mut conn = tcp(proxy.addr()).await;
    let err = conn.connect(connect_packet("partial")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    let stats = proxy.wait_for(TIMEOUT, |s| s.active == 0).await.unwrap();
    assert_eq!(
        (stats.bytes_to_broker, stats.bytes_to_client, stats.cuts),
        (5, 0, 1)
    );
}

#[tokio::test]
async fn drops_the_connection_during_connect_connack() {
    let broker = Broker::start().unwrap();
    // Forward the whole CONNECT: the broker answers, but the CONNACK never reaches the client.
    let proxy = proxy(&broker, FaultMode::new().drop_during_connect(10_000)).await;
    let mut conn = tcp(proxy.addr()).await;
    let err = conn.connect(connect_packet("dcc")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    broker
        .wait_for_log("New client connected from", TIMEOUT)
        .unwrap_or_else(|e| panic!("the CONNECT did not reach mosquitto: {e}"));
    let stats = proxy.wait_for(TIMEOUT, |s| s.active == 0).await.unwrap();
    assert_eq!(stats.bytes_to_broker, connect_len("dcc"));
    assert_eq!((stats.bytes_to_client, stats.cuts), (0, 1));

    // Forward 3 bytes of it only.
    proxy.set_mode(FaultMode::new().drop_during_connect(3));
    let mut conn = tcp(proxy.addr()).await;
    assert!(conn.connect(connect_packet("dcc2")).await.is_err());
    let stats = proxy
        .wait_for(TIMEOUT, |s| s.cuts == 2 && s.active == 0)
        .await
        .unwrap();
    assert_eq!(stats.bytes_to_broker, connect_len("dcc") + 3);
}

#[tokio::test]
async fn stall_holds_traffic_without_closing_and_resume_delivers_it() {
    let broker = Broker::start().unwrap();
    let proxy = proxy(&broker, FaultMode::new()).await;
    let mut conn = tcp(proxy.addr()).await;
    conn.connect(connect_packet("stall")).await.unwrap();

    proxy.stall(true);
    proxy.stall(true); // already stalled: not a second stall
    let err = ping(&mut conn, SHORT).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "stalled, not closed");
    proxy.stall(false);
    let raw = conn.recv_raw(TIMEOUT).await.unwrap();
    assert!(matches!(decode(&raw), Packet::PingResp));

    let stats = proxy.stats();
    assert_eq!((stats.stalls, stats.cuts, stats.active), (1, 0, 1));
}

#[tokio::test]
async fn stall_after_n_bytes_freezes_the_connection_until_cut_all() {
    let broker = Broker::start().unwrap();
    let proxy = proxy(
        &broker,
        FaultMode::new().stall_after(Direction::ToClient, 4),
    )
    .await;
    let mut conn = tcp(proxy.addr()).await;
    conn.connect(connect_packet("frozen")).await.unwrap();
    let err = ping(&mut conn, SHORT).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(proxy.stats().stalls, 1);

    proxy.cut_all();
    let err = conn.recv_raw(TIMEOUT).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    assert_eq!(proxy.stats().cuts, 1);
}

#[tokio::test]
async fn cut_all_closes_every_connection_and_new_ones_still_work() {
    let broker = Broker::start().unwrap();
    let proxy = proxy(&broker, FaultMode::new()).await;
    let mut a = tcp(proxy.addr()).await;
    let mut b = tcp(proxy.addr()).await;
    a.connect(connect_packet("a")).await.unwrap();
    b.connect(connect_packet("b")).await.unwrap();

    proxy.cut_all();
    for conn in [&mut a, &mut b] {
        let err = conn.recv_raw(TIMEOUT).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }
    let mut c = tcp(proxy.addr()).await;
    c.connect(connect_packet("c")).await.unwrap();
    let stats = proxy.stats();
    assert_eq!((stats.cuts, stats.accepted, stats.active), (2, 3, 1));
}

#[tokio::test]
async fn random_cuts_end_each_connection_within_the_window() {
    let broker = Broker::start().unwrap();
    let mode = FaultMode::new()
        .random_cuts(Duration::from_millis(50), Duration::from_millis(150))
        .seed(42);
    let proxy = proxy(&broker, mode).await;
    for round in 1..=2u64 {
        let started = tokio::time::Instant::now();
        let mut conn = tcp(proxy.addr()).await;
        conn.connect(connect_packet("rnd")).await.unwrap();
        let err = conn.recv_raw(TIMEOUT).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        let lived = started.elapsed();
        assert!(
            lived >= Duration::from_millis(45),
            "cut too early: {lived:?}"
        );
        assert!(lived < Duration::from_secs(2), "cut too late: {lived:?}");
        assert_eq!(proxy.stats().cuts, round);
    }
}

/// A one-connection upstream that records the size of every read until `expected` bytes.
fn recording_upstream(listener: TcpListener, expected: usize) -> JoinHandle<Vec<Vec<u8>>> {
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut reads = Vec::new();
        let mut total = 0;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while total < expected && reads.len() < 10_000 {
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .expect("upstream read timed out")
                .unwrap();
            if n == 0 {
                break;
            }
            total += n;
            reads.push(buf[..n].to_vec());
        }
        reads
    })
}

async fn local_upstream() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test]
async fn split_writes_deliver_one_byte_at_a_time() {
    let (listener, addr) = local_upstream().await;
    let upstream = recording_upstream(listener, 10);
    let mode = FaultMode::new()
        .split_writes(true)
        .delay(Duration::from_millis(10), Duration::ZERO);
    let proxy = FaultProxy::start(addr, mode).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(b"0123456789").await.unwrap();

    let reads = upstream.await.unwrap();
    assert_eq!(reads.concat(), b"0123456789");
    assert!(
        reads.len() >= 5,
        "bytes arrived in {} reads: {reads:?}",
        reads.len()
    );
    assert!(reads.iter().all(|r| r.len() <= 2), "{reads:?}");
}

#[tokio::test]
async fn coalesce_merges_separate_writes_into_one() {
    let (listener, addr) = local_upstream().await;
    let upstream = recording_upstream(listener, 12);
    let proxy = FaultProxy::start(addr, FaultMode::new().coalesce(Duration::from_millis(400)))
        .await
        .unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    for part in [b"aaaa", b"bbbb", b"cccc"] {
        client.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reads = upstream.await.unwrap();
    assert_eq!(reads, vec![b"aaaabbbbcccc".to_vec()]);
}

#[tokio::test]
async fn delay_holds_each_chunk() {
    let (listener, addr) = local_upstream().await;
    let upstream = recording_upstream(listener, 3);
    let mode = FaultMode::new().delay(Duration::from_millis(150), Duration::from_millis(20));
    let proxy = FaultProxy::start(addr, mode).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(b"abc").await.unwrap();
    assert_eq!(upstream.await.unwrap().concat(), b"abc");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "forwarded after {took:?}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_closes_the_client_and_is_counted() {
    let (listener, addr) = local_upstream().await;
    drop(listener);
    let proxy = FaultProxy::start(addr, FaultMode::new()).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(TIMEOUT, client.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    let stats = proxy
        .wait_for(TIMEOUT, |s| s.upstream_failures == 1)
        .await
        .unwrap();
    assert_eq!(stats.active, 0);
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections_and_listener() {
    let broker = Broker::start().unwrap();
    let proxy = proxy(&broker, FaultMode::new()).await;
    let addr = proxy.addr();
    let mut conn = tcp(addr).await;
    conn.connect(connect_packet("gone")).await.unwrap();
    drop(proxy);
    let err = conn.recv_raw(TIMEOUT).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
        ),
        "{err}"
    );
    // Bounded retry: the abort lands on the runtime's next turn.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the proxy still accepts after drop");
}

#[tokio::test]
async fn the_mode_can_be_read_back() {
    let (_listener, addr) = local_upstream().await;
    let mode = FaultMode::new().cut_after(Direction::ToBroker, 9).seed(3);
    let proxy = FaultProxy::start(addr, mode.clone()).await.unwrap();
    assert_eq!(proxy.mode(), mode);
    proxy.set_mode(FaultMode::new());
    assert_eq!(proxy.mode(), FaultMode::new());
}
