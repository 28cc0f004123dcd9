//! `wamp-client`: an async WAMP v1 client for Rust (RPC and PubSub over WebSocket), what
//! AutobahnJS was for browsers.
//!
//! A [`Client`] is a cheap, cloneable handle (`Clone + Send + Sync`) over a channel to one
//! driver task, which [`Client::connect`] spawns and which alone owns the WebSocket. A
//! [`Subscription`] is a [`Stream`](https://docs.rs/futures/0.3/futures/stream/trait.Stream.html) of events; dropping it unsubscribes.
//! When the link drops, calls in flight fail with [`Error::ConnectionLost`], and the
//! client reconnects as its [`ReconnectPolicy`] says, then sends its prefixes again,
//! authenticates again if it had, and re-subscribes every live subscription.
//!
//! The wire format (messages, CURIEs, WAMP-CRA) comes from the `wamp-proto` crate; the project's
//! `docs/PROTOCOL.md` describes the protocol.
//!
//! # Connect
//!
//! ```no_run
//! use std::time::Duration;
//! use wamp_client::{Client, ConnectOptions, ReconnectPolicy};
//!
//! # async fn run() -> wamp_client::Result<()> {
//! // Defaults: offers the `wamp` subprotocol and insists on it, 10 s connect timeout,
//! // 60 s call timeout, up to 10 reconnect attempts with exponential backoff.
//! let client = Client::connect("ws://localhost:8080/ws").await?;
//! println!("session {:?} on {:?}", client.session_id(), client.server_ident());
//!
//! // Or with options.
//! let client = ConnectOptions::new()
//!     .connect_timeout(Duration::from_secs(5))
//!     .call_timeout(Some(Duration::from_secs(10)))
//!     .reconnect(ReconnectPolicy::new(60, Duration::from_secs(30)))
//!     .skip_subprotocol_check(false)
//!     .connect("ws://localhost:8080/ws")
//!     .await?;
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! # TLS (`wss://`)
//!
//! With the `tls` feature (on by default), `wss://` URLs connect over rustls with the ring
//! provider. The server's certificate is checked against the operating system's trust store
//! (or, where that is empty, the webpki-roots Mozilla roots), plus any CA files given; the
//! SNI name is the URL's host (names and IP addresses). A refused certificate is
//! [`Error::Tls`], whose [`TlsFailure`] says what is wrong and what to do.
//!
//! ```no_run
//! # #[cfg(feature = "tls")]
//! # async fn run() -> wamp_client::Result<()> {
//! use wamp_client::ConnectOptions;
//! // A server with a private CA or a self-signed certificate: trust that file.
//! let client = ConnectOptions::new()
//!     .ca_file("/etc/wamp/ca.pem")
//!     .connect("wss://wamp.example.com/ws")
//!     .await?;
//! // For testing only: accept any certificate (warns on every connection).
//! let careless = ConnectOptions::new().insecure(true).connect("wss://localhost:8443/ws").await?;
//! # drop((client, careless));
//! # Ok(())
//! # }
//! ```
//!
//! # Call a procedure
//!
//! ```no_run
//! use std::time::Duration;
//! use serde_json::json;
//! use wamp_client::{Client, Error};
//!
//! # async fn run(client: Client) -> wamp_client::Result<()> {
//! // Untyped: positional JSON arguments in, one JSON result out.
//! let echoed = client.call("rpc:echo", vec![json!("hello")]).await?;
//! assert_eq!(echoed, json!("hello"));
//!
//! // Typed: arguments as a tuple, result decoded with serde.
//! let sum: i64 = client.call_typed("rpc:add", (1, 2, 3)).await?;
//! assert_eq!(sum, 6);
//!
//! // A CALLERROR carries the server's URI, description and details.
//! match client.call("rpc:throw", vec![]).await {
//!     Err(Error::CallError { uri, desc, details }) => println!("{uri}: {desc} {details:?}"),
//!     other => println!("{other:?}"),
//! }
//!
//! // A timeout for some calls only.
//! let quick = client.with_call_timeout(Some(Duration::from_secs(1)));
//! let _ = quick.call("rpc:echo", vec![json!(1)]).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Define a prefix
//!
//! ```no_run
//! # async fn run(client: wamp_client::Client) -> wamp_client::Result<()> {
//! client.prefix("calc", "http://example.com/simple/calc#").await?;
//! let _ = client.call("calc:square", vec![serde_json::json!(23)]).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Subscribe and publish
//!
//! ```no_run
//! use futures::StreamExt;
//! use wamp_client::{Client, PublishOptions};
//!
//! # async fn run(client: Client) -> wamp_client::Result<()> {
//! // Events are matched by topic URI, resolved with the client's own prefixes: declare the
//! // prefix (here one the tutorial server also has by default) before subscribing with it.
//! client.prefix("event", "http://wamptutorial/event#").await?;
//! let mut chat = client.subscribe("event:chat").await?;
//!
//! client.publish("event:chat", "hello").await?;
//! // Everyone but me, or only some sessions:
//! client.publish_with("event:chat", "hi all", PublishOptions::new().exclude_me(true)).await?;
//! client
//!     .publish_with("event:chat", "psst", PublishOptions::new().eligible(["some-session-id"]))
//!     .await?;
//!
//! while let Some(event) = chat.next().await {
//!     let text: String = event.decode()?;
//!     println!("{}: {text}", event.topic);
//! }
//! // Dropping `chat` (the last subscription of the topic) sends UNSUBSCRIBE.
//! # Ok(())
//! # }
//! ```
//!
//! # Authenticate (WAMP-CRA)
//!
//! ```no_run
//! # async fn run(client: wamp_client::Client) -> wamp_client::Result<()> {
//! let permissions = client.authenticate("guest", "secret-password").await?;
//! println!("may call whoami: {}", permissions.may_call("http://wamptutorial/rpc#whoami"));
//! // Or on every connection, before anything else:
//! let connected = wamp_client::ConnectOptions::new()
//!     .auth("guest", "secret-password")
//!     .connect("ws://localhost:8080/ws")
//!     .await;
//! match connected {
//!     Ok(client) => drop(client),
//!     // The server refused: its CALLERROR URI and description.
//!     Err(wamp_client::Error::AuthRefused { uri, desc, .. }) => println!("refused: {uri}: {desc}"),
//!     // Refused before WAMP even started: the HTTP status and body.
//!     Err(wamp_client::Error::HandshakeRefused { status, body, .. }) => {
//!         println!("HTTP {status}: {body}")
//!     }
//!     Err(other) => return Err(other),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Watch the connection, and close it
//!
//! ```no_run
//! use wamp_client::ConnectionState;
//!
//! # async fn run(client: wamp_client::Client) {
//! let mut states = client.state_changes();
//! tokio::spawn(async move {
//!     while states.changed().await.is_ok() {
//!         match &*states.borrow() {
//!             ConnectionState::Connected { session_id, .. } => println!("up as {session_id}"),
//!             ConnectionState::Reconnecting { attempt, reason } => {
//!                 println!("down ({reason}), attempt {attempt}")
//!             }
//!             other => println!("{other:?}"),
//!         }
//!     }
//! });
//! client.close().await;
//! assert!(client.state().is_closed());
//! # }
//! ```
//!
//! # Who owns what
//!
//! | module | owns |
//! |---|---|
//! | `client` | the [`Client`] handle: turns each operation into a command for the driver |
//! | `connect` | one connection's setup: dial, WebSocket handshake (`wamp` subprotocol), WELCOME, and the one WAMP-CRA routine that [`Client::authenticate`] and re-authentication after a reconnect both run |
//! | `driver` | the session loop (reads in its `select!`; a writer task per connection, fed by a bounded queue, owns the write half) and reconnecting |
//! | `registry` | the bookkeeping as plain data: pending calls, subscriptions by resolved topic, the client's prefixes |
//! | `tls` | (feature `tls`) the rustls client configuration for `wss://` (trust store, CA files, insecure mode) and reading rustls's refusals into [`TlsFailure`]s |
//! | `subscription` | the [`Subscription`] stream; dropping it tells the driver |
//! | `options`, `event`, `error` | plain types: [`ConnectOptions`], [`PublishOptions`], [`ConnectionState`]; [`Event`]; [`Error`] |
//!
//! Imports go one way: `client` → `connect`, `driver` → `registry` → `event`, `options`,
//! `error`; `client` and `connect` → `tls` → `options`, `error`. Two pairs import each
//! other, on purpose: `client` and `subscription` (a [`Subscription`] holds the [`Client`]
//! that made it), and `client` and `options` ([`ConnectOptions::connect`] is a shortcut for
//! [`Client::connect_with`]). Wire layouts
//! (messages, CURIEs, WAMP-CRA) are [`wamp_proto`]'s.
//!
//! # Logging
//!
//! The driver logs with [`tracing`](https://docs.rs/tracing) under a `wamp_client` span carrying the URL: connects
//! and closes at info, lost connections and protocol errors from the server at warn, the
//! rest at debug.
//!
//! At trace level, under the target `wamp_client::wire`, it logs every WAMP message it sends
//! and receives as its JSON text, `sent [2,"…","http://wamptutorial/rpc#echo","hi"]` and
//! `received [3,"…","hi"]` (WebSocket pings and closes are not WAMP messages and are not
//! shown). `RUST_LOG=wamp_client::wire=trace` shows the protocol alone.

