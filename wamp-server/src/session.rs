//! One session: its private state, the reader loop and THE dispatch `match` over client
//! messages. What others hold of a session (its outbox and writer) is in `outbox.rs`.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::{FutureExt, Sink, Stream, StreamExt};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, info_span, warn, Instrument};
use wamp_proto::message::{call_result_json, TYPE_CALLERROR, TYPE_CALLRESULT, TYPE_WELCOME};
use wamp_proto::uri::{errors, Prefixes, PROC_AUTH, PROC_AUTHREQ};
use wamp_proto::{Exclude, Message, Permissions};

use crate::auth::{self, AuthState, AuthUser, AuthreqStep, ProviderError};
use crate::close::SessionError;
use crate::handler::{BoxFuture, CallContext, CallError};
use crate::outbox::{SessionHandle, Writer, WriterEvent};
use crate::router::{Router, ShutdownClose};
use crate::stats::{AuthResult, CallOutcome, CloseReason};
use crate::topic::{Publication, PublishPolicy, SubscribePolicy, TopicContext};
use crate::transport::{Inbound, Outbound, Text};

/// How long a session waits for its writer to finish after the reader loop ended, beyond
/// [`crate::Options::close_wait`].
pub(crate) const WRITER_WAIT: Duration = Duration::from_secs(5);

/// Where a connection came from, for logs.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    /// The peer's address, if known.
    pub peer: Option<std::net::SocketAddr>,
}

/// Runs one WAMP session over any transport of text messages: sends WELCOME, reads and
/// dispatches client messages until the connection ends, then cleans up (subscriptions,
/// calls, hooks). This is the seam for other transports: [`crate::serve`] and
/// [`crate::axum_handler`] both end here.
///
/// `socket` is one value, the connection both ways: as a stream it yields what the client
/// sent, as a sink it takes what goes to the client. The session's one task reads and writes
/// it (no second task, no lock between a reader and a writer half). The router's connection
/// limit is the caller's business: hold a [`Router::try_connection`] slot around this call.
///
/// The returned future holds the session's state and its writer (about 1.3 KiB besides the
/// socket). (A plain function returning the future, not an `async fn`: one wrapping it would
/// hold the inner future twice, rust-lang/rust#62958.)
pub fn run_session<T>(
    router: Router,
    info: ConnectionInfo,
    socket: T,
) -> impl Future<Output = ()> + Send
where
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send + 'static,
{
    let id: Arc<str> = Arc::from(wamp_proto::ids::new_session_id());
    let span = match info.peer {
        Some(peer) => info_span!("session", id = %id, %peer),
        None => info_span!("session", id = %id, peer = "unknown"),
    };
    run(router, socket, id).instrument(span)
}

