//! The backplane seam: how a router hands its publications to other router nodes and
//! delivers theirs, plus the in-process backplane that connects routers in one process.
//!
//! A router with a backplane ([`crate::RouterBuilder::backplane`]) delivers every publish to
//! its own subscribers first, exactly as without one, then hands the EVENT frame (serialised
//! once, at the origin) to [`Backplane::forward`], which must not wait: implementations queue
//! it in a bounded queue and drop the newest, counted, when it is full. Events from other
//! nodes come back through [`LocalNode::deliver`], which queues the origin's bytes for
//! (local subscribers ∩ eligible) − exclude without parsing or re-serialising them. Topic
//! policies, the publish broker callback and the `on_publish` hook run once, on the origin.
//! Nothing is forwarded when the publication names its eligible sessions and all of them are
//! local. Without a backplane (the default) none of this costs anything.
//!
//! Delivery across nodes is at most once: a node that cannot reach the others keeps serving
//! its own sessions, and counts what it could not forward ([`BackplaneStatus`]).
//!
//! [`InProcessHub`] connects several routers of one process (tests, applications that run
//! several); `RedisBackplane` (cargo feature `redis`, module `redis`) connects processes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::handler::BoxFuture;
use crate::router::WeakRouter;
use crate::transport::Text;

#[cfg(feature = "redis")]
pub mod redis;

/// One publication on its way to other nodes: the EVENT frame as serialised at the origin and
/// who may receive it.
#[derive(Debug, Clone)]
pub struct RemoteEvent {
    /// The topic's full URI.
    pub topic: Arc<str>,
    /// The whole `[8, topic, event]` frame, serialised once at the origin.
    pub frame: Text,
    /// Session ids that do not receive it.
    pub exclude: Vec<String>,
    /// If set, only these sessions may receive it.
    pub eligible: Option<Vec<String>>,
}

/// A request every node answers: see [`crate::Router::cluster_subscribers`] and
/// [`crate::Router::cluster_close_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRequest {
    /// The ids of a topic's local subscribers.
    Subscribers {
        /// The topic's full URI.
        topic: String,
    },
    /// Close a session if it is local.
    CloseSession {
        /// The session's id.
        session_id: String,
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// One node's answer to a [`ClusterRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterReply {
    /// The node's subscribers of the topic.
    Subscribers(Vec<String>),
    /// Whether the session was on that node (and is now closing).
    Closed(bool),
}

/// The other nodes' answers to a [`ClusterRequest`].
#[derive(Debug, Clone, Default)]
pub struct ClusterReplies {
    /// One answer per node that answered in time (the asking node's own is not here).
    pub replies: Vec<ClusterReply>,
    /// Whether every node known to be alive answered before the timeout.
    pub complete: bool,
}

/// A cluster-wide answer: the value over every node that answered, and whether all did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAnswer<T> {
    /// The merged value (e.g. all subscriber ids; whether any node had the session).
    pub value: T,
    /// Whether every node known to be alive answered before the timeout. `false` means the
    /// value may be missing some nodes' part.
    pub complete: bool,
    /// How many nodes answered, this one included.
    pub nodes: usize,
}

/// How a backplane is doing: [`crate::Router::backplane_status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackplaneStatus {
    /// `"in-process"` or `"redis"`.
    pub kind: &'static str,
    /// This node's id (its name and a random suffix chosen at start).
    pub node_id: String,
    /// Whether events can go out and come in now.
    pub connected: bool,
    /// Other nodes seen alive recently (their heartbeats, or the hub's members).
    pub nodes_seen: usize,
    /// Events waiting in the outgoing queue.
    pub queue_depth: usize,
    /// Topics this node listens to for other nodes' events.
    pub subscribed_topics: usize,
    /// Events sent to other nodes.
    pub published: u64,
    /// Events received from other nodes (echoes not counted).
    pub received: u64,
    /// This node's own events that came back and were dropped.
    pub echoes_dropped: u64,
    /// Events dropped because the outgoing queue was full.
    pub dropped_queue_full: u64,
    /// Events dropped because the backplane was not connected (or a send failed).
    pub dropped_disconnected: u64,
    /// Incoming messages dropped because they could not be read (wrong format or version).
    pub dropped_malformed: u64,
    /// Events from other nodes known to be missing (gaps in their sequence numbers).
    pub sequence_gaps: u64,
    /// Connections re-established after a failure.
    pub reconnects: u64,
}

