//! `RedisBackplane` (cargo feature `redis`): router nodes in several processes exchange their
//! publications over Redis pub/sub, one channel per topic, with their own reconnect loop and
//! a heartbeat on a control channel.
//!
//! - Channels: `<prefix>:t:<topic URI>` per topic, subscribed only while this node has local
//!   subscribers of the topic (unsubscribed about a second after the last leaves), and
//!   `<prefix>:ctl` for heartbeats and cluster requests.
//! - A topic message is a one-line JSON header (`{"v":1,"n":origin,"s":seq,"x":exclude,
//!   "e":eligible}`), a newline, then the EVENT frame exactly as the origin serialised it.
//!   Receivers drop their own echoes, count gaps in each origin's sequence numbers and queue
//!   the frame's bytes for their local sessions without parsing them.
//! - Publishing never waits on Redis: events go into a bounded queue (the newest dropped and
//!   counted when it is full) that one task sends, pipelined, on one connection, so each
//!   node's order is kept. While Redis is unreachable, events are dropped and counted
//!   (at-most-once delivery); local serving is unaffected.
//! - Both connections reconnect with backoff (100 ms doubling to 5 s, with jitter); the
//!   subscription connection resubscribes every wanted channel. Each node's heartbeat on the
//!   control channel tells the others it is alive, and tells the node itself that its
//!   subscription still receives: a subscription that misses its own heartbeats is replaced.
//! - One warn log line per state change (connected / lost), not per retry.
//!
//! Redis is trusted: whatever is published on the topic channels with a well-formed header is
//! delivered to local subscribers (checked only to be UTF-8). Keep Redis on a private network.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{
    node_id, Backplane, BackplaneStatus, ClusterReplies, ClusterReply, ClusterRequest, Counters,
    LocalNode, RemoteEvent,
};
use crate::handler::BoxFuture;
use crate::transport::Text;

/// The header format version this node writes and reads.
const VERSION: u64 = 1;
/// How long a connection attempt or one command may take before the connection counts as
/// lost.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a topic stays subscribed after its last local subscriber left.
const UNSUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// Events sent in one pipeline, at most.
const BATCH: usize = 256;
/// Channels subscribed with one command when resubscribing.
const SUBSCRIBE_BATCH: usize = 500;

/// How to reach Redis and name this node. Start from [`RedisConfig::new`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The Redis URL, e.g. `redis://127.0.0.1:6379/`.
    pub url: String,
    /// The prefix of every channel name. Default `wamp`. Nodes of one cluster share it.
    pub prefix: String,
    /// This node's name (its id adds a random suffix per start). Default `node`.
    pub node_name: String,
    /// The outgoing queue's bound, in events. Default 10,000.
    pub queue_capacity: usize,
    /// How often this node sends its heartbeat; a node is alive while its heartbeats are at
    /// most three intervals old. Default 1 s.
    pub heartbeat: Duration,
}

impl RedisConfig {
    /// The defaults for a Redis URL.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            prefix: "wamp".to_string(),
            node_name: "node".to_string(),
            queue_capacity: 10_000,
            heartbeat: Duration::from_secs(1),
        }
    }

    /// Sets the channel prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the node's name.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = name.into();
        self
    }

    /// Sets the outgoing queue's bound.
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events.max(1);
        self
    }

    /// Sets the heartbeat interval.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }
}

/// What the sending task sends.
enum Out {
    Event(RemoteEvent),
    Control(String),
}

/// A cluster request waiting for answers.
struct Pending {
    expected: HashSet<String>,
    answered: HashSet<String>,
    replies: Vec<ClusterReply>,
    done: Arc<Notify>,
}

/// What the tasks and the router share.
struct Shared {
    id: String,
    topic_prefix: String,
    control: String,
    heartbeat: Duration,
    counters: Counters,
    node: OnceLock<LocalNode>,
    /// Whether the sending connection is up, and since when.
    send_up: Mutex<Option<Instant>>,
    recv_up: AtomicBool,
    /// Topics subscribed on Redis now.
    subscribed: Mutex<HashSet<String>>,
    /// Other nodes by id, when last heard from.
    peers: Mutex<HashMap<String, Instant>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_request: AtomicU64,
}