async fn run<T>(router: Router, socket: T, id: Arc<str>)
where
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send + 'static,
{
    let options = router.options();
    let (handle, rx) = SessionHandle::new(
        id.clone(),
        options.outbox_capacity,
        options.outbox_max_bytes,
        router.counters().clone(),
    );
    let welcome = Message::Welcome {
        session_id: id.to_string(),
        protocol_version: wamp_proto::message::PROTOCOL_VERSION,
        server_ident: options.server_ident.clone(),
    };
    let welcome = welcome.to_json();
    router.counters().sent(TYPE_WELCOME, 1, welcome.len());
    handle.send(Text::from(welcome));
    // The socket and its writer, polled by this task alone: dropped with this future, so the
    // socket never outlives the session.
    let mut conn = Connection {
        socket,
        writer: Writer::new(rx, options.close_wait),
        reads: 0,
    };
    // From here on, dropping `session` (at the end, on a panic, or when this future is
    // dropped) takes the session out of the router and runs the session_closed hook.
    let mut session = Session {
        router: router.clone(),
        handle: handle.clone(),
        prefixes: router.new_prefixes(),
        subscriptions: HashSet::new(),
        auth: AuthState::default(),
        calls: JoinSet::new(),
        opened: std::time::Instant::now(),
        pubsub: PubSubQueue::default(),
    };
    router.register_session(handle.clone());
    router.counters().session_opened();
    info!("session opened");
    router.session_opened(&id);

    let auth_deadline = router
        .auth()
        .filter(|a| !a.timeout.is_zero())
        .map(|a| Instant::now() + a.timeout);
    let max_calls = options.max_calls_in_flight;
    let mut shutdown = router.shutdown_signal();
    // Whether the writer is done (the socket is closed or failed).
    let mut writer_done = false;
    // One timer for the session's life (not one per message); it only counts while the
    // session has not authenticated. Boxed and only with a deadline: a router without
    // authentication keeps no timer in every session's state.
    let mut auth_timer = auth_deadline.map(|at| Box::pin(tokio::time::sleep_until(at)));
    let end = if *shutdown.borrow_and_update() {
        End::Shutdown
    } else {
        // Waited on for the session's life, not made anew per message: each new `changed()`
        // registers with (and leaves) the router's one shutdown channel, a lock that every
        // session shares, and the loop runs once per message read and per batch written.
        let stopping = shutdown.changed();
        tokio::pin!(stopping);
        loop {
            let fatal: Option<SessionError> = tokio::select! {
                // The socket: frames queued for the client are written, and at the cap of
                // calls in flight (PubSub messages waiting on a topic policy count too) it is
                // not read, so TCP pushes back on the client.
                event = conn.next(session.in_flight() < max_calls) => match event {
                    Event::Aborted => break End::Closed,
                    Event::WriterDone => {
                        writer_done = true;
                        break End::Lost;
                    }
                    // Never waits: a slow call or topic policy goes on beside the reader.
                    Event::Inbound(Some(Inbound::Text(text))) => {
                        router.counters().received_bytes(text.len());
                        session.handle_text(&text).err()
                    }
                    Event::Inbound(Some(Inbound::Binary)) => Some(SessionError::Binary),
                    Event::Inbound(Some(Inbound::TooBig)) => {
                        Some(SessionError::TooBig(options.max_message_size))
                    }
                    Event::Inbound(Some(Inbound::Ping(len))) => {
                        handle.charge_pong(len);
                        None
                    }
                    Event::Inbound(Some(Inbound::Violation(code, reason))) => {
                        Some(SessionError::WebSocket(code, reason))
                    }
                    Event::Inbound(Some(Inbound::Close) | None) => break End::Client,
                },
                Some(done) = session.calls.join_next(), if !session.calls.is_empty() => {
                    session.finished(done);
                    None
                }
                // The topic policy the oldest PubSub message waited on decided: apply it, go
                // on with the messages queued behind it.
                decided = session.pubsub.decided() => session.decided(decided).err(),
                _ = sleep_if_some(&mut auth_timer), if !session.auth.is_authenticated() => {
                    Some(SessionError::AuthTimeout)
                }
                _ = &mut stopping => break End::Shutdown,
            };
            if let Some(e) = fatal {
                // The session id as a field too: the session span is INFO, and may be off.
                warn!(session = %id, code = e.code(), reason = %e, "closing session");
                handle.close_for(&e);
                break End::Closed;
            }
        }
    };

    // Leave the router first, so nothing new is sent to this session.
    session.leave();
    match end {
        End::Shutdown => {
            // Let calls in flight answer (their replies are written meanwhile), then say
            // goodbye after their replies.
            let _ = tokio::time::timeout(options.shutdown_grace, async {
                loop {
                    tokio::select! {
                        done = session.calls.join_next() => match done {
                            Some(done) => session.finished(done),
                            None => break,
                        },
                        event = conn.write(), if !writer_done => {
                            writer_done = event == WriterEvent::Done;
                        }
                    }
                }
            })
            .await;
            let reason = SessionError::ShuttingDown;
            match options.shutdown_close {
                ShutdownClose::Drop => handle.end(&reason.reason()),
                ShutdownClose::Handshake(code) => {
                    handle.close_as(CloseReason::Shutdown, code, &reason.reason())
                }
            }
        }
        // Answer the client's close.
        End::Client => handle.abort_for(&SessionError::ClientClosed),
        End::Lost | End::Closed => {}
    }
    // Calls still running: aborted by default, their replies would go nowhere.
    if options.detach_calls_on_close {
        session.calls.detach_all();
    } else {
        session.calls.abort_all();
    }
    if !writer_done {
        let wait = options.close_wait + WRITER_WAIT;
        let _ = tokio::time::timeout(wait, conn.writer.finish(&mut conn.socket)).await;
    }
    drop(conn);
    // Runs the session_closed hook, after the socket is closed.
    drop(session);
}

