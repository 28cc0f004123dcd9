//! The router: procedures, topic policies, hooks, auth and options, built once and cheap to
//! clone; plus the server-side API (publish, list subscribers, close sessions, shutdown).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{watch, Notify};
use wamp_proto::uri::{Prefixes, UriTable};

use crate::auth::AuthConfig;
use crate::backplane::{
    self, Backplane, BackplaneStatus, ClusterAnswer, ClusterRequest, LocalNode, RemoteEvent,
};
use crate::broker::Broker;
use crate::handler::{
    boxed_procedure, typed_procedure, CallContext, CallError, CallResult, Procedure,
};
use crate::outbox::SessionHandle;
use crate::stats::{RouterStats, Stats};
use crate::topic::{Publication, Topic, TopicTable};
use crate::transport::Text;

/// Router-wide settings. Every field has a default; set them through [`RouterBuilder`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The WELCOME's server ident. Default `wamp-server/<crate version>`.
    pub server_ident: String,
    /// Whether a subscribed publisher receives its own event when PUBLISH has no third
    /// element. Default `true` (the spec's wording and clj-wamp); AutobahnPython excludes.
    pub publisher_receives_own_events: bool,
    /// The largest WebSocket message (and frame) accepted, in bytes; larger closes the session
    /// with 1009. Default 1 MiB.
    pub max_message_size: usize,
    /// The most sessions open at once; more get HTTP 503 at the handshake. Default 10,000.
    pub max_connections: usize,
    /// How many frames may wait in a session's outgoing queue; a session whose queue passes
    /// this does not read fast enough and is closed ([`crate::close::SLOW_CONSUMER`]).
    /// Default 4,096.
    pub outbox_capacity: usize,
    /// How many bytes of frames may wait in a session's outgoing queue; past this the session
    /// is closed as a slow consumer too, whichever bound is hit first. It is also the largest
    /// single frame sent: a call result larger than this is answered with an `#internal`
    /// CALLERROR that says so, a larger CALLERROR keeps its URI but loses its description
    /// and details (the description says why), a larger event is not delivered (logged). Pongs count too
    /// until they are flushed to the socket, so a client that pings but never reads is a slow
    /// consumer as well; the WebSocket layer's write buffer is bounded by this. Default 4 MiB.
    pub outbox_max_bytes: usize,
    /// The most calls of one session running at once; PubSub messages waiting their turn
    /// behind a topic policy callback count too. At the cap the session's socket is not read
    /// until one finishes, so TCP pushes back on the client. Default 256.
    pub max_calls_in_flight: usize,
    /// Keep a session's running calls going after the session ends (their replies go
    /// nowhere). By default (`false`) they are aborted, so a handler that never returns does
    /// not outlive its session; set this for handlers that must finish.
    pub detach_calls_on_close: bool,
    /// The most prefixes one session may define with PREFIX; one more closes the session
    /// with 1008 (WAMP v1 has no error message for PREFIX). Default 1,024.
    pub max_prefixes: usize,
    /// The most topics one session may subscribe to; one more closes the session with 1008.
    /// Default 10,000.
    pub max_subscriptions: usize,
    /// The longest URI, CURIE or prefix accepted in a client message, in bytes (also after
    /// resolving a CURIE); a longer one closes the session with 1008. Default 2 KiB.
    pub max_uri_length: usize,
    /// How long a session's writer tries to deliver its close frame (and what is queued
    /// before it) to a client that does not read, before it drops the connection. The session
    /// leaves the router at once. Default 10 s.
    pub close_wait: Duration,
    /// How long a topic policy callback ([`crate::Topic::on_subscribe`],
    /// [`crate::Topic::on_publish`]) may take; one that takes longer denies the SUBSCRIBE or
    /// drops the PUBLISH (logged). While one waits the session goes on reading and answering
    /// its calls; its PubSub messages queue behind it and are handled in order, so a PUBLISH
    /// after a SUBSCRIBE sees its outcome (the queue counts toward
    /// [`Options::max_calls_in_flight`]). Default 10 s.
    pub policy_timeout: Duration,
    /// How a graceful shutdown ends each session once its calls in flight have answered.
    /// Default [`ShutdownClose::Drop`].
    pub shutdown_close: ShutdownClose,
    /// Browser origins allowed beside the request's own (e.g. `http://localhost:3000`; `*`
    /// for any, `null` for sandboxed pages). A request without `Origin` (not a browser) or
    /// from the same origin (its host and port equal the `Host` header) is always accepted;
    /// any other origin not on this list gets HTTP 403. Default empty.
    pub allowed_origins: Vec<String>,
    /// Refuse clients that do not offer the `wamp` subprotocol at all (by default only clients
    /// that offer other subprotocols but not `wamp` are refused).
    pub strict_subprotocol: bool,
    /// How long shutdown waits for in-flight calls before closing sessions. Default 5 s.
    pub shutdown_grace: Duration,
    /// The size of each session's WebSocket read buffer in bytes, and the most read from the
    /// socket at once. Default 512 bytes: idle sessions stay small (the buffer is a session's
    /// largest single allocation; most WAMP messages fit in it, and a larger message grows
    /// the buffer to its length as it arrives, read in steps of this size).
    pub read_buffer_size: usize,
    /// How many bytes of outgoing frames are gathered before a write to the socket.
    /// Default 4 KiB.
    pub write_buffer_size: usize,
    /// How long a new connection may take to complete its handshakes (TLS if any, then the
    /// HTTP request and WebSocket upgrade) before it is dropped. A connection takes one of the
    /// [`Options::max_connections`] slots only after its handshake succeeded. Default 10 s.
    pub handshake_timeout: Duration,
    /// The most connections still in their handshakes at once (on the axum path: every HTTP
    /// connection not yet upgraded); a connection over this is closed at accept. Bounds the
    /// file descriptors silent or slow connections can hold, beside the sessions'. Default 1,024.
    pub max_pending_handshakes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server_ident: concat!("wamp-server/", env!("CARGO_PKG_VERSION")).to_string(),
            publisher_receives_own_events: true,
            max_message_size: 1 << 20,
            max_connections: 10_000,
            outbox_capacity: 4096,
            outbox_max_bytes: 4 << 20,
            max_calls_in_flight: 256,
            detach_calls_on_close: false,
            max_prefixes: 1024,
            max_subscriptions: 10_000,
            max_uri_length: 2048,
            shutdown_close: ShutdownClose::default(),
            close_wait: Duration::from_secs(10),
            policy_timeout: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            strict_subprotocol: false,
            shutdown_grace: Duration::from_secs(5),
            read_buffer_size: 512,
            write_buffer_size: 4096,
            handshake_timeout: Duration::from_secs(10),
            max_pending_handshakes: 1024,
        }
    }
}

