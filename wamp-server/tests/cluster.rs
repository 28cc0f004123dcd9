//! Cluster mode: one suite run against the in-process backplane and (with `--features redis`)
//! the Redis backplane: cross-node delivery among three nodes, exclude/eligible across nodes,
//! server-side publishing, exactly-once delivery on the publisher's node, per-publisher order,
//! the cluster-wide subscriber list and session close.

mod cluster_support;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_support::{event, Cluster, Kind};
use common::{eventually, Client};
use serde_json::json;

const T: &str = "http://test/event#cluster";

/// Runs each scenario once per backplane.
macro_rules! on_every_backplane {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Kind::InProcess).await;
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Kind::Redis).await;
                }
            )*
        }
    };
}

on_every_backplane!(
    events_cross_nodes_once_each,
    exclude_and_eligible_name_sessions_on_any_node,
    server_side_publishing_crosses_nodes,
    each_publishers_order_is_kept_across_nodes,
    cluster_subscriber_list_and_close,
    policies_and_hooks_run_once_on_the_origin,
);

/// Starts a three-node cluster with one subscriber of `T` on each node.
async fn three(kind: Kind) -> Option<(Cluster, Client, Client, Client)> {
    let cluster = Cluster::start(kind, 3).await?;
    let a = cluster.subscriber(0, &[T]).await;
    let b = cluster.subscriber(1, &[T]).await;
    let c = cluster.subscriber(2, &[T]).await;
    for i in 0..3 {
        cluster.wait_listening(i, 1).await;
    }
    Some((cluster, a, b, c))
}

async fn events_cross_nodes_once_each(kind: Kind) {
    let Some((cluster, mut a, mut b, mut c)) = three(kind).await else {
        return;
    };
    a.send_json(json!([7, T, {"n": 1}])).await;
    let want = event(T, json!({"n": 1}));
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(client.recv_text().await, want);
    }
    if kind != Kind::InProcess {
        // The publisher's own event came back from Redis and was dropped, not delivered.
        let router = cluster.router(0).clone();
        eventually("the echo is dropped", move || {
            router.backplane_status().unwrap().echoes_dropped == 1
        })
        .await;
    }
    for client in [&mut a, &mut b, &mut c] {
        client.expect_silence().await;
    }
    let origin = cluster.router(0).backplane_status().unwrap();
    assert_eq!(origin.published, 1);
    assert_eq!(origin.received, 0);
    for i in 1..3 {
        let s = cluster.router(i).backplane_status().unwrap();
        assert_eq!(
            (s.received, s.published, s.sequence_gaps),
            (1, 0, 0),
            "{s:?}"
        );
        assert_eq!(s.dropped_queue_full + s.dropped_disconnected, 0);
    }
}

async fn exclude_and_eligible_name_sessions_on_any_node(kind: Kind) {
    let Some((cluster, mut a1, mut b1, mut c1)) = three(kind).await else {
        return;
    };
    let mut a2 = cluster.subscriber(0, &[T]).await;
    let mut b2 = cluster.subscriber(1, &[T]).await;
    let (a2id, b1id, b2id) = (
        a2.session_id.clone(),
        b1.session_id.clone(),
        b2.session_id.clone(),
    );

    // 1. Exclude a remote and a local session.
    a1.send_json(json!([7, T, 1, [&b1id, &a2id]])).await;
    // 2. Eligible: a remote and a local session.
    a1.send_json(json!([7, T, 2, [], [&b2id, &a2id]])).await;
    // 3. excludeMe.
    a1.send_json(json!([7, T, 3, true])).await;
    // 4. Eligible all local: delivered here, nothing forwarded.
    a1.send_json(json!([7, T, 4, [], [&a2id]])).await;
    // 5. A marker for everyone.
    a1.send_json(json!([7, T, 5])).await;

    // Each client's frames in order show what it was (and was not) sent.
    let expect = |ns: &[i64]| ns.iter().map(|n| event(T, json!(n))).collect::<Vec<_>>();
    for (client, ns) in [
        (&mut a1, expect(&[1, 5])),
        (&mut a2, expect(&[2, 3, 4, 5])),
        (&mut b1, expect(&[3, 5])),
        (&mut b2, expect(&[1, 2, 3, 5])),
        (&mut c1, expect(&[1, 3, 5])),
    ] {
        for n in ns {
            assert_eq!(client.recv_text().await, n, "session {}", client.session_id);
        }
    }
    for client in [&mut a1, &mut a2, &mut b1, &mut b2, &mut c1] {
        client.expect_silence().await;
    }
    // Node B counted each event before delivering it, the marker last.
    assert_eq!(
        cluster.router(1).backplane_status().unwrap().received,
        4,
        "the all-local publish was not forwarded"
    );
}

