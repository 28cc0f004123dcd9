//! `serve_app` (and `serve_app_tls`): an axum app (pages beside the WAMP endpoint) served
//! through hyper by our own accept loop, with the same handshake bounds as `serve`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::router::Router;
use crate::server::accept_loop;
#[cfg(feature = "tls")]
use crate::stats::RefusedReason;

/// Serves an axum app (pages beside a WAMP endpoint made with [`crate::axum_handler`]) with
/// the same bounds as [`crate::serve`]: each HTTP connection must send a complete request head
/// within [`crate::Options::handshake_timeout`] (also while idle between requests), at most
/// [`crate::Options::max_pending_handshakes`] HTTP connections that are not (yet) WebSocket
/// sessions are open at once, and the session slot is taken by [`crate::axum_handler`] once
/// the upgrade request is complete. When `shutdown` completes: stops accepting, closes the
/// HTTP connections, shuts the router down and waits (up to the grace period) for its
/// sessions.
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
/// connection's task under [`crate::Options::handshake_timeout`], ALPN `http/1.1`.
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
        let acceptor = tls.acceptor().clone();
        let timeout = r.options().handshake_timeout;
        let counters = r.counters().clone();
        http_connection(r.clone(), app.clone(), peer, permit, async move {
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => Some(tls),
                Ok(Err(e)) => {
                    counters.refused(RefusedReason::Tls);
                    info!(%peer, error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    counters.refused(RefusedReason::HandshakeTimeout);
                    info!(%peer, ?timeout, "TLS handshake not completed in time; dropping the connection");
                    None
                }
            }
        })
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
    let deadline = router.options().shutdown_grace + Duration::from_secs(5);
    if tokio::time::timeout(deadline, router.closed())
        .await
        .is_err()
    {
        warn!("sessions still open after the grace period");
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
    let Some(io) = transport.await else { return };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(router.options().handshake_timeout);
    // The client's address for the handlers (axum's `ConnectInfo`, as
    // `into_make_service_with_connect_info` gives it), so sessions log their peer.
    let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
    let service = hyper_util::service::TowerToHyperService::new(app);
    let connection = http
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = connection.await {
        debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
    drop(permit);
}
