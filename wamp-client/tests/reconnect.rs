//! Connection loss against the real server: reconnecting after a restart on the same port
//! (prefixes, authentication and subscriptions restored), calls in flight failing, the
//! reconnect policy giving up, `close`, and the driver's life time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;
use wamp_client::{ConnectOptions, ConnectionState, Error, ReconnectPolicy};
use wamp_server::Router;

#[tokio::test]
async fn reconnects_after_a_restart_and_restores_the_session() {
    init_tracing();
    let mut server = TestServer::start(tutorial()).await;
    let addr = server.addr;
    let client = server.client_with(fast_reconnect()).await;
    client.prefix("t", RPC).await.unwrap();
    client
        .prefix("room", "http://wamptutorial/event#")
        .await
        .unwrap();
    client
        .authenticate("guest", "secret-password")
        .await
        .unwrap();
    let mut by_uri = client.subscribe(CHAT).await.unwrap();
    let mut by_curie = client.subscribe("room:chat").await.unwrap();
    let first_session = client.session_id().unwrap();

    server.stop().await;
    let state = wait_state(&client, "the client to notice", |s| !s.is_connected()).await;
    assert!(
        matches!(state, ConnectionState::Reconnecting { attempt, .. } if attempt >= 1),
        "{state:?}"
    );
    assert_eq!(client.session_id(), None);
    assert_eq!(client.server_ident(), None);

    // While down: calls and publishes fail fast, subscriptions are kept for later.
    let err = client.call("rpc:echo", vec![json!(1)]).await.unwrap_err();
    assert!(matches!(err, Error::NotConnected), "{err}");
    let err = client.publish(CHAT, "lost").await.unwrap_err();
    assert!(matches!(err, Error::NotConnected), "{err}");
    let mut made_while_down = client.subscribe(CHAT).await.unwrap();

    let server = TestServer::start_on(addr, tutorial()).await;
    let state = wait_state(&client, "the client to reconnect", |s| s.is_connected()).await;
    let second_session = client.session_id().unwrap();
    assert_ne!(first_session, second_session);
    assert!(
        matches!(state, ConnectionState::Connected { ref session_id, .. } if *session_id == second_session)
    );

    sync(&client).await;
    // Authenticated again (whoami needs it), its own prefix known again, subscribed again.
    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("guest")
    );
    assert_eq!(
        client.call("t:echo", vec![json!("p")]).await.unwrap(),
        json!("p")
    );
    assert_eq!(server.router.subscribers(CHAT), vec![second_session]);

    let other = server.client().await;
    other.publish(CHAT, "after restart").await.unwrap();
    for sub in [&mut by_uri, &mut by_curie, &mut made_while_down] {
        assert_eq!(next_event(sub).await.payload, json!("after restart"));
    }
}

#[tokio::test]
async fn reconnects_after_the_server_drops_the_session() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client_with(fast_reconnect()).await;
    let mut sub = client.subscribe(CHAT).await.unwrap();
    let first = client.session_id().unwrap();
    sync(&client).await;
    assert!(server.router.close_session(&first, 1000, "go away"));
    wait_state(
        &client,
        "a new session",
        |s| matches!(s, ConnectionState::Connected { session_id, .. } if *session_id != first),
    )
    .await;
    sync(&client).await;
    server.router.publish(CHAT, "again");
    assert_eq!(next_event(&mut sub).await.payload, json!("again"));
}

/// A router whose `http://x/hang` never answers (it signals `started` instead).
fn hanging_router(started: Arc<Notify>) -> Router {
    Router::builder()
        .procedure("http://x/hang", move |_, _| {
            let started = started.clone();
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Value::Null)
            }
        })
        .procedure("http://x/echo", |_, args: Vec<Value>| async move {
            Ok(args.into_iter().next().unwrap_or(Value::Null))
        })
        .build()
}

#[tokio::test]
async fn calls_in_flight_fail_when_the_session_is_closed() {
    let started = Arc::new(Notify::new());
    let server = TestServer::start(hanging_router(started.clone())).await;
    let client = server
        .client_with(fast_reconnect().call_timeout(None))
        .await;
    let session = client.session_id().unwrap();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/hang", vec![]).await }
    });
    within("the call to start", started.notified()).await;
    server.router.close_session(&session, 1000, "bye");
    let err = within("the call to fail", pending)
        .await
        .unwrap()
        .unwrap_err();
    match &err {
        Error::ConnectionLost(reason) => assert!(reason.contains("bye"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The client reconnects and works again.
    wait_state(
        &client,
        "reconnect",
        |s| matches!(s, ConnectionState::Connected { session_id, .. } if *session_id != session),
    )
    .await;
    assert_eq!(
        client.call("http://x/echo", vec![json!(1)]).await.unwrap(),
        json!(1)
    );
}

#[tokio::test]
async fn calls_in_flight_fail_when_the_link_breaks() {
    let started = Arc::new(Notify::new());
    let server = TestServer::start(hanging_router(started.clone())).await;
    let proxy = Proxy::start(server.addr).await;
    let client = within(
        "connect",
        ConnectOptions::new()
            .reconnect(ReconnectPolicy::never())
            .call_timeout(None)
            .connect(&proxy.url()),
    )
    .await
    .unwrap();
    let mut sub = client.subscribe("http://x/topic").await.unwrap();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call("http://x/hang", vec![]).await })
        })
        .collect();
    within("a call to start", started.notified()).await;
    proxy.cut();
    for call in calls {
        let err = within("the call to fail", call).await.unwrap().unwrap_err();
        assert!(matches!(err, Error::ConnectionLost(_)), "{err}");
    }
    // No reconnect policy: the client is closed, its streams end, nothing hangs.
    let state = wait_state(&client, "closed", |s| s.is_closed()).await;
    assert!(
        matches!(&state, ConnectionState::Closed { reason } if reason.contains("reconnecting is disabled")),
        "{state:?}"
    );
    assert!(within("the stream to end", sub.next()).await.is_none());
    let err = client.call("http://x/echo", vec![]).await.unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err}");
    let err = client.subscribe("http://x/topic").await.unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err}");
}

