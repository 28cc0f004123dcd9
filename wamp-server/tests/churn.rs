//! Connection churn (`docs/PROTOCOL.md` section 7): sessions that end in every abrupt way, in
//! their thousands, and not one panic in the server. This test binary counts every panic of
//! the process with a panic hook, so it holds no test that panics on purpose.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{
    assert_no_panic, client_frame, count_panics, eventually, raw_ws, test_router, Client,
    TestServer,
};
use futures::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message as Ws;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_sessions_that_call_and_close_at_once_panic_nothing() {
    count_panics();
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = closed.clone();
    let router = test_router()
        .max_connections(100_000)
        .on_session_close(move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    let server = TestServer::start(router).await;
    const SESSIONS: usize = 2_000;
    const AT_ONCE: usize = 50;
    for batch in 0..SESSIONS / AT_ONCE {
        let mut tasks = Vec::new();
        for i in 0..AT_ONCE {
            let url = server.url();
            let addr = server.addr;
            tasks.push(tokio::spawn(async move {
                match (batch * AT_ONCE + i) % 4 {
                    // A CALL, then a close frame at once.
                    0 => {
                        let mut c = Client::connect(&url).await;
                        c.send(r#"[2,"c","http://test/rpc#echo","x"]"#).await;
                        let _ = c.ws.close(None).await;
                    }
                    // A slow CALL, then the TCP connection goes away.
                    1 => {
                        let mut c = Client::connect(&url).await;
                        c.send(r#"[2,"c","http://test/rpc#sleep",50]"#).await;
                        drop(c);
                    }
                    // Half a frame, then the TCP connection goes away.
                    2 => {
                        let mut s = raw_ws(addr).await;
                        let frame = client_frame(0x81, br#"[2,"c","http://test/rpc#echo","x"]"#);
                        s.write_all(&frame[..frame.len() / 2]).await.unwrap();
                        drop(s);
                    }
                    // A CALL that asks the server to close the session; the client never
                    // reads, so the server's writer ends before its reader.
                    _ => {
                        let mut c = Client::connect(&url).await;
                        c.send(r#"[2,"c","http://test/rpc#kill"]"#).await;
                        let _ = c.ws.flush().await;
                        tokio::task::yield_now().await;
                        drop(c);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    eventually("every session has ended", || {
        server.router.session_count() == 0 && closed.load(Ordering::SeqCst) == SESSIONS
    })
    .await;
    assert_no_panic();
    // The server still serves.
    server.client().await.assert_alive().await;
}

#[tokio::test]
async fn a_session_whose_writer_ends_first_ends_cleanly() {
    count_panics();
    let reasons = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = reasons.clone();
    let router = test_router()
        .on_session_close(move |_, reason| log.lock().unwrap().push(reason.to_string()))
        .build();
    let server = TestServer::start(router).await;
    // The client asks to be killed and then reads nothing: the server's writer sends the
    // CALLERROR and the close frame and finishes while the reader still waits.
    let mut c = server.client().await;
    c.ws.send(Ws::text(r#"[2,"k","http://test/rpc#kill"]"#))
        .await
        .unwrap();
    eventually("the session has ended", || {
        server.router.session_count() == 0 && !reasons.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        *reasons.lock().unwrap(),
        vec!["killing WAMP session upon request by application exception".to_string()]
    );
    assert_no_panic();
    // What the client reads afterwards: the CALLERROR, then the close frame with 3000.
    assert_eq!(c.recv().await[0], 4);
    assert_eq!(c.expect_close().await.0, 3000);
    drop(c);
    server.client().await.assert_alive().await;
}

#[tokio::test]
async fn a_client_that_drops_mid_frame_ends_its_session() {
    count_panics();
    let server = TestServer::start(test_router().build()).await;
    let mut s = raw_ws(server.addr).await;
    let frame = client_frame(0x81, br#"[5,"http://test/event#t"]"#);
    s.write_all(&frame[..5]).await.unwrap();
    eventually("the session is open", || server.router.session_count() == 1).await;
    drop(s);
    eventually("the session has ended", || {
        server.router.session_count() == 0
    })
    .await;
    assert_no_panic();
}
