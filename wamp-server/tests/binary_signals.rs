//! The tutorial binary and its stop signals: SIGTERM stops it gracefully (exit 0), also when
//! it comes the moment the listening line is printed (the handlers are installed before that
//! line; before, a signal in the short window after it killed the process, which a loaded
//! machine made visible).

#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

/// Starts the binary on a free port, waits for its listening line, sends SIGTERM at once and
/// returns the exit status.
async fn sigterm_right_after_the_listening_line() -> std::process::ExitStatus {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wamp-server"))
        .args(["--port", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("no listening line within 30 s")
        .unwrap()
        .expect("the binary ended before its listening line");
    assert!(line.starts_with("wamp-server listening:"), "{line}");
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the binary did not stop after SIGTERM")
        .unwrap()
}

#[tokio::test]
async fn a_sigterm_right_after_the_listening_line_stops_the_server_gracefully() {
    for run in 0..5 {
        let status = sigterm_right_after_the_listening_line().await;
        // Killed by the signal's default action, the status has no code.
        assert_eq!(status.code(), Some(0), "run {run}: {status:?}");
    }
}
