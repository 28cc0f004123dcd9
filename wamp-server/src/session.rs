//! One session: its shared handle (the outbox), its private state, the reader loop and THE
//! dispatch `match` over client messages.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{debug, info_span, warn, Instrument};
use wamp_proto::message::call_result_json;
use wamp_proto::uri::{errors, Prefixes, PROC_AUTH, PROC_AUTHREQ};
use wamp_proto::{Exclude, Message, Permissions};

use crate::auth::AuthState;
use crate::close;
use crate::handler::{CallContext, CallError};
use crate::router::Router;
use crate::topic::{Publication, PublishPolicy, SubscribePolicy, TopicContext};
use crate::transport::{Inbound, Outbound};

/// What the writer task is asked to send.
enum Outgoing {
    Frame(Utf8Bytes),
    /// Boxed so that the queue's slots stay the size of a frame handle.
    Close(Box<(u16, String)>),
}

/// The part of a session that others hold: the router (to publish to it or close it) and
/// call tasks (to reply). Sending never blocks: a full queue closes the session.
///
/// The queue is an unbounded channel with its bound kept by a counter of queued frames: one
/// atomic add per frame instead of a semaphore acquire and release (fan-out sends one frame to
/// every subscriber of a topic, so this is the hottest path of a publish).
pub(crate) struct SessionHandle {
    pub(crate) id: Arc<str>,
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Frames queued and not yet taken by the writer.
    queued: AtomicUsize,
    /// The most frames that may be queued ([`crate::Options::outbox_capacity`]).
    capacity: usize,
    /// A close that must skip the queue (the queue is full, or the session must stop now).
    abort: Mutex<Option<(u16, String)>>,
    abort_signal: Notify,
    /// Why the server closed this session, the first reason given.
    close_reason: Mutex<Option<String>>,
}

impl SessionHandle {
    /// Queues a text frame. Returns `false` if the session is closing or was just closed
    /// because its queue is full.
    pub(crate) fn send(&self, frame: Utf8Bytes) -> bool {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.abort(
                close::SLOW_CONSUMER,
                "outgoing queue full: the client does not read fast enough",
            );
            return false;
        }
        self.tx.send(Outgoing::Frame(frame)).is_ok()
    }

    fn note_reason(&self, reason: &str) {
        let mut slot = self.close_reason.lock().expect("close reason lock");
        if slot.is_none() {
            *slot = Some(reason.to_string());
        }
    }

    /// Closes after the frames already queued.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        self.note_reason(reason);
        // The queue has no hard limit, so a close always fits behind the frames before it.
        let _ = self
            .tx
            .send(Outgoing::Close(Box::new((code, reason.to_string()))));
    }

    /// Closes now, dropping whatever is queued.
    pub(crate) fn abort(&self, code: u16, reason: &str) {
        self.note_reason(reason);
        let mut slot = self.abort.lock().expect("abort lock");
        if slot.is_none() {
            *slot = Some((code, reason.to_string()));
            drop(slot);
            if code == close::NORMAL {
                debug!(code, reason, "closing session");
            } else {
                warn!(code, reason, "closing session");
            }
            self.abort_signal.notify_one();
        }
    }
}

/// The only writer of a session's socket: drains the queue, batching frames that are
/// already waiting into one flush, until a close is asked for or the socket fails.
async fn write_loop<Si>(
    mut sink: Si,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    handle: Arc<SessionHandle>,
) where
    Si: Sink<Outbound> + Unpin,
{
    /// Frames fed before a flush, at most.
    const BATCH: usize = 64;
    let close = 'outer: loop {
        let first = tokio::select! {
            biased;
            _ = handle.abort_signal.notified() => {
                break 'outer handle.abort.lock().expect("abort lock").take();
            }
            next = rx.recv() => next,
        };
        let mut next = first;
        let mut fed = 0;
        loop {
            match next {
                None => break 'outer None,
                Some(Outgoing::Close(close)) => break 'outer Some(*close),
                Some(Outgoing::Frame(frame)) => {
                    handle.queued.fetch_sub(1, Ordering::Relaxed);
                    if sink.feed(Outbound::Text(frame)).await.is_err() {
                        return;
                    }
                }
            }
            fed += 1;
            if fed == BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(m) => next = Some(m),
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    };
    if let Some((code, reason)) = close {
        let _ = sink.send(Outbound::Close(code, reason)).await;
    }
    let _ = sink.close().await;
}