/// What a backplane implements. The router calls these; none may block.
pub trait Backplane: Send + Sync + 'static {
    /// Called once, when the router is built, with the handle to deliver other nodes' events
    /// into and to answer their requests.
    fn attach(&self, node: LocalNode);
    /// Takes one local publication for the other nodes, without waiting (queue it; drop it,
    /// counted, when the queue is full).
    fn forward(&self, event: RemoteEvent);
    /// The topic's local subscribers may have changed from none to some or back (told outside
    /// the broker's lock). Ask [`LocalNode::has_subscribers`] for the truth when acting on it.
    fn interest_changed(&self, topic: &str);
    /// Asks every other node and collects their answers until all alive nodes answered or
    /// the timeout passed.
    fn request(&self, request: ClusterRequest, timeout: Duration) -> BoxFuture<ClusterReplies>;
    /// The backplane's state and counters.
    fn status(&self) -> BackplaneStatus;
}

/// A router as a backplane sees it: deliver other nodes' events, answer their requests. It
/// does not keep the router alive (once the router is gone, every method does nothing).
#[derive(Clone)]
pub struct LocalNode {
    router: WeakRouter,
}

impl std::fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNode")
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl LocalNode {
    pub(crate) fn new(router: WeakRouter) -> LocalNode {
        LocalNode { router }
    }

    /// Queues another node's EVENT frame, as it is, for (local subscribers ∩ eligible) −
    /// exclude. Returns how many local sessions it was queued for.
    pub fn deliver(
        &self,
        topic: &str,
        frame: &Text,
        exclude: &[String],
        eligible: Option<&[String]>,
    ) -> usize {
        match self.router.upgrade() {
            Some(router) => router.deliver_remote(topic, frame, exclude, eligible),
            None => 0,
        }
    }

    /// Whether the topic has local subscribers now.
    pub fn has_subscribers(&self, topic: &str) -> bool {
        self.router
            .upgrade()
            .is_some_and(|r| r.has_local_subscribers(topic))
    }

    /// The topics with local subscribers now.
    pub fn subscribed_topics(&self) -> Vec<String> {
        self.router
            .upgrade()
            .map(|r| r.local_topics())
            .unwrap_or_default()
    }

    /// This node's answer to another node's request.
    pub fn answer(&self, request: &ClusterRequest) -> ClusterReply {
        let router = self.router.upgrade();
        match request {
            ClusterRequest::Subscribers { topic } => {
                ClusterReply::Subscribers(router.map(|r| r.subscribers(topic)).unwrap_or_default())
            }
            ClusterRequest::CloseSession {
                session_id,
                code,
                reason,
            } => ClusterReply::Closed(
                router.is_some_and(|r| r.close_session(session_id, *code, reason)),
            ),
        }
    }

    /// Whether the router still exists.
    pub fn is_alive(&self) -> bool {
        self.router.upgrade().is_some()
    }
}

/// Counters shared by a backplane's tasks, read by [`BackplaneStatus`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) echoes_dropped: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_disconnected: AtomicU64,
    pub(crate) dropped_malformed: AtomicU64,
    pub(crate) sequence_gaps: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Fills the counter fields of a status.
    pub(crate) fn fill(&self, s: &mut BackplaneStatus) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        s.published = get(&self.published);
        s.received = get(&self.received);
        s.echoes_dropped = get(&self.echoes_dropped);
        s.dropped_queue_full = get(&self.dropped_queue_full);
        s.dropped_disconnected = get(&self.dropped_disconnected);
        s.dropped_malformed = get(&self.dropped_malformed);
        s.sequence_gaps = get(&self.sequence_gaps);
        s.reconnects = get(&self.reconnects);
    }
}

