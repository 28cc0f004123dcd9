//! The client's exact frames and its handling of a misbehaving server, against a scripted
//! fake server: handshake (and a refused one), the wire form of every operation, one
//! SUBSCRIBE per topic and UNSUBSCRIBE on the last drop, CURIEs with unknown prefixes,
//! answers in any order, malformed frames, silent servers, the protocol trace.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Ws;
use wamp_client::{ConnectOptions, ConnectionState, Error, PublishOptions, ReconnectPolicy};

fn no_reconnect() -> ConnectOptions {
    ConnectOptions::new().reconnect(ReconnectPolicy::never())
}

#[tokio::test]
async fn offers_wamp_and_reads_the_welcome() {
    init_tracing();
    let mut fake = FakeServer::start(true).await;
    let (client, conn) = fake.connect(no_reconnect(), "S1").await;
    assert_eq!(conn.offered.as_deref(), Some("wamp"));
    assert_eq!(client.session_id().as_deref(), Some("S1"));
    assert_eq!(client.server_ident().as_deref(), Some("fake/1.0"));
}

#[tokio::test]
async fn a_server_that_does_not_select_wamp_is_refused() {
    let mut fake = FakeServer::start(false).await;
    let err = within("connect", no_reconnect().connect(&fake.url()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Subprotocol(_)), "{err}");
    assert!(err.to_string().contains("skip_subprotocol_check"), "{err}");
    let _ = fake.accept().await;
}

#[tokio::test]
async fn skip_subprotocol_check_connects_anyway() {
    let mut fake = FakeServer::start(false).await;
    let url = fake.url();
    let (client, _) = tokio::join!(
        no_reconnect().skip_subprotocol_check(true).connect(&url),
        async {
            // The first handshake offers `wamp`, is not answered with it, and is dropped.
            let first = fake.accept().await;
            assert_eq!(first.offered.as_deref(), Some("wamp"));
            let mut second = fake.accept().await;
            assert_eq!(second.offered, None);
            second.welcome("S2").await;
            second
        }
    );
    assert_eq!(client.unwrap().session_id().as_deref(), Some("S2"));
}

#[tokio::test]
async fn the_first_message_must_be_a_v1_welcome() {
    for (first, want) in [
        (r#"[8,"http://x/t",1]"#, "EVENT, not WELCOME"),
        (r#"[0,"S",2,"v2"]"#, "protocol version 2"),
        ("nonsense", "not valid"),
    ] {
        let mut fake = FakeServer::start(true).await;
        let url = fake.url();
        let (result, _conn) = tokio::join!(no_reconnect().connect(&url), async {
            let mut conn = fake.accept().await;
            conn.send(first).await;
            conn
        });
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Handshake(_)), "{first}: {err}");
        assert!(err.to_string().contains(want), "{first}: {err}");
    }
}

#[tokio::test]
async fn a_server_that_never_welcomes_times_out() {
    let mut fake = FakeServer::start(true).await;
    let url = fake.url();
    let (result, _conn) = tokio::join!(
        no_reconnect()
            .connect_timeout(Duration::from_millis(200))
            .connect(&url),
        fake.accept()
    );
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::ConnectTimeout(d) if d == Duration::from_millis(200)),
        "{err}"
    );
}