impl Shared {
    fn alive_peers(&self) -> HashSet<String> {
        let horizon = self.heartbeat * 3;
        let now = Instant::now();
        let mut peers = self.peers.lock().expect("peers lock");
        peers.retain(|_, seen| now.duration_since(*seen) <= horizon);
        peers.keys().cloned().collect()
    }

    fn send_connected(&self) -> bool {
        self.send_up.lock().expect("send state lock").is_some()
    }
}

/// A backplane on Redis pub/sub (see the module docs). Build the router that takes it inside
/// a tokio runtime; its two tasks start when the router is built and stop when it is
/// dropped or [`RedisBackplane::stop`] is called.
pub struct RedisBackplane {
    shared: Arc<Shared>,
    client: ::redis::Client,
    tx: mpsc::Sender<Out>,
    rx: Mutex<Option<mpsc::Receiver<Out>>>,
    hints_tx: mpsc::UnboundedSender<String>,
    hints_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("node_id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBackplane {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RedisBackplane {
    /// A backplane for one node. Fails only on a malformed URL; connecting happens in the
    /// background (and again whenever the connection is lost).
    pub fn new(config: RedisConfig) -> Result<Arc<RedisBackplane>, ::redis::RedisError> {
        let client = ::redis::Client::open(config.url.as_str())?;
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (hints_tx, hints_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            id: node_id(&config.node_name),
            topic_prefix: format!("{}:t:", config.prefix),
            control: format!("{}:ctl", config.prefix),
            heartbeat: config.heartbeat,
            counters: Counters::default(),
            node: OnceLock::new(),
            send_up: Mutex::new(None),
            recv_up: AtomicBool::new(false),
            subscribed: Mutex::new(HashSet::new()),
            peers: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
        });
        Ok(Arc::new(RedisBackplane {
            shared,
            client,
            tx,
            rx: Mutex::new(Some(rx)),
            hints_tx,
            hints_rx: Mutex::new(Some(hints_rx)),
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.shared.id
    }

    /// Stops both tasks (the node leaves the cluster; its router keeps serving locally).
    pub fn stop(&self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
        *self.shared.send_up.lock().expect("send state lock") = None;
        self.shared.recv_up.store(false, Ordering::Release);
    }

    fn queue(&self, out: Out) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::add(&self.shared.counters.dropped_queue_full, 1);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Counters::add(&self.shared.counters.dropped_disconnected, 1);
                false
            }
        }
    }
}

impl Backplane for RedisBackplane {
    fn attach(&self, node: LocalNode) {
        let _ = self.shared.node.set(node);
        let (Some(rx), Some(hints)) = (
            self.rx.lock().expect("rx lock").take(),
            self.hints_rx.lock().expect("hints lock").take(),
        ) else {
            return;
        };
        let mut tasks = self.tasks.lock().expect("tasks lock");
        tasks.push(tokio::spawn(send_loop(
            self.client.clone(),
            self.shared.clone(),
            rx,
        )));
        tasks.push(tokio::spawn(receive_loop(
            self.client.clone(),
            self.shared.clone(),
            hints,
            self.tx.clone(),
        )));
    }

    fn forward(&self, event: RemoteEvent) {
        self.queue(Out::Event(event));
    }

    fn interest_changed(&self, topic: &str) {
        let _ = self.hints_tx.send(topic.to_string());
    }

    fn request(&self, request: ClusterRequest, timeout: Duration) -> BoxFuture<ClusterReplies> {
        let shared = self.shared.clone();
        let expected = shared.alive_peers();
        let connected = shared.send_connected() && shared.recv_up.load(Ordering::Acquire);
        if expected.is_empty() || !connected {
            return Box::pin(async move {
                ClusterReplies {
                    replies: Vec::new(),
                    complete: connected,
                }
            });
        }
        let id = shared.next_request.fetch_add(1, Ordering::Relaxed);
        let done = Arc::new(Notify::new());
        shared.pending.lock().expect("pending lock").insert(
            id,
            Pending {
                expected,
                answered: HashSet::new(),
                replies: Vec::new(),
                done: done.clone(),
            },
        );
        let message = json!({"v": VERSION, "k": "req", "n": shared.id, "id": id, "op": encode_request(&request)});
        let sent = self.queue(Out::Control(message.to_string()));
        Box::pin(async move {
            if sent {
                let _ = tokio::time::timeout(timeout, done.notified()).await;
            }
            let pending = shared.pending.lock().expect("pending lock").remove(&id);
            match pending {
                Some(p) => ClusterReplies {
                    complete: sent && p.expected.is_subset(&p.answered),
                    replies: p.replies,
                },
                None => ClusterReplies::default(),
            }
        })
    }

