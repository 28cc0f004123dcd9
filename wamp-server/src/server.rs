//! `serve` (and `serve_tls`): WAMP over tokio-tungstenite on a bare listener, with the accept
//! loop shared with `serve_app`: the handshake timeout, the bound on connections still in
//! their handshakes, the connection limit (a slot is taken only once the handshake succeeded)
//! and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::Either;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;
use tracing::{info, warn};

use crate::handshake;
use crate::router::{ConnectionSlot, Router};
use crate::session::{run_session, ConnectionInfo};
use crate::stats::RefusedReason;
use crate::transport;

/// The body of the 503 a client gets when every session slot is taken.
const LIMIT_BODY: &str = "connection limit reached: try again later\n";

/// Serves WAMP v1 on an already bound listener until `shutdown` completes, then shuts down
/// gracefully: stops accepting, lets calls in flight answer (up to
/// [`crate::Options::shutdown_grace`]), ends every session as
/// [`crate::Options::shutdown_close`] says and returns.
///
/// A connection must complete its WebSocket handshake within
/// [`crate::Options::handshake_timeout`] or it is dropped; at most
/// [`crate::Options::max_pending_handshakes`] may be in their handshake at once (more are
/// closed at accept). It takes one of the [`crate::Options::max_connections`] slots only when
/// its handshake request is complete, so silent sockets cannot lock real clients out; over the
/// limit the client gets HTTP 503.
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
    let r = router.clone();
    let connections = accept_loop(listener, &router, shutdown, move |tcp, peer, permit| {
        websocket_connection(r.clone(), peer, permit, async move { Some(tcp) })
    })
    .await;
    drain(&router, connections).await;
    Ok(())
}

/// [`serve`] over TLS (`wss://`): the TLS handshake runs in the connection's task and counts
/// against [`crate::Options::handshake_timeout`] with the WebSocket handshake.
#[cfg(feature = "tls")]
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    tls: crate::tls::TlsConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let r = router.clone();
    let connections = accept_loop(listener, &router, shutdown, move |tcp, peer, permit| {
        let handshake = tls.accept(tcp, peer);
        let counters = r.counters().clone();
        websocket_connection(r.clone(), peer, permit, async move {
            let tls = handshake.await;
            if tls.is_none() {
                counters.refused(RefusedReason::Tls);
            }
            tls
        })
    })
    .await;
    drain(&router, connections).await;
    Ok(())
}

