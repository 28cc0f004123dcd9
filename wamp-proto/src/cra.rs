//! WAMP-CRA crypto (`docs/PROTOCOL.md` section 6): signing, PBKDF2 key derivation, constant-time
//! verification and the challenge object.
//!
//! The signature over a challenge is `base64(HMAC-SHA256(key = secret, message = challenge))`,
//! standard alphabet, padded. A salted secret is first derived with
//! [`derive_key`] from the challenge's `authextra`. clj-wamp's demo page signs with key and
//! message swapped; [`sign_swapped`] computes that form so a server can accept it too.
//!
//! ```
//! use wamp_proto::cra;
//! let sig = cra::sign("secret", "challenge text");
//! assert!(cra::verify(&sig, &cra::sign("secret", "challenge text")));
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::permissions::Permissions;

/// PBKDF2 iterations when `authextra` names none.
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// Derived key length in bytes when `authextra` names none.
pub const DEFAULT_KEYLEN: usize = 32;
/// The largest iteration count a client derives for: a hostile server cannot make a client
/// spin for minutes.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// The largest derived key length accepted, in bytes.
pub const MAX_KEYLEN: usize = 1024;

fn hmac_b64(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The standard WAMP-CRA signature: `base64(HMAC-SHA256(key = secret, message = challenge))`.
///
/// For a salted secret, pass the derived key ([`derive_key`]) as `secret`.
pub fn sign(secret: &str, challenge: &str) -> String {
    hmac_b64(secret.as_bytes(), challenge.as_bytes())
}

/// clj-wamp's signature, key and message swapped:
/// `base64(HMAC-SHA256(key = challenge, message = secret))`.
pub fn sign_swapped(secret: &str, challenge: &str) -> String {
    hmac_b64(challenge.as_bytes(), secret.as_bytes())
}

/// Derives the key of a salted secret:
/// `base64(PBKDF2-HMAC-SHA256(password, salt, iterations, keylen))`. The result is used as the
/// HMAC key in [`sign`].
pub fn derive_key(password: &str, salt: &str, iterations: u32, keylen: usize) -> String {
    let mut out = vec![0u8; keylen];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
    STANDARD.encode(out)
}

/// Compares two signatures in constant time (for equal lengths).
pub fn verify(expected: &str, provided: &str) -> bool {
    expected.as_bytes().ct_eq(provided.as_bytes()).into()
}

/// The salting parameters a challenge carries in `authextra`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthExtra {
    /// The PBKDF2 salt.
    pub salt: String,
    /// The PBKDF2 iteration count.
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    /// The derived key length in bytes.
    #[serde(default = "default_keylen")]
    pub keylen: usize,
}

fn default_iterations() -> u32 {
    DEFAULT_ITERATIONS
}
fn default_keylen() -> usize {
    DEFAULT_KEYLEN
}

impl AuthExtra {
    /// Salting parameters with the default iteration count and key length.
    pub fn new(salt: impl Into<String>) -> Self {
        AuthExtra {
            salt: salt.into(),
            iterations: DEFAULT_ITERATIONS,
            keylen: DEFAULT_KEYLEN,
        }
    }

    /// Reads salting parameters from an `authextra` value. `None` when it has no `salt`
    /// (the secret is then used as it is); an error when a field has the wrong type or a value
    /// is out of range.
    pub fn from_value(authextra: &Value) -> Result<Option<AuthExtra>, Error> {
        let Some(obj) = authextra.as_object() else {
            return Ok(None);
        };
        let Some(salt) = obj.get("salt") else {
            return Ok(None);
        };
        let salt = match salt {
            Value::String(s) => s.clone(),
            // ABPY and ABJS use str(salt); numbers are accepted in their JSON text form.
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(Error::InvalidChallenge(
                    "authextra.salt must be a string".into(),
                ))
            }
        };
        let field = |name: &str, default: u64, max: u64| -> Result<u64, Error> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_u64().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                    Error::InvalidChallenge(format!(
                        "authextra.{name} must be an integer from 1 to {max}"
                    ))
                }),
            }
        };
        Ok(Some(AuthExtra {
            salt,
            iterations: field(
                "iterations",
                DEFAULT_ITERATIONS.into(),
                MAX_ITERATIONS.into(),
            )? as u32,
            keylen: field("keylen", DEFAULT_KEYLEN as u64, MAX_KEYLEN as u64)? as usize,
        }))
    }

    /// Derives the HMAC key for `password` with these parameters.
    pub fn derive(&self, password: &str) -> String {
        derive_key(password, &self.salt, self.iterations, self.keylen)
    }

    /// The JSON form carried in a challenge's `authextra`.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("authextra always serialises")
    }
}