/// Waits for the timer, or forever without one.
async fn sleep_if_some(timer: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// A session's socket and the writer of its outbox, read and written by the session's one
/// task.
struct Connection<T> {
    socket: T,
    writer: Writer,
    /// Messages read since the writer was last polled.
    reads: usize,
}

/// What happened on a session's socket.
enum Event {
    /// The client sent this (`None`: the connection ended).
    Inbound(Option<Inbound>),
    /// The session was aborted (the outbox overflowed, the client closed, or it must stop
    /// now): it stops reading, the writer goes on with the close.
    Aborted,
    /// The writer is done: the socket failed, or the server closed the session.
    WriterDone,
}

impl<T> Connection<T>
where
    T: Stream<Item = Inbound> + Sink<Outbound> + Unpin,
{
    /// Reads at most this many messages in a row before the writer gets its turn (sooner
    /// once the outbox holds a quarter of its byte bound). Reading first lets the replies to
    /// everything one read brought leave in one write; the bounds keep a client that never
    /// stops sending from starving its own replies, or from being closed for a full outbox
    /// while it does read.
    const READS_PER_WRITE: usize = 64;

    /// The next thing that happened on the socket, writing what is queued meanwhile; reads
    /// only if `read` (at the cap of calls in flight it does not). Cancel-safe: all state is
    /// in `self`.
    fn next(&mut self, read: bool) -> impl Future<Output = Event> + '_ {
        std::future::poll_fn(move |cx| self.poll_event(cx, read))
    }

    fn poll_event(&mut self, cx: &mut std::task::Context<'_>, read: bool) -> Poll<Event> {
        let mut read_polled = false;
        if read
            && self.reads < Self::READS_PER_WRITE
            && !self.writer.abort_waiting()
            && !self.writer.much_queued()
        {
            read_polled = true;
            if let Poll::Ready(inbound) = self.socket.poll_next_unpin(cx) {
                self.reads += 1;
                return Poll::Ready(Event::Inbound(inbound));
            }
        }
        self.reads = 0;
        match self.writer.poll_write(&mut self.socket, cx) {
            Poll::Ready(WriterEvent::Aborted) => return Poll::Ready(Event::Aborted),
            Poll::Ready(WriterEvent::Done) => return Poll::Ready(Event::WriterDone),
            Poll::Pending => {}
        }
        if read && !read_polled {
            if let Poll::Ready(inbound) = self.socket.poll_next_unpin(cx) {
                self.reads = 1;
                return Poll::Ready(Event::Inbound(inbound));
            }
        }
        Poll::Pending
    }

    /// The writer's next event (for when the session no longer reads).
    fn write(&mut self) -> impl Future<Output = WriterEvent> + '_ {
        std::future::poll_fn(move |cx| self.writer.poll_write(&mut self.socket, cx))
    }
}

