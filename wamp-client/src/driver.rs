//! The driver task: the session loop and reconnecting. It alone reads the connection; a
//! writer task it starts per connection alone writes it.
//!
//! [`Client`](crate::Client) handles talk to the driver over one bounded command channel
//! (back pressure for callers) and one unbounded control channel used only from `Drop` (a
//! dropped subscription or a cancelled call must reach the driver without awaiting; each
//! sends at most one message, so that channel is bounded by the number of live
//! subscriptions and calls). Each subscription receives its events over its own bounded
//! channel filled with `try_send`, so a slow reader never stalls the driver.
//!
//! Per connection, the socket is split: the read half stays in the driver's `select!`, the
//! write half goes to a writer task fed by a bounded queue of frames, which it writes in
//! batches with one flush each (serialising the WAMP messages there). So the driver keeps
//! reading while frames are written (a server whose outbox for this client fills up would
//! otherwise close it). When the queue is full, the driver stops taking commands, not
//! reading: the queue's bound is the back pressure callers feel when the server reads
//! slower than the client writes.
//!
//! Life cycle: `connect` runs [`establish`](crate::connect::establish) and spawns
//! [`Driver::run`]. A session starts by sending the client's own prefixes and one SUBSCRIBE
//! per subscribed topic, then serves commands and frames. When the link drops, every pending
//! call fails with [`Error::ConnectionLost`], and the reconnect policy decides between
//! waiting and trying again (while still answering commands: calls fail fast,
//! subscriptions are kept) and closing for good. The bookkeeping is the
//! [`Registry`](crate::registry::Registry)'s.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tracing::{debug, info, trace, warn, Instrument};
use wamp_proto::Message;

use crate::connect::{self, close_frame, establish, Target, Welcome, Ws, CLOSE_GRACE, WIRE};
use crate::error::{Error, Result};
use crate::options::{ConnectOptions, ConnectionState, Credentials, PublishOptions};
use crate::registry::{CallReply, LocalSub, Registry};

/// How many commands may wait for the driver before callers wait to hand theirs over.
pub(crate) const COMMAND_CAPACITY: usize = 256;

/// How many frames may wait for the writer task before the driver waits to queue more.
const WRITE_QUEUE: usize = 1024;

/// The most frames one command or control message queues (SUBSCRIBE, then UNSUBSCRIBE when
/// its caller gave up meanwhile).
const ROOM: usize = 2;

/// How many queued frames the writer writes before one flush.
const WRITE_BATCH: usize = 64;

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

/// Why a connected session ended.
enum SessionEnd {
    /// The link dropped or misbehaved: reconnect if the policy allows.
    Lost(Error),
    /// The application closed the client or dropped every handle: stop for good.
    Exit(String),
}

/// What the writer task writes: a WAMP message (serialised there, off the driver's task)
/// or a WebSocket frame of the driver's (ping, close).
enum Outgoing {
    Wamp(Message),
    Frame(WsMessage),
}

/// The write side of the current connection: the queue to its writer task.
struct Link {
    out: mpsc::Sender<Outgoing>,
    /// The writer's failure, if it fails.
    failed: oneshot::Receiver<Error>,
    writer: AbortOnDrop,
}

impl Link {
    /// Starts the writer task over `sink`.
    fn start(sink: SplitSink<Ws, WsMessage>) -> Link {
        let (out, queue) = mpsc::channel(WRITE_QUEUE);
        let (fail, failed) = oneshot::channel();
        let writer = AbortOnDrop(tokio::spawn(
            write_loop(sink, queue, fail).instrument(tracing::Span::current()),
        ));
        Link {
            out,
            failed,
            writer,
        }
    }

    /// Queues one WAMP message for the writer.
    async fn send(&mut self, msg: Message) -> Result<()> {
        self.queue(Outgoing::Wamp(msg)).await
    }

    /// Queues one WebSocket frame for the writer.
    async fn send_frame(&mut self, frame: WsMessage) -> Result<()> {
        self.queue(Outgoing::Frame(frame)).await
    }

    /// Queues a close frame if the writer's queue has room, without waiting: a writer blocked
    /// on a server that does not read must not stall the driver. False if it was not queued.
    fn try_close(&mut self, frame: WsMessage) -> bool {
        self.out.try_send(Outgoing::Frame(frame)).is_ok()
    }

