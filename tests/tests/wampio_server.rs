//! wamp-client against the wamp.io 0.0.4 server (npm, Node; `tests/interop/node/wampio_server.js`).
//!
//! wamp.io is a partial WAMP v1 server. These tests pin what it does, so that each of its
//! shortfalls is on record (COMPATIBILITY.md) and our client is shown to cope with them:
//! - CALLERROR is always `http://autobahn.tavendo.de/error#generic` with `String(err)`;
//! - PREFIX is stored but CURIEs are never resolved;
//! - element 3 of PUBLISH is read as a truthy/falsy excludeMe: an exclude list leaves out the
//!   publisher (not the listed sessions) and eligible is ignored;
//! - answers given asynchronously go out under the call id of the latest CALL;
//! - no WAMP-CRA.
//!
//! wamp.io logs every frame it sends (`--debug`), so recipient checks compare with its own log.

use std::time::Duration;

use serde_json::{json, Value};
use wamp_client::{Error, PublishOptions};
use wamp_tests::{events_until, limited, options, steps, warm_up, PeerServer, CHAT, RPC};

const GENERIC: &str = "http://autobahn.tavendo.de/error#generic";

/// Payloads of the EVENTs wamp.io logged as sent on the connection whose WELCOME carried
/// `session`.
fn events_sent_to(server: &PeerServer, session: &str) -> Vec<Value> {
    let frames = server.frames();
    let Some(conn) = frames
        .iter()
        .find(|f| f.msg.get(0) == Some(&json!(0)) && f.msg.get(1) == Some(&json!(session)))
        .map(|f| f.conn.clone())
    else {
        return Vec::new();
    };
    frames
        .into_iter()
        .filter(|f| f.conn == conn && f.msg.get(0) == Some(&json!(8)))
        .filter_map(|f| f.msg.get(2).cloned())
        .collect()
}

