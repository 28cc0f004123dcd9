//! A fast local HTTP backend for the standalone router's RPC proxy (`[[rpc.proxy]]`): every
//! `POST` answers `{"result": <first arg>}`, the proxy's echo, for `scripts/bench --scenarios
//! proxy`.
//!
//! Run with: `cargo run --release -p wamp-bench --bin rpc-backend -- --port 9000`

use axum::http::StatusCode;
use axum::Json;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// Port to listen on (0 picks one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// The proxy's request is `{"session", "authkey", "procedure", "args"}`; the echo answers
/// its first argument (`null` when there is none). A body without `args` is a 400.
async fn echo(Json(call): Json<Value>) -> Result<Json<Value>, (StatusCode, String)> {
    let Some(args) = call.get("args").and_then(Value::as_array) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "expected {\"args\": [...]} as the RPC proxy sends".to_string(),
        ));
    };
    Ok(Json(
        json!({ "result": args.first().cloned().unwrap_or(Value::Null) }),
    ))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let app = axum::Router::new().fallback(axum::routing::post(echo));
    let listener = tokio::net::TcpListener::bind(wamp_bench::bind_addr(args.port)).await?;
    println!(
        "rpc-backend listening on http://{}/",
        listener.local_addr()?
    );
    // Small answers go out at once (no Nagle delay behind the previous one's ACK).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
