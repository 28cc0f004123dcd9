//! Bad input, limits, slow consumers, the handshake rules and shutdown (`docs/PROTOCOL.md`
//! sections 1 and 7). Each misbehaving client is followed by a check that others still work.

mod common;

use std::time::Duration;

use common::{test_router, Client, TestServer};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;

/// Sends `frame` and expects the session to be closed with `code` and a reason containing
/// `reason_part`; then checks a bystander is unaffected.
async fn closes_with(frame: Ws, code: u16, reason_part: &str) {
    let server = TestServer::start(test_router().build()).await;
    let mut bystander = server.client().await;
    let mut bad = server.client().await;
    bad.ws.send(frame).await.unwrap();
    let (got_code, reason) = bad.expect_close().await;
    assert_eq!(got_code, code, "reason: {reason}");
    assert!(
        reason.contains(reason_part),
        "{reason:?} should contain {reason_part:?}"
    );
    assert!(
        reason.len() <= 123,
        "a close reason must fit a control frame"
    );
    bystander.assert_alive().await;
    let mut fresh = server.client().await;
    fresh.assert_alive().await;
}

#[tokio::test]
async fn binary_frame_closes_1003() {
    closes_with(Ws::binary(vec![1, 2, 3]), 1003, "text").await;
}

#[tokio::test]
async fn invalid_json_closes_1002() {
    closes_with(Ws::text("[2,\"a\""), 1002, "invalid JSON").await;
}

