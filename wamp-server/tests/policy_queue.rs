//! Topic policy callbacks that take time (docs/PROTOCOL.md section 7): the session keeps reading
//! and answering its calls meanwhile, its PubSub messages queue behind the callback and take
//! effect in order, the queue counts toward `max_calls_in_flight`, and a session that ends
//! with a callback pending leaves nothing behind.

mod common;

use std::sync::{Arc, Mutex};

use common::{eventually, test_router, Client, TestServer, WAIT};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use wamp_server::Topic;

/// A topic whose subscribe policy is held until the test answers: each SUBSCRIBE hands the
/// test a sender for its decision.
const HELD: &str = "http://test/held";
/// A topic whose publish broker is held the same way (`true` delivers the event as sent).
const BROKER: &str = "http://test/broker";
/// An open topic.
const OPEN: &str = "http://test/event#open";

type Decisions = mpsc::UnboundedReceiver<oneshot::Sender<bool>>;

struct Held {
    subscribes: Decisions,
    publishes: Decisions,
}

impl Held {
    /// The decision sender of the next subscribe policy call, once it has started.
    async fn subscribe(&mut self) -> oneshot::Sender<bool> {
        next(&mut self.subscribes, "a subscribe policy call").await
    }

    async fn publish(&mut self) -> oneshot::Sender<bool> {
        next(&mut self.publishes, "a publish broker call").await
    }
}

async fn next(rx: &mut Decisions, what: &str) -> oneshot::Sender<bool> {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("the router is gone")
}

fn held_router(builder: wamp_server::RouterBuilder) -> (wamp_server::Router, Held) {
    let (sub_tx, subscribes) = mpsc::unbounded_channel();
    let (pub_tx, publishes) = mpsc::unbounded_channel();
    let router = builder
        .topic(
            HELD,
            Topic::open().on_subscribe(move |_| {
                let (decide, decision) = oneshot::channel();
                let _ = sub_tx.send(decide);
                async move { decision.await.unwrap_or(false) }
            }),
        )
        .topic(
            BROKER,
            Topic::open().on_publish(move |_, p| {
                let (decide, decision) = oneshot::channel();
                let _ = pub_tx.send(decide);
                async move { decision.await.unwrap_or(false).then_some(p) }
            }),
        )
        .build();
    (
        router,
        Held {
            subscribes,
            publishes,
        },
    )
}

/// Expects the next frame to be an EVENT on `topic` with `event`.
async fn expect_event(c: &mut Client, topic: &str, event: &str) {
    assert_eq!(c.recv().await, json!([8, topic, event]));
}

#[tokio::test]
async fn a_call_after_a_slow_subscribe_is_answered_and_pubsub_keeps_its_order() {
    let (router, mut held) = held_router(test_router());
    let server = TestServer::start(router).await;
    // A watcher subscribed to the held topic (its policy answered at once by the test).
    let mut watcher = server.client().await;
    watcher.send_json(json!([5, HELD])).await;
    held.subscribe().await.send(true).unwrap();
    eventually("the watcher is subscribed", || {
        server.router.subscribers(HELD).len() == 1
    })
    .await;

    let mut c = server.client().await;
    c.send_json(json!([5, HELD])).await;
    let decide = held.subscribe().await;
    // Behind the pending SUBSCRIBE: a PUBLISH (not excluding itself), an UNSUBSCRIBE and a
    // second PUBLISH, then a CALL.
    c.send_json(json!([7, HELD, "first", false])).await;
    c.send_json(json!([6, HELD])).await;
    c.send_json(json!([7, HELD, "second", false])).await;
    // The CALL is answered while the policy is still pending...
    let reply = c.call("e", "http://test/rpc#echo", &[json!("now")]).await;
    assert_eq!(reply, json!([3, "e", "now"]));
    // ...and nothing of the PubSub messages behind it has happened yet.
    assert_eq!(server.router.subscribers(HELD).len(), 1);
    watcher.expect_silence().await;
    c.expect_silence().await;

    decide.send(true).unwrap();
    // The first PUBLISH saw the subscription (the publisher gets its own event), the second
    // came after the UNSUBSCRIBE (only the watcher gets it).
    expect_event(&mut c, HELD, "first").await;
    expect_event(&mut watcher, HELD, "first").await;
    expect_event(&mut watcher, HELD, "second").await;
    c.assert_alive().await;
    c.expect_silence().await;
    assert_eq!(
        server.router.subscribers(HELD),
        vec![watcher.session_id.clone()]
    );
}

