//! CURIEs (resolve at the first colon, shrink by longest match) and the well-known URIs.

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
        if let Some(i) = curie_or_uri.find(':') {
            if i > 0 {
                if let Some(uri) = self.get(&curie_or_uri[..i]) {
                    let rest = &curie_or_uri[i + 1..];
                    let mut out = String::with_capacity(uri.len() + rest.len());
                    out.push_str(uri);
                    out.push_str(rest);
                    return Cow::Owned(out);
                }
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
