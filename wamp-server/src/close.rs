//! The WebSocket close codes this server uses, and when; [`SessionError`] pairs each reason to
//! close a session with its code.

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The server is shutting down (after in-flight calls have answered), when
/// [`crate::Options::shutdown_close`] asks for a close handshake.
pub const GOING_AWAY: u16 = 1001;
/// The client sent something that is not a WAMP v1 client message: invalid JSON, not an
/// array, an unknown type id, a wrong shape, or a server-to-client type; or it broke the
/// WebSocket framing rules (RFC 6455 section 7.4.1). The reason says what.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The client sent a binary frame; WAMP v1 is JSON in text frames.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A text message or close reason that is not valid UTF-8.
pub const INVALID_DATA: u16 = 1007;
/// "Policy violation": the session did not keep up (its outgoing queue passed
/// [`crate::Options::outbox_capacity`] frames or [`crate::Options::outbox_max_bytes`]), or
/// it passed a per-session limit ([`crate::Options::max_prefixes`],
/// [`crate::Options::max_subscriptions`], [`crate::Options::max_uri_length`]).
pub const POLICY_VIOLATION: u16 = 1008;
/// The session did not keep up (the same code as [`POLICY_VIOLATION`]).
pub const SLOW_CONSUMER: u16 = POLICY_VIOLATION;
/// A message or frame was larger than [`crate::Options::max_message_size`].
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The session did not authenticate within [`crate::AuthConfig::timeout`].
pub const AUTH_TIMEOUT: u16 = 4401;
/// An application error asked for the session to be closed (AutobahnPython's code).
pub const KILLED: u16 = 3000;

/// The longest close reason, in bytes, that fits a control frame with its code.
pub const MAX_REASON: usize = 123;

/// Why the server closes a session: each variant knows its close code ([`SessionError::code`])
/// and its reason (the `Display` text, sent in the close frame and given to the
/// `on_session_close` hook).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A text frame that is not a WAMP v1 client message.
    #[error("protocol error: {0}")]
    Protocol(#[source] wamp_proto::Error),
    /// A server-to-client message sent by the client.
    #[error("protocol error: {0} is sent by servers, not clients")]
    ServerMessage(&'static str),
    /// A binary frame.
    #[error("binary frames are not supported: send WAMP messages as JSON text frames")]
    Binary,
    /// A message over [`crate::Options::max_message_size`].
    #[error("message too big: the limit is {0} bytes")]
    TooBig(usize),
    /// A WebSocket protocol violation, with the code it maps to (1002 or 1007).
    #[error("{1}")]
    WebSocket(u16, String),
    /// The session did not authenticate in time.
    #[error("authentication timeout: the session did not authenticate in time")]
    AuthTimeout,
    /// The outgoing queue passed its bound in frames.
    #[error("outgoing queue full: the client does not read fast enough")]
    SlowConsumer,
    /// The outgoing queue passed its bound in bytes.
    #[error("outgoing queue over {0} bytes: the client does not read fast enough")]
    SlowConsumerBytes(usize),
    /// A per-session limit was passed: its name (e.g. `max_prefixes`) and its value.
    #[error("{what}: the limit is {limit} ({name})")]
    Limit {
        /// What was too much, for a person ("too many prefixes").
        what: &'static str,
        /// The [`crate::Options`] field that sets the limit.
        name: &'static str,
        /// The limit.
        limit: usize,
    },
    /// An application error asked for the session to be closed.
    #[error("killing WAMP session upon request by application exception")]
    Killed,
    /// The router is shutting down.
    #[error("server shutting down")]
    ShuttingDown,
    /// The client closed the connection (the server answers its close).
    #[error("closed by the client")]
    ClientClosed,
}

impl SessionError {
    /// The WebSocket close code for this reason.
    pub fn code(&self) -> u16 {
        match self {
            SessionError::Protocol(_) | SessionError::ServerMessage(_) => PROTOCOL_ERROR,
            SessionError::Binary => UNSUPPORTED_DATA,
            SessionError::TooBig(_) => MESSAGE_TOO_BIG,
            SessionError::WebSocket(code, _) => *code,
            SessionError::AuthTimeout => AUTH_TIMEOUT,
            SessionError::SlowConsumer
            | SessionError::SlowConsumerBytes(_)
            | SessionError::Limit { .. } => POLICY_VIOLATION,
            SessionError::Killed => KILLED,
            SessionError::ShuttingDown => GOING_AWAY,
            SessionError::ClientClosed => NORMAL,
        }
    }

    /// The close reason, cut to fit a close frame ([`MAX_REASON`] bytes).
    pub fn reason(&self) -> String {
        let mut reason = self.to_string();
        truncate_reason(&mut reason);
        reason
    }
}

/// Whether `code` may be sent in a close frame (RFC 6455 section 7.4 and the IANA registry):
/// 1000-1003, 1007-1014 and 3000-4999. Not 1004 (reserved), 1005, 1006 and 1015 (never sent:
/// they stand for "no code", "no close frame" and "TLS failure"), 1016-2999 (reserved), nor
/// anything outside 1000-4999.
pub fn may_send(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Shortens a close reason to at most [`MAX_REASON`] bytes, at a character boundary.
pub(crate) fn truncate_reason(s: &mut String) {
    if s.len() > MAX_REASON {
        let mut at = MAX_REASON;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_a_close_frame_may_carry_are_sendable() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999,
        ] {
            assert!(may_send(code), "{code}");
        }
        for code in [
            0,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2000,
            2999,
            5000,
            u16::MAX,
        ] {
            assert!(!may_send(code), "{code}");
        }
    }

    #[test]
    fn every_reason_fits_a_close_frame_and_names_its_limit() {
        let limit = SessionError::Limit {
            what: "too many prefixes",
            name: "max_prefixes",
            limit: 1024,
        };
        assert_eq!(limit.code(), 1008);
        assert_eq!(
            limit.reason(),
            "too many prefixes: the limit is 1024 (max_prefixes)"
        );
        let long = SessionError::WebSocket(1002, "x".repeat(500));
        assert_eq!(long.reason().len(), MAX_REASON);
        assert_eq!(SessionError::Killed.code(), 3000);
        let mut s = "é".repeat(100);
        truncate_reason(&mut s);
        assert_eq!(s.len(), 122);
    }
}
