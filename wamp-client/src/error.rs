//! The one error type of `wamp-client`: everything an operation can fail with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_tungstenite::tungstenite;

/// Everything a [`Client`](crate::Client) operation can fail with.
///
/// The type is `Clone` so that one failure (a lost connection) can be handed to every call
/// that was waiting on it; causes from other crates (serde_json, the WebSocket library,
/// [`wamp_proto`]) are kept, behind an `Arc` where they are not `Clone`, and reachable with
/// [`std::error::Error::source`]. A CALLERROR from the server is [`Error::CallError`], carrying the
/// error URI, description and details exactly as received; a CALLERROR that refuses
/// authentication is [`Error::AuthRefused`] instead, with the same three fields.
///
/// Connecting can fail in ways a program may want to tell apart:
///
/// | variant | what happened |
/// |---|---|
/// | [`Error::InvalidUrl`] | the URL is not one the client can use (nothing was tried) |
/// | [`Error::Connect`] | no TCP connection or no HTTP answer (unreachable, reset, not HTTP) |
/// | [`Error::HandshakeRefused`] | the server answered the WebSocket handshake with an HTTP error status |
/// | [`Error::Tls`] | the TLS handshake of a `wss://` URL failed, e.g. the server's certificate was refused ([`TlsFailure`] says why and what to do) |
/// | [`Error::TlsSetup`] | the TLS settings cannot be used, e.g. an unreadable CA file (nothing was tried) |
/// | [`Error::Subprotocol`] | the server accepted the WebSocket but not the `wamp` subprotocol |
/// | [`Error::Handshake`] | the server's first message was not a WAMP v1 WELCOME |
/// | [`Error::AuthRefused`] / [`Error::Auth`] | WAMP-CRA ([`ConnectOptions::auth`](crate::ConnectOptions::auth)) was refused by the server / failed on the client side |
/// | [`Error::ConnectTimeout`] | all of that took longer than the connect timeout |
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL given to `connect` is not a `ws://` or `wss://` URL (`wss://` needs the `tls`
    /// feature, on by default).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection or the WebSocket handshake failed before the server gave an HTTP
    /// answer: connection refused or reset, host not found, an answer that is not HTTP. (An
    /// HTTP error status is [`Error::HandshakeRefused`].)
    #[error("could not connect to {url}: {reason}")]
    Connect {
        /// The URL the client tried.
        url: String,
        /// Why it failed, as the transport said.
        reason: String,
    },
    /// The TLS handshake of a `wss://` connection failed: the server's certificate was
    /// refused, or the handshake itself failed. Trying again does not help until something
    /// changes; [`TlsFailure`] says what.
    #[error("TLS with {url} failed: {failure}")]
    Tls {
        /// The URL the client tried.
        url: String,
        /// What went wrong, and what to do about it.
        failure: TlsFailure,
        /// The TLS library's error.
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The TLS settings cannot be used: a CA file that cannot be read or holds no
    /// certificate, a certificate that cannot be a trust anchor. Nothing was tried.
    #[error("TLS setup failed: {0}")]
    TlsSetup(String),
    /// The server answered the WebSocket handshake with an HTTP status other than
    /// `101 Switching Protocols`: it is there, but refuses this client, e.g. `403` for a
    /// disallowed origin, `404` for a wrong path, `503` when it is full. The body usually says
    /// why.
    #[error("{url} refused the WebSocket handshake: {}", describe_refusal(*status, body))]
    HandshakeRefused {
        /// The URL the client tried.
        url: String,
        /// The HTTP status code, e.g. `403`.
        status: u16,
        /// The response body as text (invalid UTF-8 replaced, surrounding whitespace
        /// trimmed), as far as it arrived with the response headers; empty when the server
        /// sent none.
        body: String,
    },
    /// Connecting (TCP, WebSocket handshake, WELCOME and, if configured, authentication) took
    /// longer than [`ConnectOptions::connect_timeout`](crate::ConnectOptions::connect_timeout).
    #[error("connecting took longer than {0:?}")]
    ConnectTimeout(Duration),
    /// The server did not select the `wamp` WebSocket subprotocol. Servers that do not
    /// negotiate subprotocols can be used with
    /// [`ConnectOptions::skip_subprotocol_check`](crate::ConnectOptions::skip_subprotocol_check).
    #[error(
        "the server did not select the `wamp` WebSocket subprotocol ({0}); \
         use ConnectOptions::skip_subprotocol_check(true) for servers that do not negotiate it"
    )]
    Subprotocol(String),
    /// The server's first message was not a WAMP v1 WELCOME, or announced another protocol
    /// version.
    #[error("the server is not a WAMP v1 server: {0}")]
    Handshake(String),
    /// The server answered a call with CALLERROR.
    #[error("call failed: {uri}: {desc}")]
    CallError {
        /// The error URI, e.g. `http://api.wamp.ws/error#notfound`.
        uri: String,
        /// The error description, e.g. `not found error` (may be empty).
        desc: String,
        /// Application-defined error details, when the server sent some.
        details: Option<Value>,
    },
    /// No answer arrived within the call timeout. The call may still run on the server; a
    /// late answer is ignored.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The client is between connections (the link dropped and the reconnect policy is
    /// trying again). Calls and publishes fail fast with this error instead of waiting;
    /// subscriptions and prefixes are kept and sent again once connected.
    #[error("not connected (reconnecting)")]
    NotConnected,
    /// The connection dropped while this operation was waiting for it (for a call: the call
    /// was sent, but no answer came before the link went down; whether it ran is unknown).
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The client was closed, by [`Client::close`](crate::Client::close), because the
    /// reconnect policy gave up, or because re-authentication after a reconnect failed. The
    /// text says which.
    #[error("client closed: {0}")]
    Closed(String),
    /// The server broke the WAMP v1 rules for a client with a frame that is well-formed
    /// (a binary frame, a second WELCOME, a message only clients send). The client closes
    /// that connection with code 1002 (1003 for a binary frame) and reconnects per its
    /// policy.
    #[error("protocol error from the server: {0}")]
    Protocol(String),
    /// The server sent a text frame that is not a well-formed WAMP v1 message (invalid JSON,
    /// wrong shape); the source is [`wamp_proto`]'s description. Handled like
    /// [`Error::Protocol`].
    #[error("protocol error from the server: {0}")]
    InvalidMessage(#[from] wamp_proto::Error),
    /// The WebSocket failed under an open connection (reset, invalid frame, a write that
    /// failed). The source is the WebSocket library's error.
    #[error("WebSocket error: {0}")]
    WebSocket(#[source] Arc<tungstenite::Error>),
    /// Call arguments or a published event could not be turned into JSON, or call arguments
    /// did not serialize to a JSON array.
    #[error("could not encode: {0}")]
    Encode(#[source] Arc<serde_json::Error>),
    /// A result or event could not be decoded into the requested type.
    #[error("could not decode: {0}")]
    Decode(#[source] Arc<serde_json::Error>),
    /// WAMP-CRA failed on the client side: the challenge could not be read or signed, or the
    /// `auth` result was not a permissions object. (A refusal by the server is
    /// [`Error::AuthRefused`].)
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The server refused WAMP-CRA authentication: it answered `authreq` or `auth` with
    /// CALLERROR, e.g. `http://api.wamp.ws/error#invalid-signature` for a wrong secret,
    /// `…#no-such-authkey` for an unknown key, or a "no such procedure" error from a server
    /// without WAMP-CRA. Returned by [`Client::authenticate`](crate::Client::authenticate),
    /// and by `connect` with [`ConnectOptions::auth`](crate::ConnectOptions::auth); a
    /// refusal while re-authenticating after a reconnect closes the client
    /// ([`Error::Closed`] then says so).
    #[error("authentication refused: {uri}: {desc}")]
    AuthRefused {
        /// The CALLERROR's error URI, e.g. `http://api.wamp.ws/error#invalid-signature`.
        uri: String,
        /// The CALLERROR's description (may be empty).
        desc: String,
        /// The CALLERROR's details, when the server sent some.
        details: Option<Value>,
    },
    /// [`Client::subscribe`](crate::Client::subscribe) was given a CURIE whose prefix the
    /// client does not know. The server may know it (a router's default prefixes), but
    /// EVENTs carry full URIs, so the client could never match them to the subscription.
    /// Declare the prefix with [`Client::prefix`](crate::Client::prefix) or
    /// [`ConnectOptions::prefix`](crate::ConnectOptions::prefix) first, or subscribe with
    /// the full URI.
    #[error(
        "cannot subscribe to {topic:?}: the client does not know the prefix {prefix:?} (events \
         carry full URIs, so a prefix only the server knows cannot be matched); declare it \
         with Client::prefix or ConnectOptions::prefix, or subscribe with the full URI"
    )]
    UnknownPrefix {
        /// The topic as given.
        topic: String,
        /// Its prefix, the part before the first `:`.
        prefix: String,
    },
}

impl Error {
    /// The CALLERROR URI, when this is a [`Error::CallError`] or an [`Error::AuthRefused`]
    /// (whose URI is that of the CALLERROR that refused authentication).
    pub fn call_error_uri(&self) -> Option<&str> {
        match self {
            Error::CallError { uri, .. } | Error::AuthRefused { uri, .. } => Some(uri),
            _ => None,
        }
    }

    /// True when the operation failed because of the connection (lost, not connected,
    /// closed, timed out, or a handshake refused with a `5xx` or `429` status, which says
    /// "not now") rather than because of what it asked for: such an operation may succeed
    /// if tried again later.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::HandshakeRefused { status, .. } => *status >= 500 || *status == 429,
            _ => matches!(
                self,
                Error::Connect { .. }
                    | Error::ConnectTimeout(_)
                    | Error::NotConnected
                    | Error::ConnectionLost(_)
                    | Error::WebSocket(_)
                    | Error::Closed(_)
                    | Error::Timeout(_)
            ),
        }
    }

    /// Turns a CALLERROR of `authreq` or `auth` into [`Error::AuthRefused`]; other errors
    /// pass unchanged.
    pub(crate) fn into_auth_refusal(self) -> Error {
        match self {
            Error::CallError { uri, desc, details } => Error::AuthRefused { uri, desc, details },
            other => other,
        }
    }
}

