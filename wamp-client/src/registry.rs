//! [`Registry`]: the driver's bookkeeping as plain data — calls waiting for an answer, local
//! subscriptions by resolved topic, the client's prefixes. No socket, no tasks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use wamp_proto::uri::{curie_prefix, Prefixes};
use wamp_proto::Message;

use crate::error::{Error, Result};
use crate::event::Event;

/// A reply channel for a call.
pub(crate) type CallReply = oneshot::Sender<Result<Value>>;

/// The driver's side of one local subscription. Events arrive as one shared `Arc` per
/// EVENT, however many local subscriptions the topic has.
pub(crate) struct LocalSub {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::Sender<Arc<Event>>,
    pub(crate) dropped: Arc<AtomicU64>,
}

/// Pending calls, subscriptions and prefixes of one client; they outlive connections
/// (pending calls do not: they fail when the link drops).
pub(crate) struct Registry {
    prefixes: Prefixes,
    /// Calls sent on the current connection and not answered yet, by call id.
    pending: HashMap<String, CallReply>,
    /// Local subscriptions by resolved topic URI. A topic is in this map exactly when the
    /// server should have this session subscribed to it.
    topics: HashMap<String, Vec<LocalSub>>,
    /// Resolved topic of each local subscription id.
    sub_topics: HashMap<u64, String>,
}

impl Registry {
    /// A registry knowing `prefixes` (the client's own, sent on every connection).
    pub(crate) fn new(prefixes: &[(String, String)]) -> Self {
        let mut own = Prefixes::new();
        for (prefix, uri) in prefixes {
            own.insert(prefix.clone(), uri.clone());
        }
        Registry {
            prefixes: own,
            pending: HashMap::new(),
            topics: HashMap::new(),
            sub_topics: HashMap::new(),
        }
    }

    /// Defines (or redefines) a prefix of the client's own.
    pub(crate) fn define_prefix(&mut self, prefix: String, uri: String) {
        self.prefixes.insert(prefix, uri);
    }

    /// What a new session must be told, in order: one PREFIX per prefix of the client's
    /// own, then one SUBSCRIBE per topic with live local subscriptions.
    pub(crate) fn resume_messages(&self) -> Vec<Message> {
        let mut frames: Vec<Message> = self
            .prefixes
            .own()
            .map(|(prefix, uri)| Message::Prefix {
                prefix: prefix.into(),
                uri: uri.into(),
            })
            .collect();
        frames.extend(self.topics.keys().map(|topic| Message::Subscribe {
            topic_uri: topic.clone(),
        }));
        frames
    }

    /// Remembers a call sent on the current connection.
    pub(crate) fn add_call(&mut self, call_id: String, reply: CallReply) {
        self.pending.insert(call_id, reply);
    }

    /// Hands an answer to the call waiting for it; false when no one waits (timed out,
    /// abandoned, or an id this client never sent).
    pub(crate) fn answer(&mut self, call_id: &str, result: Result<Value>) -> bool {
        match self.pending.remove(call_id) {
            Some(reply) => {
                // The caller may have given up just now; nothing to do then.
                let _ = reply.send(result);
                true
            }
            None => false,
        }
    }

    /// Forgets a call whose caller gave up; true when it was still waiting.
    pub(crate) fn forget_call(&mut self, call_id: &str) -> bool {
        self.pending.remove(call_id).is_some()
    }

