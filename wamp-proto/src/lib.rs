//! `wamp-proto`: the WAMP v1 wire format, shared by the server, the client and the CLI.
//!
//! - [`Message`]: the nine message types, parsed from and encoded to JSON text frames.
//! - [`uri::Prefixes`]: CURIE resolution and shrinking ([`uri::split_curie`], [`uri::curie_prefix`]),
//!   the one URI matcher ([`uri::UriTable`]), plus the well-known URIs and errors.
//! - [`cra`]: WAMP-CRA signing (standard and clj-wamp style), PBKDF2 key derivation,
//!   verification, the challenge object and the typed `authreq`/`auth` arguments and result.
//! - [`Permissions`]: what a session may call, publish and subscribe to.
//! - [`ids`]: session and call ids from a secure random source.
//!
//! This crate does no I/O. The repository's `docs/PROTOCOL.md` is the normative
//! description of everything here.
//!
//! ```
//! use wamp_proto::Message;
//! let msg = Message::from_json(r#"[2,"0.arg98rkv3aowp14i","rpc:echo","test"]"#).unwrap();
//! match &msg {
//!     Message::Call { call_id, proc_uri, args } => {
//!         assert_eq!(proc_uri, "rpc:echo");
//!         let reply = Message::CallResult { call_id: call_id.clone(), result: args[0].clone() };
//!         assert_eq!(reply.to_json(), r#"[3,"0.arg98rkv3aowp14i","test"]"#);
//!     }
//!     _ => unreachable!(),
//! }
//! ```

pub mod cra;
mod decode;
mod error;
pub mod ids;
pub mod message;
pub mod permissions;
pub mod uri;

pub use error::Error;
pub use message::{Exclude, Message};
pub use permissions::{Permissions, PubSubPermission, RpcPermission};
pub use serde_json::Value;
