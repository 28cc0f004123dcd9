//! `bench connect`: `--concurrency` loops, each opening a session (TCP, WebSocket handshake,
//! WELCOME) and closing it (WebSocket close handshake) again and again, for `--duration`;
//! sessions per second and setup latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinSet;
use wamp_client::{ConnectOptions, ReconnectPolicy};

use super::{
    grouped, histogram, mark, merge, nanos_since, per_second, plural, print_report, rate, record,
    Latency, Progress,
};
use crate::cli::ConnectBenchArgs;
use crate::connect::Connection;
use crate::exit::Failure;

/// What `bench connect --json` prints.
#[derive(Debug, Serialize)]
pub struct ConnectReport {
    /// Always `"connect"`.
    pub mode: &'static str,
    /// The server.
    pub url: String,
    /// Loops running at once.
    pub concurrency: u32,
    /// The requested duration, in seconds.
    pub duration_s: f64,
    /// From the start of the first loop to the end of the last, in seconds.
    pub elapsed_s: f64,
    /// Sessions that reached WELCOME (and were closed again).
    pub sessions: u64,
    /// Connection attempts that failed (refused, HTTP error, no WELCOME in time).
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// `sessions / elapsed_s`: sessions opened and closed per second.
    pub sessions_per_s: f64,
    /// From the start of the connection to WELCOME, in microseconds.
    pub latency_us: Latency,
    /// One whole loop (setup and close), in microseconds.
    pub cycle_us: Latency,
}

/// What every loop shares.
struct Shared {
    options: ConnectOptions,
    deadline: Instant,
    ok: Arc<AtomicU64>,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// Runs `bench connect`.
pub async fn run(conn: &Connection, args: ConnectBenchArgs) -> Result<(), Failure> {
    let common = &args.common;
    let options = conn.options(ReconnectPolicy::never());
    // One session first: a wrong URL or a server that refuses fails here, with its own exit
    // code, instead of producing a benchmark of errors.
    conn.connect_with(options.clone()).await?.close().await;

    let ok = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(common, ok.clone(), "sessions");
    mark(common, "start");
    let start = Instant::now();
    let shared = Arc::new(Shared {
        options,
        deadline: start + common.duration,
        ok,
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let mut loops = JoinSet::new();
    for _ in 0..args.concurrency {
        loops.spawn(cycle(conn.url().to_string(), shared.clone()));
    }
    let (mut latency, mut cycles) = (histogram(), histogram());
    while let Some(done) = loops.join_next().await {
        match done {
            Ok((setup, whole)) => {
                merge(&mut latency, &setup);
                merge(&mut cycles, &whole);
            }
            Err(e) => tracing::warn!(error = %e, "a connect loop failed"),
        }
    }
    let elapsed = start.elapsed();
    mark(common, "stop");
    progress.finish().await;

    let sessions = shared.ok.load(Ordering::Relaxed);
    let first_error = shared
        .first_error
        .lock()
        .expect("no loop panics while holding the lock")
        .clone();
    if sessions == 0 {
        return Err(Failure::other(format!(
            "no session to {} was opened during the benchmark: {}",
            conn.url(),
            first_error.as_deref().unwrap_or("no attempt was made")
        )));
    }
    let report = ConnectReport {
        mode: "connect",
        url: conn.url().to_string(),
        concurrency: args.concurrency,
        duration_s: common.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        sessions,
        errors: shared.failed.load(Ordering::Relaxed),
        first_error,
        sessions_per_s: per_second(sessions, elapsed),
        latency_us: Latency::from_nanos(&latency),
        cycle_us: Latency::from_nanos(&cycles),
    };
    print_report(common, &report, &human(&report))
}

/// One loop: connect, close, until the deadline. Returns the setup and whole-loop latencies.
async fn cycle(url: String, shared: Arc<Shared>) -> (Histogram<u64>, Histogram<u64>) {
    let (mut setup, mut whole) = (histogram(), histogram());
    while Instant::now() < shared.deadline {
        let began = Instant::now();
        match shared.options.clone().connect(&url).await {
            Ok(client) => {
                record(&mut setup, nanos_since(began));
                client.close().await;
                record(&mut whole, nanos_since(began));
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                shared
                    .first_error
                    .lock()
                    .expect("no loop panics while holding the lock")
                    .get_or_insert_with(|| e.to_string());
                // Do not spin on a server that refuses at once.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    (setup, whole)
}

/// The report for people.
fn human(r: &ConnectReport) -> String {
    let errors = match &r.first_error {
        Some(first) => format!("{} failed (first: {first})", grouped(r.errors)),
        None => "0 failed".to_string(),
    };
    format!(
        "connect bench: {url}\n  \
         {loops} at once, {secs:.1} s\n  \
         sessions    {sessions} opened and closed, {errors}\n  \
         throughput  {rate} sessions/s\n  \
         setup       {latency}  (connect -> WELCOME)\n  \
         whole loop  {cycle}  (connect -> closed)\n",
        url = r.url,
        loops = plural(r.concurrency, "loop"),
        secs = r.elapsed_s,
        sessions = grouped(r.sessions),
        rate = rate(r.sessions_per_s),
        latency = r.latency_us.line(),
        cycle = r.cycle_us.line(),
    )
}
