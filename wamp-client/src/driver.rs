//! The driver task: the only owner of the WebSocket. It holds the pending calls, the
//! subscriptions and the prefixes, and reconnects when the link drops.
//!
//! [`Client`](crate::Client) handles talk to it over one bounded command channel (back
//! pressure for callers) and one unbounded control channel used only from `Drop` (a dropped
//! subscription or a cancelled call must reach the driver without awaiting; each sends at
//! most one message, so that channel is bounded by the number of live subscriptions and
//! calls). Each subscription receives its events over its own bounded channel filled with
//! `try_send`, so a slow reader never stalls the driver.
//!
//! Life cycle: `connect` runs [`establish`] (TCP, WebSocket handshake with the `wamp`
//! subprotocol, WELCOME, optional WAMP-CRA) and spawns [`Driver::run`]. A session starts by
//! sending the client's own prefixes and one SUBSCRIBE per subscribed topic, then serves
//! commands and frames. When the link drops, every pending call fails with
//! [`Error::ConnectionLost`], and the reconnect policy decides between waiting and trying
//! again (while still answering commands: calls fail fast, subscriptions are kept) and
//! closing for good.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, trace, warn};
use wamp_proto::uri::{Prefixes, PROC_AUTH, PROC_AUTHREQ};
use wamp_proto::{Message, Permissions};

use crate::client::PublishOptions;
use crate::error::{Error, Result};
use crate::options::{ConnectOptions, ConnectionState, Credentials};
use crate::subscription::Event;

/// The socket type the driver owns.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many commands may wait for the driver before callers wait to hand theirs over.
pub(crate) const COMMAND_CAPACITY: usize = 256;

/// How many queued commands the driver writes before one flush.
const WRITE_BATCH: usize = 64;

/// How long a graceful close waits for the server's closing handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The tracing target of the protocol trace: every WAMP message sent and received, as its
/// JSON text, at trace level.
pub(crate) const WIRE: &str = "wamp_client::wire";

/// What the session a connection got: the contents of its WELCOME.
#[derive(Debug, Clone)]
pub(crate) struct Welcome {
    pub(crate) session_id: String,
    pub(crate) server_ident: String,
}

/// A reply channel for a call.
pub(crate) type CallReply = oneshot::Sender<Result<Value>>;

/// A request from a [`Client`](crate::Client) handle to the driver.
pub(crate) enum Command {
    /// Send a CALL; the answer goes to `reply`.
    Call {
        call_id: String,
        proc_uri: String,
        args: Vec<Value>,
        reply: CallReply,
    },
    /// Add a local subscription (sending SUBSCRIBE if it is the topic's first); the reply
    /// carries the resolved topic the subscription is filed under, or
    /// [`Error::UnknownPrefix`].
    Subscribe {
        topic: String,
        sub: LocalSub,
        reply: oneshot::Sender<Result<String>>,
    },
    /// Remove a local subscription (sending UNSUBSCRIBE if it was the topic's last).
    Unsubscribe { id: u64, reply: oneshot::Sender<()> },
    /// Send a PUBLISH.
    Publish {
        topic: String,
        event: Value,
        options: PublishOptions,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Define a prefix and send PREFIX.
    Prefix {
        prefix: String,
        uri: String,
        reply: oneshot::Sender<()>,
    },
    /// Remember credentials, to authenticate again after a reconnect.
    SetCredentials(Credentials),
    /// Close the connection for good.
    Close { reply: oneshot::Sender<()> },
}

/// A message sent from a `Drop` implementation: it cannot await.
pub(crate) enum Control {
    /// A [`Subscription`](crate::Subscription) was dropped.
    Unsubscribe(u64),
    /// A call future was dropped (timed out or cancelled) before its answer arrived.
    ForgetCall(String),
}

/// The driver's side of one local subscription.
pub(crate) struct LocalSub {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::Sender<Event>,
    pub(crate) dropped: Arc<AtomicU64>,
}

/// Why a connected session ended.
enum SessionEnd {
    /// The link dropped or misbehaved: reconnect if the policy allows.
    Lost(String),
    /// The application closed the client or dropped every handle: stop for good.
    Exit(String),
}

/// The driver: state that outlives any one connection.
pub(crate) struct Driver {
    url: String,
    opts: Arc<ConnectOptions>,
    cmd_rx: mpsc::Receiver<Command>,
    ctl_rx: mpsc::UnboundedReceiver<Control>,
    state: watch::Sender<ConnectionState>,
    prefixes: Prefixes,
    credentials: Option<Credentials>,
    /// Calls sent on the current connection and not answered yet, by call id.
    pending: HashMap<String, CallReply>,
    /// Local subscriptions by resolved topic URI. A topic is in this map exactly when the
    /// server should have this session subscribed to it.
    topics: HashMap<String, Vec<LocalSub>>,
    /// Resolved topic of each local subscription id.
    sub_topics: HashMap<u64, String>,
    /// The current session, while connected.
    session: Option<Welcome>,
    /// Who to tell when a requested close is done.
    close_replies: Vec<oneshot::Sender<()>>,
}

impl Driver {
    pub(crate) fn new(
        url: String,
        opts: Arc<ConnectOptions>,
        cmd_rx: mpsc::Receiver<Command>,
        ctl_rx: mpsc::UnboundedReceiver<Control>,
        state: watch::Sender<ConnectionState>,
    ) -> Self {
        let mut prefixes = Prefixes::new();
        for (prefix, uri) in &opts.prefixes {
            prefixes.insert(prefix.clone(), uri.clone());
        }
        Driver {
            url,
            credentials: opts.credentials.clone(),
            opts,
            cmd_rx,
            ctl_rx,
            state,
            prefixes,
            pending: HashMap::new(),
            topics: HashMap::new(),
            sub_topics: HashMap::new(),
            session: None,
            close_replies: Vec::new(),
        }
    }

