//! Permissions (`docs/PROTOCOL.md` section 6.6): which procedures a session may call and which topics it
//! may publish and subscribe to, in AutobahnPython's JSON form.

use serde::{Deserialize, Serialize};

/// One RPC entry: `{"uri": …, "call": bool}`, with an optional `"prefix": true` extension
/// that makes it match every URI starting with `uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcPermission {
    /// The procedure URI (or URI prefix when `prefix` is true).
    pub uri: String,
    /// Whether the entry matches every URI that starts with `uri`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub prefix: bool,
    /// Whether calling is allowed.
    #[serde(default)]
    pub call: bool,
}

/// One PubSub entry: `{"uri": …, "prefix": bool, "pub": bool, "sub": bool}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubSubPermission {
    /// The topic URI (or URI prefix when `prefix` is true).
    pub uri: String,
    /// Whether the entry matches every URI that starts with `uri`.
    #[serde(default)]
    pub prefix: bool,
    /// Whether publishing is allowed.
    #[serde(default, rename = "pub")]
    pub publish: bool,
    /// Whether subscribing is allowed.
    #[serde(default, rename = "sub")]
    pub subscribe: bool,
}

/// What a session may do: the result of WAMP-CRA `auth`, and the router's permissions for
/// sessions that have not authenticated.
///
/// Lookup: an exact entry for the URI wins; otherwise the matching prefix entry with the
/// longest `uri`; otherwise the action is denied.
///
/// ```
/// use wamp_proto::Permissions;
/// let p = Permissions::new()
///     .allow_call("http://x/rpc#echo")
///     .allow_pubsub_prefix("http://x/event#", true, true);
/// assert!(p.may_call("http://x/rpc#echo"));
/// assert!(!p.may_call("http://x/rpc#ping"));
/// assert!(p.may_publish("http://x/event#chat"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// The RPC entries.
    #[serde(default)]
    pub rpc: Vec<RpcPermission>,
    /// The PubSub entries.
    #[serde(default)]
    pub pubsub: Vec<PubSubPermission>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Finds the entry that decides for `uri` with the project's one matching rule.
fn decide<'a, T>(entries: &'a [T], uri: &str, key: impl Fn(&T) -> (&str, bool)) -> Option<&'a T> {
    crate::uri::longest_match(entries, uri, key)
}

impl Permissions {
    /// No permissions at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything allowed: every procedure and every topic (prefix entries on the empty URI).
    pub fn all() -> Self {
        Permissions::new()
            .allow_call_prefix("")
            .allow_pubsub_prefix("", true, true)
    }

    /// Adds an entry allowing calls to exactly `uri`.
    pub fn allow_call(mut self, uri: impl Into<String>) -> Self {
        self.rpc.push(RpcPermission {
            uri: uri.into(),
            prefix: false,
            call: true,
        });
        self
    }

    /// Adds an entry allowing calls to every URI that starts with `prefix`.
    pub fn allow_call_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.rpc.push(RpcPermission {
            uri: prefix.into(),
            prefix: true,
            call: true,
        });
        self
    }

    /// Adds an entry denying calls to exactly `uri` (it beats any prefix entry).
    pub fn deny_call(mut self, uri: impl Into<String>) -> Self {
        self.rpc.push(RpcPermission {
            uri: uri.into(),
            prefix: false,
            call: false,
        });
        self
    }

    /// Adds a PubSub entry for exactly `uri`.
    pub fn allow_pubsub(mut self, uri: impl Into<String>, publish: bool, subscribe: bool) -> Self {
        self.pubsub.push(PubSubPermission {
            uri: uri.into(),
            prefix: false,
            publish,
            subscribe,
        });
        self
    }

    /// Adds a PubSub entry for every topic that starts with `prefix`.
    pub fn allow_pubsub_prefix(
        mut self,
        prefix: impl Into<String>,
        publish: bool,
        subscribe: bool,
    ) -> Self {
        self.pubsub.push(PubSubPermission {
            uri: prefix.into(),
            prefix: true,
            publish,
            subscribe,
        });
        self
    }

    /// Whether the procedure `uri` (a full URI) may be called.
    pub fn may_call(&self, uri: &str) -> bool {
        decide(&self.rpc, uri, |e| (&e.uri, e.prefix)).is_some_and(|e| e.call)
    }

    /// Whether events may be published to the topic `uri` (a full URI).
    pub fn may_publish(&self, uri: &str) -> bool {
        decide(&self.pubsub, uri, |e| (&e.uri, e.prefix)).is_some_and(|e| e.publish)
    }

    /// Whether the topic `uri` (a full URI) may be subscribed to.
    pub fn may_subscribe(&self, uri: &str) -> bool {
        decide(&self.pubsub, uri, |e| (&e.uri, e.prefix)).is_some_and(|e| e.subscribe)
    }

    /// The JSON form, as the `auth` CALLRESULT and the challenge carry it.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("permissions always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_autobahn_json() {
        let p: Permissions = serde_json::from_value(json!({
            "pubsub": [{"uri": "http://example.com/topics/", "prefix": true, "pub": true, "sub": true}],
            "rpc": [{"uri": "http://example.com/procedures/hello", "call": true}]
        }))
        .unwrap();
        assert!(p.may_call("http://example.com/procedures/hello"));
        assert!(!p.may_call("http://example.com/procedures/hello2"));
        assert!(p.may_publish("http://example.com/topics/a"));
        assert!(p.may_subscribe("http://example.com/topics/"));
        assert!(!p.may_subscribe("http://example.com/other"));
    }

    #[test]
    fn writes_autobahn_json() {
        let p = Permissions::new()
            .allow_call("http://x/a")
            .allow_pubsub("http://x/t", true, false);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"rpc":[{"uri":"http://x/a","call":true}],"pubsub":[{"uri":"http://x/t","prefix":false,"pub":true,"sub":false}]}"#
        );
        let back: Permissions = serde_json::from_value(p.to_value()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let p = Permissions::new()
            .allow_call_prefix("http://x/")
            .deny_call("http://x/secret")
            .allow_pubsub_prefix("http://x/", true, true)
            .allow_pubsub_prefix("http://x/ro/", false, true)
            .allow_pubsub("http://x/ro/open", true, true);
        assert!(p.may_call("http://x/anything"));
        assert!(!p.may_call("http://x/secret"));
        assert!(p.may_call("http://x/secret2"));
        assert!(p.may_publish("http://x/chat"));
        assert!(!p.may_publish("http://x/ro/news"));
        assert!(p.may_subscribe("http://x/ro/news"));
        assert!(p.may_publish("http://x/ro/open"));
    }

    #[test]
    fn empty_denies_everything_and_all_allows_everything() {
        let none = Permissions::new();
        assert!(!none.may_call("http://x/a"));
        assert!(!none.may_publish("http://x/a"));
        assert!(!none.may_subscribe("http://x/a"));
        let all = Permissions::all();
        assert!(all.may_call("anything"));
        assert!(all.may_publish("x"));
        assert!(all.may_subscribe(""));
    }

    #[test]
    fn missing_fields_default_to_denied() {
        let p: Permissions =
            serde_json::from_value(json!({"rpc": [{"uri": "a"}], "pubsub": [{"uri": "t"}]}))
                .unwrap();
        assert!(!p.may_call("a"));
        assert!(!p.may_publish("t"));
        let empty: Permissions = serde_json::from_value(json!({})).unwrap();
        assert_eq!(empty, Permissions::new());
    }
}
