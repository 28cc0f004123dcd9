//! The tutorial binary over TLS: `--tls-cert`/`--tls-key` (https:// and wss://, the
//! tutorial's WELCOME, a call and an event), and its one-line refusals of bad certificate and
//! key files.

#![cfg(feature = "tls")]

mod tls_support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tls_support::{TestCerts, WssClient};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_wamp-server");

/// Starts the binary with `args` (and `--port 0`) and waits for its listening line.
async fn start(args: &[&std::ffi::OsStr]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("no listening line within 30 s")
    .unwrap();
    (child, line)
}

/// The port in a listening line's `…://localhost:PORT/ws`.
fn port_of(line: &str) -> u16 {
    let ws = line.split_whitespace().last().unwrap();
    let port = ws.rsplit(':').next().unwrap().trim_end_matches("/ws");
    port.parse().unwrap()
}

/// Runs the binary expecting it to refuse to start; returns its exit status and stderr.
async fn refused(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .args(["--port", "0"])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the binary did not exit")
    .unwrap();
    assert!(out.stdout.is_empty(), "no listening line on refusal");
    (out.status, String::from_utf8(out.stderr).unwrap())
}

#[tokio::test]
async fn tls_flags_serve_https_and_wss() {
    let certs = TestCerts::new();
    let dir = tls_support::temp_dir("bin");
    let (cert, key, _) = certs.write(&dir);
    let (mut child, line) = start(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ])
    .await;
    let port = port_of(&line);
    assert_eq!(
        line.trim_end(),
        format!(
            "wamp-server listening: page https://localhost:{port}/  WAMP wss://localhost:{port}/ws"
        )
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = WssClient::connect(addr, "localhost", certs.client_config()).await;
    assert_eq!(
        c.welcome[3],
        format!("wamp-server/{}", env!("CARGO_PKG_VERSION"))
    );
    c.welcome_call_event(
        "http://wamptutorial/rpc#echo",
        "http://wamptutorial/event#chat",
    )
    .await;
    // The page's own https:// origin is allowed (same-origin rule), a foreign one is not.
    for (origin, status) in [
        (format!("https://localhost:{port}"), "HTTP/1.1 101"),
        ("https://evil.example".to_string(), "HTTP/1.1 403"),
    ] {
        let mut tls = tls_support::tls_connect(addr, "localhost", certs.client_config())
            .await
            .unwrap();
        use tokio::io::AsyncWriteExt;
        tls.write_all(
            format!(
                "GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Protocol: wamp\r\nOrigin: {origin}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = vec![0u8; 12];
        tokio::time::timeout(tls_support::WAIT, tls.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&buf), status, "origin {origin}");
    }
    child.kill().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn bad_tls_files_are_refused_with_one_line() {
    let certs = TestCerts::new();
    let dir = tls_support::temp_dir("bad");
    let (cert, key, other) = certs.write(&dir);
    let missing = dir.join("missing.pem");
    let unreadable = dir.join("a-directory.pem");
    std::fs::create_dir(&unreadable).unwrap();
    let cases = [
        (&missing, &key, "cannot read certificate file"),
        (&cert, &missing, "cannot read key file"),
        (&cert, &unreadable, "cannot read key file"),
        (&key, &key, "no PEM certificate"),
        (&cert, &cert, "no PEM private key"),
        (
            &cert,
            &other,
            "the private key does not fit the certificate",
        ),
    ];
    for (c, k, want) in cases {
        let (status, stderr) = refused(&[
            "--tls-cert".as_ref(),
            c.as_os_str(),
            "--tls-key".as_ref(),
            k.as_os_str(),
        ])
        .await;
        assert!(!status.success(), "{c:?} {k:?}: {status}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(want), "{want:?} not in {stderr}");
    }
    // The same through the environment.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .args(["--port", "0"])
            .env("WAMP_TLS_CERT", &cert)
            .env("WAMP_TLS_KEY", &other)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the binary did not exit")
    .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr.contains("the private key does not fit the certificate"),
        "{stderr}"
    );
    // One without the other is a usage error.
    let (status, stderr) = refused(&["--tls-cert".as_ref(), cert.as_os_str()]).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