    /// Runs until the client is closed: serves the connection `connect` established, and
    /// every later one.
    pub(crate) async fn run(mut self, mut ws: Ws, mut welcome: Welcome) {
        let final_reason = loop {
            match self.serve(&mut ws, welcome).await {
                SessionEnd::Exit(reason) => break reason,
                SessionEnd::Lost(reason) => {
                    warn!(%reason, "connection lost");
                    self.session = None;
                    self.fail_pending(&Error::ConnectionLost(reason.clone()));
                    match self.reconnect(reason).await {
                        Ok((new_ws, new_welcome)) => {
                            ws = new_ws;
                            welcome = new_welcome;
                        }
                        Err(reason) => break reason,
                    }
                }
            }
        };
        self.shutdown(final_reason);
    }

    /// Serves one connected session until it ends.
    async fn serve(&mut self, ws: &mut Ws, welcome: Welcome) -> SessionEnd {
        info!(session_id = %welcome.session_id, server = %welcome.server_ident, "connected");
        if let Err(reason) = self.resume(ws).await {
            return SessionEnd::Lost(reason);
        }
        self.set_state(ConnectionState::Connected {
            session_id: welcome.session_id.clone(),
            server_ident: welcome.server_ident.clone(),
        });
        self.session = Some(welcome);

        let mut ping = self.opts.ping_interval.map(|every| {
            let mut i = tokio::time::interval_at(Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            (i, every)
        });
        let mut last_seen = Instant::now();

        loop {
            // Not biased: a steady stream of commands must not keep the driver from
            // reading (the server would see a slow consumer), nor the reverse.
            tokio::select! {
                Some(ctl) = self.ctl_rx.recv() => {
                    if let Err(reason) = self.on_control(ctl, ws).await {
                        return SessionEnd::Lost(reason);
                    }
                }
                cmd = self.cmd_rx.recv() => {
                    let Some(cmd) = cmd else {
                        close_ws(ws, CloseCode::Normal, "client dropped").await;
                        return SessionEnd::Exit("every Client handle was dropped".into());
                    };
                    if let Some(end) = self.on_commands(cmd, ws).await {
                        return end;
                    }
                }
                frame = ws.next() => {
                    last_seen = Instant::now();
                    if let Some(end) = self.on_frame(frame, ws).await {
                        return end;
                    }
                }
                () = tick(&mut ping) => {
                    let every = ping.as_ref().map_or(Duration::MAX, |(_, every)| *every);
                    if last_seen.elapsed() >= every.saturating_mul(2) {
                        return SessionEnd::Lost(format!(
                            "nothing received from the server for {:?} (ping unanswered)",
                            last_seen.elapsed()
                        ));
                    }
                    if let Err(e) = ws.send(WsMessage::Ping(Default::default())).await {
                        return SessionEnd::Lost(format!("WebSocket error: {e}"));
                    }
                }
            }
        }
    }

    /// Sends what a new session must know: the client's own prefixes, then one SUBSCRIBE
    /// per topic with live local subscriptions.
    async fn resume(&mut self, ws: &mut Ws) -> Result<(), String> {
        let mut frames: Vec<Message> = self
            .prefixes
            .own()
            .map(|(prefix, uri)| Message::Prefix {
                prefix: prefix.into(),
                uri: uri.into(),
            })
            .collect();
        // Subscriptions whose stream was dropped while disconnected are gone already.
        frames.extend(self.topics.keys().map(|topic| Message::Subscribe {
            topic_uri: topic.clone(),
        }));
        if !frames.is_empty() {
            debug!(
                prefixes = self.prefixes.own().count(),
                topics = self.topics.len(),
                "re-sending prefixes and subscriptions"
            );
        }
        for msg in frames {
            feed(ws, &msg).await?;
        }
        ws.flush().await.map_err(ws_error)
    }

    /// Handles one command and whatever others are already queued, then flushes once.
    async fn on_commands(&mut self, first: Command, ws: &mut Ws) -> Option<SessionEnd> {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(cmd) = next.take() {
            if let Command::Close { reply } = cmd {
                self.close_replies.push(reply);
                close_ws(ws, CloseCode::Normal, "client closed").await;
                return Some(SessionEnd::Exit("closed by the application".into()));
            }
            if let Err(reason) = self.on_command(cmd, ws).await {
                return Some(SessionEnd::Lost(reason));
            }
            handled += 1;
            if handled < WRITE_BATCH {
                next = self.cmd_rx.try_recv().ok();
            }
        }
        ws.flush()
            .await
            .err()
            .map(|e| SessionEnd::Lost(ws_error(e)))
    }

    /// Handles one command while connected. Frames are fed, not flushed.
    async fn on_command(&mut self, cmd: Command, ws: &mut Ws) -> Result<(), String> {
        match cmd {
            Command::Call {
                call_id,
                proc_uri,
                args,
                reply,
            } => {
                if reply.is_closed() {
                    // The caller gave up (timeout, cancellation) before the call was sent.
                    return Ok(());
                }
                let msg = Message::Call {
                    call_id: call_id.clone(),
                    proc_uri,
                    args,
                };
                self.pending.insert(call_id, reply);
                feed(ws, &msg).await
            }
            Command::Subscribe { topic, sub, reply } => {
                if reply.is_closed() {
                    // The caller gave up before the subscription was made.
                    return Ok(());
                }
                let id = sub.id;
                let (resolved, first) = match self.add_subscription(&topic, sub) {
                    Ok(filed) => filed,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                };
                if first {
                    feed(
                        ws,
                        &Message::Subscribe {
                            topic_uri: resolved.clone(),
                        },
                    )
                    .await?;
                }
                if reply.send(Ok(resolved)).is_err() {
                    // The caller gave up meanwhile: no Subscription exists to undo this.
                    self.remove_subscription(id, ws, false).await?;
                }
                Ok(())
            }
            Command::Unsubscribe { id, reply } => {
                let result = self.remove_subscription(id, ws, false).await;
                let _ = reply.send(());
                result
            }
            Command::Publish {
                topic,
                event,
                options,
                reply,
            } => {
                let me = self.session.as_ref().map(|s| s.session_id.as_str());
                let msg = options.into_message(topic, event, me);
                let result = feed(ws, &msg).await;
                let _ = reply.send(match &result {
                    Ok(()) => Ok(()),
                    Err(reason) => Err(Error::ConnectionLost(reason.clone())),
                });
                result
            }
            Command::Prefix { prefix, uri, reply } => {
                self.prefixes.insert(prefix.clone(), uri.clone());
                let result = feed(ws, &Message::Prefix { prefix, uri }).await;
                let _ = reply.send(());
                result
            }
            Command::SetCredentials(credentials) => {
                self.credentials = Some(credentials);
                Ok(())
            }
            Command::Close { .. } => unreachable!("on_commands handles Close"),
        }
    }

    /// Handles a message sent from a `Drop` while connected.
    async fn on_control(&mut self, ctl: Control, ws: &mut Ws) -> Result<(), String> {
        match ctl {
            Control::Unsubscribe(id) => self.remove_subscription(id, ws, true).await,
            Control::ForgetCall(call_id) => {
                if self.pending.remove(&call_id).is_some() {
                    debug!(%call_id, "call abandoned by its caller; a late answer will be ignored");
                }
                Ok(())
            }
        }
    }

    /// Handles what the socket gave. `Some` ends the session.
    async fn on_frame(
        &mut self,
        frame: Option<Result<WsMessage, tungstenite::Error>>,
        ws: &mut Ws,
    ) -> Option<SessionEnd> {
        let msg = match frame {
            None => return Some(SessionEnd::Lost("the connection closed".into())),
            Some(Err(e)) => return Some(SessionEnd::Lost(ws_error(e))),
            Some(Ok(msg)) => msg,
        };
        let fault = match msg {
            WsMessage::Text(text) => match self.on_text(text.as_str()) {
                Ok(()) => return None,
                Err(e) => (CloseCode::Protocol, e),
            },
            WsMessage::Binary(_) => (
                CloseCode::Unsupported,
                "the server sent a binary frame; WAMP v1 uses text frames".to_string(),
            ),
            WsMessage::Close(frame) => {
                // Let tungstenite send its reply to the closing handshake.
                let _ = tokio::time::timeout(CLOSE_GRACE, ws.flush()).await;
                let why = match frame {
                    Some(f) if f.reason.is_empty() => format!("code {}", f.code),
                    Some(f) => format!("code {}: {}", f.code, f.reason),
                    None => "no close code".to_string(),
                };
                return Some(SessionEnd::Lost(format!(
                    "the server closed the connection ({why})"
                )));
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => return None,
        };
        let (code, reason) = fault;
        warn!(%reason, "protocol error from the server; closing the connection");
        close_ws(ws, code, &reason).await;
        Some(SessionEnd::Lost(Error::Protocol(reason).to_string()))
    }

    /// Handles one text frame. An error is a protocol error: the frame was not a message a
    /// server may send.
    fn on_text(&mut self, text: &str) -> Result<(), String> {
        trace!(target: WIRE, "received {text}");
        let msg = Message::from_json(text).map_err(|e| e.to_string())?;
        match msg {
            Message::CallResult { call_id, result } => {
                self.answer(&call_id, Ok(result));
            }
            Message::CallError {
                call_id,
                error_uri,
                error_desc,
                error_details,
            } => {
                self.answer(
                    &call_id,
                    Err(Error::CallError {
                        uri: error_uri,
                        desc: error_desc,
                        details: error_details,
                    }),
                );
            }
            Message::Event { topic_uri, event } => self.on_event(topic_uri, event),
            Message::Welcome { .. } => {
                return Err("the server sent a second WELCOME in one session".into())
            }
            other => {
                return Err(format!(
                    "the server sent {}, a message only clients send",
                    other.name()
                ))
            }
        }
        Ok(())
    }

    fn answer(&mut self, call_id: &str, result: Result<Value>) {
        match self.pending.remove(call_id) {
            Some(reply) => {
                // The caller may have given up just now; nothing to do then.
                let _ = reply.send(result);
            }
            None => debug!(%call_id, "answer to a call no one waits for (timed out or unknown)"),
        }
    }

    /// Delivers an EVENT to every local subscription of its topic.
    fn on_event(&mut self, topic: String, payload: Value) {
        let key = self.prefixes.resolve(&topic).into_owned();
        let Some(subs) = self.topics.get(&key) else {
            debug!(%topic, "EVENT for a topic with no local subscription (unsubscribed meanwhile?)");
            return;
        };
        let event = Event::new(topic, payload);
        for sub in subs {
            match sub.tx.try_send(event.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let n = sub.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        warn!(topic = %event.topic, dropped = n, "subscription buffer full, dropping events (slow reader)");
                    }
                }
                // The stream is being dropped; its Control::Unsubscribe is on its way.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Files a local subscription under its resolved topic; true when it is the topic's
    /// first (SUBSCRIBE needed). A CURIE whose prefix the client does not know is refused:
    /// the events (full URIs) could not be matched to it.
    fn add_subscription(&mut self, topic: &str, sub: LocalSub) -> Result<(String, bool)> {
        if let Some(prefix) = curie_prefix(topic) {
            if self.prefixes.get(prefix).is_none() {
                return Err(Error::UnknownPrefix {
                    topic: topic.to_string(),
                    prefix: prefix.to_string(),
                });
            }
        }
        let resolved = self.prefixes.resolve(topic).into_owned();
        self.sub_topics.insert(sub.id, resolved.clone());
        let subs = self.topics.entry(resolved.clone()).or_default();
        subs.push(sub);
        Ok((resolved, subs.len() == 1))
    }

    /// Removes a local subscription and, if it was the topic's last, sends UNSUBSCRIBE
    /// (flushed when `flush`).
    async fn remove_subscription(
        &mut self,
        id: u64,
        ws: &mut Ws,
        flush: bool,
    ) -> Result<(), String> {
        let Some(topic) = self.forget_subscription(id) else {
            return Ok(());
        };
        let msg = Message::Unsubscribe { topic_uri: topic };
        if flush {
            send(ws, &msg).await
        } else {
            feed(ws, &msg).await
        }
    }

    /// Removes a local subscription; returns its topic if no local subscription is left on
    /// it.
    fn forget_subscription(&mut self, id: u64) -> Option<String> {
        let topic = self.sub_topics.remove(&id)?;
        let subs = self.topics.get_mut(&topic)?;
        subs.retain(|s| s.id != id);
        if subs.is_empty() {
            self.topics.remove(&topic);
            Some(topic)
        } else {
            None
        }
    }

    /// Publishes a new connection state; watchers are woken only by a real change (the
    /// first session's `Connected` is already the initial state).
    fn set_state(&self, state: ConnectionState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            if changed {
                *current = state;
            }
            changed
        });
    }

    fn fail_pending(&mut self, error: &Error) {
        if !self.pending.is_empty() {
            debug!(calls = self.pending.len(), %error, "failing calls in flight");
        }
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// Tries to connect again as the policy says. `Ok` with the new connection, or `Err`
    /// with the reason the client closes for good.
    async fn reconnect(&mut self, mut reason: String) -> Result<(Ws, Welcome), String> {
        let mut attempt = 1u32;
        loop {
            let Some(delay) = self.opts.reconnect.delay_for(attempt) else {
                let tries = attempt - 1;
                return Err(if tries == 0 {
                    format!("connection lost ({reason}); reconnecting is disabled")
                } else {
                    format!("connection lost; gave up after {tries} attempts (last: {reason})")
                });
            };
            self.set_state(ConnectionState::Reconnecting {
                attempt,
                reason: reason.clone(),
            });
            debug!(attempt, ?delay, "reconnecting after a delay");
            self.idle_until(tokio::time::sleep(delay)).await?;
            let attempt_fut = establish(
                self.url.clone(),
                self.opts.clone(),
                self.credentials.clone(),
            );
            match self.idle_until(attempt_fut).await? {
                Ok(connection) => return Ok(connection),
                Err(e @ (Error::AuthRefused { .. } | Error::Auth(_))) => {
                    return Err(format!("re-authentication after reconnecting failed: {e}"));
                }
                Err(e) => {
                    debug!(attempt, error = %e, "reconnect attempt failed");
                    reason = e.to_string();
                    attempt += 1;
                }
            }
        }
    }

    /// Answers commands as a disconnected client until `fut` completes. `Err` when the
    /// application closed the client meanwhile.
    async fn idle_until<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, String> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                Some(ctl) = self.ctl_rx.recv() => match ctl {
                    Control::Unsubscribe(id) => {
                        self.forget_subscription(id);
                    }
                    Control::ForgetCall(_) => {}
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    None => return Err("every Client handle was dropped".into()),
                    Some(Command::Close { reply }) => {
                        self.close_replies.push(reply);
                        return Err("closed by the application".into());
                    }
                    Some(cmd) => self.on_command_disconnected(cmd),
                },
                out = &mut fut => return Ok(out),
            }
        }
    }

