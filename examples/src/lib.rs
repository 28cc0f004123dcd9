//! Runnable examples of the WAMP v1 workspace. Each program says how to run it in its first
//! line; start the tutorial server first with `cargo run -p wamp-server`.
//!
//! | example | what it shows |
//! |---|---|
//! | `rpc_client` | `wamp-client` calls: echo, typed add, CALLERRORs, WAMP-CRA, whoami |
//! | `chat_client` | `wamp-client` PubSub: a terminal chat on `event:chat`, with reconnect |
//!
//! The README's two snippets, "A server in a few lines" and "A client", are this doc-test
//! without its hidden lines (`tests/readme.rs` checks that they stay the same): a real server
//! on a free port and a real client talking to it.
//!
//! ```rust
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use serde_json::{json, Value};
//! use wamp_server::{CallError, Router, Topic};
//!
//! let router = Router::builder()
//!     .default_prefix("rpc", "http://example.com/rpc#")
//!     .procedure("http://example.com/rpc#echo", |_ctx, args: Vec<Value>| async move {
//!         Ok(args.into_iter().next().unwrap_or(Value::Null))
//!     })
//!     .typed_procedure("http://example.com/rpc#add", |_ctx, (a, b): (i64, i64)| async move {
//!         Ok::<_, CallError>(a + b)
//!     })
//!     .topic("http://example.com/event#chat", Topic::open().on_publish(|ctx, mut p| async move {
//!         p.event = json!({"from": &*ctx.session_id, "text": p.event}); // a publish "broker"
//!         Some(p)
//!     }))
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?; // 0: any free port
//! let url = format!("ws://{}/ws", listener.local_addr()?);
//! tokio::spawn(wamp_server::serve(listener, router, async { let _ = tokio::signal::ctrl_c().await; }));
//! use futures::StreamExt;
//!
//! let client = wamp_client::Client::connect(&url).await?;
//! let echoed = client.call("rpc:echo", vec!["hello".into()]).await?; // the server's "rpc" prefix
//! assert_eq!(echoed, json!("hello"));
//! let sum: i64 = client.call_typed("rpc:add", (2, 3)).await?;
//! assert_eq!(sum, 5);
//! client.prefix("event", "http://example.com/event#").await?; // a prefix of the client's own
//! let mut chat = client.subscribe("event:chat").await?;
//! client.publish("event:chat", "hi").await?; // a subscribed publisher gets its own event
//! let event = chat.next().await.expect("the chat event");
//! assert_eq!(event.topic, "http://example.com/event#chat");
//! assert_eq!(event.payload["text"], "hi");
//! # Ok(())
//! # }
//! ```
