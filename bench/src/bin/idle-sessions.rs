//! Opens N WAMP sessions to a server, waits for every WELCOME (optionally subscribes each to a
//! topic), then holds them idle until stdin closes, so that the server's memory per idle
//! session, and the time one publish takes to reach all of them, can be read.
//!
//! Run with: `cargo run --release -p wamp-bench --bin idle-sessions -- --url ws://127.0.0.1:9101/ws --sessions 10000`
//! It prints `READY <opened>` once the sessions are open (`READY <opened> failed <n> first:
//! <error>` when some could not be). For `wss://` URLs give the server's CA with `--ca-file`
//! (rustls with the ring provider, ALPN http/1.1). With several `--url`s the sessions are
//! spread over them in turn.
//!
//! With `--subscribe TOPIC` every session subscribes to TOPIC (a full URI), and warm-up
//! events are published (from one more session, not subscribed) until every session has
//! received one (SUBSCRIBE has no acknowledgement), before `READY`. Then commands on stdin,
//! one a line:
//!
//! - `publish TOKEN`: publishes one event `{"idle_probe": TOKEN}` to TOPIC and waits until
//!   every subscribed session has it (or `--probe-timeout`);
//! - `expect TOKEN`: prints `ARMED TOKEN`, then waits the same way for an event that another
//!   process publishes (so that more sessions than one process may open can be measured).
//!
//! Each prints one line `PROBE {json}`: `reached` and `of` (sessions), `sent_unix_ns` (for
//! `publish`), `first_unix_ns` and `last_unix_ns` (the first and last arrival, wall clock, so
//! that processes on one machine can be compared) and `last_ms` (for `publish`: from the send
//! to the last arrival).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures::{Sink, SinkExt, Stream, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use wamp_proto::Message;

#[derive(Parser)]
struct Args {
    /// The server's WAMP endpoint; repeat to spread the sessions over several servers.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// How many sessions to open.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// How many handshakes run at once.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// For wss:// URLs: the PEM CA certificate to trust.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Subscribe every session to this topic (a full URI) and accept `publish`/`expect`
    /// commands on stdin.
    #[arg(long, value_name = "TOPIC")]
    subscribe: Option<String>,
    /// How long a probe waits for the last session, in seconds.
    #[arg(long, default_value_t = 30)]
    probe_timeout: u64,
    /// How long the warm-up waits for every session to receive an event, in seconds.
    #[arg(long, default_value_t = 120)]
    warm_up_timeout: u64,
}

/// The sending half of a session.
type Tx = Pin<Box<dyn Sink<WsMessage, Error = WsError> + Send>>;
/// The receiving half of a session.
type Rx = Pin<Box<dyn Stream<Item = Result<WsMessage, WsError>> + Send>>;

/// The client's WebSocket settings: a small read buffer (tungstenite allocates 128 KiB per
/// connection by default, which 19,000 sessions cannot afford).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// A rustls client configuration trusting the CA certificates in `ca_file`.
fn tls_config(ca_file: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("--ca-file: a PEM file") {
        roots
            .add(cert.expect("--ca-file: PEM certificates"))
            .expect("a CA certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One session: TCP (and TLS for wss://), the WebSocket handshake offering `wamp`, WELCOME.
async fn open(url: String, tls: Option<Arc<rustls::ClientConfig>>) -> Result<(Tx, Rx), String> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp".parse().expect("header"));
    let host = request.uri().host().unwrap_or("127.0.0.1").to_string();
    let port = request.uri().port_u16().unwrap_or(443);
    let (tx, mut rx): (Tx, Rx) = match tls {
        None => {
            let (ws, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)
                    .await
                    .map_err(|e| format!("connect: {e} (raise `ulimit -n`?)"))?;
            let (tx, rx) = ws.split();
            (Box::pin(tx), Box::pin(rx))
        }
        Some(tls) => {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| format!("connect: {e} (raise `ulimit -n`?)"))?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| format!("{host}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e} (is --ca-file the server's CA?)"))?;
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config()))
                    .await
                    .map_err(|e| format!("WebSocket handshake: {e}"))?;
            let (tx, rx) = ws.split();
            (Box::pin(tx), Box::pin(rx))
        }
    };
    // Wait for WELCOME so the session really exists on the server.
    match rx.next().await {
        Some(Ok(WsMessage::Text(text))) => match Message::from_json(&text) {
            Ok(Message::Welcome { .. }) => Ok((tx, rx)),
            _ => Err(format!("expected WELCOME, got {text}")),
        },
        Some(Ok(other)) => Err(format!("expected WELCOME, got {other:?}")),
        Some(Err(e)) => Err(format!("before WELCOME: {e}")),
        None => Err("the server closed before WELCOME".to_string()),
    }
}