/// `403 Forbidden: why`: the status with its standard reason phrase, then the body on one
/// line and cut at 300 characters (an HTML error page would not fit in a message).
fn describe_refusal(status: u16, body: &str) -> String {
    let reason = tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    let mut text = format!("HTTP {status}");
    if let Some(reason) = reason {
        text.push(' ');
        text.push_str(reason);
    }
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if !body.is_empty() {
        text.push_str(": ");
        match body.char_indices().nth(300) {
            Some((cut, _)) => {
                text.push_str(&body[..cut]);
                text.push('…');
            }
            None => text.push_str(&body),
        }
    }
    text
}

impl Error {
    /// [`Error::Encode`] from serde_json's error.
    pub(crate) fn encode(e: serde_json::Error) -> Error {
        Error::Encode(Arc::new(e))
    }

    /// [`Error::Decode`] from serde_json's error.
    pub(crate) fn decode(e: serde_json::Error) -> Error {
        Error::Decode(Arc::new(e))
    }

    /// A WebSocket failure under an open connection: the peer closing is
    /// [`Error::ConnectionLost`], anything else [`Error::WebSocket`].
    pub(crate) fn websocket(e: tungstenite::Error) -> Error {
        match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                Error::ConnectionLost("the connection closed".into())
            }
            e => Error::WebSocket(Arc::new(e)),
        }
    }

    /// The text a lost connection is reported with: the reason itself for
    /// [`Error::ConnectionLost`] (no "connection lost: connection lost: …"), else the
    /// error's message.
    pub(crate) fn reason(&self) -> String {
        match self {
            Error::ConnectionLost(why) => why.clone(),
            other => other.to_string(),
        }
    }
}