/// A random node id: the name and 8 hex digits.
pub(crate) fn node_id(name: &str) -> String {
    let mut bytes = [0u8; 4];
    let _ = getrandom::getrandom(&mut bytes);
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{suffix}")
}

/// Connects the routers of one process: each gets its [`InProcessBackplane`] from
/// [`InProcessHub::backplane`]. Cloning is cheap; every clone is the same hub.
#[derive(Clone, Default)]
pub struct InProcessHub {
    members: Arc<Mutex<Vec<Arc<Member>>>>,
}

impl std::fmt::Debug for InProcessHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.members.lock().expect("hub lock").len();
        f.debug_struct("InProcessHub").field("members", &n).finish()
    }
}

/// One router on a hub.
struct Member {
    id: String,
    node: OnceLock<LocalNode>,
    counters: Counters,
}

impl InProcessHub {
    /// A hub with no routers yet.
    pub fn new() -> InProcessHub {
        InProcessHub::default()
    }

    /// A backplane for one more router, named `name`, with an outgoing queue of 10,000 events.
    /// Build the router inside a tokio runtime (the backplane starts its delivery task then).
    pub fn backplane(&self, name: &str) -> Arc<InProcessBackplane> {
        self.backplane_with_queue(name, 10_000)
    }

    /// Like [`InProcessHub::backplane`] with an outgoing queue of `capacity` events.
    pub fn backplane_with_queue(&self, name: &str, capacity: usize) -> Arc<InProcessBackplane> {
        let member = Arc::new(Member {
            id: node_id(name),
            node: OnceLock::new(),
            counters: Counters::default(),
        });
        self.members.lock().expect("hub lock").push(member.clone());
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Arc::new(InProcessBackplane {
            hub: self.clone(),
            member,
            tx,
            rx: Mutex::new(Some(rx)),
            task: Mutex::new(None),
        })
    }

    /// The other members whose routers are alive (dead ones leave the hub).
    fn others(&self, me: &str) -> Vec<Arc<Member>> {
        let mut members = self.members.lock().expect("hub lock");
        members.retain(|m| m.node.get().is_none_or(LocalNode::is_alive));
        members
            .iter()
            .filter(|m| m.id != me && m.node.get().is_some())
            .cloned()
            .collect()
    }
}

/// A router's connection to an [`InProcessHub`]: one bounded queue and one task that hands
/// each event to the other routers' brokers in order.
pub struct InProcessBackplane {
    hub: InProcessHub,
    member: Arc<Member>,
    tx: mpsc::Sender<RemoteEvent>,
    rx: Mutex<Option<mpsc::Receiver<RemoteEvent>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for InProcessBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBackplane")
            .field("node_id", &self.member.id)
            .finish_non_exhaustive()
    }
}

impl Drop for InProcessBackplane {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().expect("task lock").take() {
            task.abort();
        }
    }
}

