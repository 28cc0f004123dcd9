//! Test support: a real server on 127.0.0.1:0 and a raw WebSocket client that speaks exact
//! JSON frames.

#![allow(dead_code)] // each test file uses a different part of this module

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wamp_server::Router;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(200);

/// A server running on a free port; dropping it does not stop it, `stop` does.
pub struct TestServer {
    pub addr: SocketAddr,
    pub router: Router,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(router: Router) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(wamp_server::serve(listener, router.clone(), async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            router,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Starts the graceful shutdown; returns the serve task to await.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url()).await
    }
}

/// A raw WAMP v1 client: exact frames in, parsed JSON out.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub session_id: String,
    pub welcome: Value,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
        // Without Nagle: tests send many small frames and must not wait for delayed ACKs.
        let (ws, response) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .unwrap();
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            "wamp"
        );
        let mut c = Client {
            ws,
            session_id: String::new(),
            welcome: Value::Null,
        };
        let welcome = c.recv().await;
        assert_eq!(welcome[0], 0, "first message must be WELCOME: {welcome}");
        c.session_id = welcome[1].as_str().unwrap().to_string();
        c.welcome = welcome;
        c
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Ws::text(text)).await.unwrap();
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send(&v.to_string()).await;
    }

    /// The next text frame as JSON; panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap()
    }

    /// The next text frame exactly as sent.
    pub async fn recv_text(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended")
                .expect("read failed");
            match msg {
                Ws::Text(t) => return t.to_string(),
                Ws::Ping(_) | Ws::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Sends a CALL and returns the reply.
    pub async fn call(&mut self, call_id: &str, proc_uri: &str, args: &[Value]) -> Value {
        let mut frame = vec![Value::from(2), Value::from(call_id), Value::from(proc_uri)];
        frame.extend(args.iter().cloned());
        self.send_json(Value::Array(frame)).await;
        self.recv().await
    }

    /// Asserts nothing arrives for a short while.
    pub async fn expect_silence(&mut self) {
        match tokio::time::timeout(QUIET, self.ws.next()).await {
            Err(_) => {}
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }

    /// Waits for the server's close frame and returns its code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for close");
            match msg {
                Some(Ok(Ws::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string())
                }
                Some(Ok(Ws::Close(None))) => return (u16::from(CloseCode::Status), String::new()),
                Some(Ok(Ws::Text(t))) => panic!("expected close, got {t}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("expected close, got error {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Round trip that proves the session still works.
    pub async fn assert_alive(&mut self) {
        let reply = self
            .call("alive", "http://test/rpc#echo", &["ok".into()])
            .await;
        assert_eq!(reply, serde_json::json!([3, "alive", "ok"]));
    }
}

/// A router with echo, a slow procedure, a panicking one, and open topics under
/// `http://test/event#`.
pub fn test_router() -> wamp_server::RouterBuilder {
    use serde_json::json;
    use wamp_server::{CallError, Topic};
    Router::builder()
        .procedure("http://test/rpc#echo", |_, args: Vec<Value>| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Null))
        })
        .procedure("http://test/rpc#args", |_, args: Vec<Value>| async move {
            Ok(Value::Array(args))
        })
        .procedure("http://test/rpc#sleep", |_, args: Vec<Value>| async move {
            let ms = args.first().and_then(Value::as_u64).unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!(ms))
        })
        .procedure("http://test/rpc#panic", |_, _| async move {
            if true {
                panic!("boom");
            }
            Ok(Value::Null)
        })
        .procedure("http://test/rpc#fail", |_, _| async move {
            Err::<Value, _>(
                CallError::new("http://test/error#too-big", "1001 too big").with_details(1000),
            )
        })
        .procedure("http://test/rpc#fail-plain", |_, _| async move {
            Err::<Value, _>(CallError::generic("math domain error"))
        })
        .procedure("http://test/rpc#kill", |_, _| async move {
            Err::<Value, _>(CallError::new("http://test/error#bye", "bye").and_close_session())
        })
        .procedure("http://test/rpc#whoami", |ctx, _| async move {
            Ok(json!({"session": &*ctx.session_id, "key": ctx.auth_key.as_deref()}))
        })
        .topic("http://test/event#*", Topic::open())
}

impl Client {
    /// Waits for the connection to end WITHOUT a close frame (the TCP connection just ends),
    /// skipping text frames; panics on a close frame or a timeout.
    pub async fn expect_connection_end(&mut self) {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for the connection to end");
            match msg {
                None | Some(Err(_)) => return,
                Some(Ok(Ws::Close(frame))) => {
                    panic!("expected the TCP connection to end, got a close frame {frame:?}")
                }
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// Polls `condition` every 10 ms until it holds, for up to twice [`WAIT`] (a loaded machine
/// may be slow).
pub async fn eventually(what: &str, condition: impl FnMut() -> bool) {
    eventually_every(Duration::from_millis(10), what, condition).await
}

/// [`eventually`], polling every `interval`.
pub async fn eventually_every(interval: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(interval).await;
    }
}

/// Panics in this process since [`count_panics`] was first called.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic in this process from now on (and still prints it). For test binaries
/// that hold no test that panics on purpose.
pub fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

/// How many panics [`count_panics`] has counted.
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// Fails the test if anything in the process panicked since [`count_panics`].
pub fn assert_no_panic() {
    assert_eq!(panics(), 0, "the server panicked (see the test output)");
}

/// A raw TCP connection that has completed the WebSocket handshake (offering `wamp`): the
/// test writes exact frame bytes to it. The WELCOME is left unread.
pub async fn raw_ws(addr: SocketAddr) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: wamp\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // Read the response head byte by byte, so nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(WAIT, s.read(&mut b))
            .await
            .expect("handshake response")
            .unwrap();
        assert_eq!(n, 1, "connection ended during the handshake");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// A masked client frame: `first` is the FIN/RSV/opcode byte; the payload is masked with a
/// zero key (so the bytes on the wire are the payload itself).
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Reads one server frame (unmasked) from a raw connection: (opcode, payload).
pub async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    tokio::time::timeout(WAIT, s.read_exact(&mut head))
        .await
        .expect("timed out reading a frame")
        .ok()?;
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.ok()?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).await.ok()?;
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.ok()?;
    Some((head[0] & 0x0f, payload))
}

/// Reads frames from a raw connection until the server's close frame: its code and reason.
pub async fn read_close(s: &mut TcpStream) -> (u16, String) {
    loop {
        let (opcode, payload) = read_frame(s)
            .await
            .expect("the connection ended without a close frame");
        if opcode == 8 {
            assert!(payload.len() >= 2, "close frame without a code");
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            return (code, String::from_utf8_lossy(&payload[2..]).to_string());
        }
    }
}