/// Nanoseconds since the Unix epoch, now.
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What the session readers and the command loop share.
struct Probe {
    /// The token of the probe being waited for (empty: none).
    armed: Mutex<String>,
    /// Sessions that received the armed probe.
    reached: AtomicU64,
    /// The first and last arrival of the armed probe, ns since the Unix epoch.
    first: AtomicU64,
    last: AtomicU64,
    /// Session `i` received a warm-up event.
    warmed: Vec<AtomicBool>,
}

impl Probe {
    fn arm(&self, token: &str) {
        self.reached.store(0, Ordering::SeqCst);
        self.first.store(u64::MAX, Ordering::SeqCst);
        self.last.store(0, Ordering::SeqCst);
        *self.armed.lock().expect("no reader panics") = token.to_string();
    }

    fn warmed(&self) -> usize {
        self.warmed
            .iter()
            .filter(|w| w.load(Ordering::Relaxed))
            .count()
    }
}

/// Reads session `index`'s frames until it closes, noting warm-up and probe events.
async fn reader(index: usize, mut rx: Rx, probe: Arc<Probe>) {
    while let Some(Ok(frame)) = rx.next().await {
        let WsMessage::Text(text) = frame else {
            continue;
        };
        let Ok(Message::Event { event, .. }) = Message::from_json(&text) else {
            continue;
        };
        if event.get("idle_warm_up").is_some() {
            probe.warmed[index].store(true, Ordering::Relaxed);
            continue;
        }
        let Some(token) = event.get("idle_probe").and_then(Value::as_str) else {
            continue;
        };
        if *probe.armed.lock().expect("no reader panics") == token {
            let now = unix_ns();
            probe.first.fetch_min(now, Ordering::SeqCst);
            probe.last.fetch_max(now, Ordering::SeqCst);
            probe.reached.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Sends one PUBLISH of `event` to `topic`.
async fn publish(tx: &mut Tx, topic: &str, event: Value) -> Result<(), WsError> {
    let frame = Message::Publish {
        topic_uri: topic.to_string(),
        event,
        exclude: None,
        eligible: None,
    }
    .to_json();
    tx.send(WsMessage::text(frame)).await
}

/// Publishes warm-up events until every session has one, or the timeout; returns how many
/// sessions did not get one.
async fn warm_up(tx: &mut Tx, topic: &str, probe: &Probe, limit: Duration) -> usize {
    let until = Instant::now() + limit;
    loop {
        if let Err(e) = publish(tx, topic, json!({ "idle_warm_up": true })).await {
            eprintln!("idle-sessions: warm-up publish failed: {e}");
            return probe.warmed.len() - probe.warmed();
        }
        let next = Instant::now() + Duration::from_millis(200);
        while Instant::now() < next {
            if probe.warmed() == probe.warmed.len() {
                return 0;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if Instant::now() >= until {
            return probe.warmed.len() - probe.warmed();
        }
    }
}

/// Waits until every session has the armed probe or `limit` passes; prints `PROBE {json}`.
async fn wait_probe(probe: &Probe, sent: Option<(u64, Instant)>, limit: Duration) {
    let of = probe.warmed.len() as u64;
    let until = Instant::now() + limit;
    while probe.reached.load(Ordering::SeqCst) < of && Instant::now() < until {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let (reached, first, last) = (
        probe.reached.load(Ordering::SeqCst),
        probe.first.load(Ordering::SeqCst),
        probe.last.load(Ordering::SeqCst),
    );
    let mut report = json!({
        "reached": reached,
        "of": of,
        "first_unix_ns": (reached > 0).then_some(first),
        "last_unix_ns": (reached > 0).then_some(last),
    });
    if let Some((sent_ns, _)) = sent {
        report["sent_unix_ns"] = json!(sent_ns);
        report["last_ms"] = json!((reached > 0).then(|| last.saturating_sub(sent_ns) as f64 / 1e6));
    }
    println!("PROBE {report}");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let secure = args.url.iter().any(|u| u.starts_with("wss:"));
    let tls = match (&args.ca_file, secure) {
        (Some(ca), true) => Some(tls_config(ca)),
        (None, true) => {
            eprintln!("idle-sessions: wss:// needs --ca-file");
            std::process::exit(2);
        }
        _ => None,
    };
    let urls = args.url.clone();
    // The publisher first, so that a server at its session limit still has one.
    let mut publisher = None;
    if args.subscribe.is_some() {
        match open(urls[0].clone(), tls.clone()).await {
            Ok((tx, mut rx)) => {
                // The publisher reads too (answers pings, drains whatever comes).
                tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                publisher = Some(tx);
            }
            Err(e) => eprintln!("idle-sessions: the publisher session did not open: {e}"),
        }
    }
    let results = futures::stream::iter(0..args.sessions)
        .map(|i| open(urls[i % urls.len()].clone(), tls.clone()))
        .buffer_unordered(args.parallel.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut first_error = None;
    let mut sessions = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(session) => sessions.push(session),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let failed = args.sessions - sessions.len();

    let probe = Arc::new(Probe {
        armed: Mutex::new(String::new()),
        reached: AtomicU64::new(0),
        first: AtomicU64::new(0),
        last: AtomicU64::new(0),
        warmed: (0..sessions.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
    });
    let mut senders = Vec::with_capacity(sessions.len());
    if let Some(topic) = &args.subscribe {
        let subscribe = Message::Subscribe {
            topic_uri: topic.clone(),
        }
        .to_json();
        for (i, (mut tx, rx)) in sessions.into_iter().enumerate() {
            if let Err(e) = tx.send(WsMessage::text(subscribe.clone())).await {
                eprintln!("idle-sessions: SUBSCRIBE on session {i} failed: {e}");
            }
            tokio::spawn(reader(i, rx, probe.clone()));
            senders.push(tx);
        }
        if let Some(tx) = publisher.as_mut() {
            let missing =
                warm_up(tx, topic, &probe, Duration::from_secs(args.warm_up_timeout)).await;
            if missing > 0 {
                eprintln!(
                    "idle-sessions: {missing} sessions received no warm-up event within {} s \
                     (is {topic} open to them?)",
                    args.warm_up_timeout
                );
            }
        }
    } else {
        for (i, (tx, rx)) in sessions.into_iter().enumerate() {
            // Reading answers the server's pings, as a live client would.
            tokio::spawn(reader(i, rx, probe.clone()));
            senders.push(tx);
        }
    }
    match first_error {
        Some(e) => println!("READY {} failed {failed} first: {e}", senders.len()),
        None => println!("READY {}", senders.len()),
    }

    // Commands until stdin closes; the sessions are held meanwhile.
    let limit = Duration::from_secs(args.probe_timeout);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next(),
            &args.subscribe,
            publisher.as_mut(),
        ) {
            (Some("publish"), Some(token), Some(topic), Some(tx)) => {
                probe.arm(token);
                let sent = (unix_ns(), Instant::now());
                if let Err(e) = publish(tx, topic, json!({ "idle_probe": token })).await {
                    eprintln!("idle-sessions: probe publish failed: {e}");
                }
                wait_probe(&probe, Some(sent), limit).await;
            }
            (Some("publish"), Some(token), Some(_), None) => {
                eprintln!("idle-sessions: no publisher session, cannot publish {token}");
                probe.arm(token);
                wait_probe(&probe, None, Duration::ZERO).await;
            }
            (Some("expect"), Some(token), Some(_), _) => {
                probe.arm(token);
                println!("ARMED {token}");
                wait_probe(&probe, None, limit).await;
            }
            (None, ..) => {}
            _ => eprintln!(
                "idle-sessions: unknown command {line:?} (publish TOKEN or expect TOKEN, with \
                 --subscribe)"
            ),
        }
    }
    drop(senders);
    drop(publisher);
}
