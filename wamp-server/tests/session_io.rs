//! A session's one task reads and writes its socket: how it ends when the socket dies while
//! it only writes (not reading at the cap of calls in flight), and when a client that never
//! reads fills the outbox while it keeps sending.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, test_router, TestServer, WAIT};
use futures::SinkExt;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as Ws;

#[tokio::test]
async fn a_session_that_only_writes_ends_when_its_socket_dies() {
    common::count_panics();
    let started = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let reasons = Arc::new(Mutex::new(Vec::<String>::new()));
    let (s, g, log) = (started.clone(), gate.clone(), reasons.clone());
    let router = test_router()
        .max_calls_in_flight(1)
        .procedure("http://test/rpc#gate", move |_, _| {
            let (started, gate) = (s.clone(), g.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                Ok(json!("opened"))
            }
        })
        .on_session_close(move |_, reason| log.lock().unwrap().push(reason.to_string()))
        .build();
    let server = TestServer::start(router).await;
    let topic = "http://test/event#only-writes";
    let mut dying = server.client().await;
    dying.send_json(json!([5, topic])).await;
    dying.assert_alive().await;
    // At the cap of calls in flight: the session no longer reads its socket, it only writes.
    dying.send(r#"[2,"g","http://test/rpc#gate"]"#).await;
    eventually("the gated call runs", || {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    // The client's TCP connection goes away without a close frame.
    drop(dying);
    let mut publisher = server.client().await;
    let deadline = Instant::now() + 4 * WAIT;
    let mut published = 0;
    // Events to the dead socket: a write fails, and the session must end on its own.
    while server.router.subscribers(topic).len() == 1 {
        assert!(
            Instant::now() < deadline,
            "the session whose socket died was not ended after {published} events"
        );
        publisher
            .send_json(json!([7, topic, {"n": published}, true]))
            .await;
        publisher.assert_alive().await;
        published += 1;
    }
    eventually("the dead session is gone", || {
        server.router.session_count() == 1
    })
    .await;
    assert_eq!(
        *reasons.lock().unwrap(),
        vec!["connection lost".to_string()]
    );
    publisher.assert_alive().await;
    common::assert_no_panic();
}

#[tokio::test]
async fn a_client_that_never_reads_but_keeps_sending_is_closed_for_its_outbox() {
    common::count_panics();
    let reasons = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = reasons.clone();
    const MAX_BYTES: usize = 256 * 1024;
    let router = test_router()
        .outbox_max_bytes(MAX_BYTES)
        .close_wait(Duration::from_millis(500))
        .on_session_close(move |_, reason| log.lock().unwrap().push(reason.to_string()))
        .build();
    let server = TestServer::start(router).await;
    let mut slow = server.client().await;
    let payload = "y".repeat(32 * 1024);
    let call = json!([2, "e", "http://test/rpc#echo", payload]).to_string();
    // Calls whose replies it never reads, sent until the server stops taking them: the socket
    // fills, then the outbox, which closes the session; the server then drops the connection.
    let sender = tokio::spawn(async move {
        let mut sent = 0usize;
        while slow.ws.send(Ws::text(call.clone())).await.is_ok() {
            sent += 1;
            if sent > 100_000 {
                break;
            }
        }
        sent
    });
    eventually("the session is closed", || {
        server.router.session_count() == 0
    })
    .await;
    let sent = tokio::time::timeout(4 * WAIT, sender)
        .await
        .expect("the client's sends end once the server dropped the connection")
        .unwrap();
    assert!(
        sent <= 100_000,
        "the server kept reading a client it had closed"
    );
    assert_eq!(
        *reasons.lock().unwrap(),
        vec![format!(
            "outgoing queue over {MAX_BYTES} bytes: the client does not read fast enough"
        )]
    );
    // Everyone else is fine.
    server.client().await.assert_alive().await;
    common::assert_no_panic();
}

/// A client that sends a run of large calls at once (more replies than the outbox's byte
/// bound, 4 MiB) and reads all the while: the session must let its writer go before the
/// queued replies reach the bound, not read the whole run first and close the client (1008).
#[tokio::test]
async fn a_run_of_large_calls_sent_at_once_does_not_close_a_client_that_reads() {
    use tokio::io::AsyncWriteExt;
    common::count_panics();
    const CALLS: usize = 100;
    let server = TestServer::start(test_router().build()).await;
    let stream = common::raw_ws(server.addr).await.into_std().unwrap();
    let mut write = tokio::net::TcpStream::from_std(stream.try_clone().unwrap()).unwrap();
    let mut read = tokio::net::TcpStream::from_std(stream).unwrap();
    let (op, welcome) = common::read_frame(&mut read).await.expect("WELCOME");
    assert_eq!((op, welcome.first()), (1, Some(&b'[')));
    // 100 calls of 70 KiB each, all sent in one go: 7 MB of replies, and any 64 of them
    // (the most a session reads in a row) are over the bound.
    let blob = "x".repeat(70 * 1024);
    let mut frames = Vec::new();
    for i in 0..CALLS {
        let call = json!([2, format!("c{i}"), "http://test/rpc#echo", blob]).to_string();
        frames.extend(common::client_frame(0x81, call.as_bytes()));
    }
    let sender = tokio::spawn(async move { write.write_all(&frames).await });
    for i in 0..CALLS {
        let (op, payload) = common::read_frame(&mut read).await.expect("a reply");
        let text = String::from_utf8_lossy(&payload);
        assert_eq!(op, 1, "reply {i}: opcode {op} ({text:.120})");
        let reply: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(reply[0], 3, "{text:.120}");
        assert_eq!(reply[1], format!("c{i}"));
        assert_eq!(reply[2].as_str().map(str::len), Some(blob.len()));
    }
    sender.await.unwrap().unwrap();
    common::assert_no_panic();
}
