//! Exit codes, and [`Failure`]: what went wrong, said in one line a person can act on.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use wamp_client::Error;

use crate::args::Human;

/// Success.
pub const OK: u8 = 0;
/// The server answered CALLERROR, or the command failed for another reason.
pub const CALL_ERROR: u8 = 1;
/// Bad usage: flags or arguments (clap exits with this code too), an invalid URL, a CURIE
/// whose prefix is unknown.
pub const USAGE: u8 = 2;
/// Connection: the server is unreachable, refused the WebSocket handshake, is not a WAMP v1
/// server, or the connection was lost.
pub const CONNECTION: u8 = 3;
/// Authentication (WAMP-CRA) failed.
pub const AUTH: u8 = 4;
/// Connecting or a call took longer than `--timeout`.
pub const TIMEOUT: u8 = 5;

/// Why a command failed: the exit code, the one-line message, and for a CALLERROR its
/// details.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    code: u8,
    message: String,
    details: Option<Value>,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }

    /// Any other failure (exit 1).
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(CALL_ERROR, message)
    }

    /// The process exit code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The one-line message, without the `error: ` in front.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code as an [`ExitCode`].
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }

    /// Prints the failure on stderr: `error: <message>`, then `details: <JSON>` for a
    /// CALLERROR that carried details.
    pub fn report(&self) {
        eprintln!("error: {}", self.message);
        if let Some(details) = &self.details {
            eprintln!("details: {details}");
        }
    }

    /// A failure to establish a session with `url` (connect, handshake, WELCOME or, when
    /// `auth_key` is set, authentication).
    pub fn connecting(url: &str, auth_key: Option<&str>, error: Error) -> Self {
        match error {
            Error::InvalidUrl { url, reason } => Self::usage(format!(
                "invalid URL {url:?}: {reason} (set --url or WAMP_URL, e.g. ws://localhost:8080/ws)"
            )),
            e @ Error::HandshakeRefused { .. } => Self::refused(e),
            Error::Connect { reason, .. } => Self::new(
                CONNECTION,
                format!(
                    "cannot reach {url}: {reason} (is the server running? set --url or WAMP_URL)"
                ),
            ),
            Error::Subprotocol(why) => Self::new(
                CONNECTION,
                format!(
                    "{url} refused the WAMP handshake: it did not select the `wamp` WebSocket \
                     subprotocol ({why}); for servers that do not negotiate it, pass \
                     --no-subprotocol-check"
                ),
            ),
            Error::Handshake(why) => {
                Self::new(CONNECTION, format!("{url} is not a WAMP v1 server: {why}"))
            }
            Error::ConnectTimeout(limit) => Self::new(
                TIMEOUT,
                format!(
                    "no WAMP session with {url} within {} (raise --timeout)",
                    Human(limit)
                ),
            ),
            e @ (Error::AuthRefused { .. } | Error::Auth(_)) => Self::auth(auth_key, e),
            Error::ConnectionLost(why) | Error::Closed(why) | Error::Protocol(why) => Self::new(
                CONNECTION,
                format!("{url} ended the connection during the WAMP handshake: {why}"),
            ),
            // Its message names the URL already ("TLS with URL failed: ...").
            e @ Error::Tls { .. } => Self::new(CONNECTION, e.to_string()),
            other => Self::new(CONNECTION, format!("cannot connect to {url}: {other}")),
        }
    }

    /// A failed operation (`what`, e.g. "call to rpc:echo") on an established session.
    pub fn operation(what: &str, error: Error) -> Self {
        match error {
            e @ (Error::AuthRefused { .. } | Error::Auth(_)) => Self::auth(None, e),
            e @ Error::HandshakeRefused { .. } => Self::refused(e),
            e @ Error::UnknownPrefix { .. } => Self::usage(format!(
                "{what} failed: {e} (declare the prefix with --prefix NAME=URI)"
            )),
            Error::CallError { uri, desc, details } => Failure {
                code: CALL_ERROR,
                message: if desc.is_empty() {
                    format!("{what} failed: {uri}")
                } else {
                    format!("{what} failed: {uri}: {desc}")
                },
                details,
            },
            Error::Timeout(limit) => Self::timeout(what, limit),
            e @ (Error::ConnectionLost(_)
            | Error::NotConnected
            | Error::Closed(_)
            | Error::Protocol(_)) => Self::new(CONNECTION, format!("{what} failed: {e}")),
            other => Self::other(format!("{what} failed: {other}")),
        }
    }

    /// The server refused the WebSocket handshake: its HTTP status and body, and a hint.
    fn refused(error: Error) -> Self {
        if let Error::HandshakeRefused { url, status, body } = &error {
            if (200..300).contains(status) {
                // A page where a WebSocket was expected: the path is wrong. The body (a
                // whole HTML page, say) is no use on one line.
                let what = if looks_like_html(body) {
                    "a web page"
                } else {
                    "a plain HTTP response"
                };
                return Self::new(
                    CONNECTION,
                    format!(
                        "{url} answered with {what} (HTTP {status}), not a WebSocket: this \
                         is not the WAMP endpoint; try its WebSocket path, e.g. {} (the \
                         tutorial server's)",
                        suggest_ws_path(url)
                    ),
                );
            }
        }
        let hint = match error {
            Error::HandshakeRefused { status: 403, .. } => {
                " (the server does not accept this client; check --url)"
            }
            Error::HandshakeRefused { status: 404, .. } => " (check the path in --url)",
            Error::HandshakeRefused {
                status: 429 | 500..=599,
                ..
            } => " (try again later)",
            _ => "",
        };
        // The client's text: `<url> refused the WebSocket handshake: HTTP 403 Forbidden:
        // <body on one line>`.
        Self::new(CONNECTION, format!("{error}{hint}"))
    }

    /// WAMP-CRA failed: refused by the server (its error URI and description), or the
    /// client could not use the server's challenge.
    fn auth(auth_key: Option<&str>, error: Error) -> Self {
        let who = auth_key.map(|k| format!(" as {k:?}")).unwrap_or_default();
        Self::new(
            AUTH,
            match error {
                Error::AuthRefused { uri, desc, .. } if desc.is_empty() => format!(
                    "authentication{who} failed: {uri} (check --auth-key and --auth-secret)"
                ),
                Error::AuthRefused { uri, desc, .. } => format!(
                    "authentication{who} failed: {uri}: {desc} (check --auth-key and \
                     --auth-secret)"
                ),
                Error::Auth(why) => format!("authentication{who} failed: {why}"),
                other => format!("authentication{who} failed: {other}"),
            },
        )
    }

    /// `what` took longer than `limit`.
    pub fn timeout(what: &str, limit: Duration) -> Self {
        Self::new(
            TIMEOUT,
            format!(
                "{what} timed out: no answer within {} (raise --timeout)",
                Human(limit)
            ),
        )
    }
}

