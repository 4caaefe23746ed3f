//! Opening a byte stream to a broker: TCP, then TLS for `mqtts://` and `wss://`, then a
//! WebSocket (subprotocol `mqtt`) for `ws://` and `wss://`, adapted back into a byte stream.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{rustls, TlsConnector};

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