/// Why the TLS handshake of a `wss://` connection failed, in terms a person can act on. The
/// `Display` text says what happened, then what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate is not issued by an authority the client trusts: a private CA, or a
    /// self-signed certificate.
    UnknownIssuer,
    /// The certificate does not name the host in the URL.
    NameMismatch {
        /// The host of the URL (a name or an IP address).
        host: String,
        /// The names the certificate does carry, when the TLS library said.
        presented: Vec<String>,
    },
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The server presents a CA certificate (`basicConstraints CA:TRUE`) as its own, which
    /// TLS forbids; typical of a self-signed certificate made with plain `openssl req -x509`.
    CaUsedAsEndEntity,
    /// The URL's host cannot be a TLS server name.
    InvalidServerName(String),
    /// Another problem with the certificate (the TLS library's description).
    Certificate(String),
    /// The handshake failed for another reason, e.g. no protocol version or cipher in
    /// common, or an alert from the server (the TLS library's description).
    Handshake(String),
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TRUST: &str = "trust the CA that issued it (or the self-signed certificate \
                             itself) with ConnectOptions::ca_file / wamp-cli --ca-file FILE";
        match self {
            TlsFailure::UnknownIssuer => write!(
                f,
                "the server's certificate is not issued by an authority this client trusts \
                 (unknown issuer); {TRUST}"
            ),
            TlsFailure::NameMismatch { host, presented } => {
                write!(f, "the server's certificate is not valid for {host:?}")?;
                if !presented.is_empty() {
                    write!(f, " (it names {})", presented.join(", "))?;
                }
                write!(
                    f,
                    "; connect with a name the certificate carries, or give the server a \
                     certificate for {host:?}"
                )
            }
            TlsFailure::Expired => f.write_str(
                "the server's certificate has expired; renew it on the server (or check this \
                 machine's clock)",
            ),
            TlsFailure::NotYetValid => f.write_str(
                "the server's certificate is not valid yet; check this machine's clock (or the \
                 certificate's start date)",
            ),
            TlsFailure::CaUsedAsEndEntity => f.write_str(
                "the server presents a CA certificate (basicConstraints CA:TRUE) as its own, \
                 which TLS forbids (plain `openssl req -x509` makes such certificates); make \
                 the server's certificate with CA:FALSE (openssl: -addext \
                 basicConstraints=critical,CA:FALSE), or sign it with a separate CA and trust \
                 that CA",
            ),
            TlsFailure::InvalidServerName(host) => write!(
                f,
                "{host:?} cannot be a TLS server name; use a host name or an IP address"
            ),
            TlsFailure::Certificate(why) => {
                write!(f, "the server's certificate was refused: {why}")
            }
            TlsFailure::Handshake(why) => write!(f, "the TLS handshake failed: {why}"),
        }
    }
}

