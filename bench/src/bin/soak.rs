//! The soak: starts a server process, drives it with mixed, hostile and churning traffic on
//! loopback for a while, and checks it for panics, leaked connections and memory growth.
//!
//! Run with `bash scripts/soak` (builds in release, runs the tutorial server for 60 s), or
//! `cargo run --release -p wamp-bench --bin soak -- --server target/release/wamp-server`.
//! Exits non-zero if the server log shows a panic, its resident memory at the end is more
//! than `--max-growth` percent above the start (after warm-up), its open descriptors do not
//! come back to where they were before the traffic, or a well-behaved client saw a wrong or
//! missing answer.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::WebSocketStream;
use wamp_proto::cra::{client_signature, Auth, AuthReq};
use wamp_proto::uri::{PROC_AUTH, PROC_AUTHREQ};
use wamp_proto::{Exclude, Message};

#[derive(Parser)]
#[command(about = "Soak a WAMP v1 server with mixed, hostile and churning traffic")]
struct Args {
    /// The server binary to run: it must serve the tutorial's procedures, chat topic and
    /// WAMP-CRA user `guest`, and print a line with its `ws://…:PORT/ws` URL on stdout (the
    /// tutorial server `wamp-server` does).
    #[arg(long, default_value = "target/release/wamp-server")]
    server: PathBuf,
    /// Arguments for the server (default: `--port 0`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Seconds of measured traffic.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds of the same traffic before the start RSS is taken.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Clients of each kind running at once (rpc, pubsub, ping, hostile, auth).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Where the server's stderr (its log) goes.
    #[arg(long, default_value = "target/soak/server.log")]
    log: PathBuf,
    /// Most growth of resident memory from start to end, in percent.
    #[arg(long, default_value_t = 10.0)]
    max_growth: f64,
    /// Seed of the pseudo-random choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

/// The tutorial's URIs.
const ECHO: &str = wamp_bench::ECHO;
const CHAT: &str = wamp_bench::CHAT;
const RPC: &str = "http://wamptutorial/rpc#";
/// How long any one step of a client may take before it counts as a failure.
const STEP: Duration = Duration::from_secs(15);

/// A small xorshift generator: the soak needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the clients counted.
#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    calls: AtomicU64,
    events: AtomicU64,
    pings: AtomicU64,
    hostile: AtomicU64,
    auths: AtomicU64,
    /// Wrong or missing answers to well-behaved clients.
    failures: AtomicU64,
    /// How hostile connections ended: close code (or "none") → count.
    endings: Mutex<BTreeMap<String, u64>>,
    /// The first few failures, for the summary.
    failure_notes: Mutex<Vec<String>>,
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut notes = self.failure_notes.lock().unwrap();
        if notes.len() < 10 {
            notes.push(what);
        }
    }

    fn ended(&self, how: String) {
        *self.endings.lock().unwrap().entry(how).or_default() += 1;
    }
}

type Socket = WebSocketStream<TcpStream>;

/// Everything a client needs.
#[derive(Clone)]
struct Ctx {
    port: u16,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

impl Ctx {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// A WAMP session over tokio-tungstenite (Nagle off), its WELCOME read.
    async fn connect(&self) -> Result<(Socket, String), String> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).ok();
        let mut request = format!("ws://127.0.0.1:{}/ws", self.port)
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        Stats::add(&self.stats.connections, 1);
        match next_message(&mut ws).await? {
            Message::Welcome { session_id, .. } => Ok((ws, session_id)),
            other => Err(format!("expected WELCOME, got {}", other.name())),
        }
    }

    /// A raw TCP connection through the WebSocket handshake (the response head read).
    async fn raw(&self) -> Result<TcpStream, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).ok();
        s.write_all(handshake_request(self.port, "wamp").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let head = read_head(&mut s).await?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(format!("handshake refused: {head}"));
        }
        Stats::add(&self.stats.connections, 1);
        Ok(s)
    }
}

