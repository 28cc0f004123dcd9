//! Opens N WAMP sessions to a server, waits for every WELCOME, then holds them idle until
//! stdin closes, so that the server's memory per idle session can be read.
//!
//! Run with: `cargo run --release -p wamp-bench --bin idle-sessions -- --url ws://127.0.0.1:9101/ws --sessions 10000`
//! It prints `READY <n>` once all sessions are open.

use clap::Parser;
use futures::StreamExt;
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
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let url = args.url.clone();
    let opened = futures::stream::iter(0..args.sessions)
        .map(|_| {
            let url = url.clone();
            async move {
                let mut request = url.into_client_request().expect("url");
                request
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", "wamp".parse().expect("header"));
                let (mut ws, _) = tokio_tungstenite::connect_async(request)
                    .await
                    .expect("connect (raise `ulimit -n`?)");
                // Wait for WELCOME so the session really exists on the server.
                let welcome = ws.next().await.expect("welcome").expect("welcome");
                assert!(welcome.to_text().expect("text").starts_with("[0,"));
                ws
            }
        })
        .buffer_unordered(args.parallel)
        .collect::<Vec<_>>()
        .await;
    println!("READY {}", opened.len());
    // Hold the sessions until told to stop.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    drop(opened);
}
