//! Topic subscriptions and fan-out: recipients = (subscribers ∩ eligible) − exclude, each
//! event serialised once and the same bytes queued for every recipient.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::outbox::SessionHandle;
use crate::stats::Stats;
use crate::transport::Text;

/// Subscribers by topic. One short-held lock: publishing copies the recipients' handles out
/// and sends after releasing it, so a publish never waits on a subscriber.
pub(crate) struct Broker {
    topics: Mutex<HashMap<String, Subscribers>>,
    stats: Arc<Stats>,
}

/// One topic's subscribers by session id.
type Subscribers = HashMap<Arc<str>, Arc<SessionHandle>>;

impl Broker {
    /// An empty broker that counts its publications into `stats`.
    pub(crate) fn new(stats: Arc<Stats>) -> Broker {
        Broker {
            topics: Mutex::default(),
            stats,
        }
    }

    /// `(topics, subscriptions)` now, for [`crate::Router::stats`].
    pub(crate) fn counts(&self) -> (usize, usize) {
        let topics = self.topics.lock().expect("broker lock");
        (topics.len(), topics.values().map(HashMap::len).sum())
    }

    /// Adds a subscription: whether it is new, and whether it is the topic's first.
    pub(crate) fn subscribe(&self, topic: &str, session: &Arc<SessionHandle>) -> (bool, bool) {
        let mut topics = self.topics.lock().expect("broker lock");
        let first = !topics.contains_key(topic);
        let subs = topics.entry(topic.to_string()).or_default();
        (
            subs.insert(session.id.clone(), session.clone()).is_none(),
            first,
        )
    }

    /// Removes a subscription: whether there was one, and whether it was the topic's last.
    pub(crate) fn unsubscribe(&self, topic: &str, session_id: &str) -> (bool, bool) {
        let mut topics = self.topics.lock().expect("broker lock");
        let Some(subs) = topics.get_mut(topic) else {
            return (false, false);
        };
        let removed = subs.remove(session_id).is_some();
        let last = subs.is_empty();
        if last {
            topics.remove(topic);
        }
        (removed, last)
    }

    /// Whether the topic has subscribers.
    pub(crate) fn has_subscribers(&self, topic: &str) -> bool {
        self.topics.lock().expect("broker lock").contains_key(topic)
    }

    /// The topics that have subscribers.
    pub(crate) fn topics(&self) -> Vec<String> {
        let topics = self.topics.lock().expect("broker lock");
        topics.keys().cloned().collect()
    }

    /// The ids of a topic's subscribers.
    pub(crate) fn subscribers(&self, topic: &str) -> Vec<String> {
        let topics = self.topics.lock().expect("broker lock");
        topics
            .get(topic)
            .map(|subs| subs.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    /// Sends `[8, topic, event]` to (subscribers ∩ eligible) − exclude. Returns how many
    /// sessions it was queued for.
    pub(crate) fn publish(
        &self,
        topic: &str,
        event: &Value,
        exclude: &[String],
        eligible: Option<&[String]>,
    ) -> usize {
        let recipients = self.recipients(topic, exclude, eligible);
        if recipients.is_empty() {
            return self.stats.published(0, 0);
        }
        let frame = Text::from(wamp_proto::message::event_json(topic, event));
        self.stats
            .published(send_all(&recipients, topic, &frame), frame.len())
    }

    /// Queues an EVENT frame already serialised (here or by another node) for (subscribers ∩
    /// eligible) − exclude. Returns how many sessions it was queued for.
    pub(crate) fn deliver(
        &self,
        topic: &str,
        frame: &Text,
        exclude: &[String],
        eligible: Option<&[String]>,
    ) -> usize {
        let n = send_all(&self.recipients(topic, exclude, eligible), topic, frame);
        self.stats.published(n, frame.len())
    }

    fn recipients(
        &self,
        topic: &str,
        exclude: &[String],
        eligible: Option<&[String]>,
    ) -> Vec<Arc<SessionHandle>> {
        // Built before the lock: the broker's one lock is held only to copy handles out.
        let excluded = IdSet::new(exclude);
        let eligible = eligible.map(IdSet::new);
        let topics = self.topics.lock().expect("broker lock");
        let Some(subs) = topics.get(topic) else {
            return Vec::new();
        };
        subs.iter()
            .filter(|(id, _)| {
                eligible.as_ref().is_none_or(|e| e.contains(id)) && !excluded.contains(id)
            })
            .map(|(_, s)| s.clone())
            .collect()
    }
}

/// Queues one frame for each recipient; returns how many took it. A frame over the byte bound
/// (the same for every session of a router, Options::outbox_max_bytes) is logged once and
/// delivered to none.
fn send_all(recipients: &[Arc<SessionHandle>], topic: &str, frame: &Text) -> usize {
    let Some(first) = recipients.first() else {
        return 0;
    };
    if frame.len() > first.max_frame() {
        tracing::warn!(
            topic,
            bytes = frame.len(),
            recipients = recipients.len(),
            "event larger than the outbox allows (outbox_max_bytes): not delivered"
        );
        return 0;
    }
    recipients
        .iter()
        .filter(|session| session.send(frame.clone()))
        .count()
}

/// A set of session ids: a scan for the usual short list, a hash set for long ones.
enum IdSet<'a> {
    Few(&'a [String]),
    Many(HashSet<&'a str>),
}

impl<'a> IdSet<'a> {
    fn new(ids: &'a [String]) -> Self {
        if ids.len() <= 16 {
            IdSet::Few(ids)
        } else {
            IdSet::Many(ids.iter().map(String::as_str).collect())
        }
    }

    fn contains(&self, id: &str) -> bool {
        match self {
            IdSet::Few(ids) => ids.iter().any(|x| x == id),
            IdSet::Many(set) => set.contains(id),
        }
    }
}
