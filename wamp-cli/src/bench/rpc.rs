//! `bench rpc`: `--connections` sessions × `--in-flight` callers, each calling the procedure
//! again as soon as its previous call answers (or, with `--rate`, at its share of that many
//! calls per second), for `--duration`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;
use wamp_client::{Client, Error, ReconnectPolicy};

use super::{
    close_all, connect_all, grouped, histogram, mark, merge, nanos_since, per_second, plural,
    print_report, rate, record, Latency, Pacer, Progress,
};
use crate::cli::RpcBenchArgs;
use crate::connect::Connection;
use crate::exit::Failure;

/// What `bench rpc --json` prints.
#[derive(Debug, Serialize)]
pub struct RpcReport {
    /// Always `"rpc"`.
    pub mode: &'static str,
    /// The server.
    pub url: String,
    /// The procedure called, as given.
    pub procedure: String,
    /// Sessions.
    pub connections: u32,
    /// Calls in flight per session.
    pub in_flight: u32,
    /// Bytes in the string argument of each call.
    pub payload_bytes: usize,
    /// The requested calls per second in all, if paced (`--rate`).
    pub rate: Option<u32>,
    /// The requested duration, in seconds.
    pub duration_s: f64,
    /// From the first call to the last answer, in seconds.
    pub elapsed_s: f64,
    /// Calls answered with CALLRESULT.
    pub calls: u64,
    /// Calls that failed (CALLERROR, timeout, connection lost).
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// `calls / elapsed_s`.
    pub calls_per_s: f64,
    /// Round-trip latency of the answered calls, in microseconds.
    pub latency_us: Latency,
}

/// What every caller shares.
struct Shared {
    procedure: String,
    payload: Value,
    deadline: Instant,
    /// With `--rate`: the time between two calls of one caller.
    pace: Option<Duration>,
    ok: Arc<AtomicU64>,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// Runs `bench rpc`.
pub async fn run(conn: &Connection, args: RpcBenchArgs) -> Result<(), Failure> {
    let common = &args.common;
    let clients = connect_all(
        conn,
        args.connections as usize,
        conn.options(ReconnectPolicy::never()),
    )
    .await?;
    let payload = Value::String("x".repeat(common.size));
    // One call first: a wrong procedure, a missing permission or a silent server fails here,
    // with its own exit code, instead of producing a benchmark of errors.
    clients[0]
        .call(&args.procedure, vec![payload.clone()])
        .await
        .map_err(|e| Failure::operation(&format!("the first call to {}", args.procedure), e))?;

    let callers_n = args.connections * args.in_flight;
    let pace = (args.rate > 0)
        .then(|| Duration::from_secs_f64(f64::from(callers_n) / f64::from(args.rate)));
    let ok = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(common, ok.clone(), "calls");
    mark(common, "start");
    let start = Instant::now();
    let shared = Arc::new(Shared {
        procedure: args.procedure.clone(),
        payload,
        deadline: start + common.duration,
        pace,
        ok,
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let mut callers = JoinSet::new();
    let mut k = 0u32;
    for client in &clients {
        for _ in 0..args.in_flight {
            // Paced callers start spread over one interval, so that the calls are too.
            let first = start + pace.map_or(Duration::ZERO, |p| p * k / callers_n);
            callers.spawn(caller(client.clone(), shared.clone(), first));
            k += 1;
        }
    }
    let mut latency = histogram();
    while let Some(done) = callers.join_next().await {
        match done {
            Ok(part) => merge(&mut latency, &part),
            Err(e) => tracing::warn!(error = %e, "a caller task failed"),
        }
    }
    let elapsed = start.elapsed();
    mark(common, "stop");
    progress.finish().await;
    close_all(&clients).await;

    let calls = shared.ok.load(Ordering::Relaxed);
    let first_error = shared
        .first_error
        .lock()
        .expect("no caller panics while holding the lock")
        .clone();
    if calls == 0 {
        return Err(Failure::other(format!(
            "no call to {} succeeded during the benchmark: {}",
            args.procedure,
            first_error.as_deref().unwrap_or("no call was made")
        )));
    }
    let report = RpcReport {
        mode: "rpc",
        url: conn.url().to_string(),
        procedure: args.procedure.clone(),
        connections: args.connections,
        in_flight: args.in_flight,
        payload_bytes: common.size,
        rate: (args.rate > 0).then_some(args.rate),
        duration_s: common.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        calls,
        errors: shared.failed.load(Ordering::Relaxed),
        first_error,
        calls_per_s: per_second(calls, elapsed),
        latency_us: Latency::from_nanos(&latency),
    };
    print_report(common, &report, &human(&report))
}

/// One caller: calls, waits for the answer, records the round trip, until the deadline.
/// Paced, it makes its first call at `first` and then one every `pace`.
async fn caller(client: Client, shared: Arc<Shared>, first: Instant) -> Histogram<u64> {
    let mut latency = histogram();
    let mut pacer = shared.pace.map(|pace| Pacer::new(pace, first));
    while Instant::now() < shared.deadline {
        if let Some(pacer) = pacer.as_mut() {
            pacer.wait().await;
            if Instant::now() >= shared.deadline {
                break;
            }
        }
        let sent = Instant::now();
        match client
            .call(&shared.procedure, vec![shared.payload.clone()])
            .await
        {
            Ok(_) => {
                record(&mut latency, nanos_since(sent));
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                let stop = !matches!(e, Error::CallError { .. } | Error::Timeout(_));
                shared
                    .first_error
                    .lock()
                    .expect("no caller panics while holding the lock")
                    .get_or_insert_with(|| e.to_string());
                if stop {
                    // The session is gone: this caller has nothing left to call on.
                    break;
                }
                // Do not spin on a server that answers errors at once.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    latency
}

/// The report for people.
fn human(r: &RpcReport) -> String {
    let errors = match &r.first_error {
        Some(first) => format!("{} failed (first: {first})", grouped(r.errors)),
        None => "0 failed".to_string(),
    };
    let pace = match r.rate {
        Some(rate) => format!(", paced to {} calls/s", grouped(u64::from(rate))),
        None => String::new(),
    };
    format!(
        "rpc bench: {proc} on {url}\n  \
         {conns} x {inflight} in flight{pace}, {size}-byte payload, {secs:.1} s\n  \
         calls       {calls} ok, {errors}\n  \
         throughput  {rate} calls/s\n  \
         latency     {latency}\n",
        proc = r.procedure,
        url = r.url,
        conns = plural(r.connections, "connection"),
        inflight = plural(r.in_flight, "call"),
        size = r.payload_bytes,
        secs = r.elapsed_s,
        calls = grouped(r.calls),
        rate = rate(r.calls_per_s),
        latency = r.latency_us.line(),
    )
}
