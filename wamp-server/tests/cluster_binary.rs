//! The binary in cluster mode: two tutorial processes on one Redis, an event published on one
//! reaching a subscriber on the other (the README's demo); the standalone router's
//! `[cluster]` section (two nodes from config files, the HTTP publish API crossing nodes,
//! `/readyz` following the backplane, flag > env > file, every key's validation); without the
//! `redis` feature, `--redis-url` and `[cluster]` are refused with how to rebuild.

#![cfg(feature = "bin")]

mod binary_support;
mod cluster_support;
mod common;

use std::process::Stdio;
#[cfg(feature = "redis")]
use std::time::Duration;

use binary_support::{config_command, ConfigFile, BIN};
#[cfg(feature = "redis")]
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[cfg(feature = "redis")]
/// Starts the binary with `args` (and `--port 0`); returns it and its WAMP URL.
async fn start(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("no listening line within 30 s")
    .unwrap();
    let ws = line.split_whitespace().last().unwrap().to_string();
    (child, ws)
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn two_nodes_share_the_chat() {
    use serde_json::json;
    let Some(redis) = cluster_support::RedisServer::start().await else {
        return;
    };
    let url = redis.url();
    // The backplane's queue and heartbeat flags, on node a.
    let (_a, a_url) = start(&[
        "--redis-url",
        &url,
        "--node-name",
        "a",
        "--redis-queue-capacity",
        "50",
        "--redis-heartbeat",
        "200ms",
    ])
    .await;
    let (_b, b_url) = start(&["--redis-url", &url, "--node-name", "b"]).await;
    let chat = "http://wamptutorial/event#chat";
    let mut sub = common::Client::connect(&b_url).await;
    sub.send_json(json!([5, chat])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while redis.numsub(&format!("wamp:t:{chat}")).await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "node b never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut publisher = common::Client::connect(&a_url).await;
    publisher.send_json(json!([7, chat, "hello from a"])).await;
    assert_eq!(
        sub.recv_text().await,
        json!([8, chat, "hello from a"]).to_string()
    );
}

#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn redis_url_without_the_feature_says_how_to_rebuild() {
    let out = Command::new(BIN)
        .args(["--port", "0", "--redis-url", "redis://127.0.0.1:1/"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no listening line");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "error: --redis-url needs cluster mode, which this build does not have: rebuild with \
             `cargo build --release -p wamp-server --features redis`"
        ),
        "{stderr}"
    );
}

/// `--check` on `text`: the exit code and stderr.
async fn check(text: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let file = ConfigFile::new("toml", text);
    let mut cmd = config_command(&file.0, &["--check"], env);
    cmd.args(args);
    let (code, _, err) = binary_support::run_to_end(cmd).await;
    (code, err)
}

#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn a_cluster_section_without_the_feature_says_how_to_rebuild() {
    let text = "[server]\nport = 0\n\n[cluster]\nredis_url = \"redis://127.0.0.1:1/\"\n";
    let (code, err) = check(text, &[], &[]).await;
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            ":4: cluster: [cluster] needs cluster mode, which this build does not have: rebuild \
             with `cargo build --release -p wamp-server --features redis` (or remove [cluster])"
        ),
        "{err}"
    );
    // The same without --check, and --redis-url with a file that has no [cluster].
    let file = ConfigFile::new("toml", text);
    let out = config_command(&file.0, &[], &[]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no listening line");
    let (code, err) = check(
        "[server]\nport = 0\n",
        &["--redis-url", "redis://127.0.0.1:1/"],
        &[],
    )
    .await;
    assert_eq!(code, Some(2));
    assert!(
        err.contains(
            "error: --redis-url needs cluster mode, which this build does not have: rebuild with \
             `cargo build --release -p wamp-server --features redis`"
        ),
        "{err}"
    );
}

#[cfg(feature = "redis")]
mod with_redis {
    use super::*;
    use serde_json::{json, Value};

    const API_KEY: &str = "cluster-test-key-0123456789";
    const TOPIC: &str = "http://x/room";

    /// A standalone router started on a config file.
    struct Node {
        started: binary_support::Started,
        _file: ConfigFile,
    }

    impl Node {
        async fn start(text: &str, args: &[&str], env: &[(&str, &str)]) -> Node {
            let file = ConfigFile::new("toml", text);
            let started = binary_support::start(config_command(&file.0, args, env)).await;
            Node {
                started,
                _file: file,
            }
        }

        /// The URL after `marker` in the listening line.
        fn url(&self, marker: &str, scheme: &str) -> String {
            let line = &self.started.line;
            let rest = binary_support::after(line, marker).unwrap_or_else(|| panic!("{line}"));
            format!("{scheme}{rest}")
        }

