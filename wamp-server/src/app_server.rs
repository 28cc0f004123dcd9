//! `serve_app` (and `serve_app_tls`): an axum app (pages beside the WAMP endpoint) served
//! through hyper by our own accept loop, with the same handshake bounds as `serve`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::router::Router;
use crate::server::{accept_loop, websocket_connection};
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
    serve(listener, router, app, None, shutdown).await
}

/// [`serve_app`] with the WAMP endpoint at `path` (such as `"/ws"`) taken before the app: a
/// connection whose first request is a WebSocket upgrade (`GET`, `Upgrade: websocket`) to
/// `path` (any query) goes the way [`crate::serve`] takes it, the same handshake rules,
/// limits and logs, without hyper's HTTP connection and axum's upgrade task beside the
/// session (less memory and CPU per session). Every other request, including a later one on
/// a kept-alive connection, is the app's, so the app should still route `path` to
/// [`crate::axum_handler_with_peer`] for those (and to answer a plain `GET` there).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let router = wamp_server::tutorial::router();
/// let app = wamp_server::tutorial::app(router.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// wamp_server::serve_app_at(listener, router, app, "/ws", async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve_app_at(
    listener: TcpListener,
    router: Router,
    app: axum::Router,
    path: &str,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve(listener, router, app, Some(Arc::from(path)), shutdown).await
}