#[tokio::test]
async fn the_policy_gives_up_after_its_retries() {
    let mut server = TestServer::start(tutorial()).await;
    let client = server
        .client_with(
            ConnectOptions::new()
                .reconnect(ReconnectPolicy::new(3, Duration::from_millis(20)).backoff(1.5)),
        )
        .await;
    let mut sub = client.subscribe(CHAT).await.unwrap();
    server.stop().await;
    let state = wait_state(&client, "giving up", |s| s.is_closed()).await;
    match state {
        ConnectionState::Closed { reason } => {
            assert!(reason.contains("gave up after 3 attempts"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(within("the stream to end", sub.next()).await.is_none());
    let err = client.publish(CHAT, 1).await.unwrap_err();
    match err {
        Error::Closed(reason) => assert!(reason.contains("gave up"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn close_ends_everything() {
    let started = Arc::new(Notify::new());
    let server = TestServer::start(hanging_router(started.clone())).await;
    let client = server
        .client_with(fast_reconnect().call_timeout(None))
        .await;
    let mut sub = client.subscribe("http://x/topic").await.unwrap();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call("http://x/hang", vec![]).await }
    });
    within("the call to start", started.notified()).await;
    wait_until("the server to see the session", || {
        server.router.session_count() == 1
    })
    .await;

    within("close", client.close()).await;
    assert!(matches!(
        client.state(),
        ConnectionState::Closed { ref reason } if reason == "closed by the application"
    ));
    let err = within("the call to fail", pending)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err}");
    assert!(within("the stream to end", sub.next()).await.is_none());
    for err in [
        client.call("http://x/echo", vec![]).await.unwrap_err(),
        client.publish("http://x/topic", 1).await.unwrap_err(),
        client.prefix("a", "http://a/").await.unwrap_err(),
        client.subscribe("http://x/topic").await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::Closed(r) if r == "closed by the application"),
            "{err}"
        );
    }
    // Closing again is harmless, and the server saw the session go.
    within("a second close", client.close()).await;
    wait_until("the server to drop the session", || {
        server.router.session_count() == 0
    })
    .await;
    // It does not come back.
    tokio::time::sleep(QUIET).await;
    assert_eq!(server.router.session_count(), 0);
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let clone = client.clone();
    let sub = client.subscribe(CHAT).await.unwrap();
    sync(&client).await;
    drop(client);
    drop(clone);
    // The subscription still holds the connection up and receives events.
    let mut sub = sub;
    server.router.publish(CHAT, "still here");
    assert_eq!(next_event(&mut sub).await.payload, json!("still here"));
    assert_eq!(server.router.session_count(), 1);
    drop(sub);
    wait_until("the connection to close", || {
        server.router.session_count() == 0
    })
    .await;
}

#[tokio::test]
async fn the_subscription_knows_its_client() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let sub = client.subscribe(CHAT).await.unwrap();
    let same = sub.client().clone();
    drop(client);
    assert_eq!(
        same.call("rpc:echo", vec![json!(7)]).await.unwrap(),
        json!(7)
    );
}

#[tokio::test]
async fn a_failed_re_authentication_closes_the_client() {
    use wamp_proto::Permissions;
    use wamp_server::{AuthConfig, AuthUser, InMemoryAuth};

    let mut server = TestServer::start(tutorial()).await;
    let addr = server.addr;
    let client = server
        .client_with(fast_reconnect().auth("guest", "secret-password"))
        .await;
    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("guest")
    );
    server.stop().await;
    // The restarted server no longer knows `guest`.
    let other_users = Router::builder()
        .auth(
            AuthConfig::new(
                InMemoryAuth::new().user("admin", AuthUser::new("x", Permissions::all())),
            )
            .timeout(Duration::ZERO),
        )
        .build();
    let _server = TestServer::start_on(addr, other_users).await;
    let state = wait_state(&client, "closed", |s| s.is_closed()).await;
    match state {
        ConnectionState::Closed { reason } => {
            assert!(reason.contains("re-authentication"), "{reason}");
            assert!(reason.contains("no-such-authkey"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