    /// Queues for the writer; fails with the writer's error if it has stopped.
    async fn queue(&mut self, out: Outgoing) -> Result<()> {
        if self.out.send(out).await.is_ok() {
            return Ok(());
        }
        Err(self
            .failed
            .try_recv()
            .unwrap_or_else(|_| Error::ConnectionLost("the connection's writer stopped".into())))
    }
}

/// Aborts a task when dropped: a connection's writer does not outlive the connection.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The writer task: writes queued frames in batches, one flush per batch, until the queue
/// closes (the session is over) or a write fails (reported on `fail`).
async fn write_loop(
    mut sink: SplitSink<Ws, WsMessage>,
    mut queue: mpsc::Receiver<Outgoing>,
    fail: oneshot::Sender<Error>,
) {
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        let mut written = 0;
        let mut result = Ok(());
        while let Some(out) = next.take() {
            let frame = match out {
                Outgoing::Wamp(msg) => connect::frame(&msg),
                Outgoing::Frame(frame) => frame,
            };
            result = sink.feed(frame).await;
            if result.is_err() {
                break;
            }
            written += 1;
            if written < WRITE_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if result.is_ok() {
            result = sink.flush().await;
        }
        if let Err(e) = result {
            debug!(error = %e, "writing to the connection failed");
            let _ = fail.send(Error::websocket(e));
            return;
        }
    }
}

/// The driver: state that outlives any one connection.
pub(crate) struct Driver {
    target: Target,
    opts: Arc<ConnectOptions>,
    cmd_rx: mpsc::Receiver<Command>,
    ctl_rx: mpsc::UnboundedReceiver<Control>,
    state: watch::Sender<ConnectionState>,
    registry: Registry,
    credentials: Option<Credentials>,
    /// The current session, while connected.
    session: Option<Welcome>,
    /// Who to tell when a requested close is done.
    close_replies: Vec<oneshot::Sender<()>>,
}

impl Driver {
    pub(crate) fn new(
        target: Target,
        opts: Arc<ConnectOptions>,
        cmd_rx: mpsc::Receiver<Command>,
        ctl_rx: mpsc::UnboundedReceiver<Control>,
        state: watch::Sender<ConnectionState>,
    ) -> Self {
        Driver {
            target,
            credentials: opts.credentials.clone(),
            registry: Registry::new(&opts.prefixes),
            opts,
            cmd_rx,
            ctl_rx,
            state,
            session: None,
            close_replies: Vec::new(),
        }
    }