    /// Handles a command while there is no connection: what can wait (subscriptions,
    /// prefixes, credentials) is kept for the next session; calls and publishes fail fast.
    fn on_command_disconnected(&mut self, cmd: Command) {
        match cmd {
            Command::Call { reply, .. } => {
                let _ = reply.send(Err(Error::NotConnected));
            }
            Command::Publish { reply, .. } => {
                let _ = reply.send(Err(Error::NotConnected));
            }
            Command::Subscribe { topic, sub, reply } => {
                let id = sub.id;
                let filed = self
                    .add_subscription(&topic, sub)
                    .map(|(resolved, _)| resolved);
                let ok = filed.is_ok();
                if reply.send(filed).is_err() && ok {
                    self.forget_subscription(id);
                }
            }
            Command::Unsubscribe { id, reply } => {
                self.forget_subscription(id);
                let _ = reply.send(());
            }
            Command::Prefix { prefix, uri, reply } => {
                self.prefixes.insert(prefix, uri);
                let _ = reply.send(());
            }
            Command::SetCredentials(credentials) => self.credentials = Some(credentials),
            Command::Close { .. } => unreachable!("idle_until handles Close"),
        }
    }

    /// Closes for good: every waiter learns why, every subscription stream ends.
    fn shutdown(mut self, reason: String) {
        info!(%reason, "client closed");
        self.set_state(ConnectionState::Closed {
            reason: reason.clone(),
        });
        self.fail_pending(&Error::Closed(reason.clone()));
        self.topics.clear();
        self.sub_topics.clear();
        // Commands still queued are dropped with their reply channels; the handles then
        // report Error::Closed with the reason from the state.
        self.cmd_rx.close();
        while let Ok(cmd) = self.cmd_rx.try_recv() {
            if let Command::Close { reply } = cmd {
                self.close_replies.push(reply);
            }
        }
        for reply in self.close_replies.drain(..) {
            let _ = reply.send(());
        }
    }
}

