//! The errors a person meets and their exit codes, from the real binary: unreachable server
//! (3), refused handshake (3, with the HTTP status and the server's reason), failed
//! authentication (4, and only for authentication), call timeout (5). Each is one line on
//! stderr.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use wamp_server::Router;

/// The stderr of a failure: exactly one line, starting with `error:`.
fn one_error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(stdout(out), "");
    err
}

#[test]
fn unreachable_server_exits_3() {
    let url = closed_port_url();
    let out = run(cli().args(["--url", &url, "call", "rpc:echo", "x"]));
    assert_code(&out, 3);
    let err = one_error_line(&out);
    assert!(err.contains("cannot reach"), "{err}");
    assert!(err.contains(&url), "{err}");
}

#[test]
fn refused_handshake_exits_3() {
    let url = refusing_server();
    let out = run(cli().args(["--url", &url, "call", "rpc:echo", "x"]));
    assert_code(&out, 3);
    let err = one_error_line(&out);
    assert!(err.contains("refused the WebSocket handshake"), "{err}");
    assert!(
        err.contains("HTTP 400 Bad Request: no WebSocket for you"),
        "{err}"
    );
    assert!(
        !err.contains("cannot reach"),
        "a refusal is not an unreachable server: {err}"
    );
}

#[test]
fn refused_handshake_shows_the_status_and_the_servers_reason() {
    let url = refusing_server_with(
        "403 Forbidden",
        "origin http://evil.example is not allowed\nto connect\n",
    );
    let out = run(cli().args(["--url", &url, "publish", "event:chat", "x"]));
    assert_code(&out, 3);
    let err = one_error_line(&out);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {url} refused the WebSocket handshake: HTTP 403 Forbidden: origin \
             http://evil.example is not allowed to connect (the server does not accept this \
             client; check --url)"
        )
    );
}

#[test]
fn a_full_server_refuses_with_503_and_exits_3() {
    let server = TestServer::start(Router::builder().max_connections(0).build());
    let out = run(&mut server.cli(&["call", "rpc:echo", "x"]));
    assert_code(&out, 3);
    let err = one_error_line(&out);
    assert!(err.contains("refused the WebSocket handshake"), "{err}");
    assert!(err.contains("HTTP 503 Service Unavailable"), "{err}");
    assert!(err.contains("try again later"), "{err}");
}

#[test]
fn wrong_secret_exits_4() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&[
        "--auth-key",
        "guest",
        "--auth-secret",
        "not-the-password",
        "call",
        "rpc:whoami",
    ]));
    assert_code(&out, 4);
    let err = one_error_line(&out);
    assert!(err.contains("authentication as \"guest\" failed"), "{err}");
    assert!(err.contains("invalid-signature"), "{err}");
}

#[test]
fn unknown_auth_key_exits_4() {
    let server = TestServer::tutorial();
    let out = run(server
        .cli(&["publish", "event:chat", "x"])
        .env("WAMP_AUTH_KEY", "nobody")
        .env("WAMP_AUTH_SECRET", "whatever"));
    assert_code(&out, 4);
    let err = one_error_line(&out);
    assert!(err.contains("no-such-authkey"), "{err}");
    // The secret is never printed.
    assert!(!err.contains("whatever"), "{err}");
}

#[test]
fn a_server_without_wamp_cra_exits_4() {
    // authreq is an unknown procedure there: still an authentication failure, not a CALLERROR.
    let server = TestServer::start(Router::builder().build());
    let out = run(&mut server.cli(&[
        "--auth-key",
        "guest",
        "--auth-secret",
        "secret-password",
        "call",
        "rpc:echo",
    ]));
    assert_code(&out, 4);
    let err = one_error_line(&out);
    assert!(err.contains("authentication as \"guest\" failed"), "{err}");
}

#[test]
fn a_callerror_after_authenticating_exits_1_not_4() {
    // Authenticated as guest, who may not call ping: the CALLERROR is the call's own.
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&[
        "--auth-key",
        "guest",
        "--auth-secret",
        "secret-password",
        "call",
        "rpc:ping",
    ]));
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("call to rpc:ping failed"), "{err}");
    assert!(!err.contains("authentication"), "{err}");
}

#[test]
fn slow_call_times_out_with_exit_5() {
    let server = TestServer::start(
        Router::builder()
            .procedure("http://test/slow", |_, _args: Vec<Value>| async move {
                tokio::time::sleep(Duration::from_secs(20)).await;
                Ok(Value::Null)
            })
            .build(),
    );
    let started = std::time::Instant::now();
    let out = run(&mut server.cli(&["--timeout", "300ms", "call", "http://test/slow"]));
    assert_code(&out, 5);
    let err = one_error_line(&out);
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains("300ms"), "{err}");
    assert!(err.contains("--timeout"), "{err}");
    // Generous: it did not wait for the procedure.
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_server_that_never_answers_the_handshake_times_out_with_exit_5() {
    // Accepts TCP connections and says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let out = run(cli().args(["--url", &url, "--timeout", "300ms", "call", "rpc:echo"]));
    assert_code(&out, 5);
    let err = one_error_line(&out);
    assert!(err.contains("no WAMP session"), "{err}");
    drop(listener);
}

#[test]
fn publish_and_subscribe_report_connection_errors_too() {
    let url = closed_port_url();
    for args in [
        vec!["publish", "event:chat", "x"],
        vec!["subscribe", "event:chat"],
        vec!["bench", "rpc", "--duration", "1s"],
        vec!["bench", "fanout", "--duration", "1s"],
    ] {
        let mut all = vec!["--url", url.as_str()];
        all.extend(args.iter().copied());
        let out = run(cli().args(&all));
        assert_code(&out, 3);
        one_error_line(&out);
    }
}

#[test]
fn subscribe_reconnects_when_the_server_closes_its_session() {
    let server = TestServer::tutorial();
    let subscriber = spawn(&mut server.cli(&["subscribe", "event:chat", "--count", "1"]));
    server.wait_for_subscribers(CHAT, 1);
    let session = server.router.subscribers(CHAT)[0].clone();
    // Closed by the server, the client reconnects: it is subscribed again afterwards.
    assert!(server.router.close_session(&session, 1000, "bye"));
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    loop {
        let subs = server.router.subscribers(CHAT);
        if subs.len() == 1 && subs[0] != session {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not resubscribed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(&mut server.cli(&["publish", "event:chat", "after"]));
    assert_code(&out, 0);
    let out = finish(subscriber, RUN_LIMIT);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("\"after\""), "{}", stdout(&out));
    assert!(stderr(&out).contains("reconnect"), "{}", stderr(&out));
}