    /// How many calls wait for an answer.
    pub(crate) fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    /// Fails every waiting call with `error`.
    pub(crate) fn fail_calls(&mut self, error: &Error) {
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// How many topics the server should have this session subscribed to.
    pub(crate) fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// How many prefixes of the client's own there are.
    pub(crate) fn prefix_count(&self) -> usize {
        self.prefixes.own().count()
    }

    /// Files a local subscription under its resolved topic. Returns the resolved topic and
    /// whether it is the topic's first subscription (SUBSCRIBE needed). A CURIE whose prefix
    /// the client does not know is refused: the events (full URIs) could not be matched.
    pub(crate) fn subscribe(&mut self, topic: &str, sub: LocalSub) -> Result<(String, bool)> {
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

    /// Removes a local subscription; returns its topic when no local subscription is left
    /// on it (UNSUBSCRIBE needed).
    pub(crate) fn unsubscribe(&mut self, id: u64) -> Option<String> {
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

    /// Drops every subscription (their streams end).
    pub(crate) fn clear_subscriptions(&mut self) {
        self.topics.clear();
        self.sub_topics.clear();
    }

    /// Delivers an EVENT to every local subscription of its topic: one `Arc` shared by all
    /// of them. A full buffer drops the event for that subscription and counts it. Returns
    /// how many subscriptions took it.
    pub(crate) fn deliver(&self, topic: String, payload: Value) -> usize {
        let key = self.prefixes.resolve(&topic);
        let Some(subs) = self.topics.get(key.as_ref()) else {
            debug!(%topic, "EVENT for a topic with no local subscription (unsubscribed meanwhile?)");
            return 0;
        };
        drop(key);
        let event = Arc::new(Event::new(topic, payload));
        let mut delivered = 0;
        for sub in subs {
            match sub.tx.try_send(event.clone()) {
                Ok(()) => delivered += 1,
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
        delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sub(id: u64, capacity: usize) -> (LocalSub, mpsc::Receiver<Arc<Event>>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        (
            LocalSub {
                id,
                tx,
                dropped: dropped.clone(),
            },
            rx,
            dropped,
        )
    }

    fn registry() -> Registry {
        Registry::new(&[("ev".into(), "http://x/event#".into())])
    }

    #[test]
    fn subscriptions_share_one_subscribe_and_one_event() {
        let mut r = registry();
        let (a, mut rx_a, _) = sub(1, 4);
        let (b, mut rx_b, _) = sub(2, 4);
        assert_eq!(
            r.subscribe("ev:chat", a).unwrap(),
            ("http://x/event#chat".to_string(), true)
        );
        assert_eq!(
            r.subscribe("http://x/event#chat", b).unwrap(),
            ("http://x/event#chat".to_string(), false)
        );
        assert_eq!(r.topic_count(), 1);
        assert_eq!(r.deliver("http://x/event#chat".into(), json!({"n": 1})), 2);
        let (ea, eb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
        assert!(Arc::ptr_eq(&ea, &eb), "one Arc per event, not a copy each");
        assert_eq!(ea.payload, json!({"n": 1}));
        // An event sent with the CURIE is matched too.
        assert_eq!(r.deliver("ev:chat".into(), json!(2)), 2);
        assert_eq!(r.deliver("http://x/event#other".into(), json!(3)), 0);
        assert_eq!(r.unsubscribe(1), None, "b still listens");
        assert_eq!(r.unsubscribe(2), Some("http://x/event#chat".to_string()));
        assert_eq!(r.unsubscribe(2), None, "twice is nothing");
        assert_eq!(r.topic_count(), 0);
    }

    #[test]
    fn unknown_prefixes_are_refused_and_full_uris_pass() {
        let mut r = registry();
        let (a, _rx, _) = sub(1, 1);
        match r.subscribe("event:chat", a) {
            Err(Error::UnknownPrefix { topic, prefix }) => {
                assert_eq!((topic.as_str(), prefix.as_str()), ("event:chat", "event"));
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(r.topic_count(), 0);
        let (b, _rx, _) = sub(2, 1);
        assert!(r.subscribe("urn:x:y", b).unwrap().1);
        r.define_prefix("event".into(), "http://t/event#".into());
        let (c, _rx, _) = sub(3, 1);
        assert_eq!(
            r.subscribe("event:chat", c).unwrap().0,
            "http://t/event#chat"
        );
    }

    #[test]
    fn full_buffers_drop_and_count() {
        let mut r = registry();
        let (a, mut rx, dropped) = sub(1, 1);
        r.subscribe("http://x/t", a).unwrap();
        assert_eq!(r.deliver("http://x/t".into(), json!(1)), 1);
        assert_eq!(r.deliver("http://x/t".into(), json!(2)), 0);
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert_eq!(rx.try_recv().unwrap().payload, json!(1));
        drop(rx);
        assert_eq!(r.deliver("http://x/t".into(), json!(3)), 0);
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            1,
            "a closed stream is not a drop"
        );
    }

    #[test]
    fn resume_sends_prefixes_then_subscriptions() {
        let mut r = registry();
        let (a, _rx, _) = sub(1, 1);
        r.subscribe("ev:a", a).unwrap();
        let frames: Vec<String> = r.resume_messages().iter().map(Message::to_json).collect();
        assert_eq!(
            frames,
            [r#"[1,"ev","http://x/event#"]"#, r#"[5,"http://x/event#a"]"#]
        );
        r.clear_subscriptions();
        assert_eq!(r.resume_messages().len(), 1);
        assert_eq!(r.prefix_count(), 1);
    }

    #[test]
    fn answers_reach_their_call_once() {
        let mut r = registry();
        let (tx, mut rx) = oneshot::channel();
        r.add_call("c1".into(), tx);
        assert_eq!(r.pending_calls(), 1);
        assert!(!r.answer("c2", Ok(json!(0))));
        assert!(r.answer("c1", Ok(json!(7))));
        assert_eq!(rx.try_recv().unwrap().unwrap(), json!(7));
        assert!(!r.answer("c1", Ok(json!(8))), "answered already");
        let (tx, _rx) = oneshot::channel();
        r.add_call("c3".into(), tx);
        assert!(r.forget_call("c3"));
        assert!(!r.forget_call("c3"));
        let (tx, mut rx) = oneshot::channel();
        r.add_call("c4".into(), tx);
        r.fail_calls(&Error::NotConnected);
        assert!(matches!(rx.try_recv().unwrap(), Err(Error::NotConnected)));
        assert_eq!(r.pending_calls(), 0);
    }
}
