//! Opening a byte stream to a broker: TCP, then TLS for `mqtts://` and `wss://`, then a
//! WebSocket (subprotocol `mqtt`) for `ws://` and `wss://`, adapted back into a byte stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_core::Stream as _;
use futures_util::Sink;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{rustls, TlsConnector};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

use crate::options::{TlsOptions, TransportOptions};
use crate::url::BrokerUrl;
use crate::Error;

/// A connected byte stream, whatever the transport.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A boxed [`Io`].
pub(crate) type Stream = Box<dyn Io>;

/// Builds the TLS connector once, from the options.
///
/// # Errors
/// [`Error::InvalidOptions`] for unreadable PEM, a certificate without its key, or no trusted
/// root at all.
pub(crate) fn tls_connector(o: &TlsOptions) -> Result<TlsConnector, Error> {
    if let Some(config) = &o.config {
        return Ok(TlsConnector::from(config.clone()));
    }
    let invalid =
        |what: &str, e: &dyn std::fmt::Display| Error::InvalidOptions(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    match &o.ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| invalid("ca_pem", &e))?;
                roots.add(cert).map_err(|e| invalid("ca_pem", &e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(Error::InvalidOptions(
            "no trusted root certificate (ca_pem empty, or no system roots found)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS", &e))?
        .with_root_certificates(roots);
    let mut config = match (&o.client_cert_pem, &o.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("client_cert_pem", &e))?;
            // The key's own error could quote key material: report only that it failed.
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
                Error::InvalidOptions("client_key_pem: no usable private key".into())
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid("client certificate", &e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::InvalidOptions(
                "client_cert_pem and client_key_pem are set together".into(),
            ))
        }
    };
    config.alpn_protocols = o.alpn.clone();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Opens the transport `url` asks for. Not bounded in time: the caller applies the connect
/// timeout.
pub(crate) async fn connect(
    url: &BrokerUrl,
    options: &TransportOptions,
    tls: Option<&TlsConnector>,
) -> Result<Stream, Error> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
    tcp.set_nodelay(options.tcp_nodelay)?;
    let stream: Stream = if url.scheme.is_tls() {
        let connector = tls.ok_or_else(|| Error::InvalidOptions("TLS is not configured".into()))?;
        let name = options.tls.server_name.as_deref().unwrap_or(&url.host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| Error::InvalidOptions(format!("invalid TLS server name {name:?}")))?;
        Box::new(connector.connect(server_name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    if url.scheme.is_websocket() {
        websocket(url, stream).await
    } else {
        Ok(stream)
    }
}

/// Performs the WebSocket handshake with subprotocol `mqtt` over `stream`.
async fn websocket(url: &BrokerUrl, stream: Stream) -> Result<Stream, Error> {
    let scheme = if url.scheme.is_tls() { "wss" } else { "ws" };
    let uri = format!("{scheme}://{}{}", url.authority(), url.path);
    let mut request = uri.into_client_request().map_err(ws_error)?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    let (ws, _response) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(ws_error)?;
    Ok(Box::new(WsIo {
        ws,
        read: Bytes::new(),
    }))
}

fn ws_error(e: tungstenite::Error) -> Error {
    Error::from(ws_io_error(e))
}

fn ws_io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

/// A WebSocket as a byte stream: each write is one binary message; reads return the bytes
/// of binary messages in order.
struct WsIo<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last message read.
    read: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.read.is_empty() {
                let n = self.read.len().min(buf.remaining());
                buf.put_slice(&self.read[..n]);
                self.read.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(WsMessage::Binary(data))) => self.read = data,
                Some(Ok(WsMessage::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(WsMessage::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text message on an MQTT WebSocket",
                    )))
                }
                // Ping, pong and raw frames: tungstenite answers pings itself.
                Some(Ok(_)) => {}
                Some(Err(tungstenite::Error::ConnectionClosed)) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(ws_io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_io_error)?;
        let message = WsMessage::Binary(Bytes::copy_from_slice(buf));
        Pin::new(&mut self.ws)
            .start_send(message)
            .map_err(ws_io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(ws_io_error)
    }
}

/// [`connect`] over owned arguments, for a future that must not borrow the driver.
pub(crate) async fn connect_owned(
    url: BrokerUrl,
    options: TransportOptions,
    tls: Option<TlsConnector>,
) -> Result<Stream, Error> {
    connect(&url, &options, tls.as_ref()).await
}
