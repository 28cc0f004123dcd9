//! WAMP-CRA on the server: credential providers, the per-session state machine of `authreq`
//! and `auth`, and the rules of `docs/PROTOCOL.md` section 6.
//!
//! Security rules, all enforced here and in the session's single permission check:
//! - Permissions take effect only when `auth` succeeds with a valid signature. Requesting a
//!   challenge (`authreq`) grants nothing (clj-wamp granted the key's permissions at `authreq`).
//! - Until then a session has the router's *unauthenticated permissions* (none by default):
//!   CALL answers `#unauthorized`, SUBSCRIBE and PUBLISH are dropped.
//! - Each challenge allows one try: a wrong signature deletes it, and the answer comes after a
//!   short random delay (at least half of [`AuthConfig::failure_delay`], that on average).
//!   The delay holds back only that answer, not the session's other messages; a new
//!   `authreq` before it has passed is refused (`#authentication-already-requested`), so
//!   the delay still throttles guessing.
//! - Credential lookups run beside the session's reader (its other calls go on), bounded by
//!   [`AuthConfig::lookup_timeout`]; a lookup that takes longer answers
//!   `#auth-permissions-error`.
//! - Signatures are compared in constant time. Both the standard order
//!   `HMAC(key = secret, msg = challenge)` and clj-wamp's swapped order are accepted.
//! - Sessions that have not authenticated within [`AuthConfig::timeout`] are closed with
//!   [`crate::close::AUTH_TIMEOUT`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use serde_json::{Map, Value};
use wamp_proto::cra::{self, Auth, AuthExtra, AuthReq, Challenge};
use wamp_proto::uri::errors;
use wamp_proto::Permissions;

use crate::handler::{BoxFuture, CallError};

/// What the server knows about one auth key.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthUser {
    /// The HMAC key: the plain secret, or for a salted secret the derived key
    /// (`base64(PBKDF2(password, salt, …))`).
    pub secret: String,
    /// Sent to the client inside the challenge as `authextra`: the salting parameters for a
    /// salted secret, `None` otherwise.
    pub authextra: Option<Value>,
    /// What the session may do once authenticated.
    pub permissions: Permissions,
}

impl AuthUser {
    /// A user with a plain (unsalted) secret.
    pub fn new(secret: impl Into<String>, permissions: Permissions) -> Self {
        AuthUser {
            secret: secret.into(),
            authextra: None,
            permissions,
        }
    }

    /// A user with a salted secret: the key is derived from `password` now (PBKDF2), and the
    /// salting parameters go to the client in the challenge.
    pub fn salted(password: &str, salting: AuthExtra, permissions: Permissions) -> Self {
        AuthUser::with_derived_key(salting.derive(password), salting, permissions)
    }

    /// A user whose derived key is already stored (so the password is not kept anywhere).
    pub fn with_derived_key(
        derived_key: impl Into<String>,
        salting: AuthExtra,
        permissions: Permissions,
    ) -> Self {
        AuthUser {
            secret: derived_key.into(),
            authextra: Some(salting.to_value()),
            permissions,
        }
    }
}

/// A credential lookup that failed (the database is down, …). Its message becomes the
/// description of the `#auth-permissions-error` CALLERROR, so it should say what the client
/// can do (e.g. "the user database is unreachable: try again later").
///
/// ```
/// use wamp_server::ProviderError;
/// let e = ProviderError::new("the user database is unreachable");
/// assert_eq!(e.to_string(), "the user database is unreachable");
/// let e: ProviderError = "timeout".to_string().into();
/// # let _ = e;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    message: String,
}

impl ProviderError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError {
            message: message.into(),
        }
    }

    /// The message (sent to the client as the CALLERROR's description).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for ProviderError {
    fn from(message: String) -> Self {
        ProviderError::new(message)
    }
}

impl From<&str> for ProviderError {
    fn from(message: &str) -> Self {
        ProviderError::new(message)
    }
}

/// Where credentials come from. Implement it over a database, or use [`InMemoryAuth`]; an
/// async closure `Fn(String, Map<String, Value>) -> impl Future<Output = Result<Option<AuthUser>,
/// E>>` implements it too, for any error `E` that converts into a [`ProviderError`] (such as
/// `String`).
pub trait AuthProvider: Send + Sync + 'static {
    /// Looks up `auth_key` (with the client's `extra` from `authreq`). `Ok(None)` means no
    /// such key (`#no-such-authkey`); `Err` is a lookup failure (`#auth-permissions-error`
    /// with the error's message as description).
    fn lookup(
        &self,
        auth_key: &str,
        extra: &Map<String, Value>,
    ) -> BoxFuture<Result<Option<AuthUser>, ProviderError>>;
}

