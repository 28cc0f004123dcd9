//! wamp-client against the AutobahnPython 0.8.15 server (`ab_server.py`): RPC.
//!
//! Expectations are Autobahn's documented behaviour (the header of `ab_server.py`); a failure
//! says whether Autobahn's frame or our client's reading of it deviated.

use serde_json::json;
use wamp_client::Error;
use wamp_tests::{limited, PeerServer, APP_ERR, ERR, RPC};

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn welcome_from_autobahn_opens_a_session() {
    limited("welcome_from_autobahn_opens_a_session", async {
        let ab = PeerServer::autobahn(&[]);
        let client = ab.connect().await;
        assert_eq!(
            client.server_ident().as_deref(),
            Some("Autobahn/0.8.15"),
            "wamp-client should report the serverIdent of Autobahn's WELCOME\n{}",
            ab.log_tail(10)
        );
        let id = client.session_id().unwrap_or_default();
        assert!(
            id.len() == 16,
            "Autobahn's session ids are 16 characters (util.newid), got {id:?}: peer deviated"
        );
        client.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn call_results_round_trip_every_json_type() {
    limited("call_results_round_trip_every_json_type", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect().await;
        let echo = format!("{RPC}echo");
        for v in [
            json!("hello"),
            json!("h\u{e9}llo \u{2603} \"q\" \\"),
            json!(42),
            json!(-7),
            json!(3.25),
            json!(true),
            json!(null),
            json!([1, "a", null, [2.5]]),
            json!({"a": {"b": [1, 2, {"c": null}]}}),
        ] {
            ab.expect_result(&c, &echo, vec![v.clone()], v).await;
        }
        // extra arguments are passed on; echo returns the first
        ab.expect_result(&c, &echo, vec![json!("first"), json!(2)], json!("first"))
            .await;
        // no arguments at all: [2, id, proc]
        ab.expect_result(&c, &echo, vec![], json!(null)).await;
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn call_with_several_arguments_and_typed_results() {
    limited("call_with_several_arguments_and_typed_results", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect().await;
        let add = format!("{RPC}add");
        ab.expect_result(
            &c,
            &add,
            vec![json!(1), json!(2), json!(3), json!(4)],
            json!(10),
        )
        .await;
        ab.expect_result(&c, &add, vec![json!(1.5), json!(2.25)], json!(3.75))
            .await;
        ab.expect_result(&c, &add, vec![], json!(0)).await;
        let sum: i64 = c
            .call_typed(&add, (20, 22))
            .await
            .unwrap_or_else(|e| panic!("call_typed add(20, 22): {e}\n{}", ab.frames_text(6)));
        assert_eq!(
            sum, 42,
            "typed call: wamp-client decoded {sum}, Autobahn sent 42"
        );
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn prefix_then_curie_call_is_resolved_by_autobahn() {
    limited("prefix_then_curie_call_is_resolved_by_autobahn", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect().await;
        c.prefix("calc", RPC).await.expect("PREFIX");
        ab.expect_result(&c, "calc:add", vec![json!(2), json!(3)], json!(5))
            .await;
        // re-definition overwrites
        c.prefix("calc", "http://wamptutorial/")
            .await
            .expect("PREFIX");
        ab.expect_result(&c, "calc:rpc#echo", vec![json!("re")], json!("re"))
            .await;
        // our client sends CURIEs as given (docs/PROTOCOL.md section 2: shortest form)
        let sent: Vec<_> = ab
            .received(2)
            .into_iter()
            .filter_map(|m| m.get(2).and_then(|p| p.as_str()).map(str::to_string))
            .collect();
        assert!(
            sent.contains(&"calc:add".to_string()),
            "wamp-client should send the CURIE calc:add as given; Autobahn received {sent:?}"
        );
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn application_error_carries_autobahn_uri_and_desc() {
    limited("application_error_carries_autobahn_uri_and_desc", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect().await;
        // Autobahn: Exception(uri, desc) -> [4, id, uri, desc], no details
        let throw = format!("{RPC}throw");
        let uri = format!("{APP_ERR}throw");
        ab.expect_error(&c, &throw, vec![], &uri, "An exception", None)
            .await;
        let add = format!("{RPC}add");
        let uri = format!("{APP_ERR}invalid-argument");
        ab.expect_error(
            &c,
            &add,
            vec![json!(1), json!("x")],
            &uri,
            "add: argument 1 is not a number",
            None,
        )
        .await;
        // the session survives
        ab.expect_result(
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
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn unknown_procedure_is_no_such_rpc_endpoint() {
    limited("unknown_procedure_is_no_such_rpc_endpoint", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect().await;
        for proc in [
            format!("{RPC}doesnotexist"),
            format!("{RPC}ping"),
            format!("{RPC}whoami"),
        ] {
            let desc = format!("No RPC endpoint registered for {proc}.");
            ab.expect_error(
                &c,
                &proc,
                vec![],
                &format!("{ERR}NoSuchRPCEndpoint"),
                &desc,
                None,
            )
            .await;
        }
        // an unknown prefix passes through unresolved
        ab.expect_error(
            &c,
            "nope:echo",
            vec![],
            &format!("{ERR}NoSuchRPCEndpoint"),
            "No RPC endpoint registered for nope:echo.",
            None,
        )
        .await;
        c.close().await;
    })
    .await
}

/// Autobahn shrinks CALLERROR URIs with the session's prefixes; wamp-client hands the error
/// URI over exactly as received (its documented behaviour), so the application sees the CURIE.
#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn callerror_uri_shrunk_by_autobahn_is_reported_as_received() {
    limited(
        "callerror_uri_shrunk_by_autobahn_is_reported_as_received",
        async {
            let ab = PeerServer::autobahn(&[]);
            let c = ab.connect().await;
            c.prefix("err", APP_ERR).await.expect("PREFIX");
            ab.expect_error(
                &c,
                &format!("{RPC}throw"),
                vec![],
                "err:throw",
                "An exception",
                None,
            )
            .await;
            c.prefix("api", ERR).await.expect("PREFIX");
            let proc = format!("{RPC}nothere");
            let got = c.call(&proc, vec![]).await;
            assert!(
                matches!(&got, Err(Error::CallError { uri, .. }) if uri == "api:NoSuchRPCEndpoint"),
                "Autobahn shrinks {ERR}NoSuchRPCEndpoint to api:NoSuchRPCEndpoint and wamp-client \
             reports it as received; got {got:?}\n{}",
                ab.frames_text(6)
            );
            c.close().await;
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn concurrent_calls_are_matched_by_call_id() {
    limited("concurrent_calls_are_matched_by_call_id", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect().await;
        let add = format!("{RPC}add");
        let calls = (0..50).map(|i| {
            let c = c.clone();
            let add = add.clone();
            async move { (i, c.call(&add, vec![json!(i), json!(1000)]).await) }
        });
        for (i, got) in futures::future::join_all(calls).await {
            match got {
                Ok(v) if v == json!(i + 1000) => {}
                other => {
                    let answer = ab.answer_to(&add, &[json!(i), json!(1000)]);
                    panic!(
                        "call {i}: expected {}, got {other:?}; Autobahn answered {answer:?} \
                         (if that is right, wamp-client mismatched the call ids)",
                        i + 1000
                    )
                }
            }
        }
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn default_prefixes_of_the_extended_ab_server() {
    limited("default_prefixes_of_the_extended_ab_server", async {
        // ab_server.py --default-prefixes mimics the tutorial server's rpc:/event: prefixes
        let ab = PeerServer::autobahn(&["--default-prefixes"]);
        let c = ab.connect().await;
        ab.expect_result(&c, "rpc:echo", vec![json!("tutorial")], json!("tutorial"))
            .await;
        c.close().await;
    })
    .await
}