async fn server_side_publishing_crosses_nodes(kind: Kind) {
    let Some((cluster, mut a, mut b, mut c)) = three(kind).await else {
        return;
    };
    let a_router = cluster.router(0);
    let (aid, bid, cid) = (
        a.session_id.clone(),
        b.session_id.clone(),
        c.session_id.clone(),
    );
    // To some: two remote sessions; the count is of local recipients.
    assert_eq!(
        a_router.publish_to(T, json!("some"), &[bid.clone(), cid]),
        0
    );
    // To all but some: one remote excluded.
    assert_eq!(a_router.publish_excluding(T, json!("but"), &[bid]), 1);
    // To all.
    assert_eq!(a_router.publish(T, json!("all")), 1);
    // To some, all local: delivered here only.
    assert_eq!(a_router.publish_to(T, json!("local"), &[aid]), 1);
    a_router.publish(T, json!("end"));
    let expect = |ns: &[&str]| ns.iter().map(|n| event(T, json!(n))).collect::<Vec<_>>();
    for (client, frames) in [
        (&mut a, expect(&["but", "all", "local", "end"])),
        (&mut b, expect(&["some", "all", "end"])),
        (&mut c, expect(&["some", "but", "all", "end"])),
    ] {
        for f in frames {
            assert_eq!(client.recv_text().await, f);
        }
        client.expect_silence().await;
    }
}

async fn each_publishers_order_is_kept_across_nodes(kind: Kind) {
    let Some((_cluster, mut a, mut b, mut c)) = three(kind).await else {
        return;
    };
    const N: i64 = 300;
    for i in 0..N {
        a.send_json(json!([7, T, {"a": i}])).await;
        b.send_json(json!([7, T, {"b": i}])).await;
    }
    // Every subscriber sees each publisher's events in its order (no order across them).
    for client in [&mut a, &mut b, &mut c] {
        let (mut next_a, mut next_b) = (0, 0);
        while next_a < N || next_b < N {
            let frame = client.recv().await;
            if let Some(i) = frame[2].get("a") {
                assert_eq!(i, next_a, "a's order");
                next_a += 1;
            } else {
                assert_eq!(frame[2]["b"], next_b, "b's order");
                next_b += 1;
            }
        }
        client.expect_silence().await;
    }
}

async fn cluster_subscriber_list_and_close(kind: Kind) {
    let Some((cluster, a, b, mut c)) = three(kind).await else {
        return;
    };
    let wait = Duration::from_secs(5);
    let mut all = vec![
        a.session_id.clone(),
        b.session_id.clone(),
        c.session_id.clone(),
    ];
    all.sort();
    let list = cluster.router(1).cluster_subscribers(T, wait).await;
    assert_eq!(list.value, all);
    assert!(list.complete);
    assert_eq!(list.nodes, 3);
    assert_eq!(cluster.router(1).subscribers(T), vec![b.session_id.clone()]);
    let none = cluster
        .router(0)
        .cluster_subscribers("http://test/event#nobody", wait)
        .await;
    assert!(none.value.is_empty() && none.complete);

    let closed = cluster
        .router(0)
        .cluster_close_session(&c.session_id, 4000, "moved", wait)
        .await;
    assert!(closed.value && closed.complete, "{closed:?}");
    assert_eq!(c.expect_close().await, (4000, "moved".to_string()));
    let unknown = cluster
        .router(0)
        .cluster_close_session("no-such-session", 4000, "x", wait)
        .await;
    assert!(!unknown.value && unknown.complete);
    assert_eq!(unknown.nodes, 3);
}

async fn policies_and_hooks_run_once_on_the_origin(kind: Kind) {
    const STAMPED: &str = "http://test/event#stamped";
    // Per node: how often its on_publish hook and its topic's publish policy ran.
    type Counter = Arc<AtomicUsize>;
    let counts: Arc<Mutex<Vec<(Counter, Counter)>>> = Arc::default();
    let made = counts.clone();
    let Some(cluster) = Cluster::start_with(kind, 3, move |b| {
        let (hooks, policies) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut all = made.lock().unwrap();
        let node = all.len();
        all.push((hooks.clone(), policies.clone()));
        b.on_publish(move |_, _, _| {
            hooks.fetch_add(1, Ordering::SeqCst);
        })
        .topic(
            STAMPED,
            wamp_server::Topic::open().on_publish(move |_, mut p| {
                policies.fetch_add(1, Ordering::SeqCst);
                async move {
                    p.event = json!({"stamped by": node, "event": p.event});
                    Some(p)
                }
            }),
        )
    })
    .await
    else {
        return;
    };
    let mut a = cluster.subscriber(0, &[STAMPED]).await;
    let mut b = cluster.subscriber(1, &[STAMPED]).await;
    cluster.wait_listening(1, 1).await;
    a.send_json(json!([7, STAMPED, "hi"])).await;
    let want = event(STAMPED, json!({"stamped by": 0, "event": "hi"}));
    assert_eq!(a.recv_text().await, want);
    assert_eq!(b.recv_text().await, want);
    let counts = counts.lock().unwrap();
    let ran: Vec<(usize, usize)> = counts
        .iter()
        .map(|(h, p)| (h.load(Ordering::SeqCst), p.load(Ordering::SeqCst)))
        .collect();
    assert_eq!(ran, vec![(1, 1), (0, 0), (0, 0)]);
}

