//! TLS for remoting, with mutual authentication (rustls).
//!
//! [`TlsTransport`] wraps another transport. Every connection is TLS 1.2 or 1.3, and *both* sides
//! must present a certificate signed by the configured CA: a node holding a certificate from
//! another CA cannot connect, and cannot be connected to. The casty handshake (system name,
//! secret) then runs inside the encrypted stream. Server names are checked against the address
//! dialled, so node certificates carry the node's IP address or host name. An accepted
//! connection's TLS handshake runs in [`Listener::upgrade`], in that connection's own task, so a
//! peer that never speaks holds up no one else.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::actor::behavior::BoxFuture;
use crate::remote::{BoxStream, Fate, Listener, NodeAddress, Severer, TcpTransport, Transport};

/// The PEM texts a node needs for TLS.
///
/// # Examples
///
/// ```
/// use casty::remote::TlsConfig;
/// let c = TlsConfig { ca_pem: String::new(), cert_pem: String::new(), key_pem: String::new() };
/// assert!(casty::remote::TlsTransport::tcp(&c).is_err(), "an empty CA is refused");
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    /// The CA that signs every node's certificate.
    pub ca_pem: String,
    /// This node's certificate chain.
    pub cert_pem: String,
    /// This node's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// Why a TLS configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TLS configuration: {0}")]
pub struct TlsError(String);

fn err(what: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError(format!("{what}: {e}"))
}

/// A transport that speaks TLS with mutual authentication over another transport.
#[derive(Clone)]
pub struct TlsTransport {
    inner: Arc<dyn Transport>,
    connector: TlsConnector,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

impl TlsTransport {
    /// TLS over TCP.
    ///
    /// # Errors
    ///
    /// [`TlsError`] if a PEM text does not parse or the key does not match the certificate.
    pub fn tcp(config: &TlsConfig) -> Result<Self, TlsError> {
        Self::new(Arc::new(TcpTransport), config)
    }

    /// TLS over `inner` (for example a `FaultyTransport`).
    ///
    /// # Errors
    ///
    /// As [`TlsTransport::tcp`].
    pub fn new(inner: Arc<dyn Transport>, config: &TlsConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let cas: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(config.ca_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| err("the CA certificate", e))?;
        if cas.is_empty() {
            return Err(TlsError("no CA certificate in `ca_pem`".into()));
        }
        for ca in cas {
            roots.add(ca).map_err(|e| err("the CA certificate", e))?;
        }
        let roots = Arc::new(roots);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(config.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| err("the node certificate", e))?;
        let key = PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes())
            .map_err(|e| err("the node key", e))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| err("the client verifier", e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err("protocol versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| err("the node certificate and key", e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("protocol versions", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| err("the node certificate and key", e))?;
        Ok(TlsTransport {
            inner,
            connector: TlsConnector::from(Arc::new(client)),
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }
}

struct TlsListener {
    inner: Box<dyn Listener>,
    acceptor: TlsAcceptor,
}

impl Listener for TlsListener {
    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, std::net::SocketAddr)>> {
        // The TLS handshake waits for the peer: it runs in `upgrade`, in the connection's task.
        self.inner.accept()
    }

    fn upgrade(
        &self,
        stream: BoxStream,
        from: std::net::SocketAddr,
    ) -> BoxFuture<'static, io::Result<BoxStream>> {
        let inner = self.inner.upgrade(stream, from);
        let acceptor = self.acceptor.clone();
        Box::pin(async move {
            let stream = inner.await?;
            let tls = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
                .map_err(|e| {
                    tracing::warn!(%from, error = %e, "TLS handshake refused");
                    e
                })?;
            Ok(Box::new(tls) as BoxStream)
        })
    }
}

fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

impl Transport for TlsTransport {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let inner = self.inner.bind(addr).await?;
            Ok(Box::new(TlsListener {
                inner,
                acceptor: self.acceptor.clone(),
            }) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let name = server_name(addr)?;
            let stream = self.inner.connect(addr).await?;
            let tls =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, self.connector.connect(name, stream))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
            Ok(Box::new(tls) as BoxStream)
        })
    }

    fn filters_frames(&self) -> bool {
        self.inner.filters_frames()
    }

    fn outbound(&self, peer: &NodeAddress) -> Fate {
        self.inner.outbound(peer)
    }

    fn inbound(&self, peer: &NodeAddress) -> Fate {
        self.inner.inbound(peer)
    }

    fn register(&self, peer: &NodeAddress, severer: &Severer) {
        self.inner.register(peer, severer);
    }
}
