//! Test support for TLS: a test CA and a server certificate made with rcgen, and a raw wss://
//! client (plain tokio-tungstenite over a tokio-rustls connection trusting the test CA).

#![allow(dead_code)] // each test file uses a different part of this module

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::WebSocketStream;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A test CA and a server certificate it signed, for `localhost` and `127.0.0.1`.
pub struct TestCerts {
    pub ca_der: CertificateDer<'static>,
    /// The CA's certificate in PEM (what a client's CA file holds).
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// A key that does not belong to the certificate.
    pub other_key_pem: String,
}

impl TestCerts {
    pub fn new() -> TestCerts {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wamp-server test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        TestCerts {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            other_key_pem: KeyPair::generate().unwrap().serialize_pem(),
        }
    }

    /// A client configuration trusting only the test CA, offering ALPN http/1.1.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Writes the certificate, its key and a foreign key into `dir`.
    pub fn write(
        &self,
        dir: &std::path::Path,
    ) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let other = dir.join("other-key.pem");
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        std::fs::write(&other, &self.other_key_pem).unwrap();
        (cert, key, other)
    }
}

/// A fresh directory under the target's temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wamp-server-tls-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The TLS connection to `addr` with `name` as the server name; the negotiated ALPN protocol.
pub async fn tls_connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// A raw WAMP v1 client over wss://: exact frames in, parsed JSON out.
pub struct WssClient {
    pub ws: WebSocketStream<TlsStream<TcpStream>>,
    pub welcome: Value,
}

impl WssClient {
    /// Connects to `wss://{name}:{port}/ws` offering `wamp`, and reads the WELCOME.
    pub async fn connect(addr: SocketAddr, name: &str, config: Arc<ClientConfig>) -> WssClient {
        let tls = tls_connect(addr, name, config).await.unwrap();
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            Some(&b"http/1.1"[..]),
            "the server must negotiate ALPN http/1.1"
        );
        let mut request = format!("wss://{name}:{}/ws", addr.port())
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
        let (ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            "wamp"
        );
        let mut c = WssClient {
            ws,
            welcome: Value::Null,
        };
        c.welcome = c.recv().await;
        c
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Ws::text(text)).await.unwrap();
    }

    /// The next text frame as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("read failed");
            match msg {
                Ws::Text(t) => return serde_json::from_str(&t).unwrap(),
                Ws::Ping(_) | Ws::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// WELCOME, then a CALL of `echo_uri` and a SUBSCRIBE + PUBLISH on `topic`, frame by frame.
    pub async fn welcome_call_event(&mut self, echo_uri: &str, topic: &str) {
        assert_eq!(self.welcome[0], 0, "{}", self.welcome);
        assert_eq!(self.welcome[2], 1, "{}", self.welcome);
        self.send(&format!(r#"[2,"c1","{echo_uri}","over tls"]"#))
            .await;
        assert_eq!(self.recv().await, serde_json::json!([3, "c1", "over tls"]));
        self.send(&format!(r#"[5,"{topic}"]"#)).await;
        self.send(&format!(r#"[7,"{topic}",{{"n":1}}]"#)).await;
        assert_eq!(self.recv().await, serde_json::json!([8, topic, {"n": 1}]));
    }
}
