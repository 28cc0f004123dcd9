//! Opening one connection: dial, WebSocket handshake with the `wamp` subprotocol, the
//! WELCOME, and the one WAMP-CRA routine ([`authenticate`]) that both
//! [`Client::authenticate`](crate::Client::authenticate) and the driver's re-authentication
//! after a reconnect run.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, trace};
use wamp_proto::cra::{self, CraStyle};
use wamp_proto::uri::{PROC_AUTH, PROC_AUTHREQ};
use wamp_proto::{Message, Permissions};

use crate::error::{Error, Result};
use crate::options::{ConnectOptions, Credentials};

/// The socket type a connection is.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The tracing target of the protocol trace: every WAMP message sent and received, as its
/// JSON text, at trace level.
pub(crate) const WIRE: &str = "wamp_client::wire";

/// Where to connect, parsed once from the URL the application gave.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as given: what errors and logs name.
    pub(crate) url: String,
    /// The URL as parsed (scheme lower-cased): what the WebSocket handshake is given.
    pub(crate) request: String,
    /// Whether the scheme is `wss`.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) tls: bool,
    /// The host, for TLS errors (the name a certificate must carry).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) host: String,
}

/// What the session a connection got: the contents of its WELCOME.
#[derive(Debug, Clone)]
pub(crate) struct Welcome {
    pub(crate) session_id: String,
    pub(crate) server_ident: String,
}

/// A message as a text frame, traced on [`WIRE`].
pub(crate) fn frame(msg: &Message) -> WsMessage {
    let text = msg.to_json();
    trace!(target: WIRE, "sent {text}");
    WsMessage::text(text)
}

/// The longest reason a close frame carries: a control frame's payload is at most 125 bytes
/// (RFC 6455 section 5.5), two of them the code.
const MAX_CLOSE_REASON: usize = 123;

/// A close frame with `reason` cut to what fits in one ([`MAX_CLOSE_REASON`] bytes).
pub(crate) fn close_frame(code: CloseCode, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: truncate(reason, MAX_CLOSE_REASON).into(),
    }))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Something that can make one WAMP call and wait for its answer: the running client, or a
/// connection being set up. [`authenticate`] runs over either.
pub(crate) trait Caller {
    /// Calls `proc_uri` with `args`; a CALLERROR is [`Error::CallError`].
    async fn call(&mut self, proc_uri: &str, args: Vec<Value>) -> Result<Value>;
}

/// WAMP-CRA: `authreq` with the key (and extra), sign the exact challenge text in the
/// credentials' style, `auth` with the signature, read the permissions (either form
/// [`cra::AuthResult`] reads). A CALLERROR from either call is [`Error::AuthRefused`]; a
/// challenge or result the client cannot use is [`Error::Auth`].
pub(crate) async fn authenticate(
    caller: &mut impl Caller,
    credentials: &Credentials,
) -> Result<Permissions> {
    let challenge = caller
        .call(PROC_AUTHREQ, authreq_args(credentials))
        .await
        .map_err(Error::into_auth_refusal)?;
    let signature = sign_challenge(&challenge, credentials).await?;
    let granted = caller
        .call(PROC_AUTH, cra::Auth { signature }.to_args())
        .await
        .map_err(Error::into_auth_refusal)?;
    let permissions = parse_permissions(granted)?;
    debug!(key = %credentials.key, style = %credentials.style, ?permissions, "authenticated");
    Ok(permissions)
}

/// The arguments of `authreq`.
fn authreq_args(credentials: &Credentials) -> Vec<Value> {
    cra::AuthReq {
        authkey: Some(credentials.key.clone()),
        extra: credentials.extra.clone(),
    }
    .to_args()
}

