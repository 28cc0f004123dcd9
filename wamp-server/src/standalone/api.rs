//! The HTTP API of the standalone router (docs/PROTOCOL.md section 10): `POST /api/publish`,
//! `GET /api/info` and `POST /api/close`, each with the `X-API-Key` header, on a listener of
//! its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tracing::{debug, info};
use wamp_server::Router;

/// The header that carries the API key.
pub const KEY_HEADER: &str = "x-api-key";

/// The topics that have subscribers, kept up to date by the router's subscribe hooks (the
/// router lists a topic's subscribers, not the topics).
#[derive(Debug, Default)]
pub struct TopicSet(Mutex<HashMap<String, usize>>);

impl TopicSet {
    /// A session subscribed to `topic`.
    pub fn add(&self, topic: &str) {
        *self
            .0
            .lock()
            .expect("topics lock")
            .entry(topic.to_string())
            .or_insert(0) += 1;
    }

    /// A session unsubscribed from `topic` (or closed while subscribed).
    pub fn remove(&self, topic: &str) {
        let mut topics = self.0.lock().expect("topics lock");
        if let Some(n) = topics.get_mut(topic) {
            *n -= 1;
            if *n == 0 {
                topics.remove(topic);
            }
        }
    }

    fn list(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .lock()
            .expect("topics lock")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// What the API's handlers share.
pub struct ApiState {
    /// The router the API drives.
    pub router: Router,
    /// The key requests must carry.
    pub key: String,
    /// The largest request body accepted, in bytes.
    pub max_body_size: usize,
    /// Set when the router is shutting down: requests then get 503.
    pub shutting_down: Arc<AtomicBool>,
    /// The topics that have subscribers.
    pub topics: Arc<TopicSet>,
}

/// An API error: a real HTTP status and `{"error": {"code", "message"}}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

fn ok(result: Value) -> Response {
    Json(json!({ "result": result })).into_response()
}

/// The API's routes.
pub fn app(state: ApiState) -> axum::Router {
    axum::Router::new()
        .route("/api/publish", post(publish))
        .route("/api/info", get(info))
        .route("/api/close", post(close))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint: the API has POST /api/publish, GET /api/info and POST /api/close",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "wrong method: POST /api/publish, GET /api/info, POST /api/close",
            )
        })
        .with_state(Arc::new(state))
}

impl ApiState {
    /// The key check (constant time) and the shutdown check every request passes first.
    fn admit(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(given) = headers.get(KEY_HEADER) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing X-API-Key header: send the key from the router's [api] section",
            ));
        };
        if !bool::from(given.as_bytes().ct_eq(self.key.as_bytes())) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong API key",
            ));
        }
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the router is shutting down: try again when it is back",
            ));
        }
        Ok(())
    }

    /// Reads a JSON body of at most `max_body_size` bytes.
    async fn body<T: DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<T, ApiError> {
        let too_big = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the body is larger than the limit of {} bytes (api.max_body_size)",
                    self.max_body_size
                ),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_size as u64) {
            return Err(too_big());
        }
        let bytes = axum::body::to_bytes(body, self.max_body_size)
            .await
            .map_err(|_| too_big())?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body is not what this endpoint takes: {e}"),
            )
        })
    }
}

/// `POST /api/publish`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    topic: String,
    event: Value,
    exclude: Option<Vec<String>>,
    eligible: Option<Vec<String>>,
}

async fn publish(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = s.admit(&headers) {
        return e.into_response();
    }
    let p: PublishBody = match s.body(&headers, body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if p.topic.is_empty() {
        return ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "`topic` is empty")
            .into_response();
    }
    // Delivered to (subscribers ∩ eligible) − exclude, as a PUBLISH would be.
    let n = match (p.exclude, p.eligible) {
        (None, None) => s.router.publish(&p.topic, &p.event),
        (Some(exclude), None) => s.router.publish_excluding(&p.topic, &p.event, &exclude),
        (exclude, Some(mut eligible)) => {
            if let Some(exclude) = exclude {
                eligible.retain(|id| !exclude.contains(id));
            }
            s.router.publish_to(&p.topic, &p.event, &eligible)
        }
    };
    debug!(topic = %p.topic, recipients = n, "published through the API");
    ok(json!({ "recipients": n }))
}

async fn info(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if let Err(e) = s.admit(&headers) {
        return e.into_response();
    }
    let topics: Vec<Value> = s
        .topics
        .list()
        .into_iter()
        .map(|uri| {
            let n = s.router.subscribers(&uri).len();
            json!({"uri": uri, "subscribers": n})
        })
        .collect();
    ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ident": s.router.options().server_ident,
        "sessions": s.router.session_count(),
        "topics": topics,
    }))
}

/// `POST /api/close`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    session: String,
    code: Option<u16>,
    reason: Option<String>,
}

async fn close(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = s.admit(&headers) {
        return e.into_response();
    }
    let c: CloseBody = match s.body(&headers, body).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let code = c.code.unwrap_or(1000);
    if code != 1000 && !(3000..=4999).contains(&code) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("close code {code} may not be sent: use 1000 or 3000-4999"),
        )
        .into_response();
    }
    let reason = c.reason.unwrap_or_else(|| "closed by the server".into());
    // A close frame holds at most 125 bytes: 2 for the code, 123 for the reason.
    if reason.len() > 123 {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "the reason is {} bytes long: at most 123 fit in a close frame",
                reason.len()
            ),
        )
        .into_response();
    }
    if !s.router.close_session(&c.session, code, &reason) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_session",
            format!("no session {:?} is open", c.session),
        )
        .into_response();
    }
    info!(session = %c.session, code, %reason, "session closed through the API");
    ok(json!({ "closed": true }))
}
