//! `bench`: the WAMP v1 load generator. Three modes, each in its own file; this file holds
//! what they share: connecting many sessions, the progress bar, latency histograms, the
//! measuring-window marks and the report's number formatting.
//!
//! The modes use only CALL, SUBSCRIBE and PUBLISH (with the prefixes of `--prefix`), so they
//! run against any WAMP v1 server:
//!
//! - [`rpc`]: `--connections` sessions, each with `--in-flight` calls outstanding at all
//!   times (or paced to `--rate` calls/s in all), for `--duration`; calls/s and round-trip
//!   latency.
//! - [`fanout`]: `--publishers` sessions publish to one topic that `--subscribers` sessions
//!   subscribe to; deliveries/s and publish-to-delivery latency, measured with a timestamp in
//!   each event.
//! - [`connect`]: `--concurrency` loops open a session (up to WELCOME) and close it, again and
//!   again; sessions/s and setup latency.
//!
//! With `--mark`, `MEASURE start` and `MEASURE stop` lines on stderr bound the measuring
//! window, so that a tool sampling the server (`scripts/bench.py` reads its CPU time from
//! `/proc`) leaves the setup out.
//!
//! Latencies are recorded in nanoseconds in [`hdrhistogram`](https://docs.rs/hdrhistogram) histograms (3 significant
//! digits) and reported in microseconds.

pub mod connect;
pub mod fanout;
pub mod rpc;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::oneshot;
use wamp_client::{Client, ConnectOptions};

use crate::cli::{BenchArgs, BenchCommon, BenchMode};
use crate::connect::Connection;
use crate::exit::Failure;

/// How many sessions are being set up at once.
const CONNECT_CONCURRENCY: usize = 32;

/// Runs `bench rpc`, `bench fanout` or `bench connect`.
pub async fn run(conn: &Connection, args: BenchArgs) -> Result<(), Failure> {
    match args.mode {
        BenchMode::Rpc(args) => rpc::run(conn, args).await,
        BenchMode::Fanout(args) => fanout::run(conn, args).await,
        BenchMode::Connect(args) => connect::run(conn, args).await,
    }
}

/// How far a paced sender may fall behind its schedule and still catch up (by sending at
/// once): the timer wakes up to a millisecond late, so paces below that would otherwise never
/// be reached. Further behind (the window or a slow answer held it), it starts afresh rather
/// than burst.
const CATCH_UP: Duration = Duration::from_millis(10);

/// Paces a sender at one send every `pace` on average.
struct Pacer {
    pace: Duration,
    next: Instant,
}

impl Pacer {
    /// The first send at `first`.
    fn new(pace: Duration, first: Instant) -> Self {
        Pacer { pace, next: first }
    }

    /// Waits for the next send's slot (returns at once when a little behind).
    async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next.into()).await;
        } else if now - self.next > CATCH_UP.max(self.pace) {
            self.next = now;
        }
        self.next += self.pace;
    }
}

/// With `--mark`, prints `MEASURE <edge>` on stderr (and flushes it) at once.
fn mark(common: &BenchCommon, edge: &str) {
    if common.mark {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "MEASURE {edge}");
        let _ = err.flush();
    }
}