impl<F, Fut, E> AuthProvider for F
where
    F: Fn(String, Map<String, Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<AuthUser>, E>> + Send + 'static,
    E: Into<ProviderError>,
{
    fn lookup(
        &self,
        auth_key: &str,
        extra: &Map<String, Value>,
    ) -> BoxFuture<Result<Option<AuthUser>, ProviderError>> {
        let lookup = self(auth_key.to_string(), extra.clone());
        Box::pin(async move { lookup.await.map_err(Into::into) })
    }
}

/// A ready credential store in memory.
///
/// ```
/// use wamp_server::{AuthUser, InMemoryAuth};
/// use wamp_proto::{cra::AuthExtra, Permissions};
/// let users = InMemoryAuth::new()
///     .user("guest", AuthUser::new("secret-password", Permissions::new().allow_call("http://x/rpc#echo")))
///     .user("admin", AuthUser::salted("pw", AuthExtra::new("salt"), Permissions::all()));
/// # let _ = users;
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryAuth {
    users: HashMap<String, AuthUser>,
}

impl InMemoryAuth {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user.
    pub fn user(mut self, key: impl Into<String>, user: AuthUser) -> Self {
        self.users.insert(key.into(), user);
        self
    }
}

impl AuthProvider for InMemoryAuth {
    fn lookup(
        &self,
        auth_key: &str,
        _extra: &Map<String, Value>,
    ) -> BoxFuture<Result<Option<AuthUser>, ProviderError>> {
        let user = self.users.get(auth_key).cloned();
        Box::pin(async move { Ok(user) })
    }
}

/// How a router authenticates sessions.
///
/// ```
/// use std::time::Duration;
/// use wamp_server::{AuthConfig, AuthUser, InMemoryAuth};
/// use wamp_proto::Permissions;
/// let auth = AuthConfig::new(InMemoryAuth::new().user("guest", AuthUser::new("pw", Permissions::all())))
///     .unauthenticated_permissions(Permissions::new().allow_call("http://x/rpc#echo"))
///     .timeout(Duration::from_secs(20));
/// # let _ = auth;
/// ```
#[derive(Clone)]
pub struct AuthConfig {
    pub(crate) provider: Arc<dyn AuthProvider>,
    pub(crate) allow_anonymous: bool,
    pub(crate) anonymous_permissions: Permissions,
    pub(crate) unauthenticated: Arc<Permissions>,
    pub(crate) timeout: Duration,
    pub(crate) failure_delay: Duration,
    pub(crate) lookup_timeout: Duration,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("allow_anonymous", &self.allow_anonymous)
            .field("unauthenticated", &self.unauthenticated)
            .field("timeout", &self.timeout)
            .field("failure_delay", &self.failure_delay)
            .field("lookup_timeout", &self.lookup_timeout)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Authentication against `provider`, with the defaults: anonymous forbidden, no
    /// permissions before authentication, a 20 s timeout, a failure delay of mean 0.8 s, a
    /// 10 s lookup timeout.
    pub fn new(provider: impl AuthProvider) -> Self {
        AuthConfig {
            provider: Arc::new(provider),
            allow_anonymous: false,
            anonymous_permissions: Permissions::new(),
            unauthenticated: Arc::new(Permissions::new()),
            timeout: Duration::from_secs(20),
            failure_delay: Duration::from_millis(800),
            lookup_timeout: Duration::from_secs(10),
        }
    }

    /// Allows anonymous authentication (`authreq(null)`, then `auth(null)`), granting these
    /// permissions.
    pub fn allow_anonymous(mut self, permissions: Permissions) -> Self {
        self.allow_anonymous = true;
        self.anonymous_permissions = permissions;
        self
    }

    /// What a session may do before it authenticates (nothing by default).
    pub fn unauthenticated_permissions(mut self, permissions: Permissions) -> Self {
        self.unauthenticated = Arc::new(permissions);
        self
    }

    /// Closes sessions that have not authenticated after this long; `Duration::ZERO`
    /// disables the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The mean of the random delay before a wrong signature is answered;
    /// `Duration::ZERO` answers at once (for tests).
    pub fn failure_delay(mut self, mean: Duration) -> Self {
        self.failure_delay = mean;
        self
    }

    /// How long a credential lookup may take before `authreq` answers
    /// `#auth-permissions-error` (default 10 s).
    pub fn lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }
}

