//! The WebSocket listener: an HTTP upgrade with subprotocol `mqtt`, then CONNECT/CONNACK in
//! binary frames (framed by hand: RFC 6455 section 5.2).

mod common;

use common::{connect_packet, decode, encode, TIMEOUT};
use mqtt_sansio::{Packet, ReasonCode};
use mqtt_test_support::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until `needle` has been seen or the peer closes; bounded by TIMEOUT and 64 KiB.
async fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while got.len() < 65536 && !got.windows(needle.len()).any(|w| w == needle) {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("websocket read timed out")
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    got
}

#[tokio::test]
async fn websocket_upgrade_with_mqtt_subprotocol_then_connack() {
    let broker = Broker::builder().websockets().start().unwrap();
    let port = broker.ws_port().unwrap();
    assert_eq!(
        broker.ws_url().unwrap(),
        format!("ws://127.0.0.1:{port}/mqtt")
    );

    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_until(&mut stream, b"\r\n\r\n").await;
    let head = String::from_utf8_lossy(&response).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 6455's example key has this accept value.
    assert!(head.contains("s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    assert!(head.contains("sec-websocket-protocol: mqtt"), "{head}");
    let after_head = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| response[i + 4..].to_vec())
        .unwrap();
    assert!(after_head.is_empty());

    // One masked binary frame carrying CONNECT (short payload: 7-bit length).
    let connect = encode(Packet::Connect(connect_packet("ws")));
    assert!(connect.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82, 0x80 | connect.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(connect.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.unwrap();

    // The answer: an unmasked binary frame with the 4-byte CONNACK.
    let mut head = [0u8; 2];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut head))
        .await
        .expect("no websocket frame in time")
        .unwrap();
    assert_eq!(head, [0x82, 4], "a 4-byte binary frame expected");
    let mut body = [0u8; 4];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut body))
        .await
        .expect("frame body timed out")
        .unwrap();
    match decode(&body) {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::Success),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}
