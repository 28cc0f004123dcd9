//! The WebSocket buffers (a small read buffer that grows for a large message) over both
//! transports, `serve` and the axum mount (`serve_app`): messages around the read buffer's size
//! and at `max_message_size` arrive whole, one byte more closes with 1009.

mod common;

use common::{assert_no_panic, count_panics, test_router, Client, TestServer};
use serde_json::json;
use wamp_server::{Options, Router};

/// The largest message these tests allow.
const MAX: usize = 64 * 1024;

/// A CALL of the echo procedure whose text is exactly `len` bytes.
fn call_of_len(call_id: &str, len: usize) -> (String, String) {
    let empty = format!(r#"[2,"{call_id}","http://test/rpc#echo",""]"#);
    let payload = "x".repeat(len - empty.len());
    let text = format!(r#"[2,"{call_id}","http://test/rpc#echo","{payload}"]"#);
    assert_eq!(text.len(), len);
    (text, payload)
}

/// The router both transports serve: the test procedures, a 64 KiB message limit.
fn router() -> Router {
    test_router().max_message_size(MAX).build()
}

/// `serve_app` with the tutorial's page and the WAMP endpoint at `/ws`.
async fn start_app(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = wamp_server::tutorial::app(router.clone());
    tokio::spawn(wamp_server::serve_app(
        listener,
        router,
        app,
        std::future::pending(),
    ));
    format!("ws://{addr}/ws")
}

async fn messages_around_the_buffer_and_the_limit(url: &str) {
    let read_buffer = Options::default().read_buffer_size;
    let mut c = Client::connect(url).await;
    // Around the read buffer's size, far past it, and exactly at the limit: echoed whole.
    let sizes = [
        read_buffer - 1,
        read_buffer,
        read_buffer + 1,
        2 * read_buffer + 7,
        10_000,
        MAX,
    ];
    for (i, len) in sizes.into_iter().enumerate() {
        let id = format!("c{i}");
        let (text, payload) = call_of_len(&id, len);
        c.send(&text).await;
        assert_eq!(
            c.recv().await,
            json!([3, id, payload]),
            "a message of {len} bytes"
        );
    }
    // Many frames that reach the server in a few reads, large and small mixed: in order.
    let mut expected = Vec::new();
    for i in 0..40 {
        let id = format!("p{i}");
        let len = if i % 3 == 0 { 3 * read_buffer } else { 60 };
        let (text, payload) = call_of_len(&id, len);
        c.send(&text).await;
        expected.push(json!([3, id, payload]));
    }
    for want in expected {
        assert_eq!(c.recv().await, want);
    }
    // One byte over the limit: 1009 naming it; other sessions go on.
    let mut over = Client::connect(url).await;
    over.send(&call_of_len("big", MAX + 1).0).await;
    let (code, reason) = over.expect_close().await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains(&MAX.to_string()), "{reason}");
    c.assert_alive().await;
}

#[tokio::test]
async fn serve_reads_messages_larger_than_its_read_buffer_up_to_the_limit() {
    count_panics();
    let server = TestServer::start(router()).await;
    messages_around_the_buffer_and_the_limit(&server.url()).await;
    assert_no_panic();
}

#[tokio::test]
async fn the_axum_mount_reads_messages_larger_than_its_read_buffer_up_to_the_limit() {
    count_panics();
    let url = start_app(router()).await;
    messages_around_the_buffer_and_the_limit(&url).await;
    assert_no_panic();
}
