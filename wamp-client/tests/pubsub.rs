//! PubSub through the client against the real server: delivery, order, shared and dropped
//! subscriptions (seen in the server's subscriber list), publish options, prefixes.

mod common;

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use wamp_client::{Client, ConnectOptions, Error, PublishOptions};

/// A client that has declared the tutorial's `event` prefix for itself.
async fn chat_client(server: &TestServer) -> Client {
    server
        .client_with(ConnectOptions::new().prefix("event", "http://wamptutorial/event#"))
        .await
}

#[tokio::test]
async fn subscribe_and_receive_own_and_others_events() {
    init_tracing();
    let server = TestServer::start(tutorial()).await;
    let alice = chat_client(&server).await;
    let bob = server.client().await;
    let mut sub = alice.subscribe("event:chat").await.unwrap();
    assert_eq!(sub.topic(), CHAT);
    sync(&alice).await;
    assert_eq!(
        server.router.subscribers(CHAT),
        vec![alice.session_id().unwrap()]
    );

    // Another session publishes (with the server's default prefix).
    bob.publish("event:chat", "from bob").await.unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!(e.topic, CHAT);
    assert_eq!(e.payload, json!("from bob"));

    // The publisher receives its own event by default (this server's default).
    alice
        .publish("event:chat", json!({"text": "from alice"}))
        .await
        .unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!(e.payload, json!({"text": "from alice"}));
    #[derive(serde::Deserialize)]
    struct Msg {
        text: String,
    }
    assert_eq!(e.decode::<Msg>().unwrap().text, "from alice");

    // Server-side publishing reaches the client too.
    assert_eq!(server.router.publish(CHAT, 42), 1);
    assert_eq!(next_event(&mut sub).await.payload, json!(42));
    assert_eq!(sub.dropped(), 0);
}

#[tokio::test]
async fn subscribing_with_the_full_uri_needs_no_prefix() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let mut sub = client.subscribe(CHAT).await.unwrap();
    sync(&client).await;
    client.publish(CHAT, "x").await.unwrap();
    assert_eq!(next_event(&mut sub).await.payload, json!("x"));
}

#[tokio::test]
async fn own_prefixes_match_incoming_events() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    client
        .prefix("room", "http://wamptutorial/event#")
        .await
        .unwrap();
    let mut sub = client.subscribe("room:chat").await.unwrap();
    assert_eq!(sub.topic(), CHAT);
    sync(&client).await;
    assert_eq!(server.router.subscribers(CHAT).len(), 1);
    client.publish("room:chat", "hi").await.unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!((e.topic.as_str(), e.payload), (CHAT, json!("hi")));
}

#[tokio::test]
async fn events_arrive_in_order_per_publisher() {
    let server = TestServer::start(tutorial()).await;
    let subscriber = server.client().await;
    let p1 = server.client().await;
    let p2 = server.client().await;
    let mut sub = subscriber.subscribe(CHAT).await.unwrap();
    sync(&subscriber).await;

    const N: u64 = 500;
    let publish_all = |client: Client, name: &'static str| async move {
        for i in 0..N {
            client
                .publish(CHAT, json!({"from": name, "n": i}))
                .await
                .unwrap();
        }
    };
    tokio::join!(publish_all(p1, "p1"), publish_all(p2, "p2"));

    let mut next = std::collections::HashMap::from([("p1", 0u64), ("p2", 0u64)]);
    within("all events", async {
        for _ in 0..2 * N {
            let e = sub.next().await.expect("stream open");
            let from = e.payload["from"].as_str().unwrap().to_string();
            let n = e.payload["n"].as_u64().unwrap();
            let expected = next.get_mut(from.as_str()).unwrap();
            assert_eq!(n, *expected, "events from {from} out of order");
            *expected += 1;
        }
    })
    .await;
    assert_eq!(next["p1"], N);
    assert_eq!(next["p2"], N);
    assert_eq!(sub.dropped(), 0);
}

#[tokio::test]
async fn local_subscriptions_share_one_server_subscription() {
    let server = TestServer::start(tutorial()).await;
    let client = chat_client(&server).await;
    let me = client.session_id().unwrap();
    let mut a = client.subscribe("event:chat").await.unwrap();
    let mut b = client.subscribe(CHAT).await.unwrap();
    sync(&client).await;
    assert_eq!(server.router.subscribers(CHAT), vec![me.clone()]);

    server.router.publish(CHAT, 1);
    assert_eq!(next_event(&mut a).await.payload, json!(1));
    assert_eq!(next_event(&mut b).await.payload, json!(1));

    // Dropping one keeps the server subscription for the other.
    drop(a);
    sync(&client).await;
    assert_eq!(server.router.subscribers(CHAT), vec![me.clone()]);
    server.router.publish(CHAT, 2);
    assert_eq!(next_event(&mut b).await.payload, json!(2));

    // Dropping the last one unsubscribes.
    drop(b);
    sync(&client).await;
    assert!(server.router.subscribers(CHAT).is_empty());

    // Subscribing again subscribes again.
    let mut c = client.subscribe(CHAT).await.unwrap();
    sync(&client).await;
    assert_eq!(server.router.subscribers(CHAT), vec![me]);
    server.router.publish(CHAT, 3);
    assert_eq!(next_event(&mut c).await.payload, json!(3));
}

