//! The accept-path bounds (issue 13): the handshake timeout, the bound on connections still in
//! their handshakes, and the session slot taken only after the handshake, on both `serve` and
//! `serve_app` (the axum path of the tutorial binary); and the binary's open-file limit.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{test_router, Client, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wamp_server::Router;

/// Long enough that no test below sees it expire unless it is waiting for that.
const LONG: Duration = Duration::from_secs(60);
/// How long a test waits for the server to drop a connection.
const DROP_DEADLINE: Duration = Duration::from_secs(15);

/// Starts `serve_app` with the tutorial app around `router`.
async fn start_app(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = wamp_server::tutorial::app(router.clone());
    tokio::spawn(wamp_server::serve_app(
        listener,
        router,
        app,
        std::future::pending(),
    ));
    addr
}

/// Starts `serve`; the server runs until the test ends (its stop handle is leaked on purpose).
async fn start_serve(router: Router) -> SocketAddr {
    let server = TestServer::start(router).await;
    let addr = server.addr;
    std::mem::forget(server);
    addr
}

/// A TCP connection that never sends a byte.
async fn silent(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// Waits until the server closes `s` (EOF or reset); returns how long that took from `since`.
async fn wait_dropped(s: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + DROP_DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!("the server did not drop the connection within {DROP_DEADLINE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return since.elapsed(),
            // Anything the server says before closing (e.g. an HTTP error) is fine.
            Ok(Ok(_)) => continue,
        }
    }
}

/// Whether the server still holds `s` open (nothing read, no EOF) for a short while.
async fn still_open(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    tokio::time::timeout(common::QUIET, s.read(&mut buf))
        .await
        .is_err()
}

fn wamp_request(addr: SocketAddr) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
    request
}

