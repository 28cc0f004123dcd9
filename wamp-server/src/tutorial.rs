//! The tutorial server of `docs/PROTOCOL.md` section 8: the seed's demo, as the canonical example
//! of this library. `cargo run --release -p wamp-server` runs it on `http://localhost:8080/`.
//!
//! - Procedures (base `http://wamptutorial/rpc#`): `echo`, `add`, `throw`, `whoami`, `ping`.
//! - Topic `http://wamptutorial/event#chat`, open, relayed as-is.
//! - Topic `http://wamptutorial/event#bench`, open the same way, for `wamp-cli bench fanout`;
//!   the page does not subscribe to it, so benchmarks never reach the chat.
//! - Default prefixes `rpc` and `event`, so `rpc:echo` works without a PREFIX message.
//! - WAMP-CRA users: `guest` / `secret-password`, and `salted` / `secret` (a PBKDF2-salted
//!   secret, for clients that derive keys). Before authenticating a session may use echo, add,
//!   throw and chat; `whoami` needs authentication; nobody may call `ping`.

use std::time::Duration;

use axum::extract::{State, WebSocketUpgrade};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::Value;
use wamp_proto::cra::AuthExtra;
use wamp_proto::Permissions;

use crate::{AuthConfig, AuthUser, CallError, InMemoryAuth, Router, Topic};

/// Base URI of the tutorial's procedures.
pub const RPC: &str = "http://wamptutorial/rpc#";
/// Base URI of the tutorial's topics.
pub const EVENT: &str = "http://wamptutorial/event#";
/// The chat topic.
pub const CHAT: &str = "http://wamptutorial/event#chat";
/// The benchmark topic (`wamp-cli bench fanout`'s default), kept apart from the chat.
pub const BENCH: &str = "http://wamptutorial/event#bench";

/// The tutorial's router: procedures, the chat topic, default prefixes and WAMP-CRA users.
pub fn router() -> Router {
    builder().build()
}

/// The tutorial router's builder, to add options (such as allowed origins) before building.
pub fn builder() -> crate::RouterBuilder {
    let rpc = |name: &str| format!("{RPC}{name}");
    // What any session may do, and what guest may do once authenticated.
    let open = Permissions::new()
        .allow_call(rpc("echo"))
        .allow_call(rpc("add"))
        .allow_call(rpc("throw"))
        .allow_pubsub(CHAT, true, true)
        .allow_pubsub(BENCH, true, true);
    let guest = open.clone().allow_call(rpc("whoami"));
    let users = InMemoryAuth::new()
        .user("guest", AuthUser::new("secret-password", guest.clone()))
        .user(
            "salted",
            AuthUser::salted(
                "secret",
                AuthExtra {
                    salt: "RANDOM SALT".into(),
                    iterations: 1000,
                    keylen: 32,
                },
                guest,
            ),
        );

    Router::builder()
        .default_prefix("rpc", RPC)
        .default_prefix("event", EVENT)
        // echo: returns its first argument.
        .procedure(rpc("echo"), |_, args: Vec<Value>| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Null))
        })
        // add: the sum of all its numeric arguments.
        .procedure(rpc("add"), |_, args: Vec<Value>| async move { add(&args) })
        // throw: always fails, as the seed's demo did.
        .procedure(rpc("throw"), |_, _| async move {
            Err::<Value, _>(CallError::internal("An exception"))
        })
        // whoami: the key this session authenticated as.
        .procedure(rpc("whoami"), |ctx, _| async move {
            Ok(ctx.auth_key.as_deref().map_or(Value::Null, Value::from))
        })
        // ping: registered, but no permission set allows it, so callers see #unauthorized.
        .procedure(rpc("ping"), |_, _| async move { Ok(Value::from("pong")) })
        .topic(CHAT, Topic::open())
        .topic(BENCH, Topic::open())
        .auth(
            AuthConfig::new(users)
                .unauthenticated_permissions(open)
                // Unauthenticated sessions are welcome here (wamp-cli without credentials).
                .timeout(Duration::ZERO),
        )
}

/// `add`: integers stay integers; any float makes the sum a float.
fn add(args: &[Value]) -> Result<Value, CallError> {
    let mut int_sum: i64 = 0;
    let mut float_sum = 0.0;
    let mut is_float = false;
    for (i, arg) in args.iter().enumerate() {
        match arg.as_i64() {
            Some(n) if !is_float => match int_sum.checked_add(n) {
                Some(s) => int_sum = s,
                None => {
                    is_float = true;
                    float_sum = int_sum as f64 + n as f64;
                }
            },
            _ => match arg.as_f64() {
                Some(x) => {
                    if !is_float {
                        is_float = true;
                        float_sum = int_sum as f64;
                    }
                    float_sum += x;
                }
                None => {
                    return Err(CallError::new(
                        "http://wamptutorial/error#not-a-number",
                        format!("argument {} is not a number: {arg}", i + 1),
                    ))
                }
            },
        }
    }
    Ok(if is_float {
        Value::from(float_sum)
    } else {
        Value::from(int_sum)
    })
}

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const WAMP1_JS: &str = include_str!("../assets/wamp1.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The HTTP app: the demo page and its scripts, and the WAMP endpoint at `/ws`.
pub fn app(router: Router) -> axum::Router {
    let html = || async { asset("text/html; charset=utf-8", INDEX_HTML) };
    axum::Router::new()
        .route("/", get(html))
        .route("/index.html", get(html))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/wamp1.js",
            get(|| async { asset("text/javascript; charset=utf-8", WAMP1_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/ws",
            get(
                |State(router): State<Router>,
                 peer: Option<
                    axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>,
                >,
                 headers: HeaderMap,
                 ws: WebSocketUpgrade| async move {
                    crate::axum_handler_with_peer(router, peer.map(|p| p.0 .0), headers, ws)
                },
            ),
        )
        .with_state(router)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn add_sums_numbers() {
        assert_eq!(add(&[]).unwrap(), json!(0));
        assert_eq!(add(&[json!(23), json!(99)]).unwrap(), json!(122));
        assert_eq!(add(&[json!(1), json!(2.5)]).unwrap(), json!(3.5));
        assert_eq!(
            add(&[json!(i64::MAX), json!(1)]).unwrap(),
            json!(i64::MAX as f64 + 1.0)
        );
        let e = add(&[json!(1), json!("x")]).unwrap_err();
        assert!(e.desc.contains("argument 2"), "{}", e.desc);
    }
}
