//! Per-session bounds and how sessions end (`docs/PROTOCOL.md` sections 6 and 7): calls in flight,
//! aborted calls, prefixes, subscriptions, URI length, the outbox in bytes, WebSocket protocol
//! violations, graceful shutdown without a close handshake, and the session_closed hook
//! after a panic. Each limit is tested at its bound and one past it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client_frame, eventually, raw_ws, read_close, test_router, Client, TestServer};
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use wamp_server::{RouterBuilder, ShutdownClose, Topic};

/// A procedure `http://test/rpc#gate` that waits for a permit, counting what happens.
struct Gate {
    started: AtomicUsize,
    finished: AtomicUsize,
    dropped: AtomicUsize,
    permits: Semaphore,
}

/// Counts a call's future dropped before it finished (i.e. aborted).
struct DropCount(Arc<Gate>, bool);

impl Drop for DropCount {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn gated(builder: RouterBuilder) -> (RouterBuilder, Arc<Gate>) {
    let gate = Arc::new(Gate {
        started: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
        permits: Semaphore::new(0),
    });
    let g = gate.clone();
    let builder = builder.procedure("http://test/rpc#gate", move |_, _| {
        let gate = g.clone();
        async move {
            let mut guard = DropCount(gate.clone(), false);
            gate.started.fetch_add(1, Ordering::SeqCst);
            gate.permits.acquire().await.unwrap().forget();
            gate.finished.fetch_add(1, Ordering::SeqCst);
            guard.1 = true;
            Ok(json!("opened"))
        }
    });
    (builder, gate)
}

fn count(n: &AtomicUsize) -> usize {
    n.load(Ordering::SeqCst)
}

#[tokio::test]
async fn at_the_cap_of_calls_in_flight_the_session_is_not_read() {
    let (builder, gate) = gated(test_router().max_calls_in_flight(2));
    let server = TestServer::start(builder.build()).await;
    let mut c = server.client().await;
    // One call in flight, under the cap: the session still answers.
    c.send(r#"[2,"g1","http://test/rpc#gate"]"#).await;
    c.assert_alive().await;
    // Two in flight, at the cap: the echo behind them waits unread.
    c.send(r#"[2,"g2","http://test/rpc#gate"]"#).await;
    c.send(r#"[2,"e","http://test/rpc#echo","late"]"#).await;
    eventually("both gated calls run", || count(&gate.started) == 2).await;
    c.expect_silence().await;
    // One call finishes: reading resumes and the echo is answered.
    gate.permits.add_permits(1);
    let mut replies = [c.recv().await, c.recv().await];
    replies.sort_by_key(|r| r[1].as_str().unwrap().to_string());
    assert_eq!(replies[0], json!([3, "e", "late"]));
    assert_eq!(replies[1][2], "opened");
    gate.permits.add_permits(1);
    assert_eq!(c.recv().await[2], "opened");
    // Other sessions were never held up.
    server.client().await.assert_alive().await;
}

#[tokio::test]
async fn a_sessions_calls_are_aborted_when_it_ends() {
    let (builder, gate) = gated(test_router());
    let server = TestServer::start(builder.build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"g","http://test/rpc#gate"]"#).await;
    eventually("the call runs", || count(&gate.started) == 1).await;
    c.ws.close(None).await.unwrap();
    eventually("the call is aborted", || count(&gate.dropped) == 1).await;
    assert_eq!(count(&gate.finished), 0);
    eventually("the session has ended", || {
        server.router.session_count() == 0
    })
    .await;
}

#[tokio::test]
async fn with_detach_calls_outlive_their_session() {
    let (builder, gate) = gated(test_router().detach_calls_on_close(true));
    let server = TestServer::start(builder.build()).await;
    let c = server.client().await;
    let mut c = c;
    c.send(r#"[2,"g","http://test/rpc#gate"]"#).await;
    eventually("the call runs", || count(&gate.started) == 1).await;
    drop(c);
    eventually("the session has ended", || {
        server.router.session_count() == 0
    })
    .await;
    assert_eq!(count(&gate.dropped), 0);
    gate.permits.add_permits(1);
    eventually("the detached call finishes", || count(&gate.finished) == 1).await;
    assert_eq!(count(&gate.dropped), 0);
}

#[tokio::test]
async fn the_session_closed_hook_runs_when_the_session_task_panics() {
    let reasons = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = reasons.clone();
    let router = test_router()
        // A policy callback with a bug: it runs in the session's task.
        .topic(
            "http://test/buggy",
            Topic::open().on_subscribe(|_| async move {
                if true {
                    panic!("policy bug");
                }
                true
            }),
        )
        .on_session_close(move |_, reason| log.lock().unwrap().push(reason.to_string()))
        .build();
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send(r#"[5,"http://test/event#ok"]"#).await;
    c.assert_alive().await;
    c.send(r#"[5,"http://test/buggy"]"#).await;
    eventually("the hook ran", || !reasons.lock().unwrap().is_empty()).await;
    let reason = reasons.lock().unwrap()[0].clone();
    assert!(reason.contains("panicked"), "{reason}");
    // Nothing of the session is left in the router.
    assert_eq!(server.router.session_count(), 0);
    assert!(server.router.subscribers("http://test/event#ok").is_empty());
    server.client().await.assert_alive().await;
}

/// Expects the session to be closed with 1008 and a reason naming the limit.
async fn closes_for_limit(c: &mut Client, name: &str, limit: usize) {
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains(name), "{reason:?} should name {name}");
    assert!(
        reason.contains(&limit.to_string()),
        "{reason:?} should say {limit}"
    );
}

#[tokio::test]
async fn prefixes_per_session_are_capped() {
    let server = TestServer::start(test_router().max_prefixes(3).build()).await;
    let mut c = server.client().await;
    for p in ["a", "b", "c"] {
        c.send_json(json!([1, p, "http://test/rpc#"])).await;
    }
    // Redefining one is not a new prefix.
    c.send_json(json!([1, "a", "http://test/rpc#"])).await;
    assert_eq!(c.call("1", "c:echo", &[json!(1)]).await, json!([3, "1", 1]));
    c.send_json(json!([1, "d", "http://test/rpc#"])).await;
    closes_for_limit(&mut c, "max_prefixes", 3).await;
    server.client().await.assert_alive().await;
}

#[tokio::test]
async fn subscriptions_per_session_are_capped() {
    let server = TestServer::start(test_router().max_subscriptions(2).build()).await;
    let mut c = server.client().await;
    c.send(r#"[5,"http://test/event#1"]"#).await;
    c.send(r#"[5,"http://test/event#2"]"#).await;
    c.send(r#"[5,"http://test/event#2"]"#).await;
    c.assert_alive().await;
    assert_eq!(server.router.subscribers("http://test/event#2").len(), 1);
    c.send(r#"[5,"http://test/event#3"]"#).await;
    closes_for_limit(&mut c, "max_subscriptions", 2).await;
    eventually("the subscriptions are gone", || {
        server.router.subscribers("http://test/event#1").is_empty()
    })
    .await;
}

#[tokio::test]
async fn uri_length_is_capped_also_after_resolving() {
    let max = 64;
    let at_bound = format!("http://test/rpc#{}", "x".repeat(max - 16));
    assert_eq!(at_bound.len(), max);
    let over = format!("{at_bound}y");
    let server = TestServer::start(test_router().max_uri_length(max).build()).await;
    // At the bound: an ordinary (unknown) procedure.
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", &at_bound, &[]).await[2],
        "http://api.wamp.ws/error#notfound"
    );
    // One past it, in a CALL, a SUBSCRIBE, a PREFIX, and a CURIE that resolves past it.
    for frame in [
        json!([2, "2", over]),
        json!([5, over]),
        json!([1, "p", over]),
    ] {
        let mut c = server.client().await;
        c.send_json(frame).await;
        closes_for_limit(&mut c, "max_uri_length", max).await;
    }
    let mut c = server.client().await;
    c.send_json(json!([1, "p", at_bound])).await;
    c.send_json(json!([2, "3", "p:y"])).await;
    closes_for_limit(&mut c, "max_uri_length", max).await;
}

#[tokio::test]
async fn the_byte_bound_closes_a_slow_consumer_even_while_its_writer_is_blocked() {
    let closed = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let log = closed.clone();
    let router = test_router()
        .outbox_capacity(1_000_000)
        .outbox_max_bytes(256 * 1024)
        .close_wait(Duration::from_millis(200))
        .on_session_close(move |id, reason| {
            log.lock()
                .unwrap()
                .push((id.to_string(), reason.to_string()))
        })
        .build();
    let server = TestServer::start(router).await;
    let topic = "http://test/event#big";
    // The slow one subscribes and then never reads, and never closes its socket.
    let mut slow = server.client().await;
    slow.send_json(json!([5, topic])).await;
    slow.assert_alive().await;
    let mut publisher = server.client().await;
    let payload = "z".repeat(64 * 1024);
    // Far more than the socket buffers and the byte bound hold together.
    for i in 0..600 {
        if !server.router.subscribers(topic).contains(&slow.session_id) {
            break;
        }
        publisher
            .send_json(json!([7, topic, {"i": i, "pad": payload}]))
            .await;
    }
    // The session ends (writer interrupted, close frame given up after close_wait) while the
    // client still holds its unread socket.
    eventually("the slow session has ended", || {
        closed
            .lock()
            .unwrap()
            .iter()
            .any(|(id, _)| *id == slow.session_id)
    })
    .await;
    let reason = closed.lock().unwrap()[0].1.clone();
    assert!(reason.contains("262144 bytes"), "{reason}");
    assert!(server.router.subscribers(topic).is_empty());
    publisher.assert_alive().await;
    drop(slow);
}

/// Sends raw bytes on a fresh session and expects a close with `code`.
async fn violation_closes(server: &TestServer, bytes: &[u8], code: u16, reason_part: &str) {
    let mut s = raw_ws(server.addr).await;
    s.write_all(bytes).await.unwrap();
    let (got, reason) = read_close(&mut s).await;
    assert_eq!(got, code, "{reason} for {bytes:02x?}");
    assert!(
        reason.to_lowercase().contains(reason_part),
        "{reason:?} should contain {reason_part:?}"
    );
}

/// The server's log lines at WARN and above, captured for the current thread (the
/// current-thread test runtime runs the server's tasks on it).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

#[tokio::test]
async fn websocket_protocol_violations_get_their_close_codes() {
    let (log, _guard) = Log::capture();
    let server = TestServer::start(test_router().build()).await;
    // A warn line with the session id, the code and the reason.
    let mut c = server.client().await;
    c.ws.send(tokio_tungstenite::tungstenite::Message::Frame(
        tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
            b"[\xff]".to_vec(),
            tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        ),
    ))
    .await
    .unwrap();
    assert_eq!(c.expect_close().await.0, 1007);
    let line = log
        .text()
        .lines()
        .find(|l| l.contains(&c.session_id))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no log line names the session: {}", log.text()));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("code=1007"), "{line}");
    assert!(line.to_lowercase().contains("utf-8"), "{line}");
    // Invalid UTF-8 in a text message, and in a close reason: 1007.
    violation_closes(&server, &client_frame(0x81, b"[\xff]"), 1007, "utf-8").await;
    violation_closes(&server, &client_frame(0x88, b"\x03\xe8\xff"), 1007, "utf-8").await;
    // Framing violations: 1002.
    let unmasked = [0x81u8, 0x02, b'[', b']'];
    for bytes in [
        client_frame(0x80, b"x"), // continuation without a start
        [client_frame(0x01, b"[2"), client_frame(0x81, b"x")].concat(), // new text inside a fragmented one
        client_frame(0xc1, b"[]"),                                      // RSV1 set
        client_frame(0x83, b"x"),                                       // reserved data opcode
        client_frame(0x8b, b"x"),                                       // reserved control opcode
        unmasked.to_vec(),                                              // an unmasked client frame
        client_frame(0x89, &[0u8; 126]),                                // a ping over 125 bytes
        client_frame(0x09, b"x"),                                       // a fragmented ping
        client_frame(0x88, b"\x03"), // a close frame with a 1-byte payload
        client_frame(0x88, &1005u16.to_be_bytes()), // a code that may not be sent
        client_frame(0x88, &999u16.to_be_bytes()),
    ] {
        violation_closes(&server, &bytes, 1002, "protocol").await;
    }
    // A fragmented message over the size limit: 1009, like an unfragmented one.
    let small = TestServer::start(test_router().max_message_size(1000).build()).await;
    let fragments = [
        client_frame(0x01, &[b' '; 600]),
        client_frame(0x80, &[b' '; 600]),
    ]
    .concat();
    violation_closes(&small, &fragments, 1009, "1000").await;
    server.client().await.assert_alive().await;
}

#[tokio::test]
async fn graceful_shutdown_by_default_answers_calls_then_ends_tcp_without_a_close_frame() {
    let (builder, gate) = gated(test_router());
    let mut server = TestServer::start(builder.build()).await;
    let mut busy = server.client().await;
    let mut idle = server.client().await;
    busy.send(r#"[2,"late","http://test/rpc#gate"]"#).await;
    eventually("the call runs", || count(&gate.started) == 1).await;
    server.stop();
    // The idle session ends at once: the TCP connection ends with no close frame, so
    // AutobahnJS 0.8 treats it as a loss and reconnects.
    idle.expect_connection_end().await;
    // The call in flight across the shutdown still gets its answer, then the same end.
    gate.permits.add_permits(1);
    assert_eq!(busy.recv().await, json!([3, "late", "opened"]));
    busy.expect_connection_end().await;
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn graceful_shutdown_with_the_handshake_option_closes_with_its_code() {
    let router = test_router()
        .shutdown_close(ShutdownClose::Handshake(1001))
        .build();
    let mut server = TestServer::start(router).await;
    let mut c = server.client().await;
    server.stop();
    let (code, reason) = c.expect_close().await;
    assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
}

#[tokio::test]
async fn topic_policies_that_never_answer_time_out() {
    let router = test_router()
        .policy_timeout(Duration::from_millis(200))
        .topic(
            "http://test/stuck-sub",
            Topic::open().on_subscribe(|_| std::future::pending::<bool>()),
        )
        .topic(
            "http://test/stuck-pub",
            Topic::open().on_publish(|_, _| std::future::pending()),
        )
        .build();
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send(r#"[5,"http://test/stuck-sub"]"#).await;
    c.send(r#"[5,"http://test/stuck-pub"]"#).await;
    c.assert_alive().await;
    // The second SUBSCRIBE waits its turn behind the first (PubSub stays in order) while the
    // session answers calls: it is done once the first times out.
    eventually("the SUBSCRIBE behind the stuck one is done", || {
        server.router.subscribers("http://test/stuck-pub").len() == 1
    })
    .await;
    assert!(server
        .router
        .subscribers("http://test/stuck-sub")
        .is_empty());
    c.send(r#"[7,"http://test/stuck-pub","hello"]"#).await;
    c.assert_alive().await;
    c.expect_silence().await;
}

#[tokio::test]
async fn the_byte_bound_is_also_the_largest_frame_sent() {
    let max = 1024;
    let router = test_router()
        .outbox_max_bytes(max)
        .procedure(
            "http://test/rpc#huge-error",
            |_, args: Vec<Value>| async move {
                let n = args.first().and_then(Value::as_u64).unwrap_or(0) as usize;
                Err::<Value, _>(
                    wamp_server::CallError::new("http://test/error#huge", "big")
                        .with_details("z".repeat(n)),
                )
            },
        )
        .build();
    let server = TestServer::start(router).await;
    let topic = "http://test/event#t";
    let mut c = server.client().await;
    c.send_json(json!([5, topic])).await;
    // `[3,"c",["…"]]` is 12 bytes around the string: exactly at the bound it is delivered...
    let at_bound = "x".repeat(max - 12);
    let text = {
        c.send_json(json!([2, "c", "http://test/rpc#args", at_bound]))
            .await;
        c.recv_text().await
    };
    assert_eq!(text.len(), max);
    // ...one byte more is answered with #internal instead, and the session goes on.
    let over = "x".repeat(max - 11);
    let e = c.call("c", "http://test/rpc#args", &[json!(over)]).await;
    assert_eq!(e[2], "http://api.wamp.ws/error#internal");
    assert!(e[4].as_str().unwrap().contains("outbox_max_bytes"), "{e}");
    // An error too large keeps its URI and says why its description and details are gone.
    let e = c
        .call("d", "http://test/rpc#huge-error", &[json!(max)])
        .await;
    assert_eq!(e[2], "http://test/error#huge");
    assert!(e[3].as_str().unwrap().contains("outbox_max_bytes"), "{e}");
    assert_eq!(e.as_array().unwrap().len(), 4, "{e}");
    // An event too large for its subscribers is not delivered to them.
    c.send_json(json!([7, topic, "y".repeat(max)])).await;
    c.assert_alive().await;
    c.expect_silence().await;
}

#[tokio::test]
async fn a_stuck_topic_policy_does_not_hold_off_shutdown_or_the_auth_timeout() {
    let stuck = || Topic::open().on_subscribe(|_| std::future::pending::<bool>());
    // Shutdown.
    let router = test_router()
        .policy_timeout(Duration::from_secs(600))
        .topic("http://test/stuck", stuck())
        .build();
    let mut server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send(r#"[5,"http://test/stuck"]"#).await;
    c.expect_silence().await;
    server.stop();
    c.expect_connection_end().await;
    // The auth timeout.
    let auth = wamp_server::AuthConfig::new(wamp_server::InMemoryAuth::new())
        .unauthenticated_permissions(wamp_proto::Permissions::all())
        .timeout(Duration::from_millis(500));
    let router = test_router()
        .policy_timeout(Duration::from_secs(600))
        .topic("http://test/stuck", stuck())
        .auth(auth)
        .build();
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send(r#"[5,"http://test/stuck"]"#).await;
    assert_eq!(c.expect_close().await.0, 4401);
}