/// A session's private state, owned by its reader loop. Dropping it takes the session out of
/// the router and runs the session_closed hook, also when the session's future is dropped
/// before it finishes or its task panics.
struct Session {
    router: Router,
    handle: Arc<SessionHandle>,
    prefixes: Prefixes,
    /// Full URIs of the topics this session subscribes to.
    subscriptions: HashSet<String>,
    auth: AuthState,
    /// Calls running in their own tasks (and credential lookups, and held-back answers).
    calls: JoinSet<Done>,
    /// When the session opened, for the close log line.
    opened: std::time::Instant,
    /// SUBSCRIBE, UNSUBSCRIBE and PUBLISH behind a topic policy callback being awaited.
    pubsub: PubSubQueue,
}

/// A session's PubSub messages in the order they came: each is handled once those before it
/// are, so a PUBLISH after a SUBSCRIBE sees its outcome, while the session's reader goes on
/// with its calls. Most need no wait and never queue.
#[derive(Default)]
struct PubSubQueue {
    waiting: VecDeque<PubSub>,
    /// The topic policy callback of the oldest message, under `policy_timeout`.
    pending: Option<BoxFuture<Decided>>,
}

impl PubSubQueue {
    fn len(&self) -> usize {
        self.waiting.len() + usize::from(self.pending.is_some())
    }

    /// The pending callback's decision; never resolves without one. Cancel-safe: the
    /// callback stays here until it decides.
    async fn decided(&mut self) -> Decided {
        let Some(pending) = self.pending.as_mut() else {
            return std::future::pending().await;
        };
        let decided = pending.await;
        self.pending = None;
        decided
    }
}

/// A PubSub message resolved, with the permissions and key in force when it came.
enum PubSub {
    Subscribe {
        uri: String,
        permitted: bool,
        auth_key: Option<Arc<str>>,
    },
    Unsubscribe {
        uri: String,
    },
    Publish {
        uri: String,
        permitted: bool,
        auth_key: Option<Arc<str>>,
        publication: Publication,
    },
}

/// What a topic policy callback decided.
enum Decided {
    Subscribe {
        uri: String,
        allowed: bool,
    },
    Publish {
        uri: String,
        publication: Option<Publication>,
    },
}

/// What a task of the session finished.
enum Done {
    /// A call was answered.
    Call,
    /// A credential lookup for an `authreq` finished: the session answers it.
    Lookup(Box<Lookup>),
}

/// A finished credential lookup.
struct Lookup {
    call_id: String,
    key: String,
    extra: serde_json::Map<String, Value>,
    found: Result<Option<AuthUser>, ProviderError>,
}

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
        let (kind, reason) = if std::thread::panicking() {
            let reason = "the session task panicked (a bug in a hook or the server)";
            (CloseReason::Panic, reason.to_string())
        } else {
            self.handle
                .closed_as()
                .unwrap_or_else(|| (CloseReason::Lost, "connection lost".to_string()))
        };
        self.router.counters().session_closed(kind);
        let duration = self.opened.elapsed();
        info!(reason = kind.label(), ?duration, "session closed");
        debug!(detail = %reason, "session closed");
        self.router.session_closed(&self.handle.id, &reason);
    }
}

impl Session {
    /// Takes the session out of the router: no longer listed, no longer subscribed (the
    /// unsubscribe hook runs for each topic it had). Idempotent.
    fn leave(&mut self) {
        let id = &self.handle.id;
        self.router.unregister_session(id);
        for topic in std::mem::take(&mut self.subscriptions) {
            self.router.remove_subscription(&topic, id);
        }
    }

