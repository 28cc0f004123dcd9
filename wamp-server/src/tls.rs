//! TLS for the server side: a rustls configuration (ring provider, ALPN `http/1.1`) built from a
//! certificate chain and private key in PEM, or from a `ServerConfig` of your own.
//!
//! Used by [`crate::serve_tls`] (wss:// on a bare listener) and [`crate::serve_app_tls`] (an
//! axum app, https:// and wss://). The TLS handshake runs inside each connection's task, under
//! [`crate::Options::handshake_timeout`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The ALPN protocol offered to clients: WebSocket handshakes are HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// A server's TLS setup, cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = wamp_server::tls::TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let router = wamp_server::Router::builder().build();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// wamp_server::serve_tls(listener, router, tls, async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// Why a TLS configuration could not be built. Each message names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} file {}: {source}", path.display())]
    Read {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{}: no PEM certificate (\"-----BEGIN CERTIFICATE-----\") found; give the server's certificate chain in PEM", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no PEM private key.
    #[error("{}: no PEM private key found (PKCS#8, PKCS#1 or SEC1, e.g. \"-----BEGIN PRIVATE KEY-----\"); give the certificate's private key", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate, or rustls refused the pair.
    #[error("the private key does not fit the certificate: {0} (give the key the certificate was made for)")]
    KeyMismatch(rustls::Error),
    /// Building the rustls configuration failed otherwise.
    #[error("TLS configuration failed: {0}")]
    Config(rustls::Error),
}

impl TlsConfig {
    /// Uses a rustls `ServerConfig` of your own. If it offers no ALPN protocols, `http/1.1` is
    /// set (a WebSocket handshake is HTTP/1.1).
    pub fn from_server_config(mut config: ServerConfig) -> TlsConfig {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        }
        TlsConfig {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }

    /// Reads a certificate chain (leaf first) and its private key from PEM files.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsConfig, TlsError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read("certificate", cert)?;
        let key_pem = read("key", key)?;
        let chain = certificates(&cert_pem).ok_or_else(|| TlsError::NoCertificate {
            path: cert.to_path_buf(),
        })?;
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
            path: key.to_path_buf(),
        })?;
        Self::from_der(chain, key_der)
    }

    /// A certificate chain and key already in PEM text (e.g. from a secret store).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let chain = certificates(cert_pem).ok_or_else(|| TlsError::NoCertificate {
            path: PathBuf::from("<certificate PEM>"),
        })?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey {
            path: PathBuf::from("<key PEM>"),
        })?;
        Self::from_der(chain, key_der)
    }

    /// A certificate chain and key in DER.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsConfig, TlsError> {
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::KeyMismatch)?;
        Ok(Self::from_server_config(config))
    }

    /// The TLS handshake of one accepted connection; `None` (logged at debug) if it fails.
    /// The caller bounds it: it is part of the connection's handshake deadline.
    pub(crate) fn accept(
        &self,
        tcp: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
    ) -> impl std::future::Future<
        Output = Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
    > + Send
           + 'static {
        let acceptor = self.acceptor.clone();
        async move {
            acceptor
                .accept(tcp)
                .await
                .map_err(|e| tracing::debug!(%peer, error = %e, "TLS handshake failed"))
                .ok()
        }
    }
}

/// Every certificate in a PEM text; `None` if there is none or one does not parse.
fn certificates(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    (!chain.is_empty()).then_some(chain)
}
