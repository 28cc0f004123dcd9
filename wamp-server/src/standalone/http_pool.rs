//! Keep-alive HTTP/1.1 connections to one backend server. Each request drives its own
//! connection in the calling task (hyper's client connection polled beside the request, no
//! connection task and no channel hop between tasks), and idle connections wait in a small
//! pool for the next request.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::debug;
use url::{Host, Url};

/// How long an idle connection is kept for the next call (backends close theirs sooner
/// or later; one found closed is dropped, never used).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How many idle connections one backend keeps at most (the rest are closed when their
/// call ends).
const MAX_IDLE: usize = 256;

/// A plain or TLS connection, behind one type.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Stream = TokioIo<Box<dyn Io>>;

/// One open connection: the handle requests go through and the connection state it drives.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: http1::Connection<Stream, Full<Bytes>>,
    idle_since: Instant,
}

impl Conn {
    /// Whether this idle connection can take a request: not closed by the backend (polling
    /// it once reads the end of stream or an unexpected byte) and not idle for too long.
    fn usable(&mut self, now: Instant) -> bool {
        now.duration_since(self.idle_since) < IDLE_TIMEOUT
            && (&mut self.conn).now_or_never().is_none()
            && !self.sender.is_closed()
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connection could not be made.
    Connect(io::Error),
    /// The TLS handshake with an https backend failed.
    Tls(io::Error),
    /// The HTTP exchange failed (the connection closed, a malformed answer, …).
    Http(hyper::Error),
    /// The answer's body is larger than the limit.
    TooLarge(usize),
}

/// Where a backend is, and how to reach it: checked once, from its URL.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server: requests to the same one share connections.
    pub origin: Origin,
    /// The request target: the URL's path and query.
    pub path: Uri,
}

/// The server part of a backend's URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The host to connect to (a name, or an address without brackets).
    host: String,
    port: u16,
    /// The `Host` header.
    authority: HeaderValue,
    /// The name an https backend's certificate must have; `None` for http.
    tls_name: Option<ServerName<'static>>,
}

impl Target {
    /// The target of an `http://` or `https://` URL, or what is wrong with the URL.
    pub fn parse(url: &Url) -> Result<Target, String> {
        let host = match url.host() {
            Some(Host::Domain(d)) => d.to_string(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err("has no host".into()),
        };
        let port = url.port_or_known_default().ok_or("has no port")?;
        let path = url[url::Position::BeforePath..]
            .parse::<Uri>()
            .map_err(|e| format!("has a path HTTP cannot carry ({e})"))?;
        let authority = url[url::Position::BeforeHost..url::Position::AfterPort]
            .parse::<HeaderValue>()
            .map_err(|e| format!("has a host HTTP cannot carry ({e})"))?;
        let tls_name = match url.scheme() {
            "https" => Some(
                ServerName::try_from(host.clone())
                    .map_err(|e| format!("has a host TLS cannot check ({e})"))?,
            ),
            "http" => None,
            other => return Err(format!("is {other}://, not http:// or https://")),
        };
        Ok(Target {
            origin: Origin {
                host,
                port,
                authority,
                tls_name,
            },
            path,
        })
    }
}

impl Origin {
    /// Whether the server is reached over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls_name.is_some()
    }
}

/// The connections to one server.
pub struct Pool {
    origin: Origin,
    /// The TLS connector of an https backend.
    tls: Option<TlsConnector>,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    /// A pool for the server at `origin`; `tls` (the roots it is checked against) is used
    /// when it is https.
    pub fn new(origin: Origin, tls: Option<Arc<rustls::ClientConfig>>) -> Arc<Pool> {
        let tls = tls.filter(|_| origin.is_tls()).map(TlsConnector::from);
        let pool = Arc::new(Pool {
            origin,
            tls,
            idle: Mutex::new(Vec::new()),
        });
        // Idle connections the backend closed are let go of within a while, even when no
        // call comes to notice (so their sockets do not linger half-closed).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap(Arc::downgrade(&pool)));
        }
        pool
    }

    /// POSTs `body` (JSON) to `path` with `headers` added, and returns the answer's status
    /// and body (at most `max_body` bytes). No timeout: the caller bounds the whole call.
    pub async fn post(
        &self,
        path: &Uri,
        body: Bytes,
        headers: &HeaderMap,
        max_body: usize,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let mut request = self.request(path, body, headers);
        loop {
            // A kept-alive connection may turn out closed only when the request is written
            // to it: then the request comes back unsent, and goes again on another (in the
            // end a fresh one).
            let (mut conn, kept) = match self.checkout() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            match conn.exchange(request, max_body).await {
                Exchange::Done(answer, reusable) => {
                    if reusable {
                        self.checkin(conn);
                    }
                    return answer;
                }
                Exchange::Unsent(back) if kept => {
                    debug!("a kept-alive backend connection was closed; trying another");
                    request = *back;
                }
                Exchange::Unsent(_) => {
                    return Err(Failure::Connect(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the backend closed the connection before the request was sent",
                    )))
                }
            }
        }
    }

    fn request(&self, path: &Uri, body: Bytes, headers: &HeaderMap) -> Request<Full<Bytes>> {
        let len = body.len();
        let mut request = Request::post(path.clone())
            .body(Full::new(body))
            .expect("a request from a checked URL");
        let h = request.headers_mut();
        h.reserve(headers.len() + 3);
        h.insert(HOST, self.origin.authority.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        for (name, value) in headers {
            h.insert(name, value.clone());
        }
        request
    }

    /// An idle connection that still works, if there is one (the most recently used).
    fn checkout(&self) -> Option<Conn> {
        let now = Instant::now();
        loop {
            let mut conn = self.idle.lock().expect("pool lock").pop()?;
            if conn.usable(now) {
                return Some(conn);
            }
        }
    }

    fn checkin(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Drops the idle connections that are closed or too old.
    fn prune(&self) {
        let now = Instant::now();
        let mut idle = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        idle.retain_mut(|c| c.usable(now));
        let mut kept = self.idle.lock().expect("pool lock");
        // Connections checked in meanwhile stay (they are the freshest).
        idle.append(&mut kept);
        *kept = idle;
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let t = &self.origin;
        let tcp = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(Failure::Connect)?;
        // Small requests go out at once, not behind the previous answer's ACK.
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match (&self.tls, &t.tls_name) {
            (Some(connector), Some(name)) => Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(Failure::Tls)?,
            ),
            _ => Box::new(tcp),
        };
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(Failure::Http)?;
        Ok(Conn {
            sender,
            conn,
            idle_since: Instant::now(),
        })
    }
}