/// Where one session stands in WAMP-CRA.
#[derive(Debug, Default)]
pub(crate) enum AuthState {
    /// No challenge out. After a failed `auth`, a new `authreq` is refused until `retry_at`
    /// (the failure delay, so the delay still throttles guessing).
    #[default]
    Idle,
    /// A failed `auth` is being answered after the failure delay.
    Throttled { retry_at: Instant },
    /// The credential provider is looking up a key (in a task of the session).
    LookingUp,
    /// A challenge is out.
    Pending {
        key: Option<String>,
        /// The signatures that would be accepted (standard and swapped order); `None` for
        /// anonymous, which accepts any signature.
        expected: Option<[String; 2]>,
        permissions: Permissions,
    },
    /// Authenticated: the permissions now in force.
    Authenticated {
        key: Option<Arc<str>>,
        permissions: Arc<Permissions>,
    },
}

/// What the session does next with an `authreq`.
pub(crate) enum AuthreqStep {
    /// Answer now.
    Reply(Result<Value, CallError>),
    /// Look the key up with the provider (off the session's reader), then call
    /// [`AuthState::authreq_looked_up`] with the result.
    Lookup {
        key: String,
        extra: Map<String, Value>,
    },
}

/// The answer to an `auth`, and how long to hold it back (a wrong signature).
pub(crate) struct AuthAnswer {
    pub(crate) result: Result<Value, CallError>,
    pub(crate) delay: Duration,
}

/// The `#invalid-argument` error for arguments wamp-proto could not read; the description
/// says which argument.
fn invalid_argument(e: wamp_proto::Error) -> CallError {
    let desc = match e {
        wamp_proto::Error::InvalidArgument(what) => what,
        other => other.to_string(),
    };
    CallError::new(errors::INVALID_ARGUMENT.uri, desc)
}

/// Runs the provider's lookup with the configured timeout.
pub(crate) async fn lookup(
    config: &AuthConfig,
    key: &str,
    extra: &Map<String, Value>,
) -> Result<Option<AuthUser>, ProviderError> {
    match tokio::time::timeout(config.lookup_timeout, config.provider.lookup(key, extra)).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::new(format!(
            "the credential lookup timed out after {} ms: try again later",
            config.lookup_timeout.as_millis()
        ))),
    }
}

impl AuthState {
    /// Whether the session has authenticated.
    pub(crate) fn is_authenticated(&self) -> bool {
        matches!(self, AuthState::Authenticated { .. })
    }

    /// The authenticated key (anonymous sessions have none).
    pub(crate) fn key(&self) -> Option<Arc<str>> {
        match self {
            AuthState::Authenticated { key, .. } => key.clone(),
            _ => None,
        }
    }

    /// Handles `authreq(authKey, extra)`: the CALLRESULT value (the challenge text, or `null`
    /// for anonymous), or a key to look up first.
    pub(crate) fn authreq(&mut self, config: &AuthConfig, args: &[Value]) -> AuthreqStep {
        match self {
            AuthState::Authenticated { .. } => {
                return AuthreqStep::Reply(Err(errors::ALREADY_AUTHENTICATED.into()))
            }
            AuthState::Pending { .. } | AuthState::LookingUp => {
                return AuthreqStep::Reply(Err(errors::AUTHENTICATION_ALREADY_REQUESTED.into()))
            }
            // The answer to the failed auth is still held back: the earlier request is
            // still pending as far as the client can tell.
            AuthState::Throttled { retry_at } if Instant::now() < *retry_at => {
                return AuthreqStep::Reply(Err(errors::AUTHENTICATION_ALREADY_REQUESTED.into()))
            }
            AuthState::Throttled { .. } | AuthState::Idle => {}
        }
        let request = match AuthReq::from_args(args) {
            Ok(request) => request,
            Err(e) => return AuthreqStep::Reply(Err(invalid_argument(e))),
        };
        let extra = request.extra.unwrap_or_default();
        match request.authkey {
            None => {
                if !config.allow_anonymous {
                    return AuthreqStep::Reply(Err(errors::ANONYMOUS_AUTH_FORBIDDEN.into()));
                }
                *self = AuthState::Pending {
                    key: None,
                    expected: None,
                    permissions: config.anonymous_permissions.clone(),
                };
                AuthreqStep::Reply(Ok(Value::Null))
            }
            Some(key) => {
                *self = AuthState::LookingUp;
                AuthreqStep::Lookup { key, extra }
            }
        }
    }