#[tokio::test]
async fn a_call_after_a_slow_publish_broker_is_answered_and_later_publishes_wait_their_turn() {
    let (router, mut held) = held_router(test_router());
    let server = TestServer::start(router).await;
    let mut watcher = server.client().await;
    watcher.send_json(json!([5, BROKER])).await;
    watcher.send_json(json!([5, OPEN])).await;
    watcher.assert_alive().await;

    let mut c = server.client().await;
    c.send_json(json!([7, BROKER, "brokered"])).await;
    let first = held.publish().await;
    c.send_json(json!([7, OPEN, "plain"])).await;
    c.send_json(json!([7, BROKER, "dropped"])).await;
    let reply = c.call("e", "http://test/rpc#echo", &[json!(1)]).await;
    assert_eq!(reply, json!([3, "e", 1]));
    // The open topic's PUBLISH waits behind the broker's, so the events keep their order.
    watcher.expect_silence().await;
    first.send(true).unwrap();
    expect_event(&mut watcher, BROKER, "brokered").await;
    expect_event(&mut watcher, OPEN, "plain").await;
    // The third PUBLISH's broker ran after them, and drops it.
    held.publish().await.send(false).unwrap();
    watcher.assert_alive().await;
    watcher.expect_silence().await;
}

#[tokio::test]
async fn pubsub_messages_waiting_on_a_policy_count_toward_the_calls_in_flight_bound() {
    let (router, mut held) = held_router(test_router().max_calls_in_flight(3));
    let server = TestServer::start(router).await;
    let mut watcher = server.client().await;
    watcher.send_json(json!([5, OPEN])).await;
    watcher.assert_alive().await;

    let mut c = server.client().await;
    // One pending SUBSCRIBE and one PUBLISH behind it: two, under the bound of three.
    c.send_json(json!([5, HELD])).await;
    let decide = held.subscribe().await;
    c.send_json(json!([7, OPEN, "one"])).await;
    c.assert_alive().await;
    // A third: at the bound the session is not read, so the echo behind it waits.
    c.send_json(json!([7, OPEN, "two"])).await;
    c.send_json(json!([2, "late", "http://test/rpc#echo", "late"]))
        .await;
    c.expect_silence().await;
    watcher.expect_silence().await;
    // The policy decides: the queue drains in order and reading resumes.
    decide.send(true).unwrap();
    expect_event(&mut watcher, OPEN, "one").await;
    expect_event(&mut watcher, OPEN, "two").await;
    assert_eq!(c.recv().await, json!([3, "late", "late"]));
    assert_eq!(server.router.subscribers(HELD), vec![c.session_id.clone()]);
}

#[tokio::test]
async fn the_subscription_limit_applies_to_subscribes_queued_behind_a_policy() {
    let (router, mut held) = held_router(test_router().max_subscriptions(1));
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send_json(json!([5, HELD])).await;
    let decide = held.subscribe().await;
    c.send_json(json!([5, OPEN])).await;
    c.assert_alive().await;
    decide.send(true).unwrap();
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("max_subscriptions"), "{reason}");
    eventually("the session is gone", || server.router.session_count() == 0).await;
    assert!(server.router.subscribers(HELD).is_empty());
    assert!(server.router.subscribers(OPEN).is_empty());
}

#[tokio::test]
async fn a_session_that_ends_with_a_policy_pending_leaves_nothing_behind() {
    let closed = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = closed.clone();
    let builder =
        test_router().on_session_close(move |id, _| log.lock().unwrap().push(id.to_string()));
    let (router, mut held) = held_router(builder);
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send_json(json!([5, OPEN])).await;
    c.send_json(json!([5, HELD])).await;
    let decide = held.subscribe().await;
    c.send_json(json!([5, "http://test/event#queued"])).await;
    c.assert_alive().await;
    let id = c.session_id.clone();
    drop(c);
    eventually("the session closed hook ran", || {
        closed.lock().unwrap().contains(&id)
    })
    .await;
    // The decision comes too late: nothing is subscribed, nothing of the session is left.
    let _ = decide.send(true);
    assert_eq!(server.router.session_count(), 0);
    for topic in [OPEN, HELD, "http://test/event#queued"] {
        assert!(server.router.subscribers(topic).is_empty(), "{topic}");
    }
    server.client().await.assert_alive().await;
}
