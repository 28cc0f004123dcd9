//! `wamp-cli -v` shows how long each connection step took (TCP, the WebSocket handshake,
//! the WELCOME, authentication), as `curl -w` does.

mod common;

use common::*;

/// The `-v` lines of one step.
fn step_line<'a>(err: &'a str, step: &str) -> Option<&'a str> {
    err.lines()
        .find(|l| l.contains(&format!("step=\"{step}\"")))
}

#[test]
fn verbose_shows_each_step_with_its_time() {
    let server = TestServer::tutorial();
    let out = run(&mut server.cli(&[
        "-v",
        "--auth-key",
        "guest",
        "--auth-secret",
        "secret-password",
        "call",
        "rpc:whoami",
    ]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"guest\"\n");
    let err = stderr(&out);
    let mut at = 0;
    for step in ["tcp", "websocket", "welcome", "auth"] {
        let line = step_line(&err, step).unwrap_or_else(|| panic!("no {step} step in:\n{err}"));
        assert!(line.contains("took="), "{line}");
        if step != "tcp" {
            assert!(line.contains("total="), "{line}");
        }
        // In order.
        let pos = err.find(line).unwrap();
        assert!(pos >= at, "{step} out of order:\n{err}");
        at = pos;
    }
    assert!(!err.contains("secret-password"), "{err}");

    // Without credentials there is no auth step; without -v no timings at all.
    let out = run(&mut server.cli(&["-v", "call", "rpc:echo", "x"]));
    assert_code(&out, 0);
    assert!(step_line(&stderr(&out), "welcome").is_some());
    assert!(step_line(&stderr(&out), "auth").is_none());
    let out = run(&mut server.cli(&["call", "rpc:echo", "x"]));
    assert_eq!(stderr(&out), "");
}