/// What travels over Redis, seen from Redis itself.
#[cfg(feature = "redis")]
mod redis_wire {
    use super::*;

    /// Another node's frame reaches local sessions byte for byte (never re-serialised); gaps
    /// in an origin's sequence, bad headers and other versions are counted.
    #[tokio::test]
    async fn foreign_frames_are_delivered_as_sent_and_checked() {
        let Some(cluster) = Cluster::start(Kind::Redis, 1).await else {
            return;
        };
        let mut a = cluster.subscriber(0, &[T]).await;
        cluster.wait_listening(0, 1).await;
        let redis = cluster.redis.as_ref().unwrap();
        let channel = cluster.channel(T);
        let odd = format!("[8 , \"{T}\" ,{{ \"x\" :  1 }}]");
        let header = |seq: u64| format!(r#"{{"v":1,"n":"other-1","s":{seq},"x":[],"e":null}}"#);
        redis
            .publish(&channel, format!("{}\n{odd}", header(1)).as_bytes())
            .await;
        assert_eq!(a.recv_text().await, odd, "the origin's bytes, as they were");
        redis
            .publish(&channel, format!("{}\n{odd}", header(5)).as_bytes())
            .await;
        assert_eq!(a.recv_text().await, odd);
        // Excluded by the header.
        let excluding = format!(
            r#"{{"v":1,"n":"other-1","s":6,"x":["{}"],"e":null}}"#,
            a.session_id
        );
        redis
            .publish(&channel, format!("{excluding}\n{odd}").as_bytes())
            .await;
        redis.publish(&channel, b"no header line").await;
        redis
            .publish(&channel, br#"{"v":2,"n":"other-1","s":7}"#.as_slice())
            .await;
        redis
            .publish(
                &channel,
                format!("{}\n{odd}", r#"{"v":2,"n":"other-1","s":7}"#).as_bytes(),
            )
            .await;
        let router = cluster.router(0).clone();
        eventually("the bad messages are counted", move || {
            router.backplane_status().unwrap().dropped_malformed == 3
        })
        .await;
        let s = cluster.router(0).backplane_status().unwrap();
        assert_eq!((s.received, s.sequence_gaps), (3, 3), "{s:?}");
        a.expect_silence().await;
    }

    /// A topic's channel is subscribed while the node has local subscribers, and dropped about
    /// a second after the last one leaves.
    #[tokio::test]
    async fn channels_follow_local_subscribers() {
        let Some(cluster) = Cluster::start(Kind::Redis, 1).await else {
            return;
        };
        let redis = cluster.redis.as_ref().unwrap();
        let channel = cluster.channel(T);
        assert_eq!(redis.numsub(&channel).await, 0);
        let mut a = cluster.subscriber(0, &[T]).await;
        let mut b = cluster.subscriber(0, &[T]).await;
        cluster.wait_listening(0, 1).await;
        assert_eq!(
            redis.numsub(&channel).await,
            1,
            "one channel subscription per node"
        );
        a.send_json(json!([6, T])).await;
        a.assert_alive().await;
        b.send_json(json!([6, T])).await;
        b.assert_alive().await;
        let left = std::time::Instant::now();
        let deadline = left + Duration::from_secs(20);
        while redis.numsub(&channel).await != 0 {
            assert!(std::time::Instant::now() < deadline, "never unsubscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            left.elapsed() >= Duration::from_millis(900),
            "unsubscribed after {:?}, before the delay",
            left.elapsed()
        );
        assert_eq!(
            cluster
                .router(0)
                .backplane_status()
                .unwrap()
                .subscribed_topics,
            0
        );
    }

    /// A node that heartbeats but never answers makes cluster answers incomplete (with what
    /// the others said).
    #[tokio::test]
    async fn a_silent_node_makes_cluster_answers_incomplete() {
        let Some(cluster) = Cluster::start(Kind::Redis, 2).await else {
            return;
        };
        let a = cluster.subscriber(0, &[T]).await;
        let b = cluster.subscriber(1, &[T]).await;
        let port = cluster.redis.as_ref().unwrap().port;
        let ghost = tokio::spawn(async move {
            let redis = cluster_support::RedisServer::attach(port);
            loop {
                redis
                    .publish("test:ctl", br#"{"v":1,"k":"hb","n":"ghost-1"}"#)
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let router = cluster.router(0).clone();
        eventually("node 0 sees the ghost", move || {
            router.backplane_status().unwrap().nodes_seen == 2
        })
        .await;
        let list = cluster
            .router(0)
            .cluster_subscribers(T, Duration::from_millis(500))
            .await;
        ghost.abort();
        assert!(!list.complete, "the ghost did not answer: {list:?}");
        assert_eq!(list.nodes, 2, "this node and node 1 answered");
        let mut ids = vec![a.session_id.clone(), b.session_id.clone()];
        ids.sort();
        assert_eq!(list.value, ids);
    }
}
