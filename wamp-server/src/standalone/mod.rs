//! The standalone router (`wamp-server --config router.toml`): composes a router from the
//! configuration file with the library's public API, serves it, and runs the HTTP API and the
//! RPC proxy beside it.

pub mod api;
pub mod config;
pub mod http_pool;
pub mod proxy;

use std::future::{Future, IntoFuture};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::routing::get;
use tokio::sync::watch;
use tracing::info;
use wamp_server::Router;

use config::{Overrides, Plan};

/// The exit status of a configuration that does not validate.
const BAD_CONFIG: u8 = 2;

/// Builds the router of a plan: the file's settings plus the RPC proxies and the hooks the
/// API's topic list needs.
fn build(plan: Plan, topics: Arc<api::TopicSet>) -> Router {
    let mut builder = plan.builder;
    // The backend's answer becomes one WAMP message: the same size limit applies.
    let max_body = plan.max_message_size;
    let mut pools = proxy::Pools::default();
    for p in &plan.proxies {
        let backend = Arc::new(proxy::Backend::new(p, pools.get(p), max_body));
        let handler = move |ctx, args| {
            let backend = backend.clone();
            async move { backend.call(ctx, args).await }
        };
        builder = if p.prefix {
            builder.procedure_prefix(p.uri.clone(), handler)
        } else {
            builder.procedure(p.uri.clone(), handler)
        };
    }
    if let Some(cluster) = plan.cluster {
        info!(node = %cluster.node_id, prefix = %cluster.prefix, "cluster mode");
        builder = builder.backplane(cluster.backplane);
    }
    let (added, removed) = (topics.clone(), topics);
    builder
        .on_subscribe(move |_, topic| added.add(topic))
        .on_unsubscribe(move |_, topic| removed.remove(topic))
        .build()
}

/// Validates the file and, unless `check_only`, runs the router until `stop` completes.
pub async fn run(
    path: &Path,
    overrides: Overrides,
    check_only: bool,
    stop: impl Future<Output = ()>,
) -> ExitCode {
    let plan = match config::load(path, &overrides, |name| std::env::var(name).ok()) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    if check_only {
        // Built without its backplane, which would start connecting to Redis.
        let plan = Plan {
            cluster: None,
            ..plan
        };
        drop(build(plan, Arc::new(api::TopicSet::default())));
        println!("{}: the configuration is valid", path.display());
        return ExitCode::SUCCESS;
    }
    // Poll the stop signal once now, so its handlers are installed before the listening line
    // tells anyone that the router runs (a SIGTERM right after it must stop us gracefully).
    tokio::pin!(stop);
    let stopped_early = futures::poll!(stop.as_mut()).is_ready();
    let listener = match tokio::net::TcpListener::bind(plan.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on {}: {e} (is another server using the port? set [server] port, --port or WAMP_PORT)",
                plan.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .expect("a bound listener has an address");
    let api_listener = match &plan.api {
        None => None,
        Some(a) => match tokio::net::TcpListener::bind(a.bind).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!(
                    "error: cannot listen for the API on {}: {e} (set [api] bind)",
                    a.bind
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let (path_ws, page, api_plan) = (plan.path.clone(), plan.page, plan.api.clone());
    let metrics_bind = plan.metrics_bind;
    let tls = plan.tls.clone();
    let secure = tls.is_some();
    let topics = Arc::new(api::TopicSet::default());
    let router = build(plan, topics.clone());

    let app = if page {
        wamp_server::tutorial::app(router.clone())
    } else {
        axum::Router::new()
            .route(
                &path_ws,
                get(
                    |State(r): State<Router>,
                     peer: Option<
                        axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>,
                    >,
                     headers: HeaderMap,
                     ws: WebSocketUpgrade| async move {
                        wamp_server::axum_handler_with_peer(r, peer.map(|p| p.0 .0), headers, ws)
                    },
                ),
            )
            .with_state(router.clone())
    };
    let (http, ws) = if secure {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let mut line = format!("wamp-server listening: WAMP {ws}://{local}{path_ws}");
    if page {
        line.push_str(&format!("  page {http}://{local}/"));
    }

    let shutting_down = Arc::new(AtomicBool::new(false));
    let (stop_api, mut api_stopped) = watch::channel(false);
    let api_task = match (api_listener, api_plan) {
        (Some(l), Some(a)) => {
            let api_local = l.local_addr().expect("a bound listener has an address");
            line.push_str(&format!("  API http://{api_local}/api/"));
            let state = api::ApiState {
                router: router.clone(),
                key: a.key,
                max_body_size: a.max_body_size,
                shutting_down: shutting_down.clone(),
                topics,
            };
            let served = axum::serve(l, api::app(state))
                .with_graceful_shutdown(async move {
                    let _ = api_stopped.wait_for(|stopped| *stopped).await;
                })
                .into_future();
            Some(tokio::spawn(served))
        }
        _ => None,
    };
    if let Some(addr) = metrics_bind {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on {addr} for metrics: {e} (set [metrics] bind, --metrics-bind or WAMP_METRICS_BIND)"
                );
                return ExitCode::FAILURE;
            }
        };
        let at = listener
            .local_addr()
            .expect("a bound listener has an address");
        line.push_str(&format!("  metrics http://{at}/metrics"));
        // Runs until the process exits, so /readyz answers 503 during the shutdown.
        tokio::spawn(wamp_server::metrics::serve(
            router.clone(),
            listener,
            std::future::pending(),
        ));
    }
    println!("{line}");
    info!(%local, tls = secure, "listening");

    // On the stop signal the API answers 503 while the sessions drain (serve_app_at shuts the
    // router down and waits for them), then it stops too. WebSocket upgrades to the endpoint
    // are taken before axum (less memory and CPU per session); axum has the rest.
    let flag = shutting_down.clone();
    let shutdown = async move {
        if !stopped_early {
            stop.as_mut().await;
        }
        flag.store(true, Ordering::Release);
    };
    let served = match tls {
        Some(tls) => {
            wamp_server::serve_app_tls_at(listener, router, app, tls, &path_ws, shutdown).await
        }
        None => wamp_server::serve_app_at(listener, router, app, &path_ws, shutdown).await,
    };
    let _ = stop_api.send(true);
    if let Some(task) = api_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