    /// Checks a URI (or CURIE) against [`crate::Options::max_uri_length`], then resolves it.
    fn resolve<'a>(&self, uri: &'a str) -> Result<std::borrow::Cow<'a, str>, SessionError> {
        let max = self.router.options().max_uri_length;
        let too_long = || SessionError::Limit {
            what: "URI too long",
            name: "max_uri_length",
            limit: max,
        };
        if uri.len() > max {
            return Err(too_long());
        }
        let resolved = self.prefixes.resolve(uri);
        if resolved.len() > max {
            return Err(too_long());
        }
        Ok(resolved)
    }

    /// Calls running plus PubSub messages waiting (for [`crate::Options::max_calls_in_flight`]).
    fn in_flight(&self) -> usize {
        self.calls.len() + self.pubsub.len()
    }

    /// Parses one text frame and does what it says, without waiting: what may take time (a
    /// call, a topic policy) goes on beside the reader.
    fn handle_text(&mut self, text: &str) -> Result<(), SessionError> {
        let msg = Message::from_json(text).map_err(SessionError::Protocol)?;
        self.router.counters().received(msg.type_id());
        match msg {
            Message::Prefix { prefix, uri } => self.on_prefix(prefix, uri)?,
            Message::Call {
                call_id,
                proc_uri,
                args,
            } => self.on_call(call_id, &proc_uri, args)?,
            Message::Subscribe { topic_uri } => {
                let uri = self.resolve(&topic_uri)?.into_owned();
                let permitted = self.permissions().is_none_or(|p| p.may_subscribe(&uri));
                let auth_key = self.auth.key();
                self.pubsub(PubSub::Subscribe {
                    uri,
                    permitted,
                    auth_key,
                })?
            }
            Message::Unsubscribe { topic_uri } => {
                let uri = self.resolve(&topic_uri)?.into_owned();
                self.pubsub(PubSub::Unsubscribe { uri })?
            }
            Message::Publish {
                topic_uri,
                event,
                exclude,
                eligible,
            } => self.on_publish(&topic_uri, event, exclude, eligible)?,
            other => return Err(SessionError::ServerMessage(other.name())),
        }
        Ok(())
    }

    fn on_prefix(&mut self, prefix: String, uri: String) -> Result<(), SessionError> {
        let options = self.router.options();
        if prefix.len() > options.max_uri_length || uri.len() > options.max_uri_length {
            return Err(SessionError::Limit {
                what: "URI too long",
                name: "max_uri_length",
                limit: options.max_uri_length,
            });
        }
        if !self.prefixes.has_own(&prefix) && self.prefixes.own_len() >= options.max_prefixes {
            return Err(SessionError::Limit {
                what: "too many prefixes",
                name: "max_prefixes",
                limit: options.max_prefixes,
            });
        }
        self.prefixes.insert(prefix, uri);
        Ok(())
    }

    /// The permissions in force: `None` when the router has no authentication (everything
    /// that exists is allowed).
    fn permissions(&self) -> Option<&Permissions> {
        let auth = self.router.auth()?;
        Some(match &self.auth {
            AuthState::Authenticated { permissions, .. } => permissions,
            _ => &auth.unauthenticated,
        })
    }

    fn reply(&self, call_id: &str, result: Result<Value, CallError>) {
        reply(&self.handle, call_id, result);
    }

    fn on_call(
        &mut self,
        call_id: String,
        proc_uri: &str,
        args: Vec<Value>,
    ) -> Result<(), SessionError> {
        // Resolved straight into the Arc the call context keeps: one allocation per call.
        let uri: Arc<str> = Arc::from(self.resolve(proc_uri)?.as_ref());
        debug!(%call_id, procedure = %uri, "call");
        if let Some(auth) = self.router.auth() {
            if &*uri == PROC_AUTHREQ {
                match self.auth.authreq(auth, &args) {
                    AuthreqStep::Reply(result) => self.reply(&call_id, result),
                    // The provider may be slow (a database): look up in a task, so this
                    // session's other messages go on.
                    AuthreqStep::Lookup { key, extra } => {
                        let router = self.router.clone();
                        self.calls.spawn(
                            async move {
                                let found = match router.auth() {
                                    Some(config) => auth::lookup(config, &key, &extra).await,
                                    None => Ok(None),
                                };
                                Done::Lookup(Box::new(Lookup {
                                    call_id,
                                    key,
                                    extra,
                                    found,
                                }))
                            }
                            .in_current_span(),
                        );
                    }
                }
                return Ok(());
            }
            if &*uri == PROC_AUTH {
                let key = match &self.auth {
                    AuthState::Pending { key, .. } => key.clone(),
                    _ => None,
                };
                let answer = self.auth.auth(auth, &args);
                auth_logged(&self.router, key.as_deref(), &answer.result);
                if answer.delay.is_zero() {
                    self.reply(&call_id, answer.result);
                } else {
                    // Held back without holding up the session's reader.
                    let handle = self.handle.clone();
                    self.calls.spawn(async move {
                        tokio::time::sleep(answer.delay).await;
                        reply(&handle, &call_id, answer.result);
                        Done::Call
                    });
                }
                return Ok(());
            }
        }
        // Not found before unauthorized (docs/PROTOCOL.md section 4): a typo in a procedure name
        // should say so, whatever the session's permissions.
        let Some(procedure) = self.router.procedure(&uri) else {
            self.router.counters().call_refused(CallOutcome::NotFound);
            self.reply(&call_id, Err(errors::NOT_FOUND.into()));
            return Ok(());
        };
        if self.permissions().is_some_and(|p| !p.may_call(&uri)) {
            self.router
                .counters()
                .call_refused(CallOutcome::Unauthorized);
            self.reply(&call_id, Err(errors::UNAUTHORIZED.into()));
            return Ok(());
        }
        let ctx = CallContext {
            session_id: self.handle.id.clone(),
            auth_key: self.auth.key(),
            procedure: uri,
            router: self.router.clone(),
        };
        let handle = self.handle.clone();
        let started = Instant::now();
        let call = async move {
            // The hooks and the handler run under catch_unwind: a panic in any of them is an
            // #internal error for this call, never a dead session.
            let result = AssertUnwindSafe(async {
                let args = ctx.router.before_call(&ctx, args)?;
                procedure(ctx.clone(), args).await
            })
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let message = panic_message(panic.as_ref());
                warn!(procedure = %ctx.procedure, %message, "procedure panicked");
                Err(CallError::internal(message))
            });
            ctx.router.after_call(&ctx, &result);
            let took = started.elapsed();
            ctx.router.counters().call(CallOutcome::of(&result), took);
            reply(&handle, &call_id, result);
            Done::Call
        };
        // Fast path: a handler that finishes without waiting (echo, a lookup) is answered
        // right here, saving a task spawn and a hop between tasks; it runs inside the
        // session's span already, so it needs no span of its own (a span clone and close per
        // call, with a subscriber installed). One that waits goes on in its own task, so it
        // never holds up this session's other messages, carrying the session's span.
        let mut call = Box::pin(call);
        if call.as_mut().now_or_never().is_none() {
            self.calls.spawn(call.in_current_span());
        }
        Ok(())
    }

    fn on_publish(
        &mut self,
        topic_uri: &str,
        event: Value,
        exclude: Option<Exclude>,
        eligible: Option<Vec<String>>,
    ) -> Result<(), SessionError> {
        let uri = self.resolve(topic_uri)?.into_owned();
        let permitted = self.permissions().is_none_or(|p| p.may_publish(&uri));
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
        let auth_key = self.auth.key();
        self.pubsub(PubSub::Publish {
            uri,
            permitted,
            auth_key,
            publication,
        })
    }

    /// Queues a PubSub message behind those waiting, and handles what may go now.
    fn pubsub(&mut self, message: PubSub) -> Result<(), SessionError> {
        if self.pubsub.len() == 0 {
            // Nothing waits (the usual case): handled now, without the queue, which then
            // allocates only for sessions whose messages wait on a policy callback.
            return self.handle_pubsub(message);
        }
        self.pubsub.waiting.push_back(message);
        self.pump()
    }

    /// Handles queued PubSub messages in order until one waits on a topic policy callback.
    fn pump(&mut self) -> Result<(), SessionError> {
        while self.pubsub.pending.is_none() {
            let Some(message) = self.pubsub.waiting.pop_front() else {
                break;
            };
            self.handle_pubsub(message)?;
        }
        Ok(())
    }

    /// Handles one PubSub message whose turn it is; a policy callback that does not answer
    /// at once becomes the pending one.
    fn handle_pubsub(&mut self, message: PubSub) -> Result<(), SessionError> {
        if let Some(mut wait) = self.start(message)? {
            // A callback that answers at once (most) is applied right here.
            match (&mut wait).now_or_never() {
                Some(decided) => self.apply(decided),
                None => self.pubsub.pending = Some(wait),
            }
        }
        Ok(())
    }

    /// A topic policy callback decided: applies it and goes on with the queue.
    fn decided(&mut self, decided: Decided) -> Result<(), SessionError> {
        self.apply(decided);
        self.pump()
    }

    /// Handles one PubSub message; returns the policy callback to await, if it needs one.
    fn start(&mut self, message: PubSub) -> Result<Option<BoxFuture<Decided>>, SessionError> {
        let timeout = self.router.options().policy_timeout;
        match message {
            PubSub::Subscribe {
                uri,
                permitted,
                auth_key,
            } => {
                if self.subscriptions.contains(&uri) {
                    return Ok(None);
                }
                let max = self.router.options().max_subscriptions;
                if self.subscriptions.len() >= max {
                    return Err(SessionError::Limit {
                        what: "too many subscriptions",
                        name: "max_subscriptions",
                        limit: max,
                    });
                }
                if !permitted {
                    debug!(topic = %uri, "subscribe denied by permissions");
                    return Ok(None);
                }
                let allowed = match self.router.topic_policy(&uri).map(|t| t.subscribe) {
                    None | Some(SubscribePolicy::Deny) => false,
                    Some(SubscribePolicy::Allow) => true,
                    Some(SubscribePolicy::Check(check)) => {
                        let checked = check(self.topic_context(&uri, auth_key));
                        return Ok(Some(Box::pin(async move {
                            let allowed = tokio::time::timeout(timeout, checked)
                                .await
                                .unwrap_or_else(|_| {
                                    warn!(topic = %uri, ?timeout, "subscribe policy timed out: denied");
                                    false
                                });
                            Decided::Subscribe { uri, allowed }
                        })));
                    }
                };
                self.apply(Decided::Subscribe { uri, allowed });
            }
            PubSub::Unsubscribe { uri } => {
                if self.subscriptions.remove(&uri) {
                    self.router.remove_subscription(&uri, &self.handle.id);
                    debug!(topic = %uri, "unsubscribed");
                }
            }
            PubSub::Publish {
                uri,
                permitted,
                auth_key,
                publication,
            } => {
                if !permitted {
                    debug!(topic = %uri, "publish denied by permissions");
                    return Ok(None);
                }
                let Some(policy) = self.router.topic_policy(&uri).map(|t| t.publish) else {
                    debug!(topic = %uri, "publish to a topic no policy opens");
                    return Ok(None);
                };
                let publication = match policy {
                    PublishPolicy::Deny => None,
                    PublishPolicy::Allow => Some(publication),
                    PublishPolicy::Broker(broker) => {
                        let decided = broker(self.topic_context(&uri, auth_key), publication);
                        return Ok(Some(Box::pin(async move {
                            let publication = tokio::time::timeout(timeout, decided)
                                .await
                                .unwrap_or_else(|_| {
                                    warn!(topic = %uri, ?timeout, "publish policy timed out: dropped");
                                    None
                                });
                            Decided::Publish { uri, publication }
                        })));
                    }
                };
                self.apply(Decided::Publish { uri, publication });
            }
        }
        Ok(None)
    }

    /// Does what a policy decided: subscribes, or relays the publication.
    fn apply(&mut self, decided: Decided) {
        match decided {
            Decided::Subscribe { uri, allowed: true } => {
                self.router.add_subscription(&uri, &self.handle);
                debug!(topic = %uri, "subscribed");
                self.subscriptions.insert(uri);
            }
            Decided::Subscribe { uri, .. } => {
                debug!(topic = %uri, "subscribe denied by topic policy")
            }
            Decided::Publish {
                uri,
                publication: Some(p),
            } => {
                let n = self.router.relay(&self.handle.id, &uri, &p);
                debug!(topic = %uri, recipients = n, "published");
            }
            Decided::Publish { uri, .. } => debug!(topic = %uri, "publish dropped by topic policy"),
        }
    }

    /// A task of the session's finished: a call has answered already; an `authreq`'s
    /// credential lookup is answered here. Used by the reader loop and by the shutdown grace,
    /// so no `authreq` goes unanswered.
    fn finished(&mut self, done: Result<Done, tokio::task::JoinError>) {
        if let Ok(Done::Lookup(lookup)) = done {
            self.looked_up(*lookup);
        }
    }

    /// Answers an `authreq` whose credential lookup finished.
    fn looked_up(&mut self, lookup: Lookup) {
        let Lookup {
            call_id,
            key,
            extra,
            found,
        } = lookup;
        let logged_key = key.clone();
        let result = self
            .auth
            .authreq_looked_up(&self.handle.id, key, extra, found);
        if result.is_err() {
            auth_logged(&self.router, Some(&logged_key), &result);
        }
        self.reply(&call_id, result);
    }

    fn topic_context(&self, uri: &str, auth_key: Option<Arc<str>>) -> TopicContext {
        TopicContext {
            session_id: self.handle.id.clone(),
            auth_key,
            topic: Arc::from(uri),
            router: self.router.clone(),
        }
    }
}

