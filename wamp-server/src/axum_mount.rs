//! Mounting a router in an axum application: the WAMP endpoint at a route beside the app's
//! own pages.

use axum::extract::ws::{
    CloseFrame, Message as AxMessage, Utf8Bytes as AxText, WebSocket, WebSocketUpgrade,
};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::FutureExt;
use tokio_tungstenite::tungstenite;

use crate::handshake;
use crate::router::Router;
use crate::session::{run_session, ConnectionInfo};
use crate::stats::RefusedReason;
use crate::transport::{self, Inbound, Outbound, Text};

/// An axum handler body that upgrades the request to a WAMP v1 session on `router`, with the
/// same handshake rules, limits and shutdown as [`crate::serve`].
///
/// ```no_run
/// use axum::{extract::{State, WebSocketUpgrade}, http::HeaderMap, routing::get};
/// # async fn run(router: wamp_server::Router) {
/// let app = axum::Router::new()
///     .route("/", get(|| async { "my page" }))
///     .route("/ws", get(|State(r): State<wamp_server::Router>, headers: HeaderMap, ws: WebSocketUpgrade| async move {
///         wamp_server::axum_handler(r, headers, ws)
///     }))
///     .with_state(router);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// // WAMP frames are small: without TCP_NODELAY, replies can wait 40 ms for Nagle.
/// let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
///     let _ = tcp.set_nodelay(true);
/// });
/// axum::serve(listener, app).await.unwrap();
/// # }
/// ```
pub fn axum_handler(router: Router, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    axum_handler_with_peer(router, None, headers, ws)
}

/// [`axum_handler`] with the client's address for the session's logs, from axum's
/// `ConnectInfo` (which [`crate::serve_app`] provides, as does axum's
/// `into_make_service_with_connect_info`):
///
/// ```no_run
/// use std::net::SocketAddr;
/// use axum::extract::{connect_info::ConnectInfo, State, WebSocketUpgrade};
/// use axum::{http::HeaderMap, routing::get, Extension};
/// # fn app(router: wamp_server::Router) -> axum::Router {
/// axum::Router::new()
///     .route("/ws", get(|State(r): State<wamp_server::Router>,
///                        peer: Option<Extension<ConnectInfo<SocketAddr>>>,
///                        headers: HeaderMap, ws: WebSocketUpgrade| async move {
///         wamp_server::axum_handler_with_peer(r, peer.map(|p| p.0 .0), headers, ws)
///     }))
///     .with_state(router)
/// # }
/// ```
pub fn axum_handler_with_peer(
    router: Router,
    peer: Option<std::net::SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let shown = || peer.map(|p| p.to_string()).unwrap_or_default();
    let offered = match handshake::check(&headers, router.options()) {
        Ok(offered) => offered,
        Err(refusal) => {
            let reason = RefusedReason::of(&refusal);
            router.counters().refused(reason);
            tracing::info!(peer = %shown(), reason = reason.label(), status = %refusal.status, body = %refusal.body.trim_end(), "handshake refused");
            return (refusal.status, refusal.body).into_response();
        }
    };
    let Some(slot) = router.try_connection() else {
        router.counters().refused(RefusedReason::Limit);
        tracing::info!(
            peer = %shown(),
            reason = "limit",
            "handshake refused: connection limit reached"
        );
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "connection limit reached: try again later",
        )
            .into_response();
    };
    let size = router.options().max_message_size;
    let mut ws = ws
        .max_message_size(size)
        .max_frame_size(size)
        .read_buffer_size(router.options().read_buffer_size)
        .write_buffer_size(router.options().write_buffer_size)
        .max_write_buffer_size(router.options().max_write_buffer_size());
    if let Some(token) = offered {
        // axum matches byte for byte: answer with the client's own spelling.
        ws = ws.protocols([token]);
    }
    ws.on_upgrade(move |socket: WebSocket| {
        // The socket whole, unsplit: the session's one task reads and writes it.
        let io = transport::MapIo::new(socket, outbound, inbound);
        // Boxed: axum's upgrade task awaits this future in an `async` block, which would hold
        // a second copy of it (rust-lang/rust#62958); a box is one allocation of its size.
        Box::pin(run_session(router, ConnectionInfo { peer }, io).map(move |()| drop(slot)))
    })
}

/// Maps what axum read to what a session sees. Text moves between axum's and our type
/// without a copy (a reference count and a UTF-8 scan).
fn inbound(m: Result<AxMessage, axum::Error>) -> Option<Inbound> {
    match m {
        Ok(AxMessage::Text(t)) => Some(match Text::try_from(Bytes::from(t)) {
            Ok(text) => Inbound::Text(text),
            // Unreachable: axum's text is UTF-8 already.
            Err(_) => Inbound::Violation(crate::close::INVALID_DATA, "invalid UTF-8".into()),
        }),
        Ok(AxMessage::Binary(_)) => Some(Inbound::Binary),
        Ok(AxMessage::Close(_)) => Some(Inbound::Close),
        Ok(AxMessage::Ping(payload)) => Some(Inbound::Ping(payload.len())),
        Ok(AxMessage::Pong(_)) => None,
        Err(e) => Some(match tungstenite_error(&e) {
            Some(e) => transport::error_to_inbound(e),
            None => Inbound::Close,
        }),
    }
}

fn outbound(o: Outbound) -> AxMessage {
    match o {
        Outbound::Text(t) => match AxText::try_from(Bytes::from(t)) {
            Ok(text) => AxMessage::Text(text),
            // Unreachable: our text is UTF-8 already.
            Err(_) => AxMessage::Close(None),
        },
        Outbound::Close(code, reason) => AxMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
}

/// The tungstenite error inside axum's error, if that is what it is.
fn tungstenite_error(e: &axum::Error) -> Option<&tungstenite::Error> {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(e) = s.downcast_ref::<tungstenite::Error>() {
            return Some(e);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_crosses_the_axum_seam_without_a_copy() {
        let from_axum = AxText::from("[2,\"c\",\"http://x/rpc#echo\"]".to_string());
        let ptr = from_axum.as_str().as_ptr();
        let Some(Inbound::Text(text)) = inbound(Ok(AxMessage::Text(from_axum))) else {
            panic!("a text frame is a text message");
        };
        assert_eq!(text.as_ptr(), ptr);
        let ours = Text::from("[3,\"c\",null]".to_string());
        let ptr = ours.as_ptr();
        let AxMessage::Text(to_axum) = outbound(Outbound::Text(ours)) else {
            panic!("a text message is a text frame");
        };
        assert_eq!(to_axum.as_str().as_ptr(), ptr);
    }
}
