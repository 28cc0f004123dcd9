//! The handshake rules of `docs/PROTOCOL.md` section 1 over real sockets, on both transports
//! (`serve` and the axum mount), and the tutorial binary's `--allow-origin` flag.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::{test_router, TestServer, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use wamp_server::Router;

/// What came back from a raw handshake: the status line, the headers (names lower-cased) and
/// the body.
#[derive(Debug)]
struct Reply {
    status: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn code(&self) -> u16 {
        self.status
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends an upgrade request with `Host: host` and the extra header lines; reads the reply
/// (the head only for a 101, the whole answer otherwise).
async fn handshake(addr: SocketAddr, host: &str, extra: &[(&str, &str)]) -> Reply {
    let mut lines = Vec::new();
    for (k, v) in extra {
        lines.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    handshake_bytes(addr, host, &lines).await
}

/// As [`handshake`], with the extra header lines as raw bytes (each ending in CRLF).
async fn handshake_bytes(addr: SocketAddr, host: &str, extra: &[u8]) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
    .into_bytes();
    req.extend_from_slice(extra);
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
                break;
            }
            // A refusal: complete once the body announced by Content-Length is in.
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(usize::MAX);
                if body.len() >= len {
                    break;
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete answer to the handshake");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

/// One router configuration served through `serve` and through the axum mount, until the
/// test ends.
struct Both {
    /// Kept: dropping it stops `serve`.
    serve: TestServer,
    axum: SocketAddr,
}

impl Both {
    async fn start(router: impl Fn() -> Router) -> Both {
        let serve = TestServer::start(router()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let axum = listener.local_addr().unwrap();
        let app = wamp_server::tutorial::app(router());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Both { serve, axum }
    }

    fn transports(&self) -> [(&'static str, SocketAddr); 2] {
        [("serve", self.serve.addr), ("axum", self.axum)]
    }
}

#[tokio::test]
async fn origins_on_both_transports() {
    let servers = Both::start(|| {
        test_router()
            .allowed_origins(["https://app.example", "HTTP://Other.Example:3000"])
            .build()
    })
    .await;
    for (name, addr) in &servers.transports() {
        let p = addr.port();
        let local = format!("localhost:{p}");
        let ip = format!("127.0.0.1:{p}");
        let cases: Vec<(String, String, u16)> = vec![
            // Same origin, real Host header as a browser sends it.
            (ip.clone(), format!("http://{ip}"), 101),
            (local.clone(), format!("http://{local}"), 101),
            (local.clone(), format!("HTTP://LOCALHOST:{p}"), 101),
            // Scheme-less: an https page on the same host and port.
            (local.clone(), format!("https://{local}"), 101),
            (format!("[::1]:{p}"), format!("http://[::1]:{p}"), 101),
            // The tricks.
            (local.clone(), format!("http://localhost:{p}.evil.com"), 403),
            (local.clone(), format!("http://localhost:{p}@evil.com"), 403),
            (local.clone(), format!("http://evil.com@localhost:{p}"), 403),
            (local.clone(), format!("http://{local}/"), 403),
            (local.clone(), format!("http://localhost:{}", p ^ 1), 403),
            (local.clone(), format!("http://127.0.0.1:{p}"), 403),
            (local.clone(), format!("http://[::1]:{p}"), 403),
            (local.clone(), "null".to_string(), 403),
            (local.clone(), "http://evil.example".to_string(), 403),
            // The allow-list: exact after lower-casing.
            (local.clone(), "https://app.example".to_string(), 101),
            (local.clone(), "HTTPS://APP.EXAMPLE".to_string(), 101),
            (local.clone(), "http://other.example:3000".to_string(), 101),
            (local.clone(), "http://app.example".to_string(), 403),
            (local.clone(), "https://app.example/".to_string(), 403),
            (local.clone(), "https://app.example:8443".to_string(), 403),
            (
                local.clone(),
                "https://app.example.evil.com".to_string(),
                403,
            ),
            (
                local.clone(),
                "https://app.example@evil.com".to_string(),
                403,
            ),
        ];
        for (host, origin, expected) in cases {
            let r = handshake(
                *addr,
                &host,
                &[("Origin", &origin), ("Sec-WebSocket-Protocol", "wamp")],
            )
            .await;
            assert_eq!(
                r.code(),
                expected,
                "{name}: Host {host}, Origin {origin}: {r:?}"
            );
            if expected == 403 {
                let told = r.body.contains(&format!("--allow-origin {origin} "))
                    || r.body.contains("is not an origin a browser sends");
                assert!(
                    told && r.body.contains(&origin),
                    "{name}: {origin}: {}",
                    r.body
                );
            } else {
                assert_eq!(r.header("sec-websocket-protocol"), ["wamp"], "{name}");
            }
        }
        // Not a browser: no Origin, accepted.
        let r = handshake(*addr, &local, &[("Sec-WebSocket-Protocol", "wamp")]).await;
        assert_eq!(r.code(), 101, "{name}");
    }
}

#[tokio::test]
async fn the_default_allows_only_the_same_origin() {
    let servers = Both::start(|| test_router().build()).await;
    for (name, addr) in &servers.transports() {
        let host = format!("localhost:{}", addr.port());
        let r = handshake(*addr, &host, &[("Origin", &format!("http://{host}"))]).await;
        assert_eq!(r.code(), 101, "{name}");
        let r = handshake(*addr, &host, &[("Origin", "http://localhost:3000")]).await;
        assert_eq!(r.code(), 403, "{name}");
    }
    // `*` lets any origin in.
    let servers = Both::start(|| test_router().allowed_origins(["*"]).build()).await;
    for (name, addr) in &servers.transports() {
        let host = format!("localhost:{}", addr.port());
        for origin in ["http://anything.example", "null"] {
            let r = handshake(*addr, &host, &[("Origin", origin)]).await;
            assert_eq!(r.code(), 101, "{name}: {origin}");
        }
    }
    let servers = Both::start(|| test_router().allowed_origins(["null"]).build()).await;
    for (name, addr) in &servers.transports() {
        let host = format!("localhost:{}", addr.port());
        let r = handshake(*addr, &host, &[("Origin", "null")]).await;
        assert_eq!(r.code(), 101, "{name}");
        let r = handshake(*addr, &host, &[("Origin", "http://anything.example")]).await;
        assert_eq!(r.code(), 403, "{name}");
    }
}

#[tokio::test]
async fn subprotocols_on_both_transports() {
    let servers = Both::start(|| test_router().build()).await;
    for (name, addr) in &servers.transports() {
        let host = addr.to_string();
        // Answered with the token exactly as offered.
        for (offer, answer) in [
            ("wamp", "wamp"),
            ("WAMP", "WAMP"),
            ("chat, Wamp", "Wamp"),
            (" ,wamp,", "wamp"),
        ] {
            let r = handshake(*addr, &host, &[("Sec-WebSocket-Protocol", offer)]).await;
            assert_eq!(
                r.status, "HTTP/1.1 101 Switching Protocols",
                "{name}: {offer}"
            );
            assert_eq!(
                r.header("sec-websocket-protocol"),
                [answer],
                "{name}: {offer}"
            );
        }
        // No header: accepted, and the answer names no subprotocol.
        let r = handshake(*addr, &host, &[]).await;
        assert_eq!(r.code(), 101, "{name}");
        assert!(
            r.header("sec-websocket-protocol").is_empty(),
            "{name}: {r:?}"
        );
        for offer in [
            "wamp2.json",
            "wamp.2.json",
            "mqtt",
            "wamp;v=1",
            "\"wamp\"",
            "wamp x",
        ] {
            let r = handshake(*addr, &host, &[("Sec-WebSocket-Protocol", offer)]).await;
            assert_eq!(
                r.status, "HTTP/1.1 400 Bad Request",
                "{name}: {offer}: {r:?}"
            );
            assert!(
                r.body.contains("offer \"wamp\"") || r.body.contains("offer the WebSocket"),
                "{name}: {offer}: {}",
                r.body
            );
            assert!(r.header("sec-websocket-protocol").is_empty(), "{name}");
        }
        // Bytes that are not text are not a token list either (they used to mean "none").
        let r = handshake_bytes(*addr, &host, b"Sec-WebSocket-Protocol: wamp, \xff\xfe\r\n").await;
        assert_eq!(r.status, "HTTP/1.1 400 Bad Request", "{name}: {r:?}");
        assert!(
            r.body.contains("not a comma-separated list of tokens"),
            "{name}: {}",
            r.body
        );
        // Two headers form one list.
        let r = handshake_bytes(
            *addr,
            &host,
            b"Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: WAMP\r\n",
        )
        .await;
        assert_eq!(r.code(), 101, "{name}: {r:?}");
        assert_eq!(r.header("sec-websocket-protocol"), ["WAMP"], "{name}");
    }
}

/// The tutorial binary on a free port with `args` and `env`; returns it and its port.
async fn binary(args: &[&str], env: &[(&str, &str)]) -> (tokio::process::Child, u16) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wamp-server"));
    cmd.args(["--port", "0"])
        .args(args)
        .env_remove("WAMP_ALLOW_ORIGINS")
        .env_remove("WAMP_PORT")
        .env_remove("WAMP_BIND")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
        .await
        .expect("the server prints its address")
        .unwrap()
        .expect("a listening line");
    let port = line
        .split("localhost:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, port)
}

#[tokio::test]
async fn the_binary_takes_allow_origin_flags_and_the_environment() {
    let (mut flags, port) = binary(
        &[
            "--allow-origin",
            "http://app.example:3000",
            "--allow-origin",
            "HTTPS://Second.Example",
        ],
        &[],
    )
    .await;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("localhost:{port}");
    for (origin, expected) in [
        ("http://app.example:3000", 101),
        ("https://second.example", 101),
        (&*format!("http://{host}"), 101),
        ("http://third.example", 403),
    ] {
        let r = handshake(addr, &host, &[("Origin", origin)]).await;
        assert_eq!(r.code(), expected, "{origin}: {r:?}");
    }
    let r = handshake(addr, &host, &[("Origin", "http://third.example")]).await;
    assert!(
        r.body.contains("--allow-origin http://third.example"),
        "{}",
        r.body
    );
    flags.kill().await.unwrap();

    let (mut env, port) = binary(
        &[],
        &[("WAMP_ALLOW_ORIGINS", "http://a.example,http://b.example:81")],
    )
    .await;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let host = format!("localhost:{port}");
    for (origin, expected) in [
        ("http://a.example", 101),
        ("http://b.example:81", 101),
        ("http://b.example", 403),
    ] {
        let r = handshake(addr, &host, &[("Origin", origin)]).await;
        assert_eq!(r.code(), expected, "{origin}: {r:?}");
    }
    env.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_refuses_a_malformed_origin_and_warns_about_any() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wamp-server"))
        .args(["--port", "0", "--allow-origin", "http://app.example:3000/"])
        .env_remove("WAMP_ALLOW_ORIGINS")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("write http://app.example:3000"), "{err}");

    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wamp-server"));
    cmd.args(["--port", "0", "--allow-origin", "*"])
        .env_remove("WAMP_ALLOW_ORIGINS")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let warned = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = err.next_line().await {
            if line.contains("WARN") && line.contains("ANY web site") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(warned, Ok(true));
    child.kill().await.unwrap();
}
