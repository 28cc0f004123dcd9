//! Run with: cargo run -p wamp-examples --example chat_client
//!
//! A terminal chat on the tutorial server's `event:chat` topic, with `wamp-client`: every
//! line typed is published, every message published by others (the demo page too) is
//! printed. It survives server restarts (the client reconnects and subscribes again). Start
//! the server first (`cargo run -p wamp-server`); a name and another URL can be given:
//! `cargo run -p wamp-examples --example chat_client -- alice ws://host:port/ws`.
//! End with Ctrl-D.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use wamp_client::{ConnectOptions, ConnectionState, PublishOptions, ReconnectPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "rust".to_string());
    let url = args
        .next()
        .unwrap_or_else(|| "ws://localhost:8080/ws".to_string());

    let client = ConnectOptions::new()
        // The seed page's policy: 60 attempts, here 2 s apart.
        .reconnect(ReconnectPolicy::new(60, Duration::from_secs(2)))
        // The server knows `event:` by default; declaring it lets the client match the
        // events' full topic URIs to the subscription.
        .prefix("event", "http://wamptutorial/event#")
        .connect(&url)
        .await?;
    println!(
        "connected as session {}; type a line to send it, Ctrl-D to quit",
        client.session_id().unwrap_or_default()
    );

    // Print connection changes as they happen.
    let mut states = client.state_changes();
    tokio::spawn(async move {
        while states.changed().await.is_ok() {
            let state = states.borrow().clone();
            match state {
                ConnectionState::Connected { session_id, .. } => {
                    println!("* connected again as session {session_id}")
                }
                ConnectionState::Reconnecting { attempt, reason } => {
                    println!("* connection lost ({reason}); reconnect attempt {attempt}")
                }
                ConnectionState::Closed { reason } => println!("* closed: {reason}"),
                other => println!("* {other:?}"),
            }
        }
    });

    // Print what others say.
    let mut chat = client.subscribe("event:chat").await?;
    let printer = tokio::spawn(async move {
        while let Some(event) = chat.next().await {
            match event.payload.as_str() {
                Some(text) => println!("> {text}"),
                None => println!("> {}", event.payload),
            }
        }
    });

    // Send what the user types; our own lines are not echoed back to us.
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let message = format!("{name}: {line}");
        if let Err(e) = client
            .publish_with(
                "event:chat",
                message,
                PublishOptions::new().exclude_me(true),
            )
            .await
        {
            println!("* not sent: {e}");
        }
    }

    client.close().await;
    let _ = printer.await;
    Ok(())
}
