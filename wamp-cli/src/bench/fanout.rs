//! `bench fanout`: `--publishers` sessions publish to one topic that `--subscribers` sessions
//! subscribe to; every event carries its publish time, so each delivery gives a
//! publish-to-delivery latency.
//!
//! Flow control: WAMP v1 has no acknowledgement for PUBLISH, and a publisher that outruns the
//! server's fan-out makes the server close subscribers as slow consumers. So a publisher
//! keeps at most `--window` events that some subscriber has not received yet (each
//! subscriber records the highest sequence number it has seen from each publisher), and
//! `--rate` can pace it further. Before measuring, probe events are published until every
//! subscriber has received one: SUBSCRIBE has no acknowledgement either, and a topic that
//! never delivers (wrong prefix, no permission) fails here with a clear message.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use wamp_client::{Client, ConnectOptions, ReconnectPolicy, Subscription};

use super::{
    close_all, connect_all, grouped, histogram, mark, merge, per_second, plural, print_report,
    rate, record, Latency, Pacer, Progress,
};
use crate::args::Human;
use crate::cli::FanoutBenchArgs;
use crate::connect::Connection;
use crate::exit::Failure;

/// The key that marks this run's events (other publishers may use the topic too).
const RUN_KEY: &str = "wamp_cli_bench";
/// How many events a subscriber's client buffers before dropping.
const BUFFER: usize = 1 << 16;
/// How long to wait, after the publishers stop, for events still on their way.
const DRAIN_IDLE: Duration = Duration::from_secs(3);
/// The longest drain, however slowly events still trickle in.
const DRAIN_MAX: Duration = Duration::from_secs(10);

/// What `bench fanout --json` prints.
#[derive(Debug, Serialize)]
pub struct FanoutReport {
    /// Always `"fanout"`.
    pub mode: &'static str,
    /// The server.
    pub url: String,
    /// Where the subscribers are, round-robin (`--subscriber-url`; empty: on `url`).
    pub subscriber_urls: Vec<String>,
    /// The topic's full URI.
    pub topic: String,
    /// Subscriber sessions.
    pub subscribers: u32,
    /// Publisher sessions.
    pub publishers: u32,
    /// The size of one event's JSON, in bytes (about: the numbers in it vary in length).
    pub payload_bytes: usize,
    /// Events a publisher may have out before every subscriber has them.
    pub window: u32,
    /// Events per second per publisher, if paced.
    pub rate: Option<u32>,
    /// The requested duration, in seconds.
    pub duration_s: f64,
    /// From the first publish to the last delivery, in seconds.
    pub elapsed_s: f64,
    /// Events published.
    pub published: u64,
    /// Publishes that failed.
    pub publish_errors: u64,
    /// Events received, all subscribers together.
    pub delivered: u64,
    /// `published × subscribers`.
    pub expected: u64,
    /// `expected − delivered` (events the server or a client dropped).
    pub lost: u64,
    /// Subscriber sessions that were closed during the run (e.g. as slow consumers).
    pub subscribers_lost: u64,
    /// `published / publish time`.
    pub publishes_per_s: f64,
    /// `delivered / elapsed_s`.
    pub deliveries_per_s: f64,
    /// Publish-to-delivery latency, in microseconds.
    pub latency_us: Latency,
}