/// The accept loop of [`serve_app`] and [`serve_app_at`] over plain TCP.
async fn serve(
    listener: TcpListener,
    router: Router,
    app: axum::Router,
    path: Option<Arc<str>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let r = router.clone();
    let connections = accept_loop(listener, &router, shutdown, move |tcp, peer, permit| {
        http_connection(
            r.clone(),
            app.clone(),
            path.clone(),
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
    serve_tls(listener, router, app, tls, None, shutdown).await
}

/// [`serve_app_tls`] with the WAMP endpoint at `path` taken before the app, as
/// [`serve_app_at`] does.
#[cfg(feature = "tls")]
pub async fn serve_app_tls_at(
    listener: TcpListener,
    router: Router,
    app: axum::Router,
    tls: crate::tls::TlsConfig,
    path: &str,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_tls(listener, router, app, tls, Some(Arc::from(path)), shutdown).await
}

/// The accept loop of [`serve_app_tls`] and [`serve_app_tls_at`].
#[cfg(feature = "tls")]
async fn serve_tls(
    listener: TcpListener,
    router: Router,
    app: axum::Router,
    tls: crate::tls::TlsConfig,
    path: Option<Arc<str>>,
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
        http_connection(r.clone(), app.clone(), path.clone(), peer, permit, counted)
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

/// One HTTP connection of `serve_app`: the transport's handshake (TLS, or nothing) and the
/// first request's head under the handshake timeout; then, for an upgrade to the endpoint's
/// `path`, the session as `serve` runs it (in a task of its own, so that closing the HTTP
/// connections at shutdown does not abort it), else hyper until the connection closes or is
/// upgraded (the WebSocket session then runs in axum's task).
async fn http_connection<S, T>(
    router: Router,
    app: axum::Router,
    path: Option<Arc<str>>,
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
    let opened = async {
        let mut io = transport.await?;
        let head = match &path {
            Some(_) => read_head(&mut io).await.ok()?,
            None => Bytes::new(),
        };
        Some(Rewind { head, io })
    };
    let io = match tokio::time::timeout_at(deadline, opened).await {
        Ok(Some(io)) => io,
        Ok(None) => return,
        Err(_) => return late(),
    };
    if path.is_some_and(|p| is_upgrade_to(&io.head, &p)) {
        // The same path as `serve`'s connections: tungstenite reads the request from the
        // bytes read here, then the session.
        tokio::spawn(websocket_connection(router, peer, permit, async move {
            Some(io)
        }));
        return;
    }
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

/// How much of a connection's first bytes are read to find the end of its request head. A
/// longer head goes to hyper as it is (which has its own limit).
const HEAD_LIMIT: usize = 8 * 1024;

/// Reads until the end of the first request head (an empty line), [`HEAD_LIMIT`] bytes or
/// the end of the stream, whichever comes first; everything read is returned, to be read
/// again from a [`Rewind`].
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<Bytes> {
    let mut head = BytesMut::with_capacity(1024);
    loop {
        let searched = head.len().saturating_sub(3);
        if io.read_buf(&mut head).await? == 0 {
            break;
        }
        if head[searched..].windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= HEAD_LIMIT {
            break;
        }
        if head.capacity() == head.len() {
            head.reserve((HEAD_LIMIT - head.len()).min(head.len()));
        }
    }
    Ok(head.freeze())
}

/// Whether `head` is a complete request head of a well-formed WebSocket upgrade to `path`
/// (any query): `GET`, HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`,
/// `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`. Anything else, malformed upgrades
/// included, is the app's, which answers it as before (axum's 400 saying what is missing).
fn is_upgrade_to(head: &[u8], path: &str) -> bool {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let Ok(head) = std::str::from_utf8(&head[..end]) else {
        return false;
    };
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (Some("GET"), Some(target), Some("HTTP/1.1"), None) = (
        request.next(),
        request.next(),
        request.next(),
        request.next(),
    ) else {
        return false;
    };
    if target.split('?').next() != Some(path) {
        return false;
    }
    let (mut upgrade, mut connection, mut version, mut key) = (false, false, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        let has = |token: &str| {
            value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has("upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = value.trim() == "13";
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = !value.trim().is_empty();
        }
    }
    upgrade && connection && version && key
}

/// A stream with the bytes already read from it (the request head) put back in front of it.
/// The head is freed once read.
struct Rewind<S> {
    head: Bytes,
    io: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.head.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.head.len().min(buf.remaining());
        buf.put_slice(&self.head.split_to(n));
        if self.head.is_empty() {
            // Drops the last reference to the head's buffer.
            self.head = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn only_a_complete_well_formed_upgrade_to_the_path_is_taken() {
        assert!(is_upgrade_to(UPGRADE.as_bytes(), "/ws"));
        let query = UPGRADE.replacen("/ws", "/ws?x=1", 1);
        assert!(is_upgrade_to(query.as_bytes(), "/ws"));
        let lower = UPGRADE.to_ascii_lowercase().replacen("get", "GET", 1);
        let lower =
            lower
                .replacen("http/1.1", "HTTP/1.1", 1)
                .replacen("-key: dghl", "-key: dGhl", 1);
        assert!(
            is_upgrade_to(lower.as_bytes(), "/ws"),
            "header names in any case"
        );
        // A pipelined frame after the head does not matter.
        assert!(is_upgrade_to(
            format!("{UPGRADE}\u{81}\u{80}").as_bytes(),
            "/ws"
        ));
        for (what, head) in [
            ("another path", UPGRADE.replacen("/ws", "/wsx", 1)),
            ("a sub-path", UPGRADE.replacen("/ws", "/ws/a", 1)),
            ("POST", UPGRADE.replacen("GET", "POST", 1)),
            ("HTTP/1.0", UPGRADE.replacen("HTTP/1.1", "HTTP/1.0", 1)),
            (
                "no Upgrade",
                UPGRADE.replacen("Upgrade: websocket\r\n", "", 1),
            ),
            ("Upgrade: h2c", UPGRADE.replacen("websocket", "h2c", 1)),
            (
                "no Connection: upgrade",
                UPGRADE.replacen("keep-alive, Upgrade", "keep-alive", 1),
            ),
            (
                "version 8",
                UPGRADE.replacen("Version: 13", "Version: 8", 1),
            ),
            (
                "no key",
                UPGRADE.replacen("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1),
            ),
            ("an incomplete head", UPGRADE.trim_end().to_string()),
            (
                "a line without a colon",
                UPGRADE.replacen("Host: x", "Host x", 1),
            ),
            ("an empty head", String::new()),
        ] {
            assert!(!is_upgrade_to(head.as_bytes(), "/ws"), "{what}: {head:?}");
        }
    }

    #[tokio::test]
    async fn the_head_is_read_again_then_the_stream() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\n\r\nrest")
            .await
            .unwrap();
        drop(client);
        let mut server = server;
        let head = read_head(&mut server).await.unwrap();
        assert!(head.starts_with(b"GET / HTTP/1.1\r\n\r\n"), "{head:?}");
        let mut rewind = Rewind { head, io: server };
        let mut all = String::new();
        rewind.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "GET / HTTP/1.1\r\n\r\nrest");
        assert!(rewind.head.is_empty());
    }

    #[tokio::test]
    async fn a_head_longer_than_the_limit_stops_the_read_there() {
        let (mut client, mut server) = tokio::io::duplex(HEAD_LIMIT * 2);
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(HEAD_LIMIT));
        tokio::io::AsyncWriteExt::write_all(&mut client, long.as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut server).await.unwrap();
        assert!(
            head.len() >= HEAD_LIMIT && head.len() < long.len(),
            "{}",
            head.len()
        );
        assert!(!is_upgrade_to(&head, "/"));
    }
}