/// The standard WAMP-CRA challenge object. The `authreq` CALLRESULT carries it as a JSON
/// **string**; a client signs that exact text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    /// A fresh random id for this challenge.
    pub authid: String,
    /// The key being authenticated, `None` for anonymous.
    pub authkey: Option<String>,
    /// When the challenge was made, UTC ISO-8601 with milliseconds.
    pub timestamp: String,
    /// The WAMP session id.
    pub sessionid: String,
    /// The client's `extra` from `authreq` (`{}` when it sent none).
    #[serde(default)]
    pub extra: Value,
    /// The permissions that `auth` will grant.
    #[serde(default)]
    pub permissions: Permissions,
    /// Salting parameters and other data for the signer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authextra: Option<Value>,
}

impl Challenge {
    /// A challenge for `authkey` on session `sessionid`, with a fresh `authid` and the current
    /// time.
    pub fn new(
        authkey: Option<String>,
        sessionid: impl Into<String>,
        extra: Option<Map<String, Value>>,
        permissions: Permissions,
        authextra: Option<Value>,
    ) -> Self {
        Challenge {
            authid: crate::ids::new_id(),
            authkey,
            timestamp: utc_timestamp(std::time::SystemTime::now()),
            sessionid: sessionid.into(),
            extra: Value::Object(extra.unwrap_or_default()),
            permissions,
            authextra,
        }
    }

    /// The challenge text that goes in the CALLRESULT (compact JSON, fields in the order of
    /// AutobahnPython's).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a challenge always serialises")
    }

    /// Reads a challenge text.
    pub fn parse(text: &str) -> Result<Challenge, Error> {
        serde_json::from_str(text).map_err(|e| Error::InvalidChallenge(e.to_string()))
    }

    /// The salting parameters in `authextra`, if any.
    pub fn salting(&self) -> Result<Option<AuthExtra>, Error> {
        match &self.authextra {
            Some(v) => AuthExtra::from_value(v),
            None => Ok(None),
        }
    }
}

/// What a client sends to `auth` for a challenge text it received: the challenge is read only
/// to find `authextra` (the password is then derived with PBKDF2), and the exact text received
/// is what gets signed.
///
/// ```
/// use wamp_proto::cra;
/// let challenge = r#"{"authid":"a","authkey":"k","timestamp":"t","sessionid":"s","extra":{},"permissions":{"rpc":[],"pubsub":[]}}"#;
/// assert_eq!(cra::client_signature(challenge, "secret").unwrap(), cra::sign("secret", challenge));
/// ```
pub fn client_signature(challenge: &str, password: &str) -> Result<String, Error> {
    let value: Value =
        serde_json::from_str(challenge).map_err(|e| Error::InvalidChallenge(e.to_string()))?;
    let Some(obj) = value.as_object() else {
        return Err(Error::InvalidChallenge(
            "the challenge is not a JSON object".into(),
        ));
    };
    let key = match obj
        .get("authextra")
        .map(AuthExtra::from_value)
        .transpose()?
    {
        Some(Some(extra)) => extra.derive(password),
        _ => password.to_string(),
    };
    Ok(sign(&key, challenge))
}

/// The arguments of `authreq`: `(authKey | null, extra | null)`.
///
/// ```
/// use wamp_proto::cra::AuthReq;
/// let req = AuthReq { authkey: Some("guest".into()), extra: None };
/// assert_eq!(serde_json::Value::from(req.to_args()).to_string(), r#"["guest",null]"#);
/// assert_eq!(AuthReq::from_args(&req.to_args()).unwrap(), req);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthReq {
    /// The key to authenticate as; `None` asks for anonymous authentication.
    pub authkey: Option<String>,
    /// Extra data for the server's credential lookup.
    pub extra: Option<Map<String, Value>>,
}

