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
//! An axum app with pages beside the WAMP endpoint: [`serve_app`]. TLS (`wss://`,
//! `https://`; cargo feature `tls`, on by default, rustls with the ring provider):
//! `serve_tls` and `serve_app_tls` with a `tls::TlsConfig` from PEM files or your own rustls
//! `ServerConfig`. Every accept path bounds its handshakes ([`Options::handshake_timeout`],
//! [`Options::max_pending_handshakes`]) and takes a session slot only once the handshake
//! succeeded.
//!
//! Authentication: [`AuthConfig`] (WAMP-CRA; the security rules are in [`mod@auth`]).

mod app_server;
pub mod auth;
mod axum_mount;
mod broker;
pub mod close;
mod handler;
pub mod handshake;
mod router;
mod server;
mod session;
#[cfg(feature = "tls")]
pub mod tls;
mod topic;
pub mod transport;
pub mod tutorial;

pub use app_server::serve_app;
#[cfg(feature = "tls")]
pub use app_server::serve_app_tls;
pub use auth::{AuthConfig, AuthProvider, AuthUser, InMemoryAuth};
pub use axum_mount::axum_handler;
pub use handler::{typed_args, BoxFuture, CallContext, CallError, CallResult};
pub use router::{ConnectionSlot, Options, Router, RouterBuilder};
pub use server::serve;
#[cfg(feature = "tls")]
pub use server::serve_tls;
pub use session::{run_session, ConnectionInfo};
pub use topic::{Publication, PublishPolicy, SubscribePolicy, Topic, TopicContext};