/// Waits for the next ping tick, or forever when pings are off.
async fn tick(ping: &mut Option<(tokio::time::Interval, Duration)>) {
    match ping {
        Some((interval, _)) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn ws_error(e: tungstenite::Error) -> String {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "the connection closed".into()
        }
        e => format!("WebSocket error: {e}"),
    }
}

/// A message as a text frame, traced on [`WIRE`].
fn frame(msg: &Message) -> WsMessage {
    let text = msg.to_json();
    trace!(target: WIRE, "sent {text}");
    WsMessage::text(text)
}

/// Queues one message on the socket without flushing.
async fn feed(ws: &mut Ws, msg: &Message) -> Result<(), String> {
    ws.feed(frame(msg)).await.map_err(ws_error)
}

/// Writes one message and flushes.
async fn send(ws: &mut Ws, msg: &Message) -> Result<(), String> {
    ws.send(frame(msg)).await.map_err(ws_error)
}

/// The prefix of `topic` when it reads as a CURIE (`prefix:rest`) rather than as a full URI:
/// it has a `:` after a non-empty part, and is neither a URI with an authority
/// (`scheme://…`) nor one with a common scheme that has none (`urn:`, `tag:`, `mailto:`,
/// `data:`, `uuid:`, and `http`, `https`, `ws`, `wss`, `file`). Whether the prefix is
/// known is not checked.
///
/// This is the test [`Client::subscribe`](crate::Client::subscribe) applies before refusing
/// a CURIE with an unknown prefix ([`Error::UnknownPrefix`]).
///
/// ```
/// use wamp_client::curie_prefix;
/// assert_eq!(curie_prefix("event:chat"), Some("event"));
/// assert_eq!(curie_prefix("http://wamptutorial/event#chat"), None);
/// assert_eq!(curie_prefix("urn:example:chat"), None);
/// assert_eq!(curie_prefix("chat"), None);
/// ```
pub fn curie_prefix(topic: &str) -> Option<&str> {
    const SCHEMES: [&str; 10] = [
        "http", "https", "ws", "wss", "urn", "tag", "mailto", "data", "file", "uuid",
    ];
    let (prefix, rest) = topic.split_once(':')?;
    if prefix.is_empty()
        || rest.starts_with("//")
        || SCHEMES.iter().any(|s| prefix.eq_ignore_ascii_case(s))
    {
        return None;
    }
    Some(prefix)
}

