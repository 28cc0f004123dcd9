//! TLS test support: certificates made with rcgen (a test CA, server certificates it signs,
//! expired ones, a `CA:TRUE` self-signed one), PEM files in a temporary directory, and a
//! TLS-terminating proxy in front of a plain server on 127.0.0.1 (restartable on its port).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A certificate authority for one test.
pub struct TestCa {
    key: KeyPair,
    cert: rcgen::Certificate,
}

/// A server certificate and its key.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
    /// The certificate in PEM (for a client that trusts it directly).
    pub pem: String,
}

/// How long a certificate is valid.
#[derive(Clone, Copy)]
pub enum Validity {
    /// From 2020 to 2090.
    Now,
    /// From 2000 to 2001: expired.
    Expired,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "wamp-client test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        TestCa { key, cert }
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (host names or IP addresses), signed by this CA.
    pub fn issue(&self, names: &[&str], validity: Validity) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        set_validity(&mut params, validity);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        ServerCert {
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
            pem: cert.pem(),
        }
    }
}

/// A self-signed certificate for `names` with `basicConstraints CA:TRUE`, as plain
/// `openssl req -x509` makes.
pub fn self_signed_ca_true(names: &[&str]) -> ServerCert {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("server"),
    );
    let cert = params.self_signed(&key).unwrap();
    ServerCert {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
        pem: cert.pem(),
    }
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    match validity {
        Validity::Now => {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2090, 1, 1);
        }
        Validity::Expired => {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
    }
}

/// Writes `contents` to a new file in the temporary directory; returns its path.
pub fn temp_file(name: &str, contents: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wamp-tls-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Accepts TLS with a certificate on 127.0.0.1 and forwards the plain bytes to `target`.
pub struct TlsProxy {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TlsProxy {
    pub async fn start(target: SocketAddr, cert: &ServerCert) -> TlsProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, target, cert)
    }

    /// Serves on `addr` again (after the previous proxy there was dropped).
    pub async fn start_on(addr: SocketAddr, target: SocketAddr, cert: &ServerCert) -> TlsProxy {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the port {addr} did not become free: {e}"),
            }
        };
        Self::serve(listener, target, cert)
    }

    fn serve(listener: TcpListener, target: SocketAddr, cert: &ServerCert) -> TlsProxy {
        let addr = listener.local_addr().unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                cert.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let pipes = pipes.clone();
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    let pipe = tokio::spawn(async move {
                        // A refused handshake is the client's business (its error is tested).
                        let Ok(mut tls) = acceptor.accept(inbound).await else {
                            return;
                        };
                        let Ok(mut outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
                    });
                    pipes.lock().unwrap().push(pipe);
                }
            }
        });
        TlsProxy {
            addr,
            accept,
            pipes,
        }
    }

    /// `wss://host:port/ws`, with `host` naming 127.0.0.1 (`localhost` or the address).
    pub fn url(&self, host: &str) -> String {
        format!("wss://{host}:{}/ws", self.addr.port())
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }
}