/// Counts an authentication step's result and logs it: a failure at info with the key
/// (never the signature), a success at debug.
fn auth_logged(router: &Router, key: Option<&str>, result: &Result<Value, CallError>) {
    match result {
        Ok(_) => {
            router.counters().auth(AuthResult::Success);
            debug!(key, "authenticated");
        }
        Err(e) => {
            router.counters().auth(AuthResult::Failure);
            info!(key, error = %e.uri, "authentication failed");
        }
    }
}

/// Queues the CALLRESULT or CALLERROR for a call, and closes the session afterwards if the
/// application error asks for it.
fn reply(handle: &SessionHandle, call_id: &str, result: Result<Value, CallError>) {
    match result {
        Ok(value) => {
            let frame = call_result_json(call_id, &value);
            if frame.len() > handle.max_frame() {
                let e = CallError::internal(format!(
                    "the result is {} bytes; the most one message to a session may be is {} \
                     bytes (outbox_max_bytes)",
                    frame.len(),
                    handle.max_frame()
                ));
                warn!(%call_id, bytes = frame.len(), "call result too large for the outbox");
                return reply(handle, call_id, Err(e));
            }
            handle.stats.sent(TYPE_CALLRESULT, 1, frame.len());
            handle.send(Text::from(frame));
        }
        Err(e) => {
            let close_after = e.close_session;
            let msg = Message::CallError {
                call_id: call_id.to_string(),
                error_uri: e.uri,
                error_desc: e.desc,
                error_details: e.details,
            };
            let mut frame = msg.to_json();
            if frame.len() > handle.max_frame() {
                // Details (or a description) too large to send: the error without them.
                warn!(%call_id, bytes = frame.len(), "call error too large for the outbox");
                let Message::CallError {
                    call_id, error_uri, ..
                } = msg
                else {
                    unreachable!("built above")
                };
                frame = Message::CallError {
                    call_id,
                    error_uri,
                    error_desc: format!(
                        "the error was {} bytes, more than one message to a session may be \
                         (outbox_max_bytes)",
                        frame.len()
                    ),
                    error_details: None,
                }
                .to_json();
            }
            handle.stats.sent(TYPE_CALLERROR, 1, frame.len());
            handle.send(Text::from(frame));
            if close_after {
                handle.close_for(&SessionError::Killed);
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
