//! What a new user meets, from the real binary: a URL that names the web page instead of the
//! WAMP endpoint, a URL without a scheme, the one rule for undeclared CURIE prefixes, the
//! missing acknowledgements of SUBSCRIBE and PUBLISH, the `sub`/`pub` aliases,
//! `subscribe --timestamps` and `call --raw`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::{json, Value};

/// The tutorial server as its binary runs it: the axum app with the page on `/` and WAMP on
/// `/ws`, on 127.0.0.1:0. Returns its address; it serves until the test process ends.
fn tutorial_app() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = wamp_server::tutorial::app(wamp_server::tutorial::router());
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv_timeout(RUN_LIMIT).unwrap()
}

/// The stderr of a failure: one line starting with `error:`, nothing on stdout.
fn one_error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(stdout(out), "");
    err
}

#[test]
fn a_url_naming_the_page_says_so_and_suggests_the_ws_path() {
    let addr = tutorial_app();
    for url in [format!("ws://{addr}"), format!("ws://{addr}/index.html")] {
        let out = run(cli().args(["--url", &url, "call", "rpc:echo", "x"]));
        assert_code(&out, 3);
        let err = one_error_line(&out);
        assert_eq!(
            err.trim_end(),
            format!(
                "error: {url} answered with a web page (HTTP 200), not a WebSocket: this is not \
                 the WAMP endpoint; try its WebSocket path, e.g. ws://{addr}/ws (the tutorial \
                 server's)"
            )
        );
        assert!(!err.contains('<'), "no HTML on the terminal: {err}");
    }
    // The suggested URL works.
    let out = run(cli().args(["--url", &format!("ws://{addr}/ws"), "call", "rpc:echo", "x"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"x\"\n");
}

#[test]
fn a_url_without_a_scheme_means_ws() {
    let addr = tutorial_app();
    let out = run(cli().args(["--url", &format!("{addr}/ws"), "call", "rpc:echo", "x"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"x\"\n");
    assert_eq!(stderr(&out), "");

    // host:port alone is ws://host:port/, the page: the web-page hint, not a scheme error.
    let out = run(cli().args(["--url", &addr.to_string(), "call", "rpc:echo", "x"]));
    assert_code(&out, 3);
    let err = one_error_line(&out);
    assert!(
        err.contains(&format!("error: ws://{addr} answered with a web page")),
        "{err}"
    );
    assert!(!err.contains("scheme"), "{err}");

    // And from the environment.
    let out = run(cli()
        .env("WAMP_URL", format!("localhost:{}/ws", addr.port()))
        .args(["call", "rpc:echo", "env"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"env\"\n");
}

#[test]
fn an_undeclared_prefix_is_refused_the_same_way_by_every_command() {
    // Nothing listens there: a command that connected would exit 3, not 2.
    let url = closed_port_url();
    for args in [
        vec!["call", "foo:bar"],
        vec!["subscribe", "foo:bar"],
        vec!["sub", "event:chat", "foo:bar"],
        vec!["publish", "foo:bar", "x"],
        vec!["pub", "foo:bar", "--stdin"],
        vec!["bench", "rpc", "--procedure", "foo:bar"],
        vec!["bench", "fanout", "--topic", "foo:bar"],
        vec!["-p", "calc=http://x/calc#", "call", "foo:bar"],
    ] {
        let mut cmd = cli();
        cmd.arg("--url").arg(&url).args(&args);
        let out = run(&mut cmd);
        assert_code(&out, 2);
        let err = one_error_line(&out);
        assert!(
            err.starts_with(
                "error: \"foo\" is not a declared prefix (in \"foo:bar\"): declare it with \
                 --prefix foo=URI (or WAMP_PREFIXES), or give the full URI"
            ),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn declared_prefixes_full_uris_and_the_tutorial_prefixes_pass_the_rule() {
    let server = TestServer::tutorial();
    for args in [
        vec![
            "--prefix",
            "foo=http://wamptutorial/rpc#",
            "call",
            "foo:echo",
            "x",
        ],
        vec!["call", "http://wamptutorial/rpc#echo", "x"],
        vec!["call", "rpc:echo", "x"],
    ] {
        let out = run(&mut server.cli(&args));
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "\"x\"\n", "{args:?}");
        assert_eq!(stderr(&out), "", "{args:?}");
    }
    let out = run(&mut server.cli(&[
        "-p",
        "foo=http://wamptutorial/event#",
        "publish",
        "foo:chat",
        "x",
    ]));
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "");
}

#[test]
fn help_and_verbose_say_that_nothing_confirms_subscribe_and_publish() {
    let out = run(cli().arg("--help"));
    assert_code(&out, 0);
    let help = stdout(&out);
    assert!(
        help.contains("WAMP v1 has no acknowledgement for SUBSCRIBE and PUBLISH"),
        "{help}"
    );
    assert!(help.contains("is not declared"), "{help}");
    for (command, needle) in [
        ("subscribe", "WAMP v1 has no acknowledgement for SUBSCRIBE"),
        ("publish", "WAMP v1 has no acknowledgement for PUBLISH"),
    ] {
        let out = run(cli().args([command, "--help"]));
        assert_code(&out, 0);
        assert!(stdout(&out).contains(needle), "{command}: {}", stdout(&out));
    }

    let server = TestServer::tutorial();
    let subscriber = spawn(&mut server.cli(&["-v", "subscribe", "event:chat", "--count", "1"]));
    server.wait_for_subscribers(CHAT, 1);
    let out = run(&mut server.cli(&["-v", "publish", "event:chat", "x"]));
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("PUBLISH sent; WAMP v1 has no reply to PUBLISH, so nothing confirms"),
        "{err}"
    );
    let out = finish(subscriber, RUN_LIMIT);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("SUBSCRIBE sent; WAMP v1 has no reply to SUBSCRIBE, so nothing confirms"),
        "{err}"
    );

    // Without -v, a publish says nothing.
    let out = run(&mut server.cli(&["publish", "event:chat", "x"]));
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "");
}

#[test]
fn sub_and_pub_are_aliases_and_timestamps_mark_each_event() {
    let server = TestServer::tutorial();
    let before = wamp_proto::cra::utc_timestamp(SystemTime::now() - Duration::from_secs(1));
    let json_sub = spawn(&mut server.cli(&["sub", "event:chat", "--timestamps", "-n", "2"]));
    let raw_sub =
        spawn(&mut server.cli(&["sub", "event:chat", "--timestamps", "--raw", "-n", "2"]));
    server.wait_for_subscribers(CHAT, 2);
    for event in ["hello", r#"{"n":1}"#] {
        let out = run(&mut server.cli(&["pub", "event:chat", event]));
        assert_code(&out, 0);
    }
    let out = finish(json_sub, RUN_LIMIT);
    assert_code(&out, 0);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    for (line, event) in lines.iter().zip([json!("hello"), json!({"n": 1})]) {
        assert_eq!(line["topic"], CHAT);
        assert_eq!(line["event"], event);
        assert_timestamp(line["time"].as_str().unwrap(), &before);
    }
    // The time comes first.
    assert!(stdout(&out).starts_with(r#"{"time":""#), "{}", stdout(&out));

    let out = finish(raw_sub, RUN_LIMIT);
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<(&str, &str)> = text.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0].1, "\"hello\"");
    assert_eq!(lines[1].1, r#"{"n":1}"#);
    for (time, _) in lines {
        assert_timestamp(time, &before);
    }
}

/// `time` is a UTC ISO 8601 timestamp with milliseconds, not before `before`, not in the
/// future (the format sorts as text).
fn assert_timestamp(time: &str, before: &str) {
    assert_eq!(time.len(), "2026-12-01T10:00:00.000Z".len(), "{time}");
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    let after = wamp_proto::cra::utc_timestamp(SystemTime::now() + Duration::from_secs(1));
    assert!(
        before <= time && time <= after.as_str(),
        "{before} <= {time} <= {after}"
    );
}

#[test]
fn call_raw_prints_a_string_result_without_quotes() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["call", "rpc:echo", "hello world", "--raw"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "hello world\n");
    // Quotes, backslashes and newlines come out as they are.
    let out = run(&mut server.cli(&["call", "--raw", "rpc:echo", "--string", "a \"b\" \\ c\nd"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "a \"b\" \\ c\nd\n");
    // Anything else stays JSON.
    let out = run(&mut server.cli(&["call", "--raw", "rpc:add", "1", "2"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "3\n");
    let out = run(&mut server.cli(&["call", "--raw", "rpc:echo", r#"{"a":"b"}"#]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "{\"a\":\"b\"}\n");
    // Without --raw a string is JSON.
    let out = run(&mut server.cli(&["call", "rpc:echo", "hello world"]));
    assert_eq!(stdout(&out), "\"hello world\"\n");
}

#[test]
fn bench_fanout_stays_off_the_chat_by_default() {
    let server = TestServer::tutorial();
    // A bystander on the chat, as a demo page or `wamp-cli subscribe event:chat` would be.
    let bystander = spawn(&mut server.cli(&["subscribe", "event:chat", "--raw", "-n", "1"]));
    server.wait_for_subscribers(CHAT, 1);
    let out = run(&mut server.cli(&[
        "bench",
        "fanout",
        "--subscribers",
        "2",
        "-d",
        "500ms",
        "--json",
    ]));
    assert_code(&out, 0);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["topic"], wamp_server::tutorial::BENCH);
    assert!(report["delivered"].as_f64().unwrap() > 0.0, "{report}");
    // The bystander's first event is this marker, sent after the bench: no bench event
    // reached the chat.
    let out = run(&mut server.cli(&["publish", "event:chat", "after the bench"]));
    assert_code(&out, 0);
    let out = finish(bystander, RUN_LIMIT);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"after the bench\"\n");
}