/// Signs the exact challenge text `authreq` returned (`None` for an anonymous `null`
/// challenge). PBKDF2 for a salted challenge may take a while, so it runs on the blocking
/// pool.
async fn sign_challenge(challenge: &Value, credentials: &Credentials) -> Result<Option<String>> {
    let Some(text) = cra::challenge_text(challenge).map_err(|e| Error::Auth(e.to_string()))? else {
        return Ok(None);
    };
    let (text, secret, style) = (
        text.to_string(),
        credentials.secret.clone(),
        credentials.style,
    );
    tokio::task::spawn_blocking(move || cra::client_signature_styled(&text, &secret, style))
        .await
        .map_err(|e| Error::Auth(format!("signing failed: {e}")))?
        .map(Some)
        .map_err(|e| match (e, style) {
            (e @ wamp_proto::Error::InvalidChallenge(_), CraStyle::Standard) => {
                Error::Auth(format!(
                    "{e}; a challenge that is not a JSON object is clj-wamp's: sign it in the \
                 clj-wamp or auto CRA style (ConnectOptions::cra_style, wamp-cli --cra-style)"
                ))
            }
            (e, _) => Error::Auth(e.to_string()),
        })
}

/// Reads the `auth` result.
fn parse_permissions(value: Value) -> Result<Permissions> {
    cra::AuthResult::from_value(value)
        .map(|result| result.permissions)
        .map_err(|e| Error::Auth(e.to_string()))
}

/// Opens one connection: TCP, WebSocket handshake offering `wamp`, the WELCOME and, with
/// credentials, WAMP-CRA. All of it within the connect timeout. Owns its inputs so the
/// driver can keep answering commands while it runs.
pub(crate) async fn establish(
    target: Target,
    opts: Arc<ConnectOptions>,
    credentials: Option<Credentials>,
) -> Result<(Ws, Welcome)> {
    let limit = opts.connect_timeout;
    let attempt = async {
        let started = Instant::now();
        let mut ws = open(&target, &opts).await?;
        let opened = started.elapsed();
        let welcome = read_welcome(&mut ws).await?;
        let welcomed = started.elapsed();
        debug!(step = "welcome", took = ?(welcomed - opened), total = ?welcomed, "WELCOME received");
        if let Some(credentials) = &credentials {
            authenticate(&mut Inline(&mut ws), credentials).await?;
            debug!(step = "auth", took = ?(started.elapsed() - welcomed), total = ?started.elapsed(),
                "authenticated");
        }
        Ok((ws, welcome))
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::ConnectTimeout(limit)),
    }
}

/// The WebSocket handshake (over TLS for `wss://`).
async fn open(target: &Target, opts: &ConnectOptions) -> Result<Ws> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(opts.max_message_size))
        .max_frame_size(Some(opts.max_message_size));
    match handshake(target, opts, config, true).await {
        Err(Error::Subprotocol(why)) if opts.skip_subprotocol_check => {
            debug!(%why, "the server did not select `wamp`; connecting without offering it");
            handshake(target, opts, config, false).await
        }
        other => other,
    }
}