    /// Finishes an `authreq` once the provider answered.
    pub(crate) fn authreq_looked_up(
        &mut self,
        session_id: &str,
        key: String,
        extra: Map<String, Value>,
        found: Result<Option<AuthUser>, ProviderError>,
    ) -> Result<Value, CallError> {
        *self = AuthState::Idle;
        let user = match found {
            Ok(Some(user)) => user,
            Ok(None) => return Err(errors::NO_SUCH_AUTHKEY.into()),
            Err(e) => {
                return Err(CallError::new(
                    errors::AUTH_PERMISSIONS_ERROR.uri,
                    e.message(),
                ))
            }
        };
        let challenge = Challenge::new(
            Some(key.clone()),
            session_id,
            Some(extra),
            user.permissions.clone(),
            user.authextra.clone(),
        )
        .to_json();
        *self = AuthState::Pending {
            key: Some(key),
            expected: Some([
                cra::sign(&user.secret, &challenge),
                cra::sign_swapped(&user.secret, &challenge),
            ]),
            permissions: user.permissions,
        };
        Ok(Value::String(challenge))
    }

    /// Handles `auth(signature)`: the granted permissions as JSON. On a wrong signature the
    /// pending challenge is gone, and the answer is to be held back for the failure delay
    /// (by the caller, off the session's reader); a new `authreq` is refused until then.
    pub(crate) fn auth(&mut self, config: &AuthConfig, args: &[Value]) -> AuthAnswer {
        let now = |result| AuthAnswer {
            result,
            delay: Duration::ZERO,
        };
        match self {
            AuthState::Authenticated { .. } => {
                return now(Err(errors::ALREADY_AUTHENTICATED.into()))
            }
            AuthState::Idle | AuthState::Throttled { .. } | AuthState::LookingUp => {
                return now(Err(errors::NO_AUTHENTICATION_REQUESTED.into()))
            }
            AuthState::Pending { .. } => {}
        }
        let signature = match Auth::from_args(args) {
            Ok(Auth { signature }) => signature,
            Err(e) => return now(Err(invalid_argument(e))),
        };
        let AuthState::Pending {
            key,
            expected,
            permissions,
        } = std::mem::take(self)
        else {
            unreachable!("checked above")
        };
        let valid = match (&expected, signature) {
            (None, _) => true,
            (Some([standard, swapped]), Some(sig)) => {
                // Evaluate both comparisons so the time taken does not say which one matched.
                let a = cra::verify(standard, &sig);
                let b = cra::verify(swapped, &sig);
                a | b
            }
            (Some(_), None) => false,
        };
        if !valid {
            let delay = random_delay(config.failure_delay);
            *self = AuthState::Throttled {
                retry_at: Instant::now() + delay,
            };
            return AuthAnswer {
                result: Err(errors::INVALID_SIGNATURE.into()),
                delay,
            };
        }
        let result = permissions.to_value();
        *self = AuthState::Authenticated {
            key: key.map(Arc::from),
            permissions: Arc::new(permissions),
        };
        now(Ok(result))
    }
}

/// A random delay with the given mean: half the mean, plus an exponentially distributed part
/// of mean `mean / 2` (capped at five times that), so no answer comes sooner than half the
/// mean.
fn random_delay(mean: Duration) -> Duration {
    if mean.is_zero() {
        return Duration::ZERO;
    }
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return mean;
    }
    // A uniform number in (0, 1].
    let u = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
    let u = u.max(f64::MIN_POSITIVE);
    mean / 2 + (mean / 2).mul_f64((-u.ln()).min(5.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_delay_is_bounded() {
        let mean = Duration::from_millis(800);
        for _ in 0..1000 {
            let d = random_delay(mean);
            assert!(d >= mean / 2 && d <= mean * 3, "{d:?}");
        }
        assert_eq!(random_delay(Duration::ZERO), Duration::ZERO);
    }
}
