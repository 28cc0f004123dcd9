//! `bench fanout --subscriber-url`: subscribers spread round-robin over other servers, the
//! publishers on `--url`, against two routers joined by an in-process backplane (two nodes
//! of a cluster in one process): every event crosses to the other node and each node holds
//! the sessions it should.

mod common;

use common::*;
use serde_json::Value;
use wamp_server::{InProcessHub, Router, Topic};

const TOPIC: &str = "http://example.com/bench";

/// Two routers on one hub, each served on 127.0.0.1:0, and the runtime their backplane
/// tasks run on (keep it alive for the test).
fn two_nodes() -> (TestServer, TestServer, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
    let hub = InProcessHub::new();
    let node = |name: &str| {
        TestServer::start(
            Router::builder()
                .topic(TOPIC, Topic::open())
                .backplane(hub.backplane(name))
                .build(),
        )
    };
    let nodes = (node("a"), node("b"));
    drop(_in_runtime);
    (nodes.0, nodes.1, rt)
}

fn fanout(publisher_node: &TestServer, extra: &[&str]) -> Value {
    let mut args = vec![
        "bench",
        "fanout",
        "--topic",
        TOPIC,
        "--subscribers",
        "4",
        "--duration",
        "1s",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = run(&mut publisher_node.cli(&args));
    assert_code(&out, 0);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Every expected event was delivered, none lost.
fn assert_all_delivered(report: &Value) {
    let published = report["published"].as_u64().unwrap();
    assert!(published > 0, "{report}");
    assert_eq!(
        report["expected"].as_u64().unwrap(),
        published * 4,
        "{report}"
    );
    assert_eq!(report["delivered"], report["expected"], "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["subscribers_lost"], 0, "{report}");
    let p50 = report["latency_us"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0, "{report}");
}

#[test]
fn subscribers_split_round_robin_over_two_nodes() {
    let (a, b, _rt) = two_nodes();
    let report = fanout(
        &a,
        &["--subscriber-url", &b.url, "--subscriber-url", &a.url],
    );
    assert_all_delivered(&report);
    assert_eq!(report["url"], a.url.as_str());
    assert_eq!(
        report["subscriber_urls"],
        serde_json::json!([b.url.clone(), a.url.clone()])
    );
    // Subscribers 0 and 2 on b, 1 and 3 on a; the publisher on a.
    assert_eq!(b.router.stats().sessions_opened, 2);
    assert_eq!(a.router.stats().sessions_opened, 2 + 1);
}

#[test]
fn all_subscribers_on_the_remote_node() {
    let (a, b, _rt) = two_nodes();
    let report = fanout(&a, &["--subscriber-url", &b.url]);
    assert_all_delivered(&report);
    assert_eq!(b.router.stats().sessions_opened, 4);
    assert_eq!(a.router.stats().sessions_opened, 1);
    // Nothing was delivered on the publisher's node: every event crossed the backplane.
    assert_eq!(a.router.stats().deliveries, 0);
    assert!(b.router.stats().deliveries >= 4, "{:?}", b.router.stats());
}

#[test]
fn an_unreachable_subscriber_url_fails_with_its_address() {
    let (a, _b, _rt) = two_nodes();
    let down = closed_port_url();
    let out = run(&mut a.cli(&[
        "bench",
        "fanout",
        "--topic",
        TOPIC,
        "--subscribers",
        "2",
        "--duration",
        "1s",
        "--subscriber-url",
        &down,
    ]));
    assert_code(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("cannot reach") && err.contains(&down), "{err}");
}