/// Whether a response body is an HTML page.
fn looks_like_html(body: &str) -> bool {
    let start: String = body.trim_start().chars().take(64).collect();
    let start = start.to_ascii_lowercase();
    start.starts_with("<!doctype html") || start.starts_with("<html") || start.contains("<head")
}

/// `url` with its path replaced by `/ws`.
fn suggest_ws_path(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("ws", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{authority}/ws")
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "ws://127.0.0.1:1/ws";

    #[test]
    fn connection_errors_map_to_codes() {
        let refused = Failure::connecting(
            URL,
            None,
            Error::Connect {
                url: URL.into(),
                reason: "IO error: Connection refused (os error 111)".into(),
            },
        );
        assert_eq!(refused.code(), CONNECTION);
        assert!(refused.message().starts_with("cannot reach"));

        let http = Failure::connecting(
            URL,
            None,
            Error::HandshakeRefused {
                url: URL.into(),
                status: 403,
                body: "origin http://evil is not allowed".into(),
            },
        );
        assert_eq!(http.code(), CONNECTION);
        assert_eq!(
            http.message(),
            format!(
                "{URL} refused the WebSocket handshake: HTTP 403 Forbidden: origin http://evil \
                 is not allowed (the server does not accept this client; check --url)"
            )
        );

        let auth = Failure::connecting(
            URL,
            Some("guest"),
            Error::AuthRefused {
                uri: "http://api.wamp.ws/error#invalid-signature".into(),
                desc: "bad".into(),
                details: None,
            },
        );
        assert_eq!(auth.code(), AUTH);
        assert_eq!(
            auth.message(),
            "authentication as \"guest\" failed: http://api.wamp.ws/error#invalid-signature: \
             bad (check --auth-key and --auth-secret)"
        );

        // A CALLERROR is never taken for an authentication failure.
        let call = Failure::connecting(
            URL,
            Some("guest"),
            Error::CallError {
                uri: "http://x/error".into(),
                desc: "x".into(),
                details: None,
            },
        );
        assert_ne!(call.code(), AUTH);

        let slow = Failure::connecting(URL, None, Error::ConnectTimeout(Duration::from_secs(3)));
        assert_eq!(slow.code(), TIMEOUT);

        let url = Failure::connecting(
            "http://x",
            None,
            Error::InvalidUrl {
                url: "http://x".into(),
                reason: "the scheme must be ws".into(),
            },
        );
        assert_eq!(url.code(), USAGE);
    }

    #[test]
    fn a_web_page_is_not_a_wamp_endpoint() {
        let page = Failure::connecting(
            "ws://localhost:8080",
            None,
            Error::HandshakeRefused {
                url: "ws://localhost:8080".into(),
                status: 200,
                body: "<!DOCTYPE html>\n<html><head><title>x</title></head></html>".into(),
            },
        );
        assert_eq!(page.code(), CONNECTION);
        assert_eq!(
            page.message(),
            "ws://localhost:8080 answered with a web page (HTTP 200), not a WebSocket: this is \
             not the WAMP endpoint; try its WebSocket path, e.g. ws://localhost:8080/ws (the \
             tutorial server's)"
        );
        assert_eq!(suggest_ws_path("ws://h:1/index.html?x"), "ws://h:1/ws");
        assert_eq!(suggest_ws_path("wss://h"), "wss://h/ws");
        let refusal = |status: u16, body: &str| {
            Failure::connecting(
                "ws://h:1/x",
                None,
                Error::HandshakeRefused {
                    url: "ws://h:1/x".into(),
                    status,
                    body: body.into(),
                },
            )
        };
        let plain = refusal(204, "");
        assert!(
            plain.message().starts_with(
                "ws://h:1/x answered with a plain HTTP response (HTTP 204), not a WebSocket"
            ),
            "{}",
            plain.message()
        );
        // An error page keeps the server's own words.
        let missing = refusal(404, "<html>not found</html>");
        assert!(
            !missing.message().contains("web page"),
            "{}",
            missing.message()
        );
        assert!(
            missing.message().contains("HTTP 404"),
            "{}",
            missing.message()
        );
    }

    #[test]
    fn call_errors_keep_their_details() {
        let f = Failure::operation(
            "call to rpc:throw",
            Error::CallError {
                uri: "http://api.wamp.ws/error#internal".into(),
                desc: "internal error".into(),
                details: Some(Value::from("An exception")),
            },
        );
        assert_eq!(f.code(), CALL_ERROR);
        assert_eq!(
            f.message(),
            "call to rpc:throw failed: http://api.wamp.ws/error#internal: internal error"
        );
        assert_eq!(f.details, Some(Value::from("An exception")));
        let t = Failure::operation("call to x", Error::Timeout(Duration::from_millis(300)));
        assert_eq!(t.code(), TIMEOUT);
        assert!(t.message().contains("300ms"), "{}", t.message());
    }
}
