//! The one error type of `wamp-client`: everything an operation can fail with.

use std::time::Duration;

use serde_json::Value;

/// Everything a [`Client`](crate::Client) operation can fail with.
///
/// The type is `Clone` so that one failure (a lost connection) can be handed to every call
/// that was waiting on it. A CALLERROR from the server is [`Error::CallError`], carrying the
/// error URI, description and details exactly as received.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL given to `connect` is not a `ws://` URL (`wss://` needs a TLS-enabled build of
    /// tokio-tungstenite, which this crate does not enable).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection or the WebSocket handshake failed (refused, reset, not a WebSocket
    /// server, HTTP error status).
    #[error("could not connect to {url}: {reason}")]
    Connect {
        /// The URL the client tried.
        url: String,
        /// Why it failed, as the transport said.
        reason: String,
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
    /// The server sent a frame that is not a well-formed WAMP v1 message for a client
    /// (invalid JSON, wrong shape, a client-to-server message type, a binary frame). The
    /// client closes that connection with code 1002 and reconnects per its policy.
    #[error("protocol error from the server: {0}")]
    Protocol(String),
    /// Call arguments or a published event could not be turned into JSON, or call arguments
    /// did not serialize to a JSON array.
    #[error("could not encode: {0}")]
    Encode(String),
    /// A result or event could not be decoded into the requested type.
    #[error("could not decode: {0}")]
    Decode(String),
    /// WAMP-CRA failed on the client side: the challenge could not be read or signed, or the
    /// `auth` result was not a permissions object. (A refusal by the server is a
    /// [`Error::CallError`] with one of the `http://api.wamp.ws/error#…` URIs.)
    #[error("authentication failed: {0}")]
    Auth(String),
}

impl Error {
    /// The CALLERROR URI, when this is a [`Error::CallError`].
    pub fn call_error_uri(&self) -> Option<&str> {
        match self {
            Error::CallError { uri, .. } => Some(uri),
            _ => None,
        }
    }

    /// True when the operation failed because of the connection (lost, not connected,
    /// closed, timed out) rather than because of what it asked for: such an operation may
    /// succeed if tried again later.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectTimeout(_)
                | Error::NotConnected
                | Error::ConnectionLost(_)
                | Error::Closed(_)
                | Error::Timeout(_)
        )
    }
}

impl From<wamp_proto::Error> for Error {
    fn from(e: wamp_proto::Error) -> Self {
        Error::Protocol(e.to_string())
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
    fn proto_errors_become_protocol_errors() {
        let e: Error = wamp_proto::Message::from_json("[9]").unwrap_err().into();
        assert!(matches!(e, Error::Protocol(ref s) if s.contains("unknown message type")));
    }
}