/// A WebSocket handshake offering `wamp`; the error text on refusal.
async fn try_client(addr: SocketAddr) -> Result<(), String> {
    match tokio_tungstenite::connect_async(wamp_request(addr)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Tries to connect until it works (the server notices closed sockets asynchronously).
async fn connect_eventually(addr: SocketAddr) -> Client {
    let deadline = Instant::now() + DROP_DEADLINE;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            tokio_tungstenite::connect_async(wamp_request(addr)),
        )
        .await;
        if let Ok(Ok((ws, _))) = attempt {
            let mut c = Client {
                ws,
                session_id: String::new(),
                welcome: serde_json::Value::Null,
            };
            c.welcome = c.recv().await;
            assert_eq!(c.welcome[0], 0, "{}", c.welcome);
            return c;
        }
        assert!(Instant::now() < deadline, "no client could connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn silent_sockets_do_not_lock_out_clients(addr: SocketAddr) {
    let mut silents = Vec::new();
    for _ in 0..3 {
        silents.push(silent(addr).await);
    }
    // Three real clients still get the three slots...
    let mut a = Client::connect(&format!("ws://{addr}/ws")).await;
    let mut b = Client::connect(&format!("ws://{addr}/ws")).await;
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    a.assert_alive().await;
    b.assert_alive().await;
    c.assert_alive().await;
    // ...and the limit holds at its bound: a fourth is refused with 503.
    let err = try_client(addr).await.expect_err("a fourth session");
    assert!(err.contains("503"), "{err}");
    for s in &mut silents {
        assert!(
            still_open(s).await,
            "the silent sockets are within the timeout"
        );
    }
}

#[tokio::test]
async fn serve_three_silent_sockets_do_not_lock_out_clients() {
    let router = test_router()
        .max_connections(3)
        .handshake_timeout(LONG)
        .build();
    silent_sockets_do_not_lock_out_clients(start_serve(router).await).await;
}

#[tokio::test]
async fn axum_three_silent_sockets_do_not_lock_out_clients() {
    let router = test_router()
        .max_connections(3)
        .handshake_timeout(LONG)
        .build();
    silent_sockets_do_not_lock_out_clients(start_app(router).await).await;
}

/// A silent socket and one that sent half a request are both dropped after the timeout, not
/// before; a client that completes its handshake in time is unaffected by the timeout.
async fn dropped_after_timeout(addr: SocketAddr, timeout: Duration) {
    let started = Instant::now();
    let mut quiet = silent(addr).await;
    let mut half = silent(addr).await;
    half.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut ok = Client::connect(&format!("ws://{addr}/ws")).await;
    let waited = wait_dropped(&mut quiet, started).await;
    assert!(
        waited >= timeout,
        "dropped after {waited:?}, before {timeout:?}"
    );
    let waited = wait_dropped(&mut half, started).await;
    assert!(
        waited >= timeout,
        "dropped after {waited:?}, before {timeout:?}"
    );
    // The session outlives the handshake timeout.
    ok.assert_alive().await;
}

#[tokio::test]
async fn serve_drops_a_silent_socket_after_the_handshake_timeout() {
    let timeout = Duration::from_millis(300);
    let router = test_router().handshake_timeout(timeout).build();
    dropped_after_timeout(start_serve(router).await, timeout).await;
}

#[tokio::test]
async fn axum_drops_a_silent_socket_after_the_handshake_timeout() {
    let timeout = Duration::from_millis(300);
    let router = test_router().handshake_timeout(timeout).build();
    dropped_after_timeout(start_app(router).await, timeout).await;
}

/// At most `max_pending_handshakes` connections wait in their handshakes; one more is closed
/// at once, and a freed place is usable again.
async fn pending_handshakes_are_bounded(addr: SocketAddr) {
    let mut first = silent(addr).await;
    let mut second = silent(addr).await;
    // The server accepts in order, so the third finds both places taken: closed at accept,
    // long before the handshake timeout.
    let started = Instant::now();
    let mut third = silent(addr).await;
    let waited = wait_dropped(&mut third, started).await;
    assert!(waited < LONG, "{waited:?}");
    assert!(still_open(&mut first).await);
    assert!(still_open(&mut second).await);
    drop(first);
    let mut c = connect_eventually(addr).await;
    c.assert_alive().await;
}

#[tokio::test]
async fn serve_bounds_pending_handshakes() {
    let router = test_router()
        .max_pending_handshakes(2)
        .handshake_timeout(LONG)
        .build();
    pending_handshakes_are_bounded(start_serve(router).await).await;
}

#[tokio::test]
async fn axum_bounds_pending_handshakes() {
    let router = test_router()
        .max_pending_handshakes(2)
        .handshake_timeout(LONG)
        .build();
    pending_handshakes_are_bounded(start_app(router).await).await;
}

/// On the axum path a WebSocket session gives its pending-handshake place back once upgraded
/// (more sessions than pending places can be open).
#[tokio::test]
async fn axum_sessions_do_not_count_as_pending() {
    let router = test_router()
        .max_pending_handshakes(1)
        .handshake_timeout(LONG)
        .build();
    let addr = start_app(router).await;
    let mut a = connect_eventually(addr).await;
    let mut b = connect_eventually(addr).await;
    let mut c = connect_eventually(addr).await;
    a.assert_alive().await;
    b.assert_alive().await;
    c.assert_alive().await;
}

/// The page is still served on the axum path.
#[tokio::test]
async fn axum_serves_the_page() {
    let addr = start_app(test_router().build()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tokio::time::timeout(common::WAIT, s.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"), "{page}");
}

/// Started under a soft open-file limit below its hard limit, the binary raises the soft
/// limit and keeps sessions + pending handshakes + 64 reserved below it, saying so.
#[tokio::test]
async fn the_open_file_limit_is_raised_and_the_session_limit_kept_below_it() {
    let line = limits_line("").await;
    // 600 - 64 = 536 descriptors: 53 for pending handshakes, 483 for sessions.
    assert!(line.contains("open_file_limit=600"), "{line}");
    assert!(line.contains("max_connections=483"), "{line}");
    assert!(line.contains("max_pending_handshakes=53"), "{line}");
}

/// The limits line of the binary started under `ulimit -Sn 200 -Hn 600` with `flags`.
async fn limits_line(flags: &str) -> String {
    let mut child = tokio::process::Command::new("bash")
        .args([
            "-c",
            &format!(r#"ulimit -Sn 200 && ulimit -Hn 600 && exec "$0" --port 0 {flags}"#),
            env!("CARGO_BIN_EXE_wamp-server"),
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("session limit kept below") {
                return line;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        panic!("the binary ended without logging its limits: {seen}");
    })
    .await
    .expect("no limits line within 30 s");
    child.kill().await.unwrap();
    format!("{seen}{line}")
}

/// `--max-connections` sets the session limit when the open-file limit allows it, and is
/// capped below that limit, with a warning saying how to raise it, when it does not.
#[tokio::test]
async fn max_connections_is_honoured_within_the_open_file_limit() {
    let log = limits_line("--max-connections 300").await;
    assert!(log.contains("max_connections=300"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
    let log = limits_line("--max-connections 5000").await;
    assert!(log.contains("max_connections=483"), "{log}");
    assert!(
        log.contains("WARN") && log.contains("requested=5000") && log.contains("ulimit -Hn"),
        "{log}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wamp-server"))
        .args(["--max-connections", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-connections"), "{err}");
}

/// Shutdown does not wait for connections still in their handshakes.
#[tokio::test]
async fn shutdown_drops_pending_handshakes_at_once() {
    let mut server = TestServer::start(test_router().handshake_timeout(LONG).build()).await;
    let mut quiet = silent(server.addr).await;
    let mut c = Client::connect(&format!("ws://{}/ws", server.addr)).await;
    assert!(still_open(&mut quiet).await);
    let started = Instant::now();
    server.stop();
    // The session ends (how is Options::shutdown_close's business, not this test's).
    let ended = tokio::time::timeout(common::WAIT, async {
        use futures::StreamExt;
        while let Some(Ok(m)) = c.ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the session did not end on shutdown");
    // Without this the drain would wait for the grace period + 5 s (10 s) before aborting.
    let waited = wait_dropped(&mut quiet, started).await;
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returns long before the handshake timeout")
        .unwrap()
        .unwrap();
}
