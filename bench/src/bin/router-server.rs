//! Our router under benchmark: `wamp_server::serve` with the echo procedure and an open chat
//! topic (publishers receive their own events, as on the ceiling server), default options.
//!
//! Run with: `cargo run --release -p wamp-bench --bin router-server -- --port 9101`
//! (`--tls-cert FILE --tls-key FILE`: `wamp_server::serve_tls`, wss://).

use clap::Parser;
use serde_json::Value;
use wamp_server::{Router, Topic};

#[derive(Parser)]
struct Args {
    /// Port to listen on (0 picks one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Most sessions at once.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Serve wss:// with this PEM certificate (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let router = Router::builder()
        .default_prefix("rpc", "http://wamptutorial/rpc#")
        .default_prefix("event", "http://wamptutorial/event#")
        .procedure(wamp_bench::ECHO, |_, args: Vec<Value>| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Null))
        })
        .topic(wamp_bench::CHAT, Topic::open())
        .max_connections(args.max_connections)
        .build();
    let listener = tokio::net::TcpListener::bind(wamp_bench::bind_addr(args.port)).await?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let tls = wamp_server::tls::TlsConfig::from_pem_files(cert, key)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        println!(
            "router-server listening on wss://{}/ws",
            listener.local_addr()?
        );
        return wamp_server::serve_tls(listener, router, tls, stop).await;
    }
    wamp_bench::announce("router-server", listener.local_addr()?);
    wamp_server::serve(listener, router, stop).await
}