fn handshake_request(port: u16, protocol: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    )
}

/// Reads an HTTP response head byte by byte (nothing after it is consumed).
async fn read_head(s: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        match tokio::time::timeout(STEP, s.read(&mut b)).await {
            Ok(Ok(1)) => head.push(b[0]),
            Ok(Ok(_)) => break,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timed out reading the response head".into()),
        }
        if head.len() > 16 * 1024 {
            return Err("response head too long".into());
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The next WAMP message (pings and pongs skipped).
async fn next_message(ws: &mut Socket) -> Result<Message, String> {
    loop {
        let frame = tokio::time::timeout(STEP, ws.next())
            .await
            .map_err(|_| "timed out waiting for a message".to_string())?
            .ok_or("connection ended")?
            .map_err(|e| format!("read: {e}"))?;
        match frame {
            Ws::Text(t) => return Message::from_json(&t).map_err(|e| format!("bad frame: {e}")),
            Ws::Ping(_) | Ws::Pong(_) => continue,
            other => return Err(format!("unexpected frame {other:?}")),
        }
    }
}

/// Ends a connection one of several abrupt or clean ways.
async fn hang_up(mut ws: Socket, rng: &mut Rng) {
    match rng.below(5) {
        0 => {
            let _ = tokio::time::timeout(STEP, ws.close(None)).await;
        }
        1 => {
            // TCP reset.
            let _ = ws.get_ref().set_zero_linger();
        }
        2 => {
            // Mid-frame: a header announcing 1,000 bytes, then only a few, then a reset.
            let _ = ws
                .get_mut()
                .write_all(&[0x81, 0x80 | 126, 0x03, 0xe8])
                .await;
            let _ = ws.get_mut().write_all(&[0, 0, 0, 0, b'[', b'2']).await;
            let _ = ws.get_ref().set_zero_linger();
        }
        3 => {
            // Mid-frame, then a plain FIN.
            let _ = ws.get_mut().write_all(&[0x81, 0x80 | 40, 1, 2]).await;
            let _ = ws.get_mut().shutdown().await;
        }
        _ => {} // just dropped (FIN)
    }
}

/// A CALL frame built by wamp-proto.
fn call(call_id: &str, proc_uri: &str, args: Vec<Value>) -> Ws {
    Ws::text(
        Message::Call {
            call_id: call_id.into(),
            proc_uri: proc_uri.into(),
            args,
        }
        .to_json(),
    )
}

/// Calls with up to 8 in flight; checks each answer; hangs up at random, sometimes with
/// calls still in flight.
async fn rpc_client(ctx: Ctx, mut rng: Rng) {
    while ctx.running() {
        let (mut ws, _) = match ctx.connect().await {
            Ok(c) => c,
            Err(e) => {
                ctx.stats.fail(format!("rpc connect: {e}"));
                continue;
            }
        };
        let total = 1 + rng.below(300);
        let abandon = rng.chance(10);
        let mut expected: BTreeMap<String, Result<Value, String>> = BTreeMap::new();
        let mut sent = 0;
        let mut ok = true;
        while ok && (sent < total || !expected.is_empty()) {
            while sent < total && expected.len() < 8 {
                let id = format!("c{sent}");
                let (frame, answer) = match rng.below(10) {
                    0 => (call(&id, "rpc:add", vec![json!(2), json!(3)]), Ok(json!(5))),
                    1 => (
                        call(&id, &format!("{RPC}throw"), vec![]),
                        Err("http://api.wamp.ws/error#internal".to_string()),
                    ),
                    2 => (
                        call(&id, &format!("{RPC}nope"), vec![]),
                        Err("http://api.wamp.ws/error#notfound".to_string()),
                    ),
                    3 => {
                        let payload = "x".repeat(rng.below(64 * 1024) as usize);
                        (
                            call(&id, "rpc:echo", vec![json!(payload)]),
                            Ok(json!(payload)),
                        )
                    }
                    _ => {
                        let n = rng.next();
                        (
                            call(&id, ECHO, vec![json!({ "n": n })]),
                            Ok(json!({ "n": n })),
                        )
                    }
                };
                if let Err(e) = ws.send(frame).await {
                    ctx.stats.fail(format!("rpc send: {e}"));
                    ok = false;
                    break;
                }
                expected.insert(id, answer);
                sent += 1;
            }
            if abandon && sent > total / 2 {
                break;
            }
            if !ok || expected.is_empty() {
                break;
            }
            let answer = match next_message(&mut ws).await {
                Ok(Message::CallResult { call_id, result }) => (call_id, Ok(result)),
                Ok(Message::CallError {
                    call_id, error_uri, ..
                }) => (call_id, Err(error_uri)),
                Ok(other) => {
                    ctx.stats.fail(format!("rpc: unexpected {}", other.name()));
                    break;
                }
                Err(e) => {
                    ctx.stats.fail(format!("rpc: {e}"));
                    break;
                }
            };
            match expected.remove(&answer.0) {
                Some(want) if want == answer.1 => Stats::add(&ctx.stats.calls, 1),
                Some(want) => {
                    ctx.stats.fail(format!(
                        "rpc {}: got {:?}, want {want:?}",
                        answer.0, answer.1
                    ));
                    ok = false;
                }
                None => {
                    ctx.stats
                        .fail(format!("rpc: answer to unknown call {}", answer.0));
                    ok = false;
                }
            }
        }
        hang_up(ws, &mut rng).await;
    }
}

/// Subscribes to the chat, publishes tagged events (receiving its own), reads what others
/// publish; sometimes unsubscribes, sometimes stops reading for a while; hangs up at random.
async fn pubsub_client(ctx: Ctx, mut rng: Rng, me: usize) {
    let mut life = 0u64;
    while ctx.running() {
        life += 1;
        let (mut ws, _) = match ctx.connect().await {
            Ok(c) => c,
            Err(e) => {
                ctx.stats.fail(format!("pubsub connect: {e}"));
                continue;
            }
        };
        let topic = if rng.chance(50) { "event:chat" } else { CHAT };
        let subscribe = Message::Subscribe {
            topic_uri: topic.into(),
        };
        let tag = format!("p{me}-{life}");
        let count = 1 + rng.below(200);
        let mut ok = ws.send(Ws::text(subscribe.to_json())).await.is_ok();
        let mut mine = 0;
        for i in 0..count {
            if !ok {
                break;
            }
            let publish = Message::Publish {
                topic_uri: topic.into(),
                event: json!({ "from": tag, "i": i, "pad": "y".repeat(rng.below(2048) as usize) }),
                exclude: Some(Exclude::Me(false)),
                eligible: None,
            };
            ok = ws.send(Ws::text(publish.to_json())).await.is_ok();
        }
        // Read until every own event came back (others' events arrive between them).
        while ok && mine < count {
            match next_message(&mut ws).await {
                Ok(Message::Event { event, .. }) => {
                    Stats::add(&ctx.stats.events, 1);
                    if event["from"] == tag.as_str() {
                        mine += 1;
                    }
                }
                Ok(other) => {
                    ctx.stats
                        .fail(format!("pubsub: unexpected {}", other.name()));
                    ok = false;
                }
                Err(e) => {
                    ctx.stats
                        .fail(format!("pubsub {tag}: {e} ({mine}/{count} own events)"));
                    ok = false;
                }
            }
        }
        if ok && rng.chance(30) {
            let unsubscribe = Message::Unsubscribe {
                topic_uri: CHAT.into(),
            };
            let _ = ws.send(Ws::text(unsubscribe.to_json())).await;
        }
        if ok && rng.chance(10) {
            // A subscriber that stops reading for a while (others keep publishing).
            tokio::time::sleep(Duration::from_millis(500 + rng.below(1500))).await;
        }
        hang_up(ws, &mut rng).await;
    }
}

/// WebSocket pings: most lives read their pongs, some never read and hang up later.
async fn ping_client(ctx: Ctx, mut rng: Rng) {
    while ctx.running() {
        let (mut ws, _) = match ctx.connect().await {
            Ok(c) => c,
            Err(e) => {
                ctx.stats.fail(format!("ping connect: {e}"));
                continue;
            }
        };
        let reads = rng.chance(80);
        let n = 1 + rng.below(if reads { 500 } else { 20_000 });
        let mut sent = 0;
        for _ in 0..n {
            let payload = vec![b'p'; rng.below(126) as usize];
            if ws.send(Ws::Ping(payload.into())).await.is_err() {
                break;
            }
            sent += 1;
        }
        Stats::add(&ctx.stats.pings, sent);
        if reads {
            // A queued pong may be replaced by a newer one, so not every ping gets its own:
            // read until a CALL sent after the pings is answered.
            if ws
                .send(call("after", ECHO, vec![json!(sent)]))
                .await
                .is_err()
            {
                ctx.stats.fail("ping: the session ended under pings".into());
            }
            loop {
                match tokio::time::timeout(STEP, ws.next()).await {
                    Ok(Some(Ok(Ws::Pong(_)))) => {}
                    Ok(Some(Ok(Ws::Text(t)))) => {
                        match Message::from_json(&t) {
                            Ok(Message::CallResult { result, .. }) if result == json!(sent) => {
                                Stats::add(&ctx.stats.calls, 1)
                            }
                            other => ctx.stats.fail(format!("ping: answer {other:?}")),
                        }
                        break;
                    }
                    other => {
                        ctx.stats
                            .fail(format!("ping: after {sent} pings, {other:?}"));
                        break;
                    }
                }
            }
        }
        hang_up(ws, &mut rng).await;
    }
}

/// WAMP-CRA with the tutorial's guest user: right or wrong signatures, then `whoami`.
async fn auth_client(ctx: Ctx, mut rng: Rng) {
    while ctx.running() {
        let (mut ws, _) = match ctx.connect().await {
            Ok(c) => c,
            Err(e) => {
                ctx.stats.fail(format!("auth connect: {e}"));
                continue;
            }
        };
        let right = rng.chance(70);
        let result = async {
            let req = AuthReq {
                authkey: Some("guest".into()),
                extra: None,
            };
            ws.send(call("r", PROC_AUTHREQ, req.to_args()))
                .await
                .map_err(|e| e.to_string())?;
            let challenge = match next_message(&mut ws).await? {
                Message::CallResult { result, .. } => result.as_str().unwrap_or("").to_string(),
                other => return Err(format!("authreq answered with {}", other.name())),
            };
            let password = if right { "secret-password" } else { "wrong" };
            let signature = client_signature(&challenge, password).map_err(|e| e.to_string())?;
            let auth = Auth {
                signature: Some(signature),
            };
            ws.send(call("a", PROC_AUTH, auth.to_args()))
                .await
                .map_err(|e| e.to_string())?;
            // Whatever the outcome, the session keeps answering calls meanwhile.
            ws.send(call("e", ECHO, vec![json!("beside")]))
                .await
                .map_err(|e| e.to_string())?;
            let mut authed = None;
            let mut echoed = false;
            while authed.is_none() || !echoed {
                match next_message(&mut ws).await? {
                    Message::CallResult { call_id, .. } if call_id == "a" => authed = Some(true),
                    Message::CallError { call_id, .. } if call_id == "a" => authed = Some(false),
                    Message::CallResult { call_id, .. } if call_id == "e" => echoed = true,
                    other => return Err(format!("unexpected {}", other.name())),
                }
            }
            if authed != Some(right) {
                return Err(format!("auth with a right={right} signature: {authed:?}"));
            }
            ws.send(call("w", &format!("{RPC}whoami"), vec![]))
                .await
                .map_err(|e| e.to_string())?;
            match next_message(&mut ws).await? {
                Message::CallResult { result, .. } if right && result == "guest" => Ok(()),
                Message::CallError { .. } if !right => Ok(()),
                other => Err(format!("whoami: {other:?}")),
            }
        }
        .await;
        match result {
            Ok(()) => Stats::add(&ctx.stats.auths, 1),
            Err(e) => ctx.stats.fail(format!("auth: {e}")),
        }
        hang_up(ws, &mut rng).await;
    }
}

/// A masked client frame with a zero key.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn text(s: &str) -> Vec<u8> {
    frame(0x81, s.as_bytes())
}

/// One hostile act after the handshake: the bytes to send.
fn hostile_bytes(rng: &mut Rng) -> Vec<u8> {
    match rng.below(14) {
        0 => text("not json"),
        1 => text(r#"{"an": "object"}"#),
        2 => text(r#"[99, "unknown type"]"#),
        3 => text(r#"[0, "x", 1, "a WELCOME from a client"]"#),
        4 => frame(0x82, b"binary"),
        5 => frame(0x81, &[b'"', 0xff, 0xfe, b'"']), // invalid UTF-8
        6 => {
            let mut f = frame(0x81, b"[2,\"x\",\"rpc:echo\"]");
            f[1] &= 0x7f; // unmasked (the mask key bytes stay, as garbage)
            f
        }
        7 => frame(0x83, b"reserved opcode"),
        8 => frame(0x80, b"continuation without a start"),
        9 => frame(0x89, &[b'p'; 126]), // control frame over 125 bytes
        10 => frame(0x88, &[3]),        // 1-byte close payload
        11 => {
            // A message over 1 MiB (announced; only part of it is sent).
            let mut f = vec![0x81, 0x80 | 127];
            f.extend_from_slice(&(2u64 << 20).to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0]);
            f.extend_from_slice(&[b' '; 4096]);
            f
        }
        12 => {
            // More prefixes than a session may define.
            let mut f = Vec::new();
            for i in 0..1100 {
                f.extend(text(&format!(r#"[1,"p{i}","http://example.com/{i}#"]"#)));
            }
            f
        }
        _ => {
            // A URI past the length limit, or JSON nested past the parser's depth.
            if rng.chance(50) {
                let uri = format!("http://example.com/{}", "u".repeat(3000));
                text(&format!(r#"[5,"{uri}"]"#))
            } else {
                let deep = format!(
                    "[2,\"x\",\"rpc:echo\",{}{}]",
                    "[".repeat(5000),
                    "]".repeat(5000)
                );
                text(&deep)
            }
        }
    }
}

/// Hostile connections: broken handshakes, protocol violations, oversize and over-limit
/// input; records how the server ended each one.
async fn hostile_client(ctx: Ctx, mut rng: Rng) {
    while ctx.running() {
        Stats::add(&ctx.stats.hostile, 1);
        let kind = rng.below(10);
        if kind < 3 {
            // Handshake-level: garbage, a wrong subprotocol, or a handshake left unfinished.
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", ctx.port)).await else {
                ctx.stats.fail("hostile connect failed".into());
                continue;
            };
            let how = match kind {
                0 => {
                    let _ = s.write_all(b"GARBAGE \x00\x01\x02 HTTP/9\r\n\r\n").await;
                    read_head(&mut s).await.unwrap_or_default()
                }
                1 => {
                    let _ = s
                        .write_all(handshake_request(ctx.port, "wamp2.json").as_bytes())
                        .await;
                    read_head(&mut s).await.unwrap_or_default()
                }
                _ => {
                    let _ = s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await;
                    tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
                    "unfinished".to_string()
                }
            };
            let ending = match how.split_whitespace().nth(1) {
                _ if kind == 2 => "handshake left unfinished".to_string(),
                Some(status) => format!("http {status}"),
                None => "http: no answer".to_string(),
            };
            ctx.stats.ended(ending);
            if rng.chance(50) {
                let _ = s.set_zero_linger();
            }
            continue;
        }
        let mut s = match ctx.raw().await {
            Ok(s) => s,
            Err(e) => {
                ctx.stats.fail(format!("hostile: {e}"));
                continue;
            }
        };
        let bytes = hostile_bytes(&mut rng);
        if s.write_all(&bytes).await.is_err() {
            ctx.stats.ended("write failed".into());
            continue;
        }
        let code = read_close_code(&mut s).await;
        ctx.stats.ended(code);
        if rng.chance(50) {
            let _ = s.set_zero_linger();
        }
    }
}

/// Reads server frames until a close frame: its code, or how the connection ended.
async fn read_close_code(s: &mut TcpStream) -> String {
    let read = async {
        loop {
            let mut head = [0u8; 2];
            s.read_exact(&mut head).await.ok()?;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                s.read_exact(&mut b).await.ok()?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                s.read_exact(&mut b).await.ok()?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; usize::try_from(len).ok()?];
            s.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == 8 {
                return Some(if payload.len() >= 2 {
                    format!("close {}", u16::from_be_bytes([payload[0], payload[1]]))
                } else {
                    "close without code".to_string()
                });
            }
        }
    };
    match tokio::time::timeout(STEP, read).await {
        Ok(Some(code)) => code,
        Ok(None) => "ended without close".into(),
        Err(_) => "no close in time".into(),
    }
}

/// The server process under soak.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(args: &Args) -> Result<Server, String> {
        if let Some(dir) = args.log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let log =
            std::fs::File::create(&args.log).map_err(|e| format!("{}: {e}", args.log.display()))?;
        let server_args = if args.server_args.is_empty() {
            vec!["--port".to_string(), "0".to_string()]
        } else {
            args.server_args.clone()
        };
        let mut child = Command::new(&args.server)
            .args(&server_args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {}: {e} (build it first: cargo build --release -p wamp-server -p wamp-bench)",
                    args.server.display()
                )
            })?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                return Err("the server exited before printing its ws:// URL".into());
            };
            if let Some(port) = parse_port(&line) {
                break port;
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, port })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then up to 15 s for a graceful exit; killed after that.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("{status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not exit within 15 s of SIGTERM (killed)".into()
    }
}

/// The port of the first `ws://host:PORT/ws` in a line.
fn parse_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("ws://")? + 5..];
    let hostport = &rest[..rest.find('/')?];
    hostport.rsplit(':').next()?.parse().ok()
}

