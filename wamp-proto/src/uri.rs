//! URIs: CURIEs (resolve at the first colon, shrink by longest match), the one URI matcher
//! (exact entry, else the longest prefix), and the well-known URIs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Base of the error URIs defined by WAMP v1.
pub const ERROR_BASE: &str = "http://api.wamp.ws/error#";
/// Base of the procedure URIs defined by WAMP v1.
pub const PROCEDURE_BASE: &str = "http://api.wamp.ws/procedure#";

/// The WAMP-CRA procedure that asks for a challenge: `(authKey | null, extra | null)`.
pub const PROC_AUTHREQ: &str = "http://api.wamp.ws/procedure#authreq";
/// The WAMP-CRA procedure that answers a challenge: `(signature | null)`.
pub const PROC_AUTH: &str = "http://api.wamp.ws/procedure#auth";

/// A well-known CALLERROR: its URI and the description the spec page gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WellKnownError {
    /// The error URI.
    pub uri: &'static str,
    /// The standard error description.
    pub desc: &'static str,
}

macro_rules! well_known_errors {
    ($($(#[$doc:meta])* $name:ident = $frag:literal, $desc:literal;)*) => {
        /// The well-known CALLERRORs of `docs/PROTOCOL.md` sections 4 and 6.
        pub mod errors {
            use super::WellKnownError;
            $(
                $(#[$doc])*
                pub const $name: WellKnownError = WellKnownError {
                    uri: concat!("http://api.wamp.ws/error#", $frag),
                    desc: $desc,
                };
            )*
        }
    };
}

well_known_errors! {
    /// No procedure is registered for the resolved URI.
    NOT_FOUND = "notfound", "not found error";
    /// The session's permissions do not allow the call.
    UNAUTHORIZED = "unauthorized", "unauthorized";
    /// A handler's application error without a URI of its own.
    GENERIC = "generic", "generic error";
    /// A handler failed unexpectedly (panic, internal error).
    INTERNAL = "internal", "internal error";
    /// `auth` or `authreq` after a successful authentication.
    ALREADY_AUTHENTICATED = "already-authenticated", "already authenticated";
    /// A second `authreq` while one is pending.
    AUTHENTICATION_ALREADY_REQUESTED = "authentication-already-requested",
        "authentication request already issued - authentication pending";
    /// `authreq` with a null key while anonymous authentication is disabled.
    ANONYMOUS_AUTH_FORBIDDEN = "anonymous-auth-forbidden", "authentication as anonymous is forbidden";
    /// `authreq` for a key the server does not know.
    NO_SUCH_AUTHKEY = "no-such-authkey", "authentication key does not exist";
    /// `auth` without a pending `authreq`.
    NO_AUTHENTICATION_REQUESTED = "no-authentication-requested", "no authentication previously requested";
    /// `auth` with a signature that does not match the challenge.
    INVALID_SIGNATURE = "invalid-signature", "signature for authentication request is invalid";
    /// An argument of `authreq` or `auth` has the wrong type (the description says which).
    INVALID_ARGUMENT = "invalid-argument", "invalid argument";
    /// The application's permission lookup failed during `authreq`.
    AUTH_PERMISSIONS_ERROR = "auth-permissions-error", "authentication permissions error";
}

/// Splits a CURIE candidate at its **first** `:` into `(prefix, rest)`, when the part before
/// it is not empty. This is the rule [`Prefixes::resolve`] applies: the string is a CURIE if
/// that prefix is registered.
///
/// ```
/// use wamp_proto::uri::split_curie;
/// assert_eq!(split_curie("api:a:b"), Some(("api", "a:b")));
/// assert_eq!(split_curie(":x"), None);
/// assert_eq!(split_curie("plain"), None);
/// ```
pub fn split_curie(s: &str) -> Option<(&str, &str)> {
    match s.split_once(':') {
        Some((prefix, rest)) if !prefix.is_empty() => Some((prefix, rest)),
        _ => None,
    }
}

/// URI schemes that have no `//` authority but read as full URIs, never as CURIEs.
const AUTHORITY_LESS_SCHEMES: [&str; 10] = [
    "http", "https", "ws", "wss", "urn", "tag", "mailto", "data", "file", "uuid",
];

/// The prefix of a string that reads as a CURIE rather than a full URI, whether or not the
/// prefix is registered: [`split_curie`], except for URIs with an authority (`scheme://…`) and
/// URIs of the common schemes without one (`urn:`, `tag:`, `mailto:`, `data:`, `uuid:`, and
/// `http`, `https`, `ws`, `wss`, `file`).
///
/// A client uses it to tell a CURIE with an unknown prefix (a mistake to report) from a full
/// URI (used as it is).
///
/// ```
/// use wamp_proto::uri::curie_prefix;
/// assert_eq!(curie_prefix("event:chat"), Some("event"));
/// assert_eq!(curie_prefix("http://wamptutorial/event#chat"), None);
/// assert_eq!(curie_prefix("urn:example:chat"), None);
/// assert_eq!(curie_prefix("chat"), None);
/// ```
pub fn curie_prefix(s: &str) -> Option<&str> {
    let (prefix, rest) = split_curie(s)?;
    if rest.starts_with("//")
        || AUTHORITY_LESS_SCHEMES
            .iter()
            .any(|scheme| prefix.eq_ignore_ascii_case(scheme))
    {
        return None;
    }
    Some(prefix)
}

/// Picks the entry that decides for `uri`: an exact (non-prefix) entry equal to `uri` wins;
/// otherwise the prefix entry with the longest URI that starts `uri`; otherwise none. `key`
/// gives an entry's URI and whether it is a prefix entry.
///
/// This is the one matching rule of the project: permissions (spec section 6.5) and topic
/// policies (section 5) both decide with it.
pub fn longest_match<'a, T: 'a>(
    entries: impl IntoIterator<Item = &'a T>,
    uri: &str,
    key: impl Fn(&T) -> (&str, bool),
) -> Option<&'a T> {
    let mut best: Option<(&T, usize)> = None;
    for entry in entries {
        let (entry_uri, prefix) = key(entry);
        if !prefix {
            if entry_uri == uri {
                return Some(entry);
            }
        } else if uri.starts_with(entry_uri) && best.is_none_or(|(_, len)| entry_uri.len() > len) {
            best = Some((entry, entry_uri.len()));
        }
    }
    best.map(|(entry, _)| entry)
}

/// A table of values keyed by URI, each entry exact or a prefix, looked up with
/// [`longest_match`]'s rule; exact entries are found by hashing, so a table of many exact URIs
/// stays fast.
///
/// ```
/// use wamp_proto::uri::UriTable;
/// let mut t = UriTable::new();
/// t.insert("http://x/", true, "wide");
/// t.insert("http://x/private/", true, "narrow");
/// t.insert("http://x/private/open", false, "exact");
/// assert_eq!(t.find("http://x/a"), Some(&"wide"));
/// assert_eq!(t.find("http://x/private/a"), Some(&"narrow"));
/// assert_eq!(t.find("http://x/private/open"), Some(&"exact"));
/// assert_eq!(t.find("http://y/"), None);
/// ```
#[derive(Debug, Clone)]
pub struct UriTable<T> {
    exact: HashMap<String, T>,
    prefixes: Vec<(String, T)>,
}

impl<T> Default for UriTable<T> {
    fn default() -> Self {
        UriTable {
            exact: HashMap::new(),
            prefixes: Vec::new(),
        }
    }
}

impl<T> UriTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry (exact, or for every URI starting with `uri` when `prefix`); returns the
    /// value it replaced.
    pub fn insert(&mut self, uri: impl Into<String>, prefix: bool, value: T) -> Option<T> {
        let uri = uri.into();
        if !prefix {
            return self.exact.insert(uri, value);
        }
        match self.prefixes.iter_mut().find(|(p, _)| *p == uri) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.prefixes.push((uri, value));
                None
            }
        }
    }

    /// Removes an entry; returns its value.
    pub fn remove(&mut self, uri: &str, prefix: bool) -> Option<T> {
        if !prefix {
            return self.exact.remove(uri);
        }
        let i = self.prefixes.iter().position(|(p, _)| p == uri)?;
        Some(self.prefixes.swap_remove(i).1)
    }

    /// The value that decides for `uri`: the exact entry, else the longest matching prefix.
    pub fn find(&self, uri: &str) -> Option<&T> {
        if let Some(value) = self.exact.get(uri) {
            return Some(value);
        }
        longest_match(&self.prefixes, uri, |(p, _)| (p.as_str(), true)).map(|(_, v)| v)
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// How many entries the table has.
    pub fn len(&self) -> usize {
        self.exact.len() + self.prefixes.len()
    }
}

