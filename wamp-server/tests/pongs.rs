//! Pings from a client that never reads its pongs: the pongs count against the session's
//! outbox byte bound (`docs/PROTOCOL.md` section 7, "pongs included"), so the session is closed
//! as a slow consumer and the server does not grow; a client that reads its pongs may ping
//! as much as it likes. Alone in its test binary, because it measures the process's resident
//! memory.

mod common;

use std::sync::{Arc, Mutex};

use common::{client_frame, eventually, raw_ws, test_router, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The resident set size of this process, in bytes (Linux): `VmRSS` of /proc/self/status,
/// which is in kB whatever the page size.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .expect("a VmRSS line in /proc/self/status");
    let kb: usize = line.trim().trim_end_matches("kB").trim().parse().unwrap();
    kb * 1024
}

fn pings(n: usize) -> Vec<u8> {
    let ping = client_frame(0x89, &[b'p'; 125]);
    let mut batch = Vec::with_capacity(ping.len() * n);
    for _ in 0..n {
        batch.extend_from_slice(&ping);
    }
    batch
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn pongs_to_a_client_that_never_reads_close_it_as_a_slow_consumer() {
    let reasons = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = reasons.clone();
    let router = test_router()
        .outbox_max_bytes(64 * 1024)
        .close_wait(std::time::Duration::from_millis(200))
        .on_session_close(move |_, reason| log.lock().unwrap().push(reason.to_string()))
        .build();
    let server = TestServer::start(router).await;
    let mut s = raw_ws(server.addr).await;
    let batch = pings(1000);
    let before = rss();
    // Up to 50 MiB of pings (and as much pong) until the server closes the session; the
    // client never reads.
    for _ in 0..400 {
        if s.write_all(&batch).await.is_err() || !reasons.lock().unwrap().is_empty() {
            break;
        }
    }
    eventually("the session has been closed", || {
        !reasons.lock().unwrap().is_empty()
    })
    .await;
    let reason = reasons.lock().unwrap()[0].clone();
    assert!(reason.contains("65536 bytes"), "{reason}");
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "the server grew by {} MiB for pongs nobody reads",
        grown >> 20
    );
    server.client().await.assert_alive().await;
}

#[tokio::test]
async fn a_client_that_reads_its_pongs_may_ping_a_lot() {
    let closed = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = closed.clone();
    let router = test_router()
        .outbox_max_bytes(64 * 1024)
        .on_session_close(move |_, reason| log.lock().unwrap().push(reason.to_string()))
        .build();
    let server = TestServer::start(router).await;
    let s = raw_ws(server.addr).await;
    let (mut read, mut write) = s.into_split();
    // Reads everything the server sends (the WELCOME and every pong), counting bytes.
    let total = 20 * 1000 * 127;
    let reader = tokio::spawn(async move {
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while got < total {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    // 20,000 pings: 2.5 MiB of pongs, forty times the byte bound.
    let batch = pings(1000);
    for _ in 0..20 {
        write.write_all(&batch).await.unwrap();
    }
    let got = tokio::time::timeout(common::WAIT * 4, reader)
        .await
        .expect("every pong arrives")
        .unwrap();
    assert!(got >= total, "got {got} of {total} bytes");
    assert!(
        closed.lock().unwrap().is_empty(),
        "{:?}",
        closed.lock().unwrap()
    );
    assert_eq!(server.router.session_count(), 1);
}
