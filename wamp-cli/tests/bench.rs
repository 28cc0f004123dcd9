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

/// The `MEASURE start` / `MEASURE stop` lines of `--mark`, in order, once each.
fn assert_marked(out: &std::process::Output) {
    let err = stderr(out);
    let marks: Vec<&str> = err.lines().filter(|l| l.starts_with("MEASURE")).collect();
    assert_eq!(marks, ["MEASURE start", "MEASURE stop"], "{err}");
}

#[test]
fn bench_connect_json_report() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&[
        "bench",
        "connect",
        "--concurrency",
        "3",
        "--duration",
        "1s",
        "--json",
        "--mark",
    ]));
    assert_code(&out, 0);
    assert_marked(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["mode"], "connect");
    assert_eq!(report["url"], server.url.as_str());
    assert_eq!(report["concurrency"], 3);
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["first_error"], Value::Null, "{report}");
    let sessions = number(&report, "sessions");
    assert!(sessions >= 3.0, "{report}");
    let elapsed = number(&report, "elapsed_s");
    assert!(elapsed >= 1.0, "{report}");
    let per_s = number(&report, "sessions_per_s");
    assert!(
        (per_s - sessions / elapsed).abs() < 0.01 * per_s,
        "{report}"
    );
    // One setup latency and one whole-loop time per session; a loop includes its setup.
    assert_eq!(report["latency_us"]["samples"].as_f64().unwrap(), sessions);
    assert_eq!(report["cycle_us"]["samples"].as_f64().unwrap(), sessions);
    assert_percentiles_ordered(&report);
    let (setup, cycle) = (&report["latency_us"], &report["cycle_us"]);
    for k in ["min", "p50", "p99", "max"] {
        assert!(
            cycle[k].as_f64().unwrap() >= setup[k].as_f64().unwrap() * 0.99,
            "{k}: {report}"
        );
    }
    // Every session was closed again.
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    while server.router.session_count() > 0 {
        assert!(std::time::Instant::now() < deadline, "sessions left open");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bench_connect_human_report_and_bad_input() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["bench", "connect", "-c", "1", "-d", "300ms"]));
    assert_code(&out, 0);
    let text = stdout(&out);
    for needle in [
        "connect bench:",
        "sessions/s",
        "connect -> WELCOME",
        "p99.9",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // No marks without --mark.
    assert_eq!(stderr(&out), "");

    for bad in ["0", "1001", "x"] {
        let out = run(&mut server.cli(&["bench", "connect", "-c", bad, "-d", "1s"]));
        assert_code(&out, 2);
    }
    // Nothing listening: the first connection fails with the connect exit code.
    let url = closed_port_url();
    let out = run(cli().args(["--url", &url, "bench", "connect", "-d", "1s"]));
    assert_code(&out, 3);
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

#[test]
fn bench_rpc_rate_paces_the_calls() {
    let server = TestServer::tutorial();
    // 2 x 4 callers sharing 200 calls/s: one call every 40 ms per caller, 2 s.
    let out = run(&mut server.cli(&[
        "bench", "rpc", "-c", "2", "-i", "4", "--rate", "200", "-d", "2s", "--json", "--mark",
    ]));
    assert_code(&out, 0);
    assert_marked(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["rate"], 200);
    assert_eq!(report["errors"], 0, "{report}");
    let calls = number(&report, "calls");
    // At most one call per caller per 40 ms: 8 callers x 50 slots.
    assert!(calls <= 400.0, "the rate was not honoured: {report}");
    // A busy machine may fall behind, but not by much at this rate.
    assert!(calls >= 150.0, "{report}");
    let per_s = number(&report, "calls_per_s");
    assert!((75.0..=205.0).contains(&per_s), "{report}");
    assert_eq!(report["latency_us"]["samples"].as_f64().unwrap(), calls);
    assert_percentiles_ordered(&report);

    // Unpaced, the report says so; a bad rate is a usage error.
    let report = bench(
        &server,
        &[
            "bench", "rpc", "-c", "1", "-i", "1", "-d", "300ms", "--json",
        ],
    );
    assert_eq!(report["rate"], Value::Null);
    let out = run(&mut server.cli(&["bench", "rpc", "--rate", "-5", "-d", "1s"]));
    assert_code(&out, 2);
    let out = run(&mut server.cli(&[
        "bench", "rpc", "-c", "1", "-i", "1", "--rate", "50", "-d", "300ms",
    ]));
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("paced to 50 calls/s"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn bench_fanout_marks_its_window() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&[
        "bench",
        "fanout",
        "--subscribers",
        "2",
        "-d",
        "500ms",
        "--json",
        "--mark",
    ]));
    assert_code(&out, 0);
    assert_marked(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(number(&report, "delivered") > 0.0, "{report}");
    assert!(report["latency_us"]["p99_9"].as_f64().is_some(), "{report}");
}

#[test]
fn bench_fanout_rate_beyond_the_timer_resolution_is_reached() {
    // 3,000 events/s is one every 333 µs, below the timer's millisecond: the pacer catches
    // up on late wake-ups instead of losing those slots.
    let server = TestServer::tutorial();
    let report = bench(
        &server,
        &[
            "bench",
            "fanout",
            "--subscribers",
            "1",
            "--rate",
            "3000",
            "-d",
            "1s",
            "--json",
        ],
    );
    assert_eq!(report["rate"], 3000);
    let published = number(&report, "published");
    // No more than the schedule's slots, and well over the 1,000 a millisecond timer allows.
    assert!(published <= 3001.0, "{report}");
    assert!(published >= 1600.0, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
}