/// Opens `n` sessions with `options`, a few at a time.
async fn connect_all(
    conn: &Connection,
    n: usize,
    options: ConnectOptions,
) -> Result<Vec<Client>, Failure> {
    futures::stream::iter((0..n).map(|_| conn.connect_with(options.clone())))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Closes every session (each waits briefly for the server's closing handshake).
async fn close_all(clients: &[Client]) {
    futures::future::join_all(clients.iter().map(Client::close)).await;
}

/// An empty latency histogram (nanoseconds, 3 significant digits, growing as needed).
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// Adds `part` into `total`.
fn merge(total: &mut Histogram<u64>, part: &Histogram<u64>) {
    if let Err(e) = total.add(part) {
        tracing::warn!(error = %e, "could not merge a latency histogram");
    }
}

/// Records a latency in nanoseconds (the histogram grows to hold it; `saturating_record`
/// would clamp it to the histogram's current range instead).
fn record(h: &mut Histogram<u64>, nanos: u64) {
    if let Err(e) = h.record(nanos.max(1)) {
        tracing::debug!(error = %e, nanos, "latency not recorded");
    }
}

/// `n thing` or `n things`.
fn plural(n: u32, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// Nanoseconds since `since`, for a histogram.
fn nanos_since(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Latency percentiles in microseconds, as reported (`latency_us` in `--json`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// How many latencies were recorded.
    pub samples: u64,
    /// Smallest.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// Reads the percentiles of a nanosecond histogram.
    pub fn from_nanos(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Latency {
                samples: 0,
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                max: 0.0,
            };
        }
        Latency {
            samples: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }

    /// One line: `p50 412 µs   p90 620 µs   p99 1.10 ms   p99.9 2.30 ms   max 8.11 ms`.
    fn line(&self) -> String {
        format!(
            "p50 {}   p90 {}   p99 {}   p99.9 {}   max {}",
            micros(self.p50),
            micros(self.p90),
            micros(self.p99),
            micros(self.p99_9),
            micros(self.max)
        )
    }
}

/// A latency for people: `412 µs`, `1.10 ms`, `2.35 s`.
fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// A count with thousands separators: `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate for people: `123,456`.
fn rate(per_s: f64) -> String {
    grouped(per_s.round().max(0.0) as u64)
}

/// `count / elapsed`, 0 for no time.
fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Prints a report: JSON with `--json`, else the human lines.
fn print_report(common: &BenchCommon, report: &impl Serialize, human: &str) -> Result<(), Failure> {
    let text = if common.json {
        serde_json::to_string_pretty(report)
            .map_err(|e| Failure::other(format!("cannot print the report: {e}")))?
    } else {
        human.trim_end().to_string()
    };
    crate::output::line(&text);
    Ok(())
}

/// The progress bar: elapsed time against the duration, and the running count and rate.
/// Hidden with `--json` or when stderr is not a terminal.
struct Progress {
    stop: oneshot::Sender<()>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(common: &BenchCommon, counter: Arc<AtomicU64>, unit: &'static str) -> Self {
        let duration = common.duration;
        let bar = if common.json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(duration.as_millis().max(1) as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed:>4} [{bar:30}] {percent:>3}%  {msg}",
                )
                .expect("the progress template is valid")
                .progress_chars("=> "),
            );
            bar
        };
        let (stop, mut stopped) = oneshot::channel();
        let ticker = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let (mut last_count, mut last_at) = (0u64, start);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break,
                }
                let now = Instant::now();
                let count = counter.load(Ordering::Relaxed);
                let recent = per_second(count - last_count.min(count), now - last_at);
                (last_count, last_at) = (count, now);
                bar.set_position((now - start).as_millis().min(duration.as_millis()) as u64);
                bar.set_message(format!("{} {unit}  {}/s", grouped(count), rate(recent)));
            }
            bar.finish_and_clear();
        });
        Progress { stop, ticker }
    }

    async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.ticker.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(micros(412.4), "412 µs");
        assert_eq!(micros(1104.0), "1.10 ms");
        assert_eq!(micros(2_345_000.0), "2.35 s");
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }

    #[test]
    fn percentiles_are_ordered() {
        let mut h = histogram();
        for ns in 1..=100_000u64 {
            h.record(ns * 37 % 1_000_003).unwrap();
        }
        let l = Latency::from_nanos(&h);
        assert_eq!(l.samples, 100_000);
        assert!(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99);
        assert!(l.p99 <= l.p99_9 && l.p99_9 <= l.max);
        assert_eq!(Latency::from_nanos(&histogram()).samples, 0);
    }
}
