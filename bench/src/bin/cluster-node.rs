//! One node of a benchmark cluster: router-server's router (echo, open chat and benchmark
//! topics) with a Redis backplane (`--redis-url`), and a session limit that is a flag, so that
//! a node can hold close to its open-file limit (the tutorial binary stops at 10,000). For
//! `scripts/bench --wave2 cluster`; needs this crate's `redis` feature.
//!
//! Run with: `cargo run --release -p wamp-bench --features redis --bin cluster-node --
//! --port 9101 --redis-url redis://127.0.0.1:6379/ --node-name a`

use clap::Parser;
use serde_json::Value;
use wamp_server::backplane::redis::{RedisBackplane, RedisConfig};
use wamp_server::{Router, Topic};

/// The benchmark topic (`wamp-cli bench fanout`'s default, `event:bench`).
const BENCH: &str = "http://wamptutorial/event#bench";

#[derive(Parser)]
struct Args {
    /// Port to listen on (0 picks one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Most sessions at once.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Join the cluster on this Redis server; without it the node stands alone.
    #[arg(long)]
    redis_url: Option<String>,
    /// This node's name in the cluster.
    #[arg(long, default_value = "node")]
    node_name: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut builder = Router::builder()
        .default_prefix("rpc", "http://wamptutorial/rpc#")
        .default_prefix("event", "http://wamptutorial/event#")
        .procedure(wamp_bench::ECHO, |_, args: Vec<Value>| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Null))
        })
        .topic(wamp_bench::CHAT, Topic::open())
        .topic(BENCH, Topic::open())
        .max_connections(args.max_connections);
    if let Some(url) = &args.redis_url {
        let backplane = RedisBackplane::new(RedisConfig::new(url).node_name(&args.node_name))
            .map_err(|e| std::io::Error::other(format!("--redis-url {url}: {e}")))?;
        builder = builder.backplane(backplane);
    }
    let router = builder.build();
    let listener = tokio::net::TcpListener::bind(wamp_bench::bind_addr(args.port)).await?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    wamp_bench::announce("cluster-node", listener.local_addr()?);
    wamp_server::serve(listener, router, stop).await
}
