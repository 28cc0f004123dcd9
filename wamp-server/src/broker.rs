//! Topic subscriptions and fan-out: recipients = (subscribers ∩ eligible) − exclude, each
//! event serialised once and the same bytes queued for every recipient.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::outbox::SessionHandle;
use crate::stats::Stats;
use crate::transport::Text;

/// Subscribers by topic. One short-held lock: publishing takes a reference to the topic's
/// list of handles (one reference count, not one per subscriber) and sends after releasing
/// it, so a publish never waits on a subscriber.
pub(crate) struct Broker {
    topics: Mutex<HashMap<String, Subscribers>>,
    stats: Arc<Stats>,
}

/// One topic's subscribers: the handles in a shared list that publishers iterate outside the
/// lock, and each session's place in it. A change copies the list only while a publish still
/// iterates it (copy on write); otherwise it is changed in place.
#[derive(Default)]
struct Subscribers {
    index: HashMap<Arc<str>, usize>,
    list: Arc<Vec<Arc<SessionHandle>>>,
}

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
        (topics.len(), topics.values().map(|s| s.index.len()).sum())
    }

    /// Adds a subscription: whether it is new, and whether it is the topic's first.
    pub(crate) fn subscribe(&self, topic: &str, session: &Arc<SessionHandle>) -> (bool, bool) {
        let mut topics = self.topics.lock().expect("broker lock");
        let first = !topics.contains_key(topic);
        let subs = topics.entry(topic.to_string()).or_default();
        if subs.index.contains_key(&session.id) {
            return (false, first);
        }
        let list = Arc::make_mut(&mut subs.list);
        subs.index.insert(session.id.clone(), list.len());
        list.push(session.clone());
        (true, first)
    }

    /// Removes a subscription: whether there was one, and whether it was the topic's last.
    pub(crate) fn unsubscribe(&self, topic: &str, session_id: &str) -> (bool, bool) {
        let mut topics = self.topics.lock().expect("broker lock");
        let Some(subs) = topics.get_mut(topic) else {
            return (false, false);
        };
        let removed = match subs.index.remove(session_id) {
            Some(at) => {
                let list = Arc::make_mut(&mut subs.list);
                list.swap_remove(at);
                // The last one moved into the gap.
                if let Some(moved) = list.get(at) {
                    if let Some(place) = subs.index.get_mut(&moved.id) {
                        *place = at;
                    }
                }
                true
            }
            None => false,
        };
        let last = subs.index.is_empty();
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
            .map(|subs| subs.index.keys().map(|k| k.to_string()).collect())
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
        let Some(subscribers) = self.list(topic) else {
            return self.stats.published(0, 0);
        };
        let frame = Text::from(wamp_proto::message::event_json(topic, event));
        let n = send_all(&subscribers, topic, &frame, exclude, eligible);
        self.stats.published(n, frame.len())
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
        let n = match self.list(topic) {
            Some(subscribers) => send_all(&subscribers, topic, frame, exclude, eligible),
            None => 0,
        };
        self.stats.published(n, frame.len())
    }

    /// The topic's subscribers, shared (a reference count under the lock).
    fn list(&self, topic: &str) -> Option<Arc<Vec<Arc<SessionHandle>>>> {
        let topics = self.topics.lock().expect("broker lock");
        topics.get(topic).map(|subs| subs.list.clone())
    }
}

/// Queues one frame for each of (subscribers ∩ eligible) − exclude; returns how many took
/// it. A frame over the byte bound (the same for every session of a router,
/// Options::outbox_max_bytes) is logged once and delivered to none.
fn send_all(
    subscribers: &[Arc<SessionHandle>],
    topic: &str,
    frame: &Text,
    exclude: &[String],
    eligible: Option<&[String]>,
) -> usize {
    let Some(first) = subscribers.first() else {
        return 0;
    };
    if frame.len() > first.max_frame() {
        tracing::warn!(
            topic,
            bytes = frame.len(),
            recipients = subscribers.len(),
            "event larger than the outbox allows (outbox_max_bytes): not delivered"
        );
        return 0;
    }
    let send = |session: &&Arc<SessionHandle>| session.send(frame.clone());
    if exclude.is_empty() && eligible.is_none() {
        // The usual case: no filter to look up per subscriber.
        return subscribers.iter().filter(send).count();
    }
    let excluded = IdSet::new(exclude);
    let eligible = eligible.map(IdSet::new);
    subscribers
        .iter()
        .filter(|s| {
            eligible.as_ref().is_none_or(|e| e.contains(&s.id)) && !excluded.contains(&s.id)
        })
        .filter(send)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's handle, with its writer's end (sends fail once that is gone).
    fn handle(id: &str) -> (Arc<SessionHandle>, crate::outbox::Receiver) {
        SessionHandle::new(Arc::from(id), 100, 1 << 20, Arc::default())
    }

    fn ids(broker: &Broker, topic: &str) -> Vec<String> {
        let mut ids = broker.subscribers(topic);
        ids.sort();
        ids
    }

    #[test]
    fn subscribers_come_and_go_in_any_order_and_a_publish_reaches_exactly_them() {
        let broker = Broker::new(Arc::default());
        let ((a, _ra), (b, _rb), (c, _rc)) = (handle("a"), handle("b"), handle("c"));
        assert_eq!(broker.subscribe("t", &a), (true, true));
        assert_eq!(broker.subscribe("t", &b), (true, false));
        assert_eq!(broker.subscribe("t", &c), (true, false));
        assert_eq!(broker.subscribe("t", &b), (false, false), "already there");
        // A publish in progress holds the list while it changes: it is copied, not changed.
        let held = broker.list("t").unwrap();
        assert_eq!(broker.unsubscribe("t", "a"), (true, false));
        assert_eq!(held.len(), 3);
        drop(held);
        assert_eq!(ids(&broker, "t"), ["b", "c"]);
        assert_eq!(broker.publish("t", &Value::Null, &[], None), 2);
        // c moved into a's place: removing it must find it there.
        assert_eq!(broker.unsubscribe("t", "c"), (true, false));
        assert_eq!(broker.unsubscribe("t", "c"), (false, false));
        assert_eq!(broker.publish("t", &Value::Null, &[], None), 1);
        assert_eq!(broker.subscribe("t", &a), (true, false));
        assert_eq!(broker.publish("t", &Value::Null, &["a".into()], None), 1);
        assert_eq!(
            broker.publish("t", &Value::Null, &[], Some(&["a".into()])),
            1
        );
        assert_eq!(broker.counts(), (1, 2));
        assert_eq!(broker.unsubscribe("t", "b"), (true, false));
        assert_eq!(broker.unsubscribe("t", "a"), (true, true));
        assert_eq!(broker.counts(), (0, 0));
        assert_eq!(broker.publish("t", &Value::Null, &[], None), 0);
        // What each session got: a one event, b three, c one.
        let queued = |h: &SessionHandle| h.queued();
        assert_eq!((queued(&a), queued(&b), queued(&c)), (1, 3, 1));
    }
}
