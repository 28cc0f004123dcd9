//! The WebSocket close codes this server uses, and when.

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The server is shutting down (after in-flight calls have answered).
pub const GOING_AWAY: u16 = 1001;
/// The client sent something that is not a WAMP v1 client message: invalid JSON, not an
/// array, an unknown type id, a wrong shape, or a server-to-client type. The reason says what.
pub const PROTOCOL_ERROR: u16 = 1002;
/// The client sent a binary frame; WAMP v1 is JSON in text frames.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// The session did not keep up: its outgoing queue passed
/// [`crate::Options::outbox_capacity`]. ("policy violation")
pub const SLOW_CONSUMER: u16 = 1008;
/// A message or frame was larger than [`crate::Options::max_message_size`].
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The session did not authenticate within [`crate::AuthConfig::timeout`].
pub const AUTH_TIMEOUT: u16 = 4401;
/// An application error asked for the session to be closed (AutobahnPython's code).
pub const KILLED: u16 = 3000;
