//! The one error type of `wamp-proto`: what went wrong reading a frame or a challenge.

use thiserror::Error;

/// Everything `wamp-proto` can fail at. Each variant says what the peer sent wrong, so a
/// server can put the `Display` text in a close reason and a client can show it to a person.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The frame is not valid JSON. Carries the JSON parser's message (with line and column).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),

    /// The frame is valid JSON but not an array. WAMP v1 messages are JSON arrays.
    #[error("a WAMP message must be a JSON array, got {0}")]
    NotAnArray(&'static str),

    /// The frame is an empty array, so it has no type id.
    #[error("a WAMP message must not be an empty array")]
    EmptyArray,

    /// Element 0 is not a non-negative integer.
    #[error("element 0 (message type) must be an integer from 0 to 8, got {0}")]
    InvalidTypeId(String),

    /// Element 0 is an integer that names no WAMP v1 message type.
    #[error("unknown message type id {0} (WAMP v1 has types 0 to 8)")]
    UnknownType(u64),

    /// The message is shorter than its layout requires.
    #[error("{message} is missing element {index} ({expected})")]
    MissingElement {
        /// The message type, e.g. `"CALL"`.
        message: &'static str,
        /// The position of the missing element in the array.
        index: usize,
        /// What belongs there.
        expected: &'static str,
    },

    /// An element has the wrong JSON type.
    #[error("{message} element {index} must be {expected}, got {found}")]
    WrongType {
        /// The message type, e.g. `"CALL"`.
        message: &'static str,
        /// The position of the offending element.
        index: usize,
        /// What belongs there.
        expected: &'static str,
        /// The JSON type that was found instead.
        found: &'static str,
    },

    /// The message has more elements than its layout allows.
    #[error("{message} has {found} elements, at most {max} are allowed")]
    TooManyElements {
        /// The message type, e.g. `"SUBSCRIBE"`.
        message: &'static str,
        /// How many elements the layout allows at most.
        max: usize,
        /// How many were sent.
        found: usize,
    },

    /// A WAMP-CRA challenge could not be read: it is not the JSON object of the standard
    /// challenge (clj-wamp's opaque challenges are not JSON; sign those with
    /// [`crate::cra::sign`] directly).
    #[error("invalid WAMP-CRA challenge: {0}")]
    InvalidChallenge(String),

    /// An argument of a WAMP-CRA procedure (`authreq`, `auth`) has the wrong type. The text says
    /// which argument and what it must be, e.g. `authKey (argument 1) must be a string or null`.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The result of WAMP-CRA `auth` is neither AutobahnPython's permissions object nor
    /// clj-wamp's permission map.
    #[error("invalid WAMP-CRA auth result: {0}")]
    InvalidAuthResult(String),
}

/// The name of a JSON value's type, for error messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
