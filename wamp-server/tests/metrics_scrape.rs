//! `wamp_server::metrics::serve` scraped with a real HTTP client after scripted traffic:
//! exact values (sessions, calls by outcome, a slow consumer, a refused origin, a failed
//! authentication), every line valid OpenMetrics; `/healthz`, `/readyz` flipping at shutdown;
//! and the log lines of those events (a failed authentication names the key, never the
//! signature).

mod common;
mod metrics_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, test_router, TestServer};
use metrics_support::{get, parse};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wamp_proto::Permissions;
use wamp_server::{AuthConfig, AuthUser, InMemoryAuth};

const TOPIC: &str = "http://test/event#a";
const AUTHREQ: &str = "http://api.wamp.ws/procedure#authreq";
const AUTH: &str = "http://api.wamp.ws/procedure#auth";
const WRONG_SIGNATURE: &str = "bm90IHRoZSBzaWduYXR1cmU=";

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn scrape_after_traffic_then_readiness_at_shutdown() {
    // The test runtime is one thread: this subscriber sees every task of the server.
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let users = InMemoryAuth::new().user("foobar", AuthUser::new("secret", Permissions::new()));
    let anyone = Permissions::new()
        .allow_call("http://test/rpc#echo")
        .allow_call("http://test/rpc#fail")
        .allow_call("http://test/rpc#panic")
        .allow_pubsub_prefix("http://test/event#", true, true);
    let auth = AuthConfig::new(users)
        .failure_delay(Duration::ZERO)
        .unauthenticated_permissions(anyone);
    let mut server = TestServer::start(test_router().auth(auth).outbox_capacity(16).build()).await;
    let router = server.router.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_metrics, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = tokio::spawn(wamp_server::metrics::serve(
        router.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));

    let (status, content_type, body) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let before = parse(&body);
    assert_eq!(before.get("wamp_sessions"), 0.0);
    assert_eq!(before.get("wamp_sessions_opened_total"), 0.0);

    // c1: a failed authentication, then five calls.
    let mut c1 = server.client().await;
    let reply = c1.call("q", AUTHREQ, &[json!("foobar")]).await;
    assert_eq!(reply[0], 3, "{reply}");
    let reply = c1.call("a", AUTH, &[json!(WRONG_SIGNATURE)]).await;
    assert_eq!(reply[0], 4, "{reply}");
    for (procedure, expected) in [
        ("echo", 3),
        ("nosuch", 4),
        ("fail", 4),
        ("panic", 4),
        ("whoami", 4),
    ] {
        let reply = c1
            .call("c", &format!("http://test/rpc#{procedure}"), &[json!(1)])
            .await;
        assert_eq!(reply[0], expected, "{procedure}: {reply}");
    }
    // c2 subscribes and does not read: 17 publishes overflow its 16-frame queue.
    let mut c2 = server.client().await;
    c2.send_json(json!([5, TOPIC])).await;
    eventually("c2 subscribed", || router.subscribers(TOPIC).len() == 1).await;
    let mid = parse(&get(&format!("{base}/metrics")).await.2);
    assert_eq!(mid.get("wamp_sessions"), 2.0);
    assert_eq!(mid.get("wamp_subscriptions"), 1.0);
    assert_eq!(mid.get("wamp_topics"), 1.0);
    for i in 0..17 {
        router.publish(TOPIC, i);
    }
    assert_eq!(c2.expect_close().await.0, 1008);
    c1.ws.close(None).await.unwrap();
    // A page from a foreign origin.
    let mut request = server.url().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Origin", "http://evil.example".parse().unwrap());
    headers.insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    eventually("both sessions ended", || router.stats().sessions == 0).await;

    let s = parse(&get(&format!("{base}/metrics")).await.2);
    let expect = [
        ("wamp_build_info{version=\"0.1.0\"}", 1.0),
        ("wamp_sessions", 0.0),
        ("wamp_sessions_opened_total", 2.0),
        ("wamp_sessions_closed_total{reason=\"client\"}", 1.0),
        ("wamp_sessions_closed_total{reason=\"slow_consumer\"}", 1.0),
        ("wamp_sessions_closed_total{reason=\"lost\"}", 0.0),
        ("wamp_sessions_closed_total{reason=\"protocol_error\"}", 0.0),
        ("wamp_sessions_closed_total{reason=\"auth_timeout\"}", 0.0),
        ("wamp_sessions_closed_total{reason=\"killed\"}", 0.0),
        ("wamp_sessions_closed_total{reason=\"shutdown\"}", 0.0),
        ("wamp_sessions_closed_total{reason=\"limit\"}", 0.0),
        ("wamp_sessions_closed_total{reason=\"panic\"}", 0.0),
        ("wamp_slow_consumers_total", 1.0),
        ("wamp_connections_rejected_total{reason=\"origin\"}", 1.0),
        (
            "wamp_connections_rejected_total{reason=\"subprotocol\"}",
            0.0,
        ),
        ("wamp_connections_rejected_total{reason=\"limit\"}", 0.0),
        ("wamp_calls_total{outcome=\"result\"}", 1.0),
        ("wamp_calls_total{outcome=\"notfound\"}", 1.0),
        ("wamp_calls_total{outcome=\"application\"}", 1.0),
        ("wamp_calls_total{outcome=\"internal\"}", 1.0),
        ("wamp_calls_total{outcome=\"unauthorized\"}", 1.0),
        ("wamp_call_duration_seconds_count", 3.0),
        ("wamp_call_duration_seconds_bucket{le=\"+Inf\"}", 3.0),
        ("wamp_auth_total{result=\"failure\"}", 1.0),
        ("wamp_auth_total{result=\"success\"}", 0.0),
        ("wamp_messages_received_total{type=\"call\"}", 7.0),
        ("wamp_messages_received_total{type=\"subscribe\"}", 1.0),
        ("wamp_messages_received_total{type=\"publish\"}", 0.0),
        ("wamp_messages_sent_total{type=\"welcome\"}", 2.0),
        ("wamp_messages_sent_total{type=\"callresult\"}", 2.0),
        ("wamp_messages_sent_total{type=\"callerror\"}", 5.0),
        ("wamp_messages_sent_total{type=\"event\"}", 16.0),
        ("wamp_publishes_total", 17.0),
        ("wamp_deliveries_total", 16.0),
        ("wamp_subscriptions", 0.0),
        ("wamp_topics", 0.0),
        ("wamp_outbox_frames_high_water", 16.0),
    ];
    for (sample, value) in expect {
        assert_eq!(s.get(sample), value, "{sample}");
    }
    assert!(s.get("wamp_received_bytes_total") > 0.0);
    assert!(s.get("wamp_sent_bytes_total") > 0.0);
    // No topic or session labels anywhere.
    assert!(
        s.samples
            .keys()
            .all(|k| !k.contains("http://") && !k.contains("session")
                || k.starts_with("wamp_sessions")),
        "{:?}",
        s.samples.keys()
    );
    assert_eq!(s.types["wamp_call_duration_seconds"], "histogram");
    assert_eq!(s.types["wamp_build"], "info");

    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);
    server.stop();
    eventually("the router is shutting down", || router.is_shutting_down()).await;
    let (status, _, body) = get(&format!("{base}/readyz")).await;
    assert_eq!((status, body.as_str()), (503, "shutting down\n"));
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    let _ = stop_metrics.send(());
    metrics.await.unwrap().unwrap();

    let logs = logs.text();
    let line = |needle: &str| {
        logs.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{logs}"))
            .to_string()
    };
    let failed = line("authentication failed");
    assert!(failed.contains(" INFO "), "{failed}");
    assert!(failed.contains("key=\"foobar\""), "{failed}");
    assert!(
        !logs.contains(WRONG_SIGNATURE),
        "the signature was logged:\n{logs}"
    );
    let refused = line("handshake refused");
    assert!(
        refused.contains(" INFO ") && refused.contains("reason=\"origin\""),
        "{refused}"
    );
    let opened = line("session opened");
    assert!(
        opened.contains(" INFO ") && opened.contains("peer=127.0.0.1:"),
        "{opened}"
    );
    let closed = line("reason=\"client\"");
    assert!(
        closed.contains("session closed") && closed.contains("duration="),
        "{closed}"
    );
    assert!(logs.contains("reason=\"slow_consumer\""), "{logs}");
    assert!(!logs.contains(" ERROR "), "an error line:\n{logs}");
}

/// With a backplane (cluster mode) its state and counters are in the scrape; without one
/// there are no backplane samples.
#[tokio::test]
async fn backplane_metrics_when_there_is_one() {
    let hub = wamp_server::InProcessHub::new();
    for with in [true, false] {
        let mut builder = test_router();
        if with {
            builder = builder.backplane(hub.backplane("a"));
        }
        let router = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(wamp_server::metrics::serve(
            router.clone(),
            listener,
            std::future::pending(),
        ));
        let s = parse(&get(&format!("{base}/metrics")).await.2);
        if with {
            assert_eq!(s.get("wamp_backplane_connected"), 1.0);
            assert_eq!(s.get("wamp_backplane_published_total"), 0.0);
            assert_eq!(
                s.get("wamp_backplane_dropped_total{reason=\"queue_full\"}"),
                0.0
            );
        } else {
            assert!(s.matching("wamp_backplane").is_empty(), "{:?}", s.samples);
        }
        assert_eq!(get(&format!("{base}/readyz")).await.0, 200);
    }
}
