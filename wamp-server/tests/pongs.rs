//! Pings from a client that never reads its pongs do not grow the server (issue: pong replies
//! queued without bound). Alone in its test binary, because it measures the process's
//! resident memory.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{client_frame, raw_ws, test_router, TestServer};
use tokio::io::AsyncWriteExt;

/// The resident set size of this process, in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn pongs_to_a_client_that_never_reads_do_not_queue_up() {
    let marked = Arc::new(AtomicBool::new(false));
    let mark = marked.clone();
    let router = test_router()
        .outbox_max_bytes(64 * 1024)
        .procedure("http://test/rpc#mark", move |_, _| {
            mark.store(true, Ordering::SeqCst);
            async { Ok(serde_json::Value::Null) }
        })
        .build();
    let server = TestServer::start(router).await;
    let mut s = raw_ws(server.addr).await;
    let ping = client_frame(0x89, &[b'p'; 125]);
    // Warm up (buffers, allocator), then measure over 48 MiB of pongs never read.
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend_from_slice(&ping);
    }
    for _ in 0..20 {
        s.write_all(&batch).await.unwrap();
    }
    let before = rss();
    for _ in 0..380 {
        s.write_all(&batch).await.unwrap();
    }
    // A CALL after the pings: once it runs, the session has read (and answered) every ping.
    s.write_all(&client_frame(0x81, br#"[2,"c","http://test/rpc#mark"]"#))
        .await
        .unwrap();
    common::eventually("the session has read every ping", || {
        marked.load(Ordering::SeqCst)
    })
    .await;
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "the server grew by {} MiB for pongs nobody reads",
        grown >> 20
    );
    drop(s);
}