/// A session's CURIE prefixes, layered over a router's shared default prefixes.
///
/// A string is a CURIE when the part before its **first** `:` is a non-empty registered
/// prefix; it then resolves to that prefix's URI followed by everything after that colon.
/// Anything else is returned unchanged. The session's own prefixes (PREFIX messages) hide the
/// defaults of the same name.
///
/// ```
/// use wamp_proto::uri::Prefixes;
/// let mut p = Prefixes::new();
/// p.insert("api", "http://x/");
/// assert_eq!(p.resolve("api:a:b"), "http://x/a:b");
/// assert_eq!(p.resolve("http://y/z"), "http://y/z");
/// assert_eq!(p.shrink("http://x/q"), "api:q");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Prefixes {
    defaults: Arc<HashMap<String, String>>,
    own: HashMap<String, String>,
}

impl Prefixes {
    /// An empty map, with no defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A map that starts with these shared defaults (cloning the `Arc` is cheap, so every
    /// session of a router can start from the same defaults).
    pub fn with_defaults(defaults: Arc<HashMap<String, String>>) -> Self {
        Prefixes {
            defaults,
            own: HashMap::new(),
        }
    }

    /// Defines (or redefines) a prefix, as a PREFIX message does.
    pub fn insert(&mut self, prefix: impl Into<String>, uri: impl Into<String>) {
        self.own.insert(prefix.into(), uri.into());
    }

