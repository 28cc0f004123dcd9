//! WAMP-CRA at the wire level (`docs/PROTOCOL.md` section 6): every error row, salted and unsalted
//! flows, clj-wamp's swapped signature order, anonymous auth, the timeout, and the clj-wamp
//! bypass that must not work here.

mod common;

use std::time::Duration;

use common::{test_router, Client, TestServer};
use serde_json::{json, Value};
use wamp_proto::cra::{self, AuthExtra, Challenge};
use wamp_proto::Permissions;
use wamp_server::{AuthConfig, AuthUser, InMemoryAuth};

const AUTHREQ: &str = "http://api.wamp.ws/procedure#authreq";
const AUTH: &str = "http://api.wamp.ws/procedure#auth";

fn foobar_permissions() -> Permissions {
    Permissions::new()
        .allow_call("http://test/rpc#echo")
        .allow_call("http://test/rpc#whoami")
        .allow_pubsub_prefix("http://test/event#", true, true)
}

fn users() -> InMemoryAuth {
    InMemoryAuth::new()
        .user("foobar", AuthUser::new("secret", foobar_permissions()))
        .user(
            "salted",
            AuthUser::salted(
                "secret",
                AuthExtra {
                    salt: "RANDOM SALT".into(),
                    iterations: 1000,
                    keylen: 32,
                },
                Permissions::new().allow_call("http://test/rpc#whoami"),
            ),
        )
        .user(
            "other",
            AuthUser::new("pw2", Permissions::new().allow_call("http://test/rpc#args")),
        )
}

fn config() -> AuthConfig {
    AuthConfig::new(users()).failure_delay(Duration::ZERO)
}

async fn server_with(config: AuthConfig) -> TestServer {
    TestServer::start(test_router().auth(config).build()).await
}

/// Runs authreq and returns the challenge text.
async fn challenge(c: &mut Client, key: &str) -> String {
    let reply = c.call("req", AUTHREQ, &[json!(key), Value::Null]).await;
    assert_eq!(reply[0], 3, "authreq failed: {reply}");
    reply[2]
        .as_str()
        .expect("the challenge is a JSON string")
        .to_string()
}

async fn authenticate(c: &mut Client, key: &str, password: &str) -> Value {
    let ch = challenge(c, key).await;
    let sig = cra::client_signature(&ch, password).unwrap();
    c.call("auth", AUTH, &[json!(sig)]).await
}

fn error_frame(call_id: &str, name: &str, desc: &str) -> Value {
    json!([4, call_id, format!("http://api.wamp.ws/error#{name}"), desc])
}