#[tokio::test]
async fn every_operation_on_the_wire() {
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake.connect(no_reconnect(), "ME").await;

    client.prefix("p", "http://x/").await.unwrap();
    assert_eq!(conn.recv().await, json!([1, "p", "http://x/"]));

    // Two local subscriptions to one topic (CURIE and full URI): one SUBSCRIBE, resolved.
    let a = client.subscribe("p:t").await.unwrap();
    assert_eq!(conn.recv().await, json!([5, "http://x/t"]));
    let b = client.subscribe("http://x/t").await.unwrap();
    conn.silent().await;

    // PUBLISH in its shortest forms; the topic goes as given.
    client.publish("p:t", "e").await.unwrap();
    assert_eq!(conn.recv().await, json!([7, "p:t", "e"]));
    client
        .publish_with(
            "p:t",
            json!({"k": 1}),
            PublishOptions::new().exclude_me(true),
        )
        .await
        .unwrap();
    assert_eq!(conn.recv().await, json!([7, "p:t", {"k": 1}, true]));
    client
        .publish_with(
            "p:t",
            "e",
            PublishOptions::new().exclude_me(true).exclude(["other"]),
        )
        .await
        .unwrap();
    assert_eq!(conn.recv().await, json!([7, "p:t", "e", ["other", "ME"]]));
    client
        .publish_with(
            "p:t",
            Value::Null,
            PublishOptions::new().eligible(["a", "b"]),
        )
        .await
        .unwrap();
    assert_eq!(conn.recv().await, json!([7, "p:t", null, [], ["a", "b"]]));

    // Dropping one of two subscriptions sends nothing; dropping the last sends UNSUBSCRIBE.
    drop(a);
    conn.silent().await;
    drop(b);
    assert_eq!(conn.recv().await, json!([6, "http://x/t"]));

    // CALL: a random string id, the URI as given, the arguments as they are.
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call("p:f", vec![json!(1), json!("a"), Value::Null])
                .await
        }
    });
    let frame = conn.recv().await;
    let id = frame[1].as_str().expect("a string call id").to_string();
    assert_eq!(id.len(), 16);
    assert_eq!(frame, json!([2, id, "p:f", 1, "a", null]));
    conn.send(&json!([3, id, {"ok": true}]).to_string()).await;
    assert_eq!(
        within("the result", call).await.unwrap().unwrap(),
        json!({"ok": true})
    );

    // WAMP-CRA: authreq with (key, null), auth with the signature of the exact challenge.
    let auth = tokio::spawn({
        let client = client.clone();
        async move { client.authenticate("k", "secret").await }
    });
    let frame = conn.recv().await;
    assert_eq!(frame[2], "http://api.wamp.ws/procedure#authreq");
    assert_eq!(&frame.as_array().unwrap()[3..], &[json!("k"), Value::Null]);
    let challenge = r#"{"authid":"A","authkey":"k","timestamp":"2013-07-06T12:00:00.000Z","sessionid":"ME","extra":{},"permissions":{"rpc":[],"pubsub":[]}}"#;
    conn.send(&json!([3, frame[1], challenge]).to_string())
        .await;
    let frame = conn.recv().await;
    assert_eq!(frame[2], "http://api.wamp.ws/procedure#auth");
    assert_eq!(frame[3], json!(wamp_proto::cra::sign("secret", challenge)));
    conn.send(
        &json!([3, frame[1], {"rpc": [{"uri": "http://x/f", "call": true}], "pubsub": []}])
            .to_string(),
    )
    .await;
    let permissions = within("auth", auth).await.unwrap().unwrap();
    assert!(permissions.may_call("http://x/f"));

    // close: a WebSocket close 1000.
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    assert_eq!(conn.recv_close().await, Some(1000));
    within("close", closing).await.unwrap();
}

#[tokio::test]
async fn answers_are_matched_by_call_id_in_any_order() {
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake.connect(no_reconnect(), "S").await;
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/one", vec![]).await }
    });
    let id1 = conn.recv().await[1].clone();
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/two", vec![]).await }
    });
    let id2 = conn.recv().await[1].clone();
    // An answer to a call nobody made is ignored.
    conn.send(r#"[3,"no-such-call",0]"#).await;
    conn.send(&json!([4, id2, "http://x/error#bad", "bad thing", {"why": 2}]).to_string())
        .await;
    conn.send(&json!([3, id1, 1]).to_string()).await;
    assert_eq!(within("first", first).await.unwrap().unwrap(), json!(1));
    match within("second", second).await.unwrap().unwrap_err() {
        Error::CallError { uri, desc, details } => {
            assert_eq!(uri, "http://x/error#bad");
            assert_eq!(desc, "bad thing");
            assert_eq!(details, Some(json!({"why": 2})));
        }
        other => panic!("{other:?}"),
    }
    assert!(client.is_connected());
}