/// Starts the closing handshake and waits a little for the server's reply.
async fn close_ws(ws: &mut Ws, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: truncate(reason, 123).into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Opens one connection: TCP, WebSocket handshake offering `wamp`, the WELCOME and, with
/// credentials, WAMP-CRA. All of it within the connect timeout. Owns its inputs so the
/// driver can keep answering commands while it runs.
pub(crate) async fn establish(
    url: String,
    opts: Arc<ConnectOptions>,
    credentials: Option<Credentials>,
) -> Result<(Ws, Welcome)> {
    let limit = opts.connect_timeout;
    let attempt = async {
        let mut ws = open(&url, &opts).await?;
        let welcome = read_welcome(&mut ws).await?;
        if let Some(credentials) = &credentials {
            let permissions = authenticate_inline(&mut ws, credentials).await?;
            debug!(key = %credentials.key, ?permissions, "authenticated");
        }
        Ok((ws, welcome))
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::ConnectTimeout(limit)),
    }
}

/// The WebSocket handshake.
async fn open(url: &str, opts: &ConnectOptions) -> Result<Ws> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(opts.max_message_size))
        .max_frame_size(Some(opts.max_message_size));
    match handshake(url, config, true).await {
        Err(Error::Subprotocol(why)) if opts.skip_subprotocol_check => {
            debug!(%why, "the server did not select `wamp`; connecting without offering it");
            handshake(url, config, false).await
        }
        other => other,
    }
}

