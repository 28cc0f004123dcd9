//! A metrics listener: `/metrics` (OpenMetrics text, read from [`crate::Router::stats`] at
//! scrape time by a prometheus-client collector), `/healthz` and `/readyz` (cargo feature
//! `metrics`). The binary serves it with `--metrics-bind`.
//!
//! ```no_run
//! # async fn run(router: wamp_server::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
//! tokio::spawn(wamp_server::metrics::serve(router, listener, std::future::pending()));
//! # Ok(()) }
//! ```
//!
//! The metric names and what they mean are in the README ("Metrics and health").

use std::future::Future;
use std::sync::Arc;

use crate::stats::{CloseReason, RouterStats};
use crate::Router;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

/// The content type of OpenMetrics text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `/metrics`, `/healthz` and `/readyz` for `router` on `listener` until `shutdown`
/// completes. `/readyz` answers 503 once the router's shutdown started.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatsCollector(router.clone())));
    let state = Arc::new((router, registry));
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

type AppState = State<Arc<(Router, Registry)>>;

async fn metrics(State(state): AppState) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.1) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], body),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "could not encode the metrics\n".to_string(),
        ),
    }
}

async fn ready(State(state): AppState) -> impl IntoResponse {
    if state.0.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else if state.0.backplane_status().is_some_and(|b| !b.connected) {
        (StatusCode::SERVICE_UNAVAILABLE, "backplane not connected\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

/// Reads the router's counters at each scrape.
#[derive(Debug)]
struct StatsCollector(Router);

/// One family of counters with one label.
fn counter_family<L: Copy>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(L, u64)],
    label_of: impl Fn(L) -> String,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (key, n) in values {
        let labels = [(label, label_of(*key))];
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(n, None)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    n: u64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&n, None)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    n: usize,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&(n as u64))
}

impl Collector for StatsCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s: RouterStats = self.0.stats();
        let e = &mut e;
        e.encode_descriptor(
            "wamp_build",
            "The server's version.",
            None,
            MetricType::Info,
        )?
        .encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        gauge(e, "wamp_sessions", "Sessions open now.", s.sessions)?;
        counter(
            e,
            "wamp_sessions_opened",
            "Sessions opened.",
            None,
            s.sessions_opened,
        )?;
        counter_family(
            e,
            "wamp_sessions_closed",
            "Sessions ended, by reason.",
            "reason",
            &s.sessions_closed,
            |r| r.label().to_string(),
        )?;
        counter(
            e,
            "wamp_slow_consumers",
            "Sessions closed because they did not read fast enough.",
            None,
            s.closed(CloseReason::SlowConsumer),
        )?;
        counter_family(
            e,
            "wamp_connections_rejected",
            "Connections refused before they became sessions, by reason.",
            "reason",
            &s.connections_refused,
            |r| r.label().to_string(),
        )?;
        counter_family(
            e,
            "wamp_messages_received",
            "Valid WAMP messages read from clients, by type.",
            "type",
            &s.messages_received,
            str::to_ascii_lowercase,
        )?;
        counter_family(
            e,
            "wamp_messages_sent",
            "WAMP messages queued for clients, by type.",
            "type",
            &s.messages_sent,
            str::to_ascii_lowercase,
        )?;
        counter(
            e,
            "wamp_received",
            "Bytes of text frames read from clients.",
            Some(&Unit::Bytes),
            s.received_bytes,
        )?;
        counter(
            e,
            "wamp_sent",
            "Bytes of text frames queued for clients.",
            Some(&Unit::Bytes),
            s.sent_bytes,
        )?;
        counter_family(
            e,
            "wamp_calls",
            "Calls answered, by outcome (result, or the error URI's class).",
            "outcome",
            &s.calls,
            |o| o.label().to_string(),
        )?;
        // prometheus-client takes the count of each bucket, not the running total, and writes
        // `+Inf` only for an upper bound of f64::MAX (infinity would come out as `inf`).
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = s
            .call_duration
            .buckets
            .iter()
            .map(|&(bound, cumulative)| {
                let n = cumulative - below;
                below = cumulative;
                (if bound.is_infinite() { f64::MAX } else { bound }, n)
            })
            .collect();
        e.encode_descriptor(
            "wamp_call_duration",
            "How long calls to registered procedures took, from the CALL read to the reply queued.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(
            s.call_duration.sum_seconds,
            s.call_duration.count,
            &buckets,
            None,
        )?;
        counter_family(
            e,
            "wamp_auth",
            "WAMP-CRA authentication steps, by result.",
            "result",
            &s.auth,
            |r| r.label().to_string(),
        )?;
        gauge(
            e,
            "wamp_subscriptions",
            "Subscriptions now (one per session and topic).",
            s.subscriptions,
        )?;
        gauge(
            e,
            "wamp_topics",
            "Topics with at least one subscriber now.",
            s.topics,
        )?;
        counter(
            e,
            "wamp_publishes",
            "Publications relayed (clients' and the server's own).",
            None,
            s.publishes,
        )?;
        counter(
            e,
            "wamp_deliveries",
            "Events queued for sessions (the sum of every publication's recipients).",
            None,
            s.deliveries,
        )?;
        gauge(
            e,
            "wamp_outbox_frames_high_water",
            "The most frames any session's outgoing queue held at once.",
            s.outbox_frames_high_water,
        )?;
        gauge(
            e,
            "wamp_outbox_bytes_high_water",
            "The most bytes any session's outgoing queue held at once.",
            s.outbox_bytes_high_water,
        )?;
        if let Some(b) = self.0.backplane_status() {
            let connected = usize::from(b.connected);
            gauge(
                e,
                "wamp_backplane_connected",
                "1 while the backplane (cluster mode) is connected.",
                connected,
            )?;
            gauge(
                e,
                "wamp_backplane_nodes",
                "Other nodes seen alive recently.",
                b.nodes_seen,
            )?;
            gauge(
                e,
                "wamp_backplane_queue_depth",
                "Events waiting to go to other nodes.",
                b.queue_depth,
            )?;
            counter(
                e,
                "wamp_backplane_published",
                "Events sent to other nodes.",
                None,
                b.published,
            )?;
            counter(
                e,
                "wamp_backplane_received",
                "Events received from other nodes.",
                None,
                b.received,
            )?;
            let dropped = [
                ("queue_full", b.dropped_queue_full),
                ("disconnected", b.dropped_disconnected),
                ("malformed", b.dropped_malformed),
                ("echo", b.echoes_dropped),
            ];
            counter_family(
                e,
                "wamp_backplane_dropped",
                "Backplane events dropped, by why.",
                "reason",
                &dropped,
                str::to_string,
            )?;
            counter(
                e,
                "wamp_backplane_sequence_gaps",
                "Events from other nodes known to be missing.",
                None,
                b.sequence_gaps,
            )?;
            counter(
                e,
                "wamp_backplane_reconnects",
                "Backplane connections re-established after a failure.",
                None,
                b.reconnects,
            )?;
        }
        Ok(())
    }
}