impl AuthReq {
    /// The CALL arguments, both always present (`null` when absent), as AutobahnJS sends them.
    pub fn to_args(&self) -> Vec<Value> {
        vec![
            self.authkey.clone().map_or(Value::Null, Value::String),
            self.extra.clone().map_or(Value::Null, Value::Object),
        ]
    }

    /// Reads the CALL arguments; missing ones count as `null`. The error says which argument is
    /// wrong (it becomes the description of an `invalid-argument` CALLERROR).
    pub fn from_args(args: &[Value]) -> Result<AuthReq, Error> {
        let authkey = match args.first() {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => {
                return Err(Error::InvalidArgument(
                    "authKey (argument 1) must be a string or null".into(),
                ))
            }
        };
        let extra = match args.get(1) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => {
                return Err(Error::InvalidArgument(
                    "extra (argument 2) must be an object or null".into(),
                ))
            }
        };
        Ok(AuthReq { authkey, extra })
    }
}

/// The arguments of `auth`: `(signature | null)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// The signature over the challenge; `None` for anonymous authentication.
    pub signature: Option<String>,
}

impl Auth {
    /// The CALL arguments: the signature, or `null`.
    pub fn to_args(&self) -> Vec<Value> {
        vec![self.signature.clone().map_or(Value::Null, Value::String)]
    }

    /// Reads the CALL arguments; a missing signature counts as `null`.
    pub fn from_args(args: &[Value]) -> Result<Auth, Error> {
        match args.first() {
            None | Some(Value::Null) => Ok(Auth { signature: None }),
            Some(Value::String(s)) => Ok(Auth {
                signature: Some(s.clone()),
            }),
            Some(_) => Err(Error::InvalidArgument(
                "signature (argument 1) must be a string or null".into(),
            )),
        }
    }
}

/// Reads the `authreq` CALLRESULT: the challenge text to sign, or `None` for an anonymous
/// request (the result is `null`).
pub fn challenge_text(result: &Value) -> Result<Option<&str>, Error> {
    match result {
        Value::String(text) => Ok(Some(text)),
        Value::Null => Ok(None),
        other => Err(Error::InvalidChallenge(format!(
            "the authreq result must be a string (or null for anonymous), got {}",
            crate::error::json_type(other)
        ))),
    }
}

/// How a client signs a challenge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CraStyle {
    /// [`CraStyle::Standard`] for a challenge that is a JSON object, [`CraStyle::CljWamp`] for
    /// an opaque one (clj-wamp's challenges are a bare base64 HMAC).
    #[default]
    Auto,
    /// `HMAC(key = secret, message = challenge)`, the secret first derived with PBKDF2 when the
    /// challenge carries `authextra.salt` (AutobahnPython, AutobahnJS, this project's server).
    Standard,
    /// `HMAC(key = challenge, message = secret)`: what clj-wamp 1.0's server expects.
    CljWamp,
}

impl CraStyle {
    /// The style's name as a command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CraStyle::Auto => "auto",
            CraStyle::Standard => "standard",
            CraStyle::CljWamp => "clj-wamp",
        }
    }
}

impl std::fmt::Display for CraStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CraStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(CraStyle::Auto),
            "standard" => Ok(CraStyle::Standard),
            "clj-wamp" | "cljwamp" | "clj" => Ok(CraStyle::CljWamp),
            _ => Err(format!(
                "unknown WAMP-CRA style {s:?}: use auto, standard or clj-wamp"
            )),
        }
    }
}

