//! Test support for the real `wamp-server` binary on a configuration file: the file in the
//! temp directory, the command without the test environment's `WAMP_*` variables, the
//! listening line, and stderr captured for the no-panic check.

#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wamp-server");

/// How long the binary may take to start (or to finish `--check`) on a loaded machine.
pub const START: Duration = Duration::from_secs(60);

/// The variables the binary reads, removed so the developer's shell cannot change a test.
const WAMP_VARS: &[&str] = &[
    "WAMP_BIND",
    "WAMP_PORT",
    "WAMP_CONFIG",
    "WAMP_METRICS_BIND",
    "WAMP_MAX_CONNECTIONS",
    "WAMP_TLS_CERT",
    "WAMP_TLS_KEY",
    "WAMP_REDIS_URL",
    "WAMP_NODE_NAME",
    "WAMP_REDIS_PREFIX",
    "WAMP_REDIS_QUEUE_CAPACITY",
    "WAMP_REDIS_HEARTBEAT",
];

/// A configuration file in the temp directory, removed when dropped.
pub struct ConfigFile(pub PathBuf);

impl ConfigFile {
    /// Writes `text` to a new file ending in `.ext`.
    pub fn new(ext: &str, text: &str) -> ConfigFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "wamp-test-config-{}-{}.{ext}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The binary on the configuration file `config` with `args` and `env` (INFO logs unless
/// `env` says otherwise), stdout and stderr piped, killed when dropped.
pub fn config_command(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args(args);
    for var in WAMP_VARS {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `cmd` run to its end within [`START`]: the exit code, stdout and stderr.
pub async fn run_to_end(mut cmd: Command) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(START, cmd.output())
        .await
        .expect("the binary did not exit")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A started binary: the process, its listening line and its stderr so far.
pub struct Started {
    /// The process.
    pub child: Child,
    /// The first line on stdout (`wamp-server listening: …`).
    pub line: String,
    /// Everything written to stderr so far.
    pub stderr: Arc<Mutex<String>>,
    /// The task copying stderr, which ends with the process.
    pub capture: tokio::task::JoinHandle<()>,
}

impl Started {
    /// Kills the process and asserts that its whole log shows no panic.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(START, self.child.wait()).await;
        let _ = tokio::time::timeout(START, self.capture).await;
        assert_no_panic(&self.stderr);
    }
}

/// Spawns `cmd` (stdout and stderr piped) and waits for its listening line.
pub async fn start(mut cmd: Command) -> Started {
    let mut child = cmd.spawn().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let sink = stderr.clone();
    let capture = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    tokio::time::timeout(START, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("no listening line in time")
        .unwrap();
    assert!(
        line.starts_with("wamp-server listening: "),
        "{line} {}",
        stderr.lock().unwrap()
    );
    Started {
        child,
        line,
        stderr,
        capture,
    }
}

/// The word after `marker` in `line` (up to the next space).
pub fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    Some(rest.split_whitespace().next().unwrap_or(rest))
}

/// Asserts that `log` shows no panic.
pub fn assert_no_panic(log: &Mutex<String>) {
    let log = log.lock().unwrap();
    assert!(
        !log.contains("panicked"),
        "the server log shows a panic:\n{log}"
    );
}
