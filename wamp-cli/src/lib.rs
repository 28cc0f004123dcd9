//! `wamp-cli`: call, subscribe, publish and benchmark against any WAMP v1 server.
//!
//! The binary is a thin layer over the `wamp-client` crate: one module per command, each a few uses
//! of [`wamp_client::Client`]. Against the tutorial server (`cargo run -p wamp-server`) no
//! flag is needed:
//!
//! ```text
//! $ wamp-cli call rpc:echo test
//! "test"
//! $ wamp-cli subscribe event:chat
//! {"topic":"http://wamptutorial/event#chat","event":"hello"}
//! $ wamp-cli publish event:chat hello
//! $ wamp-cli bench rpc --connections 4 --in-flight 16 --duration 10s
//! $ wamp-cli bench fanout --subscribers 8 --publishers 1 --duration 10s --json
//! ```
//!
//! Against another server, name its URIs with `--prefix NAME=URI` (or `WAMP_PREFIXES`), and
//! authenticate with `--auth-key`/`--auth-secret` (or `WAMP_AUTH_KEY`/`WAMP_AUTH_SECRET`).
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (for `subscribe`: `--count` reached, Ctrl-C, or SIGTERM) |
//! | 1 | the server answered CALLERROR (URI, description and details on stderr), or the command failed otherwise (a benchmark whose events never arrive) |
//! | 2 | usage: bad flags or arguments (clap's own code), an invalid URL, a CURIE whose prefix is not declared (every command, before connecting) |
//! | 3 | connection: server unreachable, WebSocket handshake refused (the HTTP status and the server's reason are shown), not a WAMP v1 server, connection lost |
//! | 4 | authentication failed: the server refused WAMP-CRA (wrong key or secret, no WAMP-CRA; its error URI is shown), or its challenge could not be used |
//! | 5 | timeout: connecting or a call took longer than `--timeout` |
//!
//! The constants are in [`exit`]. Every failure prints one line on stderr that starts with
//! `error:` and says what to do about it; a CALLERROR's details follow on a second line.
//!
//! # URLs, prefixes and acknowledgements
//!
//! `--url` takes `ws://HOST:PORT/PATH`; without a scheme (`localhost:8080/ws`) it means
//! `ws://`. A server that answers the handshake with a web page (HTTP 200 and HTML, as the
//! tutorial server does on `/`) is reported as such, with its `/ws` path suggested.
//!
//! `call` and `publish` send CURIEs as given: the server resolves them with its own
//! prefixes (the tutorial server has `rpc` and `event` by default) and with those given with
//! `--prefix`, which `wamp-cli` declares with PREFIX on every connection.
//!
//! WAMP v1 events carry full topic URIs, so `subscribe` (and `bench fanout`) must know the
//! full URI of a topic given as a CURIE. The prefix comes from `--prefix`, or else from the
//! tutorial's two prefixes that `wamp-cli` knows by default ([`TUTORIAL_PREFIXES`]:
//! `rpc` → `http://wamptutorial/rpc#`, `event` → `http://wamptutorial/event#`).
//!
//! One rule for every command ([`curie`]): a CURIE whose prefix is neither declared with
//! `--prefix` nor one of those two is refused before connecting, with `error: "foo" is not a
//! declared prefix …` on stderr and exit 2. (A subscription could never match its events, a
//! call would get `#notfound`, and a publish would go nowhere with nothing to say so.) What
//! reads as a CURIE rather than a URI is [`wamp_client::curie_prefix`]'s decision. `-v` logs
//! how each topic was resolved.
//!
//! WAMP v1 has no acknowledgement for SUBSCRIBE and PUBLISH: `subscribe` cannot tell a
//! refused topic from a quiet one, and `publish` exits 0 once its events are sent. With `-v`
//! both say that nothing confirmed them.
//!
//! # Logging
//!
//! `-v` logs what the CLI and the client do (connects, calls, subscriptions) at debug;
//! `-vv` adds every WAMP message sent and received, as its JSON text, from the client's own
//! protocol trace (target `wamp_client::wire`):
//!
//! ```text
//! TRACE wamp_client{url=ws://localhost:8080/ws}: wamp_client::wire: received [0,"Xq…",1,"wamp-server/0.1.0"]
//! TRACE wamp_client{url=ws://localhost:8080/ws}: wamp_client::wire: sent [2,"Gk…","rpc:echo","test"]
//! TRACE wamp_client{url=ws://localhost:8080/ws}: wamp_client::wire: received [3,"Gk…","test"]
//! ```
//!
//! `RUST_LOG` overrides both (`RUST_LOG=wamp_client::wire=trace` shows the protocol alone).

pub mod args;
pub mod bench;
mod call;
pub mod cli;
mod connect;
pub mod curie;
pub mod exit;
mod output;
mod publish;
mod subscribe;

use std::io::Write;

use clap::CommandFactory;

pub use cli::Cli;
pub use connect::{Connection, TUTORIAL_PREFIXES};
pub use exit::Failure;

/// Runs one parsed command line to completion. The caller turns the error into its exit
/// code with [`Failure::exit_code`] after printing it with [`Failure::report`].
pub async fn run(mut cli: Cli) -> Result<(), Failure> {
    cli.global.url = args::with_scheme(&cli.global.url);
    for name in cli.command.uris() {
        curie::check(&cli.global.prefixes, name)?;
    }
    let conn = Connection::from_args(&cli.global)?;
    match cli.command {
        cli::Command::Call(args) => call::run(&conn, args).await,
        cli::Command::Subscribe(args) => subscribe::run(&conn, args).await,
        cli::Command::Publish(args) => publish::run(&conn, args).await,
        cli::Command::Bench(args) => bench::run(&conn, args).await,
        cli::Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "wamp-cli", &mut out);
            out.flush()
                .map_err(|e| Failure::other(format!("cannot write: {e}")))
        }
    }
}