/// Signs a challenge text in the given style. With [`CraStyle::Auto`] a challenge that parses
/// as a JSON object is signed the standard way (an error in it, such as a bad `authextra`, is
/// reported), anything else the clj-wamp way.
///
/// ```
/// use wamp_proto::cra::{self, CraStyle};
/// // clj-wamp's challenge is opaque, so auto signs it with key and message swapped.
/// let challenge = "I2R09HygXn4ky+TyS1l2Qy38wF1HESXEg95CiuJN2y4=";
/// assert_eq!(
///     cra::client_signature_styled(challenge, "secret-password", CraStyle::Auto).unwrap(),
///     "Brffj/w0A5QnK0Qn2zTMTbIplXajBpBMq6XUC+26ZpQ="
/// );
/// ```
pub fn client_signature_styled(
    challenge: &str,
    password: &str,
    style: CraStyle,
) -> Result<String, Error> {
    match style {
        CraStyle::Standard => client_signature(challenge, password),
        CraStyle::CljWamp => Ok(sign_swapped(password, challenge)),
        CraStyle::Auto => {
            let is_object = serde_json::from_str::<Value>(challenge).is_ok_and(|v| v.is_object());
            if is_object {
                client_signature(challenge, password)
            } else {
                Ok(sign_swapped(password, challenge))
            }
        }
    }
}

/// The result of `auth`: the permissions granted.
///
/// [`AuthResult::from_value`] reads both forms found in the field: AutobahnPython's
/// [`Permissions`] object (`{"rpc": [..], "pubsub": [..]}`), and clj-wamp's permission map
/// (`{"rpc": {uri: bool}, "subscribe": {uri: bool}, "publish": {uri: bool}}`, where a category
/// may also be a bare `true`, and `{"all": true}` allows everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthResult {
    /// What the session may now do.
    pub permissions: Permissions,
}

impl AuthResult {
    /// Reads an `auth` CALLRESULT in either form.
    ///
    /// ```
    /// use wamp_proto::cra::AuthResult;
    /// let clj = serde_json::json!({"rpc": {"http://x/rpc#echo": true, "http://x/rpc#ping": false},
    ///                              "subscribe": {"http://x/event#chat": true},
    ///                              "publish": {"http://x/event#chat": true}});
    /// let p = AuthResult::from_value(clj).unwrap().permissions;
    /// assert!(p.may_call("http://x/rpc#echo") && !p.may_call("http://x/rpc#ping"));
    /// assert!(p.may_subscribe("http://x/event#chat") && p.may_publish("http://x/event#chat"));
    /// ```
    pub fn from_value(value: Value) -> Result<AuthResult, Error> {
        let Value::Object(obj) = &value else {
            return Err(Error::InvalidAuthResult(format!(
                "expected a permissions object, got {}",
                crate::error::json_type(&value)
            )));
        };
        let is_clj = obj.get("all").is_some()
            || obj.get("subscribe").is_some()
            || obj.get("publish").is_some()
            || obj.get("rpc").is_some_and(|v| !v.is_array());
        if !is_clj {
            return serde_json::from_value(value)
                .map(|permissions| AuthResult { permissions })
                .map_err(|e| Error::InvalidAuthResult(e.to_string()));
        }
        Self::from_clj_wamp(obj).map(|permissions| AuthResult { permissions })
    }

    fn from_clj_wamp(obj: &Map<String, Value>) -> Result<Permissions, Error> {
        if obj.get("all") == Some(&Value::Bool(true)) {
            return Ok(Permissions::all());
        }
        // Each category: `true` (everything), `false`/absent (nothing) or a map uri -> bool.
        let category = |name: &str| -> Result<Vec<(String, bool)>, Error> {
            match obj.get(name) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Vec::new()),
                Some(Value::Bool(true)) => Ok(vec![(String::new(), true)]),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(uri, allowed)| match allowed {
                        Value::Bool(b) => Ok((uri.clone(), *b)),
                        other => Err(Error::InvalidAuthResult(format!(
                            "{name}.{uri} must be true or false, got {}",
                            crate::error::json_type(other)
                        ))),
                    })
                    .collect(),
                Some(other) => Err(Error::InvalidAuthResult(format!(
                    "{name} must be true, false or a map of URIs to booleans, got {}",
                    crate::error::json_type(other)
                ))),
            }
        };
        let mut permissions = Permissions::new();
        for (uri, call) in category("rpc")? {
            permissions.rpc.push(crate::permissions::RpcPermission {
                // A whole category allowed is a prefix entry on the empty URI.
                prefix: uri.is_empty() && call,
                uri,
                call,
            });
        }
        let mut pubsub: Vec<crate::permissions::PubSubPermission> = Vec::new();
        for (name, is_publish) in [("publish", true), ("subscribe", false)] {
            for (uri, allowed) in category(name)? {
                let prefix = uri.is_empty() && allowed;
                let entry = match pubsub
                    .iter_mut()
                    .find(|e| e.uri == uri && e.prefix == prefix)
                {
                    Some(entry) => entry,
                    None => {
                        pubsub.push(crate::permissions::PubSubPermission {
                            uri,
                            prefix,
                            publish: false,
                            subscribe: false,
                        });
                        pubsub.last_mut().expect("just pushed")
                    }
                };
                if is_publish {
                    entry.publish = allowed;
                } else {
                    entry.subscribe = allowed;
                }
            }
        }
        permissions.pubsub = pubsub;
        Ok(permissions)
    }

    /// The JSON form this project's server sends (AutobahnPython's).
    pub fn to_value(&self) -> Value {
        self.permissions.to_value()
    }
}

