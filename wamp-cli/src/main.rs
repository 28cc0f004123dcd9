//! The `wamp-cli` binary: parses the command line, sets up logging, runs the command and
//! exits with its code (see the `wamp_cli` crate docs for the codes).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wamp_cli::{exit, Cli, Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            Failure::other(format!("cannot start the async runtime: {e}")).report();
            return ExitCode::from(exit::CALL_ERROR);
        }
    };
    let outcome = runtime.block_on(wamp_cli::run(cli));
    // Client drivers still winding down are not waited for.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            failure.report();
            failure.exit_code()
        }
    }
}

/// Logs to stderr: warnings of the CLI by default, `-v` the client's steps, `-vv` every WAMP
/// message sent and received too (the client's `wamp_client::wire` trace, the JSON text of
/// each message). Nothing of tungstenite's. `RUST_LOG` replaces the filter.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "wamp_cli=warn",
        1 => "wamp_cli=debug,wamp_client=debug",
        _ => "wamp_cli=trace,wamp_client=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0)
        .try_init();
}
