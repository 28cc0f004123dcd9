//! Runnable examples of the WAMP v1 workspace. Each program says how to run it in its first
//! line; start the tutorial server first with `cargo run -p wamp-server`.
//!
//! | example | what it shows |
//! |---|---|
//! | `rpc_client` | `wamp-client` calls: echo, typed add, CALLERRORs, WAMP-CRA, whoami |
//! | `chat_client` | `wamp-client` PubSub: a terminal chat on `event:chat`, with reconnect |