mod client;
mod connect;
mod driver;
mod error;
mod event;
mod options;
mod registry;
mod subscription;
#[cfg(feature = "tls")]
mod tls;

pub use client::Client;
pub use error::{Error, Result, TlsFailure};
pub use event::Event;
pub use options::{ConnectOptions, ConnectionState, PublishOptions, ReconnectPolicy};
/// The rustls crate this client is built with, for [`ConnectOptions::tls_config`].
#[cfg(feature = "tls")]
pub use rustls;
pub use subscription::Subscription;
pub use wamp_proto::cra::CraStyle;
/// The prefix of a topic that reads as a CURIE (what [`Client::subscribe`] checks before
/// refusing an unknown prefix with [`Error::UnknownPrefix`]); [`wamp_proto::uri::curie_prefix`].
pub use wamp_proto::uri::curie_prefix;
pub use wamp_proto::{Permissions, Value};

/// Connects to `url` with the default [`ConnectOptions`]; the same as [`Client::connect`].
pub async fn connect(url: &str) -> Result<Client> {
    Client::connect(url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    fn assert_send<T: Send + 'static>() {}

    #[test]
    fn handles_are_send_sync_clone() {
        assert_send_sync_clone::<Client>();
        assert_send_sync_clone::<Error>();
        assert_send_sync_clone::<ConnectOptions>();
        assert_send::<Subscription>();
    }
}