#[tokio::test]
async fn explicit_unsubscribe_waits_for_the_wire() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let sub = client.subscribe(CHAT).await.unwrap();
    sync(&client).await;
    assert_eq!(server.router.subscribers(CHAT).len(), 1);
    sub.unsubscribe().await.unwrap();
    sync(&client).await;
    assert!(server.router.subscribers(CHAT).is_empty());
}

#[tokio::test]
async fn publish_options_choose_the_recipients() {
    let server = TestServer::start(tutorial()).await;
    let a = server.client().await;
    let b = server.client().await;
    let c = server.client().await;
    let (ida, idb, idc) = (
        a.session_id().unwrap(),
        b.session_id().unwrap(),
        c.session_id().unwrap(),
    );
    let mut subs = Vec::new();
    for client in [&a, &b, &c] {
        subs.push(client.subscribe(CHAT).await.unwrap());
        sync(client).await;
    }

    a.publish_with(CHAT, "e1", PublishOptions::new().exclude_me(true))
        .await
        .unwrap();
    a.publish_with(CHAT, "e2", PublishOptions::new().exclude([idb.clone()]))
        .await
        .unwrap();
    a.publish_with(CHAT, "e3", PublishOptions::new().eligible([idb.clone()]))
        .await
        .unwrap();
    a.publish_with(
        CHAT,
        "e4",
        PublishOptions {
            exclude_me: Some(true),
            exclude: vec![idc.clone()],
            eligible: Some(vec![ida.clone(), idb.clone(), idc.clone()]),
        },
    )
    .await
    .unwrap();
    a.publish_with(CHAT, "e5", PublishOptions::new().exclude_me(false))
        .await
        .unwrap();
    a.publish(CHAT, "end").await.unwrap();

    let mut got = Vec::new();
    for sub in &mut subs {
        let mut events = Vec::new();
        loop {
            let e = next_event(sub).await;
            let text = e.payload.as_str().unwrap().to_string();
            events.push(text.clone());
            if text == "end" {
                break;
            }
        }
        got.push(events);
    }
    assert_eq!(got[0], ["e2", "e5", "end"], "a");
    assert_eq!(got[1], ["e1", "e3", "e4", "e5", "end"], "b");
    assert_eq!(got[2], ["e1", "e2", "e5", "end"], "c");
}

#[tokio::test]
async fn events_for_other_topics_are_not_delivered() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let mut sub = client.subscribe(CHAT).await.unwrap();
    let mut other = client
        .subscribe("http://wamptutorial/event#other")
        .await
        .unwrap();
    sync(&client).await;
    // The tutorial has no policy for `other`, so that subscription was denied server-side.
    assert!(server
        .router
        .subscribers("http://wamptutorial/event#other")
        .is_empty());
    client.publish(CHAT, "only chat").await.unwrap();
    assert_eq!(next_event(&mut sub).await.payload, json!("only chat"));
    no_event(&mut other).await;
}

#[tokio::test]
async fn a_slow_reader_loses_events_but_not_the_connection() {
    let server = TestServer::start(tutorial()).await;
    let client = server
        .client_with(ConnectOptions::new().subscription_capacity(4))
        .await;
    let mut slow = client.subscribe(CHAT).await.unwrap();
    sync(&client).await;
    for i in 0..20 {
        server.router.publish(CHAT, i);
    }
    // Calls still work while the subscription's buffer is full.
    sync(&client).await;
    let mut got: Vec<Value> = Vec::new();
    for _ in 0..4 {
        got.push(next_event(&mut slow).await.payload);
    }
    assert_eq!(got, [json!(0), json!(1), json!(2), json!(3)]);
    assert_eq!(slow.dropped(), 16);
    // Once read, new events flow again.
    server.router.publish(CHAT, "later");
    assert_eq!(next_event(&mut slow).await.payload, json!("later"));
}

#[tokio::test]
async fn a_prefix_only_the_server_knows_must_be_declared_to_subscribe() {
    // The tutorial server resolves `event:` by default, but its EVENTs carry full URIs: a
    // client that does not know the prefix is told so instead of never getting an event.
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let err = client.subscribe("event:chat").await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownPrefix { prefix, .. } if prefix == "event"),
        "{err:?}"
    );
    sync(&client).await;
    assert!(server.router.subscribers(CHAT).is_empty());

    client
        .prefix("event", "http://wamptutorial/event#")
        .await
        .unwrap();
    let mut sub = client.subscribe("event:chat").await.unwrap();
    sync(&client).await;
    assert_eq!(server.router.subscribers(CHAT).len(), 1);
    client.publish("event:chat", "now it works").await.unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!((e.topic.as_str(), e.payload), (CHAT, json!("now it works")));
}