async fn handshake(
    target: &Target,
    opts: &ConnectOptions,
    config: WebSocketConfig,
    offer_wamp: bool,
) -> Result<Ws> {
    let url = target.url.as_str();
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let mut request = target
        .request
        .as_str()
        .into_client_request()
        .map_err(|e| invalid(e.to_string()))?;
    if offer_wamp {
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("wamp"));
    }
    // TCP first on its own, so `-v` shows how long each step took.
    let started = Instant::now();
    let connected = match tcp_connect(&request).await {
        Err(e) => Err(e),
        Ok(tcp) => {
            let tcp_took = started.elapsed();
            debug!(step = "tcp", took = ?tcp_took, "TCP connected");
            #[cfg(feature = "tls")]
            let connected = {
                use tokio_tungstenite::Connector;
                // Always our own connector: tokio-tungstenite's default would pick a provider
                // itself.
                let connector = match &opts.tls.config {
                    Some(config) if target.tls => Connector::Rustls(config.clone()),
                    _ => Connector::Plain,
                };
                tokio_tungstenite::client_async_tls_with_config(
                    request,
                    tcp,
                    Some(config),
                    Some(connector),
                )
                .await
            };
            #[cfg(not(feature = "tls"))]
            let connected = {
                let _ = opts;
                tokio_tungstenite::client_async_with_config(
                    request,
                    MaybeTlsStream::Plain(tcp),
                    Some(config),
                )
                .await
            };
            if connected.is_ok() {
                let step = if target.tls {
                    "tls+websocket"
                } else {
                    "websocket"
                };
                debug!(step, took = ?(started.elapsed() - tcp_took), total = ?started.elapsed(),
                    "WebSocket handshake done");
            }
            connected
        }
    };
    match connected {
        // tungstenite has checked that an offered subprotocol was selected.
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(e))) => {
            Err(Error::Subprotocol(e.to_string()))
        }
        Err(tungstenite::Error::Url(e)) => Err(invalid(e.to_string())),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Err(Error::HandshakeRefused {
                url: url.to_string(),
                status: response.status().as_u16(),
                body: body.trim().to_string(),
            })
        }
        #[cfg(feature = "tls")]
        Err(tungstenite::Error::Io(e)) if crate::tls::rustls_error(&e).is_some() => {
            let failure =
                crate::tls::failure(crate::tls::rustls_error(&e).expect("checked"), &target.host);
            Err(Error::Tls {
                url: url.to_string(),
                failure,
                source: Some(Arc::new(e)),
            })
        }
        #[cfg(feature = "tls")]
        Err(tungstenite::Error::Io(e))
            if target.tls && e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Err(Error::Tls {
                url: url.to_string(),
                failure: crate::error::TlsFailure::Handshake(
                    "the server closed the connection during the TLS handshake; is it \
                     serving TLS on this port (else use ws://)?"
                        .into(),
                ),
                source: Some(Arc::new(e)),
            })
        }
        #[cfg(feature = "tls")]
        Err(tungstenite::Error::Tls(e)) => {
            let failure = match &e {
                tungstenite::error::TlsError::Rustls(inner) => {
                    crate::tls::failure(inner, &target.host)
                }
                _ => crate::error::TlsFailure::InvalidServerName(target.host.clone()),
            };
            Err(Error::Tls {
                url: url.to_string(),
                failure,
                source: Some(Arc::new(e)),
            })
        }
        Err(e) => Err(Error::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// The TCP connection to the request's host and port (80 for ws://, 443 for wss://), without
/// Nagle's algorithm; errors as tungstenite gives them, so they map the same way.
async fn tcp_connect(
    request: &tungstenite::handshake::client::Request,
) -> tungstenite::Result<TcpStream> {
    use tungstenite::error::UrlError;
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or(tungstenite::Error::Url(UrlError::NoHostName))?;
    let port = uri
        .port_u16()
        .or(match uri.scheme_str() {
            Some("wss") => Some(443),
            Some("ws") => Some(80),
            _ => None,
        })
        .ok_or(tungstenite::Error::Url(UrlError::UnsupportedUrlScheme))?;
    let tcp = TcpStream::connect(format!("{host}:{port}"))
        .await
        .map_err(tungstenite::Error::Io)?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Reads the next WAMP message during connection setup (pings are answered by tungstenite).
async fn next_message(ws: &mut Ws) -> Result<Message> {
    loop {
        match ws.next().await {
            None => return Err(Error::ConnectionLost("the connection closed".into())),
            Some(Err(e)) => return Err(Error::ConnectionLost(Error::websocket(e).reason())),
            Some(Ok(WsMessage::Text(text))) => {
                trace!(target: WIRE, "received {}", text.as_str());
                return Ok(Message::from_json(text.as_str())?);
            }
            Some(Ok(WsMessage::Binary(_))) => {
                return Err(Error::Protocol(
                    "the server sent a binary frame; WAMP v1 uses text frames".into(),
                ))
            }
            Some(Ok(WsMessage::Close(frame))) => {
                let why = frame
                    .map(|f| format!(" (code {}: {})", f.code, f.reason))
                    .unwrap_or_default();
                return Err(Error::ConnectionLost(format!(
                    "the server closed the connection{why}"
                )));
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn read_welcome(ws: &mut Ws) -> Result<Welcome> {
    let msg = next_message(ws).await.map_err(|e| match e {
        Error::Protocol(why) => Error::Handshake(format!("the first message is not valid: {why}")),
        Error::InvalidMessage(why) => {
            Error::Handshake(format!("the first message is not valid: {why}"))
        }
        other => other,
    })?;
    match msg {
        Message::Welcome {
            session_id,
            protocol_version,
            server_ident,
        } => {
            if protocol_version != wamp_proto::message::PROTOCOL_VERSION {
                return Err(Error::Handshake(format!(
                    "WELCOME announces protocol version {protocol_version}, not 1"
                )));
            }
            Ok(Welcome {
                session_id,
                server_ident,
            })
        }
        other => Err(Error::Handshake(format!(
            "the first message is {}, not WELCOME",
            other.name()
        ))),
    }
}

/// Calls on a connection that is being set up, before the driver serves it.
struct Inline<'a>(&'a mut Ws);

impl Caller for Inline<'_> {
    async fn call(&mut self, proc_uri: &str, args: Vec<Value>) -> Result<Value> {
        let ws = &mut *self.0;
        let call_id = wamp_proto::ids::new_id();
        let call = Message::Call {
            call_id: call_id.clone(),
            proc_uri: proc_uri.to_string(),
            args,
        };
        ws.send(frame(&call))
            .await
            .map_err(|e| Error::ConnectionLost(Error::websocket(e).reason()))?;
        loop {
            match next_message(ws).await? {
                Message::CallResult {
                    call_id: id,
                    result,
                } if id == call_id => return Ok(result),
                Message::CallError {
                    call_id: id,
                    error_uri,
                    error_desc,
                    error_details,
                } if id == call_id => {
                    return Err(Error::CallError {
                        uri: error_uri,
                        desc: error_desc,
                        details: error_details,
                    })
                }
                other => debug!(message = other.name(), "ignored during authentication"),
            }
        }
    }
}

/// How long a graceful close waits for the server's closing handshake.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }

    fn creds(style: CraStyle) -> Credentials {
        Credentials::new("k".into(), "s".into(), None, style)
    }

    #[tokio::test]
    async fn signing_needs_a_string_challenge() {
        let err = sign_challenge(&Value::from(3), &creds(CraStyle::Auto))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err}");
        assert_eq!(
            sign_challenge(&Value::Null, &creds(CraStyle::Auto))
                .await
                .unwrap(),
            None,
            "a null challenge is anonymous: auth with null"
        );
        let err = sign_challenge(
            &Value::String("not json".into()),
            &creds(CraStyle::Standard),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("invalid WAMP-CRA challenge"),
            "{err}"
        );
        let text = r#"{"authid":"a","authkey":"k","timestamp":"t","sessionid":"s","extra":{},"permissions":{"rpc":[],"pubsub":[]}}"#;
        for style in [CraStyle::Auto, CraStyle::Standard] {
            assert_eq!(
                sign_challenge(&Value::String(text.into()), &creds(style))
                    .await
                    .unwrap(),
                Some(wamp_proto::cra::sign("s", text))
            );
        }
        // An opaque challenge (clj-wamp's) is signed with key and message swapped.
        for style in [CraStyle::Auto, CraStyle::CljWamp] {
            assert_eq!(
                sign_challenge(&Value::String("opaque".into()), &creds(style))
                    .await
                    .unwrap(),
                Some(wamp_proto::cra::sign_swapped("s", "opaque"))
            );
        }
    }

    #[test]
    fn authreq_sends_null_extra_by_default() {
        let c = Credentials::new("guest".into(), "pw".into(), None, CraStyle::Auto);
        assert_eq!(
            authreq_args(&c),
            vec![Value::String("guest".into()), Value::Null]
        );
    }

    #[test]
    fn permissions_parse_in_either_form_or_fail_clearly() {
        let clj = parse_permissions(serde_json::json!({"rpc": {"http://x/a": true}})).unwrap();
        assert!(clj.may_call("http://x/a") && !clj.may_call("http://x/b"));
        let p =
            parse_permissions(serde_json::json!({"rpc": [{"uri": "http://x/a", "call": true}]}))
                .unwrap();
        assert!(p.may_call("http://x/a"));
        assert!(matches!(
            parse_permissions(Value::from(3)),
            Err(Error::Auth(_))
        ));
    }
}
