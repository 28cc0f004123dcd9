//! The RPC proxy: a CALL to a configured URI is POSTed to an HTTP backend as
//! `{"session", "authkey", "procedure", "args"}`, and its `{"result"}` or `{"error"}` answer
//! becomes the CALLRESULT or CALLERROR (docs/PROTOCOL.md section 10).

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{debug, warn};
use wamp_server::{CallContext, CallError, CallResult};

use super::config::ProxyPlan;

/// The HTTP client settings every backend shares: rustls, pooled and kept-alive
/// connections.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
}

/// One backend: where its calls go, and how long it has to answer.
#[derive(Debug, Clone)]
pub struct Backend {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    headers: HeaderMap,
    /// The largest answer read from the backend.
    max_body: usize,
}

/// A backend's application error.
#[derive(Debug, Deserialize)]
struct BackendError {
    uri: String,
    #[serde(default)]
    desc: String,
    details: Option<Value>,
}

impl Backend {
    /// A backend from its configuration, sharing `client`'s connection pool (unless it has
    /// its own client, for its `ca_file`).
    pub fn new(client: reqwest::Client, plan: &ProxyPlan, max_body: usize) -> Backend {
        Backend {
            client: plan.client.clone().unwrap_or(client),
            url: plan.url.clone(),
            timeout: plan.timeout,
            headers: plan.headers.clone(),
            max_body,
        }
    }

    /// Answers one call by asking the backend.
    pub async fn call(&self, ctx: CallContext, args: Vec<Value>) -> CallResult {
        let body = json!({
            "session": &*ctx.session_id,
            "authkey": ctx.auth_key.as_deref(),
            "procedure": &*ctx.procedure,
            "args": args,
        });
        let fail = |cause: String| {
            warn!(procedure = %ctx.procedure, url = %self.url, %cause, "RPC backend failed");
            CallError::internal(cause)
        };
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .timeout(self.timeout)
            .json(&body);
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(fail(self.describe(&e))),
        };
        let status = response.status();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > self.max_body {
                        return Err(fail(format!(
                            "the backend's answer is larger than {} bytes",
                            self.max_body
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(fail(self.describe(&e))),
            }
        }
        if !status.is_success() {
            return Err(fail(format!("the backend answered HTTP {status}")));
        }
        let answer: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return Err(fail(format!("the backend's answer is not JSON ({e})"))),
        };
        debug!(procedure = %ctx.procedure, %status, "RPC backend answered");
        let Value::Object(mut answer) = answer else {
            return Err(fail(
                "the backend's answer is not an object with `result` or `error`".into(),
            ));
        };
        if let Some(error) = answer.remove("error") {
            return match serde_json::from_value::<BackendError>(error) {
                Ok(e) => {
                    let mut err = CallError::new(e.uri, e.desc);
                    if let Some(details) = e.details {
                        err = err.with_details(details);
                    }
                    Err(err)
                }
                Err(e) => Err(fail(format!(
                    "the backend's `error` is not {{\"uri\", \"desc\", \"details\"?}} ({e})"
                ))),
            };
        }
        match answer.remove("result") {
            Some(result) => Ok(result),
            None => Err(fail(
                "the backend's answer is not an object with `result` or `error`".into(),
            )),
        }
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!("the backend did not answer within {:?}", self.timeout)
        } else if let Some(tls) = tls_cause(e) {
            tls
        } else if e.is_connect() {
            "the backend is unreachable (connection failed)".to_string()
        } else {
            format!("the request to the backend failed ({e})")
        }
    }
}

/// What went wrong in the TLS handshake with an https backend, if that is why `e` failed
/// (rustls's error sits inside `io::Error`s in the chain, whose `source` skips them).
#[cfg(feature = "tls")]
fn tls_cause(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // io::Errors may nest (hyper-util wraps tokio-rustls's).
        let mut inner: &(dyn std::error::Error + 'static) = s;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = wrapped;
        }
        let rustls_error = inner.downcast_ref::<rustls::Error>();
        match rustls_error {
            Some(rustls::Error::InvalidCertificate(why)) => {
                return Some(format!(
                    "the backend's TLS certificate is not accepted ({why:?}); a backend \
                     signed by a private CA needs `ca_file` in its [[rpc.proxy]]"
                ))
            }
            Some(other) => return Some(format!("TLS with the backend failed ({other})")),
            None => source = s.source(),
        }
    }
    None
}

#[cfg(not(feature = "tls"))]
fn tls_cause(_: &reqwest::Error) -> Option<String> {
    None
}