/// The process's resident memory in KiB (VmRSS).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The process's open file descriptors.
fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Starts every client; they run until `stop` is set.
fn start_clients(ctx: &Ctx, clients: usize, seed: u64) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in 0..clients {
        let rng = |k: u64| {
            Rng(seed
                ^ (i as u64 + 1)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .wrapping_add(k)
                | 1)
        };
        tasks.push(tokio::spawn(rpc_client(ctx.clone(), rng(1))));
        tasks.push(tokio::spawn(pubsub_client(ctx.clone(), rng(2), i)));
        tasks.push(tokio::spawn(ping_client(ctx.clone(), rng(3))));
        tasks.push(tokio::spawn(hostile_client(ctx.clone(), rng(4))));
        tasks.push(tokio::spawn(auth_client(ctx.clone(), rng(5))));
    }
    tasks
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let server = match Server::start(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let pid = server.pid();
    println!(
        "soak: {} (pid {pid}) on port {}, {} clients of each kind, {} s warm-up + {} s, seed {seed}",
        args.server.display(),
        server.port,
        args.clients,
        args.warmup,
        args.duration
    );
    // Let the server settle, then note its idle descriptors and memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_fds = open_fds(pid).unwrap_or(0);
    let idle_rss = rss_kib(pid).unwrap_or(0);

    let ctx = Ctx {
        port: server.port,
        stats: Arc::new(Stats::default()),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let clients = start_clients(&ctx, args.clients, seed);

    // Sample memory every 100 ms: the start is the highest sample of the warm-up's last
    // second, the peak the highest of the measured window.
    let warmup_end = Instant::now() + Duration::from_secs(args.warmup);
    let end = warmup_end + Duration::from_secs(args.duration);
    let mut start_rss = 0;
    let mut peak_rss = 0;
    let mut alive = true;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(rss) = rss_kib(pid) else {
            alive = false;
            break;
        };
        let now = Instant::now();
        if now < warmup_end {
            if now + Duration::from_secs(1) >= warmup_end {
                start_rss = start_rss.max(rss);
            }
        } else {
            if start_rss == 0 {
                start_rss = rss;
            }
            peak_rss = peak_rss.max(rss);
        }
    }
    ctx.stop.store(true, Ordering::Relaxed);
    for task in clients {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    // Every client is gone: wait for the server to let go of their connections.
    let settle = Instant::now() + Duration::from_secs(30);
    let mut end_fds = open_fds(pid).unwrap_or(usize::MAX);
    while alive && end_fds > idle_fds && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(200)).await;
        end_fds = open_fds(pid).unwrap_or(usize::MAX);
    }
    let end_rss = rss_kib(pid).unwrap_or(u64::MAX);
    let exit = if alive {
        server.stop()
    } else {
        "died during the soak".to_string()
    };

    let log = std::fs::read_to_string(&args.log).unwrap_or_default();
    let panics = log.lines().filter(|l| l.contains("panicked")).count();
    let warns = log.lines().filter(|l| l.contains(" WARN ")).count();
    let stats = &ctx.stats;
    let growth = (end_rss as f64 / start_rss.max(1) as f64 - 1.0) * 100.0;
    println!("--- soak summary ---");
    println!(
        "connections {}  calls answered {}  events received {}  pings {}  CRA logins {}  hostile {}",
        stats.connections.load(Ordering::Relaxed),
        stats.calls.load(Ordering::Relaxed),
        stats.events.load(Ordering::Relaxed),
        stats.pings.load(Ordering::Relaxed),
        stats.auths.load(Ordering::Relaxed),
        stats.hostile.load(Ordering::Relaxed),
    );
    let endings: Vec<String> = stats
        .endings
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    println!("hostile endings: {}", endings.join(", "));
    println!(
        "RSS idle {}  start {}  peak {}  end {} ({growth:+.1}% from start)",
        mib(idle_rss),
        mib(start_rss),
        mib(peak_rss),
        mib(end_rss)
    );
    println!("open fds idle {idle_fds}  end {end_fds}");
    println!(
        "server log {}: {panics} panics, {warns} warn lines; server exit: {exit}",
        args.log.display()
    );
    let failures = stats.failures.load(Ordering::Relaxed);
    println!("client failures {failures}");
    for note in stats.failure_notes.lock().unwrap().iter() {
        println!("  {note}");
    }
    let mut verdict = Vec::new();
    if !alive {
        verdict.push("the server died".to_string());
    }
    if panics > 0 {
        verdict.push(format!("{panics} panics in the server log"));
    }
    if growth > args.max_growth {
        verdict.push(format!("RSS grew {growth:.1}% (> {}%)", args.max_growth));
    }
    if end_fds > idle_fds {
        verdict.push(format!("{} descriptors not released", end_fds - idle_fds));
    }
    if failures > 0 {
        verdict.push(format!("{failures} client failures"));
    }
    if verdict.is_empty() {
        println!("PASS");
        std::process::ExitCode::SUCCESS
    } else {
        println!("FAIL: {}", verdict.join("; "));
        std::process::ExitCode::FAILURE
    }
}
