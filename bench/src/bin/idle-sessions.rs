//! Opens N WAMP sessions to a server, waits for every WELCOME, then holds them idle until
//! stdin closes, so that the server's memory per idle session can be read.
//!
//! Run with: `cargo run --release -p wamp-bench --bin idle-sessions -- --url ws://127.0.0.1:9101/ws --sessions 10000`
//! It prints `READY <n>` once all sessions are open. For `wss://` URLs give the server's CA
//! with `--ca-file` (rustls with the ring provider, ALPN http/1.1).

use std::sync::Arc;

use clap::Parser;
use futures::StreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser)]
struct Args {
    /// The server's WAMP endpoint.
    #[arg(long)]
    url: String,
    /// How many sessions to open.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// How many handshakes run at once.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// For wss:// URLs: the PEM CA certificate to trust.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
}

/// A rustls client configuration trusting the CA certificates in `ca_file`.
fn tls_config(ca_file: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("--ca-file: a PEM file") {
        roots
            .add(cert.expect("--ca-file: PEM certificates"))
            .expect("a CA certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One session: TCP (and TLS for wss://), the WebSocket handshake offering `wamp`, WELCOME.
async fn open(
    url: String,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Box<dyn std::any::Any + Send> {
    let mut request = url.as_str().into_client_request().expect("url");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp".parse().expect("header"));
    let host = request.uri().host().expect("a host").to_string();
    let port = request.uri().port_u16().unwrap_or(443);
    let Some(tls) = tls else {
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect (raise `ulimit -n`?)");
        // Wait for WELCOME so the session really exists on the server.
        let welcome = ws.next().await.expect("welcome").expect("welcome");
        assert!(welcome.to_text().expect("text").starts_with("[0,"));
        return Box::new(ws);
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .expect("connect (raise `ulimit -n`?)");
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string()).expect("host");
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("TLS handshake (is --ca-file the server's CA?)");
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("WebSocket handshake");
    let welcome = ws.next().await.expect("welcome").expect("welcome");
    assert!(welcome.to_text().expect("text").starts_with("[0,"));
    Box::new(ws)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tls = match (&args.ca_file, args.url.starts_with("wss:")) {
        (Some(ca), true) => Some(tls_config(ca)),
        (None, true) => panic!("wss:// needs --ca-file"),
        _ => None,
    };
    let url = args.url.clone();
    let opened = futures::stream::iter(0..args.sessions)
        .map(|_| open(url.clone(), tls.clone()))
        .buffer_unordered(args.parallel)
        .collect::<Vec<_>>()
        .await;
    println!("READY {}", opened.len());
    // Hold the sessions until told to stop.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    drop(opened);
}