/// What publishers and subscribers share.
struct Shared {
    run_id: String,
    /// The clock of the `t` field in events.
    epoch: Instant,
    publishers: usize,
    /// `last_seen[s * publishers + p]`: the highest sequence number subscriber `s` got from
    /// publisher `p`.
    last_seen: Vec<AtomicU64>,
    /// Wakes publisher `p` when a subscriber gets one of its events.
    wake: Vec<Notify>,
    /// Subscriber `s` received a probe event.
    probed: Vec<AtomicBool>,
    /// Events received, all subscribers together.
    delivered: Arc<AtomicU64>,
    /// When the last event was received, in nanoseconds since `epoch`.
    last_delivery: AtomicU64,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The sequence number every subscriber has reached for publisher `p`.
    fn slowest(&self, p: usize) -> u64 {
        self.last_seen
            .iter()
            .skip(p)
            .step_by(self.publishers)
            .map(|seen| seen.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }
}

/// Runs `bench fanout`.
pub async fn run(conn: &Connection, args: FanoutBenchArgs) -> Result<(), Failure> {
    let common = &args.common;
    let topic = conn.subscription_topic(&args.topic)?;
    let (n_subs, n_pubs) = (args.subscribers as usize, args.publishers as usize);
    let sub_options = conn
        .options(ReconnectPolicy::never())
        .subscription_capacity(BUFFER);
    let subscribers = if args.subscriber_urls.is_empty() {
        connect_all(conn, n_subs, sub_options).await?
    } else {
        connect_spread(conn, &args.subscriber_urls, n_subs, sub_options).await?
    };
    let publishers = connect_all(conn, n_pubs, conn.options(ReconnectPolicy::never())).await?;

    let shared = Arc::new(Shared {
        run_id: wamp_proto::ids::new_id(),
        epoch: Instant::now(),
        publishers: n_pubs,
        last_seen: (0..n_subs * n_pubs).map(|_| AtomicU64::new(0)).collect(),
        wake: (0..n_pubs).map(|_| Notify::new()).collect(),
        probed: (0..n_subs).map(|_| AtomicBool::new(false)).collect(),
        delivered: Arc::new(AtomicU64::new(0)),
        last_delivery: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let mut readers = JoinSet::new();
    for (s, client) in subscribers.iter().enumerate() {
        let subscription = client
            .subscribe(&topic)
            .await
            .map_err(|e| Failure::operation(&format!("subscribing to {topic}"), e))?;
        readers.spawn(subscriber(s, subscription, shared.clone(), stopped.clone()));
    }
    let result = async {
        warm_up(&publishers[0], &topic, &shared, conn.connect_timeout()).await?;
        measure(&args, &topic, &publishers, &shared).await
    }
    .await;

    let _ = stop.send(true);
    let mut latency = histogram();
    let mut subscribers_lost = 0;
    while let Some(done) = readers.join_next().await {
        match done {
            Ok((part, lost)) => {
                merge(&mut latency, &part);
                subscribers_lost += u64::from(lost);
            }
            Err(e) => tracing::warn!(error = %e, "a subscriber task failed"),
        }
    }
    close_all(&publishers).await;
    close_all(&subscribers).await;
    let measured = result?;

    let delivered = shared.delivered.load(Ordering::Relaxed);
    if delivered == 0 {
        return Err(Failure::other(format!(
            "no event reached a subscriber of {topic} during the benchmark"
        )));
    }
    let elapsed = Duration::from_nanos(
        shared
            .last_delivery
            .load(Ordering::Relaxed)
            .saturating_sub(measured.start_ns),
    );
    let expected = measured.published * n_subs as u64;
    let report = FanoutReport {
        mode: "fanout",
        url: conn.url().to_string(),
        subscriber_urls: args.subscriber_urls.clone(),
        topic,
        subscribers: args.subscribers,
        publishers: args.publishers,
        payload_bytes: measured.event_bytes,
        window: args.window,
        rate: (args.rate > 0).then_some(args.rate),
        duration_s: common.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        published: measured.published,
        publish_errors: measured.errors,
        delivered,
        expected,
        lost: expected.saturating_sub(delivered),
        subscribers_lost,
        publishes_per_s: per_second(measured.published, measured.publish_time),
        deliveries_per_s: per_second(delivered, elapsed),
        latency_us: Latency::from_nanos(&latency),
    };
    print_report(common, &report, &human(&report))
}

/// Opens `n` sessions spread round-robin over `urls` (session `i` on `urls[i % len]`), a
/// few at a time.
async fn connect_spread(
    conn: &Connection,
    urls: &[String],
    n: usize,
    options: ConnectOptions,
) -> Result<Vec<Client>, Failure> {
    let conns: Vec<Connection> = urls.iter().map(|url| conn.with_url(url)).collect();
    let opening = (0..n).map(|i| {
        let (conn, options) = (&conns[i % conns.len()], options.clone());
        async move { conn.connect_with(options).await }
    });
    futures::stream::iter(opening)
        .buffer_unordered(super::CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Publishes probes until every subscriber has received one, or fails after `limit`.
async fn warm_up(
    client: &Client,
    topic: &str,
    shared: &Shared,
    limit: Duration,
) -> Result<(), Failure> {
    let until = Instant::now() + limit;
    let probe = json!({ RUN_KEY: shared.run_id, "probe": true });
    loop {
        client
            .publish(topic, probe.clone())
            .await
            .map_err(|e| Failure::operation(&format!("publishing to {topic}"), e))?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = shared
            .probed
            .iter()
            .filter(|p| !p.load(Ordering::Relaxed))
            .count();
        if waiting == 0 {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(Failure::other(format!(
                "{waiting} of {} subscribers of {topic} received no event within {}: check \
                 the topic (and --prefix), and that these sessions may subscribe and publish \
                 to it",
                shared.probed.len(),
                Human(limit)
            )));
        }
    }
}

/// What the publishing phase measured.
struct Measured {
    /// When publishing started, in nanoseconds since the epoch.
    start_ns: u64,
    /// How long the publishers ran.
    publish_time: Duration,
    published: u64,
    errors: u64,
    event_bytes: usize,
}

/// Runs the publishers for the duration, then waits for the events still on their way.
async fn measure(
    args: &FanoutBenchArgs,
    topic: &str,
    publishers: &[Client],
    shared: &Arc<Shared>,
) -> Result<Measured, Failure> {
    let common = &args.common;
    let (pad, event_bytes) = padding(&shared.run_id, common.size);
    let progress = Progress::start(common, shared.delivered.clone(), "deliveries");
    mark(common, "start");
    let start = Instant::now();
    let start_ns = shared.now();
    let deadline = start + common.duration;
    let pace = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    let mut tasks = JoinSet::new();
    for (p, client) in publishers.iter().enumerate() {
        tasks.spawn(publisher(Publisher {
            index: p,
            client: client.clone(),
            topic: topic.to_string(),
            shared: shared.clone(),
            pad: pad.clone(),
            window: u64::from(args.window),
            pace,
            deadline,
        }));
    }
    let (mut published, mut errors) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        if let Ok((sent, failed)) = done {
            published += sent;
            errors += failed;
        }
    }
    let publish_time = start.elapsed();

    // Drain: until every expected delivery is in, or nothing has come for a while.
    let expected = published * shared.probed.len() as u64;
    let drain_until = Instant::now() + DRAIN_MAX;
    let (mut seen, mut idle_since) = (shared.delivered.load(Ordering::Relaxed), Instant::now());
    while seen < expected && Instant::now() < drain_until && idle_since.elapsed() < DRAIN_IDLE {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = shared.delivered.load(Ordering::Relaxed);
        if now != seen {
            (seen, idle_since) = (now, Instant::now());
        }
    }
    mark(common, "stop");
    progress.finish().await;
    Ok(Measured {
        start_ns,
        publish_time,
        published,
        errors,
        event_bytes,
    })
}

/// The padding that makes an event about `size` bytes of JSON, and that size.
fn padding(run_id: &str, size: usize) -> (Arc<str>, usize) {
    // Typical widths of the numbers: a publisher index, a sequence number in the millions
    // and a timestamp of some seconds in nanoseconds.
    let typical = |pad: &str| {
        event(run_id, 10, 1_000_000, 10_000_000_000, pad)
            .to_string()
            .len()
    };
    let bare = typical("");
    let pad: Arc<str> = "x".repeat(size.saturating_sub(bare)).into();
    let bytes = typical(&pad);
    (pad, bytes)
}

fn event(run_id: &str, publisher: usize, seq: u64, t: u64, pad: &str) -> Value {
    json!({ RUN_KEY: run_id, "p": publisher, "s": seq, "t": t, "pad": pad })
}

/// One publisher's settings.
struct Publisher {
    index: usize,
    client: Client,
    topic: String,
    shared: Arc<Shared>,
    pad: Arc<str>,
    window: u64,
    pace: Option<Duration>,
    deadline: Instant,
}

/// Publishes numbered, timestamped events until the deadline; returns (published, failed).
async fn publisher(me: Publisher) -> (u64, u64) {
    let Publisher {
        index,
        client,
        topic,
        shared,
        pad,
        window,
        pace,
        deadline,
    } = me;
    let (mut seq, mut published, mut failed) = (0u64, 0u64, 0u64);
    let mut pacer = pace.map(|pace| Pacer::new(pace, Instant::now()));
    'publishing: while Instant::now() < deadline {
        // Wait while `window` events are out that some subscriber has not received.
        while seq - shared.slowest(index).min(seq) >= window {
            tokio::select! {
                () = shared.wake[index].notified() => {}
                // Re-check now and then: a notification may have gone to an earlier wait.
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if Instant::now() >= deadline {
                break 'publishing;
            }
        }
        if let Some(pacer) = pacer.as_mut() {
            pacer.wait().await;
        }
        seq += 1;
        let event = event(&shared.run_id, index, seq, shared.now(), &pad);
        match client.publish(&topic, event).await {
            Ok(()) => published += 1,
            Err(e) => {
                failed += 1;
                tracing::warn!(publisher = index, error = %e, "publish failed");
                if e.is_connection_error() {
                    break;
                }
            }
        }
    }
    (published, failed)
}

/// One subscriber: records the latency of every event of this run until told to stop.
/// Returns the latencies and whether its session was lost.
async fn subscriber(
    index: usize,
    mut subscription: Subscription,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> (Histogram<u64>, bool) {
    let mut latency = histogram();
    let lost = loop {
        let event = tokio::select! {
            event = subscription.next() => event,
            _ = stop.changed() => break false,
        };
        let Some(event) = event else {
            break true;
        };
        let Some(fields) = event.payload.as_object() else {
            continue;
        };
        if fields.get(RUN_KEY).and_then(Value::as_str) != Some(shared.run_id.as_str()) {
            continue; // Someone else's event on the same topic.
        }
        if fields.contains_key("probe") {
            shared.probed[index].store(true, Ordering::Relaxed);
            continue;
        }
        let number = |key: &str| fields.get(key).and_then(Value::as_u64);
        let (Some(p), Some(seq), Some(t)) = (number("p"), number("s"), number("t")) else {
            continue;
        };
        let now = shared.now();
        record(&mut latency, now.saturating_sub(t));
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        shared.last_delivery.fetch_max(now, Ordering::Relaxed);
        let p = p as usize;
        if p < shared.publishers {
            shared.last_seen[index * shared.publishers + p].fetch_max(seq, Ordering::Release);
            shared.wake[p].notify_one();
        }
    };
    if subscription.dropped() > 0 {
        tracing::warn!(
            subscriber = index,
            dropped = subscription.dropped(),
            "events dropped by a full client buffer"
        );
    }
    (latency, lost)
}

/// The report for people.
fn human(r: &FanoutReport) -> String {
    let pace = match r.rate {
        Some(rate) => format!(", {rate} events/s each"),
        None => String::new(),
    };
    let lost_subs = if r.subscribers_lost > 0 {
        format!(", {} subscriber sessions lost", r.subscribers_lost)
    } else {
        String::new()
    };
    format!(
        "fanout bench: {topic} on {url}{elsewhere}\n  \
         {subs}, {pubs} (window {window}{pace}), ~{size}-byte events, {secs:.1} s\n  \
         published   {published} events ({pub_rate}/s), {errors} failed\n  \
         delivered   {delivered} of {expected} ({lost} lost{lost_subs})\n  \
         throughput  {rate} deliveries/s\n  \
         latency     {latency}  (publish -> delivery)\n",
        topic = r.topic,
        url = r.url,
        elsewhere = if r.subscriber_urls.is_empty() {
            String::new()
        } else {
            format!(" (subscribers on {})", r.subscriber_urls.join(", "))
        },
        subs = plural(r.subscribers, "subscriber"),
        pubs = plural(r.publishers, "publisher"),
        window = r.window,
        size = r.payload_bytes,
        secs = r.elapsed_s,
        published = grouped(r.published),
        pub_rate = rate(r.publishes_per_s),
        errors = grouped(r.publish_errors),
        delivered = grouped(r.delivered),
        expected = grouped(r.expected),
        lost = grouped(r.lost),
        rate = rate(r.deliveries_per_s),
        latency = r.latency_us.line(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_padded_to_about_the_size() {
        let (pad, bytes) = padding("0123456789abcdef", 256);
        assert!(!pad.is_empty());
        assert_eq!(bytes, 256);
        let (pad, bytes) = padding("0123456789abcdef", 16);
        assert!(pad.is_empty());
        assert!(bytes > 16);
    }

    #[test]
    fn the_slowest_subscriber_sets_the_window() {
        let shared = Shared {
            run_id: String::new(),
            epoch: Instant::now(),
            publishers: 2,
            last_seen: [5, 9, 3, 7].into_iter().map(AtomicU64::new).collect(),
            wake: vec![Notify::new(), Notify::new()],
            probed: vec![AtomicBool::new(true), AtomicBool::new(true)],
            delivered: Arc::new(AtomicU64::new(0)),
            last_delivery: AtomicU64::new(0),
        };
        assert_eq!(shared.slowest(0), 3);
        assert_eq!(shared.slowest(1), 7);
    }
}
