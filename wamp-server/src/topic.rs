//! Topic policies: who may subscribe and publish, and the publish "broker" callback that may
//! rewrite or drop an event; keyed by exact URI, `prefix*` wildcard or `*`.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use wamp_proto::uri::UriTable;

use crate::handler::BoxFuture;
use crate::router::Router;

/// The session and topic a policy callback decides for.
#[derive(Clone)]
pub struct TopicContext {
    /// The session that subscribes or publishes.
    pub session_id: Arc<str>,
    /// Its authenticated key, if any.
    pub auth_key: Option<Arc<str>>,
    /// The topic's full URI.
    pub topic: Arc<str>,
    /// The router, e.g. to look at the topic's subscribers.
    pub router: Router,
}

impl std::fmt::Debug for TopicContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicContext")
            .field("session_id", &self.session_id)
            .field("auth_key", &self.auth_key)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// One publish on its way to subscribers, as a publish policy sees and may rewrite it.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// The event payload.
    pub event: Value,
    /// Session ids that do not receive the event (the publisher's id is here when it is
    /// excluded, by `excludeMe` or by the router's default).
    pub exclude: Vec<String>,
    /// If set, only these sessions may receive the event.
    pub eligible: Option<Vec<String>>,
}

type SubscribeCheck = Arc<dyn Fn(TopicContext) -> BoxFuture<bool> + Send + Sync>;
type PublishBroker =
    Arc<dyn Fn(TopicContext, Publication) -> BoxFuture<Option<Publication>> + Send + Sync>;

/// Whether a session may subscribe.
#[derive(Clone)]
pub enum SubscribePolicy {
    /// Anyone may subscribe.
    Allow,
    /// Nobody may subscribe (a SUBSCRIBE is dropped silently, as WAMP v1 has no error for it).
    Deny,
    /// An async callback decides.
    Check(SubscribeCheck),
}

/// Whether a session may publish, and what is published.
#[derive(Clone)]
pub enum PublishPolicy {
    /// Anyone may publish; events are relayed as sent.
    Allow,
    /// Nobody may publish (dropped silently).
    Deny,
    /// An async callback may rewrite the event and its exclude/eligible lists, or return
    /// `None` to drop the publish (clj-wamp's "broker" callback).
    Broker(PublishBroker),
}

/// The subscribe and publish policies of a topic (or of every topic a pattern matches).
///
/// ```
/// use wamp_server::Topic;
/// use serde_json::json;
/// // A chat topic whose events are wrapped with the sender's session id.
/// let chat = Topic::open().on_publish(|ctx, mut p| async move {
///     p.event = json!({"from": &*ctx.session_id, "msg": p.event});
///     Some(p)
/// });
/// let read_only = Topic::open().deny_publish();
/// # let _ = (chat, read_only);
/// ```
#[derive(Clone)]
pub struct Topic {
    pub(crate) subscribe: SubscribePolicy,
    pub(crate) publish: PublishPolicy,
}

impl Topic {
    /// Open for subscribe and publish.
    pub fn open() -> Self {
        Topic {
            subscribe: SubscribePolicy::Allow,
            publish: PublishPolicy::Allow,
        }
    }

    /// Closed for both: useful to carve an exception out of a wildcard.
    pub fn closed() -> Self {
        Topic {
            subscribe: SubscribePolicy::Deny,
            publish: PublishPolicy::Deny,
        }
    }

    /// Subscribers welcome, publishing only from the server ([`Router::publish`]).
    pub fn deny_publish(mut self) -> Self {
        self.publish = PublishPolicy::Deny;
        self
    }

    /// Publishing allowed, subscribing not.
    pub fn deny_subscribe(mut self) -> Self {
        self.subscribe = SubscribePolicy::Deny;
        self
    }

    /// Sets the subscribe policy.
    pub fn subscribe_policy(mut self, policy: SubscribePolicy) -> Self {
        self.subscribe = policy;
        self
    }

    /// Sets the publish policy.
    pub fn publish_policy(mut self, policy: PublishPolicy) -> Self {
        self.publish = policy;
        self
    }

    /// An async callback decides each SUBSCRIBE.
    pub fn on_subscribe<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(TopicContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.subscribe = SubscribePolicy::Check(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// An async callback sees each PUBLISH and returns what to deliver, or `None` to drop it.
    pub fn on_publish<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(TopicContext, Publication) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Publication>> + Send + 'static,
    {
        self.publish = PublishPolicy::Broker(Arc::new(move |ctx, p| Box::pin(f(ctx, p))));
        self
    }
}

/// Topic policies by exact URI and by prefix (`"http://x/news*"`, or `"*"` for every topic),
/// decided by wamp-proto's one URI matcher (the exact entry, else the longest prefix).
#[derive(Clone, Default)]
pub(crate) struct TopicTable {
    table: UriTable<Topic>,
}

/// A pattern as the table keys it: the URI without its `*`, and whether it is a prefix.
fn parse_pattern(pattern: &str) -> (&str, bool) {
    match pattern.strip_suffix('*') {
        Some(prefix) => (prefix, true),
        None => (pattern, false),
    }
}

impl TopicTable {
    /// Adds or replaces the policy for a pattern; returns whether one was replaced.
    pub(crate) fn insert(&mut self, pattern: &str, topic: Topic) -> bool {
        let (uri, prefix) = parse_pattern(pattern);
        self.table.insert(uri, prefix, topic).is_some()
    }

    /// Removes the policy for a pattern; returns whether there was one.
    pub(crate) fn remove(&mut self, pattern: &str) -> bool {
        let (uri, prefix) = parse_pattern(pattern);
        self.table.remove(uri, prefix).is_some()
    }

    /// The policy that decides for `uri`: the exact entry, else the longest matching prefix.
    pub(crate) fn find(&self, uri: &str) -> Option<&Topic> {
        self.table.find(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(t: Option<&Topic>) -> Option<bool> {
        t.map(|t| matches!(t.subscribe, SubscribePolicy::Allow))
    }

    #[test]
    fn exact_wins_then_longest_prefix() {
        let mut table = TopicTable::default();
        table.insert("*", Topic::open());
        table.insert("http://x/private*", Topic::closed());
        table.insert("http://x/private/open", Topic::open());
        table.insert("http://x/*", Topic::open());
        assert_eq!(is_open(table.find("http://y/a")), Some(true));
        assert_eq!(is_open(table.find("http://x/private/a")), Some(false));
        assert_eq!(is_open(table.find("http://x/private/open")), Some(true));
        assert_eq!(is_open(table.find("http://x/pub")), Some(true));
        // An exact deny beats a wildcard allow.
        table.insert("http://x/pub", Topic::closed());
        assert_eq!(is_open(table.find("http://x/pub")), Some(false));
        assert!(table.remove("*"));
        assert!(!table.remove("*"));
        assert!(table.find("http://y/a").is_none());
    }
}