        fn ws(&self) -> String {
            self.url("WAMP ws://", "ws://")
        }

        /// The metrics listener's root (the line shows its `/metrics`).
        fn metrics(&self) -> String {
            let url = self.url("metrics http://", "http://");
            url.strip_suffix("/metrics").unwrap_or(&url).to_string()
        }

        async fn stop(self) {
            self.started.kill().await;
        }
    }

    async fn wait_numsub(redis: &cluster_support::RedisServer, channel: &str, n: i64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while redis.numsub(channel).await != n {
            assert!(
                std::time::Instant::now() < deadline,
                "{channel} never had {n} subscriptions"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GET /readyz until it answers `status`.
    async fn wait_ready(url: &str, status: u16, body: &str) {
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let resp = http.get(format!("{url}/readyz")).send().await.unwrap();
            let got = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            if got == status {
                assert_eq!(text, body);
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "/readyz never {status}: {got} {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn node_file(redis_url: &str, name: &str, extra: &str) -> String {
        format!(
            "[server]\nport = 0\n[[topics]]\nuri = \"*\"\n\
             [cluster]\nredis_url = \"{redis_url}\"\nnode_name = \"{name}\"\nprefix = \"cfg\"\n\
             queue_capacity = 100\nheartbeat = 0.25\n{extra}"
        )
    }

    #[tokio::test]
    async fn config_file_nodes_share_the_publish_api() {
        let Some(redis) = cluster_support::RedisServer::start().await else {
            return;
        };
        let url = redis.url();
        let api = format!("[api]\nbind = \"127.0.0.1:0\"\nkey = \"{API_KEY}\"\n");
        let a = Node::start(&node_file(&url, "a", &api), &[], &[]).await;
        // Node b takes its URL from the variable its file names, and serves metrics.
        let b = Node::start(
            "[server]\nport = 0\n[[topics]]\nuri = \"*\"\n[cluster]\n\
             redis_url_env = \"TEST_REDIS\"\nnode_name = \"b\"\nprefix = \"cfg\"\n\
             [metrics]\nbind = \"127.0.0.1:0\"\n",
            &[],
            &[("TEST_REDIS", &url)],
        )
        .await;
        wait_ready(&b.metrics(), 200, "ready\n").await;
        let mut sub = common::Client::connect(&b.ws()).await;
        sub.send_json(json!([5, TOPIC])).await;
        // The file's prefix names the channel.
        wait_numsub(&redis, &format!("cfg:t:{TOPIC}"), 1).await;
        let answer: Value = reqwest::Client::new()
            .post(a.url("API http://", "http://") + "publish")
            .header("X-API-Key", API_KEY)
            .body(json!({"topic": TOPIC, "event": {"from": "a's API"}}).to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The count is of node a's own subscribers (none); node b's gets the event.
        assert_eq!(answer, json!({"result": {"recipients": 0}}));
        assert_eq!(
            sub.recv_text().await,
            json!([8, TOPIC, {"from": "a's API"}]).to_string()
        );
        let scrape = reqwest::get(format!("{}/metrics", b.metrics()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(scrape.contains("wamp_backplane_connected 1"), "{scrape}");
        // Node b's /readyz follows its backplane: 503 once Redis is gone.
        drop(redis);
        wait_ready(&b.metrics(), 503, "backplane not connected\n").await;
        a.stop().await;
        b.stop().await;
    }

    #[tokio::test]
    async fn cluster_flags_beat_env_beat_the_file() {
        let Some(redis) = cluster_support::RedisServer::start().await else {
            return;
        };
        let url = redis.url();
        // The file's URL is a closed port: the flag's and the variable's win over it.
        let text = "[server]\nport = 0\n[[topics]]\nuri = \"*\"\n[cluster]\n\
                    redis_url = \"redis://127.0.0.1:1/\"\nprefix = \"file\"\n";
        for (args, env, prefix) in [
            (vec![], vec![("WAMP_REDIS_URL", url.as_str())], "file"),
            (
                vec!["--redis-url", url.as_str()],
                vec![("WAMP_REDIS_PREFIX", "env")],
                "env",
            ),
            (
                vec!["--redis-prefix", "flag"],
                vec![
                    ("WAMP_REDIS_PREFIX", "env"),
                    ("WAMP_REDIS_URL", url.as_str()),
                ],
                "flag",
            ),
        ] {
            let node = Node::start(text, &args, &env).await;
            let mut sub = common::Client::connect(&node.ws()).await;
            sub.send_json(json!([5, TOPIC])).await;
            wait_numsub(&redis, &format!("{prefix}:t:{TOPIC}"), 1).await;
            for other in ["file", "env", "flag"] {
                if other != prefix {
                    assert_eq!(redis.numsub(&format!("{other}:t:{TOPIC}")).await, 0);
                }
            }
            drop(sub);
            node.stop().await;
            // The node is gone: its subscription too, before the next one starts.
            wait_numsub(&redis, &format!("{prefix}:t:{TOPIC}"), 0).await;
        }
        // A flag alone turns cluster mode on for a file without [cluster].
        let node = Node::start(
            "[server]\nport = 0\n[[topics]]\nuri = \"*\"\n",
            &[
                "--redis-url",
                &url,
                "--redis-queue-capacity",
                "5",
                "--redis-heartbeat",
                "100ms",
            ],
            &[],
        )
        .await;
        let mut sub = common::Client::connect(&node.ws()).await;
        sub.send_json(json!([5, TOPIC])).await;
        wait_numsub(&redis, &format!("wamp:t:{TOPIC}"), 1).await;
        drop(sub);
        node.stop().await;
    }

    #[tokio::test]
    async fn check_validates_every_cluster_key() {
        // A valid [cluster] and [metrics]: --check does not connect (nothing listens there).
        let good = "[server]\nport = 0\n[cluster]\nredis_url = \"redis://127.0.0.1:1/\"\n\
                    node_name = \"a\"\nprefix = \"p\"\nqueue_capacity = 1\nheartbeat = 0.01\n\
                    [metrics]\nbind = \"127.0.0.1:0\"\n";
        let (code, err) = check(good, &[], &[]).await;
        assert_eq!(code, Some(0), "{err}");
        // Each bad value: one line with file, line and key.
        let base = "[server]\nport = 0\n[cluster]\nredis_url = \"redis://127.0.0.1:1/\"\n";
        for (extra, expected) in [
            (
                "queue_capacity = 0\n",
                ":5: cluster.queue_capacity: must be at least 1",
            ),
            (
                "queue_capacity = -1\n",
                ":5: cluster.queue_capacity: invalid value",
            ),
            (
                "heartbeat = 0\n",
                ":5: cluster.heartbeat: 0 s is too short: give at least 0.01 seconds",
            ),
            (
                "heartbeat = 0.009\n",
                ":5: cluster.heartbeat: 0.009 s is too short",
            ),
            (
                "heartbeat = \"1s\"\n",
                ":5: cluster.heartbeat: invalid type: string",
            ),
            ("node_name = \"\"\n", ":5: cluster.node_name: is empty"),
            ("prefix = \"\"\n", ":5: cluster.prefix: is empty"),
            (
                "nodename = \"a\"\n",
                ":5: cluster.nodename: unknown field `nodename`",
            ),
            (
                "redis_url_env = \"X\"\n",
                ":5: cluster.redis_url: give `redis_url` or `redis_url_env`, not both",
            ),
        ] {
            let (code, err) = check(&format!("{base}{extra}"), &[], &[]).await;
            assert_eq!(code, Some(2), "{extra}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(expected), "{extra}: {err}");
        }
        let (code, err) = check("[cluster]\nnode_name = \"a\"\n", &[], &[]).await;
        assert_eq!(code, Some(2));
        assert!(
            err.contains(":1: cluster.redis_url: missing: give `redis_url` or `redis_url_env`"),
            "{err}"
        );
        let (code, err) = check(
            "[cluster]\nredis_url_env = \"TEST_UNSET_REDIS\"\n",
            &[],
            &[],
        )
        .await;
        assert_eq!(code, Some(2));
        assert!(
            err.contains(
                ":2: cluster.redis_url_env: the environment variable TEST_UNSET_REDIS is not set"
            ),
            "{err}"
        );
        let (code, err) = check("[cluster]\nredis_url = \"http://127.0.0.1/\"\n", &[], &[]).await;
        assert_eq!(code, Some(2));
        assert!(
            err.contains(":2: cluster.redis_url: ")
                && err.contains("(expected redis://HOST:PORT/)"),
            "{err}"
        );
        // The flag's URL is checked as the flag's.
        let (code, err) = check("[server]\n", &["--redis-url", "http://h/"], &[]).await;
        assert_eq!(code, Some(2));
        assert!(err.starts_with("error: --redis-url http://h/: "), "{err}");
        // A flag's value replaces a bad one in the file.
        let (code, err) = check(
            &format!("{base}queue_capacity = 0\n"),
            &["--redis-queue-capacity", "1"],
            &[],
        )
        .await;
        assert_eq!(code, Some(0), "{err}");
    }
}
