//! HTTP load on the standalone router's publish API: `--connections` keep-alive clients POST
//! `{"topic", "event"}` to `--url` (`/api/publish`) as fast as each gets its answer, for
//! `--duration`, while one WebSocket session subscribed to the topic counts the events it
//! receives. Prints one JSON report: requests/s, p50/p99 request latency, responses by status,
//! events received. Exits 1 when a response was not 200 or the subscriber missed an event.
//!
//! Run with: `cargo run --release -p wamp-bench --bin http-load -- --url
//! http://127.0.0.1:8081/api/publish --api-key KEY --subscribe ws://127.0.0.1:8080/ws --topic URI`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wamp_proto::Message;

#[derive(Parser)]
struct Args {
    /// The publish endpoint.
    #[arg(long)]
    url: String,
    /// The API key (sent as `X-API-Key`).
    #[arg(long)]
    api_key: String,
    /// The topic's full URI.
    #[arg(long)]
    topic: String,
    /// The router's WebSocket URL: one session there subscribes to the topic and counts.
    #[arg(long)]
    subscribe: String,
    /// Concurrent keep-alive connections, each with one request at a time.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
}

/// What the subscriber saw.
#[derive(Default)]
struct Seen {
    probed: AtomicBool,
    events: AtomicU64,
}

/// Connects, waits for WELCOME, subscribes; then counts events until the socket ends.
async fn subscriber(url: String, topic: String, seen: Arc<Seen>) -> Result<(), String> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wamp".parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("cannot connect the subscriber to {url}: {e}"))?;
    match ws.next().await {
        Some(Ok(WsMessage::Text(text)))
            if matches!(Message::from_json(&text), Ok(Message::Welcome { .. })) => {}
        other => return Err(format!("expected WELCOME from {url}, got {other:?}")),
    }
    let subscribe = Message::Subscribe { topic_uri: topic }.to_json();
    ws.send(WsMessage::text(subscribe))
        .await
        .map_err(|e| format!("subscribing: {e}"))?;
    while let Some(frame) = ws.next().await {
        let Ok(WsMessage::Text(text)) = frame else {
            continue;
        };
        if let Ok(Message::Event { event, .. }) = Message::from_json(&text) {
            if event.get("probe").is_some() {
                seen.probed.store(true, Ordering::Relaxed);
            } else {
                seen.events.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Err("the router closed the subscriber's connection".to_string())
}

/// One POST; returns the status code (0: no answer).
async fn post(client: &reqwest::Client, args: &Args, event: Value) -> u16 {
    let body = json!({ "topic": args.topic, "event": event });
    match client
        .post(&args.url)
        .header("X-API-Key", &args.api_key)
        .json(&body)
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await; // Read it all: the connection is reused.
            status
        }
        Err(e) => {
            eprintln!("http-load: POST {}: {e}", args.url);
            0
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Arc::new(Args::parse());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let seen = Arc::new(Seen::default());
    let sub = tokio::spawn(subscriber(
        args.subscribe.clone(),
        args.topic.clone(),
        seen.clone(),
    ));

    // Warm-up: SUBSCRIBE has no answer, so publish probes until the subscriber has one.
    let until = Instant::now() + Duration::from_secs(15);
    while !seen.probed.load(Ordering::Relaxed) {
        if sub.is_finished() || Instant::now() > until {
            let why = match sub.await {
                Ok(Err(e)) => e,
                _ => "no probe event reached the subscriber within 15 s: check the topic and \
                      that the API publishes to it"
                    .to_string(),
            };
            eprintln!("http-load: {why}");
            return std::process::ExitCode::FAILURE;
        }
        let status = post(&client, &args, json!({ "probe": true })).await;
        if status != 200 {
            eprintln!("http-load: a probe POST was answered {status} (is --api-key right?)");
            return std::process::ExitCode::FAILURE;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.connections {
        let (client, args) = (client.clone(), args.clone());
        tasks.spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("3 significant digits");
            let mut statuses = BTreeMap::<u16, u64>::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let sent = Instant::now();
                let status = post(&client, &args, json!({ "c": c, "n": n })).await;
                let _ = latency.record(
                    u64::try_from(sent.elapsed().as_nanos())
                        .unwrap_or(u64::MAX)
                        .max(1),
                );
                *statuses.entry(status).or_default() += 1;
            }
            (latency, statuses)
        });
    }
    let mut latency = Histogram::<u64>::new(3).expect("3 significant digits");
    let mut statuses = BTreeMap::<u16, u64>::new();
    while let Some(Ok((part, counts))) = tasks.join_next().await {
        let _ = latency.add(&part);
        for (status, n) in counts {
            *statuses.entry(status).or_default() += n;
        }
    }
    let elapsed = start.elapsed();
    let requests: u64 = statuses.values().sum();
    let ok = statuses.get(&200).copied().unwrap_or(0);

    // Drain: until the subscriber has every event, or nothing came for 3 s.
    let (mut last, mut idle_since) = (seen.events.load(Ordering::Relaxed), Instant::now());
    while last < ok && idle_since.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = seen.events.load(Ordering::Relaxed);
        if now != last {
            (last, idle_since) = (now, Instant::now());
        }
    }
    sub.abort();
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let report = json!({
        "mode": "http-publish",
        "url": args.url,
        "connections": args.connections,
        "elapsed_s": elapsed.as_secs_f64(),
        "requests": requests,
        "ok": ok,
        "statuses": statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "requests_per_s": requests as f64 / elapsed.as_secs_f64(),
        "events_received": last,
        "latency_us": { "p50": us(0.5), "p99": us(0.99), "max": latency.max() as f64 / 1000.0 },
    });
    println!("{report}");
    if ok != requests || last != ok {
        eprintln!(
            "http-load: {} of {requests} responses were not 200, the subscriber got {last} of {ok} events",
            requests - ok
        );
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