    fn status(&self) -> BackplaneStatus {
        let shared = &self.shared;
        let mut s = BackplaneStatus {
            kind: "redis",
            node_id: shared.id.clone(),
            connected: shared.send_connected() && shared.recv_up.load(Ordering::Acquire),
            nodes_seen: shared.alive_peers().len(),
            queue_depth: self.tx.max_capacity() - self.tx.capacity(),
            subscribed_topics: shared.subscribed.lock().expect("subscribed lock").len(),
            ..BackplaneStatus::default()
        };
        shared.counters.fill(&mut s);
        s
    }
}

fn encode_request(request: &ClusterRequest) -> Value {
    match request {
        ClusterRequest::Subscribers { topic } => json!({"subscribers": topic}),
        ClusterRequest::CloseSession {
            session_id,
            code,
            reason,
        } => json!({"close": session_id, "code": code, "reason": reason}),
    }
}

fn decode_request(op: &Value) -> Option<ClusterRequest> {
    if let Some(topic) = op.get("subscribers").and_then(Value::as_str) {
        return Some(ClusterRequest::Subscribers {
            topic: topic.to_string(),
        });
    }
    Some(ClusterRequest::CloseSession {
        session_id: op.get("close")?.as_str()?.to_string(),
        code: u16::try_from(op.get("code")?.as_u64()?).ok()?,
        reason: op.get("reason")?.as_str()?.to_string(),
    })
}

fn encode_reply(reply: &ClusterReply) -> Value {
    match reply {
        ClusterReply::Subscribers(ids) => json!({"subscribers": ids}),
        ClusterReply::Closed(closed) => json!({"closed": closed}),
    }
}

fn decode_reply(r: &Value) -> Option<ClusterReply> {
    if let Some(ids) = r.get("subscribers").and_then(Value::as_array) {
        return Some(ClusterReply::Subscribers(
            ids.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ));
    }
    Some(ClusterReply::Closed(r.get("closed")?.as_bool()?))
}

/// Reconnect delays: 100 ms doubling to 5 s, each with up to half of it as jitter.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: Duration::from_millis(100),
        }
    }

    fn reset(&mut self) {
        self.next = Duration::from_millis(100);
    }

    async fn wait(&mut self) {
        let mut byte = [0u8; 1];
        let _ = getrandom::getrandom(&mut byte);
        let half = self.next / 2;
        let delay = half + half * u32::from(byte[0]) / 255;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        tokio::time::sleep(delay).await;
    }
}

fn connection_config() -> ::redis::AsyncConnectionConfig {
    ::redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(IO_TIMEOUT))
        .set_response_timeout(Some(IO_TIMEOUT))
}

