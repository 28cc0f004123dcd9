//! `Router::stats()` after scripted traffic over real sockets: exact counter values for
//! sessions by close reason, calls by outcome, messages and bytes, fan-out, a slow consumer,
//! refused handshakes and authentication results.

mod common;
#[cfg(feature = "tls")]
mod tls_support;

use std::time::Duration;

use common::{eventually, test_router, Client, TestServer};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wamp_proto::cra;
use wamp_proto::Permissions;
use wamp_server::stats::{AuthResult, CallOutcome, CloseReason, RefusedReason};
use wamp_server::{AuthConfig, AuthUser, InMemoryAuth};

const TOPIC: &str = "http://test/event#a";

/// A WebSocket upgrade with these extra headers; returns the HTTP status of a refusal.
async fn refused_status(url: &str, headers: &[(&'static str, &str)]) -> u16 {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

/// Sends a text frame and remembers its length.
async fn send(c: &mut Client, text: &str, bytes_in: &mut usize) {
    *bytes_in += text.len();
    c.send(text).await;
}

#[tokio::test]
async fn exact_counts_after_scripted_traffic() {
    let server = TestServer::start(test_router().outbox_capacity(16).build()).await;
    let router = server.router.clone();
    let zero = router.stats();
    assert_eq!(zero.sessions, 0);
    assert_eq!(zero.sessions_opened, 0);
    assert!(zero.sessions_closed.iter().all(|(_, n)| *n == 0));

    let mut bytes_in = 0;
    let mut bytes_out = 0;
    let mut c1 = server.client().await;
    let mut c2 = server.client().await;
    let mut c3 = server.client().await;
    for c in [&c1, &c2, &c3] {
        bytes_out += c.welcome.to_string().len();
    }
    assert_eq!(router.stats().sessions, 3);

    // c2 subscribes; c1 calls four ways and publishes once.
    send(&mut c2, &json!([5, TOPIC]).to_string(), &mut bytes_in).await;
    eventually("c2 subscribed", || router.subscribers(TOPIC).len() == 1).await;
    for (id, procedure) in [
        ("r", "http://test/rpc#echo"),
        ("nf", "http://test/rpc#nosuch"),
        ("app", "http://test/rpc#fail"),
        ("int", "http://test/rpc#panic"),
    ] {
        send(
            &mut c1,
            &json!([2, id, procedure, 1]).to_string(),
            &mut bytes_in,
        )
        .await;
        bytes_out += c1.recv_text().await.len();
    }
    send(&mut c1, &json!([7, TOPIC, "hi"]).to_string(), &mut bytes_in).await;
    let event = c2.recv_text().await;
    assert_eq!(event, json!([8, TOPIC, "hi"]).to_string());
    bytes_out += event.len();
    let s = router.stats();
    assert_eq!((s.subscriptions, s.topics), (1, 1));

    // c3's call asks for its session to be killed.
    send(
        &mut c3,
        &json!([2, "k", "http://test/rpc#kill"]).to_string(),
        &mut bytes_in,
    )
    .await;
    bytes_out += c3.recv_text().await.len();
    assert_eq!(c3.expect_close().await.0, 3000);

    // c2 does not read: 17 server publishes without yielding overflow its 16-frame queue.
    for i in 0..17 {
        let n = router.publish(TOPIC, i);
        assert_eq!(n, usize::from(i < 16), "publish {i}");
        if i < 16 {
            bytes_out += json!([8, TOPIC, i]).to_string().len();
        }
    }
    assert_eq!(c2.expect_close().await.0, 1008);

    // c1 closes normally.
    c1.ws.close(None).await.unwrap();
    eventually("every session ended", || {
        let s = router.stats();
        s.sessions == 0 && s.sessions_closed.iter().map(|(_, n)| n).sum::<u64>() == 3
    })
    .await;

    // Two refused handshakes: a foreign origin, no wamp subprotocol.
    let url = server.url();
    let origin = [
        ("Origin", "http://evil.example"),
        ("Sec-WebSocket-Protocol", "wamp"),
    ];
    assert_eq!(refused_status(&url, &origin).await, 403);
    assert_eq!(
        refused_status(&url, &[("Sec-WebSocket-Protocol", "mqtt")]).await,
        400
    );

    let s = router.stats();
    assert_eq!(s.sessions, 0);
    assert_eq!(s.sessions_opened, 3);
    for (reason, n) in &s.sessions_closed {
        let expected = match reason {
            CloseReason::Client | CloseReason::Killed | CloseReason::SlowConsumer => 1,
            _ => 0,
        };
        assert_eq!(*n, expected, "closed {reason:?}");
    }
    for (reason, n) in &s.connections_refused {
        let expected = match reason {
            RefusedReason::Origin | RefusedReason::Subprotocol => 1,
            _ => 0,
        };
        assert_eq!(*n, expected, "refused {reason:?}");
    }
    for (outcome, n) in &s.calls {
        let expected = match outcome {
            CallOutcome::Result | CallOutcome::NotFound | CallOutcome::Internal => 1,
            CallOutcome::Application => 2,
            CallOutcome::Unauthorized => 0,
        };
        assert_eq!(*n, expected, "calls {outcome:?}");
    }
    // Timed: the four calls that ran a procedure (not #notfound).
    assert_eq!(s.call_duration.count, 4);
    assert_eq!(s.call_duration.buckets.last().unwrap(), &(f64::INFINITY, 4));
    assert!(s.call_duration.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(s.call_duration.sum_seconds >= 0.0);
    assert!(s.auth.iter().all(|(_, n)| *n == 0));

    assert_eq!(s.received("CALL"), 5);
    assert_eq!(s.received("SUBSCRIBE"), 1);
    assert_eq!(s.received("PUBLISH"), 1);
    assert_eq!(s.received("PREFIX"), 0);
    assert_eq!(s.sent("WELCOME"), 3);
    assert_eq!(s.sent("CALLRESULT"), 1);
    assert_eq!(s.sent("CALLERROR"), 4);
    assert_eq!(s.sent("EVENT"), 17);
    assert_eq!(s.messages_received.len(), 5);
    assert_eq!(s.messages_sent.len(), 4);
    assert_eq!(s.received_bytes, bytes_in as u64);
    assert_eq!(s.sent_bytes, bytes_out as u64);
    assert_eq!((s.publishes, s.deliveries), (18, 17));
    assert_eq!((s.subscriptions, s.topics), (0, 0));
    assert_eq!(s.outbox_frames_high_water, 16);
    assert!(s.outbox_bytes_high_water >= 16 * json!([8, TOPIC, 0]).to_string().len());
}

#[tokio::test]
async fn authentication_results_and_unauthorized_calls() {
    let users = InMemoryAuth::new().user(
        "foobar",
        AuthUser::new(
            "secret",
            Permissions::new().allow_call("http://test/rpc#echo"),
        ),
    );
    let config = AuthConfig::new(users).failure_delay(Duration::ZERO);
    let server = TestServer::start(test_router().auth(config).build()).await;
    let router = server.router.clone();
    let mut c = server.client().await;
    const AUTHREQ: &str = "http://api.wamp.ws/procedure#authreq";
    const AUTH: &str = "http://api.wamp.ws/procedure#auth";

    // Before authenticating, echo is unauthorized.
    assert_eq!(c.call("e", "http://test/rpc#echo", &[json!(1)]).await[0], 4);
    // An unknown key, then a wrong signature: two failures.
    assert_eq!(c.call("q", AUTHREQ, &[json!("nobody")]).await[0], 4);
    let reply = c.call("q", AUTHREQ, &[json!("foobar")]).await;
    assert_eq!(reply[0], 3, "{reply}");
    assert_eq!(c.call("a", AUTH, &[json!("not the signature")]).await[0], 4);
    // Then the right one.
    let reply = c.call("q", AUTHREQ, &[json!("foobar")]).await;
    let sig = cra::client_signature(reply[2].as_str().unwrap(), "secret").unwrap();
    assert_eq!(c.call("a", AUTH, &[json!(sig)]).await[0], 3);
    assert_eq!(c.call("e", "http://test/rpc#echo", &[json!(1)]).await[0], 3);

    let s = router.stats();
    assert_eq!(s.auths(AuthResult::Success), 1);
    assert_eq!(s.auths(AuthResult::Failure), 2);
    assert_eq!(s.calls_with(CallOutcome::Unauthorized), 1);
    assert_eq!(s.calls_with(CallOutcome::Result), 1);
    // authreq and auth are not counted as calls.
    assert_eq!(s.calls.iter().map(|(_, n)| n).sum::<u64>(), 2);
    assert_eq!(s.received("CALL"), 7);
}

#[tokio::test]
async fn auth_timeout_limit_and_handshake_timeout() {
    let config = AuthConfig::new(InMemoryAuth::new()).timeout(Duration::from_millis(300));
    let server = TestServer::start(
        test_router()
            .auth(config)
            .max_connections(1)
            .handshake_timeout(Duration::from_millis(300))
            .build(),
    )
    .await;
    let router = server.router.clone();
    let mut c = server.client().await;
    // The one slot is taken: 503.
    assert_eq!(
        refused_status(&server.url(), &[("Sec-WebSocket-Protocol", "wamp")]).await,
        503
    );
    // A connection that never sends its request.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    silent.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // The session that does not authenticate is closed.
    assert_eq!(c.expect_close().await.0, 4401);
    eventually("the timeouts counted", || {
        let s = router.stats();
        s.closed(CloseReason::AuthTimeout) == 1 && s.refused(RefusedReason::HandshakeTimeout) == 1
    })
    .await;
    let s = router.stats();
    assert_eq!(s.refused(RefusedReason::Limit), 1);
    assert_eq!(s.sessions_opened, 1);
    assert_eq!(s.closed(CloseReason::Client), 0);
}

/// TLS refusals on both TLS accept paths: a plain client on the TLS port (a failed TLS
/// handshake) and a silent one (the handshake timeout).
#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_refusals_on_serve_tls_and_serve_app_tls() {
    let certs = tls_support::TestCerts::new();
    for app in [false, true] {
        let tls = wamp_server::tls::TlsConfig::from_pem(
            certs.cert_pem.as_bytes(),
            certs.key_pem.as_bytes(),
        )
        .unwrap();
        let router = test_router()
            .handshake_timeout(Duration::from_millis(300))
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let r = router.clone();
        let never = std::future::pending::<()>();
        tokio::spawn(async move {
            if app {
                let page = wamp_server::tutorial::app(r.clone());
                wamp_server::serve_app_tls(listener, r, page, tls, never).await
            } else {
                wamp_server::serve_tls(listener, r, tls, never).await
            }
        });
        let plain = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
        assert!(plain.is_err(), "app {app}");
        let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        eventually("both refusals counted", || {
            let s = router.stats();
            s.refused(RefusedReason::Tls) == 1 && s.refused(RefusedReason::HandshakeTimeout) == 1
        })
        .await;
        let s = router.stats();
        assert_eq!(
            s.connections_refused.iter().map(|(_, n)| n).sum::<u64>(),
            2,
            "app {app}"
        );
        assert_eq!(s.sessions_opened, 0);
    }
}
