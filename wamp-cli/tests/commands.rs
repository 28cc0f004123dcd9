//! Each command of the real `wamp-cli` binary against a real tutorial server: call,
//! subscribe, publish (with its options), completions and help.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wamp_server::{Router, Topic};

#[test]
fn call_echo_prints_the_result_as_json() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["call", "rpc:echo", "test"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"test\"\n");
    assert_eq!(stderr(&out), "");
}

#[test]
fn call_arguments_that_parse_as_json_are_sent_as_json() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["call", "rpc:add", "1", "2", "3.5", "-1"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "5.5\n");

    let out = run(&mut server.cli(&["call", "rpc:echo", r#"{"a":[1,null,"x"]}"#]));
    assert_code(&out, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        json!({"a": [1, null, "x"]})
    );

    let out = run(&mut server.cli(&["call", "rpc:echo", "--string", "42"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"42\"\n");

    // After `--`, an argument that starts with a hyphen is an argument.
    let out = run(&mut server.cli(&["call", "rpc:echo", "--", "-text"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"-text\"\n");

    // No argument at all: echo returns null.
    let out = run(&mut server.cli(&["call", "rpc:echo"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "null\n");
}

#[test]
fn call_error_prints_uri_description_and_details_and_exits_1() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["call", "rpc:throw"]));
    assert_code(&out, 1);
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.contains("http://api.wamp.ws/error#internal"), "{err}");
    assert!(err.contains("internal error"), "{err}");
    assert!(err.contains("details: \"An exception\""), "{err}");

    let out = run(&mut server.cli(&["call", "rpc:nosuch"]));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("http://api.wamp.ws/error#notfound"));
}

#[test]
fn authentication_from_flags_and_from_the_environment() {
    let server = TestServer::tutorial();
    // Without credentials whoami is not permitted.
    let out = run(&mut server.cli(&["call", "rpc:whoami"]));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("#unauthorized"));

    let out = run(&mut server.cli(&[
        "--auth-key",
        "guest",
        "--auth-secret",
        "secret-password",
        "call",
        "rpc:whoami",
    ]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"guest\"\n");

    // A salted (PBKDF2) secret, from the environment.
    let out = run(server
        .cli(&["call", "rpc:whoami"])
        .env("WAMP_AUTH_KEY", "salted")
        .env("WAMP_AUTH_SECRET", "secret"));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"salted\"\n");
}

#[test]
fn url_and_prefixes_from_flags_and_from_the_environment() {
    // A server with no default prefixes: CURIEs work only through --prefix.
    let server = TestServer::start(
        Router::builder()
            .procedure(
                "http://example.com/calc#square",
                |_, args: Vec<Value>| async move {
                    let x = args.first().and_then(Value::as_f64).unwrap_or(0.0);
                    Ok(json!(x * x))
                },
            )
            .build(),
    );
    let out = run(&mut server.cli(&[
        "--prefix",
        "calc=http://example.com/calc#",
        "call",
        "calc:square",
        "3",
    ]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "9.0\n");

    let out = run(cli()
        .args(["call", "c:square", "4"])
        .env("WAMP_URL", &server.url)
        .env("WAMP_PREFIXES", "x=http://x/,c=http://example.com/calc#"));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "16.0\n");

    // Without the prefix the CURIE is refused before connecting (the CURIE rule, exit 2;
    // the server would not know it either).
    let out = run(&mut server.cli(&["call", "calc:square", "3"]));
    assert_code(&out, 2);
    assert!(stderr(&out).contains("\"calc\" is not a declared prefix"));
    // A full URI nobody registered is the server's #notfound.
    let out = run(&mut server.cli(&["call", "http://example.com/calc#cube", "3"]));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("#notfound"));
}

#[test]
fn subscribe_count_receives_what_publish_sent() {
    let server = TestServer::tutorial();
    let subscriber = spawn(&mut server.cli(&["subscribe", "event:chat", "--count", "3"]));
    server.wait_for_subscribers(CHAT, 1);

    for event in ["hello", r#"{"text":"hi","n":1}"#, "7"] {
        let out = run(&mut server.cli(&["publish", "event:chat", event]));
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "");
    }
    let out = finish(subscriber, RUN_LIMIT);
    assert_code(&out, 0);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            json!({"topic": CHAT, "event": "hello"}),
            json!({"topic": CHAT, "event": {"text": "hi", "n": 1}}),
            json!({"topic": CHAT, "event": 7}),
        ]
    );
    // The documented line shape: topic first.
    assert!(stdout(&out).starts_with(r#"{"topic":"http://wamptutorial/event#chat","event":"#));
}

#[test]
fn subscribe_raw_several_topics_with_a_prefix_and_publish_count() {
    // A server with no default prefixes and every topic open.
    let server = TestServer::start(Router::builder().topic("*", Topic::open()).build());
    let (a, b) = ("http://example.com/news#a", "http://example.com/news#b");
    let subscriber = spawn(&mut server.cli(&[
        "--prefix",
        "news=http://example.com/news#",
        "subscribe",
        "--raw",
        "-n",
        "4",
        "news:a",
        b,
    ]));
    server.wait_for_subscribers(a, 1);
    server.wait_for_subscribers(b, 1);

    let out = run(&mut server.cli(&[
        "-p",
        "news=http://example.com/news#",
        "publish",
        "news:a",
        "tick",
        "--count",
        "3",
    ]));
    assert_code(&out, 0);
    let out = run(&mut server.cli(&["publish", b, "[1,2]"]));
    assert_code(&out, 0);

    let out = finish(subscriber, RUN_LIMIT);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"tick\"\n\"tick\"\n\"tick\"\n[1,2]\n");
}