/// The sending task: one connection, events pipelined in queue order, heartbeats.
async fn send_loop(client: ::redis::Client, shared: Arc<Shared>, mut rx: mpsc::Receiver<Out>) {
    let mut backoff = Backoff::new();
    let mut seq: u64 = 0;
    let mut ever_connected = false;
    let mut lost_logged = false;
    let heartbeat = json!({"v": VERSION, "k": "hb", "n": shared.id}).to_string();
    loop {
        let connected = tokio::time::timeout(
            IO_TIMEOUT,
            client.get_multiplexed_async_connection_with_config(&connection_config()),
        )
        .await;
        let mut conn = match connected {
            Ok(Ok(conn)) => conn,
            failed => {
                if !lost_logged {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_string(),
                    };
                    warn!(node = %shared.id, error = %why, "redis backplane: cannot publish (retrying with backoff; cross-node events are dropped and counted meanwhile)");
                    lost_logged = true;
                }
                drain_dropped(&shared, &mut rx);
                backoff.wait().await;
                drain_dropped(&shared, &mut rx);
                continue;
            }
        };
        if ever_connected {
            Counters::add(&shared.counters.reconnects, 1);
        }
        ever_connected = true;
        if lost_logged {
            info!(node = %shared.id, "redis backplane: publishing again");
        }
        backoff.reset();
        *shared.send_up.lock().expect("send state lock") = Some(Instant::now());
        let mut ticker = tokio::time::interval(shared.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let failure = loop {
            let mut batch = Vec::new();
            tokio::select! {
                out = rx.recv() => match out {
                    Some(out) => batch.push(out),
                    None => return,
                },
                _ = ticker.tick() => batch.push(Out::Control(heartbeat.clone())),
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(out) => batch.push(out),
                    Err(_) => break,
                }
            }
            let mut pipe = ::redis::pipe();
            let mut events = 0;
            for out in &batch {
                match out {
                    Out::Event(e) => {
                        seq += 1;
                        events += 1;
                        let header = json!({"v": VERSION, "n": shared.id, "s": seq, "x": e.exclude, "e": e.eligible});
                        let mut payload = header.to_string().into_bytes();
                        payload.push(b'\n');
                        payload.extend_from_slice(e.frame.as_bytes());
                        pipe.cmd("PUBLISH")
                            .arg(format!("{}{}", shared.topic_prefix, e.topic))
                            .arg(payload)
                            .ignore();
                    }
                    Out::Control(text) => {
                        pipe.cmd("PUBLISH")
                            .arg(&shared.control)
                            .arg(text.as_str())
                            .ignore();
                    }
                }
            }
            let sent = tokio::time::timeout(IO_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
            match sent {
                Ok(Ok(())) => Counters::add(&shared.counters.published, events),
                failed => {
                    Counters::add(&shared.counters.dropped_disconnected, events);
                    break match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "no answer in 2 s".to_string(),
                    };
                }
            }
        };
        *shared.send_up.lock().expect("send state lock") = None;
        warn!(node = %shared.id, error = %failure, "redis backplane: publishing connection lost (reconnecting with backoff; cross-node events are dropped and counted meanwhile)");
        lost_logged = true;
        backoff.wait().await;
    }
}

/// Drops (and counts) what waits in the queue while there is no connection.
fn drain_dropped(shared: &Shared, rx: &mut mpsc::Receiver<Out>) {
    while let Ok(out) = rx.try_recv() {
        if let Out::Event(_) = out {
            Counters::add(&shared.counters.dropped_disconnected, 1);
        }
    }
}

/// The receiving task: the subscription connection, resubscribed after every loss.
async fn receive_loop(
    client: ::redis::Client,
    shared: Arc<Shared>,
    mut hints: mpsc::UnboundedReceiver<String>,
    tx: mpsc::Sender<Out>,
) {
    let mut backoff = Backoff::new();
    let mut ever_connected = false;
    let mut lost_logged = false;
    let mut sequences = Sequences::default();
    loop {
        let why = match subscribe_all(&client, &shared).await {
            Ok((sink, stream)) => {
                if ever_connected {
                    Counters::add(&shared.counters.reconnects, 1);
                }
                ever_connected = true;
                if lost_logged {
                    info!(node = %shared.id, "redis backplane: receiving again, every channel resubscribed");
                }
                lost_logged = false;
                backoff.reset();
                shared.recv_up.store(true, Ordering::Release);
                let why = receive(&shared, sink, stream, &mut hints, &tx, &mut sequences).await;
                shared.recv_up.store(false, Ordering::Release);
                shared.subscribed.lock().expect("subscribed lock").clear();
                why
            }
            Err(e) => e,
        };
        if !lost_logged {
            warn!(node = %shared.id, error = %why, "redis backplane: not receiving other nodes' events (reconnecting with backoff)");
            lost_logged = true;
        }
        backoff.wait().await;
    }
}

type Sink = ::redis::aio::PubSubSink;
type Stream = ::redis::aio::PubSubStream;

/// Connects and subscribes the control channel and every topic with local subscribers.
async fn subscribe_all(
    client: &::redis::Client,
    shared: &Shared,
) -> Result<(Sink, Stream), String> {
    let pubsub = tokio::time::timeout(IO_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let (mut sink, stream) = pubsub.split();
    // What an earlier, failed attempt confirmed is gone with its connection.
    shared.subscribed.lock().expect("subscribed lock").clear();
    command(sink.subscribe(&shared.control)).await?;
    let wanted = shared
        .node
        .get()
        .map(LocalNode::subscribed_topics)
        .unwrap_or_default();
    for chunk in wanted.chunks(SUBSCRIBE_BATCH) {
        let channels: Vec<String> = chunk
            .iter()
            .map(|t| format!("{}{t}", shared.topic_prefix))
            .collect();
        command(sink.subscribe(&channels)).await?;
        shared
            .subscribed
            .lock()
            .expect("subscribed lock")
            .extend(chunk.iter().cloned());
    }
    Ok((sink, stream))
}

/// One Redis command with the I/O timeout.
async fn command(
    f: impl std::future::Future<Output = ::redis::RedisResult<()>>,
) -> Result<(), String> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in 2 s".to_string()),
    }
}

