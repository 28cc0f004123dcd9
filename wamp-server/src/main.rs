//! The tutorial server: the seed's demo page and a WAMP v1 endpoint.
//!
//! Run with: `cargo run --release -p wamp-server` (then open http://localhost:8080/).
//! Flags: `--bind ADDR` (default 127.0.0.1), `--port N` (default 8080; 0 picks a free port),
//! `--allow-origin ORIGIN` (repeatable; browsers on other origins than the page's own),
//! `--max-connections N` (sessions at once; default 10,000, kept below the open-file limit),
//! `--tls-cert FILE --tls-key FILE` (PEM; serves https:// and wss://),
//! `--redis-url URL [--node-name NAME] [--redis-prefix P] [--redis-queue-capacity N]
//! [--redis-heartbeat DURATION]` (cluster mode; feature `redis`).
//! `--metrics-bind ADDR` (e.g. 127.0.0.1:9090; off by default): `/metrics`, `/healthz`,
//! `/readyz` on their own listener.
//! Logs: `RUST_LOG=debug` for every session's story; `--log-format json` for log shippers.
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
    /// Most sessions at once; further WebSocket handshakes are refused with 503
    /// [default: 10000]. Kept below the open-file limit (one descriptor per session), which
    /// the server raises to its hard limit at start. With --config: replaces
    /// [server] max_connections.
    #[arg(
        long,
        value_name = "N",
        env = "WAMP_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    max_connections: Option<u64>,
    /// TLS certificate chain (PEM, leaf first): serve https:// and wss:// instead of http://
    /// and ws://. Needs --tls-key.
    #[arg(long, value_name = "FILE", env = "WAMP_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The TLS certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1). Needs --tls-cert.
    #[arg(long, value_name = "FILE", env = "WAMP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics (`/metrics`, OpenMetrics text) and health checks (`/healthz`,
    /// `/readyz`) on this address, usually 127.0.0.1:9090 (port 0 picks a free one). Off by
    /// default; keep it off public interfaces. With --config: replaces [metrics] bind.
    #[arg(long, value_name = "ADDR", env = "WAMP_METRICS_BIND")]
    metrics_bind: Option<SocketAddr>,
    /// Log format on stderr: `text` for people, `json` (one object a line) for log shippers.
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "text",
        env = "WAMP_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Cluster mode: several servers share their PubSub through Redis.
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Join a cluster through this Redis server (e.g. redis://127.0.0.1:6379/): events
    /// published on any node reach the subscribers of every node. Needs the `redis` feature.
    /// With --config: replaces [cluster] redis_url.
    #[arg(long, value_name = "URL", env = "WAMP_REDIS_URL")]
    redis_url: Option<String>,
    /// This node's name in the cluster (a random suffix is added per start) [default: node].
    #[arg(long, env = "WAMP_NODE_NAME", value_parser = standalone::config::parse_non_empty)]
    node_name: Option<String>,
    /// The prefix of the cluster's Redis channel names; every node of a cluster uses the
    /// same [default: wamp].
    #[arg(long, env = "WAMP_REDIS_PREFIX", value_parser = standalone::config::parse_non_empty)]
    redis_prefix: Option<String>,
    /// Cross-node events queued for Redis at most; when full the newest is dropped and
    /// counted [default: 10000].
    #[arg(
        long,
        value_name = "N",
        env = "WAMP_REDIS_QUEUE_CAPACITY",
        value_parser = standalone::config::parse_queue_capacity
    )]
    redis_queue_capacity: Option<usize>,
    /// How often this node sends its heartbeat to the cluster: seconds (1, 0.5) or
    /// milliseconds (500ms), at least 10ms [default: 1].
    #[arg(
        long,
        value_name = "DURATION",
        env = "WAMP_REDIS_HEARTBEAT",
        value_parser = standalone::config::parse_heartbeat
    )]
    redis_heartbeat: Option<std::time::Duration>,
}

