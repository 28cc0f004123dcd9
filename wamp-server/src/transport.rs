//! The transport seam: what a session reads and writes, independent of the WebSocket library.

use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What the client sent, as a session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text frame (one WAMP message).
    Text(Utf8Bytes),
    /// A binary frame (refused with 1003).
    Binary,
    /// A message over the size limit (refused with 1009).
    TooBig,
    /// The client closed the connection.
    Close,
}

/// What goes to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A text frame; the bytes are shared between all recipients of one event.
    Text(Utf8Bytes),
    /// A close frame with a code and reason.
    Close(u16, String),
}
