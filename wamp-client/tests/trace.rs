//! The protocol trace: every WAMP message sent and received is logged at trace level as JSON.
//!
//! Alone in its own test binary: `tracing` caches per call site whether anyone listens, and a
//! test elsewhere in the same process that logs without this subscriber could have that cache
//! say "nobody" while this test's scoped subscriber is being installed.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use wamp_client::{ConnectOptions, ReconnectPolicy};

fn no_reconnect() -> ConnectOptions {
    ConnectOptions::new().reconnect(ReconnectPolicy::never())
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn every_message_sent_and_received_is_traced_as_json() {
    // The test's runtime has one thread: the driver task logs on it, to this subscriber.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "wamp_client=info,wamp_client::wire=trace",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake.connect(no_reconnect(), "TRACED").await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/echo", vec![json!("hi")]).await }
    });
    let id = conn.recv().await[1].clone();
    conn.send(&json!([3, id, "hi"]).to_string()).await;
    assert_eq!(within("call", call).await.unwrap().unwrap(), json!("hi"));
    client.close().await;

    let log = captured.text();
    let lines: Vec<&str> = log.lines().collect();
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in:\n{log}"))
    };
    let welcome = find(r#"received [0,"TRACED",1,"fake/1.0"]"#);
    let sent = find(&format!(r#"sent [2,{id},"http://x/echo","hi"]"#));
    let result = find(&format!(r#"received [3,{id},"hi"]"#));
    for line in [welcome, sent, result] {
        assert!(line.contains("TRACE"), "{line}");
        assert!(line.contains("wamp_client::wire"), "{line}");
        // The connect's span names the server, for the handshake's messages as well.
        assert!(line.contains("wamp_client{url="), "{line}");
    }
    assert!(
        !log.contains("DEBUG"),
        "only the wire target logs at trace:\n{log}"
    );
}
