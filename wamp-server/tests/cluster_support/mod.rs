//! Cluster test support: three-node clusters on either backplane, and Debian's
//! `redis-server` started on a free loopback port.

#![allow(dead_code)] // each cluster test file uses a different part of this module

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use wamp_server::{Backplane, InProcessHub, Router, RouterBuilder};

use crate::common::{test_router, Client, TestServer, WAIT};

/// Which backplane a cluster runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InProcess,
    #[cfg(feature = "redis")]
    Redis,
}

/// Where the tests find redis-server.
const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A redis-server child process on a loopback port; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts redis-server on a free port, or `None` (after a loud message) when it is not
    /// installed. Under `CI=true` a missing redis-server fails the test.
    pub async fn start() -> Option<RedisServer> {
        if !std::path::Path::new(REDIS_SERVER).exists() {
            let msg = "redis-server is not installed: the Redis cluster tests need Debian's \
                       redis-server (apt-get install redis-server)";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg}");
            }
            eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
            return None;
        }
        // `--port 0` disables TCP: pick a free port by binding and releasing it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer { port, child: None };
        server.spawn().await;
        Some(server)
    }

    /// A handle to a redis-server already running on `port` (not killed when dropped).
    pub fn attach(port: u16) -> RedisServer {
        RedisServer { port, child: None }
    }

    async fn spawn(&mut self) {
        let child = Command::new(REDIS_SERVER)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + WAIT * 2;
        loop {
            if self.ping().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer PING on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    #[cfg(feature = "redis")]
    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .ok()
    }

    /// Whether redis answers PING.
    pub async fn ping(&self) -> bool {
        #[cfg(feature = "redis")]
        {
            let Some(mut conn) = self.connection().await else {
                return false;
            };
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok_and(|p| p == "PONG")
        }
        #[cfg(not(feature = "redis"))]
        {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        }
    }

    /// `PUBSUB NUMSUB channel`: how many connections subscribe to it.
    #[cfg(feature = "redis")]
    pub async fn numsub(&self, channel: &str) -> i64 {
        let mut conn = self.connection().await.expect("connect to redis");
        let reply: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .unwrap();
        reply[0].1
    }

    /// `PUBLISH channel payload`, as another node would.
    #[cfg(feature = "redis")]
    pub async fn publish(&self, channel: &str, payload: &[u8]) {
        let mut conn = self.connection().await.expect("connect to redis");
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .unwrap();
    }

    /// SIGKILL, and wait for the process to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Sends a signal (`STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped process cannot die of SIGKILL until it runs again.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// Several routers joined by one backplane, each served on its own port.
pub struct Cluster {
    pub nodes: Vec<TestServer>,
    pub redis: Option<RedisServer>,
    #[cfg(feature = "redis")]
    pub redis_backplanes: Vec<Arc<wamp_server::backplane::redis::RedisBackplane>>,
    hub: InProcessHub,
    kind: Kind,
    prefix: String,
}

impl Cluster {
    /// `n` nodes on the given backplane; `None` when redis-server is missing (skipped).
    pub async fn start(kind: Kind, n: usize) -> Option<Cluster> {
        Cluster::start_with(kind, n, |b| b).await
    }

    /// Like [`Cluster::start`], with each router's builder changed by `f`.
    pub async fn start_with(
        kind: Kind,
        n: usize,
        f: impl Fn(RouterBuilder) -> RouterBuilder,
    ) -> Option<Cluster> {
        let redis = match kind {
            Kind::InProcess => None,
            #[cfg(feature = "redis")]
            Kind::Redis => Some(RedisServer::start().await?),
        };
        let mut cluster = Cluster {
            nodes: Vec::new(),
            redis,
            #[cfg(feature = "redis")]
            redis_backplanes: Vec::new(),
            hub: InProcessHub::new(),
            kind,
            prefix: "test".to_string(),
        };
        for i in 0..n {
            let backplane = cluster.backplane(&format!("n{i}"));
            let router = f(test_router().backplane(backplane)).build();
            cluster.nodes.push(TestServer::start(router).await);
        }
        cluster.wait_joined().await;
        Some(cluster)
    }

    fn backplane(&mut self, name: &str) -> Arc<dyn Backplane> {
        match self.kind {
            Kind::InProcess => self.hub.backplane_with_queue(name, 1000),
            #[cfg(feature = "redis")]
            Kind::Redis => {
                use wamp_server::backplane::redis::{RedisBackplane, RedisConfig};
                let url = self.redis.as_ref().unwrap().url();
                let config = RedisConfig::new(url)
                    .prefix(self.prefix.clone())
                    .node_name(name)
                    .queue_capacity(1000)
                    .heartbeat(Duration::from_millis(100));
                let bp = RedisBackplane::new(config).unwrap();
                self.redis_backplanes.push(bp.clone());
                bp
            }
        }
    }

    pub fn router(&self, i: usize) -> &Router {
        &self.nodes[i].router
    }

    /// The Redis channel of a topic.
    pub fn channel(&self, topic: &str) -> String {
        format!("{}:t:{topic}", self.prefix)
    }

    /// Waits until every node is connected and sees all the others.
    pub async fn wait_joined(&self) {
        let n = self.nodes.len();
        for node in &self.nodes {
            crate::common::eventually("every node sees the others", || {
                let s = node.router.backplane_status().unwrap();
                s.connected && s.nodes_seen == n - 1
            })
            .await;
        }
    }

    /// Waits until node `i` listens to `topics` topics of the other nodes (on Redis: the
    /// subscriptions are confirmed).
    pub async fn wait_listening(&self, i: usize, topics: usize) {
        let router = self.router(i).clone();
        crate::common::eventually("the node listens to its topics", move || {
            router.backplane_status().unwrap().subscribed_topics == topics
        })
        .await;
    }

    /// A client on node `i`, subscribed to `topics`.
    pub async fn subscriber(&self, i: usize, topics: &[&str]) -> Client {
        let mut c = self.nodes[i].client().await;
        for t in topics {
            c.send_json(json!([5, t])).await;
        }
        // The SUBSCRIBE is processed once a later CALL is answered.
        c.assert_alive().await;
        c
    }
}

/// The exact EVENT frame for a topic and event.
pub fn event(topic: &str, ev: Value) -> String {
    json!([8, topic, ev]).to_string()
}