    /// The URI a prefix stands for, the session's own first, then the defaults.
    pub fn get(&self, prefix: &str) -> Option<&str> {
        self.own
            .get(prefix)
            .or_else(|| self.defaults.get(prefix))
            .map(String::as_str)
    }

    /// The session's own prefixes (not the defaults), e.g. to send them again after a
    /// reconnect.
    pub fn own(&self) -> impl Iterator<Item = (&str, &str)> {
        self.own.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Resolves a CURIE to a full URI; anything that is not a CURIE comes back unchanged.
    pub fn resolve<'a>(&self, curie_or_uri: &'a str) -> Cow<'a, str> {
        if let Some((prefix, rest)) = split_curie(curie_or_uri) {
            if let Some(uri) = self.get(prefix) {
                let mut out = String::with_capacity(uri.len() + rest.len());
                out.push_str(uri);
                out.push_str(rest);
                return Cow::Owned(out);
            }
        }
        Cow::Borrowed(curie_or_uri)
    }

    /// Shrinks a full URI to a CURIE with the longest registered URI that starts it; a URI
    /// that no prefix covers comes back unchanged.
    pub fn shrink<'a>(&self, uri: &'a str) -> Cow<'a, str> {
        let mut best: Option<(&str, &str)> = None;
        let own = self.own.iter();
        let defaults = self
            .defaults
            .iter()
            .filter(|(k, _)| !self.own.contains_key(*k));
        for (prefix, base) in own.chain(defaults) {
            if !base.is_empty()
                && uri.starts_with(base.as_str())
                && best.is_none_or(|(_, b)| base.len() > b.len())
            {
                best = Some((prefix, base));
            }
        }
        match best {
            Some((prefix, base)) => Cow::Owned(format!("{prefix}:{}", &uri[base.len()..])),
            None => Cow::Borrowed(uri),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tutorial_defaults() -> Arc<HashMap<String, String>> {
        Arc::new(HashMap::from([
            ("rpc".to_string(), "http://wamptutorial/rpc#".to_string()),
            (
                "event".to_string(),
                "http://wamptutorial/event#".to_string(),
            ),
        ]))
    }

    #[test]
    fn resolves_at_the_first_colon() {
        let mut p = Prefixes::new();
        p.insert("api", "http://x/");
        assert_eq!(p.resolve("api:a:b"), "http://x/a:b");
        assert_eq!(p.resolve("api:"), "http://x/");
        assert_eq!(p.resolve("api"), "api");
    }

    #[test]
    fn unknown_prefixes_and_full_uris_pass_unchanged() {
        let mut p = Prefixes::new();
        p.insert("api", "http://x/");
        assert_eq!(p.resolve("foo:bar"), "foo:bar");
        assert_eq!(
            p.resolve("http://example.com/a#b"),
            "http://example.com/a#b"
        );
        assert_eq!(p.resolve(":empty"), ":empty");
        assert!(matches!(p.resolve("http://e/x"), Cow::Borrowed(_)));
    }

    #[test]
    fn redefinition_overwrites_and_own_hides_defaults() {
        let mut p = Prefixes::with_defaults(tutorial_defaults());
        assert_eq!(p.resolve("rpc:echo"), "http://wamptutorial/rpc#echo");
        assert_eq!(p.resolve("event:chat"), "http://wamptutorial/event#chat");
        p.insert("rpc", "http://other/");
        assert_eq!(p.resolve("rpc:echo"), "http://other/echo");
        p.insert("rpc", "http://third/");
        assert_eq!(p.resolve("rpc:echo"), "http://third/echo");
        assert_eq!(p.own().count(), 1);
        // Another session with the same defaults is unaffected.
        let q = Prefixes::with_defaults(tutorial_defaults());
        assert_eq!(q.resolve("rpc:echo"), "http://wamptutorial/rpc#echo");
    }

    #[test]
    fn shrink_takes_the_longest_match() {
        let mut p = Prefixes::with_defaults(tutorial_defaults());
        p.insert("a", "http://wamptutorial/");
        assert_eq!(p.shrink("http://wamptutorial/rpc#echo"), "rpc:echo");
        assert_eq!(p.shrink("http://wamptutorial/x"), "a:x");
        assert_eq!(p.shrink("http://elsewhere/x"), "http://elsewhere/x");
        // A default hidden by an own prefix of the same name is not used.
        p.insert("rpc", "http://other/");
        assert_eq!(p.shrink("http://wamptutorial/rpc#echo"), "a:rpc#echo");
        assert_eq!(p.resolve(&p.shrink("http://other/z")), "http://other/z");
    }

    #[test]
    fn curies_are_told_from_full_uris() {
        assert_eq!(curie_prefix("event:chat"), Some("event"));
        assert_eq!(curie_prefix("api:a:b"), Some("api"));
        assert_eq!(curie_prefix("x:"), Some("x"));
        for uri in [
            "http://wamptutorial/event#chat",
            "HTTPS://x/y",
            "ws://h/t",
            "custom://h/t",
            "urn:x:y",
            "tag:example.com,2024:t",
            "plain",
            ":empty",
            "",
        ] {
            assert_eq!(curie_prefix(uri), None, "{uri}");
        }
        assert_eq!(split_curie("http://x"), Some(("http", "//x")));
        assert_eq!(split_curie("a:"), Some(("a", "")));
    }

    #[test]
    fn uri_table_exact_wins_then_longest_prefix() {
        let mut t = UriTable::new();
        assert!(t.is_empty());
        t.insert("", true, 0);
        t.insert("http://x/private", true, 1);
        t.insert("http://x/private/open", false, 2);
        t.insert("http://x/", true, 3);
        assert_eq!(t.len(), 4);
        assert_eq!(t.find("http://y/a"), Some(&0));
        assert_eq!(t.find("http://x/private/a"), Some(&1));
        assert_eq!(t.find("http://x/private/open"), Some(&2));
        assert_eq!(t.find("http://x/private/open2"), Some(&1));
        assert_eq!(t.find("http://x/pub"), Some(&3));
        // An exact entry beats a prefix entry of the same URI.
        t.insert("http://x/pub", false, 4);
        assert_eq!(t.find("http://x/pub"), Some(&4));
        assert_eq!(t.insert("http://x/", true, 5), Some(3));
        assert_eq!(t.find("http://x/q"), Some(&5));
        assert_eq!(t.remove("", true), Some(0));
        assert_eq!(t.remove("", true), None);
        assert_eq!(t.remove("http://x/pub", true), None);
        assert_eq!(t.find("http://y/a"), None);
    }

    #[test]
    fn longest_match_over_a_list() {
        let entries = [
            ("http://x/", true),
            ("http://x/a/", true),
            ("http://x/a/b", false),
        ];
        let pick = |uri| longest_match(&entries, uri, |e| (e.0, e.1)).map(|e| e.0);
        assert_eq!(pick("http://x/a/c"), Some("http://x/a/"));
        assert_eq!(pick("http://x/a/b"), Some("http://x/a/b"));
        assert_eq!(pick("http://x/z"), Some("http://x/"));
        assert_eq!(pick("http://y"), None);
        // An exact entry matches only its own URI.
        assert_eq!(
            longest_match(&[("http://x/a", false)], "http://x/ab", |e| (e.0, e.1)),
            None
        );
    }

    #[test]
    fn error_constants() {
        assert_eq!(errors::NOT_FOUND.uri, "http://api.wamp.ws/error#notfound");
        assert_eq!(errors::INTERNAL.desc, "internal error");
        assert_eq!(
            errors::AUTHENTICATION_ALREADY_REQUESTED.desc,
            "authentication request already issued - authentication pending"
        );
        assert!(errors::INVALID_SIGNATURE.uri.starts_with(ERROR_BASE));
        assert!(PROC_AUTH.starts_with(PROCEDURE_BASE));
    }
}
