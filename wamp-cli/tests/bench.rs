//! `bench rpc` and `bench fanout` of the real binary, short runs against the tutorial server:
//! the `--json` report has sane numbers (something measured, percentiles in order). No
//! assertion on speed: the machine may be busy.

mod common;

use common::*;
use serde_json::Value;

/// Runs a benchmark with `--json` and returns the report.
fn bench(server: &TestServer, args: &[&str]) -> Value {
    let out = run(&mut server.cli(args));
    assert_code(&out, 0);
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)))
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {report}"))
}

/// min <= p50 <= p90 <= p99 <= p99.9 <= max, all positive.
fn assert_percentiles_ordered(report: &Value) {
    let latency = &report["latency_us"];
    let values: Vec<f64> = ["min", "p50", "p90", "p99", "p99_9", "max"]
        .iter()
        .map(|k| {
            latency[k]
                .as_f64()
                .unwrap_or_else(|| panic!("no {k} in {latency}"))
        })
        .collect();
    assert!(values[0] > 0.0, "{latency}");
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {latency}"
    );
    assert!(latency["samples"].as_u64().unwrap() > 0);
    let mean = latency["mean"].as_f64().unwrap();
    assert!(values[0] <= mean && mean <= values[5], "{latency}");
}

#[test]
fn bench_rpc_json_report() {
    let server = TestServer::tutorial();
    let report = bench(
        &server,
        &[
            "bench",
            "rpc",
            "--connections",
            "2",
            "--in-flight",
            "4",
            "--duration",
            "1s",
            "--size",
            "32",
            "--json",
        ],
    );
    assert_eq!(report["mode"], "rpc");
    assert_eq!(report["procedure"], "rpc:echo");
    assert_eq!(report["connections"], 2);
    assert_eq!(report["in_flight"], 4);
    assert_eq!(report["payload_bytes"], 32);
    assert!(number(&report, "calls") > 0.0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(number(&report, "calls_per_s") > 0.0, "{report}");
    assert!(number(&report, "elapsed_s") >= 1.0, "{report}");
    assert_eq!(
        report["latency_us"]["samples"].as_f64().unwrap(),
        number(&report, "calls")
    );
    assert_percentiles_ordered(&report);
}

#[test]
fn bench_fanout_json_report() {
    let server = TestServer::tutorial();
    let report = bench(
        &server,
        &[
            "bench",
            "fanout",
            "--subscribers",
            "3",
            "--publishers",
            "2",
            "--duration",
            "1s",
            "--size",
            "200",
            "--json",
        ],
    );
    assert_eq!(report["mode"], "fanout");
    // The default topic is the tutorial's benchmark topic, not the chat.
    assert_eq!(report["topic"], wamp_server::tutorial::BENCH);
    assert_eq!(report["subscribers"], 3);
    assert_eq!(report["publishers"], 2);
    let published = number(&report, "published");
    let delivered = number(&report, "delivered");
    assert!(published > 0.0, "{report}");
    assert!(delivered > 0.0, "{report}");
    assert_eq!(number(&report, "expected"), published * 3.0);
    // Every event reaches every subscriber on a healthy local server.
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["subscribers_lost"], 0, "{report}");
    assert!(number(&report, "deliveries_per_s") > 0.0, "{report}");
    assert!(number(&report, "publishes_per_s") > 0.0, "{report}");
    let size = number(&report, "payload_bytes");
    assert!((190.0..=220.0).contains(&size), "{report}");
    assert_percentiles_ordered(&report);
    // The bench's sessions are gone.
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    while !server
        .router
        .subscribers(wamp_server::tutorial::BENCH)
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bench_human_report_and_paced_fanout() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["bench", "rpc", "-c", "1", "-i", "2", "-d", "500ms"]));
    assert_code(&out, 0);
    let text = stdout(&out);
    for needle in ["rpc bench: rpc:echo", "calls/s", "p50", "p99.9", "max"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // Progress bars go to a terminal only.
    assert_eq!(stderr(&out), "");

    let out = run(&mut server.cli(&[
        "bench",
        "fanout",
        "--subscribers",
        "1",
        "--rate",
        "200",
        "-d",
        "500ms",
    ]));
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("deliveries/s"), "{text}");
    assert!(text.contains("200 events/s each"), "{text}");
}

#[test]
fn bench_fails_fast_on_a_procedure_or_topic_that_does_not_work() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["bench", "rpc", "--procedure", "rpc:ping", "-d", "1s"]));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("#unauthorized"), "{}", stderr(&out));

    // The tutorial lets nobody subscribe to this topic: the warm-up says so.
    let out = run(&mut server.cli(&[
        "--timeout",
        "1s",
        "bench",
        "fanout",
        "--topic",
        "event:closed",
        "-d",
        "1s",
    ]));
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("received no event"), "{err}");
    assert!(err.contains("http://wamptutorial/event#closed"), "{err}");
}
