//! Opening a byte stream to a broker: TCP, then TLS for `mqtts://` and `wss://`, then a
//! WebSocket (subprotocol `mqtt`) for `ws://` and `wss://`, adapted back into a byte stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{rustls, TlsConnector};

use crate::options::{Direction, Socks5Proxy, Tap, TlsOptions, TlsVersion, TransportOptions};
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
        #[cfg(feature = "tls")]
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        }
        #[cfg(not(feature = "tls"))]
        None => {}
    }
    if roots.is_empty() {
        return Err(Error::InvalidOptions(
            "no trusted root certificate (ca_pem empty, or no system roots found)".into(),
        ));
    }
    let provider = crypto_provider()?;
    let versions: &[&rustls::SupportedProtocolVersion] = match o.version {
        None => rustls::DEFAULT_VERSIONS,
        Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
    };
    let wants_verifier = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| invalid("TLS", &e))?;
    let builder = if o.insecure_skip_hostname {
        let chain =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid("ca_pem", &e))?;
        wants_verifier
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostname(chain)))
    } else {
        wants_verifier.with_root_certificates(roots)
    };
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

/// The crypto provider for TLS: the process default when the application installed one
/// (`CryptoProvider::install_default`), else the one a cargo feature names. `aws-lc-rs` wins
/// over `ring` when both are on: `ring` is a default feature, so `aws-lc-rs` is only on when
/// someone asked for it.
fn crypto_provider() -> Result<Arc<rustls::crypto::CryptoProvider>, Error> {
    if let Some(provider) = rustls::crypto::CryptoProvider::get_default() {
        return Ok(provider.clone());
    }
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    // rustls 0.23.48 deprecates this constructor because ring has no post-quantum key
    // exchange, and offers no other way to build a ring provider; `aws-lc-rs` has one.
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    #[allow(deprecated)]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    Err(Error::InvalidOptions(crate::url::NO_CRYPTO_PROVIDER.into()))
}

/// [`TlsOptions::insecure_skip_hostname`]: the chain is verified, a name mismatch is not an
/// error.
#[derive(Debug)]
struct AnyHostname(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Opens the transport `url` asks for. Not bounded in time: the caller applies the connect
/// timeout.
pub(crate) async fn connect(
    url: &BrokerUrl,
    options: &TransportOptions,
    tls: Option<&TlsConnector>,
) -> Result<Stream, Error> {
    let socket = socket(url, options).await?;
    let stream: Stream = if url.scheme.is_tls() {
        let connector = tls.ok_or_else(|| Error::InvalidOptions("TLS is not configured".into()))?;
        let name = options.tls.server_name.as_deref().unwrap_or(&url.host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| Error::InvalidOptions(format!("invalid TLS server name {name:?}")))?;
        Box::new(connector.connect(server_name, socket).await?)
    } else {
        socket
    };
    let stream = if url.scheme.is_websocket() {
        websocket(url, stream).await?
    } else {
        stream
    };
    Ok(match &options.tap {
        Some(tap) => Box::new(Tapped {
            inner: stream,
            tap: tap.clone(),
        }),
        None => stream,
    })
}

/// The byte stream under TLS and WebSocket: a Unix socket, a TCP connection through a
/// SOCKS5 proxy, or a direct TCP connection.
async fn socket(url: &BrokerUrl, options: &TransportOptions) -> Result<Stream, Error> {
    #[cfg(unix)]
    if let Some(path) = &options.unix_socket {
        return Ok(Box::new(tokio::net::UnixStream::connect(path).await?));
    }
    let tcp = match &options.proxy {
        Some(proxy) => {
            let mut tcp = tcp_connect(&proxy.host, proxy.port, options.bind_address).await?;
            socks5_connect(&mut tcp, proxy, &url.host, url.port).await?;
            tcp
        }
        None => tcp_connect(&url.host, url.port, options.bind_address).await?,
    };
    tcp.set_nodelay(options.tcp_nodelay)?;
    Ok(Box::new(tcp))
}

/// TCP to `host:port`, from `bind` when given (trying the addresses of its family in turn).
async fn tcp_connect(
    host: &str,
    port: u16,
    bind: Option<std::net::IpAddr>,
) -> io::Result<TcpStream> {
    let Some(bind) = bind else {
        return TcpStream::connect((host, port)).await;
    };
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        if addr.is_ipv4() != bind.is_ipv4() {
            continue;
        }
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(std::net::SocketAddr::new(bind, 0))?;
        match socket.connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{host} has no address of the bind address's family"),
        )
    }))
}

