//! Interoperability tests of our WAMP v1 client against third-party servers.
//!
//! The tests in `tests/tests/` run [`wamp_client`] against
//! - AutobahnPython 0.8.15, the WAMP v1 reference implementation
//!   (`tests/interop/python/ab_server.py`, in the virtualenv that
//!   `tests/interop/python/setup.sh` makes), and
//! - wamp.io 0.0.4, a Node WAMP v1 server (`tests/interop/node/wampio_server.js`, after
//!   `npm ci` in `tests/interop/node`).
//!
//! They are `#[ignore]`d because they need those peers: `tests/interop/run.sh` installs them
//! and runs `cargo test -p wamp-tests -- --ignored` with `WAMP_INTEROP_PYTHON` (the
//! virtualenv's python) and `WAMP_INTEROP_NODE` (node) set.
//!
//! This library starts a peer server on a free port ([`PeerServer::autobahn`],
//! [`PeerServer::wampio`]), waits for its `READY <port>` line, and stops it when dropped. Both
//! peers run with their traffic log on, so that a failing check can tell which side deviated:
//! the peer (its frame is not what its documented behaviour says) or our client (the peer's
//! frame is right but the client made something else of it, or sent the wrong frame).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use wamp_client::{Client, ConnectOptions, Error, PublishOptions, ReconnectPolicy, Subscription};

/// The tutorial's procedures, `http://wamptutorial/rpc#…`.
pub const RPC: &str = "http://wamptutorial/rpc#";
/// The tutorial's topics, `http://wamptutorial/event#…`.
pub const EVENT: &str = "http://wamptutorial/event#";
/// The tutorial's chat topic.
pub const CHAT: &str = "http://wamptutorial/event#chat";
/// The application errors of `ab_server.py`, `http://wamptutorial/error#…`.
pub const APP_ERR: &str = "http://wamptutorial/error#";
/// WAMP v1's error URIs, `http://api.wamp.ws/error#…`.
pub const ERR: &str = "http://api.wamp.ws/error#";

/// How long one step (a connect, a call, an expected event) may take.
pub const STEP: Duration = Duration::from_secs(10);
/// How long a whole test may take.
pub const TEST: Duration = Duration::from_secs(90);
/// How long to wait for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Runs a test body with the [`TEST`] time limit.
pub async fn limited<T>(name: &str, body: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(TEST, body).await {
        Ok(v) => v,
        Err(_) => panic!("{name}: the test did not finish within {TEST:?}"),
    }
}

/// The repository's `tests/interop` directory.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// The virtualenv's python, from `WAMP_INTEROP_PYTHON`; panics with instructions when unset.
pub fn python() -> PathBuf {
    match std::env::var_os("WAMP_INTEROP_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "WAMP_INTEROP_PYTHON is not set. These tests need the AutobahnPython 0.8.15 virtualenv: \
             run tests/interop/run.sh, or set WAMP_INTEROP_PYTHON=\"$(tests/interop/python/setup.sh | \
             tail -n1)/bin/python\" and run `cargo test -p wamp-tests -- --ignored`"
        ),
    }
}

/// The node binary, from `WAMP_INTEROP_NODE` (default `node`); panics when the Node peers'
/// packages are not installed.
pub fn node() -> PathBuf {
    let dir = interop_dir().join("node");
    if !dir.join("node_modules").join("wamp.io").is_dir() {
        panic!(
            "{} has no node_modules/wamp.io: run tests/interop/run.sh (it runs `npm ci` there)",
            dir.display()
        );
    }
    match std::env::var_os("WAMP_INTEROP_NODE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("node"),
    }
}

/// Which direction a logged frame went, seen from the peer server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The peer received it (our client sent it).
    Rx,
    /// The peer sent it.
    Tx,
}

/// One WAMP frame from the peer server's traffic log.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The connection, as the peer's log names it.
    pub conn: String,
    /// Direction.
    pub dir: Dir,
    /// The message.
    pub msg: Value,
}

/// A third-party WAMP v1 server running as a child process; stopped when dropped.
pub struct PeerServer {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
}

static NEXT_LOG: AtomicU32 = AtomicU32::new(0);