/// What one request on one connection came to.
enum Exchange {
    /// The answer (or the failure), and whether the connection can take another request.
    Done(Result<(StatusCode, Bytes), Failure>, bool),
    /// The connection was closed before the request was written: here it is back.
    Unsent(Box<Request<Full<Bytes>>>),
}

impl Conn {
    /// Sends `request` and reads the whole answer, driving the connection meanwhile.
    async fn exchange(&mut self, request: Request<Full<Bytes>>, max_body: usize) -> Exchange {
        let Conn { sender, conn, .. } = self;
        let work = async {
            if let Err(e) = sender.ready().await {
                return Err((e, Some(request)));
            }
            let response = sender.try_send_request(request).await.map_err(|mut e| {
                let back = e.take_message();
                (e.into_error(), back)
            })?;
            Ok(response)
        };
        let (response, mut open) = drive(conn, work).await;
        let response = match response {
            Ok(r) => r,
            Err((_, Some(back))) => return Exchange::Unsent(Box::new(back)),
            Err((e, None)) => return Exchange::Done(Err(Failure::Http(e)), false),
        };
        let status = response.status();
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if announced.is_some_and(|n| n > max_body) {
            return Exchange::Done(Err(Failure::TooLarge(max_body)), false);
        }
        let mut incoming = response.into_body();
        let read = async {
            let mut body = BytesMut::with_capacity(announced.unwrap_or(0));
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(Failure::Http)?;
                if let Ok(data) = frame.into_data() {
                    if body.len() + data.len() > max_body {
                        return Err(Failure::TooLarge(max_body));
                    }
                    body.extend_from_slice(&data);
                }
            }
            Ok(body.freeze())
        };
        let (body, still_open) = if open {
            drive(conn, read).await
        } else {
            (read.await, false)
        };
        open = still_open;
        let reusable = open && body.is_ok() && !sender.is_closed();

        Exchange::Done(body.map(|b| (status, b)), reusable)
    }
}

/// Polls `work` to its end while driving `conn` (which does the reading and writing).
/// Returns what `work` came to and whether the connection is still open.
///
/// Each poll goes back and forth between the two a few times, so what one makes possible
/// the other does at once: a request `work` queues is written in the same poll (also in the
/// session's first, inline poll of a call), and an answer `conn` reads reaches `work`
/// without a trip through the scheduler. Both are polled last with the task's waker, so a
/// `Pending` always has both registered.
async fn drive<F: Future>(
    conn: &mut http1::Connection<Stream, Full<Bytes>>,
    work: F,
) -> (F::Output, bool) {
    let mut work = pin!(work);
    let mut open = true;
    poll_fn(|cx| {
        for _ in 0..3 {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready((out, open));
            }
            if !open {
                // Closed (by either side, or failed): what it had read is already handed
                // over to `work`, which sees the end too.
                break;
            }
            if conn.poll_unpin(cx).is_ready() {
                open = false;
            }
        }
        Poll::Pending
    })
    .await
}

/// Every half idle timeout, drops the pool's closed and expired idle connections, until
/// the pool is gone.
async fn reap(pool: Weak<Pool>) {
    let mut tick = tokio::time::interval(IDLE_TIMEOUT / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match pool.upgrade() {
            Some(pool) => pool.prune(),
            None => return,
        }
    }
}