/// Reads the subscription until it fails; returns why.
async fn receive(
    shared: &Shared,
    mut sink: Sink,
    mut stream: Stream,
    hints: &mut mpsc::UnboundedReceiver<String>,
    tx: &mpsc::Sender<Out>,
    sequences: &mut Sequences,
) -> String {
    let mut last_own_heartbeat = Instant::now();
    let mut unsubscribe_at: HashMap<String, Instant> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(100).min(shared.heartbeat));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Hints that came while disconnected are mostly covered by the resubscription; acting
    // on them again is harmless.
    let node = shared.node.get().cloned();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return "the subscription connection ended".to_string();
                };
                let channel = msg.get_channel_name();
                if channel == shared.control {
                    if on_control(shared, msg.get_payload_bytes(), tx) {
                        last_own_heartbeat = Instant::now();
                    }
                } else if let (Some(topic), Some(node)) = (channel.strip_prefix(&shared.topic_prefix), &node) {
                    on_event(shared, node, topic, msg.get_payload_bytes(), sequences);
                }
            }
            Some(topic) = hints.recv() => {
                let Some(node) = &node else { continue };
                let wanted = node.has_subscribers(&topic);
                let have = shared.subscribed.lock().expect("subscribed lock").contains(&topic);
                if wanted && !have {
                    unsubscribe_at.remove(&topic);
                    let channel = format!("{}{topic}", shared.topic_prefix);
                    if let Err(e) = command(sink.subscribe(&channel)).await {
                        return e;
                    }
                    shared.subscribed.lock().expect("subscribed lock").insert(topic);
                } else if !wanted && have {
                    unsubscribe_at.insert(topic, Instant::now() + UNSUBSCRIBE_DELAY);
                } else if wanted {
                    unsubscribe_at.remove(&topic);
                }
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                let due: Vec<String> = unsubscribe_at
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(t, _)| t.clone())
                    .collect();
                for topic in due {
                    unsubscribe_at.remove(&topic);
                    if node.as_ref().is_some_and(|n| n.has_subscribers(&topic)) {
                        continue;
                    }
                    let channel = format!("{}{topic}", shared.topic_prefix);
                    if let Err(e) = command(sink.unsubscribe(&channel)).await {
                        return e;
                    }
                    shared.subscribed.lock().expect("subscribed lock").remove(&topic);
                }
                // The sending connection has been up for three heartbeats, yet none of ours
                // came back: this subscription is dead though its socket looks open.
                let horizon = shared.heartbeat * 3;
                let send_up = *shared.send_up.lock().expect("send state lock");
                if let Some(since) = send_up {
                    if now.duration_since(since) > horizon
                        && now.duration_since(last_own_heartbeat) > horizon
                    {
                        return "no heartbeat came back: the subscription is silent".to_string();
                    }
                }
            }
        }
    }
}