#[tokio::test]
async fn incoming_events_are_matched_with_the_clients_prefixes() {
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake
        .connect(no_reconnect().prefix("p", "http://x/"), "S")
        .await;
    assert_eq!(conn.recv().await, json!([1, "p", "http://x/"]));
    let mut sub = client.subscribe("p:t").await.unwrap();
    assert_eq!(conn.recv().await, json!([5, "http://x/t"]));
    conn.send(r#"[8,"http://x/other",0]"#).await;
    conn.send(r#"[8,"http://x/t",1]"#).await;
    conn.send(r#"[8,"p:t",2]"#).await;
    let e = next_event(&mut sub).await;
    assert_eq!((e.topic.as_str(), e.payload), ("http://x/t", json!(1)));
    let e = next_event(&mut sub).await;
    assert_eq!((e.topic.as_str(), e.payload), ("p:t", json!(2)));
    no_event(&mut sub).await;
}

#[tokio::test]
async fn malformed_frames_fail_the_connection_not_the_process() {
    let bad_frames: &[(&str, &str)] = &[
        ("not json", "invalid JSON"),
        (r#"{"a":1}"#, "must be a JSON array"),
        ("[]", "empty array"),
        ("[9,1]", "unknown message type"),
        ("[3]", "CALLRESULT is missing element 1"),
        (r#"[3,"id",1,2]"#, "at most 3"),
        (r#"[4,"id",1,"d"]"#, "CALLERROR element 2"),
        (r#"[8,1,2]"#, "EVENT element 1"),
        (r#"[2,"x","http://x/p"]"#, "only clients send"),
        (r#"[5,"http://x/t"]"#, "only clients send"),
        (r#"[0,"S",1,"again"]"#, "second WELCOME"),
    ];
    init_tracing();
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake
        .connect(
            ConnectOptions::new()
                .reconnect(ReconnectPolicy::forever(Duration::from_millis(10)))
                .call_timeout(None),
            "S0",
        )
        .await;
    let mut sub = client.subscribe("http://x/t").await.unwrap();
    assert_eq!(conn.recv().await, json!([5, "http://x/t"]));

    for (n, (frame, want)) in bad_frames.iter().enumerate() {
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.call("http://x/p", vec![]).await }
        });
        assert_eq!(conn.recv().await[0], 2);
        conn.send(frame).await;
        // The client says why it leaves (1002), and the call in flight fails.
        assert_eq!(conn.recv_close().await, Some(1002), "{frame}");
        let err = within("the call to fail", call).await.unwrap().unwrap_err();
        match &err {
            Error::ConnectionLost(reason) => {
                assert!(reason.contains("protocol error"), "{frame}: {reason}");
                assert!(reason.contains(want), "{frame}: {reason}");
            }
            other => panic!("{frame}: {other:?}"),
        }
        // It reconnects and subscribes again.
        conn = fake.accept().await;
        let session = format!("S{}", n + 1);
        conn.welcome(&session).await;
        assert_eq!(conn.recv().await, json!([5, "http://x/t"]));
        wait_state(&client, "reconnected", |s| {
            matches!(s, ConnectionState::Connected { session_id, .. } if *session_id == session)
        })
        .await;
    }
    // A binary frame is refused with 1003.
    conn.ws.send(Ws::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(conn.recv_close().await, Some(1003));
    let mut conn = fake.accept().await;
    conn.welcome("S-last").await;
    assert_eq!(conn.recv().await, json!([5, "http://x/t"]));
    conn.send(r#"[8,"http://x/t","still fine"]"#).await;
    assert_eq!(next_event(&mut sub).await.payload, json!("still fine"));
}

#[tokio::test]
async fn a_server_close_fails_pending_calls_with_its_reason() {
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake.connect(no_reconnect().call_timeout(None), "S").await;
    let mut sub = client.subscribe("http://x/t").await.unwrap();
    let _ = conn.recv().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/p", vec![]).await }
    });
    let _ = conn.recv().await;
    conn.close(4001, "maintenance").await;
    let err = within("the call to fail", call).await.unwrap().unwrap_err();
    match &err {
        Error::ConnectionLost(reason) => {
            assert!(
                reason.contains("4001") && reason.contains("maintenance"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(within("the stream to end", sub.next()).await.is_none());
    assert!(client.state().is_closed());
}

#[tokio::test]
async fn a_silent_server_is_detected_by_ping() {
    let mut fake = FakeServer::start(true).await;
    let (client, conn) = fake
        .connect(
            no_reconnect()
                .ping_interval(Some(Duration::from_millis(100)))
                .call_timeout(None),
            "S",
        )
        .await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/p", vec![]).await }
    });
    // The fake server does not read, so it neither answers the call nor the pings.
    let err = within("the call to fail", call).await.unwrap().unwrap_err();
    match &err {
        Error::ConnectionLost(reason) => assert!(reason.contains("ping"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(client.state().is_closed());
    drop(conn);
}

#[tokio::test]
async fn a_server_that_answers_pings_stays_connected() {
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake
        .connect(
            no_reconnect().ping_interval(Some(Duration::from_millis(50))),
            "S",
        )
        .await;
    // Reading lets the fake server's WebSocket answer the pings.
    conn.silent_for(Duration::from_millis(600)).await;
    assert!(client.is_connected(), "{:?}", client.state());
}

#[tokio::test]
async fn a_message_over_the_size_limit_drops_the_connection() {
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake
        .connect(no_reconnect().max_message_size(1024), "S")
        .await;
    let mut sub = client.subscribe("http://x/t").await.unwrap();
    let _ = conn.recv().await;
    conn.send(&json!([8, "http://x/t", "x".repeat(2000)]).to_string())
        .await;
    assert!(within("the stream to end", sub.next()).await.is_none());
    assert!(client.state().is_closed());
}

/// A plain TCP server that answers every request with `status_line` and `body` (in one write,
/// so the body arrives with the headers), then waits for the client to hang up.
async fn refusing_server(status_line: &'static str, body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 {status_line}\r\nContent-Type: text/plain\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                // Read until the client hangs up: closing first could reset the connection
                // before the client has read the answer.
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    format!("ws://{addr}/ws")
}

#[tokio::test]
async fn a_refused_handshake_carries_the_status_and_the_body() {
    let url = refusing_server(
        "403 Forbidden",
        "origin http://evil.example is not allowed\n",
    )
    .await;
    let err = within("connect", no_reconnect().connect(&url))
        .await
        .unwrap_err();
    match &err {
        Error::HandshakeRefused {
            url: tried,
            status,
            body,
        } => {
            assert_eq!(tried, &url);
            assert_eq!(*status, 403);
            assert_eq!(body, "origin http://evil.example is not allowed");
        }
        other => panic!("a refused handshake must be HandshakeRefused, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "{url} refused the WebSocket handshake: HTTP 403 Forbidden: origin \
             http://evil.example is not allowed"
        )
    );
    assert!(
        !err.is_connection_error(),
        "a 403 will not go away by itself"
    );
}

#[tokio::test]
async fn a_full_server_refuses_with_503() {
    // The real server at its connection limit answers 503 at once, with a body.
    let server = TestServer::start(wamp_server::Router::builder().max_connections(0).build()).await;
    let err = within("connect", no_reconnect().connect(&server.url()))
        .await
        .unwrap_err();
    match &err {
        // The body is there when it arrived with the headers (it is written with them).
        Error::HandshakeRefused { status, body, .. } => {
            assert_eq!(*status, 503, "{err}");
            assert!(
                body.is_empty() || body.contains("connection limit"),
                "{body:?}"
            );
        }
        other => panic!("a 503 must be HandshakeRefused, got {other:?}"),
    }
    assert!(err.is_connection_error(), "a 503 may go away: {err}");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_not_a_refusal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    drop(listener);
    let err = within("connect", no_reconnect().connect(&url))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn a_curie_with_an_unknown_prefix_is_refused_and_nothing_is_sent() {
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake
        .connect(no_reconnect().prefix("known", "http://x/"), "S")
        .await;
    assert_eq!(conn.recv().await, json!([1, "known", "http://x/"]));

    let err = client.subscribe("event:chat").await.unwrap_err();
    match &err {
        Error::UnknownPrefix { topic, prefix } => {
            assert_eq!(topic, "event:chat");
            assert_eq!(prefix, "event");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("Client::prefix"), "{err}");
    conn.silent().await;

    // Full URIs (with or without an authority), plain names and known prefixes are fine.
    let _a = client.subscribe("known:t").await.unwrap();
    assert_eq!(conn.recv().await, json!([5, "http://x/t"]));
    let _b = client.subscribe("urn:example:t").await.unwrap();
    assert_eq!(conn.recv().await, json!([5, "urn:example:t"]));
    let _c = client.subscribe("plain").await.unwrap();
    assert_eq!(conn.recv().await, json!([5, "plain"]));

    // Once declared, the prefix works: PREFIX, then the resolved SUBSCRIBE.
    client
        .prefix("event", "http://wamptutorial/event#")
        .await
        .unwrap();
    assert_eq!(
        conn.recv().await,
        json!([1, "event", "http://wamptutorial/event#"])
    );
    let mut sub = client.subscribe("event:chat").await.unwrap();
    assert_eq!(sub.topic(), "http://wamptutorial/event#chat");
    assert_eq!(
        conn.recv().await,
        json!([5, "http://wamptutorial/event#chat"])
    );
    conn.send(r#"[8,"http://wamptutorial/event#chat","hi"]"#)
        .await;
    assert_eq!(next_event(&mut sub).await.payload, json!("hi"));
    // Publishing with a CURIE is left to the server to resolve, as before.
    client.publish("other:t", 1).await.unwrap();
    assert_eq!(conn.recv().await, json!([7, "other:t", 1]));
}

#[tokio::test]
async fn an_unknown_prefix_is_refused_while_reconnecting_too() {
    let mut fake = FakeServer::start(true).await;
    let options =
        ConnectOptions::new().reconnect(ReconnectPolicy::forever(Duration::from_secs(60)));
    let (client, conn) = fake.connect(options, "S").await;
    drop(conn);
    wait_state(&client, "reconnecting", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let err = client.subscribe("nope:t").await.unwrap_err();
    assert!(matches!(err, Error::UnknownPrefix { .. }), "{err:?}");
    // A full URI is still recorded for the next session.
    let sub = client.subscribe("http://x/t").await.unwrap();
    assert_eq!(sub.topic(), "http://x/t");
}

/// The driver reads while its writes are stuck: a server that stops reading (its socket
/// buffers full of the client's publishes) can still deliver an EVENT, and the client takes
/// it. (A driver that wrote in its own loop would sit in the write and never see it.)
#[tokio::test]
async fn events_arrive_while_the_client_cannot_write() {
    init_tracing();
    let mut fake = FakeServer::start(true).await;
    let (client, mut conn) = fake
        .connect(ConnectOptions::new().ping_interval(None), "S")
        .await;
    let mut sub = client.subscribe("http://x/t").await.unwrap();
    assert_eq!(conn.recv().await, json!([5, "http://x/t"]));

    // 25 MB of publishes, far more than loopback socket buffers hold, to a server that does
    // not read: they are queued at once, and the writer is stuck writing them.
    let big = "x".repeat(256 * 1024);
    let publisher = tokio::spawn({
        let client = client.clone();
        async move {
            for _ in 0..100 {
                client.publish("http://x/other", &big).await.unwrap();
            }
        }
    });
    within("the publishes to be queued", publisher)
        .await
        .unwrap();
    conn.send(r#"[8,"http://x/t","while stuck"]"#).await;
    let event = next_event(&mut sub).await;
    assert_eq!(event.payload, json!("while stuck"));
    assert!(client.is_connected());
    // Once the server reads again, the publishes follow the SUBSCRIBE in order.
    let first = conn.recv().await;
    assert_eq!(
        (first[0].clone(), first[1].clone()),
        (json!(7), json!("http://x/other"))
    );
}

#[tokio::test]
async fn a_protocol_error_while_the_server_does_not_read_still_ends_the_session() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let mut fake = FakeServer::start(true).await;
    let every = Duration::from_millis(200);
    let (client, mut conn) = fake
        .connect(no_reconnect().ping_interval(Some(every)), "S")
        .await;
    // The client publishes until the server's unread socket and the writer's queue are full.
    let published = Arc::new(AtomicUsize::new(0));
    let publisher = tokio::spawn({
        let (client, published) = (client.clone(), published.clone());
        async move {
            let big = "x".repeat(16 * 1024);
            while client.publish("http://x/t", &big).await.is_ok() {
                published.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // The server never reads; it keeps sending so the client's pings see it alive, and the
    // pings fill the queue's last slots.
    let mut last = usize::MAX;
    let mut stalled_for = 0;
    while stalled_for < 10 {
        conn.send(r#"[8,"http://x/other","alive"]"#).await;
        tokio::time::sleep(every / 2).await;
        let now = published.load(Ordering::Relaxed);
        stalled_for = if now == last { stalled_for + 1 } else { 0 };
        last = now;
    }
    assert!(matches!(client.state(), ConnectionState::Connected { .. }));
    // A protocol error: the driver cannot queue its close frame, and must not wait for room.
    conn.ws.send(Ws::binary(vec![1u8])).await.unwrap();
    wait_until("the session to end", || {
        !matches!(client.state(), ConnectionState::Connected { .. })
    })
    .await;
    publisher.abort();
}
