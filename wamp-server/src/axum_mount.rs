//! Mounting a router in an axum application: the WAMP endpoint at a route beside the app's
//! own pages.

use axum::extract::ws::{CloseFrame, Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;

use crate::handshake;
use crate::router::Router;
use crate::session::{run_session, ConnectionInfo};
use crate::transport::{Inbound, Outbound};

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
    let offered = match handshake::check(&headers, router.options()) {
        Ok(offered) => offered,
        Err(refusal) => return (refusal.status, refusal.body).into_response(),
    };
    let Some(slot) = router.try_connection() else {
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
        .write_buffer_size(router.options().write_buffer_size);
    if let Some(token) = offered {
        // axum matches byte for byte: answer with the client's own spelling.
        ws = ws.protocols([token]);
    }
    ws.on_upgrade(move |socket: WebSocket| async move {
        let _slot = slot;
        let (sink, stream) = socket.split();
        let stream = stream.filter_map(|m| async move {
            match m {
                Ok(AxMessage::Text(t)) => Some(Inbound::Text(t.as_str().into())),
                Ok(AxMessage::Binary(_)) => Some(Inbound::Binary),
                Ok(AxMessage::Close(_)) => Some(Inbound::Close),
                Ok(AxMessage::Ping(_) | AxMessage::Pong(_)) => None,
                Err(e) if is_capacity_error(&e) => Some(Inbound::TooBig),
                Err(_) => Some(Inbound::Close),
            }
        });
        let sink = sink.with(|o: Outbound| async move {
            Ok::<_, axum::Error>(match o {
                Outbound::Text(t) => AxMessage::Text(t.as_str().into()),
                Outbound::Close(code, reason) => AxMessage::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })),
            })
        });
        run_session(
            router,
            ConnectionInfo::default(),
            Box::pin(stream),
            Box::pin(sink),
        )
        .await;
    })
}

/// Whether axum's error is tungstenite's "message too big".
fn is_capacity_error(e: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(tungstenite::Error::Capacity(_)) = s.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}
