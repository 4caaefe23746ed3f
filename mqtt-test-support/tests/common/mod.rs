//! Raw MQTT 3.1.1 over any async stream, with `mqtt-sansio` encoding and decoding the packets.
#![allow(dead_code)] // each test file uses its own subset

use std::io;
use std::time::Duration;

use mqtt_sansio::{
    ConnAck, Connect, Decoded, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS,
    QosPid, ReasonCode, Subscribe, Subscription, TopicFilter, TopicName,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A stream plus the bytes read past the last whole packet.
pub struct Conn<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, packet: Packet<'_>) -> io::Result<()> {
        self.stream.write_all(&encode(packet)).await?;
        self.stream.flush().await
    }

    /// The raw bytes of the next whole packet. `UnexpectedEof` when the peer closed,
    /// `TimedOut` after `timeout`.
    pub async fn recv_raw(&mut self, timeout: Duration) -> io::Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Each pass reads at least one byte or returns.
        for _ in 0..1_000_000 {
            match Packet::decode(&self.buf, V4, u32::MAX) {
                Ok(Decoded::Packet { len, .. }) => return Ok(self.buf.drain(..len).collect()),
                Ok(Decoded::Incomplete { .. }) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no packet in time"))??;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Err(io::Error::other("read loop bound reached"))
    }

    /// CONNECT (3.1.1) and the CONNACK's (session present, reason).
    pub async fn connect(&mut self, connect: Connect<'_>) -> io::Result<(bool, ReasonCode)> {
        self.send(Packet::Connect(connect)).await?;
        let raw = self.recv_raw(TIMEOUT).await?;
        match decode(&raw) {
            Packet::ConnAck(ConnAck {
                session_present,
                reason_code,
                ..
            }) => Ok((session_present, reason_code)),
            other => Err(io::Error::other(format!("expected CONNACK, got {other:?}"))),
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> io::Result<()> {
        let subs = [Subscription::new(TopicFilter::new(filter).unwrap(), qos)];
        self.send(Packet::Subscribe(Subscribe::new(pid(1), &subs)))
            .await?;
        let raw = self.recv_raw(TIMEOUT).await?;
        match decode(&raw) {
            Packet::SubAck(_) => Ok(()),
            other => Err(io::Error::other(format!("expected SUBACK, got {other:?}"))),
        }
    }

    /// PUBLISH at QoS 1 and wait for its PUBACK.
    pub async fn publish_qos1(&mut self, topic: &str, payload: &[u8]) -> io::Result<()> {
        let mut publish = Publish::new(TopicName::new(topic).unwrap(), payload);
        publish.qos_pid = QosPid::AtLeastOnce(pid(7));
        self.send(Packet::Publish(publish)).await?;
        let raw = self.recv_raw(TIMEOUT).await?;
        match decode(&raw) {
            Packet::PubAck(ack) if ack.packet_id == pid(7) => Ok(()),
            other => Err(io::Error::other(format!("expected PUBACK, got {other:?}"))),
        }
    }

    /// Waits for a PUBLISH, acknowledges it if QoS 1, returns (topic, payload).
    pub async fn expect_publish(&mut self, timeout: Duration) -> io::Result<(String, Vec<u8>)> {
        let raw = self.recv_raw(timeout).await?;
        let Packet::Publish(p) = decode(&raw) else {
            return Err(io::Error::other(format!(
                "expected PUBLISH, got {:?}",
                decode(&raw)
            )));
        };
        let out = (p.topic.as_str().to_owned(), p.payload.to_vec());
        if let QosPid::AtLeastOnce(id) = p.qos_pid {
            self.send(Packet::PubAck(PubResponse::new(id))).await?;
        }
        Ok(out)
    }

    pub async fn disconnect(mut self) -> io::Result<()> {
        self.send(Packet::Disconnect(Default::default())).await?;
        self.stream.shutdown().await
    }
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub fn encode(packet: Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; packet.encoded_len(V4).unwrap()];
    let n = packet.encode(V4, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

pub fn decode(raw: &[u8]) -> Packet<'_> {
    match Packet::decode(raw, V4, u32::MAX).unwrap() {
        Decoded::Packet { packet, .. } => packet,
        Decoded::Incomplete { .. } => panic!("incomplete packet {raw:?}"),
    }
}

/// A 3.1.1 CONNECT with clean session.
pub fn connect_packet(client_id: &str) -> Connect<'_> {
    Connect::new(V4, client_id)
}

/// Connects a TCP stream to `addr` within [`TIMEOUT`].
pub async fn tcp(addr: std::net::SocketAddr) -> Conn<tokio::net::TcpStream> {
    let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    Conn::new(stream)
}
