//! Certificates made at test time: a CA, a server certificate for the loopback broker and a
//! client certificate for mutual TLS, plus `rustls` client configurations that use them.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};

/// A throw-away certificate authority with one server and one client certificate (ECDSA P-256).
///
/// The server certificate is valid for the DNS name [`TlsMaterial::SERVER_NAME`]
/// (`localhost`) and the IP address `127.0.0.1`, so a client may verify either. The client
/// certificate carries the common name [`TlsMaterial::CLIENT_NAME`] and is what mosquitto
/// requires in mutual-TLS mode. Private keys are PKCS#8.
///
/// [`TlsMaterial::generate`] is public so a test can make a second, *untrusted* CA and check
/// that a client refuses the broker's certificate.
#[derive(Clone)]
pub struct TlsMaterial {
    ca_pem: String,
    ca_der: Vec<u8>,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_cert_der: Vec<u8>,
    client_key_pem: String,
    client_key_der: Vec<u8>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_der_len", &self.ca_der.len())
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// The DNS name in the server certificate (`127.0.0.1` is in it too).
    pub const SERVER_NAME: &'static str = "localhost";
    /// The common name of the client certificate.
    pub const CLIENT_NAME: &'static str = "mqtt-test-client";

    /// Generates a new CA, server certificate and client certificate.
    ///
    /// # Errors
    /// Only if `rcgen` fails, which does not happen with these fixed parameters short of a
    /// broken system random source.
    pub fn generate() -> Result<Self, rcgen::Error> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mqtt-test-support CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut server_params =
            CertificateParams::new(vec![Self::SERVER_NAME.to_owned(), "127.0.0.1".to_owned()])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, Self::SERVER_NAME);
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server_params.signed_by(&server_key, &ca)?;

        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, Self::CLIENT_NAME);
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate()?;
        let client_cert = client_params.signed_by(&client_key, &ca)?;

        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_cert_der: client_cert.der().to_vec(),
            client_key_pem: client_key.serialize_pem(),
            client_key_der: client_key.serialize_der(),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The client certificate (signed by the CA), PEM.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// The client certificate, DER.
    pub fn client_cert_der(&self) -> &[u8] {
        &self.client_cert_der
    }

    /// The client's private key, PKCS#8 PEM.
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// The client's private key, PKCS#8 DER.
    pub fn client_key_der(&self) -> &[u8] {
        &self.client_key_der
    }

    pub(crate) fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    pub(crate) fn server_key_pem(&self) -> &str {
        &self.server_key_pem
    }

    /// A root store holding only this CA.
    ///
    /// # Errors
    /// If rustls refuses the CA certificate (it does not: it is generated well-formed).
    pub fn root_store(&self) -> Result<RootCertStore, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(self.ca_der.clone()))?;
        Ok(roots)
    }

    /// A rustls client configuration (ring provider, TLS 1.2 and 1.3) that trusts only this CA
    /// and presents no client certificate. It works against a server-auth-only listener; a
    /// mutual-TLS listener rejects it.
    ///
    /// The provider is chosen explicitly, so this works whichever rustls crypto features other
    /// crates in the build enable.
    ///
    /// # Errors
    /// Only on a rustls internal inconsistency.
    pub fn client_config(&self) -> Result<ClientConfig, rustls::Error> {
        Ok(Self::builder()?
            .with_root_certificates(self.root_store()?)
            .with_no_client_auth())
    }

    /// Like [`TlsMaterial::client_config`], and also presents the client certificate, as a
    /// mutual-TLS listener requires.
    ///
    /// # Errors
    /// Only on a rustls internal inconsistency.
    pub fn mtls_client_config(&self) -> Result<ClientConfig, rustls::Error> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key_der.clone()));
        Self::builder()?
            .with_root_certificates(self.root_store()?)
            .with_client_auth_cert(
                vec![CertificateDer::from(self.client_cert_der.clone())],
                key,
            )
    }

    fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, rustls::Error>
    {
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
    }
}
