//! TLS for `wss://` (the `tls` feature): the rustls client configuration (ring provider;
//! trust from the OS store, else webpki-roots, plus extra CA files; or the insecure mode),
//! and reading rustls's refusals into [`TlsFailure`]s a person can act on.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tracing::{debug, warn};

use crate::error::{Error, TlsFailure};
use crate::options::TlsOptions;

/// The crypto provider: ring, and only ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `options`: the one given, or one built from the trust
/// settings. Built once per client, not per reconnect; the OS store is read once per process.
pub(crate) fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    if let Some(config) = &options.config {
        return Ok(config.clone());
    }
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsSetup(format!("the ring provider refused TLS 1.2/1.3: {e}")))?;
    let mut config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(&options.ca_files)?)
            .with_no_client_auth()
    };
    // A WebSocket handshake is HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The operating system's store, else webpki-roots when it is empty. Read once per process:
/// reading and parsing the store takes milliseconds (it capped a client opening many
/// `wss://` sessions at about 150 a second), and it changes only with the system's packages.
fn default_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            debug!(error = %e, "reading the OS certificate store");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        debug!(added, ignored, "OS trust store");
        if roots.is_empty() {
            debug!("the OS trust store is empty; using the webpki-roots (Mozilla) roots");
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    })
}

/// The trusted roots: the default ones ([`default_roots`]), then every certificate of every
/// extra CA file (read at each call, so a renewed CA file is picked up by the next client).
fn roots(ca_files: &[std::path::PathBuf]) -> Result<RootCertStore, Error> {
    let mut roots = default_roots().clone();
    for file in ca_files {
        for cert in ca_file(file)? {
            roots.add(cert).map_err(|e| {
                Error::TlsSetup(format!(
                    "CA file {}: a certificate cannot be used as a trust anchor: {e}",
                    file.display()
                ))
            })?;
        }
    }
    Ok(roots)
}

/// Every certificate in a PEM file; an error when it cannot be read or holds none.
fn ca_file(file: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let shown = file.display();
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| Error::TlsSetup(format!("cannot read CA file {shown}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsSetup(format!("CA file {shown} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::TlsSetup(format!(
            "CA file {shown} holds no certificate (expected -----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

/// The insecure mode's verifier: any certificate is accepted, but the handshake signatures
/// are still checked (the server must hold the key of the certificate it shows). Every use
/// logs a warning.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        warn!(
            server = %server_name.to_str(),
            "TLS certificate NOT verified (insecure mode): the connection is encrypted but \
             anyone could be at the other end"
        );
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls error inside an I/O error from the TLS handshake, if that is what it is.
pub(crate) fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A name as rustls shows it (`DnsName("example.com")`) as a person writes it.
fn plain_name(shown: &str) -> String {
    shown
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .unwrap_or(shown)
        .to_string()
}

/// What a rustls error means for a person connecting to `host`.
pub(crate) fn failure(e: &rustls::Error, host: &str) -> TlsFailure {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return TlsFailure::Handshake(e.to_string());
    };
    match cert {
        CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
        // webpki says this when a trusted CA carries the issuer's name but not its key, e.g. a
        // self-signed `CN=localhost` certificate while Debian's ssl-cert-snakeoil.pem (also
        // `CN=localhost`) is in the OS store: for the user the issuer is not trusted.
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            TlsFailure::UnknownIssuer
        }
        CertificateError::NotValidForName => TlsFailure::NameMismatch {
            host: host.to_string(),
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext { presented, .. } => TlsFailure::NameMismatch {
            host: host.to_string(),
            presented: presented.iter().map(|name| plain_name(name)).collect(),
        },
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsFailure::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TlsFailure::NotYetValid
        }
        // webpki's error, which rustls passes on as "other": its text is its name.
        CertificateError::Other(other) if other.to_string() == "CaUsedAsEndEntity" => {
            TlsFailure::CaUsedAsEndEntity
        }
        other => TlsFailure::Certificate(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_are_shown_plainly() {
        assert_eq!(plain_name("DnsName(\"other.example\")"), "other.example");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "IpAddress(127.0.0.1)");
    }

    #[test]
    fn rustls_errors_map_to_failures() {
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(failure(&e, "h"), TlsFailure::UnknownIssuer);
        let e = rustls::Error::InvalidCertificate(CertificateError::BadSignature);
        assert_eq!(failure(&e, "h"), TlsFailure::UnknownIssuer);
        let e = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(failure(&e, "h"), TlsFailure::Expired);
        let e = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(
            failure(&e, "h"),
            TlsFailure::NameMismatch {
                host: "h".into(),
                presented: vec![]
            }
        );
        let e = rustls::Error::General("boom".into());
        assert!(matches!(failure(&e, "h"), TlsFailure::Handshake(why) if why.contains("boom")));
    }
}