async fn handshake(url: &str, config: WebSocketConfig, offer_wamp: bool) -> Result<Ws> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| invalid(e.to_string()))?;
    if offer_wamp {
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("wamp"));
    }
    match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
        // tungstenite has checked that an offered subprotocol was selected.
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(e))) => {
            Err(Error::Subprotocol(e.to_string()))
        }
        Err(tungstenite::Error::Url(e)) => Err(invalid(e.to_string())),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Err(Error::HandshakeRefused {
                url: url.to_string(),
                status: response.status().as_u16(),
                body: body.trim().to_string(),
            })
        }
        Err(e) => Err(Error::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Reads the next WAMP message during connection setup (pings are answered by tungstenite).
async fn next_message(ws: &mut Ws) -> Result<Message> {
    loop {
        match ws.next().await {
            None => return Err(Error::ConnectionLost("the connection closed".into())),
            Some(Err(e)) => return Err(Error::ConnectionLost(ws_error(e))),
            Some(Ok(WsMessage::Text(text))) => {
                trace!(target: WIRE, "received {}", text.as_str());
                return Ok(Message::from_json(text.as_str())?);
            }
            Some(Ok(WsMessage::Binary(_))) => {
                return Err(Error::Protocol(
                    "the server sent a binary frame; WAMP v1 uses text frames".into(),
                ))
            }
            Some(Ok(WsMessage::Close(frame))) => {
                let why = frame
                    .map(|f| format!(" (code {}: {})", f.code, f.reason))
                    .unwrap_or_default();
                return Err(Error::ConnectionLost(format!(
                    "the server closed the connection{why}"
                )));
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn read_welcome(ws: &mut Ws) -> Result<Welcome> {
    let msg = next_message(ws).await.map_err(|e| match e {
        Error::Protocol(why) => Error::Handshake(format!("the first message is not valid: {why}")),
        other => other,
    })?;
    match msg {
        Message::Welcome {
            session_id,
            protocol_version,
            server_ident,
        } => {
            if protocol_version != wamp_proto::message::PROTOCOL_VERSION {
                return Err(Error::Handshake(format!(
                    "WELCOME announces protocol version {protocol_version}, not 1"
                )));
            }
            Ok(Welcome {
                session_id,
                server_ident,
            })
        }
        other => Err(Error::Handshake(format!(
            "the first message is {}, not WELCOME",
            other.name()
        ))),
    }
}

/// One call during connection setup, before the driver serves the connection.
async fn call_inline(ws: &mut Ws, proc_uri: &str, args: Vec<Value>) -> Result<Value> {
    let call_id = wamp_proto::ids::new_id();
    let call = Message::Call {
        call_id: call_id.clone(),
        proc_uri: proc_uri.to_string(),
        args,
    };
    send(ws, &call).await.map_err(Error::ConnectionLost)?;
    loop {
        match next_message(ws).await? {
            Message::CallResult {
                call_id: id,
                result,
            } if id == call_id => return Ok(result),
            Message::CallError {
                call_id: id,
                error_uri,
                error_desc,
                error_details,
            } if id == call_id => {
                return Err(Error::CallError {
                    uri: error_uri,
                    desc: error_desc,
                    details: error_details,
                })
            }
            other => debug!(message = other.name(), "ignored during authentication"),
        }
    }
}

/// WAMP-CRA on a connection that is being set up. A CALLERROR is [`Error::AuthRefused`].
async fn authenticate_inline(ws: &mut Ws, credentials: &Credentials) -> Result<Permissions> {
    let challenge = call_inline(ws, PROC_AUTHREQ, authreq_args(credentials))
        .await
        .map_err(Error::into_auth_refusal)?;
    let signature = sign_challenge(challenge, credentials.secret.clone()).await?;
    let permissions = call_inline(ws, PROC_AUTH, vec![Value::String(signature)])
        .await
        .map_err(Error::into_auth_refusal)?;
    parse_permissions(permissions)
}

/// The arguments of `authreq`: `(authKey, extra | null)`.
pub(crate) fn authreq_args(credentials: &Credentials) -> Vec<Value> {
    vec![
        Value::String(credentials.key.clone()),
        credentials.extra.clone().map_or(Value::Null, Value::Object),
    ]
}

/// Signs the exact challenge text `authreq` returned. PBKDF2 for a salted challenge may take
/// a while, so it runs on the blocking pool.
pub(crate) async fn sign_challenge(challenge: Value, secret: String) -> Result<String> {
    let Value::String(text) = challenge else {
        return Err(Error::Auth(format!(
            "the server's challenge is not a string but {challenge}"
        )));
    };
    tokio::task::spawn_blocking(move || wamp_proto::cra::client_signature(&text, &secret))
        .await
        .map_err(|e| Error::Auth(format!("signing failed: {e}")))?
        .map_err(|e| Error::Auth(e.to_string()))
}

/// Reads the `auth` result.
pub(crate) fn parse_permissions(value: Value) -> Result<Permissions> {
    serde_json::from_value(value)
        .map_err(|e| Error::Auth(format!("the auth result is not a permissions object: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }

    #[tokio::test]
    async fn signing_needs_a_string_challenge() {
        let err = sign_challenge(Value::Null, "s".into()).await.unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err}");
        let err = sign_challenge(Value::String("not json".into()), "s".into())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("invalid WAMP-CRA challenge"),
            "{err}"
        );
        let text = r#"{"authid":"a","authkey":"k","timestamp":"t","sessionid":"s","extra":{},"permissions":{"rpc":[],"pubsub":[]}}"#;
        assert_eq!(
            sign_challenge(Value::String(text.into()), "secret".into())
                .await
                .unwrap(),
            wamp_proto::cra::sign("secret", text)
        );
    }

    #[test]
    fn curies_are_told_from_full_uris() {
        assert_eq!(curie_prefix("event:chat"), Some("event"));
        assert_eq!(curie_prefix("api:a:b"), Some("api"));
        assert_eq!(curie_prefix("x:"), Some("x"));
        for uri in [
            "http://wamptutorial/event#chat",
            "HTTPS://x/y",
            "ws://h/t",
            "custom://h/t",
            "urn:x:y",
            "tag:example.com,2024:t",
            "plain",
            ":empty",
            "",
        ] {
            assert_eq!(curie_prefix(uri), None, "{uri}");
        }
    }

    #[test]
    fn authreq_sends_null_extra_by_default() {
        let c = Credentials::new("guest".into(), "pw".into(), None);
        assert_eq!(
            authreq_args(&c),
            vec![Value::String("guest".into()), Value::Null]
        );
    }

    #[test]
    fn permissions_parse_or_fail_clearly() {
        let p =
            parse_permissions(serde_json::json!({"rpc": [{"uri": "http://x/a", "call": true}]}))
                .unwrap();
        assert!(p.may_call("http://x/a"));
        assert!(matches!(
            parse_permissions(Value::from(3)),
            Err(Error::Auth(_))
        ));
    }
}
