//! The `idle-sessions` binary against a real router on 127.0.0.1:0: it holds the sessions it
//! says it holds, its probe reaches every subscriber and reports it, and it says how many
//! sessions a server refused instead of failing.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wamp_server::{Router, Topic};

/// Generous: the machine may be busy.
const LIMIT: Duration = Duration::from_secs(60);

/// Serves `router` on 127.0.0.1:0 in a background thread; returns the WAMP URL.
fn serve(router: Router) -> String {
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            wamp_server::serve(listener, router, std::future::pending::<()>())
                .await
                .unwrap();
        });
    });
    format!("ws://{}/ws", addr_rx.recv_timeout(LIMIT).unwrap())
}

/// The idle-sessions process, its stdin, and its stdout lines.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Holder {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_idle-sessions"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("idle-sessions runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Holder {
            child,
            stdin,
            lines,
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(LIMIT)
            .expect("idle-sessions printed a line in time")
    }

    fn command(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    fn probe(&self) -> Value {
        let line = self.line();
        let json = line
            .strip_prefix("PROBE ")
            .unwrap_or_else(|| panic!("not a PROBE line: {line}"));
        serde_json::from_str(json).unwrap()
    }

    /// Closes stdin and waits for a clean exit.
    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            assert!(Instant::now() < deadline, "idle-sessions did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_probe_reaches_every_subscriber_and_says_when() {
    let router = Router::builder()
        .topic(wamp_bench::CHAT, Topic::open())
        .build();
    let url = serve(router.clone());
    let mut holder = Holder::start(&[
        "--url",
        &url,
        "--sessions",
        "300",
        "--parallel",
        "32",
        "--subscribe",
        wamp_bench::CHAT,
    ]);
    assert_eq!(holder.line(), "READY 300");
    // 300 subscribed sessions and the publisher, which is not subscribed.
    assert_eq!(router.session_count(), 301);
    assert_eq!(router.subscribers(wamp_bench::CHAT).len(), 300);

    holder.command("publish first");
    let probe = holder.probe();
    assert_eq!(probe["reached"], 300, "{probe}");
    assert_eq!(probe["of"], 300, "{probe}");
    let sent = probe["sent_unix_ns"].as_u64().unwrap();
    let first = probe["first_unix_ns"].as_u64().unwrap();
    let last = probe["last_unix_ns"].as_u64().unwrap();
    assert!(sent <= first && first <= last, "{probe}");
    let last_ms = probe["last_ms"].as_f64().unwrap();
    assert!(last_ms > 0.0 && last_ms < 30_000.0, "{probe}");
    assert!(
        (last_ms - (last - sent) as f64 / 1e6).abs() < 0.01,
        "{probe}"
    );

    // An event published elsewhere (here: by the router itself) is awaited with `expect`;
    // an event with another token does not count.
    holder.command("expect second");
    assert_eq!(holder.line(), "ARMED second");
    assert_eq!(
        router.publish(
            wamp_bench::CHAT,
            serde_json::json!({ "idle_probe": "other" })
        ),
        300
    );
    router.publish(
        wamp_bench::CHAT,
        serde_json::json!({ "idle_probe": "second" }),
    );
    let probe = holder.probe();
    assert_eq!(probe["reached"], 300, "{probe}");
    assert_eq!(probe["sent_unix_ns"], Value::Null, "{probe}");
    assert!(probe["last_unix_ns"].as_u64().unwrap() >= first, "{probe}");

    // A wrong command is reported on stderr and changes nothing; stdin closed ends it all.
    holder.command("jump");
    holder.command("publish third");
    assert_eq!(holder.probe()["reached"], 300);
    holder.finish();
    wait_until("every session closed", || router.session_count() == 0);
}

#[test]
fn a_probe_nobody_can_receive_times_out_with_what_it_got() {
    let router = Router::builder()
        .topic(wamp_bench::CHAT, Topic::open())
        .build();
    let url = serve(router.clone());
    let mut holder = Holder::start(&[
        "--url",
        &url,
        "--sessions",
        "5",
        "--subscribe",
        wamp_bench::CHAT,
        "--probe-timeout",
        "1",
    ]);
    assert_eq!(holder.line(), "READY 5");
    holder.command("expect never");
    assert_eq!(holder.line(), "ARMED never");
    let probe = holder.probe();
    assert_eq!(probe["reached"], 0, "{probe}");
    assert_eq!(probe["of"], 5, "{probe}");
    assert_eq!(probe["last_unix_ns"], Value::Null, "{probe}");
    holder.finish();
}

#[test]
fn sessions_over_the_servers_limit_are_counted_not_fatal() {
    let router = Router::builder().max_connections(40).build();
    let url = serve(router.clone());
    // Two URLs: the sessions are spread over both (here the same server).
    let holder = Holder::start(&["--url", &url, "--url", &url, "--sessions", "50"]);
    let line = holder.line();
    assert!(line.starts_with("READY 40 failed 10 first: "), "{line}");
    assert!(line.contains("503"), "{line}");
    assert_eq!(router.session_count(), 40);
    holder.finish();
    wait_until("every session closed", || router.session_count() == 0);
}

#[test]
fn at_the_servers_limit_the_probe_still_measures_the_sessions_held() {
    let router = Router::builder()
        .topic(wamp_bench::CHAT, Topic::open())
        .max_connections(21)
        .build();
    let url = serve(router.clone());
    let mut holder = Holder::start(&[
        "--url",
        &url,
        "--sessions",
        "30",
        "--subscribe",
        wamp_bench::CHAT,
    ]);
    // The publisher took its slot first: 20 subscribers got in, 10 were refused.
    let line = holder.line();
    assert!(line.starts_with("READY 20 failed 10 first: "), "{line}");
    assert_eq!(router.subscribers(wamp_bench::CHAT).len(), 20);
    holder.command("publish full");
    let probe = holder.probe();
    assert_eq!(probe["reached"], 20, "{probe}");
    assert_eq!(probe["of"], 20, "{probe}");
    holder.finish();
}
