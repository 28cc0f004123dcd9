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

    /// Adds a subscription; `false` if the session was already subscribed.
    pub(crate) fn subscribe(&self, topic: &str, session: &Arc<SessionHandle>) -> bool {
        let mut topics = self.topics.lock().expect("broker lock");
        let subs = match topics.get_mut(topic) {
            Some(subs) => subs,
            None => topics.entry(topic.to_string()).or_default(),
        };
        subs.insert(session.id.clone(), session.clone()).is_none()
    }

    /// Removes a subscription; `false` if there was none.
    pub(crate) fn unsubscribe(&self, topic: &str, session_id: &str) -> bool {
        let mut topics = self.topics.lock().expect("broker lock");
        let Some(subs) = topics.get_mut(topic) else {
            return false;
        };
        let removed = subs.remove(session_id).is_some();
        if subs.is_empty() {
            topics.remove(topic);
        }
        removed
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
        let recipients: Vec<Arc<SessionHandle>> = {
            let topics = self.topics.lock().expect("broker lock");
            let Some(subs) = topics.get(topic) else {
                return self.stats.published(0, 0);
            };
            let excluded = IdSet::new(exclude);
            match eligible {
                Some(eligible) => {
                    let eligible = IdSet::new(eligible);
                    subs.iter()
                        .filter(|(id, _)| eligible.contains(id) && !excluded.contains(id))
                        .map(|(_, s)| s.clone())
                        .collect()
                }
                None => subs
                    .iter()
                    .filter(|(id, _)| !excluded.contains(id))
                    .map(|(_, s)| s.clone())
                    .collect(),
            }
        };
        if recipients.is_empty() {
            return self.stats.published(0, 0);
        }
        let frame = Text::from(wamp_proto::message::event_json(topic, event));
        let n = recipients
            .iter()
            .filter(|session| {
                if frame.len() > session.max_frame() {
                    tracing::warn!(
                        topic,
                        bytes = frame.len(),
                        "event larger than the outbox allows (outbox_max_bytes): not delivered"
                    );
                    return false;
                }
                session.send(frame.clone())
            })
            .count();
        self.stats.published(n, frame.len())
    }
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