#[tokio::test]
#[ignore = "needs the Node peers: run tests/interop/run.sh"]
async fn welcome_with_a_numeric_session_id_opens_a_session() {
    limited("welcome_with_a_numeric_session_id_opens_a_session", async {
        let s = PeerServer::wampio();
        let c = s.connect().await;
        assert_eq!(
            c.server_ident().as_deref(),
            Some("wamp.io"),
            "{}",
            s.frames_text(3)
        );
        let id = c.session_id().unwrap_or_default();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "wamp.io's session ids are digits of Math.random(); got {id:?}"
        );
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the Node peers: run tests/interop/run.sh"]
async fn calls_by_full_uri_round_trip() {
    limited("calls_by_full_uri_round_trip", async {
        let s = PeerServer::wampio();
        let c = s.connect().await;
        let echo = format!("{RPC}echo");
        for v in [
            json!("hello"),
            json!(null),
            json!({"a": [1, 2.5, "x"]}),
            json!(-3),
        ] {
            s.expect_result(&c, &echo, vec![v.clone()], v).await;
        }
        s.expect_result(&c, &echo, vec![], json!(null)).await;
        s.expect_result(
            &c,
            &format!("{RPC}add"),
            vec![json!(1), json!(2), json!(3.5)],
            json!(6.5),
        )
        .await;
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the Node peers: run tests/interop/run.sh"]
async fn errors_are_generic_with_the_javascript_error_text() {
    limited("errors_are_generic_with_the_javascript_error_text", async {
        let s = PeerServer::wampio();
        let c = s.connect().await;
        s.expect_error(
            &c,
            &format!("{RPC}throw"),
            vec![],
            GENERIC,
            "Error: An exception",
            None,
        )
        .await;
        let proc = format!("{RPC}doesnotexist");
        let desc = format!("Error: no such procedure {proc}");
        s.expect_error(&c, &proc, vec![], GENERIC, &desc, None)
            .await;
        s.expect_result(
            &c,
            &format!("{RPC}echo"),
            vec![json!("alive")],
            json!("alive"),
        )
        .await;
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the Node peers: run tests/interop/run.sh"]
async fn curie_calls_are_not_resolved_by_wampio() {
    limited("curie_calls_are_not_resolved_by_wampio", async {
        let s = PeerServer::wampio();
        let c = s.connect().await;
        c.prefix("calc", RPC).await.expect("PREFIX");
        // wamp.io keeps the PREFIX but hands the CURIE to the application unresolved
        s.expect_error(
            &c,
            "calc:echo",
            vec![json!("x")],
            GENERIC,
            "Error: no such procedure calc:echo",
            None,
        )
        .await;
        assert!(
            s.received(1).contains(&json!([1, "calc", RPC])),
            "DEVIATION OF OURS: PREFIX not sent as [1, prefix, uri]: {:?}",
            s.received(1)
        );
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the Node peers: run tests/interop/run.sh"]
async fn pubsub_recipients_follow_wampio_excludeme_only_semantics() {
    limited(
        "pubsub_recipients_follow_wampio_excludeme_only_semantics",
        async {
            let s = PeerServer::wampio();
            let a = s.connect().await;
            let b = s.connect().await;
            let (ida, idb) = (a.session_id().unwrap(), b.session_id().unwrap());
            let mut sub_a = a.subscribe(CHAT).await.expect("subscribe");
            let mut sub_b = b.subscribe(CHAT).await.expect("subscribe");
            warm_up(&a, CHAT, &mut [&mut sub_a, &mut sub_b]).await;
            // (step, options, wamp.io's recipients, what WAMP v1 means)
            let cases = [
                (
                    "plain",
                    PublishOptions::new(),
                    "B",
                    "B (publisher left out, like Autobahn)",
                ),
                (
                    "excludeMe false",
                    PublishOptions::new().exclude_me(false),
                    "AB",
                    "AB",
                ),
                (
                    "excludeMe true",
                    PublishOptions::new().exclude_me(true),
                    "B",
                    "B",
                ),
                (
                    "exclude [B]",
                    PublishOptions::new().exclude([idb.clone()]),
                    "B",
                    "A",
                ),
                (
                    "eligible [A]",
                    PublishOptions::new().eligible([ida.clone()]),
                    "B",
                    "A",
                ),
            ];
            for (step, opts, _, _) in &cases {
                a.publish_with(CHAT, json!({ "step": step }), opts.clone())
                    .await
                    .expect("publish");
            }
            a.publish_with(
                CHAT,
                json!({"barrier": 1}),
                PublishOptions::new().exclude_me(false),
            )
            .await
            .expect("publish");
            let stop = |v: &Value| v.get("barrier").is_some();
            let got_a = steps(&events_until(&mut sub_a, stop).await.expect("A: barrier"));
            let got_b = steps(&events_until(&mut sub_b, stop).await.expect("B: barrier"));
            tokio::time::sleep(Duration::from_millis(200)).await;
            let sent_a = steps(&events_sent_to(&s, &ida));
            let sent_b = steps(&events_sent_to(&s, &idb));
            assert_eq!(
                (&got_a, &got_b),
                (&sent_a, &sent_b),
                "DEVIATION OF OURS: wamp-client did not deliver exactly the EVENTs wamp.io sent \
             (left: received by A, B; right: sent by wamp.io to A, B)"
            );
            for (step, _, want, spec) in &cases {
                let got: String = [("A", &got_a), ("B", &got_b)]
                    .iter()
                    .filter(|(_, g)| g.iter().any(|x| x == step))
                    .map(|(n, _)| *n)
                    .collect();
                assert_eq!(
                got, *want,
                "PUBLISH {step:?}: wamp.io 0.0.4 is recorded as delivering to {want} (WAMP v1: \
                 {spec}); it delivered to {got}: the peer changed"
            );
            }
            a.close().await;
            b.close().await;
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs the Node peers: run tests/interop/run.sh"]
async fn delayed_answers_go_out_under_the_latest_call_id_and_the_client_survives() {
    limited(
        "delayed_answers_go_out_under_the_latest_call_id_and_the_client_survives",
        async {
            let s = PeerServer::wampio();
            let c = s.connect().await;
            let quick = c.with_call_timeout(Some(Duration::from_secs(3)));
            let slow = format!("{RPC}slowecho");
            let first = {
                let (q, p) = (quick.clone(), slow.clone());
                tokio::spawn(async move { q.call(&p, vec![json!(1)]).await })
            };
            tokio::time::sleep(Duration::from_millis(30)).await;
            let second = quick.call(&slow, vec![json!(2)]).await;
            let first = first.await.expect("join");
            // wamp.io answers both under the second call's id: [3, id2, 1] then [3, id2, 2]
            assert!(
            matches!(first, Err(Error::Timeout(_))) && matches!(&second, Ok(v) if *v == json!(1)),
            "wamp.io 0.0.4 is recorded as answering both delayed calls under the latest call id \
             (first call unanswered, second gets the first value); got first {first:?}, second \
             {second:?}\n{}",
            s.frames_text(8)
        );
            // the duplicate answer was ignored and the session still works
            s.expect_result(&c, &format!("{RPC}echo"), vec![json!("ok")], json!("ok"))
                .await;
            assert!(
                c.is_connected(),
                "wamp-client should ignore an answer to no pending call"
            );
            c.close().await;
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs the Node peers: run tests/interop/run.sh"]
async fn wampio_has_no_cra() {
    limited("wampio_has_no_cra", async {
        let s = PeerServer::wampio();
        let c = s.connect().await;
        let got = c.authenticate("guest", "secret-password").await;
        assert!(
            matches!(&got, Err(Error::AuthRefused { uri, .. }) if uri == GENERIC),
            "wamp.io has no WAMP-CRA: authreq is an unknown procedure to it; got {got:?}"
        );
        let refused = options()
            .auth("guest", "secret-password")
            .connect(&s.url())
            .await
            .map(|_| ());
        assert!(
            refused.is_err(),
            "connect with auth against wamp.io should fail"
        );
        c.close().await;
    })
    .await
}