/// How a graceful shutdown ends a session, after its calls in flight have answered (or
/// [`Options::shutdown_grace`] passed).
///
/// WAMP v1 has no goodbye message, so a client learns of a shutdown only from the
/// connection's end (`docs/PROTOCOL.md` section 7, "server shutdown"). AutobahnJS 0.8, the client
/// of deployed v1 pages, reconnects only after an *unclean* close: after a clean close
/// handshake (`wasClean` true) it reports "closed by the app" and never retries. So the
/// default ends the TCP connection without a close frame, which every client treats as a
/// lost connection (browsers report 1006) and reconnects after, as they do when a server
/// restarts after a crash. Clients of this project report it as "connection lost" and
/// reconnect too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownClose {
    /// Send what is queued, then end the TCP connection without a close handshake. The
    /// default: AutobahnJS 0.8 pages reconnect.
    #[default]
    Drop,
    /// Send a close frame with this code (normally 1001, "going away") and reason "server
    /// shutting down": modern clients see why, but AutobahnJS 0.8 does not reconnect.
    Handshake(u16),
}

impl Options {
    /// The most bytes the WebSocket layer may hold for one session's socket: its write buffer
    /// plus [`Options::outbox_max_bytes`] (and room for a frame header). Past it, pongs to a
    /// client that does not read are dropped instead of queued (only the latest ping needs
    /// an answer), so pings cannot grow the server.
    pub(crate) fn max_write_buffer_size(&self) -> usize {
        self.write_buffer_size
            .saturating_add(self.outbox_max_bytes)
            .saturating_add(64)
    }
}

type SessionHook = Arc<dyn Fn(&str) + Send + Sync>;
type CloseHook = Arc<dyn Fn(&str, &str) + Send + Sync>;
type TopicHook = Arc<dyn Fn(&str, &str) + Send + Sync>;
type PublishHook = Arc<dyn Fn(&str, &str, &Value) + Send + Sync>;
type BeforeCallHook =
    Arc<dyn Fn(&CallContext, Vec<Value>) -> Result<Vec<Value>, CallError> + Send + Sync>;
type AfterCallHook = Arc<dyn Fn(&CallContext, &CallResult) + Send + Sync>;

/// Callbacks that observe (and for calls, may change) what sessions do.
#[derive(Clone, Default)]
struct Hooks {
    session_opened: Option<SessionHook>,
    session_closed: Option<CloseHook>,
    subscribed: Option<TopicHook>,
    unsubscribed: Option<TopicHook>,
    published: Option<PublishHook>,
    before_call: Option<BeforeCallHook>,
    after_call: Option<AfterCallHook>,
}

