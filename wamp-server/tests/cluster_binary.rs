//! The tutorial binary in cluster mode: two processes on one Redis, an event published on one
//! reaching a subscriber on the other (the README's demo); without the `redis` feature,
//! `--redis-url` is refused with how to rebuild.

#![cfg(feature = "bin")]

mod cluster_support;
mod common;

use std::process::Stdio;
#[cfg(feature = "redis")]
use std::time::Duration;

#[cfg(feature = "redis")]
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wamp-server");

#[cfg(feature = "redis")]
/// Starts the binary with `args` (and `--port 0`); returns it and its WAMP URL.
async fn start(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("no listening line within 30 s")
    .unwrap();
    let ws = line.split_whitespace().last().unwrap().to_string();
    (child, ws)
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn two_nodes_share_the_chat() {
    use serde_json::json;
    let Some(redis) = cluster_support::RedisServer::start().await else {
        return;
    };
    let url = redis.url();
    let (_a, a_url) = start(&["--redis-url", &url, "--node-name", "a"]).await;
    let (_b, b_url) = start(&["--redis-url", &url, "--node-name", "b"]).await;
    let chat = "http://wamptutorial/event#chat";
    let mut sub = common::Client::connect(&b_url).await;
    sub.send_json(json!([5, chat])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while redis.numsub(&format!("wamp:t:{chat}")).await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "node b never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut publisher = common::Client::connect(&a_url).await;
    publisher.send_json(json!([7, chat, "hello from a"])).await;
    assert_eq!(
        sub.recv_text().await,
        json!([8, chat, "hello from a"]).to_string()
    );
}

#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn redis_url_without_the_feature_says_how_to_rebuild() {
    let out = Command::new(BIN)
        .args(["--port", "0", "--redis-url", "redis://127.0.0.1:1/"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no listening line");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "error: --redis-url needs cluster mode, which this build does not have: rebuild with \
             `cargo build --release -p wamp-server --features redis`"
        ),
        "{stderr}"
    );
}
