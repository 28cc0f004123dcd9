//! `wamp-server`: a WAMP v1 router (RPC, PubSub, WAMP-CRA) over tokio and tokio-tungstenite.
//!
//! Build a [`Router`] with procedures and topic policies, then [`serve`] it on a listener (or
//! mount it in an axum app with [`axum_handler`]). The wire behaviour follows the project's
//! `docs/PROTOCOL.md`: every CALL gets exactly one reply, CURIEs resolve at the first colon,
//! events reach (subscribers ∩ eligible) − exclude, and bad input closes only the session that
//! sent it (see [`close`] for the codes).
//!
//! The seed tutorial's server (echo, a chat relay, a publish "broker") in a few lines:
//!
//! ```no_run
//! use serde_json::{json, Value};
//! use wamp_server::{CallError, Router, Topic};
//!
//! # async fn run() -> std::io::Result<()> {
//! let router = Router::builder()
//!     .default_prefix("rpc", "http://wamptutorial/rpc#")
//!     .default_prefix("event", "http://wamptutorial/event#")
//!     .procedure("http://wamptutorial/rpc#echo", |_ctx, args: Vec<Value>| async move {
//!         Ok(args.into_iter().next().unwrap_or(Value::Null))
//!     })
//!     .procedure("http://wamptutorial/rpc#throw", |_ctx, _args| async move {
//!         Err::<Value, _>(CallError::internal("An exception"))
//!     })
//!     // A plain relay...
//!     .topic("http://wamptutorial/event#chat", Topic::open())
//!     // ...and a "broker" that stamps each message with its sender.
//!     .topic("http://wamptutorial/event#signed", Topic::open().on_publish(|ctx, mut p| async move {
//!         p.event = json!({"from": &*ctx.session_id, "message": p.event});
//!         Some(p)
//!     }))
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! wamp_server::serve(listener, router, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Server-side publishing, from anywhere that holds the router (or from a handler through
//! [`CallContext::router`]): [`Router::publish`], [`Router::publish_excluding`],
//! [`Router::publish_to`], [`Router::subscribers`], [`Router::close_session`].
//!
//! Cluster mode: routers in one process ([`InProcessHub`]) or in several (feature `redis`,
//! `backplane::redis::RedisBackplane`) share their PubSub through a [`Backplane`]
//! ([`RouterBuilder::backplane`]; [`Router::backplane_status`],
//! [`Router::cluster_subscribers`], [`Router::cluster_close_session`]).
//!
//! An axum app with pages beside the WAMP endpoint: [`serve_app`] ([`serve_app_at`] takes the
//! endpoint's upgrades before the app, the way [`serve`] does). TLS (`wss://`,
//! `https://`; cargo feature `tls`, on by default, rustls with the ring provider):
//! `serve_tls` and `serve_app_tls` with a `tls::TlsConfig` from PEM files or your own rustls
//! `ServerConfig`. Every accept path bounds its handshakes ([`Options::handshake_timeout`],
//! [`Options::max_pending_handshakes`]) and takes a session slot only once the handshake
//! succeeded.
//!
//! Authentication: [`AuthConfig`] (WAMP-CRA; the security rules are in [`mod@auth`]).
//!
//! Observability: [`Router::stats`] (counters and gauges as plain atomics, see [`RouterStats`]);
//! with the `metrics` feature, `metrics::serve` exposes them as OpenMetrics text beside
//! `/healthz` and `/readyz`. Every session's log span carries its `id` and `peer`.
//!
//! # Limits and how sessions end
//!
//! Every per-session resource has a bound in [`Options`] (defaults in parentheses, close
//! code after the arrow):
//! - [`Options::max_connections`] (10,000 sessions) → HTTP 503;
//!   [`Options::handshake_timeout`] (10 s) and [`Options::max_pending_handshakes`] (1,024)
//!   → the TCP connection is dropped;
//! - outgoing queue: [`Options::outbox_capacity`] (4,096 frames) and
//!   [`Options::outbox_max_bytes`] (4 MiB, also the largest frame sent and the bound on
//!   pongs) → 1008; a close frame to a client that does not read gets
//!   [`Options::close_wait`] (10 s), then the connection is dropped;
//! - [`Options::max_prefixes`] (1,024), [`Options::max_subscriptions`] (10,000),
//!   [`Options::max_uri_length`] (2 KiB) → 1008 with a reason naming the limit;
//! - [`Options::max_message_size`] (1 MiB) → 1009;
//! - [`Options::max_calls_in_flight`] (256, PubSub messages queued behind a topic policy
//!   callback included): at the cap the socket is not read until one finishes (no close);
//! - [`Options::policy_timeout`] (10 s) for topic policy callbacks (deny / drop; the
//!   session keeps answering calls meanwhile, PubSub stays in order);
//!   [`AuthConfig::lookup_timeout`] (10 s) for credential lookups (`#auth-permissions-error`);
//!   [`AuthConfig::timeout`] (20 s) to authenticate → 4401.
//!
//! WebSocket protocol violations close with 1002 (framing) or 1007 (invalid UTF-8), with a
//! reason and a warn log line naming the session. When a session ends its running calls are
//! aborted ([`Options::detach_calls_on_close`] keeps them) and the `on_session_close` hook
//! runs, also if the session task panicked. A graceful shutdown ends sessions without a
//! close handshake by default, so AutobahnJS 0.8 pages reconnect ([`ShutdownClose`]).
//! [`SessionError`] lists every reason with its code.
//!
//! # Cargo features
//!
//! All on by default, so `cargo run --release -p wamp-server` serves the tutorial:
//! - `axum`: [`axum_handler`] and [`serve_app`], an axum application with the WAMP endpoint
//!   (adds axum, hyper, hyper-util).
//! - `tutorial`: the `tutorial` module (the seed's demo page and procedures as an axum app).
//! - `tls`: `wss://` and `https://` with rustls and the ring provider.
//! - `metrics`: [`metrics::serve`], `/metrics` (OpenMetrics via prometheus-client, read from
//!   [`Router::stats`]), `/healthz` and `/readyz` (adds prometheus-client; needs `axum`).
//! - `bin`: the `wamp-server` binary (adds clap, tracing-subscriber and, on Unix, rustix).
//! - `redis` (off by default): cluster mode, `backplane::redis::RedisBackplane` and the
//!   binary's `--redis-url` (adds the `redis` crate).
//!
//! `wamp-server = { version = "…", default-features = false }` builds the router alone
//! ([`serve`] over tokio-tungstenite, [`run_session`] for other transports), without axum,
//! hyper, clap, tracing-subscriber or rustls; add `features = ["tls"]` for `serve_tls`.
//!
//! # Who owns what
//!
//! - `router.rs`: the [`Router`] (procedures, topic policies, hooks, options, the session
//!   list) and the server-side API. Others reach its parts only through its methods.
//! - `session.rs`: one session's private state, its reader loop and the dispatch of client
//!   messages. Nothing else imports it except the transports that start sessions.
//! - `outbox.rs`: what others hold of a session (the bounded outgoing queue) and its writer
//!   task, the only writer of the socket. The broker and the router depend on it, not on the
//!   session.
//! - `broker.rs`: subscriptions and fan-out. `topic.rs`: topic policies. `handler.rs`:
//!   procedures and the call context. `auth.rs`: WAMP-CRA on the server.
//! - `backplane.rs`: the seam to other router nodes ([`Backplane`]), the in-process hub, and
//!   (feature `redis`) the Redis backplane; it reaches the router only through [`backplane::LocalNode`].
//! - `transport.rs`: the seam a session reads and writes ([`transport::Text`] in shared
//!   bytes), with the tokio-tungstenite adapter; `server.rs` (the accept loop, handshake
//!   bounds) and `axum_mount.rs` (axum) turn a connection into that seam; `app_server.rs`
//!   serves an axum app on the same accept loop (with `serve_app_at`, the endpoint's
//!   upgrades go down `server.rs`'s path instead of axum's), `tls.rs` adds TLS to both. `handshake.rs`:
//!   the upgrade rules. `close.rs`: close codes and [`SessionError`].
//! - `stats.rs`: the router's counters as plain atomics and the [`RouterStats`] snapshot;
//!   sessions, the broker, outboxes and transports count into it. `metrics.rs` (feature
//!   `metrics`) serves it as OpenMetrics text with `/healthz` and `/readyz`.
//!
//! No module imports a module that imports it back, with two deliberate exceptions. The
//! contexts handed to callbacks ([`CallContext`] in `handler.rs`, [`TopicContext`] in
//! `topic.rs`) carry the [`Router`], and the router stores those callbacks. The two contexts
//! stay separate types: their URI fields are named for what they are (`procedure`, `topic`),
//! and both names are public API. And `handshake.rs` reads the router's [`Options`], while
//! the builder asks it whether an origin list allows any site (to warn at once), so the rule
//! for `*` lives in one place.

#[cfg(feature = "axum")]
mod app_server;
pub mod auth;
#[cfg(feature = "axum")]
mod axum_mount;
pub mod backplane;
mod broker;
pub mod close;
mod handler;
pub mod handshake;
#[cfg(feature = "metrics")]
pub mod metrics;
mod outbox;
mod router;
mod server;
mod session;
pub mod stats;
#[cfg(feature = "tls")]
pub mod tls;
mod topic;
pub mod transport;
#[cfg(feature = "tutorial")]
pub mod tutorial;

#[cfg(feature = "axum")]
pub use app_server::{serve_app, serve_app_at};
#[cfg(all(feature = "axum", feature = "tls"))]
pub use app_server::{serve_app_tls, serve_app_tls_at};
pub use auth::{AuthConfig, AuthProvider, AuthUser, InMemoryAuth, ProviderError};
#[cfg(feature = "axum")]
pub use axum_mount::{axum_handler, axum_handler_with_peer};
pub use backplane::{Backplane, BackplaneStatus, ClusterAnswer, InProcessHub};
pub use close::SessionError;
pub use handler::{typed_args, BoxFuture, CallContext, CallError, CallResult};
pub use router::{ConnectionSlot, Options, Router, RouterBuilder, ShutdownClose};
pub use server::serve;
#[cfg(feature = "tls")]
pub use server::serve_tls;
pub use session::{run_session, ConnectionInfo};
pub use stats::RouterStats;
pub use topic::{Publication, PublishPolicy, SubscribePolicy, Topic, TopicContext};
