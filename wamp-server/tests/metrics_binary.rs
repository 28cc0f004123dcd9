//! The real binary with `--metrics-bind`: a scrape after traffic (a call, a failed
//! authentication, a refused origin, a normal close), and its captured log at
//! `RUST_LOG=debug`: the session lines with the peer, reason and duration, the failed
//! authentication with its key, the refused handshake with its reason, and no noise (no
//! "Sending after closing" from a normal close, no error line). `--log-format json` writes
//! one JSON object a line.

#![cfg(unix)]

mod common;
mod metrics_support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Client;
use metrics_support::{get, parse};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BIN: &str = env!("CARGO_BIN_EXE_wamp-server");
const WRONG_SIGNATURE: &str = "d3Jvbmcgc2lnbmF0dXJl";

struct Running {
    child: Child,
    port: u16,
    metrics: String,
    stderr: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

/// Starts the binary on free ports with the metrics listener; reads both stdout lines and
/// collects stderr.
async fn start(extra: &[&str], rust_log: &str) -> Running {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--metrics-bind", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0; 8192];
        while let Ok(n) = err.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = next_line(&mut lines).await;
    let ws = listening.split_whitespace().last().unwrap();
    let port = ws
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let metrics_line = next_line(&mut lines).await;
    let metrics = metrics_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no metrics URL in {metrics_line:?}"))
        .trim_end_matches("/metrics")
        .to_string();
    Running {
        child,
        port,
        metrics,
        stderr,
        reader,
    }
}

async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("no stdout line within 30 s")
        .unwrap()
        .expect("stdout ended")
}

impl Running {
    /// SIGTERM, then waits for the exit and the whole log.
    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server did not exit after SIGTERM")
            .unwrap();
        assert!(exit.success(), "{exit}");
        let _ = tokio::time::timeout(Duration::from_secs(10), self.reader).await;
        let log = self.stderr.lock().unwrap().clone();
        log
    }
}

#[tokio::test]
async fn scrape_and_log_of_the_real_binary() {
    let server = start(&[], "debug").await;
    let url = format!("ws://127.0.0.1:{}/ws", server.port);
    let mut c = Client::connect(&url).await;
    let echo = c
        .call("e", "http://wamptutorial/rpc#echo", &[json!("hi")])
        .await;
    assert_eq!(echo, json!([3, "e", "hi"]));
    let authreq = "http://api.wamp.ws/procedure#authreq";
    let reply = c.call("q", authreq, &[json!("guest")]).await;
    assert_eq!(reply[0], 3, "{reply}");
    let reply = c
        .call(
            "a",
            "http://api.wamp.ws/procedure#auth",
            &[json!(WRONG_SIGNATURE)],
        )
        .await;
    assert_eq!(reply[0], 4, "{reply}");
    // A normal close: the client's close frame, answered.
    c.ws.close(None).await.unwrap();
    while let Some(Ok(_)) = c.ws.next_frame().await {}

    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }

    // The close is counted once the session's task ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let scrape = loop {
        let (status, _, body) = get(&format!("{}/metrics", server.metrics)).await;
        assert_eq!(status, 200);
        let scrape = parse(&body);
        if scrape.get("wamp_sessions_closed_total{reason=\"client\"}") == 1.0 {
            break scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "close not counted:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for (sample, value) in [
        ("wamp_sessions", 0.0),
        ("wamp_sessions_opened_total", 1.0),
        ("wamp_calls_total{outcome=\"result\"}", 1.0),
        ("wamp_calls_total{outcome=\"notfound\"}", 0.0),
        ("wamp_auth_total{result=\"failure\"}", 1.0),
        ("wamp_connections_rejected_total{reason=\"origin\"}", 1.0),
        ("wamp_messages_received_total{type=\"call\"}", 3.0),
        ("wamp_messages_sent_total{type=\"welcome\"}", 1.0),
    ] {
        assert_eq!(scrape.get(sample), value, "{sample}");
    }
    assert_eq!(get(&format!("{}/healthz", server.metrics)).await.0, 200);
    assert_eq!(get(&format!("{}/readyz", server.metrics)).await.0, 200);
    let log = server.stop().await;

    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{log}"))
            .to_string()
    };
    let opened = line("session opened");
    assert!(
        opened.contains(" INFO ") && opened.contains("peer=127.0.0.1:"),
        "{opened}"
    );
    let closed = line("reason=\"client\"");
    assert!(
        closed.contains(" INFO ")
            && closed.contains("session closed")
            && closed.contains("duration="),
        "{closed}"
    );
    assert!(closed.contains("peer=127.0.0.1:"), "{closed}");
    let failed = line("authentication failed");
    assert!(
        failed.contains(" INFO ") && failed.contains("key=\"guest\""),
        "{failed}"
    );
    assert!(!log.contains(WRONG_SIGNATURE), "the signature was logged");
    let refused = line("handshake refused");
    assert!(
        refused.contains(" INFO ") && refused.contains("reason=\"origin\""),
        "{refused}"
    );
    // One line for the refused origin, at INFO, naming it.
    assert!(refused.contains("http://evil.example"), "{refused}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("http://evil.example"))
            .count(),
        1,
        "{log}"
    );
    assert!(
        !log.contains("Sending after closing"),
        "the close noise:\n{log}"
    );
    assert!(!log.contains(" ERROR "), "an error line:\n{log}");
}

#[tokio::test]
async fn json_logs() {
    let server = start(&["--log-format", "json"], "info").await;
    let url = format!("ws://127.0.0.1:{}/ws", server.port);
    let mut c = Client::connect(&url).await;
    c.ws.close(None).await.unwrap();
    while let Some(Ok(_)) = c.ws.next_frame().await {}
    let log = server.stop().await;
    let mut opened = false;
    for line in log.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
        if v["fields"]["message"] == "session opened" {
            assert_eq!(v["level"], "INFO");
            assert!(
                v["span"]["peer"]
                    .as_str()
                    .unwrap()
                    .starts_with("127.0.0.1:"),
                "{v}"
            );
            opened = true;
        }
    }
    assert!(opened, "no session opened line:\n{log}");
}

/// Reads frames until the connection ends.
trait NextFrame {
    async fn next_frame(
        &mut self,
    ) -> Option<
        Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
    >;
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> NextFrame
    for tokio_tungstenite::WebSocketStream<S>
{
    async fn next_frame(
        &mut self,
    ) -> Option<
        Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
    > {
        tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(self))
            .await
            .expect("the connection did not end")
    }
}

#[tokio::test]
async fn the_standalone_router_serves_metrics_too() {
    let dir = std::env::temp_dir().join(format!("wamp-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("router.toml");
    std::fs::write(&config, "[server]\nport = 0\n").unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--metrics-bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = next_line(&mut lines).await;
    let metrics = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/metrics"))
        .unwrap_or_else(|| panic!("no metrics URL in {line:?}"))
        .to_string();
    let ws = line
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap()
        .to_string();
    let _c = Client::connect(&ws).await;
    let (status, _, body) = get(&metrics).await;
    assert_eq!(status, 200);
    let scrape = parse(&body);
    assert_eq!(scrape.get("wamp_sessions"), 1.0);
    assert_eq!(scrape.get("wamp_sessions_opened_total"), 1.0);
    let ready = metrics.replace("/metrics", "/readyz");
    assert_eq!(get(&ready).await.0, 200);
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}
