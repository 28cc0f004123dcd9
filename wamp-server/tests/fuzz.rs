//! Hostile sequences (`docs/PROTOCOL.md` section 7): a property test drives real sessions over
//! sockets with random sequences of client messages, valid and invalid, and checks the
//! invariants after each: every CALL is answered exactly once unless the session was closed
//! with a documented code (then at most once); no panic anywhere in the process; once the
//! session has ended, the router holds nothing of it (no session, no subscription, no call
//! still running).
//!
//! 4,000 sequences by default; set `WAMP_FUZZ_CASES` for more. This binary counts every panic
//! of the process, so its router has no procedure that panics on purpose.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{count_panics, eventually_every, panics, test_router, Client, TestServer, WAIT};
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Ws;
use wamp_proto::Permissions;
use wamp_server::{AuthConfig, AuthUser, InMemoryAuth, Router, Topic};

/// One thing a client may send.
#[derive(Debug, Clone)]
enum Op {
    Prefix(&'static str, &'static str),
    Call(&'static str, Vec<Value>),
    Subscribe(&'static str),
    Unsubscribe(&'static str),
    Publish(&'static str, Value, Option<Value>),
    Raw(&'static str),
    Binary,
    Oversize,
}

const PROCS: &[&str] = &[
    "http://test/rpc#echo",
    "http://test/rpc#args",
    "http://test/rpc#live",
    "http://test/rpc#fail",
    "http://test/rpc#kill",
    "http://test/rpc#nope",
    "rpc:echo",
    "rpc:live",
    "nope:echo",
    "http://api.wamp.ws/procedure#authreq",
    "http://api.wamp.ws/procedure#auth",
];
const TOPICS: &[&str] = &[
    "http://test/event#a",
    "http://test/event#b",
    "event:a",
    "http://test/closed",
    "http://test/checked",
    "http://test/brokered",
];
const RAW: &[&str] = &[
    "[",
    "{}",
    "[99]",
    r#"[0,"x",1,"s"]"#,
    r#"[3,"c",1]"#,
    r#"[2,17,"http://test/rpc#echo"]"#,
    r#"[7,"t","e","me"]"#,
    "null",
    r#"[1,"p"]"#,
];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,8}".prop_map(Value::from),
        Just(json!({"k": [1, 2, {"n": null}]})),
        (0u64..40).prop_map(Value::from),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (
            prop::sample::select(vec!["rpc", "event", "nope", "x"]),
            prop::sample::select(vec!["http://test/rpc#", "http://test/event#", "urn:x:"])
        )
            .prop_map(|(p, u)| Op::Prefix(p, u)),
        6 => (prop::sample::select(PROCS), prop::collection::vec(value(), 0..3))
            .prop_map(|(p, a)| Op::Call(p, a)),
        2 => prop::sample::select(TOPICS).prop_map(Op::Subscribe),
        1 => prop::sample::select(TOPICS).prop_map(Op::Unsubscribe),
        2 => (
            prop::sample::select(TOPICS),
            value(),
            prop_oneof![
                Just(None),
                any::<bool>().prop_map(|b| Some(Value::from(b))),
                Just(Some(json!([]))),
                Just(Some(Value::Null)),
            ]
        )
            .prop_map(|(t, e, x)| Op::Publish(t, e, x)),
        1 => prop::sample::select(RAW).prop_map(Op::Raw),
        1 => Just(Op::Binary),
        1 => Just(Op::Oversize),
    ]
}

/// The close codes a session may end with here, each documented in `wamp_server::close`.
const DOCUMENTED: &[u16] = &[1002, 1003, 1008, 1009, 3000];

/// Calls of `http://test/rpc#live` whose futures are still alive.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Live;

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

fn router() -> Router {
    let auth =
        AuthConfig::new(InMemoryAuth::new().user("k", AuthUser::new("s", Permissions::all())))
            .allow_anonymous(Permissions::all())
            .unauthenticated_permissions(Permissions::all())
            .failure_delay(Duration::from_millis(2))
            .timeout(Duration::ZERO);
    test_router()
        .max_message_size(4096)
        .default_prefix("rpc", "http://test/rpc#")
        .default_prefix("event", "http://test/event#")
        .procedure("http://test/rpc#live", |_, args: Vec<Value>| async move {
            LIVE.fetch_add(1, Ordering::SeqCst);
            let _live = Live;
            let ms = args.first().and_then(Value::as_u64).unwrap_or(0).min(8);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!(ms))
        })
        .topic("http://test/closed", Topic::closed())
        .topic(
            "http://test/checked",
            Topic::open().on_subscribe(|ctx| async move { ctx.session_id.len() % 2 == 0 }),
        )
        .topic(
            "http://test/brokered",
            Topic::open().on_publish(|_, mut p| async move {
                p.event = json!({"wrapped": p.event});
                Some(p)
            }),
        )
        .auth(auth)
        .build()
}

/// Sends `ops` on a fresh session, then a marker call, and reads until every call is
/// answered or the session ends. Returns the answers per call id and the close code, if any.
async fn drive(
    server: &TestServer,
    ops: &[Op],
) -> (Vec<String>, HashMap<String, usize>, Option<u16>) {
    let mut c = Client::connect(&server.url()).await;
    let mut sent = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let frame = match op {
            Op::Prefix(p, u) => Ws::text(json!([1, p, u]).to_string()),
            Op::Call(p, args) => {
                let id = format!("c{i}");
                sent.push(id.clone());
                let mut m = vec![json!(2), json!(id), json!(p)];
                m.extend(args.iter().cloned());
                Ws::text(Value::Array(m).to_string())
            }
            Op::Subscribe(t) => Ws::text(json!([5, t]).to_string()),
            Op::Unsubscribe(t) => Ws::text(json!([6, t]).to_string()),
            Op::Publish(t, e, None) => Ws::text(json!([7, t, e]).to_string()),
            Op::Publish(t, e, Some(x)) => Ws::text(json!([7, t, e, x]).to_string()),
            Op::Raw(text) => Ws::text(*text),
            Op::Binary => Ws::binary(vec![1, 2, 3]),
            Op::Oversize => Ws::text(format!("[2,\"big\",\"{}\"]", "x".repeat(5000))),
        };
        if c.ws.send(frame).await.is_err() {
            break;
        }
    }
    let _ =
        c.ws.send(Ws::text(r#"[2,"final","http://test/rpc#echo"]"#))
            .await;
    sent.push("final".to_string());
    let mut answers: HashMap<String, usize> = HashMap::new();
    let mut close = None;
    loop {
        let Ok(msg) = tokio::time::timeout(WAIT, c.ws.next()).await else {
            panic!("the session neither answered every call nor ended: {ops:?} {answers:?}");
        };
        match msg {
            Some(Ok(Ws::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v[0] == 3 || v[0] == 4 {
                    let id = v[1].as_str().unwrap().to_string();
                    *answers.entry(id).or_default() += 1;
                    // Slow calls may be answered after the final one.
                    if sent.iter().all(|id| answers.contains_key(id)) {
                        break;
                    }
                }
            }
            Some(Ok(Ws::Close(frame))) => {
                close = Some(frame.map_or(1005, |f| u16::from(f.code)));
                break;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    (sent, answers, close)
}

#[test]
fn random_client_sequences_keep_the_invariants() {
    count_panics();
    let cases = std::env::var("WAMP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(TestServer::start(router()));
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 0..24))| {
        rt.block_on(async {
            let (sent, answers, close) = drive(&server, &ops).await;
            for (id, n) in &answers {
                assert_eq!(*n, 1, "call {id} answered {n} times: {ops:?}");
                assert!(sent.contains(id), "an answer to a call never made: {id}");
            }
            match close {
                Some(code) => assert!(
                    DOCUMENTED.contains(&code),
                    "closed with undocumented code {code}: {ops:?}"
                ),
                None => {
                    // Not closed: every call was answered.
                    for id in &sent {
                        assert!(answers.contains_key(id), "call {id} unanswered: {ops:?}");
                    }
                }
            }
            eventually_every(Duration::from_millis(1), "the router holds nothing of the session", || {
                server.router.session_count() == 0
                    && TOPICS.iter().all(|t| {
                        server.router.subscribers(t).is_empty()
                            && server
                                .router
                                .subscribers(&t.replace("event:", "http://test/event#"))
                                .is_empty()
                    })
                    && LIVE.load(Ordering::SeqCst) == 0
            })
            .await;
            assert_eq!(panics(), 0, "a panic: {ops:?}");
        });
    });
}
