//! The standalone router as users run it: the real `wamp-server` binary started with real
//! configuration files, driven over real HTTP (publish API) and WebSocket, answering calls
//! through a real backend HTTP server (RPC proxy); plus procedure prefixes at the wire level.

mod binary_support;
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use binary_support::{after, assert_no_panic, config_command, ConfigFile, BIN};
use common::{Client, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wamp_proto::cra;
use wamp_server::{CallError, Router};

const API_KEY: &str = "test-key-0123456789abcdef";
const AUTHREQ: &str = "http://api.wamp.ws/procedure#authreq";
const AUTH: &str = "http://api.wamp.ws/procedure#auth";
const CHAT: &str = "http://wamptutorial/event#chat";

/// The binary, running.
struct Running {
    child: Child,
    _file: ConfigFile,
    ws: String,
    api: Option<String>,
    /// The `/metrics` URL of the listening line, if metrics are served.
    metrics: Option<String>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Runs the binary on `file` to completion: its exit code, stdout and stderr.
async fn run_to_end(
    file: &ConfigFile,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let (code, out, err) = binary_support::run_to_end(config_command(&file.0, args, env)).await;
    (code.unwrap_or(-1), out, err)
}

impl Running {
    async fn start(text: &str) -> Running {
        Running::start_with("toml", text, &[], &[]).await
    }

    async fn start_with(ext: &str, text: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
        let file = ConfigFile::new(ext, text);
        let started = binary_support::start(config_command(&file.0, args, env)).await;
        let (child, line, stderr) = (started.child, started.line, started.stderr);
        let ws = format!("ws://{}", after(&line, "WAMP ws://").unwrap());
        let api = after(&line, "API http://").map(|a| format!("http://{a}"));
        let metrics = after(&line, "metrics http://").map(|a| format!("http://{a}"));
        Running {
            child,
            _file: file,
            ws,
            api,
            metrics,
            stderr,
            http: http_client(),
        }
    }

    async fn client(&self) -> Client {
        Client::connect(&self.ws).await
    }

    fn api(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.api.as_deref().expect("the API is configured")
        )
    }

    /// POSTs JSON to the API with the right key: the status and the JSON answer.
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_raw(path, Some(API_KEY), body.to_string()).await
    }

    async fn post_raw(&self, path: &str, key: Option<&str>, body: String) -> (StatusCode, Value) {
        let mut req = self.http.post(self.api(path)).body(body);
        if let Some(key) = key {
            req = req.header("X-API-Key", key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn info(&self) -> Value {
        let resp = self
            .http
            .get(self.api("info"))
            .header("X-API-Key", API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json::<Value>().await.unwrap()["result"].clone()
    }

    /// Polls `/api/info` until `topic` has `n` subscribers (SUBSCRIBE has no reply).
    async fn wait_subscribers(&self, topic: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = self.info().await;
            let count = info["topics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["uri"] == topic)
                .map_or(0, |t| t["subscribers"].as_u64().unwrap());
            if count == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{topic} never had {n} subscribers: {info}"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls `/api/info` until `n` sessions are open.
    async fn wait_sessions(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = self.info().await;
            if info["sessions"] == n {
                return;
            }
            assert!(Instant::now() < deadline, "never {n} sessions: {info}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, then the exit code; asserts the log shows no panic.
    async fn stop(self) -> i32 {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        self.stop_after_signal().await
    }

    /// The exit code after a SIGTERM already sent; asserts the log shows no panic.
    async fn stop_after_signal(mut self) -> i32 {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the binary did not stop after SIGTERM")
            .unwrap();
        self.assert_no_panic();
        status.code().unwrap_or(-1)
    }

    fn assert_no_panic(&self) {
        assert_no_panic(&self.stderr);
    }
}

fn api_section() -> String {
    format!("[api]\nbind = \"127.0.0.1:0\"\nkey = \"{API_KEY}\"\n")
}

const CHAT_FILE: &str = r#"
[server]
port = 0
ident = "my-router/1"
[prefixes]
event = "http://wamptutorial/event#"
[[topics]]
uri = "event:chat"
"#;

// ---------------------------------------------------------------- config validation

#[tokio::test]
async fn check_accepts_the_example_file() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/router.toml"
    ))
    .unwrap();
    let file = ConfigFile::new("toml", &text);
    let (code, out, err) = run_to_end(&file, &["--check"], &[("WAMP_API_KEY", API_KEY)]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the configuration is valid"), "{out}");
    // Without the API key's variable the same file is refused, naming it.
    let (code, _, err) = run_to_end(&file, &["--check"], &[]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("api.key_env") && err.contains("WAMP_API_KEY"),
        "{err}"
    );
}

/// Runs `--check` on a file and returns the one line it printed; asserts the exit code 2.
async fn refused(ext: &str, text: &str) -> (String, String) {
    let file = ConfigFile::new(ext, text);
    let (code, out, err) = run_to_end(&file, &["--check"], &[]).await;
    assert_eq!(code, 2, "exit code for {text}: out {out} err {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    (err.trim_end().to_string(), file.0.display().to_string())
}

#[tokio::test]
async fn config_errors_are_one_line_with_file_line_and_key() {
    let (e, f) = refused("toml", "[server]\nport = 0\nprot = 1\n").await;
    assert!(
        e.starts_with(&format!("error: {f}:3: server.prot: unknown field `prot`")),
        "{e}"
    );

    let (e, f) = refused("toml", "[server]\n\nport = \"eighty\"\n").await;
    assert!(
        e.starts_with(&format!(
            "error: {f}:3: server.port: invalid type: string \"eighty\""
        )),
        "{e}"
    );

    let (e, f) = refused(
        "toml",
        "[auth]\n[[auth.users]]\nkey = \"a\"\nsecret = \"x\"\n[[auth.users]]\nkey = \"b\"\nsecret_env = \"WAMP_TEST_UNSET_SECRET\"\n",
    )
    .await;
    assert_eq!(
        e,
        format!(
            "error: {f}:7: auth.users[1].secret_env: the environment variable WAMP_TEST_UNSET_SECRET \
             is not set (export it before starting the router, or fix the name)"
        )
    );

    let (e, f) = refused("toml", "[[rpc.proxy]]\nuri = \"x\"\nurl = \"ftp://h/\"\n").await;
    assert!(
        e.starts_with(&format!(
            "error: {f}:3: rpc.proxy[0].url: \"ftp://h/\" is not an http"
        )),
        "{e}"
    );

    let (e, f) = refused("toml", "[server]\nallowed_origins = [\"localhost:3000\"]\n").await;
    assert!(
        e.starts_with(&format!(
            "error: {f}:2: server.allowed_origins: \"localhost:3000\" is not an origin"
        )),
        "{e}"
    );

    let (e, f) = refused("toml", "[[topics]]\nuri = \"x\"\nsubscribe = \"maybe\"\n").await;
    assert!(
        e.starts_with(&format!("error: {f}:3: topics[0].subscribe: invalid value")),
        "{e}"
    );

    let (e, f) = refused(
        "json",
        "{\"server\": {\"port\": 0},\n \"api\": {\"kee\": \"x\"}}",
    )
    .await;
    assert!(
        e.starts_with(&format!("error: {f}:2: kee: unknown field `kee`")),
        "{e}"
    );

    let (e, f) = refused("json", "{\"server\": {\n  \"port\": true}}").await;
    assert!(
        e.starts_with(&format!("error: {f}:2: port: invalid type: boolean `true`")),
        "{e}"
    );

    // A file that does not exist says so.
    let file = ConfigFile::new("toml", "");
    let missing = file.0.with_extension("nothere.toml");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&missing)
        .arg("--check")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot read the configuration file"), "{err}");
}

#[tokio::test]
async fn flag_beats_env_beats_file() {
    // A port that is taken: whoever's value is used for it, the start fails.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let text = format!("[server]\nport = {port}\n");
    let file = ConfigFile::new("toml", &text);
    let (code, _, err) = run_to_end(&file, &[], &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot listen on 127.0.0.1:"), "{err}");
    // The environment beats the file...
    let r = Running::start_with("toml", &text, &[], &[("WAMP_PORT", "0")]).await;
    assert_ne!(r.ws, format!("ws://127.0.0.1:{port}/ws"));
    assert_eq!(r.stop().await, 0);
    // ...and the flag beats the environment.
    let r = Running::start_with("toml", &text, &["--port", "0"], &[("WAMP_PORT", &port)]).await;
    let mut c = r.client().await;
    c.send_json(json!([1, "x", "http://x/"])).await;
    assert_eq!(r.stop().await, 0);
}

// ---------------------------------------------------------------- the publish API

#[tokio::test]
async fn publish_api_reaches_websocket_subscribers() {
    let r = Running::start(&format!(
        "{CHAT_FILE}{}max_body_size = 256\n",
        api_section()
    ))
    .await;
    let mut a = r.client().await;
    let mut b = r.client().await;
    assert_eq!(a.welcome[3], "my-router/1");
    a.send_json(json!([5, "event:chat"])).await;
    b.send_json(json!([5, CHAT])).await;
    r.wait_subscribers(CHAT, 2).await;

    // To every subscriber; the topic as a CURIE of the default prefixes.
    let (status, body) = r
        .post("publish", json!({"topic": "event:chat", "event": {"m": 1}}))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": {"recipients": 2}}))
    );
    assert_eq!(a.recv().await, json!([8, CHAT, {"m": 1}]));
    assert_eq!(b.recv().await, json!([8, CHAT, {"m": 1}]));

    // exclude, eligible, and both: (subscribers ∩ eligible) − exclude.
    let (status, body) = r
        .post(
            "publish",
            json!({"topic": CHAT, "event": 2, "exclude": [&a.session_id]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": {"recipients": 1}}))
    );
    let (_, body) = r
        .post(
            "publish",
            json!({"topic": CHAT, "event": 3, "eligible": [&a.session_id, "nobody"]}),
        )
        .await;
    assert_eq!(body, json!({"result": {"recipients": 1}}));
    let (_, body) = r
        .post(
            "publish",
            json!({"topic": CHAT, "event": 4, "eligible": [&a.session_id, &b.session_id], "exclude": [&b.session_id]}),
        )
        .await;
    assert_eq!(body, json!({"result": {"recipients": 1}}));
    let (_, body) = r
        .post("publish", json!({"topic": "http://other/", "event": 5}))
        .await;
    assert_eq!(body, json!({"result": {"recipients": 0}}));
    r.post("publish", json!({"topic": CHAT, "event": "end"}))
        .await;
    // Each client's events in order: what it was not meant to get never came.
    assert_eq!(a.recv().await, json!([8, CHAT, 3]));
    assert_eq!(a.recv().await, json!([8, CHAT, 4]));
    assert_eq!(a.recv().await, json!([8, CHAT, "end"]));
    assert_eq!(b.recv().await, json!([8, CHAT, 2]));
    assert_eq!(b.recv().await, json!([8, CHAT, "end"]));

    // Bad bodies: 400 with a message that says what is wrong.
    for (body, says) in [
        ("not json", "expected"),
        ("{\"topic\": \"x\"}", "missing field `event`"),
        (
            "{\"topic\": \"x\", \"event\": 1, \"to\": []}",
            "unknown field `to`",
        ),
        ("{\"topic\": 1, \"event\": 1}", "invalid type"),
        ("{\"topic\": \"\", \"event\": 1}", "`topic` is empty"),
    ] {
        let (status, answer) = r.post_raw("publish", Some(API_KEY), body.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"]["code"], "bad_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }

    // The size limit at its bound: 256 bytes pass, 257 do not.
    let empty = json!({"topic": CHAT, "event": ""}).to_string().len();
    let pad = |n: usize| "x".repeat(n - empty);
    let sized = |n: usize| json!({"topic": CHAT, "event": pad(n)}).to_string();
    assert_eq!(sized(256).len(), 256);
    let (status, _) = r.post_raw("publish", Some(API_KEY), sized(256)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = r.post_raw("publish", Some(API_KEY), sized(257)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"]["code"], "payload_too_large");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("256 bytes"));

    // Keys: missing or wrong is 401, and nothing is published.
    for key in [None, Some("wrong"), Some("test-key-0123456789abcdeF")] {
        let (status, answer) = r
            .post_raw(
                "publish",
                key,
                json!({"topic": CHAT, "event": "no"}).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(answer["error"]["code"], "unauthorized");
    }
    let resp = r.http.get(r.api("info")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = r.http.get(r.api("nothing")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    let resp = r.http.get(r.api("publish")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
    r.post("publish", json!({"topic": CHAT, "event": "after"}))
        .await;
    assert_eq!(b.recv().await, json!([8, CHAT, pad(256)]));
    assert_eq!(b.recv().await, json!([8, CHAT, "after"]));
    assert_eq!(a.recv().await, json!([8, CHAT, pad(256)]));
    assert_eq!(a.recv().await, json!([8, CHAT, "after"]));

    // Info: version, sessions, topics.
    let info = r.info().await;
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["ident"], "my-router/1");
    assert_eq!(info["sessions"], 2);
    assert_eq!(info["topics"], json!([{"uri": CHAT, "subscribers": 2}]));

    // Close: a session by id, with a code and reason.
    let (status, body) = r
        .post(
            "close",
            json!({"session": &a.session_id, "code": 4001, "reason": "bye"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": {"closed": true}}))
    );
    assert_eq!(a.expect_close().await, (4001, "bye".to_string()));
    let (status, body) = r.post("close", json!({"session": "nobody"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "no_such_session");
    let (status, _) = r
        .post("close", json!({"session": &b.session_id, "code": 1001}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    r.wait_subscribers(CHAT, 1).await;
    assert_eq!(r.stop().await, 0);
}

#[tokio::test]
async fn a_json_file_with_limits_and_its_own_path() {
    let text = json!({
        "server": {"port": 0, "path": "/wamp", "max_connections": 1, "max_message_size": 64,
                   "allowed_origins": ["http://good.example"]},
        "topics": [{"uri": "*"}],
        "api": {"bind": "127.0.0.1:0", "key": API_KEY},
    })
    .to_string();
    let r = Running::start_with("json", &text, &[], &[]).await;
    assert!(r.ws.ends_with("/wamp"), "{}", r.ws);
    // Only the listed origins (and clients that send none).
    let with_origin = |origin: &str| {
        let mut req = r.ws.as_str().into_client_request().unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
        req
    };
    let err = tokio_tungstenite::connect_async(with_origin("http://evil.example"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let (good, response) = tokio_tungstenite::connect_async(with_origin("http://good.example"))
        .await
        .unwrap();
    // The endpoint's upgrades are taken before axum: tungstenite's 101 has no Date header
    // (hyper's has).
    assert!(response.headers().get("date").is_none(), "{response:?}");
    drop(good);
    r.wait_sessions(0).await;
    let mut c = r.client().await;
    c.send_json(json!([5, "http://any/topic"])).await;
    r.wait_subscribers("http://any/topic", 1).await;
    // The limit of one connection: the second is refused with 503.
    let err = tokio_tungstenite::connect_async(r.ws.as_str())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    let (_, body) = r
        .post(
            "publish",
            json!({"topic": "http://any/topic", "event": null}),
        )
        .await;
    assert_eq!(body, json!({"result": {"recipients": 1}}));
    assert_eq!(c.recv().await, json!([8, "http://any/topic", null]));
    // The message size limit from the file: 64 bytes pass, 65 close the session with 1009.
    let call = |n: usize| {
        let empty = json!([2, "c", "http://x/", ""]).to_string().len();
        json!([2, "c", "http://x/", "y".repeat(n - empty)]).to_string()
    };
    c.send(&call(64)).await;
    assert_eq!(c.recv().await[2], "http://api.wamp.ws/error#notfound");
    c.send(&call(65)).await;
    assert_eq!(c.expect_close().await.0, 1009);
    // SIGTERM closes the session and exits 0.
    let code = r.stop().await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn the_api_answers_503_while_shutting_down() {
    // A call that the backend never answers keeps the router in its grace period.
    let backend = Backend::start().await;
    let text = format!(
        "[server]\nport = 0\nshutdown_grace = 30\n[[rpc.proxy]]\nuri = \"http://x/rpc#hang\"\nurl = \"{}/hang\"\ntimeout = 60\n{}",
        backend.url,
        api_section()
    );
    let r = Running::start(&text).await;
    let mut c = r.client().await;
    c.send_json(json!([2, "h", "http://x/rpc#hang"])).await;
    backend.wait_requests(1).await;
    let pid = r.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = r.post("publish", json!({"topic": "t", "event": 1})).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["error"]["code"], "shutting_down");
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "never 503");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    r.assert_no_panic();
}

// ---------------------------------------------------------------- the RPC proxy

/// A backend HTTP server for the proxy: it records each request and answers by path.
struct Backend {
    url: String,
    requests: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
}

type Requests = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

/// Records one request to the backend and returns its JSON body.
fn record(requests: &Requests, path: &str, headers: HeaderMap, body: &str) -> Value {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    requests
        .lock()
        .unwrap()
        .push((path.to_string(), headers, value.clone()));
    value
}

impl Backend {
    async fn start() -> Backend {
        let requests = Requests::default();
        let (r1, r2, r3, r4, r5) = (
            requests.clone(),
            requests.clone(),
            requests.clone(),
            requests.clone(),
            requests.clone(),
        );
        let app = axum::Router::new()
            .route(
                "/ok",
                post(move |h: HeaderMap, b: String| async move {
                    Json(json!({"result": {"seen": record(&r1, "ok", h, &b)}}))
                }),
            )
            .route(
                "/error",
                post(move |h: HeaderMap, b: String| async move {
                    let seen = record(&r2, "error", h, &b);
                    Json(
                        json!({"error": {"uri": "http://x/error#nope", "desc": "not allowed",
                        "details": {"procedure": seen["procedure"]}}}),
                    )
                }),
            )
            .route(
                "/hang",
                post(move |h: HeaderMap, b: String| async move {
                    record(&r3, "hang", h, &b);
                    std::future::pending::<()>().await;
                    "never"
                }),
            )
            .route(
                "/500",
                post(move |h: HeaderMap, b: String| async move {
                    record(&r4, "500", h, &b);
                    (StatusCode::INTERNAL_SERVER_ERROR, "oops")
                }),
            )
            .route(
                "/garbage",
                post(move |h: HeaderMap, b: String| async move {
                    record(&r5, "garbage", h, &b);
                    "<html>not json</html>"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Backend {
            url: format!("http://{addr}"),
            requests,
        }
    }

    async fn wait_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.requests.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "the backend never got {n} requests"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The port of a listener that was closed again: nothing listens there.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn rpc_proxy_against_a_real_backend() {
    let backend = Backend::start().await;
    let u = &backend.url;
    let down = closed_port();
    let text = format!(
        r#"
[server]
port = 0
[prefixes]
rpc = "http://example.com/rpc#"
[auth]
timeout = 0
failure_delay = 0
[auth.unauthenticated]
rpc = [{{uri = "http://example.com/", prefix = true, call = true}}]
[[auth.users]]
key = "alice"
secret = "alice-secret"
permissions = {{ rpc = [{{uri = "http://example.com/", prefix = true, call = true}}] }}
[[rpc.proxy]]
uri = "rpc:ok"
url = "{u}/ok"
headers = {{ X-Backend-Token = "t0k" }}
headers_env = {{ Authorization = "WAMP_TEST_BACKEND_AUTH" }}
[[rpc.proxy]]
uri = "rpc:err.*"
url = "{u}/error"
[[rpc.proxy]]
uri = "rpc:slow"
url = "{u}/hang"
timeout = 0.3
[[rpc.proxy]]
uri = "rpc:500"
url = "{u}/500"
[[rpc.proxy]]
uri = "rpc:garbage"
url = "{u}/garbage"
[[rpc.proxy]]
uri = "rpc:down"
url = "http://127.0.0.1:{down}/rpc"
"#
    );
    let r = Running::start_with(
        "toml",
        &text,
        &[],
        &[("WAMP_TEST_BACKEND_AUTH", "Bearer b")],
    )
    .await;
    let mut c = r.client().await;

    // result: the request carries session, authkey, the resolved procedure and args.
    let reply = c.call("1", "rpc:ok", &[json!(1), json!({"a": [2]})]).await;
    let seen = json!({"session": &c.session_id, "authkey": null, "procedure": "http://example.com/rpc#ok", "args": [1, {"a": [2]}]});
    assert_eq!(reply, json!([3, "1", {"seen": seen}]));
    {
        let requests = backend.requests.lock().unwrap();
        let (_, headers, _) = &requests[0];
        assert_eq!(headers["x-backend-token"], "t0k");
        assert_eq!(headers["authorization"], "Bearer b");
        assert_eq!(headers["content-type"], "application/json");
    }
    // No arguments is an empty list.
    let reply = c.call("1b", "http://example.com/rpc#ok", &[]).await;
    assert_eq!(reply[2]["seen"]["args"], json!([]));

    // error with details, through a prefix entry: the called URI reaches the backend.
    let reply = c.call("2", "rpc:err.deep", &[]).await;
    assert_eq!(
        reply,
        json!([4, "2", "http://x/error#nope", "not allowed", {"procedure": "http://example.com/rpc#err.deep"}])
    );

    // Backend failures: #internal with the cause as details.
    let internal = "http://api.wamp.ws/error#internal";
    for (id, proc_, cause) in [
        ("3", "rpc:slow", "the backend did not answer within 300ms"),
        (
            "4",
            "rpc:500",
            "the backend answered HTTP 500 Internal Server Error",
        ),
        ("5", "rpc:garbage", "the backend's answer is not JSON"),
        ("6", "rpc:down", "the backend is unreachable"),
    ] {
        let reply = c.call(id, proc_, &[]).await;
        assert_eq!(reply[0], 4, "{reply}");
        assert_eq!(reply[1], id);
        assert_eq!(reply[2], internal, "{reply}");
        let details = reply[4].as_str().unwrap_or_else(|| panic!("{reply}"));
        assert!(details.starts_with(cause), "{proc_}: {details}");
    }
    // A procedure no entry covers is not found, and the backend never hears of it.
    let before = backend.requests.lock().unwrap().len();
    let reply = c.call("7", "rpc:other", &[]).await;
    assert_eq!(reply[2], "http://api.wamp.ws/error#notfound", "{reply}");
    assert_eq!(backend.requests.lock().unwrap().len(), before);

    // After authenticating, the backend learns the auth key.
    let ch = c.call("r", AUTHREQ, &[json!("alice"), Value::Null]).await;
    let sig = cra::client_signature(ch[2].as_str().unwrap(), "alice-secret").unwrap();
    assert_eq!(c.call("a", AUTH, &[json!(sig)]).await[0], 3);
    let reply = c.call("8", "rpc:ok", &[]).await;
    assert_eq!(reply[2]["seen"]["authkey"], "alice");

    // The log names the backend's status.
    assert_eq!(r.stop().await, 0);
}

/// A backend on bare TCP, to see what the proxy does with its connections: it counts the
/// connections it accepts and the ones open, records each request's path, and answers by
/// path: `/keep` a small answer on a kept-alive connection, `/close` the same with
/// `Connection: close`, `/drop` closes without answering, `/big` and `/chunked` answers
/// larger than the router takes, `/gather` waits until `GATHER` requests are in, then
/// answers them all. `close_idle` closes every connection waiting for its next request.
struct RawBackend {
    port: u16,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    close: tokio::sync::watch::Sender<u64>,
}

/// How many `/gather` requests the raw backend waits for before answering.
const GATHER: usize = 8;

impl RawBackend {
    async fn start() -> RawBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (close, closed) = tokio::sync::watch::channel(0u64);
        let gather = Arc::new(tokio::sync::Barrier::new(GATHER));
        let (a, o, p) = (accepted.clone(), open.clone(), paths.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let (o, p, mut closed, gather) =
                    (o.clone(), p.clone(), closed.clone(), gather.clone());
                closed.mark_unchanged();
                tokio::spawn(async move {
                    raw_connection(tcp, &p, &mut closed, &gather).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        RawBackend {
            port,
            accepted,
            open,
            paths,
            close,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the idle connections and waits until none is open.
    async fn close_idle(&self) {
        self.close.send_modify(|n| *n += 1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "the backend's connections stay open"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Serves one connection of the raw backend until it closes.
async fn raw_connection(
    tcp: tokio::net::TcpStream,
    paths: &Mutex<Vec<String>>,
    closed: &mut tokio::sync::watch::Receiver<u64>,
    gather: &tokio::sync::Barrier,
) {
    use tokio::io::AsyncWriteExt;
    let mut io = BufReader::new(tcp);
    loop {
        // The request line and headers, or the end.
        let mut line = String::new();
        let read = tokio::select! {
            r = io.read_line(&mut line) => r,
            _ = closed.changed() => return,
        };
        if !matches!(read, Ok(n) if n > 0) {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or_default().to_string();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if io.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        io.read_exact(&mut body).await.unwrap();
        paths.lock().unwrap().push(path.clone());
        let answer = |extra: &str, body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
                body.len()
            )
        };
        let big = format!("{{\"result\": \"{}\"}}", "x".repeat(5000));
        let out = match path.as_str() {
            "/keep" => answer("", "{\"result\": \"kept\"}"),
            "/close" => answer("Connection: close\r\n", "{\"result\": \"closed\"}"),
            "/gather" => {
                gather.wait().await;
                answer("", "{\"result\": \"gathered\"}")
            }
            "/big" => answer("", &big),
            "/chunked" => format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
                big.len()
            ),
            // "/drop" and anything else: no answer.
            _ => return,
        };
        if io.get_mut().write_all(out.as_bytes()).await.is_err()
            || path != "/keep" && path != "/gather"
        {
            return;
        }
    }
}

#[tokio::test]
async fn rpc_proxy_keeps_connections_alive_and_recovers_from_closed_ones() {
    let backend = RawBackend::start().await;
    let mut text = String::from(
        "[server]\nport = 0\nmax_message_size = 2000\n[prefixes]\nrpc = \"http://example.com/rpc#\"\n\
         [auth]\ntimeout = 0\n[auth.unauthenticated]\n\
         rpc = [{uri = \"http://example.com/\", prefix = true, call = true}]\n",
    );
    for path in ["keep", "close", "drop", "big", "chunked", "gather"] {
        text.push_str(&format!(
            "[[rpc.proxy]]\nuri = \"rpc:{path}\"\nurl = \"{}\"\n",
            backend.url(&format!("/{path}"))
        ));
    }
    let r = Running::start_with("toml", &text, &[], &[]).await;
    let mut c = r.client().await;
    let internal = "http://api.wamp.ws/error#internal";

    // Calls one after another share one kept-alive connection.
    for i in 0..5 {
        let id = format!("k{i}");
        assert_eq!(c.call(&id, "rpc:keep", &[]).await, json!([3, id, "kept"]));
    }
    assert_eq!(backend.accepted(), 1);

    // Calls at the same time each get a connection (the backend answers none of them until
    // all are in); afterwards they are all kept.
    for i in 0..GATHER {
        c.send_json(json!([2, format!("g{i}"), "rpc:gather"])).await;
    }
    let mut ids = Vec::new();
    for _ in 0..GATHER {
        let reply = c.recv().await;
        assert_eq!(reply[0], 3, "{reply}");
        assert_eq!(reply[2], "gathered");
        ids.push(reply[1].as_str().unwrap().to_string());
    }
    ids.sort();
    assert_eq!(
        ids,
        (0..GATHER).map(|i| format!("g{i}")).collect::<Vec<_>>()
    );
    assert_eq!(backend.accepted(), GATHER);
    for i in 0..GATHER {
        let id = format!("k2{i}");
        assert_eq!(c.call(&id, "rpc:keep", &[]).await, json!([3, id, "kept"]));
    }
    assert_eq!(backend.accepted(), GATHER);

    // The backend closes its idle connections (as its keep-alive timeout would): the next
    // call still succeeds, on a new connection, and is sent once.
    backend.close_idle().await;
    let sent = backend.paths.lock().unwrap().len();
    assert_eq!(
        c.call("k3", "rpc:keep", &[]).await,
        json!([3, "k3", "kept"])
    );
    assert_eq!(backend.accepted(), GATHER + 1);
    assert_eq!(backend.paths.lock().unwrap().len(), sent + 1);

    // An answer with `Connection: close` is used, and its connection is not.
    assert_eq!(
        c.call("c1", "rpc:close", &[]).await,
        json!([3, "c1", "closed"])
    );
    assert_eq!(c.call("c2", "rpc:close", &[]).await[2], "closed");
    assert_eq!(c.call("k4", "rpc:keep", &[]).await[2], "kept");

    // A backend that closes the connection after reading the call: #internal, and the call
    // is not sent again (a POST may have done its work).
    let before = backend.paths.lock().unwrap().len();
    let reply = c.call("d", "rpc:drop", &[]).await;
    assert_eq!(reply[2], internal, "{reply}");
    assert_eq!(
        reply[4], "the backend closed the connection before it answered",
        "{reply}"
    );
    assert_eq!(backend.paths.lock().unwrap().len(), before + 1);

    // Answers over max_message_size, announced or chunked: #internal, naming the limit.
    for (id, proc_) in [("b1", "rpc:big"), ("b2", "rpc:chunked")] {
        let reply = c.call(id, proc_, &[]).await;
        assert_eq!(reply[2], internal, "{reply}");
        assert_eq!(
            reply[4], "the backend's answer is larger than 2000 bytes",
            "{proc_}: {reply}"
        );
    }
    // And the router goes on calling.
    assert_eq!(c.call("k5", "rpc:keep", &[]).await[2], "kept");
    assert_eq!(r.stop().await, 0);
}

// ---------------------------------------------------------------- auth and topic rules

#[tokio::test]
async fn salted_and_unsalted_users_from_the_file() {
    let text = r#"
[server]
port = 0
[prefixes]
rpc = "http://x/rpc#"
[auth]
timeout = 0
failure_delay = 0
[auth.anonymous]
rpc = [{ uri = "rpc:anon", call = true }]
[[auth.users]]
key = "plain"
secret_env = "WAMP_TEST_PLAIN_SECRET"
[auth.users.permissions]
rpc = [{ uri = "rpc:a", call = true }]
[[auth.users]]
key = "salty"
secret = "pepper"
salt = "NaCl"
iterations = 100
keylen = 16
[auth.users.permissions]
pubsub = [{ uri = "http://x/t/", prefix = true, pub = true, sub = false }]
"#;
    let r = Running::start_with("toml", text, &[], &[("WAMP_TEST_PLAIN_SECRET", "from-env")]).await;

    let mut c = r.client().await;
    let ch = c.call("r", AUTHREQ, &[json!("plain"), Value::Null]).await;
    let challenge: Value = serde_json::from_str(ch[2].as_str().unwrap()).unwrap();
    assert!(
        challenge.get("authextra").is_none_or(Value::is_null),
        "{challenge}"
    );
    let sig = cra::sign("from-env", ch[2].as_str().unwrap());
    let reply = c.call("a", AUTH, &[json!(sig)]).await;
    // The permissions in the file, CURIEs resolved.
    assert_eq!(
        reply,
        json!([3, "a", {"rpc": [{"uri": "http://x/rpc#a", "call": true}], "pubsub": []}])
    );

    let mut c = r.client().await;
    let ch = c.call("r", AUTHREQ, &[json!("salty"), Value::Null]).await;
    let challenge: Value = serde_json::from_str(ch[2].as_str().unwrap()).unwrap();
    assert_eq!(
        challenge["authextra"],
        json!({"salt": "NaCl", "iterations": 100, "keylen": 16})
    );
    let key = cra::derive_key("pepper", "NaCl", 100, 16);
    let reply = c
        .call(
            "a",
            AUTH,
            &[json!(cra::sign(&key, ch[2].as_str().unwrap()))],
        )
        .await;
    assert_eq!(
        reply,
        json!([3, "a", {"rpc": [], "pubsub": [{"uri": "http://x/t/", "prefix": true, "pub": true, "sub": false}]}])
    );

    // The wrong password fails, and an unknown key does not exist.
    let mut c = r.client().await;
    let ch = c.call("r", AUTHREQ, &[json!("salty"), Value::Null]).await;
    let key = cra::derive_key("salt", "NaCl", 100, 16);
    let reply = c
        .call(
            "a",
            AUTH,
            &[json!(cra::sign(&key, ch[2].as_str().unwrap()))],
        )
        .await;
    assert_eq!(reply[2], "http://api.wamp.ws/error#invalid-signature");
    let mut c = r.client().await;
    let reply = c.call("r", AUTHREQ, &[json!("nobody"), Value::Null]).await;
    assert_eq!(reply[2], "http://api.wamp.ws/error#no-such-authkey");
    // Anonymous authentication, with the permissions of [auth.anonymous].
    let mut c = r.client().await;
    assert_eq!(
        c.call("r", AUTHREQ, &[Value::Null, Value::Null]).await,
        json!([3, "r", null])
    );
    assert_eq!(
        c.call("a", AUTH, &[Value::Null]).await,
        json!([3, "a", {"rpc": [{"uri": "http://x/rpc#anon", "call": true}], "pubsub": []}])
    );
    assert_eq!(r.stop().await, 0);
}

#[tokio::test]
async fn topic_rules_with_authenticated() {
    let text = format!(
        r#"
[server]
port = 0
publisher_receives_own_events = false
[prefixes]
t = "http://x/t/"
[[topics]]
uri = "t:open"
[[topics]]
uri = "t:read-only"
publish = false
[[topics]]
uri = "t:members/*"
subscribe = "authenticated"
publish = "authenticated"
[auth]
timeout = 0
[auth.unauthenticated]
pubsub = [{{ uri = "", prefix = true, pub = true, sub = true }}]
[[auth.users]]
key = "m"
secret = "s"
permissions = {{ pubsub = [{{ uri = "", prefix = true, pub = true, sub = true }}] }}
{}"#,
        api_section()
    );
    let r = Running::start(&text).await;
    let (open, ro, members) = (
        "http://x/t/open",
        "http://x/t/read-only",
        "http://x/t/members/1",
    );
    let mut guest = r.client().await;
    let mut member = r.client().await;
    let ch = member.call("r", AUTHREQ, &[json!("m"), Value::Null]).await;
    let sig = cra::sign("s", ch[2].as_str().unwrap());
    assert_eq!(member.call("a", AUTH, &[json!(sig)]).await[0], 3);
    for c in [&mut guest, &mut member] {
        for t in [open, ro, members, "http://x/t/unlisted"] {
            c.send_json(json!([5, t])).await;
        }
    }
    r.wait_subscribers(open, 2).await;
    r.wait_subscribers(ro, 2).await;
    // Only the member could subscribe to the members' topic; nobody to a topic no rule opens.
    r.wait_subscribers(members, 1).await;
    let info = r.info().await;
    assert_eq!(info["topics"].as_array().unwrap().len(), 3, "{info}");

    // The guest's publishes: open goes through, read-only and members are dropped.
    guest.send_json(json!([7, ro, "g-ro"])).await;
    guest.send_json(json!([7, members, "g-members"])).await;
    guest.send_json(json!([7, open, "g-open"])).await;
    assert_eq!(member.recv().await, json!([8, open, "g-open"]));
    // The member publishes to the members' topic (only it subscribes: it excludes itself by
    // the router's option, so nobody receives it), then to open.
    member
        .send_json(json!([7, members, "m-members", false]))
        .await;
    assert_eq!(member.recv().await, json!([8, members, "m-members"]));
    member.send_json(json!([7, open, "m-open"])).await;
    assert_eq!(guest.recv().await, json!([8, open, "m-open"]));
    // The server may publish anywhere.
    let (_, body) = r
        .post("publish", json!({"topic": "t:read-only", "event": "srv"}))
        .await;
    assert_eq!(body, json!({"result": {"recipients": 2}}));
    assert_eq!(guest.recv().await, json!([8, ro, "srv"]));
    assert_eq!(member.recv().await, json!([8, ro, "srv"]));
    assert_eq!(r.stop().await, 0);
}

#[tokio::test]
async fn the_page_is_served_with_its_origins() {
    let text = CHAT_FILE.replace(
        "[server]\n",
        "[server]\npage = true\nallowed_origins = [\"http://file.example\"]\n",
    );
    // The flag replaces the file's list.
    let r = Running::start_with(
        "toml",
        &text,
        &["--allow-origin", "http://flag.example"],
        &[],
    )
    .await;
    let http = r.ws.replace("ws://", "http://").replace("/ws", "/");
    let page = r
        .http
        .get(&http)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<html") || page.contains("<!DOCTYPE"),
        "{page}"
    );
    let connect = |origin: String| {
        let mut req = r.ws.as_str().into_client_request().unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    // Foreign origins are refused at the handshake; the page's own and the flag's are not.
    for origin in ["http://evil.example", "http://file.example"] {
        let err = connect(origin.into()).await.unwrap_err();
        assert!(err.to_string().contains("403"), "{origin}: {err}");
    }
    let own = http.trim_end_matches('/').to_string();
    assert!(connect(own).await.is_ok());
    assert!(connect("http://flag.example".into()).await.is_ok());
    assert_eq!(r.stop().await, 0);
}

// ---------------------------------------------------------------- procedure prefixes (library)

#[tokio::test]
async fn procedure_prefixes_exact_first_then_longest() {
    let router = Router::builder()
        .default_prefix("api", "http://x/api#")
        .procedure("http://x/api#exact", |_, _| async { Ok(json!("exact")) })
        .procedure_prefix("http://x/api#", |ctx, _| async move {
            Ok(json!({"wide": &*ctx.procedure}))
        })
        .procedure_prefix("http://x/api#admin.", |ctx, _| async move {
            Err::<Value, _>(CallError::new("http://x/error#admin", &*ctx.procedure))
        })
        .build();
    assert!(!router.add_procedure_prefix("http://x/api#", |_, _| async { Ok(json!(0)) }));
    assert!(
        router.add_procedure_prefix("http://y/", |_, args: Vec<Value>| async move {
            Ok(Value::Array(args))
        })
    );
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", "api:exact", &[]).await,
        json!([3, "1", "exact"])
    );
    assert_eq!(
        c.call("2", "api:other", &[]).await,
        json!([3, "2", {"wide": "http://x/api#other"}])
    );
    assert_eq!(
        c.call("3", "api:admin.drop", &[]).await,
        json!([4, "3", "http://x/error#admin", "http://x/api#admin.drop"])
    );
    assert_eq!(
        c.call("4", "http://y/z", &[json!(1)]).await,
        json!([3, "4", [1]])
    );
    let reply = c.call("5", "http://x/apiX", &[]).await;
    assert_eq!(reply[2], "http://api.wamp.ws/error#notfound");
}

#[tokio::test]
async fn session_limits_and_the_shutdown_close_from_the_file() {
    let text = r#"
[server]
port = 0
max_subscriptions = 1
max_prefixes = 1
max_uri_length = 40
shutdown_close_code = 1001
max_pending_handshakes = 8
handshake_timeout = 5
[[topics]]
uri = "*"
"#;
    let r = Running::start(text).await;
    // One subscription, then one more closes the session with 1008.
    let mut c = r.client().await;
    c.send_json(json!([5, "http://x/a"])).await;
    c.send_json(json!([5, "http://x/b"])).await;
    assert_eq!(c.expect_close().await.0, 1008);
    // One prefix, then one more.
    let mut c = r.client().await;
    c.send_json(json!([1, "a", "http://x/a#"])).await;
    c.send_json(json!([1, "b", "http://x/b#"])).await;
    assert_eq!(c.expect_close().await.0, 1008);
    // A URI of 40 bytes passes, 41 do not.
    let mut c = r.client().await;
    let uri = |n: usize| format!("http://x/{}", "u".repeat(n - 9));
    let reply = c.call("1", &uri(40), &[]).await;
    assert_eq!(reply[2], "http://api.wamp.ws/error#notfound");
    c.send_json(json!([2, "2", uri(41)])).await;
    assert_eq!(c.expect_close().await.0, 1008);
    // SIGTERM: a close frame with the configured code.
    let mut c = r.client().await;
    let pid = r.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(
        c.expect_close().await,
        (1001, "server shutting down".to_string())
    );
    assert_eq!(r.stop_after_signal().await, 0);
}

/// `--max-connections` replaces `[server] max_connections`: with 5 in the file and 1 on the
/// command line, a second session is refused with 503; 0 in the file is refused at start.
#[tokio::test]
async fn max_connections_flag_beats_the_file() {
    let r = Running::start_with(
        "toml",
        "[server]\nport = 0\nmax_connections = 5\n",
        &["--max-connections", "1"],
        &[],
    )
    .await;
    let _first = r.client().await;
    let mut request = r.ws.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("a second session got in past --max-connections 1: {other:?}"),
    }
    let (e, f) = refused("toml", "[server]\nmax_connections = 0\n").await;
    assert_eq!(
        e,
        format!("error: {f}:2: server.max_connections: must be at least 1")
    );
}

#[tokio::test]
async fn a_bad_shutdown_close_code_is_refused() {
    let (e, f) = refused("toml", "[server]\nshutdown_close_code = 1005\n").await;
    assert!(
        e.starts_with(&format!(
            "error: {f}:2: server.shutdown_close_code: 1005 may not be sent"
        )),
        "{e}"
    );
}

// ---------------------------------------------------------------- [metrics], [cluster] keys

#[tokio::test]
async fn metrics_from_the_file_and_flag_beats_env_beats_file() {
    // From the file: the listening line shows it and it answers.
    let r = Running::start("[server]\nport = 0\n[metrics]\nbind = \"127.0.0.1:0\"\n").await;
    let line_url = r.metrics.clone().expect("a metrics listener");
    let resp = reqwest::get(&line_url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("wamp_sessions 0"));
    assert_eq!(r.stop().await, 0);

    // A taken port in the file: the start fails, naming where to change it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let text = format!("[server]\nport = 0\n[metrics]\nbind = \"{taken}\"\n");
    let file = ConfigFile::new("toml", &text);
    let (code, out, err) = run_to_end(&file, &[], &[]).await;
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.contains(&format!("error: cannot listen on {taken} for metrics"))
            && err.contains("set [metrics] bind, --metrics-bind or WAMP_METRICS_BIND"),
        "{err}"
    );
    // The environment beats the file...
    let r = Running::start_with("toml", &text, &[], &[("WAMP_METRICS_BIND", "127.0.0.1:0")]).await;
    assert_ne!(
        r.metrics.as_deref(),
        Some(&*format!("http://{taken}/metrics"))
    );
    assert_eq!(r.stop().await, 0);
    // ...and the flag beats the environment.
    let r = Running::start_with(
        "toml",
        &text,
        &["--metrics-bind", "127.0.0.1:0"],
        &[("WAMP_METRICS_BIND", &taken)],
    )
    .await;
    assert!(r.metrics.is_some());
    assert_eq!(r.stop().await, 0);
}

#[tokio::test]
async fn metrics_and_cluster_sections_refuse_bad_keys() {
    let (e, f) = refused(
        "toml",
        "[server]\nport = 0\n[metrics]\nbnid = \"127.0.0.1:0\"\n",
    )
    .await;
    assert!(
        e.starts_with(&format!(
            "error: {f}:4: metrics.bnid: unknown field `bnid`, expected `bind`"
        )),
        "{e}"
    );
    let (e, f) = refused("toml", "[metrics]\nbind = \"localhost\"\n").await;
    assert!(
        e.starts_with(&format!(
            "error: {f}:2: metrics.bind: invalid socket address"
        )),
        "{e}"
    );
    // [cluster]'s keys are checked with or without the `redis` feature.
    let (e, f) = refused("toml", "[cluster]\nredis_url = \"redis://h/\"\nredis = 1\n").await;
    assert!(
        e.starts_with(&format!(
            "error: {f}:3: cluster.redis: unknown field `redis`"
        )),
        "{e}"
    );
    // A [metrics] section without bind uses 127.0.0.1:9090; --check does not bind it.
    let file = ConfigFile::new("toml", "[server]\nport = 0\n[metrics]\n");
    let (code, out, err) = run_to_end(&file, &["--check"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the configuration is valid"), "{out}");
}

#[tokio::test]
async fn backplane_flags_are_validated() {
    let file = ConfigFile::new("toml", "[server]\nport = 0\n");
    for (args, expected) in [
        (
            vec!["--redis-queue-capacity", "0"],
            "invalid value '0' for '--redis-queue-capacity <N>': 0 would drop every cross-node event: give at least 1",
        ),
        (
            vec!["--redis-queue-capacity", "many"],
            "\"many\" is not a number of events",
        ),
        (
            vec!["--redis-heartbeat", "0"],
            "invalid value '0' for '--redis-heartbeat <DURATION>': 0 s is too short: give at least 0.01 seconds",
        ),
        (vec!["--redis-heartbeat", "9ms"], "0.009 s is too short"),
        (vec!["--redis-heartbeat", "soon"], "\"soon\" is not a duration"),
        (vec!["--node-name", ""], "is empty: give a name"),
        (vec!["--redis-prefix", ""], "is empty: give a name"),
    ] {
        let mut all = vec!["--check"];
        all.extend(args.iter().copied());
        let (code, _, err) = run_to_end(&file, &all, &[]).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // The environment's values are checked the same way.
    let (code, _, err) = run_to_end(&file, &["--check"], &[("WAMP_REDIS_HEARTBEAT", "0ms")]).await;
    assert_eq!(code, 2);
    assert!(err.contains("0 s is too short"), "{err}");
    // At the bounds they are accepted (without a Redis URL they are not used).
    let (code, _, err) = run_to_end(
        &file,
        &[
            "--check",
            "--redis-queue-capacity",
            "1",
            "--redis-heartbeat",
            "10ms",
        ],
        &[("WAMP_REDIS_HEARTBEAT", "0.01")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        run_to_end(&file, &["--check"], &[("WAMP_REDIS_HEARTBEAT", "0.01s")]).await;
    assert_eq!(code, 0, "{err}");
}