struct Inner {
    options: Options,
    hooks: Hooks,
    auth: Option<AuthConfig>,
    default_prefixes: Arc<HashMap<String, String>>,
    procedures: RwLock<HashMap<String, Procedure>>,
    /// Procedures registered for every URI starting with a prefix (asked after the exact ones).
    procedure_prefixes: RwLock<UriTable<Procedure>>,
    topics: RwLock<TopicTable>,
    broker: Broker,
    stats: Arc<Stats>,
    /// Other router nodes, if this router is one of several ([`RouterBuilder::backplane`]).
    backplane: Option<Arc<dyn Backplane>>,
    sessions: Mutex<HashMap<Arc<str>, Arc<SessionHandle>>>,
    connections: AtomicUsize,
    shutdown: watch::Sender<bool>,
    /// Woken when the last connection ends.
    idle: Notify,
}

/// A WAMP v1 router: what procedures exist, who may use which topic, and the sessions
/// connected to it. Cloning is cheap (an `Arc`); every clone is the same router. Two routers
/// built separately share nothing.
///
/// Build one with [`Router::builder`], then serve it with [`crate::serve`] or mount it in an
/// axum app with [`crate::axum_handler`].
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("options", &self.inner.options)
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Router`]. Each method consumes and returns the builder.
#[must_use]
pub struct RouterBuilder {
    options: Options,
    hooks: Hooks,
    auth: Option<AuthConfig>,
    default_prefixes: HashMap<String, String>,
    procedures: HashMap<String, Procedure>,
    procedure_prefixes: UriTable<Procedure>,
    topics: TopicTable,
    backplane: Option<Arc<dyn Backplane>>,
}

/// A router that does not keep it alive (what a backplane holds).
#[derive(Clone)]
pub(crate) struct WeakRouter(Weak<Inner>);

impl WeakRouter {
    pub(crate) fn upgrade(&self) -> Option<Router> {
        self.0.upgrade().map(|inner| Router { inner })
    }
}

impl Router {
    /// Starts building a router.
    pub fn builder() -> RouterBuilder {
        RouterBuilder {
            options: Options::default(),
            hooks: Hooks::default(),
            auth: None,
            default_prefixes: HashMap::new(),
            procedures: HashMap::new(),
            procedure_prefixes: UriTable::new(),
            topics: TopicTable::default(),
            backplane: None,
        }
    }

    /// The router's options.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// A session's starting prefix map (the router's default prefixes).
    pub(crate) fn new_prefixes(&self) -> Prefixes {
        Prefixes::with_defaults(self.inner.default_prefixes.clone())
    }

    /// Resolves a CURIE with the router's default prefixes (server-side API convenience).
    fn resolve(&self, uri: &str) -> String {
        self.new_prefixes().resolve(uri).into_owned()
    }

    /// Registers a procedure while the router runs. Returns `false` (and changes nothing) if
    /// one is already registered under that URI.
    pub fn add_procedure<F, Fut>(&self, uri: impl Into<String>, handler: F) -> bool
    where
        F: Fn(CallContext, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CallResult> + Send + 'static,
    {
        let mut procs = self.inner.procedures.write().expect("procedures lock");
        match procs.entry(uri.into()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(boxed_procedure(handler));
                true
            }
        }
    }

    /// Removes a procedure while the router runs; calls already running finish. Returns
    /// whether there was one.
    pub fn remove_procedure(&self, uri: &str) -> bool {
        let mut procs = self.inner.procedures.write().expect("procedures lock");
        procs.remove(uri).is_some()
    }

    /// Registers a handler for every procedure URI that starts with `prefix` while the router
    /// runs (see [`RouterBuilder::procedure_prefix`]). Returns `false` (and changes nothing) if
    /// one is already registered under that prefix.
    pub fn add_procedure_prefix<F, Fut>(&self, prefix: impl Into<String>, handler: F) -> bool
    where
        F: Fn(CallContext, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CallResult> + Send + 'static,
    {
        let prefix = prefix.into();
        let mut table = self.inner.procedure_prefixes.write().expect("prefix lock");
        match table.insert(prefix.clone(), true, boxed_procedure(handler)) {
            // Already taken: put the first registration back.
            Some(first) => {
                table.insert(prefix, true, first);
                false
            }
            None => true,
        }
    }

    /// The handler for a full procedure URI: the exact registration, else the one with the
    /// longest matching prefix.
    pub(crate) fn procedure(&self, uri: &str) -> Option<Procedure> {
        let procs = self.inner.procedures.read().expect("procedures lock");
        if let Some(p) = procs.get(uri) {
            return Some(p.clone());
        }
        drop(procs);
        let table = self.inner.procedure_prefixes.read().expect("prefix lock");
        table.find(uri).cloned()
    }

    /// Sets (or replaces) the policy for a topic pattern while the router runs: an exact URI,
    /// `prefix*` or `*`. Returns whether one was replaced.
    pub fn set_topic(&self, pattern: &str, topic: Topic) -> bool {
        let mut topics = self.inner.topics.write().expect("topics lock");
        topics.insert(pattern, topic)
    }

    /// Removes the policy of a topic pattern. Existing subscriptions stay; new SUBSCRIBE and
    /// PUBLISH follow whatever policy now matches. Returns whether there was one.
    pub fn remove_topic(&self, pattern: &str) -> bool {
        let mut topics = self.inner.topics.write().expect("topics lock");
        topics.remove(pattern)
    }

    /// The policy that decides for a full topic URI.
    pub(crate) fn topic_policy(&self, uri: &str) -> Option<Topic> {
        let topics = self.inner.topics.read().expect("topics lock");
        topics.find(uri).cloned()
    }

    /// Sends an event to every subscriber of `topic` (a full URI, or a CURIE of the default
    /// prefixes). Returns how many sessions of this node it was sent to (with a backplane the
    /// event goes to the other nodes' subscribers too, uncounted). Topic policies do not
    /// apply to the server's own publishing.
    pub fn publish(&self, topic: &str, event: impl Serialize) -> usize {
        self.publish_filtered(topic, event, &[], None)
    }

    /// Sends an event to every subscriber of `topic` except the listed sessions (on every node,
    /// with a backplane). Returns how many sessions of this node it was sent to.
    pub fn publish_excluding(
        &self,
        topic: &str,
        event: impl Serialize,
        exclude: &[String],
    ) -> usize {
        self.publish_filtered(topic, event, exclude, None)
    }

    /// Sends an event only to those of the listed sessions that subscribe to `topic` (on any
    /// node, with a backplane; nothing is forwarded when all of them are on this node).
    /// Returns how many sessions of this node it was sent to.
    pub fn publish_to(&self, topic: &str, event: impl Serialize, eligible: &[String]) -> usize {
        self.publish_filtered(topic, event, &[], Some(eligible))
    }

    fn publish_filtered(
        &self,
        topic: &str,
        event: impl Serialize,
        exclude: &[String],
        eligible: Option<&[String]>,
    ) -> usize {
        let event = serde_json::to_value(event).unwrap_or(Value::Null);
        self.fan_out(&self.resolve(topic), &event, exclude, eligible)
    }

    /// Delivers to local subscribers, then (with a backplane) hands the same frame to the
    /// other nodes without waiting.
    fn fan_out(
        &self,
        topic: &str,
        event: &Value,
        exclude: &[String],
        eligible: Option<&[String]>,
    ) -> usize {
        let Some(bp) = &self.inner.backplane else {
            return self.inner.broker.publish(topic, event, exclude, eligible);
        };
        let frame = Text::from(wamp_proto::message::event_json(topic, event));
        let n = self.inner.broker.deliver(topic, &frame, exclude, eligible);
        let all_local = eligible.is_some_and(|ids| {
            let sessions = self.inner.sessions.lock().expect("sessions lock");
            ids.iter().all(|id| sessions.contains_key(id.as_str()))
        });
        if !all_local {
            bp.forward(RemoteEvent {
                topic: Arc::from(topic),
                frame,
                exclude: exclude.to_vec(),
                eligible: eligible.map(<[String]>::to_vec),
            });
        }
        n
    }

    /// Another node's event, for this node's sessions (see [`LocalNode::deliver`]).
    pub(crate) fn deliver_remote(
        &self,
        topic: &str,
        frame: &Text,
        exclude: &[String],
        eligible: Option<&[String]>,
    ) -> usize {
        self.inner.broker.deliver(topic, frame, exclude, eligible)
    }

    /// Whether the topic has subscribers on this node.
    pub(crate) fn has_local_subscribers(&self, topic: &str) -> bool {
        self.inner.broker.has_subscribers(topic)
    }

    /// The topics with subscribers on this node.
    pub(crate) fn local_topics(&self) -> Vec<String> {
        self.inner.broker.topics()
    }

    /// The backplane's state and counters; `None` without a backplane.
    pub fn backplane_status(&self) -> Option<BackplaneStatus> {
        self.inner.backplane.as_ref().map(|bp| bp.status())
    }

    /// The subscribers of `topic` on every node (sorted). Asks the other nodes and waits up to
    /// `timeout` for their answers; [`ClusterAnswer::complete`] says whether every node known
    /// to be alive answered. Without a backplane: this node's, complete.
    pub async fn cluster_subscribers(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> ClusterAnswer<Vec<String>> {
        let topic = self.resolve(topic);
        let local = self.inner.broker.subscribers(&topic);
        let replies = match &self.inner.backplane {
            Some(bp) => {
                bp.request(ClusterRequest::Subscribers { topic }, timeout)
                    .await
            }
            None => backplane::ClusterReplies {
                replies: Vec::new(),
                complete: true,
            },
        };
        backplane::merge_subscribers(local, replies)
    }

    /// Closes a session on whichever node holds it (see [`Router::close_session`]); the value
    /// says whether any node had it. Waits up to `timeout` for the other nodes' answers.
    pub async fn cluster_close_session(
        &self,
        session_id: &str,
        code: u16,
        reason: &str,
        timeout: Duration,
    ) -> ClusterAnswer<bool> {
        let local = self.close_session(session_id, code, reason);
        let replies = match (&self.inner.backplane, local) {
            (Some(bp), false) => {
                let request = ClusterRequest::CloseSession {
                    session_id: session_id.to_string(),
                    code,
                    reason: reason.to_string(),
                };
                bp.request(request, timeout).await
            }
            _ => backplane::ClusterReplies {
                replies: Vec::new(),
                complete: true,
            },
        };
        backplane::merge_closed(local, replies)
    }

    /// The ids of the sessions subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<String> {
        self.inner.broker.subscribers(&self.resolve(topic))
    }

    /// The ids of every open session.
    pub fn session_ids(&self) -> Vec<String> {
        let sessions = self.inner.sessions.lock().expect("sessions lock");
        sessions.keys().map(|k| k.to_string()).collect()
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.lock().expect("sessions lock").len()
    }

    /// Closes a session with a WebSocket close code and reason, after the frames already
    /// queued for it. The reason is cut to [`close::MAX_REASON`](crate::close::MAX_REASON)
    /// bytes (at a character boundary) to fit a close frame.
    ///
    /// Returns whether the session was closed: `false` if it does not exist, or if `code`
    /// may not be sent in a close frame ([`close::may_send`](crate::close::may_send): 1000-1003,
    /// 1007-1014 and 3000-4999 may; 1004-1006, 1015, the reserved 1016-2999 and anything
    /// outside 1000-4999 may not), in which case the session is left open.
    pub fn close_session(&self, session_id: &str, code: u16, reason: &str) -> bool {
        if !crate::close::may_send(code) {
            tracing::warn!(
                session = %session_id,
                code,
                "close_session refused: the code may not be sent in a close frame; the \
                 session stays open (use 1000, or 3000-4999 for an application's own)"
            );
            return false;
        }
        let handle = {
            let sessions = self.inner.sessions.lock().expect("sessions lock");
            sessions.get(session_id).cloned()
        };
        match handle {
            Some(h) => {
                h.close(code, reason);
                true
            }
            None => false,
        }
    }

    /// Starts a graceful shutdown of every session of this router: they stop reading, let
    /// calls in flight answer (up to [`Options::shutdown_grace`]) and end as
    /// [`Options::shutdown_close`] says (by default without a close handshake).
    /// [`crate::serve`] calls this when its shutdown future completes; an application that
    /// mounts the router in its own HTTP server calls it itself, then [`Router::closed`].
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Waits until every connection of this router has ended.
    pub async fn closed(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            // Register before checking, so a wake-up between check and wait is not lost.
            idle.as_mut().enable();
            if self.inner.connections.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// A snapshot of the router's counters and gauges (see [`RouterStats`] for what each
    /// means). Cheap: atomic loads, plus one short lock of the session list and of the
    /// subscriptions for the gauges. For a metrics endpoint, call it at scrape time.
    pub fn stats(&self) -> RouterStats {
        let (topics, subscriptions) = self.inner.broker.counts();
        self.inner
            .stats
            .snapshot(self.session_count(), topics, subscriptions)
    }

    /// Whether [`Router::shutdown`] was called (a readiness check: not accepting).
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// The live counters, for the sessions and transports to count into.
    pub(crate) fn counters(&self) -> &Arc<Stats> {
        &self.inner.stats
    }

    /// How long a session stopping for a shutdown may take, at most: calls in flight get
    /// [`Options::shutdown_grace`], then its writer [`Options::close_wait`] and a bit more to
    /// send what is queued (session.rs), plus a second of slack. A server's drain waits this
    /// long before it cuts sessions off.
    pub(crate) fn shutdown_deadline(&self) -> Duration {
        let o = self.options();
        o.shutdown_grace + o.close_wait + crate::session::WRITER_WAIT + Duration::from_secs(1)
    }

    /// Aborts every session still registered: each stops reading at once and its writer
    /// gets [`Options::close_wait`] for the close frame. A drain's last resort, after
    /// [`Router::shutdown_deadline`].
    pub(crate) fn abort_all_sessions(&self) {
        let handles: Vec<Arc<SessionHandle>> = {
            let sessions = self.inner.sessions.lock().expect("sessions lock");
            sessions.values().cloned().collect()
        };
        for handle in handles {
            handle.abort_for(&crate::close::SessionError::ShuttingDown);
        }
    }

    /// What the session loop watches for a shutdown.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// The authentication configuration, if the router authenticates.
    pub(crate) fn auth(&self) -> Option<&AuthConfig> {
        self.inner.auth.as_ref()
    }

    /// Subscribes a session (the broker) and runs the `on_subscribe` hook.
    pub(crate) fn add_subscription(&self, topic: &str, session: &Arc<SessionHandle>) {
        let (_, first) = self.inner.broker.subscribe(topic, session);
        if let (true, Some(bp)) = (first, &self.inner.backplane) {
            bp.interest_changed(topic);
        }
        if let Some(hook) = &self.inner.hooks.subscribed {
            hook(&session.id, topic);
        }
    }

    /// Unsubscribes a session and runs the `on_unsubscribe` hook (a panic in the hook is
    /// logged: this also runs while a session task unwinds).
    pub(crate) fn remove_subscription(&self, topic: &str, session_id: &str) {
        let (_, last) = self.inner.broker.unsubscribe(topic, session_id);
        if let (true, Some(bp)) = (last, &self.inner.backplane) {
            bp.interest_changed(topic);
        }
        if let Some(hook) = &self.inner.hooks.unsubscribed {
            guarded("on_unsubscribe", || hook(session_id, topic));
        }
    }

    /// Relays a client's publication (already through the topic policy) and runs the
    /// `on_publish` hook. Returns how many sessions it was sent to.
    pub(crate) fn relay(&self, publisher: &str, topic: &str, p: &Publication) -> usize {
        let n = self.fan_out(topic, &p.event, &p.exclude, p.eligible.as_deref());
        if let Some(hook) = &self.inner.hooks.published {
            hook(publisher, topic, &p.event);
        }
        n
    }

    /// Runs the `on_session_open` hook.
    pub(crate) fn session_opened(&self, session_id: &str) {
        if let Some(hook) = &self.inner.hooks.session_opened {
            hook(session_id);
        }
    }

    /// Runs the `on_session_close` hook (a panic in it is logged: this also runs while a
    /// session task unwinds).
    pub(crate) fn session_closed(&self, session_id: &str, reason: &str) {
        if let Some(hook) = &self.inner.hooks.session_closed {
            guarded("on_session_close", || hook(session_id, reason));
        }
    }

    /// Runs the `before_call` hook: the arguments to call with, or the call's error.
    pub(crate) fn before_call(
        &self,
        ctx: &CallContext,
        args: Vec<Value>,
    ) -> Result<Vec<Value>, CallError> {
        match &self.inner.hooks.before_call {
            Some(hook) => hook(ctx, args),
            None => Ok(args),
        }
    }

    /// Runs the `after_call` hook (a panic in it is logged; the reply is sent anyway).
    pub(crate) fn after_call(&self, ctx: &CallContext, result: &CallResult) {
        if let Some(hook) = &self.inner.hooks.after_call {
            guarded("after_call", || hook(ctx, result));
        }
    }

    pub(crate) fn register_session(&self, handle: Arc<SessionHandle>) {
        let mut sessions = self.inner.sessions.lock().expect("sessions lock");
        sessions.insert(handle.id.clone(), handle);
    }

    pub(crate) fn unregister_session(&self, id: &str) {
        let mut sessions = self.inner.sessions.lock().expect("sessions lock");
        sessions.remove(id);
    }

    /// Takes one of the router's connection slots ([`Options::max_connections`]); `None` when
    /// the router is at its limit. A transport of your own holds the slot for as long as the
    /// connection lives, around [`crate::run_session`]; `serve` and `axum_handler` do this.
    pub fn try_connection(&self) -> Option<ConnectionSlot> {
        let max = self.inner.options.max_connections;
        let mut current = self.inner.connections.load(Ordering::Acquire);
        loop {
            if current >= max {
                return None;
            }
            match self.inner.connections.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(ConnectionSlot {
                        router: self.clone(),
                    })
                }
                Err(now) => current = now,
            }
        }
    }
}

/// Runs a hook under `catch_unwind`, logging a panic instead of passing it on.
fn guarded(name: &str, hook: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)).is_err() {
        tracing::warn!(hook = name, "hook panicked");
    }
}

/// One connection slot of a router, given back when dropped.
#[derive(Debug)]
#[must_use = "the slot is given back as soon as it is dropped"]
pub struct ConnectionSlot {
    router: Router,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let inner = &self.router.inner;
        if inner.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            inner.idle.notify_waiters();
        }
    }
}

impl RouterBuilder {
    /// Registers an async procedure handler under a full URI.
    ///
    /// # Panics
    ///
    /// If a procedure is already registered under `uri` (a registration mistake, caught at
    /// startup).
    #[track_caller]
    pub fn procedure<F, Fut>(mut self, uri: impl Into<String>, handler: F) -> Self
    where
        F: Fn(CallContext, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CallResult> + Send + 'static,
    {
        let uri = uri.into();
        assert!(
            !self.procedures.contains_key(&uri),
            "procedure {uri} is registered twice"
        );
        self.procedures.insert(uri, boxed_procedure(handler));
        self
    }

    /// Registers a procedure with typed arguments and result: the positional arguments are
    /// read with [`crate::typed_args`] (a tuple, a `Vec`, a struct), the result serialised.
    ///
    /// # Panics
    ///
    /// If a procedure is already registered under `uri`.
    #[track_caller]
    pub fn typed_procedure<A, R, F, Fut>(mut self, uri: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(CallContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, CallError>> + Send + 'static,
    {
        let uri = uri.into();
        assert!(
            !self.procedures.contains_key(&uri),
            "procedure {uri} is registered twice"
        );
        self.procedures.insert(uri, typed_procedure(handler));
        self
    }

    /// Registers an async handler for every procedure URI that starts with `prefix` (a full
    /// URI prefix, without `*`). A CALL is answered by the exact registration if there is one,
    /// else by the prefix handler with the longest matching prefix; the handler learns which
    /// procedure was called from [`CallContext::procedure`]. Permissions apply per called URI,
    /// as for exact procedures.
    ///
    /// # Panics
    ///
    /// If a handler is already registered under `prefix`.
    #[track_caller]
    pub fn procedure_prefix<F, Fut>(mut self, prefix: impl Into<String>, handler: F) -> Self
    where
        F: Fn(CallContext, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CallResult> + Send + 'static,
    {
        let prefix = prefix.into();
        assert!(
            self.procedure_prefixes
                .insert(prefix.clone(), true, boxed_procedure(handler))
                .is_none(),
            "procedure prefix {prefix} is registered twice"
        );
        self
    }

    /// Sets the policy of a topic pattern: an exact URI, `prefix*` or `*`. The exact entry
    /// wins over wildcards (a deny too), then the longest prefix. A topic that no pattern
    /// matches is closed.
    ///
    /// # Panics
    ///
    /// If the same pattern is given twice.
    #[track_caller]
    pub fn topic(mut self, pattern: &str, topic: Topic) -> Self {
        assert!(
            !self.topics.insert(pattern, topic),
            "topic pattern {pattern} is registered twice"
        );
        self
    }

    /// A prefix every session starts with (its own PREFIX messages override it).
    pub fn default_prefix(mut self, prefix: impl Into<String>, uri: impl Into<String>) -> Self {
        self.default_prefixes.insert(prefix.into(), uri.into());
        self
    }

    /// Enables WAMP-CRA authentication (see [`crate::auth`] for the rules).
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The WELCOME's server ident.
    pub fn server_ident(mut self, ident: impl Into<String>) -> Self {
        self.options.server_ident = ident.into();
        self
    }

    /// Whether a publisher receives its own event by default (see
    /// [`Options::publisher_receives_own_events`]).
    pub fn publisher_receives_own_events(mut self, yes: bool) -> Self {
        self.options.publisher_receives_own_events = yes;
        self
    }

    /// The largest message accepted, in bytes.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.options.max_message_size = bytes;
        self
    }

    /// The most sessions open at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.options.max_connections = n;
        self
    }

    /// The bound of each session's outgoing queue, in frames.
    pub fn outbox_capacity(mut self, frames: usize) -> Self {
        self.options.outbox_capacity = frames.max(1);
        self
    }

    /// The bound of each session's outgoing queue, in bytes.
    pub fn outbox_max_bytes(mut self, bytes: usize) -> Self {
        self.options.outbox_max_bytes = bytes.max(1);
        self
    }

    /// The most calls of one session running at once (see [`Options::max_calls_in_flight`]).
    pub fn max_calls_in_flight(mut self, calls: usize) -> Self {
        self.options.max_calls_in_flight = calls.max(1);
        self
    }

    /// Keep a session's running calls going after it ends (see
    /// [`Options::detach_calls_on_close`]).
    pub fn detach_calls_on_close(mut self, detach: bool) -> Self {
        self.options.detach_calls_on_close = detach;
        self
    }

    /// The most prefixes per session.
    pub fn max_prefixes(mut self, n: usize) -> Self {
        self.options.max_prefixes = n;
        self
    }

    /// The most subscriptions per session.
    pub fn max_subscriptions(mut self, n: usize) -> Self {
        self.options.max_subscriptions = n;
        self
    }

    /// The longest URI in a client message, in bytes.
    pub fn max_uri_length(mut self, bytes: usize) -> Self {
        self.options.max_uri_length = bytes;
        self
    }

    /// How long a close frame may take to reach a client that does not read (see
    /// [`Options::close_wait`]).
    pub fn close_wait(mut self, wait: Duration) -> Self {
        self.options.close_wait = wait;
        self
    }

    /// How long a topic policy callback may take (see [`Options::policy_timeout`]).
    pub fn policy_timeout(mut self, timeout: Duration) -> Self {
        self.options.policy_timeout = timeout;
        self
    }

    /// How a graceful shutdown ends sessions (see [`ShutdownClose`]).
    pub fn shutdown_close(mut self, close: ShutdownClose) -> Self {
        self.options.shutdown_close = close;
        self
    }

    /// Also accept browser requests from these origins (exact match after lower-casing; `*`
    /// for any, logged as a warning); the request's own origin is always accepted. Entries
    /// are stored trimmed, lower-cased and without a trailing slash, as browsers send
    /// origins. See [`Options::allowed_origins`].
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.allowed_origins = origins
            .into_iter()
            .map(|o| crate::handshake::normalise_origin(&o.into()))
            .collect();
        if crate::handshake::allows_any_origin(&self.options.allowed_origins) {
            tracing::warn!(
                "allowed origins include '*': pages from ANY web site may open WAMP sessions here \
                 with their visitors' browsers (cross-site WebSocket hijacking)"
            );
        }
        self
    }

    /// Refuse clients that do not offer the `wamp` subprotocol.
    pub fn strict_subprotocol(mut self, strict: bool) -> Self {
        self.options.strict_subprotocol = strict;
        self
    }

    /// How long shutdown waits for calls in flight.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.options.shutdown_grace = grace;
        self
    }

    /// How long a connection may take to complete its handshakes (see
    /// [`Options::handshake_timeout`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.options.handshake_timeout = timeout;
        self
    }

    /// The most connections in their handshakes at once (see
    /// [`Options::max_pending_handshakes`]).
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.options.max_pending_handshakes = n.max(1);
        self
    }

    /// Called with the session id when a session opens (after WELCOME is queued).
    pub fn on_session_open(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.hooks.session_opened = Some(Arc::new(f));
        self
    }

    /// Called with the session id and the reason when a session closes.
    pub fn on_session_close(mut self, f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.hooks.session_closed = Some(Arc::new(f));
        self
    }

    /// Called with the session id and topic after a session subscribes.
    pub fn on_subscribe(mut self, f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.hooks.subscribed = Some(Arc::new(f));
        self
    }

    /// Called with the session id and topic when a session unsubscribes, also for every topic
    /// it still had when it closes.
    pub fn on_unsubscribe(mut self, f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.hooks.unsubscribed = Some(Arc::new(f));
        self
    }

    /// Called with the session id, topic and delivered event after a publish is relayed.
    pub fn on_publish(mut self, f: impl Fn(&str, &str, &Value) + Send + Sync + 'static) -> Self {
        self.hooks.published = Some(Arc::new(f));
        self
    }

    /// Called before every call to a registered procedure: may rewrite the arguments, or
    /// refuse the call with an error (e.g. [`CallError::unauthorized`]).
    pub fn before_call(
        mut self,
        f: impl Fn(&CallContext, Vec<Value>) -> Result<Vec<Value>, CallError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.before_call = Some(Arc::new(f));
        self
    }

    /// Called after every call to a registered procedure with its result.
    pub fn after_call(
        mut self,
        f: impl Fn(&CallContext, &CallResult) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.after_call = Some(Arc::new(f));
        self
    }

    /// Makes this router one node of several: publications reach the other nodes'
    /// subscribers through the backplane (see [`crate::backplane`]). Build the router inside
    /// a tokio runtime: the backplane starts its tasks then.
    pub fn backplane(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// Finishes the router.
    pub fn build(self) -> Router {
        let stats = Arc::new(Stats::default());
        let backplane = self.backplane.clone();
        let router = Router {
            inner: Arc::new(Inner {
                options: self.options,
                hooks: self.hooks,
                auth: self.auth,
                default_prefixes: Arc::new(self.default_prefixes),
                procedures: RwLock::new(self.procedures),
                procedure_prefixes: RwLock::new(self.procedure_prefixes),
                topics: RwLock::new(self.topics),
                broker: Broker::new(stats.clone()),
                stats,
                backplane: self.backplane,
                sessions: Mutex::new(HashMap::new()),
                connections: AtomicUsize::new(0),
                shutdown: watch::Sender::new(false),
                idle: Notify::new(),
            }),
        };
        if let Some(bp) = backplane {
            bp.attach(LocalNode::new(WeakRouter(Arc::downgrade(&router.inner))));
        }
        router
    }
}