impl Backplane for InProcessBackplane {
    fn attach(&self, node: LocalNode) {
        let _ = self.member.node.set(node);
        let Some(mut rx) = self.rx.lock().expect("rx lock").take() else {
            return;
        };
        let hub = self.hub.clone();
        let me = self.member.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                for other in hub.others(&me.id) {
                    if let Some(node) = other.node.get() {
                        Counters::add(&other.counters.received, 1);
                        node.deliver(
                            &event.topic,
                            &event.frame,
                            &event.exclude,
                            event.eligible.as_deref(),
                        );
                    }
                }
                Counters::add(&me.counters.published, 1);
            }
        });
        *self.task.lock().expect("task lock") = Some(task);
    }

    fn forward(&self, event: RemoteEvent) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::add(&self.member.counters.dropped_queue_full, 1)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Counters::add(&self.member.counters.dropped_disconnected, 1)
            }
        }
    }

    fn interest_changed(&self, _topic: &str) {
        // Every event goes to every router of the hub; a router without subscribers of the
        // topic finds none at once.
    }

    fn request(&self, request: ClusterRequest, _timeout: Duration) -> BoxFuture<ClusterReplies> {
        let replies = self
            .hub
            .others(&self.member.id)
            .iter()
            .filter_map(|m| m.node.get().map(|n| n.answer(&request)))
            .collect();
        Box::pin(async move {
            ClusterReplies {
                replies,
                complete: true,
            }
        })
    }

    fn status(&self) -> BackplaneStatus {
        let subscribed_topics = self
            .member
            .node
            .get()
            .map(|n| n.subscribed_topics().len())
            .unwrap_or(0);
        let mut s = BackplaneStatus {
            kind: "in-process",
            node_id: self.member.id.clone(),
            connected: true,
            nodes_seen: self.hub.others(&self.member.id).len(),
            queue_depth: self.tx.max_capacity() - self.tx.capacity(),
            subscribed_topics,
            ..BackplaneStatus::default()
        };
        self.member.counters.fill(&mut s);
        s
    }
}

/// Merges the asking node's own answer with the others'.
pub(crate) fn merge_subscribers(
    mut local: Vec<String>,
    replies: ClusterReplies,
) -> ClusterAnswer<Vec<String>> {
    let nodes = replies.replies.len() + 1;
    for reply in replies.replies {
        if let ClusterReply::Subscribers(ids) = reply {
            local.extend(ids);
        }
    }
    local.sort();
    local.dedup();
    ClusterAnswer {
        value: local,
        complete: replies.complete,
        nodes,
    }
}

/// Merges the asking node's own close with the others'.
pub(crate) fn merge_closed(local: bool, replies: ClusterReplies) -> ClusterAnswer<bool> {
    let nodes = replies.replies.len() + 1;
    let value = local
        || replies
            .replies
            .iter()
            .any(|r| matches!(r, ClusterReply::Closed(true)));
    ClusterAnswer {
        value,
        complete: replies.complete,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RemoteEvent {
        RemoteEvent {
            topic: Arc::from("http://t/x"),
            frame: Text::from(r#"[8,"http://t/x",1]"#),
            exclude: Vec::new(),
            eligible: None,
        }
    }

    #[test]
    fn a_full_queue_drops_the_newest_and_counts_it() {
        // Not attached: nothing takes from the queue.
        let bp = InProcessHub::new().backplane_with_queue("a", 2);
        for _ in 0..3 {
            bp.forward(event());
        }
        let s = bp.status();
        assert_eq!((s.queue_depth, s.dropped_queue_full), (2, 1));
        assert_eq!(s.published, 0);
        assert!(
            s.node_id.starts_with("a-") && s.node_id.len() == 10,
            "{}",
            s.node_id
        );
    }

    #[test]
    fn answers_merge_over_nodes() {
        let replies = ClusterReplies {
            replies: vec![
                ClusterReply::Subscribers(vec!["b".into(), "a".into()]),
                ClusterReply::Subscribers(vec!["c".into()]),
            ],
            complete: false,
        };
        let merged = merge_subscribers(vec!["d".into(), "a".into()], replies);
        assert_eq!(merged.value, ["a", "b", "c", "d"]);
        assert_eq!((merged.complete, merged.nodes), (false, 3));
        let closed = ClusterReplies {
            replies: vec![ClusterReply::Closed(false), ClusterReply::Closed(true)],
            complete: true,
        };
        assert!(merge_closed(false, closed).value);
        assert!(!merge_closed(false, ClusterReplies::default()).value);
    }
}