/// Where a connection came from, for logs.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    /// The peer's address, if known.
    pub peer: Option<std::net::SocketAddr>,
}

/// Runs one WAMP session over any transport of text messages: sends WELCOME, reads and
/// dispatches client messages until the connection ends, then cleans up (subscriptions,
/// hooks). This is the seam for other transports: [`crate::serve`] and
/// [`crate::axum_handler`] both end here.
///
/// `stream` yields what the client sent; `sink` takes what goes to the client. The router's
/// connection limit is the caller's business: hold a [`Router::try_connection`] slot around
/// this call.
pub async fn run_session<St, Si>(router: Router, info: ConnectionInfo, stream: St, sink: Si)
where
    St: Stream<Item = Inbound> + Unpin + Send,
    Si: Sink<Outbound> + Unpin + Send + 'static,
{
    let id: Arc<str> = Arc::from(wamp_proto::ids::new_session_id());
    let span = info_span!("session", id = %id);
    run(router, info, stream, sink, id).instrument(span).await
}

async fn run<St, Si>(router: Router, info: ConnectionInfo, mut stream: St, sink: Si, id: Arc<str>)
where
    St: Stream<Item = Inbound> + Unpin + Send,
    Si: Sink<Outbound> + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = Arc::new(SessionHandle {
        id: id.clone(),
        tx,
        queued: AtomicUsize::new(0),
        capacity: router.options().outbox_capacity,
        abort: Mutex::new(None),
        abort_signal: Notify::new(),
        close_reason: Mutex::new(None),
    });
    let welcome = Message::Welcome {
        session_id: id.to_string(),
        protocol_version: wamp_proto::message::PROTOCOL_VERSION,
        server_ident: router.options().server_ident.clone(),
    };
    handle.send(Utf8Bytes::from(welcome.to_json()));
    // The writer is aborted if this future is dropped early (e.g. its task is aborted), so the
    // socket never outlives the session.
    let mut writer = AbortOnDrop(tokio::spawn(
        write_loop(sink, rx, handle.clone()).in_current_span(),
    ));
    router.register_session(handle.clone());
    debug!(peer = ?info.peer, "session opened");
    if let Some(hook) = &router.inner.hooks.session_opened {
        hook(&id);
    }

    let auth_deadline = router
        .inner
        .auth
        .as_ref()
        .filter(|a| !a.timeout.is_zero())
        .map(|a| Instant::now() + a.timeout);
    let mut session = Session {
        router: router.clone(),
        handle: handle.clone(),
        prefixes: router.new_prefixes(),
        subscriptions: HashSet::new(),
        auth: AuthState::default(),
        calls: JoinSet::new(),
    };
    let mut shutdown = router.inner.shutdown.subscribe();
    let end = if *shutdown.borrow_and_update() {
        End::Shutdown
    } else {
        loop {
            let auth_timer = async {
                match auth_deadline {
                    Some(at) if !session.auth.is_authenticated() => {
                        tokio::time::sleep_until(at).await
                    }
                    _ => std::future::pending().await,
                }
            };
            let fatal: Option<Fatal> = tokio::select! {
                inbound = stream.next() => match inbound {
                    Some(Inbound::Text(text)) => session.handle_text(&text).await.err(),
                    Some(Inbound::Binary) => Some((
                        close::UNSUPPORTED_DATA,
                        "binary frames are not supported: send WAMP messages as JSON text frames"
                            .into(),
                    )),
                    Some(Inbound::TooBig) => Some((
                        close::MESSAGE_TOO_BIG,
                        format!(
                            "message too big: the limit is {} bytes",
                            router.options().max_message_size
                        ),
                    )),
                    Some(Inbound::Close) | None => break End::Client,
                },
                Some(_) = session.calls.join_next(), if !session.calls.is_empty() => None,
                _ = &mut writer.0 => break End::Lost,
                _ = auth_timer => Some((
                    close::AUTH_TIMEOUT,
                    "authentication timeout: the session did not authenticate in time".into(),
                )),
                _ = shutdown.changed() => break End::Shutdown,
            };
            if let Some((code, reason)) = fatal {
                warn!(code, %reason, "closing session");
                handle.close(code, &reason);
                break End::Closed;
            }
        }
    };

    // Leave the router first, so nothing new is sent to this session.
    session.leave();
    match end {
        End::Shutdown => {
            // Let calls in flight answer, then say goodbye after their replies.
            let grace = router.options().shutdown_grace;
            let _ = tokio::time::timeout(grace, async {
                while session.calls.join_next().await.is_some() {}
            })
            .await;
            handle.close(close::GOING_AWAY, "server shutting down");
        }
        End::Client => {
            // Answer the client's close; calls still running finish, their replies go nowhere.
            session.calls.detach_all();
            handle.abort(close::NORMAL, "closed by the client");
        }
        End::Lost | End::Closed => session.calls.detach_all(),
    }
    drop(stream);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer.0).await;
    drop(writer);
    let reason = handle
        .close_reason
        .lock()
        .expect("close reason lock")
        .clone()
        .unwrap_or_else(|| "connection lost".to_string());
    debug!(%reason, "session closed");
    if let Some(hook) = &router.inner.hooks.session_closed {
        hook(&id, &reason);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A session's private state, owned by its reader loop. Dropping it takes the session out of
/// the router, also when the session's future is dropped before it finishes.
struct Session {
    router: Router,
    handle: Arc<SessionHandle>,
    prefixes: Prefixes,
    /// Full URIs of the topics this session subscribes to.
    subscriptions: HashSet<String>,
    auth: AuthState,
    /// Calls running in their own tasks.
    calls: JoinSet<()>,
}

/// A reason to close the session: a WebSocket close code and a reason text.
type Fatal = (u16, String);

/// How the reader loop ended.
enum End {
    /// The client closed the connection.
    Client,
    /// The writer stopped: the socket failed, or the server closed the session.
    Lost,
    /// The router is shutting down.
    Shutdown,
    /// The session broke a rule and is being closed.
    Closed,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Session {
    /// Takes the session out of the router: no longer listed, no longer subscribed (the
    /// unsubscribe hook runs for each topic it had). Idempotent.
    fn leave(&mut self) {
        let id = &self.handle.id;
        self.router.unregister_session(id);
        for topic in std::mem::take(&mut self.subscriptions) {
            self.router.inner.broker.unsubscribe(&topic, id);
            if let Some(hook) = &self.router.inner.hooks.unsubscribed {
                hook(id, &topic);
            }
        }
    }

    /// Parses one text frame and does what it says.
    async fn handle_text(&mut self, text: &str) -> Result<(), Fatal> {
        let msg = Message::from_json(text)
            .map_err(|e| (close::PROTOCOL_ERROR, format!("protocol error: {e}")))?;
        match msg {
            Message::Prefix { prefix, uri } => {
                self.prefixes.insert(prefix, uri);
            }
            Message::Call {
                call_id,
                proc_uri,
                args,
            } => self.on_call(call_id, &proc_uri, args).await,
            Message::Subscribe { topic_uri } => self.on_subscribe(&topic_uri).await,
            Message::Unsubscribe { topic_uri } => self.on_unsubscribe(&topic_uri),
            Message::Publish {
                topic_uri,
                event,
                exclude,
                eligible,
            } => self.on_publish(&topic_uri, event, exclude, eligible).await,
            other => {
                return Err((
                    close::PROTOCOL_ERROR,
                    format!(
                        "protocol error: {} is sent by servers, not clients",
                        other.name()
                    ),
                ))
            }
        }
        Ok(())
    }

    /// The permissions in force: `None` when the router has no authentication (everything
    /// that exists is allowed).
    fn permissions(&self) -> Option<&Permissions> {
        let auth = self.router.inner.auth.as_ref()?;
        Some(match &self.auth {
            AuthState::Authenticated { permissions, .. } => permissions,
            _ => &auth.unauthenticated,
        })
    }

    fn reply(&self, call_id: &str, result: Result<Value, CallError>) {
        reply(&self.handle, call_id, result);
    }

    async fn on_call(&mut self, call_id: String, proc_uri: &str, args: Vec<Value>) {
        // Resolved straight into the Arc the call context keeps: one allocation per call.
        let uri: Arc<str> = Arc::from(self.prefixes.resolve(proc_uri).as_ref());
        debug!(%call_id, procedure = %uri, "call");
        if let Some(auth) = &self.router.inner.auth {
            if &*uri == PROC_AUTHREQ {
                let result = self.auth.authreq(auth, &self.handle.id, &args).await;
                return self.reply(&call_id, result);
            }
            if &*uri == PROC_AUTH {
                let result = self.auth.auth(auth, &args).await;
                if result.is_ok() {
                    debug!(key = ?self.auth.key(), "authenticated");
                }
                return self.reply(&call_id, result);
            }
        }
        // Not found before unauthorized (docs/PROTOCOL.md section 4): a typo in a procedure name
        // should say so, whatever the session's permissions.
        let Some(procedure) = self.router.procedure(&uri) else {
            return self.reply(&call_id, Err(errors::NOT_FOUND.into()));
        };
        if self.permissions().is_some_and(|p| !p.may_call(&uri)) {
            return self.reply(&call_id, Err(errors::UNAUTHORIZED.into()));
        }
        let ctx = CallContext {
            session_id: self.handle.id.clone(),
            auth_key: self.auth.key(),
            procedure: uri,
            router: self.router.clone(),
        };
        let handle = self.handle.clone();
        let call = async move {
            let hooks = &ctx.router.inner.hooks;
            // The hooks and the handler run under catch_unwind: a panic in any of them is an
            // #internal error for this call, never a dead session.
            let result = AssertUnwindSafe(async {
                let args = match &hooks.before_call {
                    Some(hook) => hook(&ctx, args)?,
                    None => args,
                };
                procedure(ctx.clone(), args).await
            })
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let message = panic_message(panic.as_ref());
                warn!(procedure = %ctx.procedure, %message, "procedure panicked");
                Err(CallError::internal(message))
            });
            if let Some(hook) = &hooks.after_call {
                if std::panic::catch_unwind(AssertUnwindSafe(|| hook(&ctx, &result))).is_err() {
                    warn!(procedure = %ctx.procedure, "after_call hook panicked");
                }
            }
            reply(&handle, &call_id, result);
        };
        // Fast path: a handler that finishes without waiting (echo, a lookup) is answered
        // right here, saving a task spawn and a hop between tasks. One that waits goes on in
        // its own task, so it never holds up this session's other messages.
        let mut call = Box::pin(call.in_current_span());
        if futures::poll!(call.as_mut()).is_pending() {
            self.calls.spawn(call);
        }
    }

    async fn on_subscribe(&mut self, topic_uri: &str) {
        let uri = self.prefixes.resolve(topic_uri).into_owned();
        if self.subscriptions.contains(&uri) {
            return;
        }
        if self.permissions().is_some_and(|p| !p.may_subscribe(&uri)) {
            debug!(topic = %uri, "subscribe denied by permissions");
            return;
        }
        let allowed = match self.router.topic_policy(&uri).map(|t| t.subscribe) {
            None | Some(SubscribePolicy::Deny) => false,
            Some(SubscribePolicy::Allow) => true,
            Some(SubscribePolicy::Check(check)) => check(self.topic_context(&uri)).await,
        };
        if !allowed {
            debug!(topic = %uri, "subscribe denied by topic policy");
            return;
        }
        self.router.inner.broker.subscribe(&uri, &self.handle);
        debug!(topic = %uri, "subscribed");
        if let Some(hook) = &self.router.inner.hooks.subscribed {
            hook(&self.handle.id, &uri);
        }
        self.subscriptions.insert(uri);
    }

    fn on_unsubscribe(&mut self, topic_uri: &str) {
        let uri = self.prefixes.resolve(topic_uri);
        if self.subscriptions.remove(uri.as_ref()) {
            self.router.inner.broker.unsubscribe(&uri, &self.handle.id);
            debug!(topic = %uri, "unsubscribed");
            if let Some(hook) = &self.router.inner.hooks.unsubscribed {
                hook(&self.handle.id, &uri);
            }
        }
    }

    async fn on_publish(
        &mut self,
        topic_uri: &str,
        event: Value,
        exclude: Option<Exclude>,
        eligible: Option<Vec<String>>,
    ) {
        let uri = self.prefixes.resolve(topic_uri).into_owned();
        if self.permissions().is_some_and(|p| !p.may_publish(&uri)) {
            debug!(topic = %uri, "publish denied by permissions");
            return;
        }
        let Some(policy) = self.router.topic_policy(&uri).map(|t| t.publish) else {
            debug!(topic = %uri, "publish to a topic no policy opens");
            return;
        };
        let receives_own = self.router.options().publisher_receives_own_events;
        let (mut exclude, exclude_me) = match exclude {
            None => (Vec::new(), !receives_own),
            Some(Exclude::Me(me)) => (Vec::new(), me),
            Some(Exclude::Sessions(ids)) => (ids, false),
        };
        if exclude_me {
            exclude.push(self.handle.id.to_string());
        }
        let publication = Publication {
            event,
            exclude,
            eligible,
        };
        let publication = match policy {
            PublishPolicy::Deny => None,
            PublishPolicy::Allow => Some(publication),
            PublishPolicy::Broker(broker) => broker(self.topic_context(&uri), publication).await,
        };
        let Some(p) = publication else {
            debug!(topic = %uri, "publish dropped by topic policy");
            return;
        };
        let n = self
            .router
            .inner
            .broker
            .publish(&uri, &p.event, &p.exclude, p.eligible.as_deref());
        debug!(topic = %uri, recipients = n, "published");
        if let Some(hook) = &self.router.inner.hooks.published {
            hook(&self.handle.id, &uri, &p.event);
        }
    }

    fn topic_context(&self, uri: &str) -> TopicContext {
        TopicContext {
            session_id: self.handle.id.clone(),
            auth_key: self.auth.key(),
            topic: Arc::from(uri),
            router: self.router.clone(),
        }
    }
}

/// Queues the CALLRESULT or CALLERROR for a call, and closes the session afterwards if the
/// application error asks for it.
fn reply(handle: &SessionHandle, call_id: &str, result: Result<Value, CallError>) {
    match result {
        Ok(value) => {
            handle.send(Utf8Bytes::from(call_result_json(call_id, &value)));
        }
        Err(e) => {
            let close_after = e.close_session;
            let msg = Message::CallError {
                call_id: call_id.to_string(),
                error_uri: e.uri,
                error_desc: e.desc,
                error_details: e.details,
            };
            handle.send(Utf8Bytes::from(msg.to_json()));
            if close_after {
                handle.close(
                    close::KILLED,
                    "killing WAMP session upon request by application exception",
                );
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "the procedure panicked".to_string()
    }
}
