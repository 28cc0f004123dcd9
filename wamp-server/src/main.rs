//! The tutorial server: the seed's demo page and a WAMP v1 endpoint.
//!
//! Run with: `cargo run --release -p wamp-server` (then open http://localhost:8080/).
//! Flags: `--bind ADDR` (default 127.0.0.1), `--port N` (default 8080; 0 picks a free port),
//! `--allow-origin ORIGIN` (repeatable; browsers on other origins than the page's own).
//! Logs: `RUST_LOG=debug` for every session's story.
//! With `--config router.toml` it is the standalone router instead (see [`standalone`]).

mod standalone;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use tracing::info;

/// The WAMP v1 tutorial server: demo page on `/`, WAMP on `/ws`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on [default: 127.0.0.1; with --config: [server] bind].
    #[arg(long, env = "WAMP_BIND")]
    bind: Option<IpAddr>,
    /// Port to listen on, 0 picks a free one [default: 8080; with --config: [server] port].
    #[arg(long, env = "WAMP_PORT")]
    port: Option<u16>,
    /// Run the standalone router configured by this file (TOML, or JSON if it ends in .json)
    /// instead of the tutorial. Flags and environment variables win over the file.
    #[arg(long, env = "WAMP_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Only validate the --config file, then exit (0 when it is valid).
    #[arg(long, requires = "config")]
    check: bool,
    /// Also accept browser pages from this origin (e.g. http://localhost:3000; `*` for any,
    /// `null` for sandboxed pages); repeatable. The page's own origin is always accepted.
    /// With --config: replaces [server] allowed_origins.
    #[arg(
        long = "allow-origin",
        value_name = "ORIGIN",
        env = "WAMP_ALLOW_ORIGINS",
        value_delimiter = ',',
        value_parser = wamp_server::handshake::parse_allowed_origin
    )]
    allow_origins: Vec<String>,
}

/// Ctrl-C, or SIGTERM (as `kill` and service managers send it).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("Ctrl-C: shutting down"),
            _ = term.recv() => info!("SIGTERM: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        info!("Ctrl-C: shutting down");
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Logs go to stderr (colour only on a terminal); stdout carries the "listening" line.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if let Some(config) = &args.config {
        let overrides = standalone::config::Overrides {
            bind: args.bind,
            port: args.port,
            allowed_origins: (!args.allow_origins.is_empty()).then(|| args.allow_origins.clone()),
        };
        return standalone::run(config, overrides, args.check, stop_signal()).await;
    }
    let addr = SocketAddr::new(
        args.bind.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        args.port.unwrap_or(8080),
    );
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e} (is another server using the port? try --port)");
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .expect("a bound listener has an address");
    // Browsers may connect from the page's own origin and from the allowed ones.
    // (The router warns about '*' itself.)
    if !args.allow_origins.is_empty() {
        info!(origins = ?args.allow_origins, "browser origins allowed beside the page's own");
    }
    let router = wamp_server::tutorial::builder()
        .allowed_origins(args.allow_origins)
        .build();
    let app = wamp_server::tutorial::app(router.clone());
    let host = if local.ip().is_loopback() {
        "localhost".to_string()
    } else {
        local.ip().to_string()
    };
    println!(
        "wamp-server listening: page http://{host}:{port}/  WAMP ws://{host}:{port}/ws",
        port = local.port()
    );
    info!(%local, "listening");
    let shutdown_router = router.clone();
    // Small frames must not wait for Nagle's algorithm (40 ms stalls on replies otherwise).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            shutdown_router.shutdown();
        })
        .await;
    let grace = router.options().shutdown_grace + std::time::Duration::from_secs(1);
    let _ = tokio::time::timeout(grace, router.closed()).await;
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