/// The SOCKS5 handshake (RFC 1928; user name and password per RFC 1929): asks the proxy to
/// connect to `host:port`, resolving the name itself.
async fn socks5_connect(
    tcp: &mut TcpStream,
    proxy: &Socks5Proxy,
    host: &str,
    port: u16,
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fail = |what: &str| io::Error::other(format!("SOCKS5 proxy: {what}"));
    let greeting: &[u8] = match proxy.credentials {
        Some(_) => &[5, 2, 0, 2],
        None => &[5, 1, 0],
    };
    tcp.write_all(greeting).await?;
    let mut reply = [0u8; 2];
    tcp.read_exact(&mut reply).await?;
    match (reply, &proxy.credentials) {
        ([5, 0], _) => {}
        ([5, 2], Some((user, password))) => {
            let (user, password) = (user.as_bytes(), password.as_bytes());
            let too_long =
                |b: &[u8]| u8::try_from(b.len()).map_err(|_| fail("credential over 255 bytes"));
            let mut auth = vec![1, too_long(user)?];
            auth.extend_from_slice(user);
            auth.push(too_long(password)?);
            auth.extend_from_slice(password);
            tcp.write_all(&auth).await?;
            tcp.read_exact(&mut reply).await?;
            if reply[1] != 0 {
                return Err(fail("user name or password refused"));
            }
        }
        _ => return Err(fail("no acceptable authentication method")),
    }
    let mut request = vec![5, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let len = u8::try_from(host.len()).map_err(|_| fail("host name over 255 bytes"))?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&request).await?;
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(fail("not a SOCKS5 reply"));
    }
    if head[1] != 0 {
        let why = match head[1] {
            2 => "connection not allowed by ruleset",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            _ => "general failure",
        };
        return Err(fail(why));
    }
    // The address the proxy bound: skipped.
    let skip = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => usize::from(tcp.read_u8().await?) + 2,
        _ => return Err(fail("unknown address type in reply")),
    };
    let mut bound = vec![0u8; skip];
    tcp.read_exact(&mut bound).await?;
    Ok(())
}

/// A stream that shows its bytes to a [`Tap`].
struct Tapped {
    inner: Stream,
    tap: Tap,
}

impl AsyncRead for Tapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            self.tap.call(Direction::Received, new);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Tapped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        if let Some(written) = buf.get(..n).filter(|w| !w.is_empty()) {
            self.tap.call(Direction::Sent, written);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(feature = "websocket")]
mod websocket;
#[cfg(feature = "websocket")]
use websocket::websocket;

/// Without the `websocket` feature no `ws://` or `wss://` URL gets this far: parsing refuses
/// them.
#[cfg(not(feature = "websocket"))]
async fn websocket(_url: &BrokerUrl, _stream: Stream) -> Result<Stream, Error> {
    Err(Error::InvalidOptions(crate::url::NO_WEBSOCKET.into()))
}

/// [`connect`] over owned arguments, for a future that must not borrow the driver.
pub(crate) async fn connect_owned(
    url: BrokerUrl,
    options: TransportOptions,
    tls: Option<TlsConnector>,
) -> Result<Stream, Error> {
    connect(&url, &options, tls.as_ref()).await
}