impl PeerServer {
    /// Starts `ab_server.py` (AutobahnPython 0.8.15) with `extra` arguments, on a free port,
    /// with its WAMP traffic log on.
    pub fn autobahn(extra: &[&str]) -> PeerServer {
        let script = interop_dir().join("python").join("ab_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .args(["--port", "0", "--lifetime", "300", "--debug"])
            .args(extra);
        Self::spawn("AutobahnPython 0.8.15 (ab_server.py)", cmd)
    }

    /// Starts `wampio_server.js` (wamp.io 0.0.4) on a free port, with its traffic log on.
    pub fn wampio() -> PeerServer {
        let script = interop_dir().join("node").join("wampio_server.js");
        let mut cmd = Command::new(node());
        cmd.arg(script)
            .args(["--port", "0", "--lifetime", "300", "--debug"]);
        Self::spawn("wamp.io 0.0.4 (wampio_server.js)", cmd)
    }

    fn spawn(name: &'static str, mut cmd: Command) -> PeerServer {
        let log = std::env::temp_dir().join(format!(
            "wamp-tests-{}-{}.log",
            std::process::id(),
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let err = File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create the log file {}: {e}", log.display()));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = PeerServer {
            name,
            child,
            port: 0,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(port) = line.strip_prefix("READY ") {
                        server.port = port
                            .trim()
                            .parse()
                            .unwrap_or_else(|_| panic!("{name}: bad READY line {line:?}"));
                        return server;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200));
                    panic!(
                        "{name} exited before READY: {:?}\n{}",
                        server.child.try_wait(),
                        server.log_tail(30)
                    );
                }
            }
            if Instant::now() > deadline {
                panic!("{name}: no READY line within 30 s\n{}", server.log_tail(30));
            }
        }
    }

    /// The peer's name and version.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its WAMP endpoint, `ws://127.0.0.1:<port>/ws`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// The last `n` lines of its log (stderr).
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "--- last {} lines of {} (log {}) ---\n{}",
            lines.len() - start,
            self.name,
            self.log.display(),
            lines[start..].join("\n")
        )
    }

    /// Every WAMP frame in its traffic log so far.
    pub fn frames(&self) -> Vec<Frame> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(parse_log_line).collect()
    }

    /// The last `n` logged frames, one a line, for failure messages.
    pub fn frames_text(&self, n: usize) -> String {
        let frames = self.frames();
        let start = frames.len().saturating_sub(n);
        let mut out = format!(
            "--- last {} WAMP frames logged by {} (RX: from our client) ---\n",
            frames.len() - start,
            self.name
        );
        for f in &frames[start..] {
            let _ = writeln!(out, "[{}] {:?} {}", f.conn, f.dir, f.msg);
        }
        out
    }

    /// Connects our client with test options: no reconnect, [`STEP`] timeouts. Panics, naming
    /// the side at fault, when that fails.
    pub async fn connect(&self) -> Client {
        self.connect_with(options()).await
    }

    /// Connects with the given options; panics with a diagnosis on failure.
    pub async fn connect_with(&self, options: ConnectOptions) -> Client {
        match options.connect(&self.url()).await {
            Ok(c) => c,
            Err(e) => {
                let side = match &e {
                    Error::Subprotocol(_) => {
                        format!("{} did not select the `wamp` subprotocol", self.name)
                    }
                    Error::Handshake(_) | Error::Protocol(_) => format!(
                        "wamp-client rejected the opening of {} (a deviation of ours if the \
                         WELCOME below is a valid [0, sessionId, 1, serverIdent])",
                        self.name
                    ),
                    _ => format!("could not connect to {}", self.name),
                };
                panic!(
                    "connect to {}: {e}\n{side}\n{}",
                    self.url(),
                    self.log_tail(20)
                )
            }
        }
    }

    /// The peer's answer (CALLRESULT or CALLERROR) to the last CALL of `proc` with `args` it
    /// received, from its log.
    pub fn answer_to(&self, proc: &str, args: &[Value]) -> Option<Value> {
        let frames = self.frames();
        let call = frames.iter().rev().find(|f| {
            f.dir == Dir::Rx
                && f.msg.get(0) == Some(&json!(2))
                && f.msg.get(2) == Some(&json!(proc))
                && f.msg.as_array().map(|a| a.get(3..).unwrap_or(&[]) == args) == Some(true)
        })?;
        let id = call.msg.get(1)?.clone();
        frames
            .iter()
            .find(|f| {
                f.dir == Dir::Tx
                    && matches!(f.msg.get(0).and_then(Value::as_u64), Some(3 | 4))
                    && f.msg.get(1) == Some(&id)
            })
            .map(|f| f.msg.clone())
    }

    /// Frames of type `type_id` the peer received (our client sent).
    pub fn received(&self, type_id: u64) -> Vec<Value> {
        self.frames()
            .into_iter()
            .filter(|f| f.dir == Dir::Rx && f.msg.get(0).and_then(Value::as_u64) == Some(type_id))
            .map(|f| f.msg)
            .collect()
    }

    /// Calls `proc` and checks the result is `want`, which is what the peer documents. On a
    /// mismatch the panic message says which side deviated, from the peer's logged answer.
    pub async fn expect_result(&self, client: &Client, proc: &str, args: Vec<Value>, want: Value) {
        let got = client.call(proc, args.clone()).await;
        if matches!(&got, Ok(v) if *v == want) {
            return;
        }
        let expected = |id: &Value| json!([3, id, want]);
        self.call_failure(proc, &args, &format!("CALLRESULT {want}"), expected, &got)
            .await;
    }

    /// Calls `proc` and checks it fails with CALLERROR `uri`, `desc`, `details` (`None`:
    /// a 4-element CALLERROR), which is what the peer documents; a mismatch names the side.
    pub async fn expect_error(
        &self,
        client: &Client,
        proc: &str,
        args: Vec<Value>,
        uri: &str,
        desc: &str,
        details: Option<Value>,
    ) {
        let got = client.call(proc, args.clone()).await;
        if let Err(Error::CallError {
            uri: u,
            desc: d,
            details: x,
        }) = &got
        {
            if u == uri && d == desc && *x == details {
                return;
            }
        }
        let expected = |id: &Value| {
            let mut f = json!([4, id, uri, desc]);
            if let (Some(d), Some(a)) = (&details, f.as_array_mut()) {
                a.push(d.clone());
            }
            f
        };
        let what = format!("CALLERROR {uri} / {desc:?} / details {details:?}");
        self.call_failure(proc, &args, &what, expected, &got).await;
    }

    async fn call_failure(
        &self,
        proc: &str,
        args: &[Value],
        want: &str,
        expected_frame: impl Fn(&Value) -> Value,
        got: &Result<Value, Error>,
    ) -> ! {
        tokio::time::sleep(Duration::from_millis(300)).await; // let the log catch up
        let verdict = match self.answer_to(proc, args) {
            None => format!(
                "{} logged no answer to a CALL {proc} {args:?}: either wamp-client did not send \
                 that CALL (our side) or the peer did not answer it (peer side); see the frames",
                self.name
            ),
            Some(frame) => {
                let id = frame.get(1).cloned().unwrap_or(Value::Null);
                if frame == expected_frame(&id) {
                    format!(
                        "DEVIATION OF OURS (wamp-client): {} sent the expected frame {frame}, \
                         but the client returned {got:?}",
                        self.name
                    )
                } else {
                    format!(
                        "DEVIATION OF THE PEER ({}): it answered {frame}, not what it documents",
                        self.name
                    )
                }
            }
        };
        panic!(
            "CALL {proc} {args:?} against {}: expected {want}, got {got:?}\n{verdict}\n{}",
            self.name,
            self.frames_text(12)
        )
    }

    /// Checks that our client put `want` on the wire for the PUBLISH whose event is `event`
    /// (the exact frame the peer logged); panics naming wamp-client otherwise.
    pub fn expect_publish_wire(&self, event: &Value, want: Value) {
        let sent: Vec<Value> = self
            .received(7)
            .into_iter()
            .filter(|m| m.get(2) == Some(event))
            .collect();
        if sent.len() != 1 || sent[0] != want {
            panic!(
                "DEVIATION OF OURS (wamp-client): the PUBLISH of {event} reached {} as {sent:?}, \
                 expected exactly one {want}\n{}",
                self.name,
                self.frames_text(20)
            );
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{} log kept: {}", self.name, self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Test connect options: no reconnect, [`STEP`] connect and call timeouts.
pub fn options() -> ConnectOptions {
    ConnectOptions::new()
        .connect_timeout(STEP)
        .call_timeout(Some(STEP))
        .reconnect(ReconnectPolicy::never())
}

/// Parses one line of a peer's log into a frame: Autobahn's `[Proto,N,addr] RX WAMP: b'…'` /
/// `TX WAMP: […]`, or wampio_server.js's `[conn N] RX …` / `TX …`.
fn parse_log_line(line: &str) -> Option<Frame> {
    let conn = line
        .find('[')
        .and_then(|s| {
            line[s + 1..]
                .find(']')
                .map(|e| line[s + 1..s + 1 + e].to_string())
        })
        .unwrap_or_default();
    let (dir, rest) = if let Some(i) = line.find(" RX ") {
        (Dir::Rx, &line[i + 4..])
    } else if let Some(i) = line.find(" TX ") {
        (Dir::Tx, &line[i + 4..])
    } else {
        return None;
    };
    let rest = rest.strip_prefix("WAMP: ").unwrap_or(rest).trim();
    let text = match rest
        .strip_prefix("b'")
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| rest.strip_prefix("b\"").and_then(|r| r.strip_suffix('"')))
    {
        Some(repr) => unescape_py_bytes(repr)?,
        None => rest.to_string(),
    };
    let msg: Value = serde_json::from_str(&text).ok()?;
    msg.is_array().then_some(Frame { conn, dir, msg })
}

/// Undoes Python's `repr(bytes)` escaping and decodes UTF-8.
fn unescape_py_bytes(repr: &str) -> Option<String> {
    let mut out = Vec::with_capacity(repr.len());
    let b = repr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1)?;
        i += 2;
        match c {
            b'\\' | b'\'' | b'"' => out.push(c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hex = std::str::from_utf8(b.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Publishes probes (publisher included, `excludeMe: false`) until every subscription has
/// received one: WAMP v1 does not acknowledge SUBSCRIBE, so only then are they in place.
/// Probe events are `{"probe": n}`; [`events_until`] skips them.
pub async fn warm_up(publisher: &Client, topic: &str, subs: &mut [&mut Subscription]) {
    let mut ready = vec![false; subs.len()];
    for n in 0..100 {
        publisher
            .publish_with(
                topic,
                json!({ "probe": n }),
                PublishOptions::new().exclude_me(false),
            )
            .await
            .unwrap_or_else(|e| panic!("publishing a probe failed: {e}"));
        let until = Instant::now() + Duration::from_millis(100);
        for (i, sub) in subs.iter_mut().enumerate() {
            while !ready[i] {
                let left = until.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, sub.next()).await {
                    Ok(Some(ev)) if ev.payload.get("probe").is_some() => ready[i] = true,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("subscription {i} ended while warming up"),
                    Err(_) => break,
                }
            }
        }
        if ready.iter().all(|r| *r) {
            return;
        }
    }
    panic!("subscriptions never became active: ready = {ready:?} (no EVENT for the probes)");
}

/// Collects the payloads of `sub`'s events (probes skipped) until one for which `stop` holds
/// (included). `Err` with what came when no such event arrives within [`STEP`].
pub async fn events_until(
    sub: &mut Subscription,
    mut stop: impl FnMut(&Value) -> bool,
) -> Result<Vec<Value>, Vec<Value>> {
    let mut got = Vec::new();
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sub.next()).await {
            Ok(Some(ev)) => {
                if ev.payload.get("probe").is_some() {
                    continue;
                }
                let last = stop(&ev.payload);
                got.push(ev.payload);
                if last {
                    return Ok(got);
                }
            }
            Ok(None) | Err(_) => return Err(got),
        }
    }
}

/// The `step` names among event payloads `{"step": name}`.
pub fn steps(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.get("step").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_autobahn_log_lines() {
        let rx = r#"2026-11-26 01:20:56+0000 [TutorialServerProtocol,0,127.0.0.1] RX WAMP: b'[2,"c1","http://wamptutorial/rpc#echo","h\xc3\xa9 \\"q\\" \\\\"]'"#;
        let f = parse_log_line(rx).unwrap();
        assert_eq!(f.dir, Dir::Rx);
        assert_eq!(f.conn, "TutorialServerProtocol,0,127.0.0.1");
        assert_eq!(
            f.msg,
            json!([2, "c1", RPC.to_string() + "echo", "hé \"q\" \\"])
        );
        let tx = r#"2026-11-26 01:20:56+0000 [TutorialServerProtocol,0,127.0.0.1] TX WAMP: [3, "c1", "h\u00e9"]"#;
        let f = parse_log_line(tx).unwrap();
        assert_eq!((f.dir, f.msg), (Dir::Tx, json!([3, "c1", "hé"])));
        assert!(parse_log_line("2026 [x] session abc opened").is_none());
    }

    #[test]
    fn parses_wampio_log_lines() {
        let f = parse_log_line(r#"2026-11-26T01:18:51.315Z [conn 3] TX [3,"c1","hi"]"#).unwrap();
        assert_eq!((f.conn.as_str(), f.dir), ("conn 3", Dir::Tx));
        assert_eq!(f.msg, json!([3, "c1", "hi"]));
    }
}
