//! A small server that does WAMP-CRA as clj-wamp 1.0.2's `server.clj` does (research notes
//! 2.2, 2.3 and the vector of 2.6(a)), written over raw tokio-tungstenite and serde_json: an
//! opaque challenge `base64(HMAC(key = secret + "-" + millis + "-" + sessId, msg = authKey))`,
//! the signature expected as `HMAC(key = challenge, msg = secret)`, and the permission-map
//! form of the `auth` result. It is not this project's router.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as Ws;

/// The session id of the research notes' example, 2.6(a).
pub const SESSION: &str = "1372019248579-1";
/// `currentTimeMillis` of that example (fixed here so the challenge is the documented one).
pub const MILLIS: u64 = 1372019250000;
/// The only user: `guest` / `secret-password`.
pub const KEY: &str = "guest";
pub const SECRET: &str = "secret-password";
/// The challenge clj-wamp sends `guest` in that session (2.6(a)).
pub const CHALLENGE: &str = "I2R09HygXn4ky+TyS1l2Qy38wF1HESXEg95CiuJN2y4=";
/// The signature clj-wamp accepts for it: HMAC(key = challenge, msg = secret).
pub const CLJ_SIGNATURE: &str = "Brffj/w0A5QnK0Qn2zTMTbIplXajBpBMq6XUC+26ZpQ=";
/// The standard-order signature HMAC(key = secret, msg = challenge), which clj-wamp refuses.
pub const STANDARD_SIGNATURE: &str = "oYYC0wTkCQBgm86d0NpG/x6dINlfPOoOq2BUQsUfkIs=";

pub const ECHO: &str = "http://wamptutorial/rpc#echo";
pub const PING: &str = "http://wamptutorial/rpc#ping";
pub const CHAT: &str = "http://wamptutorial/event#chat";

/// The `auth` result of the template's `websocket.clj` (2.6(a)), in clj-wamp's map form.
pub fn permissions() -> Value {
    json!({
        "rpc": {ECHO: true, "http://wamptutorial/rpc#throw": true},
        "subscribe": {CHAT: true},
        "publish": {CHAT: true}
    })
}

/// base64(HMAC-SHA256(key, message)).
fn hmac(key: &str, message: &str) -> String {
    wamp_proto::cra::sign(key, message)
}

/// The server; it records every `auth` signature it receives.
pub struct CljServer {
    pub addr: SocketAddr,
    pub signatures: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl CljServer {
    pub async fn start() -> CljServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let signatures = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let signatures = signatures.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(session(stream, signatures.clone()));
                }
            }
        });
        CljServer {
            addr,
            signatures,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for CljServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(stream: tokio::net::TcpStream, signatures: Arc<Mutex<Vec<String>>>) {
    #[allow(clippy::result_large_err)]
    let select_wamp = |_: &Request, mut response: Response| {
        response
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("wamp"));
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, select_wamp).await else {
        return;
    };
    let welcome = json!([0, SESSION, 1, "clj-wamp/1.0.2"]).to_string();
    if ws.send(Ws::text(welcome)).await.is_err() {
        return;
    }
    // (auth key, challenge) once authreq was called; true once auth succeeded.
    let mut pending: Option<(String, String)> = None;
    let mut authenticated = false;
    while let Some(Ok(frame)) = ws.next().await {
        let Ws::Text(text) = frame else { continue };
        let Ok(Value::Array(msg)) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if msg.first() != Some(&json!(2)) {
            continue; // only CALLs matter here
        }
        let id = msg.get(1).cloned().unwrap_or(Value::Null);
        let proc_uri = msg.get(2).and_then(Value::as_str).unwrap_or("");
        let args = &msg[3.min(msg.len())..];
        let error = |uri: &str, desc: &str| json!([4, id, uri, desc]);
        let reply = match proc_uri {
            "http://api.wamp.ws/procedure#authreq" => match args.first().and_then(Value::as_str) {
                Some(KEY) => {
                    let challenge = hmac(&format!("{SECRET}-{MILLIS}-{SESSION}"), KEY);
                    pending = Some((KEY.to_string(), challenge.clone()));
                    json!([3, id, challenge])
                }
                _ => error(
                    "http://api.wamp.ws/error#no-such-authkey",
                    "authentication key does not exist",
                ),
            },
            "http://api.wamp.ws/procedure#auth" => {
                let signature = args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                signatures.lock().unwrap().push(signature.clone());
                match pending.take() {
                    None => error(
                        "http://api.wamp.ws/error#no-authentication-requested",
                        "no authentication previously requested",
                    ),
                    // clj-wamp: (hmac-sha-256 challenge auth-secret), key and message swapped.
                    Some((_, challenge)) if signature == hmac(&challenge, SECRET) => {
                        authenticated = true;
                        json!([3, id, permissions()])
                    }
                    Some(_) => error(
                        "http://api.wamp.ws/error#invalid-signature",
                        "signature for authentication request is invalid",
                    ),
                }
            }
            ECHO if authenticated => json!([3, id, args.first().cloned().unwrap_or(Value::Null)]),
            _ => error("http://api.wamp.ws/error#unauthorized", "unauthorized"),
        };
        if ws.send(Ws::text(reply.to_string())).await.is_err() {
            return;
        }
    }
}
