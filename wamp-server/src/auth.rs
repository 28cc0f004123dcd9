//! WAMP-CRA on the server: credential providers, the per-session state machine of `authreq`
//! and `auth`, and the rules of `docs/PROTOCOL.md` section 6.
//!
//! Security rules, all enforced here and in the session's single permission check:
//! - Permissions take effect only when `auth` succeeds with a valid signature. Requesting a
//!   challenge (`authreq`) grants nothing (clj-wamp granted the key's permissions at `authreq`).
//! - Until then a session has the router's *unauthenticated permissions* (none by default):
//!   CALL answers `#unauthorized`, SUBSCRIBE and PUBLISH are dropped.
//! - Each challenge allows one try: a wrong signature deletes it, and the answer comes after a
//!   short random delay (exponential, mean [`AuthConfig::failure_delay`]).
//! - Signatures are compared in constant time. Both the standard order
//!   `HMAC(key = secret, msg = challenge)` and clj-wamp's swapped order are accepted.
//! - Sessions that have not authenticated within [`AuthConfig::timeout`] are closed with
//!   [`crate::close::AUTH_TIMEOUT`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use wamp_proto::cra::{self, AuthExtra, Challenge};
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

/// Where credentials come from. Implement it over a database, or use [`InMemoryAuth`]; an
/// async closure `Fn(String, Map<String, Value>) -> impl Future<Output = Result<Option<AuthUser>,
/// String>>` implements it too.
pub trait AuthProvider: Send + Sync + 'static {
    /// Looks up `auth_key` (with the client's `extra` from `authreq`). `Ok(None)` means no
    /// such key (`#no-such-authkey`); `Err` is a lookup failure (`#auth-permissions-error`
    /// with the message as description).
    fn lookup(
        &self,
        auth_key: &str,
        extra: &Map<String, Value>,
    ) -> BoxFuture<Result<Option<AuthUser>, String>>;
}

impl<F, Fut> AuthProvider for F
where
    F: Fn(String, Map<String, Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<AuthUser>, String>> + Send + 'static,
{
    fn lookup(
        &self,
        auth_key: &str,
        extra: &Map<String, Value>,
    ) -> BoxFuture<Result<Option<AuthUser>, String>> {
        Box::pin(self(auth_key.to_string(), extra.clone()))
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
    ) -> BoxFuture<Result<Option<AuthUser>, String>> {
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
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("allow_anonymous", &self.allow_anonymous)
            .field("unauthenticated", &self.unauthenticated)
            .field("timeout", &self.timeout)
            .field("failure_delay", &self.failure_delay)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Authentication against `provider`, with the defaults: anonymous forbidden, no
    /// permissions before authentication, a 20 s timeout, a failure delay of mean 0.8 s.
    pub fn new(provider: impl AuthProvider) -> Self {
        AuthConfig {
            provider: Arc::new(provider),
            allow_anonymous: false,
            anonymous_permissions: Permissions::new(),
            unauthenticated: Arc::new(Permissions::new()),
            timeout: Duration::from_secs(20),
            failure_delay: Duration::from_millis(800),
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
}

/// Where one session stands in WAMP-CRA.
#[derive(Debug, Default)]
pub(crate) enum AuthState {
    /// Nothing asked yet.
    #[default]
    Idle,
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

fn invalid_argument(what: &str) -> CallError {
    CallError::new(errors::INVALID_ARGUMENT.uri, what)
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

    /// Handles `authreq(authKey, extra)`: returns the CALLRESULT value (the challenge text,
    /// or `null` for anonymous).
    pub(crate) async fn authreq(
        &mut self,
        config: &AuthConfig,
        session_id: &str,
        args: &[Value],
    ) -> Result<Value, CallError> {
        match self {
            AuthState::Authenticated { .. } => return Err(errors::ALREADY_AUTHENTICATED.into()),
            AuthState::Pending { .. } => {
                return Err(errors::AUTHENTICATION_ALREADY_REQUESTED.into())
            }
            AuthState::Idle => {}
        }
        let extra = match args.get(1) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(invalid_argument(
                    "extra (argument 2) must be an object or null",
                ))
            }
        };
        let key = match args.first() {
            None | Some(Value::Null) => {
                if !config.allow_anonymous {
                    return Err(errors::ANONYMOUS_AUTH_FORBIDDEN.into());
                }
                *self = AuthState::Pending {
                    key: None,
                    expected: None,
                    permissions: config.anonymous_permissions.clone(),
                };
                return Ok(Value::Null);
            }
            Some(Value::String(k)) => k.clone(),
            Some(_) => {
                return Err(invalid_argument(
                    "authKey (argument 1) must be a string or null",
                ))
            }
        };
        let user = match config.provider.lookup(&key, &extra).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(errors::NO_SUCH_AUTHKEY.into()),
            Err(e) => return Err(CallError::new(errors::AUTH_PERMISSIONS_ERROR.uri, e)),
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

    /// Handles `auth(signature)`: returns the granted permissions as JSON. On a wrong
    /// signature the pending challenge is gone and the error comes after the failure delay.
    pub(crate) async fn auth(
        &mut self,
        config: &AuthConfig,
        args: &[Value],
    ) -> Result<Value, CallError> {
        match self {
            AuthState::Authenticated { .. } => return Err(errors::ALREADY_AUTHENTICATED.into()),
            AuthState::Idle => return Err(errors::NO_AUTHENTICATION_REQUESTED.into()),
            AuthState::Pending { .. } => {}
        }
        let signature = match args.first() {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                return Err(invalid_argument(
                    "signature (argument 1) must be a string or null",
                ))
            }
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
                let a = cra::verify(standard, sig);
                let b = cra::verify(swapped, sig);
                a | b
            }
            (Some(_), None) => false,
        };
        if !valid {
            let delay = random_delay(config.failure_delay);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            return Err(errors::INVALID_SIGNATURE.into());
        }
        let result = permissions.to_value();
        *self = AuthState::Authenticated {
            key: key.map(Arc::from),
            permissions: Arc::new(permissions),
        };
        Ok(result)
    }
}

/// An exponentially distributed delay with the given mean, capped at five times the mean.
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
    mean.mul_f64((-u.ln()).min(5.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_delay_is_bounded() {
        let mean = Duration::from_millis(800);
        for _ in 0..1000 {
            assert!(random_delay(mean) <= mean * 5);
        }
        assert_eq!(random_delay(Duration::ZERO), Duration::ZERO);
    }
}
