//! The tutorial binary's `/ws`: its upgrades are taken before the axum app (`serve_app_at`),
//! so these tests check on the real binary that everything around them still behaves: the
//! pages, a plain GET and malformed upgrades (axum's answers), a kept-alive connection, a
//! pipelined first frame, the origin rule and the connection limit, the handshake timeout,
//! the peer in the session's log lines, and a graceful SIGTERM with a session open.

#![cfg(feature = "bin")]

mod binary_support;
mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use binary_support::{Started, BIN};
use common::{client_frame, read_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// Generous: the machine may be loaded.
const WAIT: Duration = Duration::from_secs(30);

/// The binary on a free port, with its stderr collected.
struct Running {
    started: Started,
    addr: SocketAddr,
}

async fn start(args: &[&str]) -> Running {
    start_with_log(args, Some("info")).await
}

/// [`start`] with `RUST_LOG` set to `rust_log`, or unset.
async fn start_with_log(args: &[&str], rust_log: Option<&str>) -> Running {
    let mut command = Command::new(BIN);
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    command
        .args(["--port", "0"])
        .args(args)
        .env_remove("WAMP_ALLOW_ORIGINS")
        .env_remove("WAMP_MAX_CONNECTIONS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = binary_support::start(command).await;
    let port: u16 = started
        .line
        .split_whitespace()
        .last()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    Running {
        started,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

impl Running {
    /// Waits until the log has a line containing every one of `needles`; returns it.
    async fn log_line(&self, needles: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self
                .started
                .stderr
                .lock()
                .unwrap()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
                .map(str::to_string);
            if let Some(line) = found {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {needles:?} in:\n{}",
                self.started.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM; asserts a clean exit and no panic or error line; returns the log.
    async fn stop(self) -> String {
        let Started {
            mut child,
            stderr,
            capture,
            ..
        } = self.started;
        let pid = child.id().unwrap().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("the server did not exit after SIGTERM")
            .unwrap();
        assert!(exit.success(), "{exit}");
        let _ = tokio::time::timeout(WAIT, capture).await;
        let log = stderr.lock().unwrap().clone();
        assert!(!log.contains("panicked"), "{log}");
        assert!(!log.contains(" ERROR "), "{log}");
        log
    }
}

/// A WebSocket upgrade request for `target` offering `wamp`, with `extra` header lines.
fn upgrade(target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: wamp\r\n{extra}\r\n"
    )
}

/// Reads one HTTP response head byte by byte (nothing after it is consumed), and then its
/// body: `Content-Length` bytes, or, without that header, up to the end of the connection
/// (tungstenite's refusals), none after a 101: (head, body).
async fn response(s: &mut TcpStream) -> (String, String) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(WAIT, s.read(&mut b))
            .await
            .expect("no response")
            .unwrap();
        assert_eq!(n, 1, "the connection ended in the response head: {head:?}");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().unwrap())
    });
    let mut body = Vec::new();
    match length {
        _ if head.starts_with("HTTP/1.1 101") => {}
        Some(n) => {
            body.resize(n, 0);
            tokio::time::timeout(WAIT, s.read_exact(&mut body))
                .await
                .expect("no body")
                .unwrap();
        }
        None => {
            tokio::time::timeout(WAIT, s.read_to_end(&mut body))
                .await
                .expect("the connection stayed open after a body without a length")
                .unwrap();
        }
    }
    (head, String::from_utf8(body).unwrap())
}

/// Sends `request` on a new connection and reads the response.
async fn exchange(addr: SocketAddr, request: &str) -> (TcpStream, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = response(&mut s).await;
    (s, head, body)
}

/// The text of the next server frame, which must be a text frame.
async fn text(s: &mut TcpStream) -> String {
    let (opcode, payload) = read_frame(s).await.expect("the connection ended");
    assert_eq!(opcode, 1, "not a text frame: {payload:?}");
    String::from_utf8(payload).unwrap()
}

#[tokio::test]
async fn pages_plain_gets_and_malformed_upgrades_are_the_apps() {
    let server = start(&[]).await;
    let addr = server.addr;
    let get = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");

    let (_, head, body) = exchange(addr, &get("/")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/html"), "{head}");
    assert!(body.contains("/ws") || body.contains("app.js"), "{body}");
    let (_, head, body) = exchange(addr, &get("/app.js")).await;
    assert!(
        head.starts_with("HTTP/1.1 200") && !body.is_empty(),
        "{head}"
    );

    // A plain GET /ws: axum's answer, as before the upgrades were taken ahead of it.
    let (_, head, body) = exchange(addr, &get("/ws")).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(body, "Connection header did not include 'upgrade'");
    // Malformed upgrades too.
    let no_version = upgrade("/ws", "").replace("Sec-WebSocket-Version: 13\r\n", "");
    let (_, head, _) = exchange(addr, &no_version).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let no_key = upgrade("/ws", "").replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    let (_, head, _) = exchange(addr, &no_key).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let post = upgrade("/ws", "").replacen("GET", "POST", 1);
    let (_, head, _) = exchange(addr, &post).await;
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    // An upgrade to another path is the app's 404.
    let (_, head, _) = exchange(addr, &upgrade("/other", "")).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (_, head, _) = exchange(addr, &upgrade("/ws/sub", "")).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // An upgrade after a page on a kept-alive connection is served by the app's /ws.
    let (mut s, head, _) = exchange(addr, &get("/style.css")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.write_all(upgrade("/ws", "").as_bytes()).await.unwrap();
    let (head, _) = response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: wamp"),
        "{head}"
    );
    // hyper's answer (it dates its responses; tungstenite does not).
    assert!(head.contains("date:"), "{head}");
    assert!(text(&mut s).await.starts_with("[0,"), "no WELCOME");
    server.stop().await;
}

#[tokio::test]
async fn a_taken_upgrade_serves_wamp_and_logs_its_peer() {
    let server = start(&[]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let local = s.local_addr().unwrap();
    s.write_all(upgrade("/ws?client=test", "").as_bytes())
        .await
        .unwrap();
    let (head, _) = response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: wamp"),
        "{head}"
    );
    // Taken before axum: tungstenite's answer, which has no Date header (hyper's has).
    assert!(!head.contains("date:"), "{head}");
    let welcome: serde_json::Value = serde_json::from_str(&text(&mut s).await).unwrap();
    assert_eq!(welcome[0], 0, "{welcome}");
    let id = welcome[1].as_str().unwrap().to_string();
    let call = r#"[2,"c1","http://wamptutorial/rpc#echo","hi"]"#;
    s.write_all(&client_frame(0x81, call.as_bytes()))
        .await
        .unwrap();
    assert_eq!(text(&mut s).await, r#"[3,"c1","hi"]"#);

    // Both INFO lines of the session name its id and this connection's own address.
    let peer = format!("peer={local}");
    let opened = server.log_line(&["session opened", &id]).await;
    assert!(
        opened.contains(" INFO ") && opened.contains(&peer),
        "{opened}"
    );
    s.write_all(&client_frame(0x88, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    let (opcode, _) = read_frame(&mut s).await.expect("no close answer");
    assert_eq!(opcode, 8);
    let closed = server.log_line(&["session closed", &id]).await;
    assert!(
        closed.contains(" INFO ") && closed.contains(&peer),
        "{closed}"
    );
    assert!(closed.contains("reason=\"client\""), "{closed}");
    server.stop().await;
}

/// A frame sent with the request head, before the 101 (RFC 6455 section 4.1: the client
/// must wait for the answer): the handshake fails, as on `serve`, and says so.
#[tokio::test]
async fn a_frame_sent_before_the_answer_fails_the_handshake() {
    let server = start(&[]).await;
    let call = r#"[2,"c1","http://wamptutorial/rpc#echo","hi"]"#;
    let mut bytes = upgrade("/ws", "").into_bytes();
    bytes.extend_from_slice(&client_frame(0x81, call.as_bytes()));
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut rest))
        .await
        .expect("the connection stayed open")
        .unwrap();
    assert!(!rest.starts_with(b"HTTP/1.1 101"), "{rest:?}");
    let line = server.log_line(&["WebSocket handshake failed"]).await;
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn a_taken_upgrade_keeps_the_origin_rule_and_the_connection_limit() {
    let server = start(&["--max-connections", "1"]).await;
    let addr = server.addr;
    let (_, head, body) = exchange(addr, &upgrade("/ws", "Origin: http://evil.example\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(body.contains("http://evil.example"), "{body}");
    let refused = server
        .log_line(&["handshake refused", "reason=\"origin\""])
        .await;
    assert!(refused.contains("peer=127.0.0.1:"), "{refused}");
    // The page's own origin (the request's Host) is allowed.
    let (mut first, head, _) =
        exchange(addr, &upgrade("/ws", "Origin: http://localhost\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(text(&mut first).await.starts_with("[0,"));
    // The one slot is taken.
    let (_, head, body) = exchange(addr, &upgrade("/ws", "")).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(body.contains("connection limit reached"), "{body}");
    server
        .log_line(&["handshake refused", "reason=\"limit\""])
        .await;
    // Freed when the session ends.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (mut s, head, _) = exchange(addr, &upgrade("/ws", "")).await;
        if head.starts_with("HTTP/1.1 101") {
            assert!(text(&mut s).await.starts_with("[0,"));
            break;
        }
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// The binary's handshake timeout is the library's default, 10 s.
#[tokio::test]
async fn an_upgrade_head_that_never_ends_is_dropped_after_the_handshake_timeout() {
    let server = start(&[]).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let since = tokio::time::Instant::now();
    s.write_all(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(40), s.read(&mut buf))
        .await
        .expect("still open after 40 s")
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "expected the connection to be dropped: {:?}",
        &buf[..n]
    );
    let waited = since.elapsed();
    assert!(waited >= Duration::from_secs(9), "dropped after {waited:?}");
    let line = server.log_line(&["handshake not completed in time"]).await;
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn sigterm_with_a_taken_session_open_ends_it_and_exits_cleanly() {
    let server = start(&[]).await;
    let (mut s, head, _) = exchange(server.addr, &upgrade("/ws", "")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(text(&mut s).await.starts_with("[0,"));
    let log = server.stop().await;
    // The session ended with the server (its connection is closed), and said so.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "the session outlived the server");
    assert!(log.contains("session closed"), "{log}");
}

/// Without `RUST_LOG` the binary logs at INFO (a plain level filter); `RUST_LOG` still decides
/// when it is set, in either log format.
#[tokio::test]
async fn the_log_level_is_info_by_default_and_rust_log_decides_when_set() {
    for (rust_log, format, opened, debug) in [
        (None, "text", true, false),
        (None, "json", true, false),
        (Some("warn"), "text", false, false),
        (Some("debug"), "text", true, true),
        (Some("wamp_server=debug"), "json", true, true),
    ] {
        let server = start_with_log(&["--log-format", format], rust_log).await;
        let (mut s, head, _) = exchange(server.addr, &upgrade("/ws", "")).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let welcome: serde_json::Value = serde_json::from_str(&text(&mut s).await).unwrap();
        let id = welcome[1].as_str().unwrap().to_string();
        if opened {
            let line = server
                .log_line(&["session opened", &id, "127.0.0.1:"])
                .await;
            assert_eq!(line.starts_with('{'), format == "json", "{line}");
        }
        s.write_all(&client_frame(0x88, &1000u16.to_be_bytes()))
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
        if opened {
            server.log_line(&["session closed", &id]).await;
        }
        let log = server.stop().await;
        let what = format!("RUST_LOG={rust_log:?} --log-format {format}:\n{log}");
        assert_eq!(log.contains("session opened"), opened, "{what}");
        assert_eq!(log.contains("DEBUG"), debug, "{what}");
        assert!(
            log.contains("shutting down") != (rust_log == Some("warn")),
            "{what}"
        );
    }
}

/// The library call behind the binary: `serve_app_at` takes upgrades to its own path only
/// (here `/wamp`, with the app's route beside it), and `serve_app` takes none.
#[tokio::test]
async fn serve_app_at_takes_only_its_own_path_and_serve_app_none() {
    use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
    use axum::{http::HeaderMap, routing::get, Extension};
    let app = |router: wamp_server::Router| {
        let endpoint = get(
            |State(r): State<wamp_server::Router>,
             peer: Option<Extension<ConnectInfo<SocketAddr>>>,
             headers: HeaderMap,
             ws: WebSocketUpgrade| async move {
                wamp_server::axum_handler_with_peer(r, peer.map(|p| p.0 .0), headers, ws)
            },
        );
        axum::Router::new()
            .route("/", get(|| async { "page" }))
            .route("/wamp", endpoint.clone())
            .route("/ws", endpoint)
            .with_state(router)
    };
    for at in [Some("/wamp"), None] {
        let router = wamp_server::tutorial::router();
        let app = app(router.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            let _ = stop_rx.await;
        };
        let served = tokio::spawn(async move {
            match at {
                Some(path) => wamp_server::serve_app_at(listener, router, app, path, stop).await,
                None => wamp_server::serve_app(listener, router, app, stop).await,
            }
        });
        for target in ["/wamp", "/ws"] {
            let (mut s, head, _) = exchange(addr, &upgrade(target, "")).await;
            assert!(head.starts_with("HTTP/1.1 101"), "{at:?} {target}: {head}");
            let taken = at == Some(target);
            assert_eq!(!head.contains("date:"), taken, "{at:?} {target}: {head}");
            assert!(text(&mut s).await.starts_with("[0,"), "{at:?} {target}");
        }
        let (_, head, body) = exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            head.starts_with("HTTP/1.1 200") && body == "page",
            "{head}{body}"
        );
        stop_tx.send(()).unwrap();
        tokio::time::timeout(WAIT, served)
            .await
            .expect("serve_app did not stop")
            .unwrap()
            .unwrap();
    }
}