#[test]
fn publish_stdin_sends_one_event_per_line() {
    let server = TestServer::tutorial();
    let subscriber = spawn(&mut server.cli(&["subscribe", "event:chat", "--raw", "--count", "3"]));
    server.wait_for_subscribers(CHAT, 1);

    let out = run_with_stdin(
        &mut server.cli(&["publish", "event:chat", "--stdin"]),
        "first line\n\n{\"n\": 2}\nlast\n",
    );
    assert_code(&out, 0);

    let out = finish(subscriber, RUN_LIMIT);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"first line\"\n{\"n\":2}\n\"last\"\n");
}

#[test]
fn publish_exclude_and_eligible_choose_the_recipients() {
    let server = TestServer::tutorial();
    // A subscribes first, so its session id is the only one on the topic at that moment.
    let a = spawn(&mut server.cli(&["subscribe", "event:chat", "--raw", "--count", "1"]));
    let a_id = server.wait_for_subscribers(CHAT, 1)[0].clone();
    let b = spawn(&mut server.cli(&["subscribe", "event:chat", "--raw", "--count", "3"]));
    let ids = server.wait_for_subscribers(CHAT, 2);
    let b_id = ids.into_iter().find(|id| *id != a_id).unwrap();

    for args in [
        vec!["publish", "event:chat", "not for a", "--exclude", &a_id],
        vec!["publish", "event:chat", "only b", "--eligible", &b_id],
        vec!["publish", "event:chat", "everyone", "--exclude-me"],
    ] {
        let out = run(&mut server.cli(&args));
        assert_code(&out, 0);
    }
    let a_out = finish(a, RUN_LIMIT);
    let b_out = finish(b, RUN_LIMIT);
    assert_code(&a_out, 0);
    assert_code(&b_out, 0);
    assert_eq!(stdout(&a_out), "\"everyone\"\n");
    assert_eq!(stdout(&b_out), "\"not for a\"\n\"only b\"\n\"everyone\"\n");
}

#[test]
fn subscribe_stops_cleanly_on_ctrl_c() {
    let server = TestServer::tutorial();
    let subscriber = spawn(&mut server.cli(&["subscribe", "event:chat"]));
    server.wait_for_subscribers(CHAT, 1);
    let status = Command::new("kill")
        .args(["-INT", &subscriber.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = finish(subscriber, RUN_LIMIT);
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "");
    // It unsubscribed and closed its session.
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    while !server.router.subscribers(CHAT).is_empty() {
        assert!(std::time::Instant::now() < deadline, "still subscribed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(cli().args(["completions", shell]));
        assert_code(&out, 0);
        let script = stdout(&out);
        assert!(script.contains("wamp-cli"), "{shell}");
        assert!(script.contains("subscribe"), "{shell}");
    }
}

#[test]
fn help_shows_examples_for_every_command_and_the_exit_codes() {
    let out = run(cli().arg("--help"));
    assert_code(&out, 0);
    let help = stdout(&out);
    for needle in [
        "Exit codes:",
        "4  authentication failed",
        "5  timeout",
        "WAMP_PREFIXES",
        "wamp-cli call rpc:echo test",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in\n{help}");
    }
    for command in [
        vec!["call"],
        vec!["subscribe"],
        vec!["publish"],
        vec!["bench"],
        vec!["bench", "rpc"],
        vec!["bench", "fanout"],
        vec!["completions"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let out = run(cli().args(&args));
        assert_code(&out, 0);
        let help = stdout(&out);
        assert!(help.contains("Examples:"), "{command:?}:\n{help}");
        assert!(help.contains("--url"), "global options in {command:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["call"],
        vec!["frobnicate"],
        vec!["publish", "event:chat"],
        vec!["--prefix", "nonsense", "call", "rpc:echo"],
        vec!["--timeout", "soon", "call", "rpc:echo"],
        vec!["--auth-key", "guest", "call", "rpc:echo"],
        vec!["--url", "http://localhost:8080/ws", "call", "rpc:echo"],
        vec!["subscribe", "nosuchprefix:topic"],
    ] {
        let out = run(cli().args(&args));
        assert_code(&out, 2);
        assert!(stderr(&out).contains("error"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn vv_traces_every_wamp_message_and_nothing_of_tungstenite() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&["-vv", "call", "rpc:echo", "traced"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"traced\"\n");
    let err = stderr(&out);
    let wire: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("wamp_client::wire"))
        .collect();
    // WELCOME, CALL, CALLRESULT, in that order, each as its JSON text.
    assert_eq!(wire.len(), 3, "{err}");
    assert!(wire[0].contains("received [0,"), "{err}");
    assert!(
        wire[1].contains("sent [2,") && wire[1].contains(r#""rpc:echo","traced"]"#),
        "{err}"
    );
    assert!(
        wire[2].contains("received [3,") && wire[2].ends_with(r#","traced"]"#),
        "{err}"
    );
    assert!(wire.iter().all(|l| l.contains("TRACE")), "{err}");
    assert!(!err.contains("tungstenite"), "{err}");

    // -v: the client's steps, without the protocol trace.
    let out = run(&mut server.cli(&["-v", "call", "rpc:echo", "x"]));
    assert_code(&out, 0);
    assert!(
        !stderr(&out).contains("wamp_client::wire"),
        "{}",
        stderr(&out)
    );
}