/// The Redis backplane when `--redis-url` is given.
fn cluster_backplane(
    args: &ClusterArgs,
) -> Result<Option<std::sync::Arc<dyn wamp_server::Backplane>>, String> {
    let Some(url) = &args.redis_url else {
        return Ok(None);
    };
    #[cfg(feature = "redis")]
    {
        use wamp_server::backplane::redis::{RedisBackplane, RedisConfig};
        let prefix = args.redis_prefix.as_deref().unwrap_or("wamp");
        let mut config = RedisConfig::new(url.as_str())
            .node_name(args.node_name.as_deref().unwrap_or("node"))
            .prefix(prefix);
        if let Some(n) = args.redis_queue_capacity {
            config = config.queue_capacity(n);
        }
        if let Some(every) = args.redis_heartbeat {
            config = config.heartbeat(every);
        }
        let backplane = RedisBackplane::new(config)
            .map_err(|e| format!("--redis-url {url}: {e} (expected redis://HOST:PORT/)"))?;
        info!(node = backplane.node_id(), redis = %url, prefix = %prefix, "cluster mode");
        Ok(Some(backplane))
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = (url, &args.node_name, &args.redis_prefix);
        Err(
            "--redis-url needs cluster mode, which this build does not have: rebuild with \
             `cargo build --release -p wamp-server --features redis`"
                .to_string(),
        )
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (colour on a terminal).
    Text,
    /// One JSON object a line.
    Json,
}

/// The WAMP endpoint. Its upgrades are taken before the axum app (the way `serve` takes
/// them: no HTTP connection or upgrade task beside the session); the app serves the pages,
/// and `/ws` too for a request on a kept-alive connection or a plain GET.
const WS_PATH: &str = "/ws";

/// Installs the log subscriber: stderr (colour only on a terminal; stdout carries the
/// "listening" line), `format`, filtered by `RUST_LOG` when it is set and valid, else at INFO.
///
/// Without `RUST_LOG` the filter is a plain level, not an `EnvFilter` saying `info`: the same
/// lines, but an `EnvFilter` also looks every span up in a locked map on each enter and exit,
/// and every session's span is entered on each poll of its tasks.
fn init_logs(format: LogFormat) {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::EnvFilter;
    match std::env::var_os(EnvFilter::DEFAULT_ENV)
        .and_then(|_| EnvFilter::try_from_default_env().ok())
    {
        Some(filter) => init_filtered(filter, format),
        None => init_filtered(LevelFilter::INFO, format),
    }
}

/// [`init_logs`] with one filter.
fn init_filtered<F>(filter: F, format: LogFormat)
where
    F: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with(layer.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
            .init(),
        LogFormat::Json => logs.with(layer.json()).init(),
    }
}

/// File descriptors kept free beside the connections (listener, stdio, logs, libraries).
const RESERVED_FDS: u64 = 64;

/// Raises the soft open-file limit to the hard limit (a server needs one descriptor per
/// connection; the default soft limit is often 1,024) and returns the soft limit then in
/// force, `None` when unlimited or unknown. rustix gives a safe `setrlimit` (this crate
/// forbids `unsafe`, and libc's would need it).
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, soft = ?limit.current, hard = ?limit.maximum,
                "cannot raise the open-file limit to its hard limit; keeping the soft limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