/// Accepts connections until `shutdown` completes and runs `connection` for each in its own
/// task, holding a permit of the pending-handshake bound; returns the tasks still running.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    router: &Router,
    shutdown: impl Future<Output = ()>,
    connection: F,
) -> JoinSet<()>
where
    F: Fn(TcpStream, SocketAddr, OwnedSemaphorePermit) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    let pending = Arc::new(Semaphore::new(router.options().max_pending_handshakes));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // Small frames must not wait for Nagle's algorithm.
                    let _ = tcp.set_nodelay(true);
                    match pending.clone().try_acquire_owned() {
                        Ok(permit) => {
                            connections.spawn(connection(tcp, peer, permit));
                        }
                        Err(_) => {
                            router.counters().refused(RefusedReason::Pending);
                            info!(%peer, "too many connections in their handshakes; closing this one");
                            drop(tcp);
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections
}

/// After `serve` stops accepting: shuts the router down and waits for the sessions.
async fn drain(router: &Router, mut connections: JoinSet<()>) {
    info!(sessions = router.session_count(), "shutting down");
    router.shutdown();
    let deadline = router.shutdown_deadline();
    if tokio::time::timeout(deadline, join_all(&mut connections))
        .await
        .is_err()
    {
        warn!(
            ?deadline,
            "sessions still open after the shutdown deadline; aborting them"
        );
        router.abort_all_sessions();
        let wait = router.options().close_wait + Duration::from_secs(1);
        if tokio::time::timeout(wait, join_all(&mut connections))
            .await
            .is_err()
        {
            connections.abort_all();
            join_all(&mut connections).await;
        }
    }
}

/// Waits for every task of `set`.
async fn join_all(set: &mut JoinSet<()>) {
    while set.join_next().await.is_some() {}
}

/// The tungstenite configuration for a router: message size limit and buffer sizes.
pub(crate) fn ws_config(router: &Router) -> WebSocketConfig {
    let o = router.options();
    WebSocketConfig::default()
        .max_message_size(Some(o.max_message_size))
        .max_frame_size(Some(o.max_message_size))
        .read_buffer_size(o.read_buffer_size)
        .write_buffer_size(o.write_buffer_size)
        .max_write_buffer_size(o.max_write_buffer_size())
}

/// One connection of `serve`: the transport's handshake (`transport`: TLS, or nothing) and the
/// WebSocket handshake under the handshake timeout, then the session.
///
/// Composed with `then` rather than written as one `async fn`: the task then holds either the
/// handshake's state or the session's, never room for both (an `async fn` awaiting the session
/// also keeps a second copy of its future: rust-lang/rust#62958). That halves a session's task.
pub(crate) fn websocket_connection<S, T>(
    router: Router,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    transport: T,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: Future<Output = Option<S>> + Send,
{
    let r = router.clone();
    connection_handshake(router, peer, permit, transport).then(move |done| match done {
        Some((ws, slot)) => Either::Left(websocket_session(r, peer, ws, slot)),
        None => Either::Right(std::future::ready(())),
    })
}

/// The handshakes of one connection of `serve`, under the handshake timeout; `None` when the
/// connection is dropped (refused, too slow, shutting down).
async fn connection_handshake<S, T>(
    router: Router,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    transport: T,
) -> Option<(WebSocketStream<S>, ConnectionSlot)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: Future<Output = Option<S>> + Send,
{
    let timeout = router.options().handshake_timeout;
    // Boxed: the handshake's state (tungstenite's request buffer, the callback, the config) is
    // freed once the handshake is done.
    let handshake = Box::pin(async {
        let io = transport.await?;
        websocket_handshake(&router, io, peer).await
    });
    // A shutdown drops connections still in their handshakes at once.
    let mut stopping = router.shutdown_signal();
    let done = tokio::select! {
        done = tokio::time::timeout(timeout, handshake) => match done {
            Ok(done) => done,
            Err(_) => {
                router.counters().refused(RefusedReason::HandshakeTimeout);
                info!(%peer, ?timeout, "handshake not completed in time; dropping the connection");
                None
            }
        },
        _ = stopping.wait_for(|stop| *stop) => None,
    };
    drop(permit);
    done
}

/// The session over an accepted WebSocket, holding the connection slot until it ends.
fn websocket_session<S>(
    router: Router,
    peer: SocketAddr,
    ws: WebSocketStream<S>,
    slot: ConnectionSlot,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The socket whole, unsplit: the session's one task reads and writes it.
    let io = transport::tungstenite_io(ws);
    run_session(router, ConnectionInfo { peer: Some(peer) }, io).map(move |()| drop(slot))
}

/// The WebSocket handshake with the router's rules; the connection slot is taken once the
/// request is complete and acceptable (HTTP 503 when none is free).
async fn websocket_handshake<S>(
    router: &Router,
    io: S,
    peer: SocketAddr,
) -> Option<(WebSocketStream<S>, ConnectionSlot)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (slot_tx, mut slot_rx) = tokio::sync::oneshot::channel();
    let r = router.clone();
    #[allow(clippy::result_large_err)] // the error type is tungstenite's, not ours
    let callback = move |request: &Request, mut response: Response| {
        let refuse = |status, body: String| {
            let mut error = ErrorResponse::new(Some(body));
            *error.status_mut() = status;
            Err(error)
        };
        let offered = match handshake::check(request.headers(), r.options()) {
            Ok(offered) => offered,
            Err(refusal) => {
                let reason = RefusedReason::of(&refusal);
                r.counters().refused(reason);
                info!(%peer, reason = reason.label(), status = %refusal.status, body = %refusal.body.trim_end(), "handshake refused");
                let _ = slot_tx.send(None);
                return refuse(refusal.status, refusal.body);
            }
        };
        let Some(slot) = r.try_connection() else {
            r.counters().refused(RefusedReason::Limit);
            info!(%peer, reason = "limit", "handshake refused: connection limit reached");
            let _ = slot_tx.send(None);
            return refuse(
                http::StatusCode::SERVICE_UNAVAILABLE,
                LIMIT_BODY.to_string(),
            );
        };
        let _ = slot_tx.send(Some(slot));
        // The token as the client spelled it (checked as a token, so a valid value).
        if let Some(token) = offered.and_then(|t| http::HeaderValue::from_str(&t).ok()) {
            response
                .headers_mut()
                .insert(http::header::SEC_WEBSOCKET_PROTOCOL, token);
        }
        Ok(response)
    };
    match tokio_tungstenite::accept_hdr_async_with_config(io, callback, Some(ws_config(router)))
        .await
    {
        Ok(ws) => Some((ws, slot_rx.try_recv().ok()??)),
        // Refused by the rules above: counted and logged there.
        Err(_) if slot_rx.try_recv().is_ok() => None,
        Err(e) => {
            router.counters().refused(RefusedReason::Handshake);
            info!(%peer, error = %e, "WebSocket handshake failed");
            None
        }
    }
}
