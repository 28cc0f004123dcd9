//! Test support: the real `wamp-server` on 127.0.0.1 (restartable on the same port), a
//! scriptable fake server that shows the client's exact frames, and small waiting helpers.

#![allow(dead_code)] // each test file uses a different part of this module

pub mod clj;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::WebSocketStream;
use wamp_client::{Client, ConnectOptions, ConnectionState, Event, ReconnectPolicy, Subscription};
use wamp_server::Router;

/// How long a test waits for something that should happen (generous: CI machines are slow).
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a test waits to be fairly sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(200);

/// The tutorial server's full URIs.
pub const RPC: &str = "http://wamptutorial/rpc#";
pub const CHAT: &str = "http://wamptutorial/event#chat";

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Fails the test if `fut` takes longer than [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Polls `cond` until it holds, failing the test after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// The next event of a subscription, failing the test if none comes in time.
pub async fn next_event(sub: &mut Subscription) -> Event {
    within("an event", sub.next())
        .await
        .expect("the subscription ended")
}

/// Asserts that no event arrives for a little while.
pub async fn no_event(sub: &mut Subscription) {
    if let Ok(Some(e)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("unexpected event {e:?}");
    }
}

/// Waits until the client's state satisfies `pred`; returns that state.
pub async fn wait_state(
    client: &Client,
    what: &str,
    pred: impl Fn(&ConnectionState) -> bool,
) -> ConnectionState {
    let mut states = client.state_changes();
    within(what, async {
        loop {
            {
                let now = states.borrow_and_update();
                if pred(&now) {
                    return now.clone();
                }
            }
            if states.changed().await.is_err() {
                let now = states.borrow().clone();
                assert!(
                    pred(&now),
                    "state ended as {now:?} while waiting for {what}"
                );
                return now;
            }
        }
    })
    .await
}

/// A round trip to the server: when it returns, the server has handled everything this
/// client sent before (a session's messages are handled in order).
pub async fn sync(client: &Client) {
    let v = within(
        "a sync call",
        client.call("rpc:echo", vec![Value::from("sync")]),
    )
    .await
    .expect("sync call");
    assert_eq!(v, "sync");
}

/// Options for tests: reconnect quickly, forever.
pub fn fast_reconnect() -> ConnectOptions {
    ConnectOptions::new().reconnect(ReconnectPolicy::forever(Duration::from_millis(50)))
}

/// A real `wamp-server` serving on 127.0.0.1.
pub struct TestServer {
    pub addr: SocketAddr,
    pub router: Router,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Serves `router` on a free port.
    pub async fn start(router: Router) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, router)
    }

    /// Serves `router` on `addr` again (after a stop), retrying while the port is busy.
    pub async fn start_on(addr: SocketAddr, router: Router) -> TestServer {
        let listener = within("the port to be free again", async {
            loop {
                match TcpListener::bind(addr).await {
                    Ok(l) => return l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        Self::serve(listener, router)
    }

    fn serve(listener: TcpListener, router: Router) -> TestServer {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(wamp_server::serve(listener, router.clone(), async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            router,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Graceful shutdown (sessions closed with 1001); returns when the port is released.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = within("the server to stop", task).await;
        }
    }

    /// A client with the given options.
    pub async fn client_with(&self, options: ConnectOptions) -> Client {
        within("connect", options.connect(&self.url()))
            .await
            .expect("connect")
    }

    /// A client with the default options.
    pub async fn client(&self) -> Client {
        self.client_with(ConnectOptions::new()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A TCP proxy in front of a server, whose connections the test can cut abruptly (as a
/// crashed server or a broken network would: no closing handshake).
pub struct Proxy {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Forwards every connection made to the proxy to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let pipes = pipes.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let pipe = tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    pipes.lock().unwrap().push(pipe);
                }
            }
        });
        Proxy {
            addr,
            accept,
            pipes,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Drops every forwarded connection at once, on both sides.
    pub fn cut(&self) {
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The tutorial router (echo, add, throw, whoami, ping; chat; guest and salted users).
pub fn tutorial() -> Router {
    wamp_server::tutorial::router()
}

/// A fake WAMP server: the test accepts each connection and scripts both directions with
/// exact JSON frames.
pub struct FakeServer {
    pub addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<FakeConn>,
    task: JoinHandle<()>,
}

/// One connection to the fake server.
pub struct FakeConn {
    pub ws: WebSocketStream<TcpStream>,
    /// The `Sec-WebSocket-Protocol` header the client sent, if any.
    pub offered: Option<String>,
}

impl FakeServer {
    /// Starts a fake server that selects `wamp` when offered (`select_wamp`) or never.
    pub async fn start(select_wamp: bool) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let offered = Arc::new(Mutex::new(None));
                    let seen = offered.clone();
                    #[allow(clippy::result_large_err)] // tungstenite's callback signature
                    let callback = move |req: &Request, mut resp: Response| {
                        let header = req
                            .headers()
                            .get("sec-websocket-protocol")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        if select_wamp && header.as_deref().is_some_and(|h| h.contains("wamp")) {
                            resp.headers_mut()
                                .insert("sec-websocket-protocol", HeaderValue::from_static("wamp"));
                        }
                        *seen.lock().unwrap() = header;
                        Ok::<_, ErrorResponse>(resp)
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                        let offered = offered.lock().unwrap().clone();
                        let _ = tx.send(FakeConn { ws, offered });
                    }
                });
            }
        });
        FakeServer { addr, conns, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The next connection that completed the WebSocket handshake.
    pub async fn accept(&mut self) -> FakeConn {
        within("a connection to the fake server", self.conns.recv())
            .await
            .expect("fake server stopped")
    }

    /// Connects a client with `options` and answers with WELCOME (session `session_id`).
    pub async fn connect(
        &mut self,
        options: ConnectOptions,
        session_id: &str,
    ) -> (Client, FakeConn) {
        let url = self.url();
        let (client, conn) = tokio::join!(options.connect(&url), async {
            let mut conn = self.accept().await;
            conn.welcome(session_id).await;
            conn
        });
        (client.expect("connect to the fake server"), conn)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeConn {
    /// Sends one text frame.
    pub async fn send(&mut self, text: &str) {
        self.ws.send(Ws::text(text)).await.expect("fake send");
    }

    /// Sends a WAMP v1 WELCOME.
    pub async fn welcome(&mut self, session_id: &str) {
        self.send(&format!(r#"[0,"{session_id}",1,"fake/1.0"]"#))
            .await;
    }

    /// The next text frame from the client, parsed.
    pub async fn recv(&mut self) -> Value {
        within("a frame from the client", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Ws::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                    Some(Ok(Ws::Ping(_) | Ws::Pong(_))) => continue,
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
        })
        .await
    }

    /// Waits for the client's close frame; returns its code (`None` if the connection just
    /// ended).
    pub async fn recv_close(&mut self) -> Option<u16> {
        within("the client to close", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Ws::Close(frame))) => {
                        // Keep reading so tungstenite sends its reply and the close completes.
                        while let Some(Ok(_)) = self.ws.next().await {}
                        // Then end the TCP connection, as a server does after the handshake.
                        let _ = tokio::io::AsyncWriteExt::shutdown(self.ws.get_mut()).await;
                        return frame.map(|f| u16::from(f.code));
                    }
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
    }

    /// Asserts the client sends nothing for a little while.
    pub async fn silent(&mut self) {
        self.silent_for(QUIET).await
    }

    /// Asserts the client sends no WAMP message for `time` (pings are answered).
    pub async fn silent_for(&mut self, time: Duration) {
        let _ = tokio::time::timeout(time, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Ws::Ping(_) | Ws::Pong(_))) => continue,
                    other => panic!("unexpected frame from the client: {other:?}"),
                }
            }
        })
        .await;
    }

    /// Sends a close frame.
    pub async fn close(&mut self, code: u16, reason: &str) {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        let _ = self.ws.send(Ws::Close(Some(frame))).await;
    }
}
