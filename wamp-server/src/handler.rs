//! Procedure handlers: the call context, application errors and the boxed handler type.

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wamp_proto::uri::{errors, WellKnownError};

use crate::router::Router;

/// What a procedure handler knows about the call it serves.
#[derive(Clone)]
pub struct CallContext {
    /// The calling session's id.
    pub session_id: Arc<str>,
    /// The key the session authenticated as (WAMP-CRA), `None` before authentication or
    /// when authentication is not configured.
    pub auth_key: Option<Arc<str>>,
    /// The procedure's full URI (CURIE already resolved).
    pub procedure: Arc<str>,
    /// The router, for server-side publishing or closing sessions from a handler.
    pub router: Router,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("session_id", &self.session_id)
            .field("auth_key", &self.auth_key)
            .field("procedure", &self.procedure)
            .finish_non_exhaustive()
    }
}

/// An application error returned by a handler: it becomes a CALLERROR.
///
/// ```
/// use wamp_server::CallError;
/// let e = CallError::new("http://example.com/error#too-big", "1001 too big, max is 1000")
///     .with_details(1000);
/// assert_eq!(e.uri, "http://example.com/error#too-big");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// The error URI.
    pub uri: String,
    /// A description for a developer.
    pub desc: String,
    /// Optional application-defined details (never sent as `null`).
    pub details: Option<Value>,
    /// Close the session after the CALLERROR is sent (clj-wamp's `:kill`, AutobahnPython's
    /// `killSession`). The close code is [`crate::close::KILLED`].
    pub close_session: bool,
}

impl CallError {
    /// An error with its own URI and description.
    pub fn new(uri: impl Into<String>, desc: impl Into<String>) -> Self {
        CallError {
            uri: uri.into(),
            desc: desc.into(),
            details: None,
            close_session: false,
        }
    }

    /// An error with the generic URI (`http://api.wamp.ws/error#generic`) and this
    /// description.
    pub fn generic(desc: impl Into<String>) -> Self {
        CallError::new(errors::GENERIC.uri, desc)
    }

    /// The `#internal` error, with the failure's message as details.
    pub fn internal(message: impl Into<String>) -> Self {
        CallError::from(errors::INTERNAL).with_details(message.into())
    }

    /// The `#unauthorized` error.
    pub fn unauthorized() -> Self {
        CallError::from(errors::UNAUTHORIZED)
    }

    /// Adds details (any serialisable value; `null` leaves them out).
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok().filter(|v| !v.is_null());
        self
    }

    /// Asks the router to close the session once this error has been sent.
    pub fn and_close_session(mut self) -> Self {
        self.close_session = true;
        self
    }
}

impl From<WellKnownError> for CallError {
    fn from(e: WellKnownError) -> Self {
        CallError::new(e.uri, e.desc)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.uri, self.desc)
    }
}

impl std::error::Error for CallError {}

/// The result of a procedure.
pub type CallResult = Result<Value, CallError>;

/// A boxed future, as handlers and callbacks are stored (futures' `BoxFuture<'static, T>`).
pub type BoxFuture<T> = futures::future::BoxFuture<'static, T>;

/// A stored procedure handler.
pub(crate) type Procedure =
    Arc<dyn Fn(CallContext, Vec<Value>) -> BoxFuture<CallResult> + Send + Sync>;

/// Boxes an async closure as a stored procedure.
pub(crate) fn boxed_procedure<F, Fut>(f: F) -> Procedure
where
    F: Fn(CallContext, Vec<Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CallResult> + Send + 'static,
{
    Arc::new(move |ctx, args| Box::pin(f(ctx, args)))
}

/// Reads positional arguments as a typed value: a tuple for several arguments, a struct
/// deriving `Deserialize` from a sequence, or a `Vec<T>`. A mismatch is an application error
/// with URI `http://api.wamp.ws/error#invalid-argument` that says what was wrong.
///
/// ```
/// use serde_json::json;
/// let (a, b): (i64, String) = wamp_server::typed_args(vec![json!(1), json!("x")]).unwrap();
/// assert_eq!((a, b.as_str()), (1, "x"));
/// assert!(wamp_server::typed_args::<(i64,)>(vec![json!("no")]).is_err());
/// ```
pub fn typed_args<T: DeserializeOwned>(args: Vec<Value>) -> Result<T, CallError> {
    serde_json::from_value(Value::Array(args)).map_err(|e| {
        CallError::new(
            errors::INVALID_ARGUMENT.uri,
            format!("invalid arguments: {e}"),
        )
    })
}

/// Boxes a typed async closure: arguments read with [`typed_args`], the result serialised.
pub(crate) fn typed_procedure<A, R, F, Fut>(f: F) -> Procedure
where
    A: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(CallContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, CallError>> + Send + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |ctx, args| {
        let f = f.clone();
        Box::pin(async move {
            let args = typed_args::<A>(args)?;
            let result = f(ctx, args).await?;
            serde_json::to_value(result)
                .map_err(|e| CallError::internal(format!("result did not serialise: {e}")))
        })
    })
}
