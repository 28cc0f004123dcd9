//! Test harness: a real WAMP v1 server on 127.0.0.1:0 in a background thread, and helpers to
//! run the real `wamp-cli` binary against it.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wamp_server::Router;

/// The tutorial's chat topic.
pub const CHAT: &str = "http://wamptutorial/event#chat";

/// How long any one CLI run may take before the test fails (generous: CI machines are busy).
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// A server running `router` on 127.0.0.1:0 until dropped.
pub struct TestServer {
    pub router: Router,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// The tutorial server.
    pub fn tutorial() -> Self {
        Self::start(wamp_server::tutorial::router())
    }

    /// A server for `router`.
    pub fn start(router: Router) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = router.clone();
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                wamp_server::serve(listener, served, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr: SocketAddr = addr_rx.recv_timeout(RUN_LIMIT).unwrap();
        TestServer {
            router,
            url: format!("ws://{addr}/ws"),
            stop: Some(stop),
        }
    }

    /// `wamp-cli --url <this server> ARGS...`, not yet run.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = cli();
        cmd.arg("--url").arg(&self.url).args(args);
        cmd
    }

    /// Waits until `n` sessions are subscribed to `topic` (SUBSCRIBE has no reply).
    pub fn wait_for_subscribers(&self, topic: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            let subs = self.router.subscribers(topic);
            if subs.len() >= n {
                return subs;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} subscribers on {topic}",
                subs.len()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The server thread winds down on its own; the test does not wait for it.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The `wamp-cli` binary with a clean environment for its variables.
pub fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wamp-cli"));
    for var in [
        "WAMP_URL",
        "WAMP_PREFIXES",
        "WAMP_AUTH_KEY",
        "WAMP_AUTH_SECRET",
        "WAMP_CA_FILE",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs a command to completion within [`RUN_LIMIT`].
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("the wamp-cli binary runs");
    finish(child, RUN_LIMIT)
}

/// Runs a command with `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the wamp-cli binary runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    finish(child, RUN_LIMIT)
}

/// Starts a command in the background (e.g. a subscriber).
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wamp-cli binary runs")
}

/// Waits for a child within `limit` (killing it and failing the test after that), and
/// collects its output.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    // Read the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(out) = out.as_mut() {
            let _ = out.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(err) = err.as_mut() {
            let _ = err.read_to_end(&mut buf);
        }
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wamp-cli did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&err_reader.join().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it is not the one expected.
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// A port on which nothing listens (bound, then released).
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("ws://{addr}/ws")
}

/// A plain TCP server that answers every request with `HTTP 400` and a body, as a WebSocket
/// server that refuses the handshake does.
pub fn refusing_server() -> String {
    refusing_server_with("400 Bad Request", "no WebSocket for you")
}

/// A plain TCP server that answers every request with `status_line` (e.g. `403 Forbidden`)
/// and `body`, written together so that the body arrives with the headers.
pub fn refusing_server_with(status_line: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 {status_line}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
                // Wait for the client to hang up: closing first could reset the connection
                // before the client has read the answer.
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    format!("ws://{addr}/ws")
}