    /// Runs until the client is closed: serves the connection `connect` established, and
    /// every later one.
    pub(crate) async fn run(mut self, mut ws: Ws, mut welcome: Welcome) {
        let final_reason = loop {
            match self.serve(ws, welcome).await {
                SessionEnd::Exit(reason) => break reason,
                SessionEnd::Lost(error) => {
                    let reason = error.reason();
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
    async fn serve(&mut self, ws: Ws, welcome: Welcome) -> SessionEnd {
        info!(session_id = %welcome.session_id, server = %welcome.server_ident, "connected");
        let (sink, mut stream) = ws.split();
        let mut link = Link::start(sink);
        if let Err(e) = self.resume(&mut link).await {
            return SessionEnd::Lost(e);
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

        // A second handle on the writer's queue, to wait for room while `link` is borrowed.
        let queue = link.out.clone();
        let end = loop {
            // Commands are taken only while the writer's queue has room for what one of them
            // queues, so handling one never waits for the writer: the driver keeps reading
            // however slowly the connection drains.
            let room = queue.capacity() >= ROOM;
            // Not biased: a steady stream of commands must not keep the driver from
            // reading (the server would see a slow consumer), nor the reverse.
            tokio::select! {
                Some(ctl) = self.ctl_rx.recv(), if room => {
                    if let Err(e) = self.on_control(ctl, &mut link).await {
                        break SessionEnd::Lost(e);
                    }
                }
                cmd = self.cmd_rx.recv(), if room => {
                    let Some(cmd) = cmd else {
                        close(link, &mut stream, CloseCode::Normal, "client dropped").await;
                        return SessionEnd::Exit("every Client handle was dropped".into());
                    };
                    if let Command::Close { reply } = cmd {
                        self.close_replies.push(reply);
                        close(link, &mut stream, CloseCode::Normal, "client closed").await;
                        return SessionEnd::Exit("closed by the application".into());
                    }
                    if let Err(e) = self.on_command(cmd, &mut link).await {
                        break SessionEnd::Lost(e);
                    }
                }
                frame = stream.next() => {
                    last_seen = Instant::now();
                    if let Some(end) = self.on_frame(frame, &mut link, &mut stream).await {
                        break end;
                    }
                }
                // The writer has made room again: take commands again.
                _ = queue.reserve_many(ROOM), if !room => {}
                failed = &mut link.failed => {
                    // The writer reports once and then ends; the loop ends with it, so the
                    // receiver is never polled again.
                    break SessionEnd::Lost(failed.unwrap_or_else(|_| {
                        Error::ConnectionLost("the connection's writer stopped".into())
                    }));
                }
                () = tick(&mut ping) => {
                    let every = ping.as_ref().map_or(Duration::MAX, |(_, every)| *every);
                    if last_seen.elapsed() >= every.saturating_mul(2) {
                        break SessionEnd::Lost(Error::ConnectionLost(format!(
                            "nothing received from the server for {:?} (ping unanswered)",
                            last_seen.elapsed()
                        )));
                    }
                    // A full queue means the link is busy anyway: no ping needed this time.
                    let ping = Outgoing::Frame(WsMessage::Ping(Default::default()));
                    if let Err(mpsc::error::TrySendError::Closed(_)) = link.out.try_send(ping) {
                        break SessionEnd::Lost(Error::ConnectionLost(
                            "the connection's writer stopped".into(),
                        ));
                    }
                }
            }
        };
        drop(link.writer);
        end
    }

    /// Sends what a new session must know: the client's own prefixes, then one SUBSCRIBE
    /// per topic with live local subscriptions.
    async fn resume(&mut self, link: &mut Link) -> Result<()> {
        let frames = self.registry.resume_messages();
        if !frames.is_empty() {
            debug!(
                prefixes = self.registry.prefix_count(),
                topics = self.registry.topic_count(),
                "re-sending prefixes and subscriptions"
            );
        }
        for msg in frames {
            link.send(msg).await?;
        }
        Ok(())
    }

    /// Handles one command while connected (not Close, which `serve` handles).
    async fn on_command(&mut self, cmd: Command, link: &mut Link) -> Result<()> {
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
                self.registry.add_call(call_id, reply);
                link.send(msg).await
            }
            Command::Subscribe { topic, sub, reply } => {
                if reply.is_closed() {
                    // The caller gave up before the subscription was made.
                    return Ok(());
                }
                let id = sub.id;
                let (resolved, first) = match self.registry.subscribe(&topic, sub) {
                    Ok(filed) => filed,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                };
                if first {
                    link.send(Message::Subscribe {
                        topic_uri: resolved.clone(),
                    })
                    .await?;
                }
                if reply.send(Ok(resolved)).is_err() {
                    // The caller gave up meanwhile: no Subscription exists to undo this.
                    self.remove_subscription(id, link).await?;
                }
                Ok(())
            }
            Command::Unsubscribe { id, reply } => {
                let result = self.remove_subscription(id, link).await;
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
                let result = link.send(msg).await;
                let _ = reply.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(Error::ConnectionLost(e.reason())),
                });
                result
            }
            Command::Prefix { prefix, uri, reply } => {
                self.registry.define_prefix(prefix.clone(), uri.clone());
                let result = link.send(Message::Prefix { prefix, uri }).await;
                let _ = reply.send(());
                result
            }
            Command::SetCredentials(credentials) => {
                self.credentials = Some(credentials);
                Ok(())
            }
            Command::Close { .. } => unreachable!("serve handles Close"),
        }
    }

    /// Handles a message sent from a `Drop` while connected.
    async fn on_control(&mut self, ctl: Control, link: &mut Link) -> Result<()> {
        match ctl {
            Control::Unsubscribe(id) => self.remove_subscription(id, link).await,
            Control::ForgetCall(call_id) => {
                if self.registry.forget_call(&call_id) {
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
        link: &mut Link,
        stream: &mut SplitStream<Ws>,
    ) -> Option<SessionEnd> {
        let msg = match frame {
            None => {
                return Some(SessionEnd::Lost(Error::ConnectionLost(
                    "the connection closed".into(),
                )))
            }
            Some(Err(e)) => return Some(SessionEnd::Lost(Error::websocket(e))),
            Some(Ok(msg)) => msg,
        };
        let (code, fault) = match msg {
            WsMessage::Text(text) => match self.on_text(text.as_str()) {
                Ok(()) => return None,
                Err(e) => (CloseCode::Protocol, e),
            },
            WsMessage::Binary(_) => (
                CloseCode::Unsupported,
                Error::Protocol("the server sent a binary frame; WAMP v1 uses text frames".into()),
            ),
            WsMessage::Close(frame) => {
                // Reading on lets tungstenite send its reply to the closing handshake.
                drain(stream).await;
                let why = match frame {
                    Some(f) if f.reason.is_empty() => format!("code {}", f.code),
                    Some(f) => format!("code {}: {}", f.code, f.reason),
                    None => "no close code".to_string(),
                };
                return Some(SessionEnd::Lost(Error::ConnectionLost(format!(
                    "the server closed the connection ({why})"
                ))));
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => return None,
        };
        warn!(reason = %fault, "protocol error from the server; closing the connection");
        let reason = match &fault {
            Error::Protocol(why) => why.clone(),
            Error::InvalidMessage(why) => why.to_string(),
            other => other.to_string(),
        };
        if !link.try_close(close_frame(code, &reason)) {
            debug!("the writer's queue is full; dropping the connection without a close frame");
        }
        drain(stream).await;
        Some(SessionEnd::Lost(fault))
    }

    /// Handles one text frame. An error is a protocol error: the frame was not a message a
    /// server may send.
    fn on_text(&mut self, text: &str) -> Result<()> {
        trace!(target: WIRE, "received {text}");
        match Message::from_json(text)? {
            Message::CallResult { call_id, result } => self.answer(&call_id, Ok(result)),
            Message::CallError {
                call_id,
                error_uri,
                error_desc,
                error_details,
            } => self.answer(
                &call_id,
                Err(Error::CallError {
                    uri: error_uri,
                    desc: error_desc,
                    details: error_details,
                }),
            ),
            Message::Event { topic_uri, event } => {
                self.registry.deliver(topic_uri, event);
            }
            Message::Welcome { .. } => {
                return Err(Error::Protocol(
                    "the server sent a second WELCOME in one session".into(),
                ))
            }
            other => {
                return Err(Error::Protocol(format!(
                    "the server sent {}, a message only clients send",
                    other.name()
                )))
            }
        }
        Ok(())
    }

    fn answer(&mut self, call_id: &str, result: Result<Value>) {
        if !self.registry.answer(call_id, result) {
            debug!(%call_id, "answer to a call no one waits for (timed out or unknown)");
        }
    }

    /// Removes a local subscription and, if it was the topic's last, sends UNSUBSCRIBE.
    async fn remove_subscription(&mut self, id: u64, link: &mut Link) -> Result<()> {
        match self.registry.unsubscribe(id) {
            Some(topic) => link.send(Message::Unsubscribe { topic_uri: topic }).await,
            None => Ok(()),
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
        let calls = self.registry.pending_calls();
        if calls > 0 {
            debug!(calls, %error, "failing calls in flight");
        }
        self.registry.fail_calls(error);
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
                self.target.clone(),
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

    /// Answers commands as a disconnected client until `fut` completes. `Err` with the
    /// reason when the application closed the client meanwhile.
    async fn idle_until<T>(&mut self, fut: impl Future<Output = T>) -> Result<T, String> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                Some(ctl) = self.ctl_rx.recv() => match ctl {
                    Control::Unsubscribe(id) => {
                        self.registry.unsubscribe(id);
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
                    .registry
                    .subscribe(&topic, sub)
                    .map(|(resolved, _)| resolved);
                let ok = filed.is_ok();
                if reply.send(filed).is_err() && ok {
                    self.registry.unsubscribe(id);
                }
            }
            Command::Unsubscribe { id, reply } => {
                self.registry.unsubscribe(id);
                let _ = reply.send(());
            }
            Command::Prefix { prefix, uri, reply } => {
                self.registry.define_prefix(prefix, uri);
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
        self.registry.clear_subscriptions();
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

/// Starts the closing handshake and waits a little for the server's reply; then the writer
/// stops.
async fn close(mut link: Link, stream: &mut SplitStream<Ws>, code: CloseCode, reason: &str) {
    if link.send_frame(close_frame(code, reason)).await.is_ok() {
        drain(stream).await;
    }
}

/// Reads until the connection ends, at most [`CLOSE_GRACE`]: that is how a closing
/// handshake completes (tungstenite writes its reply to a Close while reading).
async fn drain(stream: &mut SplitStream<Ws>) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}