/// Handles a control message; returns whether it was this node's own heartbeat.
fn on_control(shared: &Shared, payload: &[u8], tx: &mpsc::Sender<Out>) -> bool {
    let Ok(msg) = serde_json::from_slice::<Value>(payload) else {
        Counters::add(&shared.counters.dropped_malformed, 1);
        return false;
    };
    if msg.get("v").and_then(Value::as_u64) != Some(VERSION) {
        Counters::add(&shared.counters.dropped_malformed, 1);
        return false;
    }
    let Some(from) = msg.get("n").and_then(Value::as_str) else {
        Counters::add(&shared.counters.dropped_malformed, 1);
        return false;
    };
    if from == shared.id {
        return msg.get("k").and_then(Value::as_str) == Some("hb");
    }
    shared
        .peers
        .lock()
        .expect("peers lock")
        .insert(from.to_string(), Instant::now());
    match msg.get("k").and_then(Value::as_str) {
        Some("req") => {
            let (Some(id), Some(request), Some(node)) = (
                msg.get("id").and_then(Value::as_u64),
                msg.get("op").and_then(decode_request),
                shared.node.get(),
            ) else {
                return false;
            };
            let reply = node.answer(&request);
            let answer = json!({"v": VERSION, "k": "rep", "n": shared.id, "to": from, "id": id, "r": encode_reply(&reply)});
            let _ = tx.try_send(Out::Control(answer.to_string()));
        }
        Some("rep") if msg.get("to").and_then(Value::as_str) == Some(shared.id.as_str()) => {
            let (Some(id), Some(reply)) = (
                msg.get("id").and_then(Value::as_u64),
                msg.get("r").and_then(decode_reply),
            ) else {
                return false;
            };
            let mut pending = shared.pending.lock().expect("pending lock");
            if let Some(p) = pending.get_mut(&id) {
                if p.answered.insert(from.to_string()) {
                    p.replies.push(reply);
                }
                if p.expected.is_subset(&p.answered) {
                    p.done.notify_one();
                }
            }
        }
        _ => {}
    }
    false
}

/// Handles another node's event: header, then the frame's bytes as they are.
fn on_event(shared: &Shared, node: &LocalNode, topic: &str, payload: &[u8], seqs: &mut Sequences) {
    let counters = &shared.counters;
    let Some(split) = payload.iter().position(|b| *b == b'\n') else {
        Counters::add(&counters.dropped_malformed, 1);
        return;
    };
    let Ok(header) = serde_json::from_slice::<Header>(&payload[..split]) else {
        Counters::add(&counters.dropped_malformed, 1);
        return;
    };
    if header.v != VERSION {
        Counters::add(&counters.dropped_malformed, 1);
        return;
    }
    if header.n == shared.id {
        Counters::add(&counters.echoes_dropped, 1);
        return;
    }
    let Ok(frame) = String::from_utf8(payload[split + 1..].to_vec()) else {
        Counters::add(&counters.dropped_malformed, 1);
        return;
    };
    shared
        .peers
        .lock()
        .expect("peers lock")
        .insert(header.n.clone(), Instant::now());
    Counters::add(&counters.sequence_gaps, seqs.note(&header.n, header.s));
    Counters::add(&counters.received, 1);
    node.deliver(topic, &Text::from(frame), &header.x, header.e.as_deref());
}

/// A topic message's header.
#[derive(serde::Deserialize)]
struct Header {
    v: u64,
    n: String,
    s: u64,
    #[serde(default)]
    x: Vec<String>,
    #[serde(default)]
    e: Option<Vec<String>>,
}

/// Per-origin sequence tracking: counts gaps.
#[derive(Debug, Default)]
struct Sequences {
    last: HashMap<String, u64>,
}

impl Sequences {
    /// Notes `seq` from `origin`; returns how many events were skipped before it.
    fn note(&mut self, origin: &str, seq: u64) -> u64 {
        match self.last.get_mut(origin) {
            Some(last) => {
                let gap = seq.saturating_sub(*last + 1);
                if seq > *last {
                    *last = seq;
                }
                gap
            }
            None => {
                self.last.insert(origin.to_string(), seq);
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps_are_counted_per_origin() {
        let mut s = Sequences::default();
        assert_eq!(s.note("a", 5), 0, "the first seen starts the count");
        assert_eq!(s.note("a", 6), 0);
        assert_eq!(s.note("b", 1), 0);
        assert_eq!(s.note("a", 9), 2);
        assert_eq!(s.note("a", 8), 0, "a late one is no gap");
        assert_eq!(s.note("a", 10), 0);
    }

    #[test]
    fn requests_and_replies_round_trip() {
        for r in [
            ClusterRequest::Subscribers {
                topic: "http://t/x".into(),
            },
            ClusterRequest::CloseSession {
                session_id: "s1".into(),
                code: 4000,
                reason: "bye".into(),
            },
        ] {
            assert_eq!(decode_request(&encode_request(&r)), Some(r));
        }
        for r in [
            ClusterReply::Subscribers(vec!["a".into(), "b".into()]),
            ClusterReply::Closed(true),
        ] {
            assert_eq!(decode_reply(&encode_reply(&r)), Some(r));
        }
        assert_eq!(decode_request(&json!({"close": "s"})), None);
        assert_eq!(decode_reply(&json!({})), None);
    }
}