/// Keeps the session limit (`requested`, else the default) and the pending-handshake bound
/// below the open-file limit.
fn fit_limits(
    builder: wamp_server::RouterBuilder,
    requested: Option<usize>,
) -> wamp_server::RouterBuilder {
    let defaults = wamp_server::Options::default();
    let wanted = requested.unwrap_or(defaults.max_connections);
    let Some(open_files) = raise_open_file_limit() else {
        info!(
            max_connections = wanted,
            max_pending_handshakes = defaults.max_pending_handshakes,
            "open-file limit unknown or unlimited; using the default connection limits"
        );
        return builder.max_connections(wanted);
    };
    let budget = usize::try_from(open_files.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    let pending = defaults.max_pending_handshakes.min((budget / 10).max(1));
    let room = budget.saturating_sub(pending).max(1);
    let sessions = wanted.min(room);
    if requested.is_some_and(|n| n > room) {
        tracing::warn!(
            requested = wanted,
            max_connections = sessions,
            open_file_limit = open_files,
            "--max-connections is above what the open-file limit allows; raise the hard \
             limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) to hold more sessions"
        );
    }
    info!(
        open_file_limit = open_files,
        max_connections = sessions,
        max_pending_handshakes = pending,
        reserved = RESERVED_FDS,
        "session limit kept below the open-file limit (sessions + pending handshakes + reserved)"
    );
    builder
        .max_connections(sessions)
        .max_pending_handshakes(pending)
}

/// A count from the command line as a `usize` (saturating on 32-bit targets).
fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Ctrl-C, or SIGTERM (as `kill` and service managers send it). The handlers are installed
/// when this is called, not when the future is first polled, so a signal that comes right
/// after the listening line still stops the server gracefully.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match handlers {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = int.recv() => info!("Ctrl-C: shutting down"),
                    _ = term.recv() => info!("SIGTERM: shutting down"),
                },
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    info!("Ctrl-C: shutting down");
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        info!("Ctrl-C: shutting down");
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_logs(args.log_format);
    if let Some(config) = &args.config {
        #[allow(unused_mut)] // the TLS flags exist only with the `tls` feature
        let mut overrides = standalone::config::Overrides {
            bind: args.bind,
            port: args.port,
            allowed_origins: (!args.allow_origins.is_empty()).then(|| args.allow_origins.clone()),
            metrics_bind: args.metrics_bind,
            max_connections: args.max_connections.map(saturating_usize),
            redis_url: args.cluster.redis_url.clone(),
            node_name: args.cluster.node_name.clone(),
            redis_prefix: args.cluster.redis_prefix.clone(),
            redis_queue_capacity: args.cluster.redis_queue_capacity,
            redis_heartbeat: args.cluster.redis_heartbeat,
            ..Default::default()
        };
        overrides.tls_cert = args.tls_cert.clone();
        overrides.tls_key = args.tls_key.clone();
        raise_open_file_limit();
        return standalone::run(config, overrides, args.check, stop_signal()).await;
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match wamp_server::tls::TlsConfig::from_pem_files(cert, key) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let secure = tls.is_some();
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
    // Browsers may connect from the page's own origin (http:// or https://, by the
    // same-origin rule) and from the allowed ones. (The router warns about '*' itself.)
    if !args.allow_origins.is_empty() {
        info!(origins = ?args.allow_origins, "browser origins allowed beside the page's own");
    }
    let mut builder = fit_limits(
        wamp_server::tutorial::builder(),
        args.max_connections.map(saturating_usize),
    );
    match cluster_backplane(&args.cluster) {
        Ok(Some(backplane)) => builder = builder.backplane(backplane),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let router = builder.allowed_origins(args.allow_origins).build();
    let app = wamp_server::tutorial::app(router.clone());
    let host = if local.ip().is_loopback() {
        "localhost".to_string()
    } else {
        local.ip().to_string()
    };
    let (http, ws) = if secure {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    // Before the listening line: whoever reads it may signal us at once.
    let stop = stop_signal();
    println!(
        "wamp-server listening: page {http}://{host}:{port}/  WAMP {ws}://{host}:{port}/ws",
        port = local.port()
    );
    info!(%local, tls = secure, "listening");
    if let Some(addr) = args.metrics_bind {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on {addr} for metrics: {e} (try another --metrics-bind)"
                );
                return std::process::ExitCode::FAILURE;
            }
        };
        let at = listener
            .local_addr()
            .expect("a bound listener has an address");
        println!("wamp-server metrics: http://{at}/metrics  health: /healthz /readyz");
        // Runs until the process exits, so /readyz answers 503 during the shutdown.
        tokio::spawn(wamp_server::metrics::serve(
            router.clone(),
            listener,
            std::future::pending(),
        ));
    }
    let served = match tls {
        Some(tls) => wamp_server::serve_app_tls_at(listener, router, app, tls, WS_PATH, stop).await,
        None => wamp_server::serve_app_at(listener, router, app, WS_PATH, stop).await,
    };
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
