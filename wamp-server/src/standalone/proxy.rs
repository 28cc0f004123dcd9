//! The RPC proxy: a CALL to a configured URI is POSTed to an HTTP backend as
//! `{"session", "authkey", "procedure", "args"}`, and its `{"result"}` or `{"error"}` answer
//! becomes the CALLRESULT or CALLERROR (docs/PROTOCOL.md section 10).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::Uri;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, warn};
use url::Url;
use wamp_server::{CallContext, CallError, CallResult};

use super::config::ProxyPlan;
use super::http_pool::{Failure, Origin, Pool};

/// One backend: where its calls go, and how long it has to answer.
pub struct Backend {
    /// The connections to its server (shared with the other backends on that server).
    pool: Arc<Pool>,
    path: Uri,
    url: Url,
    timeout: Duration,
    headers: HeaderMap,
    /// The largest answer read from the backend.
    max_body: usize,
}

/// What the backend is sent for one call.
#[derive(Serialize)]
struct Request<'a> {
    session: &'a str,
    authkey: Option<&'a str>,
    procedure: &'a str,
    args: &'a [Value],
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
    /// A backend from its configuration, whose calls go through `pool`.
    pub fn new(plan: &ProxyPlan, pool: Arc<Pool>, max_body: usize) -> Backend {
        Backend {
            pool,
            path: plan.target.path.clone(),
            url: plan.url.clone(),
            timeout: plan.timeout,
            headers: plan.headers.clone(),
            max_body,
        }
    }

    /// Answers one call by asking the backend.
    pub async fn call(&self, ctx: CallContext, args: Vec<Value>) -> CallResult {
        let body = Request {
            session: &ctx.session_id,
            authkey: ctx.auth_key.as_deref(),
            procedure: &ctx.procedure,
            args: &args,
        };
        let fail = |cause: String| {
            warn!(procedure = %ctx.procedure, url = %self.url, %cause, "RPC backend failed");
            CallError::internal(cause)
        };
        let body = Bytes::from(serde_json::to_vec(&body).expect("JSON values serialise"));
        let answer = tokio::time::timeout(
            self.timeout,
            self.pool
                .post(&self.path, body, &self.headers, self.max_body),
        )
        .await;
        let (status, bytes) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(fail(describe(e))),
            Err(_) => {
                return Err(fail(format!(
                    "the backend did not answer within {:?}",
                    self.timeout
                )))
            }
        };
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
}

/// The cause of a failed request, for the caller and the log.
fn describe(failure: Failure) -> String {
    match failure {
        Failure::Connect(e) => format!("the backend is unreachable (connection failed: {e})"),
        Failure::Tls(e) => tls_cause(&e),
        Failure::Http(e) if e.is_incomplete_message() => {
            "the backend closed the connection before it answered".to_string()
        }
        Failure::Http(e) => format!("the request to the backend failed ({e})"),
        Failure::TooLarge(max) => format!("the backend's answer is larger than {max} bytes"),
    }
}

/// What went wrong in the TLS handshake with an https backend (rustls's error sits inside
/// the `io::Error` tokio-rustls returns).
fn tls_cause(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => format!(
            "the backend's TLS certificate is not accepted ({why:?}); a backend signed by a \
             private CA needs `ca_file` in its [[rpc.proxy]]"
        ),
        Some(other) => format!("TLS with the backend failed ({other})"),
        None => format!("TLS with the backend failed ({e})"),
    }
}

/// One pool per server (and per `ca_file`): backends on the same server share its
/// kept-alive connections.
#[derive(Default)]
pub struct Pools(HashMap<(Origin, usize), Arc<Pool>>);

impl Pools {
    /// The pool for `plan`'s server.
    pub fn get(&mut self, plan: &ProxyPlan) -> Arc<Pool> {
        let origin = &plan.target.origin;
        // A backend with its own `ca_file` has its own roots, so its own pool.
        let roots = plan.roots.as_ref().map_or(0, |r| Arc::as_ptr(r) as usize);
        self.0
            .entry((origin.clone(), roots))
            .or_insert_with(|| {
                let tls = origin.is_tls().then(|| tls_config(plan.roots.as_deref()));
                Pool::new(origin.clone(), tls)
            })
            .clone()
    }
}

/// The TLS settings of an https backend: rustls with ring, checked against `roots` (its
/// `ca_file`) or else the built-in (Mozilla) roots; HTTP/1.1 by ALPN.
fn tls_config(roots: Option<&rustls::RootCertStore>) -> Arc<rustls::ClientConfig> {
    let roots = roots.cloned().unwrap_or_else(|| rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}
