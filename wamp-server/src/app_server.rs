//! `serve_app` (and `serve_app_tls`): an axum app (pages beside the WAMP endpoint) served
//! through hyper by our own accept loop, with the same handshake bounds as `serve`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::router::Router;
use crate::server::accept_loop;
use crate::stats::RefusedReason;

/// Serves an axum app (pages beside a WAMP endpoint made with [`crate::axum_handler`]) with
/// the same bounds as [`crate::serve`]: each HTTP connection must send a complete request head
/// within [`crate::Options::handshake_timeout`] (also while idle between requests), at most
/// [`crate::Options::max_pending_handshakes`] HTTP connections that are not (yet) WebSocket
/// sessions are open at once, and the session slot is taken by [`crate::axum_handler`] once
/// the upgrade request is complete. When `shutdown` completes: stops accepting, closes the
/// HTTP connections, shuts the router down and waits for its sessions to end (past the
/// shutdown grace, close wait and writer wait, the ones left are aborted first); it returns
/// only once every session has ended.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let router = wamp_server::tutorial::router();
/// let app = wamp_server::tutorial::app(router.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// wamp_server::serve_app(listener, router, app, async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub async fn serve_app(
    listener: TcpListener,
    router: Router,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let r = router.clone();
    let connections = accept_loop(listener, &router, shutdown, move |tcp, peer, permit| {
        http_connection(
            r.clone(),
            app.clone(),
            peer,
            permit,
            async move { Some(tcp) },
        )
    })
    .await;
    drain_app(&router, connections).await;
    Ok(())
}

/// [`serve_app`] over TLS (`https://` and `wss://`): the TLS handshake runs in the
/// connection's task, ALPN `http/1.1`; it and the first request head share one
/// [`crate::Options::handshake_timeout`] from accept.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = wamp_server::tls::TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// let router = wamp_server::tutorial::router();
/// let app = wamp_server::tutorial::app(router.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// wamp_server::serve_app_tls(listener, router, app, tls, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tls")]
pub async fn serve_app_tls(
    listener: TcpListener,
    router: Router,
    app: axum::Router,
    tls: crate::tls::TlsConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let r = router.clone();
    let connections = accept_loop(listener, &router, shutdown, move |tcp, peer, permit| {
        let handshake = tls.accept(tcp, peer);
        let counters = r.counters().clone();
        let counted = async move {
            let tls = handshake.await;
            if tls.is_none() {
                counters.refused(RefusedReason::Tls);
            }
            tls
        };
        http_connection(r.clone(), app.clone(), peer, permit, counted)
    })
    .await;
    drain_app(&router, connections).await;
    Ok(())
}

/// After `serve_app` stops accepting: closes the HTTP connections (the sessions run in their
/// own tasks), shuts the router down and waits for its sessions.
async fn drain_app(router: &Router, mut connections: JoinSet<()>) {
    info!(sessions = router.session_count(), "shutting down");
    connections.abort_all();
    router.shutdown();
    // The sessions run in axum's tasks, which this function cannot abort: it aborts their
    // outboxes after the deadline, then waits for them to end (none outlives the server).
    let deadline = router.shutdown_deadline();
    if tokio::time::timeout(deadline, router.closed())
        .await
        .is_err()
    {
        warn!(
            ?deadline,
            "sessions still open after the shutdown deadline; aborting them"
        );
        router.abort_all_sessions();
        router.closed().await;
    }
    while connections.join_next().await.is_some() {}
}

/// One HTTP connection of `serve_app`: the transport's handshake, then hyper until the
/// connection closes or is upgraded (the WebSocket session then runs in axum's task).
async fn http_connection<S, T>(
    router: Router,
    app: axum::Router,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    transport: T,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: Future<Output = Option<S>> + Send,
{
    // One deadline from accept for the transport's handshake (TLS) and the first request's
    // headers (spec section 1); hyper's header timeout then bounds the idle time between
    // later requests.
    let timeout = router.options().handshake_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let late = || {
        router.counters().refused(RefusedReason::HandshakeTimeout);
        info!(%peer, ?timeout, "handshake not completed in time; dropping the connection");
    };
    let io = match tokio::time::timeout_at(deadline, transport).await {
        Ok(Some(io)) => io,
        Ok(None) => return,
        Err(_) => return late(),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
    let first_request = Arc::new(Notify::new());
    let service = FirstRequest {
        // The client's address for the handlers (axum's `ConnectInfo`, as
        // `into_make_service_with_connect_info` gives it), so sessions log their peer.
        inner: hyper_util::service::TowerToHyperService::new(
            app.layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        ),
        seen: first_request.clone(),
    };
    let connection = http
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = &mut connection => ended,
        () = first_request.notified() => connection.await,
        () = tokio::time::sleep_until(deadline) => return late(),
    };
    if let Err(e) = ended {
        debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
    drop(permit);
}

/// A hyper service that says when its first request's headers are in.
struct FirstRequest<S> {
    inner: S,
    seen: Arc<Notify>,
}

impl<S, R> hyper::service::Service<R> for FirstRequest<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> Self::Future {
        self.seen.notify_one();
        self.inner.call(req)
    }
}
