//! RPC through the client against the real server: results, typed calls, every kind of
//! CALLERROR, prefixes, timeouts and many concurrent calls on one connection.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wamp_client::{Client, ConnectOptions, ConnectionState, Error};
use wamp_server::{CallError, Router};

#[tokio::test]
async fn connect_reports_the_session() {
    init_tracing();
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let session_id = client.session_id().expect("connected");
    assert_eq!(session_id.len(), 16);
    assert!(
        client.server_ident().unwrap().starts_with("wamp-server/"),
        "{:?}",
        client.server_ident()
    );
    assert!(client.is_connected());
    assert!(matches!(
        client.state(),
        ConnectionState::Connected { session_id: ref s, .. } if *s == session_id
    ));
    assert_eq!(client.url(), server.url());
    // Nothing has changed since connect returned.
    sync(&client).await;
    assert!(!client.state_changes().has_changed().unwrap());
    wait_until("the server to list the session", || {
        server.router.session_ids().contains(&session_id)
    })
    .await;
}

#[tokio::test]
async fn free_function_connect_works() {
    let server = TestServer::start(tutorial()).await;
    let client = within("connect", wamp_client::connect(&server.url()))
        .await
        .unwrap();
    sync(&client).await;
}

#[tokio::test]
async fn call_returns_the_result() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    assert_eq!(
        client.call("rpc:echo", vec![json!("test")]).await.unwrap(),
        json!("test")
    );
    // Full URIs, structured values, null and no arguments at all.
    let value = json!({"a": [1, 2.5, null, "x"], "b": {"c": true}});
    assert_eq!(
        client
            .call(&format!("{RPC}echo"), vec![value.clone()])
            .await
            .unwrap(),
        value
    );
    assert_eq!(
        client.call("rpc:echo", vec![Value::Null]).await.unwrap(),
        Value::Null
    );
    assert_eq!(client.call("rpc:echo", vec![]).await.unwrap(), Value::Null);
    assert_eq!(
        client
            .call("rpc:add", vec![json!(23), json!(99)])
            .await
            .unwrap(),
        json!(122)
    );
}

#[tokio::test]
async fn call_typed_encodes_arguments_and_decodes_the_result() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
        y: i32,
    }
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let sum: i64 = client.call_typed("rpc:add", (1, 2, 3)).await.unwrap();
    assert_eq!(sum, 6);
    let sum: f64 = client.call_typed("rpc:add", [1.5, 2.0]).await.unwrap();
    assert_eq!(sum, 3.5);
    let p: Point = client
        .call_typed("rpc:echo", (Point { x: 1, y: -2 },))
        .await
        .unwrap();
    assert_eq!(p, Point { x: 1, y: -2 });
    let none: Option<String> = client.call_typed("rpc:echo", ()).await.unwrap();
    assert_eq!(none, None);
    // The result does not fit the requested type.
    let err = client
        .call_typed::<String, _>("rpc:add", (1, 2))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");
    // Arguments that are not a sequence.
    let err = client
        .call_typed::<Value, _>("rpc:echo", "not a tuple")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Encode(_)), "{err}");
}

#[tokio::test]
async fn call_errors_carry_uri_description_and_details() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;

    let err = client.call("rpc:nosuch", vec![]).await.unwrap_err();
    assert!(
        matches!(&err, Error::CallError { uri, desc, details: None }
            if uri == "http://api.wamp.ws/error#notfound" && desc == "not found error"),
        "{err:?}"
    );
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#notfound")
    );

    let err = client.call("rpc:ping", vec![]).await.unwrap_err();
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#unauthorized")
    );

    let err = client.call("rpc:throw", vec![]).await.unwrap_err();
    match err {
        Error::CallError { uri, desc, details } => {
            assert_eq!(uri, "http://api.wamp.ws/error#internal");
            assert_eq!(desc, "internal error");
            assert_eq!(details, Some(json!("An exception")));
        }
        other => panic!("{other:?}"),
    }

    let err = client
        .call("rpc:add", vec![json!(1), json!("x")])
        .await
        .unwrap_err();
    match err {
        Error::CallError { uri, desc, .. } => {
            assert_eq!(uri, "http://wamptutorial/error#not-a-number");
            assert!(desc.contains("argument 2"), "{desc}");
        }
        other => panic!("{other:?}"),
    }
    // The connection is unaffected.
    sync(&client).await;
}

#[tokio::test]
async fn application_error_details_of_any_shape() {
    let router = Router::builder()
        .procedure("http://x/fail", |_, _| async move {
            Err::<Value, _>(
                CallError::new("http://x/error#too-big", "1001 too big").with_details(json!({
                    "max": 1000,
                    "got": [1001]
                })),
            )
        })
        .build();
    let server = TestServer::start(router).await;
    let client = server.client().await;
    let err = client.call("http://x/fail", vec![]).await.unwrap_err();
    match err {
        Error::CallError { uri, desc, details } => {
            assert_eq!(uri, "http://x/error#too-big");
            assert_eq!(desc, "1001 too big");
            assert_eq!(details, Some(json!({"max": 1000, "got": [1001]})));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn own_prefixes_resolve_on_the_server() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    // Unknown to the server until PREFIX is sent.
    let err = client.call("calc:add", vec![json!(1)]).await.unwrap_err();
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#notfound")
    );
    client.prefix("calc", RPC).await.unwrap();
    assert_eq!(
        client
            .call("calc:add", vec![json!(1), json!(2)])
            .await
            .unwrap(),
        json!(3)
    );
    // Prefixes from the options are sent on connect.
    let client = server
        .client_with(ConnectOptions::new().prefix("t", RPC))
        .await;
    assert_eq!(
        client.call("t:echo", vec![json!(5)]).await.unwrap(),
        json!(5)
    );
}

fn slow_router() -> Router {
    Router::builder()
        .procedure("http://x/slow", |_, args: Vec<Value>| async move {
            let ms = args.first().and_then(Value::as_u64).unwrap_or(60_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!("slow done"))
        })
        .procedure("http://x/echo", |_, args: Vec<Value>| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Null))
        })
        .build()
}