#[tokio::test]
async fn before_auth_nothing_is_allowed() {
    let server = server_with(config()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"c1","http://test/rpc#echo","x"]"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"[4,"c1","http://api.wamp.ws/error#unauthorized","unauthorized"]"#
    );
    // An unknown procedure is not found, whatever the permissions.
    assert_eq!(
        c.call("c2", "http://test/rpc#nope", &[]).await[2],
        "http://api.wamp.ws/error#notfound"
    );
    c.send(r#"[5,"http://test/event#t"]"#).await;
    c.send(r#"[7,"http://test/event#t","x"]"#).await;
    assert_eq!(c.call("c3", "http://test/rpc#echo", &[]).await[0], 4);
    c.expect_silence().await;
    assert!(server.router.subscribers("http://test/event#t").is_empty());
}

#[tokio::test]
async fn unsalted_flow_grants_permissions_only_after_auth() {
    let server = server_with(config()).await;
    let mut c = server.client().await;
    let text = c
        .call(
            "req",
            AUTHREQ,
            &[json!("foobar"), json!({"client": "test"})],
        )
        .await[2]
        .as_str()
        .unwrap()
        .to_string();
    let ch = Challenge::parse(&text).unwrap();
    assert_eq!(ch.authkey.as_deref(), Some("foobar"));
    assert_eq!(ch.sessionid, c.session_id);
    assert_eq!(ch.extra, json!({"client": "test"}));
    assert_eq!(ch.permissions, foobar_permissions());
    assert_eq!(ch.authid.len(), 16);
    assert!(
        ch.timestamp.ends_with('Z') && ch.timestamp.len() == 24,
        "{}",
        ch.timestamp
    );
    assert!(ch.authextra.is_none());
    // Still nothing allowed while the challenge is pending.
    assert_eq!(
        c.call("x", "http://test/rpc#echo", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
    let sig = cra::sign("secret", &text);
    let reply = c.call("auth", AUTH, &[json!(sig)]).await;
    assert_eq!(reply, json!([3, "auth", foobar_permissions().to_value()]));
    assert_eq!(
        c.call("e", "http://test/rpc#echo", &[json!(1)]).await,
        json!([3, "e", 1])
    );
    assert_eq!(
        c.call("w", "http://test/rpc#whoami", &[]).await[2],
        json!({"session": c.session_id, "key": "foobar"})
    );
    // Prefix pubsub permission.
    c.send(r#"[5,"http://test/event#any"]"#).await;
    c.send(r#"[7,"http://test/event#any","ok"]"#).await;
    assert_eq!(c.recv().await, json!([8, "http://test/event#any", "ok"]));
    // Not in the permissions: still unauthorized.
    assert_eq!(
        c.call("a", "http://test/rpc#args", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
}

#[tokio::test]
async fn salted_flow_with_authextra() {
    let server = server_with(config()).await;
    let mut c = server.client().await;
    let text = challenge(&mut c, "salted").await;
    let ch = Challenge::parse(&text).unwrap();
    assert_eq!(
        ch.authextra,
        Some(json!({"salt": "RANDOM SALT", "iterations": 1000, "keylen": 32}))
    );
    // The plain password does not work as the key: the derived key does.
    let sig = cra::client_signature(&text, "secret").unwrap();
    assert_eq!(
        sig,
        cra::sign("znWa4bxY1glpbQlZziHIlXA2shfF+HoCr9bnmZ5HPQg=", &text)
    );
    let reply = c.call("auth", AUTH, &[json!(sig)]).await;
    assert_eq!(reply[0], 3, "{reply}");
    assert_eq!(
        c.call("w", "http://test/rpc#whoami", &[]).await[2]["key"],
        "salted"
    );
}

#[tokio::test]
async fn clj_wamp_swapped_signature_order_is_accepted() {
    let server = server_with(config()).await;
    let mut c = server.client().await;
    let text = challenge(&mut c, "foobar").await;
    let sig = cra::sign_swapped("secret", &text);
    let reply = c.call("auth", AUTH, &[json!(sig)]).await;
    assert_eq!(reply[0], 3, "{reply}");
}

#[tokio::test]
async fn a_wrong_signature_consumes_the_challenge() {
    let server = server_with(config()).await;
    let mut c = server.client().await;
    let text = challenge(&mut c, "foobar").await;
    assert_eq!(
        c.call("bad", AUTH, &[json!(cra::sign("wrong", &text))])
            .await,
        error_frame(
            "bad",
            "invalid-signature",
            "signature for authentication request is invalid"
        )
    );
    // The right signature for the old challenge no longer helps.
    assert_eq!(
        c.call("late", AUTH, &[json!(cra::sign("secret", &text))])
            .await,
        error_frame(
            "late",
            "no-authentication-requested",
            "no authentication previously requested"
        )
    );
    assert_eq!(
        c.call("x", "http://test/rpc#echo", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
    // A new authreq starts over.
    assert_eq!(authenticate(&mut c, "foobar", "secret").await[0], 3);
    // A null signature is just wrong for a named key.
    let mut d = server.client().await;
    challenge(&mut d, "foobar").await;
    assert_eq!(
        d.call("n", AUTH, &[Value::Null]).await[2],
        "http://api.wamp.ws/error#invalid-signature"
    );
}

#[tokio::test]
async fn the_clj_wamp_bypass_does_not_work() {
    // clj-wamp granted a key's permissions at authreq, before any proof of the secret.
    let server = server_with(config()).await;
    let mut c = server.client().await;
    challenge(&mut c, "foobar").await;
    assert_eq!(
        c.call("sneaky", "http://test/rpc#echo", &[json!("x")])
            .await,
        error_frame("sneaky", "unauthorized", "unauthorized")
    );
    c.send(r#"[5,"http://test/event#t"]"#).await;
    c.assert_alive_unauthorized().await;
    assert!(server.router.subscribers("http://test/event#t").is_empty());
}

trait UnauthorizedAlive {
    async fn assert_alive_unauthorized(&mut self);
}

impl UnauthorizedAlive for Client {
    /// A round trip for a session that may not call anything.
    async fn assert_alive_unauthorized(&mut self) {
        let reply = self.call("ping", "http://test/rpc#echo", &[]).await;
        assert_eq!(reply[0], 4);
    }
}

#[tokio::test]
async fn every_error_row() {
    let server = server_with(config()).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", AUTH, &[json!("sig")]).await,
        error_frame(
            "1",
            "no-authentication-requested",
            "no authentication previously requested"
        )
    );
    assert_eq!(
        c.call("2", AUTHREQ, &[json!("nobody")]).await,
        error_frame("2", "no-such-authkey", "authentication key does not exist")
    );
    assert_eq!(
        c.call("3", AUTHREQ, &[Value::Null, Value::Null]).await,
        error_frame(
            "3",
            "anonymous-auth-forbidden",
            "authentication as anonymous is forbidden"
        )
    );
    assert_eq!(
        c.call("3b", AUTHREQ, &[]).await,
        error_frame(
            "3b",
            "anonymous-auth-forbidden",
            "authentication as anonymous is forbidden"
        )
    );
    let e = c.call("4", AUTHREQ, &[json!(17)]).await;
    assert_eq!(e[2], "http://api.wamp.ws/error#invalid-argument");
    assert!(e[3].as_str().unwrap().contains("authKey"), "{e}");
    let e = c
        .call("5", AUTHREQ, &[json!("foobar"), json!("not an object")])
        .await;
    assert_eq!(e[2], "http://api.wamp.ws/error#invalid-argument");
    assert!(e[3].as_str().unwrap().contains("extra"), "{e}");
    challenge(&mut c, "foobar").await;
    assert_eq!(
        c.call("6", AUTHREQ, &[json!("foobar")]).await,
        error_frame(
            "6",
            "authentication-already-requested",
            "authentication request already issued - authentication pending"
        )
    );
    let e = c.call("7", AUTH, &[json!(42)]).await;
    assert_eq!(e[2], "http://api.wamp.ws/error#invalid-argument");
    assert!(e[3].as_str().unwrap().contains("signature"), "{e}");
    // The invalid argument did not consume the challenge.
    let mut d = server.client().await;
    assert_eq!(authenticate(&mut d, "foobar", "secret").await[0], 3);
    assert_eq!(
        d.call("8", AUTH, &[json!("x")]).await,
        error_frame("8", "already-authenticated", "already authenticated")
    );
    assert_eq!(
        d.call("9", AUTHREQ, &[json!("foobar")]).await,
        error_frame("9", "already-authenticated", "already authenticated")
    );
}

#[tokio::test]
async fn auth_procedures_resolve_curies() {
    let server = server_with(config()).await;
    let mut c = server.client().await;
    c.send(r#"[1,"wamp","http://api.wamp.ws/procedure#"]"#)
        .await;
    let reply = c.call("1", "wamp:authreq", &[json!("foobar")]).await;
    assert_eq!(reply[0], 3);
    let sig = cra::sign("secret", reply[2].as_str().unwrap());
    assert_eq!(c.call("2", "wamp:auth", &[json!(sig)]).await[0], 3);
}

#[tokio::test]
async fn anonymous_when_enabled() {
    let anon = Permissions::new().allow_call("http://test/rpc#echo");
    let server = server_with(config().allow_anonymous(anon.clone())).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", AUTHREQ, &[Value::Null, Value::Null]).await,
        json!([3, "1", null])
    );
    assert_eq!(
        c.call("2", AUTH, &[]).await,
        json!([3, "2", anon.to_value()])
    );
    assert_eq!(
        c.call("3", "http://test/rpc#echo", &[json!(1)]).await,
        json!([3, "3", 1])
    );
    assert_eq!(
        c.call("4", "http://test/rpc#whoami", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
    let mut d = server.client().await;
    d.call("1", AUTHREQ, &[]).await;
    assert_eq!(d.call("2", AUTH, &[Value::Null]).await[0], 3);
}

#[tokio::test]
async fn unauthenticated_permissions_apply_before_auth() {
    let server = server_with(
        config().unauthenticated_permissions(Permissions::new().allow_call("http://test/rpc#echo")),
    )
    .await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", "http://test/rpc#echo", &[json!(2)]).await,
        json!([3, "1", 2])
    );
    assert_eq!(
        c.call("2", "http://test/rpc#whoami", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
    // Once authenticated, the key's permissions replace them.
    authenticate(&mut c, "other", "pw2").await;
    assert_eq!(
        c.call("3", "http://test/rpc#echo", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
    assert_eq!(
        c.call("4", "http://test/rpc#args", &[json!(1)]).await,
        json!([3, "4", [1]])
    );
}

#[tokio::test]
async fn two_sessions_see_only_their_own_permissions() {
    let server = server_with(config()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    authenticate(&mut a, "foobar", "secret").await;
    authenticate(&mut b, "other", "pw2").await;
    assert_eq!(a.call("1", "http://test/rpc#echo", &[]).await[0], 3);
    assert_eq!(b.call("1", "http://test/rpc#echo", &[]).await[0], 4);
    assert_eq!(a.call("2", "http://test/rpc#args", &[]).await[0], 4);
    assert_eq!(b.call("2", "http://test/rpc#args", &[]).await[0], 3);
}

#[tokio::test]
async fn the_timeout_closes_idle_unauthenticated_sessions_only() {
    let server = server_with(config().timeout(Duration::from_millis(300))).await;
    let mut idle = server.client().await;
    let mut good = server.client().await;
    authenticate(&mut good, "foobar", "secret").await;
    let (code, reason) = idle.expect_close().await;
    assert_eq!(code, 4401);
    assert!(reason.contains("authentication timeout"), "{reason}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        good.call("1", "http://test/rpc#echo", &[json!(1)]).await,
        json!([3, "1", 1])
    );
}

#[tokio::test]
async fn a_failing_provider_gives_auth_permissions_error() {
    let provider = |key: String, _extra: serde_json::Map<String, Value>| async move {
        if key == "db-down" {
            Err("the user database is unreachable".to_string())
        } else {
            Ok(Some(AuthUser::new("s", Permissions::all())))
        }
    };
    let server = server_with(AuthConfig::new(provider).failure_delay(Duration::ZERO)).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", AUTHREQ, &[json!("db-down")]).await,
        json!([
            4,
            "1",
            "http://api.wamp.ws/error#auth-permissions-error",
            "the user database is unreachable"
        ])
    );
    assert_eq!(authenticate(&mut c, "anyone", "s").await[0], 3);
    assert_eq!(c.call("2", "http://test/rpc#args", &[]).await[0], 3);
}

#[tokio::test]
async fn without_auth_configured_the_auth_procedures_do_not_exist() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", AUTHREQ, &[json!("x")]).await[2],
        "http://api.wamp.ws/error#notfound"
    );
}

#[tokio::test]
async fn a_failed_auth_is_answered_late_without_holding_up_the_session() {
    // At most 3 s (half the mean plus up to 2.5 means), within the client's 5 s wait.
    let mean = Duration::from_secs(1);
    let server = server_with(AuthConfig::new(users()).failure_delay(mean)).await;
    let mut c = server.client().await;
    challenge(&mut c, "foobar").await;
    let sent = tokio::time::Instant::now();
    c.send_json(json!([2, "a", AUTH, "wrong"])).await;
    // While the answer is held back: a new authreq is refused, other calls are answered.
    c.send_json(json!([2, "r", AUTHREQ, "foobar"])).await;
    c.send_json(json!([2, "e", "http://test/rpc#echo", 1]))
        .await;
    assert_eq!(
        c.recv().await,
        error_frame(
            "r",
            "authentication-already-requested",
            "authentication request already issued - authentication pending"
        )
    );
    assert_eq!(
        c.recv().await.as_array().unwrap()[..3],
        [
            json!(4),
            json!("e"),
            json!("http://api.wamp.ws/error#unauthorized")
        ]
    );
    // The failed auth's answer comes after at least half the mean delay.
    let answer = c.recv().await;
    assert_eq!(answer[1], "a");
    assert_eq!(answer[2], "http://api.wamp.ws/error#invalid-signature");
    assert!(sent.elapsed() >= mean / 2, "{:?}", sent.elapsed());
    // Once it has passed, a new challenge may be requested and answered.
    assert_eq!(authenticate(&mut c, "foobar", "secret").await[0], 3);
}

#[tokio::test]
async fn a_slow_credential_lookup_times_out_without_holding_up_the_session() {
    let provider = |key: String, _extra: serde_json::Map<String, Value>| async move {
        if key == "slow" {
            std::future::pending::<()>().await;
        }
        Ok::<_, String>(Some(AuthUser::new("s", Permissions::all())))
    };
    let config = AuthConfig::new(provider)
        .failure_delay(Duration::ZERO)
        .lookup_timeout(Duration::from_millis(300));
    let server = server_with(config).await;
    let mut c = server.client().await;
    c.send_json(json!([2, "1", AUTHREQ, "slow"])).await;
    // The session reads on while the provider looks up.
    c.send_json(json!([2, "2", AUTHREQ, "slow"])).await;
    c.send_json(json!([2, "3", "http://test/rpc#echo", 1]))
        .await;
    assert_eq!(
        c.recv().await.as_array().unwrap()[..3],
        [
            json!(4),
            json!("2"),
            json!("http://api.wamp.ws/error#authentication-already-requested")
        ]
    );
    assert_eq!(
        c.recv().await.as_array().unwrap()[..3],
        [
            json!(4),
            json!("3"),
            json!("http://api.wamp.ws/error#unauthorized")
        ]
    );
    let timed_out = c.recv().await;
    assert_eq!(timed_out[1], "1");
    assert_eq!(
        timed_out[2],
        "http://api.wamp.ws/error#auth-permissions-error"
    );
    assert_eq!(
        timed_out[3],
        "the credential lookup timed out after 300 ms: try again later"
    );
    // A lookup that answers in time works on the same session.
    assert_eq!(authenticate(&mut c, "quick", "s").await[0], 3);
}
