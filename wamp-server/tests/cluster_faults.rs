//! Cluster mode on Redis when things fail: Redis killed and restarted, Redis frozen, a node
//! gone. Local serving must go on throughout; cross-node delivery resumes.

mod cluster_support;
mod common;

use std::time::{Duration, Instant};

use cluster_support::{event, Cluster, Kind};
use common::{eventually, Client};
use serde_json::json;

const T: &str = "http://test/event#faults";
const T2: &str = "http://test/event#faults2";

/// Publishes `marker` from `router` until `client` receives it (Redis is at most once, so a
/// publish made while a subscription is being restored may be lost); frames before it are
/// skipped. Fails after a generous deadline.
async fn publish_until_received(router: &wamp_server::Router, topic: &str, client: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for attempt in 0.. {
        assert!(
            Instant::now() < deadline,
            "cross-node delivery did not resume"
        );
        let marker = json!({"marker": attempt});
        router.publish(topic, &marker);
        let want = event(topic, marker);
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(frame) = tokio::time::timeout_at(until, client.recv_text()).await {
            if frame == want {
                return;
            }
        }
    }
}

#[tokio::test]
async fn redis_killed_and_restarted() {
    let Some(mut cluster) = Cluster::start(Kind::Redis, 2).await else {
        return;
    };
    let mut a = cluster.subscriber(0, &[T, T2]).await;
    let mut b = cluster.subscriber(1, &[T, T2]).await;
    cluster.wait_listening(0, 2).await;
    cluster.wait_listening(1, 2).await;

    cluster.redis.as_mut().unwrap().kill();
    for i in 0..2 {
        let router = cluster.router(i).clone();
        eventually("the node sees Redis gone", move || {
            !router.backplane_status().unwrap().connected
        })
        .await;
    }
    // Local serving is unaffected: RPC and local PubSub.
    a.assert_alive().await;
    a.send_json(json!([7, T, "while down"])).await;
    assert_eq!(a.recv_text().await, event(T, json!("while down")));
    let router = cluster.router(0).clone();
    eventually(
        "the event for the others is dropped and counted",
        move || router.backplane_status().unwrap().dropped_disconnected >= 1,
    )
    .await;

    cluster.redis.as_mut().unwrap().restart().await;
    cluster.wait_joined().await;
    let redis = cluster.redis.as_ref().unwrap();
    for topic in [T, T2] {
        let channel = cluster.channel(topic);
        let deadline = Instant::now() + Duration::from_secs(20);
        while redis.numsub(&channel).await != 2 {
            assert!(Instant::now() < deadline, "{channel} was not resubscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for i in 0..2 {
        let s = cluster.router(i).backplane_status().unwrap();
        assert!(s.reconnects >= 2, "both connections reconnected: {s:?}");
        assert_eq!(s.subscribed_topics, 2);
    }
    // Nothing from the outage reaches B; new events do, on both channels.
    a.send_json(json!([7, T, "after"])).await;
    assert_eq!(a.recv_text().await, event(T, json!("after")));
    assert_eq!(b.recv_text().await, event(T, json!("after")));
    a.send_json(json!([7, T2, "after"])).await;
    assert_eq!(a.recv_text().await, event(T2, json!("after")));
    assert_eq!(b.recv_text().await, event(T2, json!("after")));
    b.expect_silence().await;
}

#[tokio::test]
async fn redis_frozen_then_resumed() {
    let Some(cluster) = Cluster::start_with(Kind::Redis, 2, |b| {
        b.outbox_capacity(20_000).outbox_max_bytes(64 << 20)
    })
    .await
    else {
        return;
    };
    let mut a = cluster.subscriber(0, &[T]).await;
    let mut b = cluster.subscriber(1, &[T]).await;
    cluster.wait_listening(1, 1).await;

    let redis = cluster.redis.as_ref().unwrap();
    redis.signal("STOP");
    let router = cluster.router(0).clone();
    let started = Instant::now();
    for i in 0..10_000 {
        assert_eq!(router.publish(T, i), 1);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "10,000 local publishes took {took:?}: publishing waited on Redis"
    );
    for i in 0..10_000 {
        assert_eq!(a.recv_text().await, event(T, json!(i)));
    }
    let s = router.backplane_status().unwrap();
    assert!(
        s.dropped_queue_full > 0,
        "the full queue dropped events: {s:?}"
    );
    assert!(s.queue_depth <= 1000);

    // The send connection's stuck pipeline times out: the node counts itself disconnected.
    let r = router.clone();
    eventually("the node notices the frozen Redis", move || {
        !r.backplane_status().unwrap().connected
    })
    .await;
    redis.signal("CONT");
    publish_until_received(&router, T, &mut b).await;
    eventually("the node is connected again", move || {
        router.backplane_status().unwrap().connected
    })
    .await;
}

#[tokio::test]
async fn the_others_go_on_when_a_node_dies() {
    let Some(mut cluster) = Cluster::start(Kind::Redis, 3).await else {
        return;
    };
    let mut a = cluster.subscriber(0, &[T]).await;
    let mut b = cluster.subscriber(1, &[T]).await;
    let c = cluster.subscriber(2, &[T]).await;
    for i in 0..3 {
        cluster.wait_listening(i, 1).await;
    }
    // Node C dies: its backplane stops and its server goes away.
    cluster.redis_backplanes[2].stop();
    cluster.nodes[2].stop();
    cluster.nodes[2].task.abort();
    drop(c);
    for i in 0..2 {
        let router = cluster.router(i).clone();
        eventually("the node no longer sees the dead one", move || {
            router.backplane_status().unwrap().nodes_seen == 1
        })
        .await;
    }
    a.send_json(json!([7, T, "still here"])).await;
    assert_eq!(a.recv_text().await, event(T, json!("still here")));
    assert_eq!(b.recv_text().await, event(T, json!("still here")));
    let list = cluster
        .router(1)
        .cluster_subscribers(T, Duration::from_secs(5))
        .await;
    assert!(list.complete, "every node still alive answered");
    assert_eq!(list.nodes, 2);
    let mut ids = vec![a.session_id.clone(), b.session_id.clone()];
    ids.sort();
    assert_eq!(list.value, ids);
}
