//! Run with: cargo run -p wamp-examples --example rpc_client
//!
//! Calls the tutorial server's procedures with `wamp-client`: echo, add (typed), the
//! CALLERRORs of throw and ping, then authenticates as `guest` and calls whoami. Start the
//! server first (`cargo run -p wamp-server`); another URL can be given as the first
//! argument: `cargo run -p wamp-examples --example rpc_client -- ws://host:port/ws`.

use serde_json::json;
use wamp_client::{Client, Error};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://localhost:8080/ws".to_string());

    let client = Client::connect(&url).await?;
    println!(
        "connected to {url}: session {} on {}",
        client.session_id().unwrap_or_default(),
        client.server_ident().unwrap_or_default()
    );

    // `rpc:` is one of the server's default prefixes, so no PREFIX is needed.
    let echoed = client.call("rpc:echo", vec![json!("hello, WAMP")]).await?;
    println!("rpc:echo(\"hello, WAMP\") = {echoed}");

    // Typed: a tuple of arguments in, a number out.
    let sum: f64 = client.call_typed("rpc:add", (23, 99, 0.5)).await?;
    println!("rpc:add(23, 99, 0.5) = {sum}");

    // Many calls at once on the one connection.
    let calls = (1..=5).map(|i| client.call_typed::<i64, _>("rpc:add", (i, i)));
    let doubled: Result<Vec<i64>, Error> =
        futures::future::join_all(calls).await.into_iter().collect();
    println!("five concurrent adds = {:?}", doubled?);

    // CALLERRORs carry the server's URI, description and details.
    for procedure in ["rpc:throw", "rpc:ping"] {
        match client.call(procedure, vec![]).await {
            Err(Error::CallError { uri, desc, details }) => {
                println!("{procedure} failed: {uri} ({desc}) details={details:?}")
            }
            other => println!("{procedure}: {other:?}"),
        }
    }

    // WAMP-CRA: whoami is allowed only after authenticating.
    if let Err(e) = client.call("rpc:whoami", vec![]).await {
        println!("rpc:whoami before authenticating: {e}");
    }
    let permissions = client.authenticate("guest", "secret-password").await?;
    println!(
        "authenticated as guest: {} procedures, {} topics allowed",
        permissions.rpc.len(),
        permissions.pubsub.len()
    );
    let me: String = client.call_typed("rpc:whoami", ()).await?;
    println!("rpc:whoami = {me}");

    client.close().await;
    Ok(())
}