#[tokio::test]
async fn per_call_timeout() {
    let server = TestServer::start(slow_router()).await;
    let client = server
        .client_with(ConnectOptions::new().call_timeout(Some(Duration::from_secs(30))))
        .await;
    assert_eq!(client.call_timeout(), Some(Duration::from_secs(30)));
    let quick = client.with_call_timeout(Some(Duration::from_millis(100)));
    let err = quick
        .call("http://x/slow", vec![json!(1_000)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(100)),
        "{err}"
    );
    assert!(err.is_connection_error());
    // The late answer arrives and is ignored; the connection keeps working, including for
    // the handle with the short timeout.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        quick.call("http://x/echo", vec![json!(1)]).await.unwrap(),
        json!(1)
    );
    // The original handle kept its own timeout.
    assert_eq!(
        client
            .call("http://x/slow", vec![json!(300)])
            .await
            .unwrap(),
        json!("slow done")
    );
}

#[tokio::test]
async fn a_cancelled_call_does_not_disturb_others() {
    let server = TestServer::start(slow_router()).await;
    let client = server.client().await;
    let slow = client.call("http://x/slow", vec![json!(300)]);
    // Dropping the future abandons the call.
    assert!(tokio::time::timeout(Duration::from_millis(50), slow)
        .await
        .is_err());
    assert_eq!(
        client
            .call("http://x/echo", vec![json!("ok")])
            .await
            .unwrap(),
        json!("ok")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        client.call("http://x/echo", vec![json!(2)]).await.unwrap(),
        json!(2)
    );
}

#[tokio::test]
async fn slow_calls_do_not_delay_fast_ones() {
    let server = TestServer::start(slow_router()).await;
    let client = server.client().await;
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/slow", vec![json!(2_000)]).await }
    });
    for i in 0..20 {
        assert_eq!(
            client.call("http://x/echo", vec![json!(i)]).await.unwrap(),
            json!(i)
        );
    }
    assert!(
        !slow.is_finished(),
        "the fast calls waited for the slow one"
    );
    assert_eq!(
        within("the slow call", slow).await.unwrap().unwrap(),
        "slow done"
    );
}

#[tokio::test]
async fn a_thousand_concurrent_calls_on_one_connection() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000i64 {
        let client: Client = client.clone();
        tasks.spawn(async move {
            let sum: i64 = client.call_typed("rpc:add", (i, 1)).await?;
            Ok::<_, Error>((i, sum))
        });
    }
    let mut answered = 0;
    within("1000 answers", async {
        while let Some(joined) = tasks.join_next().await {
            let (i, sum) = joined.unwrap().unwrap();
            assert_eq!(sum, i + 1);
            answered += 1;
        }
    })
    .await;
    assert_eq!(answered, 1000);
    assert_eq!(server.router.session_count(), 1);
}

#[tokio::test]
async fn concurrent_calls_from_one_task() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let calls = (0..1000).map(|i| client.call("rpc:echo", vec![json!(i)]));
    let results = within("1000 answers", futures::future::join_all(calls)).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), json!(i));
    }
}

/// 1,000 pipelined calls, each sending and returning 64 KiB, against a server whose outbox
/// for a session holds only 64 frames: a client that stopped reading while it writes would
/// let that outbox fill and be closed (1008). The driver reads while its writer task writes,
/// so every call is answered on the first session.
#[tokio::test]
async fn pipelined_large_results_do_not_get_the_client_closed() {
    init_tracing();
    const BIG: &str = "http://x/big";
    let router = Router::builder()
        .outbox_capacity(64)
        .procedure(BIG, |_ctx, args: Vec<Value>| async move {
            // Echo the 64 KiB text with the caller's tag in front.
            Ok(json!([args[0].clone(), args[1].clone()]))
        })
        .build();
    let server = TestServer::start(router).await;
    let client = server
        .client_with(ConnectOptions::new().call_timeout(Some(Duration::from_secs(120))))
        .await;
    let session = client.session_id().unwrap();
    let blob = "x".repeat(64 * 1024);
    let calls = (0..1000).map(|i| client.call(BIG, vec![json!(i), json!(blob)]));
    let results = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(calls))
        .await
        .expect("1000 large answers in time");
    for (i, r) in results.into_iter().enumerate() {
        let r = r.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(r[0], json!(i));
        assert_eq!(r[1].as_str().map(str::len), Some(64 * 1024), "call {i}");
    }
    assert_eq!(client.session_id(), Some(session.clone()), "no reconnect");
    assert_eq!(server.router.session_ids(), vec![session]);
}
