//! `serve`: the accept loop over tokio-tungstenite, with the connection limit, the handshake
//! rules and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tracing::{debug, info, warn};

use crate::handshake;
use crate::router::Router;
use crate::session::{run_session, ConnectionInfo};
use crate::transport::{Inbound, Outbound};

/// Serves WAMP v1 on an already bound listener until `shutdown` completes, then shuts down
/// gracefully: stops accepting, lets calls in flight answer (up to
/// [`crate::Options::shutdown_grace`]), closes every session with 1001 and returns.
///
/// Any request path is accepted. Bind to port 0 in tests and read the address from the
/// listener.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let router = wamp_server::Router::builder().build();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// wamp_server::serve(listener, router, async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    tokio::pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let router = router.clone();
                    connections.spawn(async move { handle_connection(router, stream, peer).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    info!(sessions = router.session_count(), "shutting down");
    router.shutdown();
    let deadline = router.options().shutdown_grace + std::time::Duration::from_secs(5);
    let drained = tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("sessions still open after the grace period; aborting them");
        connections.abort_all();
    }
    Ok(())
}

/// The tungstenite configuration for a router: message size limit and buffer sizes.
pub(crate) fn ws_config(router: &Router) -> WebSocketConfig {
    let o = router.options();
    WebSocketConfig::default()
        .max_message_size(Some(o.max_message_size))
        .max_frame_size(Some(o.max_message_size))
        .read_buffer_size(o.read_buffer_size)
        .write_buffer_size(o.write_buffer_size)
}

async fn handle_connection(router: Router, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let Some(_slot) = router.try_connection() else {
        debug!(%peer, "connection limit reached, refusing");
        let body = "connection limit reached: try again later\n";
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    };
    let options = router.options().clone();
    #[allow(clippy::result_large_err)] // the error type is tungstenite's, not ours
    let callback = move |request: &Request, mut response: Response| match handshake::check(
        request.headers(),
        &options,
    ) {
        Ok(offered) => {
            // The token as the client spelled it (checked as a token, so a valid value).
            if let Some(token) = offered.and_then(|t| http::HeaderValue::from_str(&t).ok()) {
                response
                    .headers_mut()
                    .insert(http::header::SEC_WEBSOCKET_PROTOCOL, token);
            }
            Ok(response)
        }
        Err(refusal) => {
            debug!(%peer, status = %refusal.status, body = %refusal.body, "handshake refused");
            let mut error = ErrorResponse::new(Some(refusal.body));
            *error.status_mut() = refusal.status;
            Err(error)
        }
    };
    let ws = match tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(ws_config(&router)),
    )
    .await
    {
        Ok(ws) => ws,
        Err(e) => {
            debug!(%peer, error = %e, "WebSocket handshake failed");
            return;
        }
    };
    let (sink, stream) = ws.split();
    let stream = stream.filter_map(|m| async move { inbound(m) });
    let sink = sink.with(|o: Outbound| async move { Ok::<_, tungstenite::Error>(outbound(o)) });
    run_session(
        router,
        ConnectionInfo { peer: Some(peer) },
        Box::pin(stream),
        Box::pin(sink),
    )
    .await;
}

/// Maps what tungstenite read to what a session sees; pings and pongs are tungstenite's
/// business (it answers pings itself).
fn inbound(m: Result<WsMessage, tungstenite::Error>) -> Option<Inbound> {
    match m {
        Ok(WsMessage::Text(text)) => Some(Inbound::Text(text)),
        Ok(WsMessage::Binary(_)) => Some(Inbound::Binary),
        Ok(WsMessage::Close(_)) => Some(Inbound::Close),
        Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => None,
        Err(tungstenite::Error::Capacity(_)) => Some(Inbound::TooBig),
        Err(e) => {
            debug!(error = %e, "read failed");
            Some(Inbound::Close)
        }
    }
}

fn outbound(o: Outbound) -> WsMessage {
    match o {
        Outbound::Text(text) => WsMessage::Text(text),
        Outbound::Close(code, reason) => WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        })),
    }
}