#[tokio::test]
async fn not_an_array_closes_1002() {
    closes_with(Ws::text(r#"{"type":2}"#), 1002, "must be a JSON array").await;
}

#[tokio::test]
async fn unknown_type_id_closes_1002() {
    closes_with(Ws::text(r#"[42,"x"]"#), 1002, "unknown message type id 42").await;
}

#[tokio::test]
async fn wrong_shape_closes_1002() {
    closes_with(
        Ws::text(r#"[2,17,"http://test/rpc#echo"]"#),
        1002,
        "CALL element 1",
    )
    .await;
    closes_with(Ws::text(r#"[5]"#), 1002, "SUBSCRIBE is missing element 1").await;
    closes_with(
        Ws::text(r#"[6,"a","b"]"#),
        1002,
        "UNSUBSCRIBE has 3 elements",
    )
    .await;
    closes_with(Ws::text(r#"[7,"t","e","me"]"#), 1002, "PUBLISH element 3").await;
}

#[tokio::test]
async fn server_to_client_types_close_1002() {
    closes_with(
        Ws::text(r#"[0,"x",1,"me"]"#),
        1002,
        "WELCOME is sent by servers",
    )
    .await;
    closes_with(
        Ws::text(r#"[3,"x",null]"#),
        1002,
        "CALLRESULT is sent by servers",
    )
    .await;
    closes_with(
        Ws::text(r#"[4,"x","u","d"]"#),
        1002,
        "CALLERROR is sent by servers",
    )
    .await;
    closes_with(Ws::text(r#"[8,"t",1]"#), 1002, "EVENT is sent by servers").await;
}

#[tokio::test]
async fn oversize_message_closes_1009() {
    let server = TestServer::start(test_router().max_message_size(1024).build()).await;
    let mut bystander = server.client().await;
    let mut bad = server.client().await;
    let big = format!(r#"[2,"c","http://test/rpc#echo","{}"]"#, "x".repeat(2000));
    bad.send(&big).await;
    let (code, reason) = bad.expect_close().await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("1024"), "{reason}");
    // Just under the limit is fine.
    let mut ok = server.client().await;
    let fits = format!(r#"[2,"c","http://test/rpc#echo","{}"]"#, "y".repeat(900));
    ok.send(&fits).await;
    assert_eq!(ok.recv().await[2].as_str().unwrap().len(), 900);
    bystander.assert_alive().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_at_accept() {
    let server = TestServer::start(test_router().max_connections(2).build()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    a.assert_alive().await;
    b.assert_alive().await;
    // A slot frees up when a session ends.
    a.ws.close(None).await.unwrap();
    drop(a);
    let mut ok = None;
    for _ in 0..50 {
        let mut request = server.url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(request).await {
            ok = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok.is_some(), "a freed slot must be usable again");
}

/// Sends a raw HTTP upgrade request and returns the status line and the body.
async fn raw_handshake(addr: std::net::SocketAddr, extra_headers: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test]
async fn subprotocol_rules_at_the_handshake() {
    let server = TestServer::start(test_router().build()).await;
    let (status, body) =
        raw_handshake(server.addr, "Sec-WebSocket-Protocol: wamp.2.json\r\n").await;
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("wamp"), "{body}");
    let (status, _) = raw_handshake(server.addr, "Sec-WebSocket-Protocol: chat, Wamp\r\n").await;
    assert!(status.contains("101"), "{status}");
    // No subprotocol at all is accepted (plain tools), and gets no protocol header.
    let (ws, response) = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap();
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    drop(ws);

    let strict = TestServer::start(test_router().strict_subprotocol(true).build()).await;
    let (status, _) = raw_handshake(strict.addr, "").await;
    assert!(status.contains("400"), "{status}");
    let mut c = strict.client().await;
    c.assert_alive().await;
}

#[tokio::test]
async fn origins_off_the_allow_list_are_refused() {
    let server = TestServer::start(
        test_router()
            .allowed_origins(["http://localhost:8080"])
            .build(),
    )
    .await;
    let (status, body) = raw_handshake(server.addr, "Origin: http://evil.example\r\n").await;
    assert!(status.contains("403"), "{status}");
    assert!(body.contains("http://evil.example"), "{body}");
    let (status, _) = raw_handshake(server.addr, "Origin: http://localhost:8080\r\n").await;
    assert!(status.contains("101"), "{status}");
    // Non-browser clients send no Origin and are accepted.
    let mut c = server.client().await;
    c.assert_alive().await;
}

#[tokio::test]
async fn a_slow_consumer_is_closed_while_the_others_get_everything() {
    // The slow subscriber reads only after the fast one is done: give its close frame time.
    let router = test_router()
        .outbox_capacity(16)
        .close_wait(Duration::from_secs(60))
        .build();
    let server = TestServer::start(router).await;
    let topic = "http://test/event#firehose";
    // The slow one subscribes and then never reads.
    let mut slow = server.client().await;
    slow.send_json(json!([5, topic])).await;
    slow.assert_alive().await;
    let mut fast = server.client().await;
    fast.send_json(json!([5, topic])).await;
    fast.assert_alive().await;
    const N: usize = 400;
    let payload = "z".repeat(64 * 1024);
    let reader = tokio::spawn(async move {
        for i in 0..N {
            let ev = fast.recv().await;
            assert_eq!(
                ev[2]["i"], i,
                "the fast subscriber must see every event in order"
            );
        }
        fast
    });
    let mut publisher = server.client().await;
    for i in 0..N {
        publisher
            .send_json(json!([7, topic, {"i": i, "pad": payload}, true]))
            .await;
    }
    let mut fast = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the fast subscriber must not be held up")
        .unwrap();
    // The slow subscriber's connection ends with 1008 (after what was already in flight),
    // and it is gone from the topic.
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.ws.next()).await {
            Ok(Some(Ok(Ws::Close(Some(f))))) => break Some(u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            _ => break None,
        }
    };
    assert_eq!(code, Some(1008));
    for _ in 0..100 {
        if server.router.subscribers(topic).len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.router.subscribers(topic),
        vec![fast.session_id.clone()]
    );
    publisher.assert_alive().await;
    fast.assert_alive().await;
}

#[tokio::test]
async fn graceful_shutdown_answers_calls_in_flight_then_closes_1001() {
    let router = test_router()
        .shutdown_close(wamp_server::ShutdownClose::Handshake(1001))
        .build();
    let mut server = TestServer::start(router).await;
    let mut busy = server.client().await;
    let mut idle = server.client().await;
    busy.send(r#"[2,"late","http://test/rpc#sleep",300]"#).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop();
    assert_eq!(busy.recv().await, json!([3, "late", 300]));
    assert_eq!(busy.expect_close().await.0, 1001);
    assert_eq!(idle.expect_close().await.0, 1001);
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    // No longer accepting.
    assert!(tokio_tungstenite::connect_async(server.url())
        .await
        .is_err());
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_does_not_disturb_the_server() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    for junk in [
        &b"\x00\x01\x02garbage\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"",
    ] {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(junk).await.unwrap();
        drop(s);
    }
    c.assert_alive().await;
    let mut d = Client::connect(&server.url()).await;
    d.assert_alive().await;
}

#[tokio::test]
async fn abrupt_disconnects_clean_up_subscriptions() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = server.client().await;
    a.send(r#"[5,"http://test/event#t"]"#).await;
    a.assert_alive().await;
    assert_eq!(server.router.subscribers("http://test/event#t").len(), 1);
    drop(a); // no close handshake: the TCP connection just goes away
    for _ in 0..100 {
        if server.router.subscribers("http://test/event#t").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.router.subscribers("http://test/event#t").is_empty());
    assert_eq!(server.router.session_count(), 0);
}

#[tokio::test]
async fn aborting_serve_closes_every_connection_and_session() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[5,"http://test/event#t"]"#).await;
    c.assert_alive().await;
    server.task.abort();
    // The socket goes away (no hanging client), and the router forgets the session.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match c.ws.next().await {
                None | Some(Err(_)) | Some(Ok(Ws::Close(_))) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the connection must end when serve is aborted"
    );
    assert_eq!(server.router.session_count(), 0);
    assert!(server.router.subscribers("http://test/event#t").is_empty());
}

#[tokio::test]
async fn serve_app_returns_only_once_every_session_has_ended_even_one_that_never_reads() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let ended = Arc::new(AtomicUsize::new(0));
    let counter = ended.clone();
    // The session's writer will be stuck on a full socket: it ends close_wait plus a few
    // seconds after the shutdown, later than the old drain deadline (grace + 5 s).
    let router = test_router()
        .shutdown_grace(Duration::from_millis(10))
        .close_wait(Duration::from_secs(2))
        .outbox_capacity(1 << 20)
        .outbox_max_bytes(256 << 20)
        .on_session_close(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(wamp_server::serve_app(
        listener,
        router.clone(),
        wamp_server::tutorial::app(router.clone()),
        async move {
            let _ = stopped.await;
        },
    ));
    let topic = "http://test/event#t";
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    c.send_json(json!([5, topic])).await;
    common::eventually("the subscription", || router.subscribers(topic).len() == 1).await;
    // The client reads nothing from now on: 25 MB of events fill the socket both ways.
    let big = "x".repeat(64 * 1024);
    for _ in 0..400 {
        assert_eq!(router.publish(topic, &big), 1);
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("serve_app returns")
        .unwrap()
        .unwrap();
    assert_eq!(
        ended.load(Ordering::SeqCst),
        1,
        "serve_app returned while a session was still running"
    );
    assert_eq!(router.session_count(), 0);
    drop(c);
}