/// Formats a time as UTC ISO-8601 with milliseconds, e.g. `2013-07-06T12:00:00.000Z`.
pub fn utc_timestamp(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    // The vectors of research-wamp-v1-and-clj-wamp.md section 2.6.
    const CHALLENGE_B: &str = r#"{"authid": "kQ4sB2VgsQ0tXy7Z", "authkey": "foobar", "timestamp": "2013-07-06T12:00:00.000Z", "sessionid": "v59mbCGDXZ7WTyxB", "extra": {}, "permissions": {"pubsub": [{"uri": "http://example.com/topics/", "prefix": true, "pub": true, "sub": true}], "rpc": [{"uri": "http://example.com/procedures/hello", "call": true}]}}"#;

    fn challenge_c() -> String {
        format!(
            "{}, \"authextra\": {{\"salt\": \"RANDOM SALT\", \"keylen\": 32, \"iterations\": 1000}}}}",
            &CHALLENGE_B[..CHALLENGE_B.len() - 1]
        )
    }

    #[test]
    fn vector_a_clj_wamp_swapped_order() {
        let hmac_key = "secret-password-1372019250000-1372019248579-1";
        let challenge = sign(hmac_key, "guest");
        assert_eq!(challenge, "I2R09HygXn4ky+TyS1l2Qy38wF1HESXEg95CiuJN2y4=");
        assert_eq!(
            sign_swapped("secret-password", &challenge),
            "Brffj/w0A5QnK0Qn2zTMTbIplXajBpBMq6XUC+26ZpQ="
        );
        assert_eq!(
            sign("secret-password", &challenge),
            "oYYC0wTkCQBgm86d0NpG/x6dINlfPOoOq2BUQsUfkIs="
        );
    }

    #[test]
    fn vector_b_standard_unsalted() {
        assert_eq!(
            sign("secret", CHALLENGE_B),
            "/Is5ujOEJ8K+Tb8dXn5e8icB9GUSeHHbvbJuVTZOuv0="
        );
        assert_eq!(
            client_signature(CHALLENGE_B, "secret").unwrap(),
            "/Is5ujOEJ8K+Tb8dXn5e8icB9GUSeHHbvbJuVTZOuv0="
        );
        let parsed = Challenge::parse(CHALLENGE_B).unwrap();
        assert_eq!(parsed.authkey.as_deref(), Some("foobar"));
        assert!(parsed
            .permissions
            .may_call("http://example.com/procedures/hello"));
        assert!(parsed.salting().unwrap().is_none());
    }

    #[test]
    fn vector_c_standard_salted() {
        assert_eq!(
            derive_key("secret", "RANDOM SALT", 1000, 32),
            "znWa4bxY1glpbQlZziHIlXA2shfF+HoCr9bnmZ5HPQg="
        );
        let challenge = challenge_c();
        assert_eq!(
            client_signature(&challenge, "secret").unwrap(),
            "BJWJuTxHvGyv/3u3JELnJpgJxvKmdrHU4youL7IBvdc="
        );
        let extra = Challenge::parse(&challenge)
            .unwrap()
            .salting()
            .unwrap()
            .unwrap();
        assert_eq!(
            extra,
            AuthExtra {
                salt: "RANDOM SALT".into(),
                iterations: 1000,
                keylen: 32
            }
        );
    }

    #[test]
    fn vector_c_defaults() {
        let extra = AuthExtra::from_value(&serde_json::json!({"salt": "salt123"}))
            .unwrap()
            .unwrap();
        assert_eq!(extra.iterations, 10_000);
        assert_eq!(extra.keylen, 32);
        assert_eq!(
            extra.derive("secret"),
            "VT+3GaFfYgfIOH/PsY9oIv9PPYQXU8v1Gc1nCzLQjwE="
        );
    }

    #[test]
    fn bad_authextra_is_an_error_not_a_hang() {
        for bad in [
            serde_json::json!({"salt": "s", "iterations": 0}),
            serde_json::json!({"salt": "s", "iterations": 4_000_000_000u64}),
            serde_json::json!({"salt": "s", "keylen": "32"}),
            serde_json::json!({"salt": ["s"]}),
        ] {
            assert!(AuthExtra::from_value(&bad).is_err(), "{bad}");
        }
        assert!(AuthExtra::from_value(&serde_json::json!({"x": 1}))
            .unwrap()
            .is_none());
        assert!(client_signature("not json", "pw").is_err());
        assert!(client_signature("[1]", "pw").is_err());
    }

    #[test]
    fn verify_compares_exactly() {
        let s = sign("k", "m");
        assert!(verify(&s, &s.clone()));
        assert!(!verify(&s, &sign("k", "m2")));
        assert!(!verify(&s, ""));
        assert!(!verify(&s, &s[..s.len() - 1]));
    }

    #[test]
    fn challenge_round_trip_and_shape() {
        let c = Challenge::new(
            Some("guest".into()),
            "SESSION",
            None,
            Permissions::new().allow_call("http://x/a"),
            Some(AuthExtra::new("salty").to_value()),
        );
        let text = c.to_json();
        assert!(text.starts_with(r#"{"authid":""#), "{text}");
        assert!(text.contains(r#""extra":{}"#), "{text}");
        assert_eq!(Challenge::parse(&text).unwrap(), c);
        assert_eq!(c.authid.len(), 16);
        let anon = Challenge::new(None, "S", None, Permissions::new(), None);
        assert!(anon.to_json().contains(r#""authkey":null"#));
        assert!(!anon.to_json().contains("authextra"));
    }

    #[test]
    fn authreq_and_auth_arguments() {
        let req = AuthReq::from_args(&[]).unwrap();
        assert_eq!(req, AuthReq::default());
        assert_eq!(req.to_args(), vec![Value::Null, Value::Null]);
        let req = AuthReq::from_args(&[json!("k"), json!({"a": 1})]).unwrap();
        assert_eq!(req.authkey.as_deref(), Some("k"));
        assert_eq!(req.extra.as_ref().unwrap()["a"], 1);
        assert_eq!(AuthReq::from_args(&req.to_args()).unwrap(), req);
        let err = AuthReq::from_args(&[json!(1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument: authKey (argument 1) must be a string or null"
        );
        let err = AuthReq::from_args(&[json!("k"), json!([1])]).unwrap_err();
        assert!(err.to_string().contains("extra (argument 2)"), "{err}");

        assert_eq!(Auth::from_args(&[]).unwrap(), Auth { signature: None });
        let auth = Auth::from_args(&[json!("sig")]).unwrap();
        assert_eq!(auth.to_args(), vec![json!("sig")]);
        assert_eq!(Auth::default().to_args(), vec![Value::Null]);
        let err = Auth::from_args(&[json!(true)]).unwrap_err();
        assert!(err.to_string().contains("signature (argument 1)"), "{err}");
    }

    #[test]
    fn challenge_results() {
        assert_eq!(challenge_text(&json!("c")).unwrap(), Some("c"));
        assert_eq!(challenge_text(&Value::Null).unwrap(), None);
        assert!(matches!(
            challenge_text(&json!({"a": 1})),
            Err(Error::InvalidChallenge(_))
        ));
    }

    #[test]
    fn signing_styles() {
        let clj = "I2R09HygXn4ky+TyS1l2Qy38wF1HESXEg95CiuJN2y4=";
        let swapped = "Brffj/w0A5QnK0Qn2zTMTbIplXajBpBMq6XUC+26ZpQ=";
        assert_eq!(
            client_signature_styled(clj, "secret-password", CraStyle::Auto).unwrap(),
            swapped
        );
        assert_eq!(
            client_signature_styled(clj, "secret-password", CraStyle::CljWamp).unwrap(),
            swapped
        );
        // Standard insists on a JSON challenge.
        assert!(client_signature_styled(clj, "secret-password", CraStyle::Standard).is_err());
        let standard = "/Is5ujOEJ8K+Tb8dXn5e8icB9GUSeHHbvbJuVTZOuv0=";
        for style in [CraStyle::Auto, CraStyle::Standard] {
            assert_eq!(
                client_signature_styled(CHALLENGE_B, "secret", style).unwrap(),
                standard
            );
        }
        assert_eq!(
            client_signature_styled(&challenge_c(), "secret", CraStyle::Auto).unwrap(),
            "BJWJuTxHvGyv/3u3JELnJpgJxvKmdrHU4youL7IBvdc="
        );
        // A JSON challenge with a bad authextra is an error, not a silent clj-wamp signature.
        let bad = r#"{"authextra": {"salt": "s", "iterations": 0}}"#;
        assert!(client_signature_styled(bad, "pw", CraStyle::Auto).is_err());
        for (text, style) in [
            ("auto", CraStyle::Auto),
            ("standard", CraStyle::Standard),
            ("clj-wamp", CraStyle::CljWamp),
        ] {
            assert_eq!(text.parse::<CraStyle>().unwrap(), style);
            assert_eq!(style.to_string(), text);
        }
        assert!("hmac".parse::<CraStyle>().unwrap_err().contains("clj-wamp"));
    }

    #[test]
    fn auth_results_in_both_forms() {
        // AutobahnPython's form.
        let p = Permissions::new()
            .allow_call("http://x/a")
            .allow_pubsub_prefix("http://x/t/", true, false);
        let read = AuthResult::from_value(p.to_value()).unwrap();
        assert_eq!(read.permissions, p);
        assert_eq!(read.to_value(), p.to_value());
        assert_eq!(
            AuthResult::from_value(json!({})).unwrap().permissions,
            Permissions::new()
        );
        // clj-wamp's form: the template's exact auth result (research section 2.6 (a)).
        let clj = json!({"rpc":{"http://wamptutorial/rpc#echo":true,"http://wamptutorial/rpc#throw":true},
                "subscribe":{"http://wamptutorial/event#chat":true},
                "publish":{"http://wamptutorial/event#chat":true}});
        let p = AuthResult::from_value(clj).unwrap().permissions;
        assert!(p.may_call("http://wamptutorial/rpc#echo"));
        assert!(p.may_call("http://wamptutorial/rpc#throw"));
        assert!(!p.may_call("http://wamptutorial/rpc#ping"));
        assert!(p.may_publish("http://wamptutorial/event#chat"));
        assert!(p.may_subscribe("http://wamptutorial/event#chat"));
        assert!(!p.may_subscribe("http://wamptutorial/event#chat2"));
        // Exact URIs only: no prefix entries from a map.
        assert!(!p.may_call("http://wamptutorial/rpc#echo2"));
        // Categories as a whole, and "all".
        let p = AuthResult::from_value(json!({"rpc": true, "subscribe": false}))
            .unwrap()
            .permissions;
        assert!(p.may_call("anything"));
        assert!(!p.may_subscribe("t") && !p.may_publish("t"));
        let p = AuthResult::from_value(json!({"publish": {"t": true}, "subscribe": {"t": false}}))
            .unwrap()
            .permissions;
        assert!(p.may_publish("t") && !p.may_subscribe("t"));
        assert_eq!(
            AuthResult::from_value(json!({"all": true}))
                .unwrap()
                .permissions,
            Permissions::all()
        );
        // Garbage is an error that says what was wrong.
        for bad in [
            json!(3),
            json!("x"),
            json!({"rpc": {"u": 1}}),
            json!({"subscribe": [1]}),
            json!({"rpc": [{"uri": 5}]}),
        ] {
            let err = AuthResult::from_value(bad.clone()).unwrap_err();
            assert!(matches!(err, Error::InvalidAuthResult(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_millis(1_373_112_000_000)),
            "2013-07-06T12:00:00.000Z"
        );
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
    }
}