/// A specialized `Result` for client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_error_displays_uri_and_desc() {
        let e = Error::CallError {
            uri: "http://api.wamp.ws/error#notfound".into(),
            desc: "not found error".into(),
            details: None,
        };
        assert_eq!(
            e.to_string(),
            "call failed: http://api.wamp.ws/error#notfound: not found error"
        );
        assert_eq!(
            e.call_error_uri(),
            Some("http://api.wamp.ws/error#notfound")
        );
        assert!(!e.is_connection_error());
        assert!(Error::ConnectionLost("x".into()).is_connection_error());
    }

    #[test]
    fn handshake_refusals_show_status_and_body_on_one_line() {
        let e = Error::HandshakeRefused {
            url: "ws://h/ws".into(),
            status: 403,
            body: "origin http://evil is not\nallowed".into(),
        };
        assert_eq!(
            e.to_string(),
            "ws://h/ws refused the WebSocket handshake: HTTP 403 Forbidden: origin http://evil \
             is not allowed"
        );
        assert!(!e.is_connection_error());
        let e = Error::HandshakeRefused {
            url: "ws://h/ws".into(),
            status: 599,
            body: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "ws://h/ws refused the WebSocket handshake: HTTP 599"
        );
        assert!(e.is_connection_error());
        let long = "é".repeat(400);
        let e = Error::HandshakeRefused {
            url: "u".into(),
            status: 503,
            body: long,
        };
        assert!(
            e.to_string().ends_with(&format!("{}…", "é".repeat(300))),
            "{e}"
        );
    }

    #[test]
    fn auth_refusals_keep_the_callerror() {
        let e = Error::CallError {
            uri: "http://api.wamp.ws/error#invalid-signature".into(),
            desc: "signature for authentication request is invalid".into(),
            details: None,
        }
        .into_auth_refusal();
        assert!(matches!(e, Error::AuthRefused { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "authentication refused: http://api.wamp.ws/error#invalid-signature: signature \
             for authentication request is invalid"
        );
        assert_eq!(
            e.call_error_uri(),
            Some("http://api.wamp.ws/error#invalid-signature")
        );
        assert!(matches!(
            Error::Timeout(Duration::from_secs(1)).into_auth_refusal(),
            Error::Timeout(_)
        ));
    }

    #[test]
    fn proto_errors_become_protocol_errors() {
        let e: Error = wamp_proto::Message::from_json("[9]").unwrap_err().into();
        assert!(matches!(e, Error::InvalidMessage(_)), "{e:?}");
        assert!(e
            .to_string()
            .starts_with("protocol error from the server: unknown message type"));
        let source = std::error::Error::source(&e).expect("the proto error is the source");
        assert!(source.to_string().contains("unknown message type"));
    }

    #[test]
    fn tls_failures_say_what_to_do() {
        let e = Error::Tls {
            url: "wss://h/ws".into(),
            failure: TlsFailure::UnknownIssuer,
            source: None,
        };
        assert!(e.to_string().starts_with("TLS with wss://h/ws failed: "));
        assert!(e.to_string().contains("--ca-file"), "{e}");
        assert!(!e.is_connection_error(), "retrying does not help");
        let name = TlsFailure::NameMismatch {
            host: "other".into(),
            presented: vec!["DnsName(\"localhost\")".into()],
        };
        assert!(
            name.to_string().contains("not valid for \"other\""),
            "{name}"
        );
        assert!(name.to_string().contains("localhost"), "{name}");
        for f in [
            TlsFailure::Expired,
            TlsFailure::NotYetValid,
            TlsFailure::CaUsedAsEndEntity,
        ] {
            let text = f.to_string();
            assert!(text.contains("; "), "what happened; what to do: {text}");
            assert!(!text.contains('\n'), "{text}");
        }
        assert!(TlsFailure::CaUsedAsEndEntity
            .to_string()
            .contains("CA:FALSE"));
    }

    #[test]
    fn foreign_errors_are_kept_as_sources() {
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let e = Error::decode(json);
        assert!(std::error::Error::source(&e).is_some());
        let copy = e.clone();
        assert_eq!(copy.to_string(), e.to_string());
        let ws = Error::websocket(tungstenite::Error::Io(std::io::Error::other("reset")));
        assert!(matches!(ws, Error::WebSocket(_)));
        assert_eq!(ws.to_string(), "WebSocket error: IO error: reset");
        assert!(std::error::Error::source(&ws).is_some());
        let closed = Error::websocket(tungstenite::Error::ConnectionClosed);
        assert_eq!(closed.reason(), "the connection closed");
        assert!(closed.is_connection_error());
    }
}
