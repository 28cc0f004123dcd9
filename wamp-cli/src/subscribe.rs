//! `subscribe TOPIC...`: one line per event on stdout until `--count`, Ctrl-C or SIGTERM.

use std::io::IsTerminal;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};
use wamp_client::{ConnectionState, ReconnectPolicy};

use crate::cli::SubscribeArgs;
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output;

/// How many events a subscription buffers for this process before the client drops some.
const BUFFER: usize = 1 << 16;

/// One output line: `{"topic":…,"event":…}`, in that order, after `"time"` with
/// `--timestamps`.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<&'a str>,
    topic: &'a str,
    event: &'a Value,
}

/// The text of one event's line.
fn render(topic: &str, event: &Value, raw: bool, time: Option<&str>) -> serde_json::Result<String> {
    if raw {
        let event = serde_json::to_string(event)?;
        Ok(match time {
            Some(time) => format!("{time} {event}"),
            None => event,
        })
    } else {
        serde_json::to_string(&Line { time, topic, event })
    }
}

/// Runs `subscribe`.
pub async fn run(conn: &Connection, args: SubscribeArgs) -> Result<(), Failure> {
    // Listen before subscribing: from then on, Ctrl-C is a clean exit.
    let mut shutdown = output::Shutdown::listen();
    let topics = args
        .topics
        .iter()
        .map(|t| conn.subscription_topic(t))
        .collect::<Result<Vec<_>, _>>()?;
    // A subscriber rides out a server restart: the client reconnects and subscribes again.
    let options = conn
        .options(ReconnectPolicy::default())
        .subscription_capacity(BUFFER);
    let client = conn.connect_with(options).await?;
    let mut subscriptions = Vec::with_capacity(topics.len());
    for topic in &topics {
        let sub = client
            .subscribe(topic)
            .await
            .map_err(|e| Failure::operation(&format!("subscribing to {topic}"), e))?;
        subscriptions.push(sub);
    }
    let session = client.session_id().unwrap_or_default();
    info!(
        topics = ?topics,
        %session,
        "SUBSCRIBE sent; WAMP v1 has no reply to SUBSCRIBE, so nothing confirms that the \
         server accepted it (a refused subscription just receives nothing)"
    );
    if std::io::stderr().is_terminal() {
        eprintln!(
            "subscribed to {} as session {session} (WAMP v1 does not confirm it); Ctrl-C to stop",
            topics.join(", ")
        );
    }
    let watcher = tokio::spawn(report_reconnects(client.state_changes()));

    let mut events = futures::stream::select_all(subscriptions);
    let mut seen = 0u64;
    let outcome = loop {
        if args.count.is_some_and(|n| seen >= n) {
            break Ok(());
        }
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else {
                    // Every stream ends only when the client is closed for good.
                    let why = match client.state() {
                        ConnectionState::Closed { reason } => reason,
                        other => format!("{other:?}"),
                    };
                    break Err(lost(conn.url(), &why));
                };
                let time = args
                    .timestamps
                    .then(|| wamp_proto::cra::utc_timestamp(std::time::SystemTime::now()));
                let text = render(&event.topic, &event.payload, args.raw, time.as_deref());
                let text = text.map_err(|e| Failure::other(format!("cannot print an event: {e}")))?;
                if !output::line(&text) {
                    break Ok(());
                }
                seen += 1;
            }
            () = shutdown.recv() => {
                info!(events = seen, "interrupted; unsubscribing");
                break Ok(());
            }
        }
    };
    watcher.abort();
    drop(events);
    client.close().await;
    outcome
}

/// Logs reconnects, so a person watching a quiet subscription knows why it is quiet.
async fn report_reconnects(mut states: tokio::sync::watch::Receiver<ConnectionState>) {
    while states.changed().await.is_ok() {
        let state = states.borrow_and_update().clone();
        match state {
            ConnectionState::Reconnecting { attempt, reason } => {
                warn!("connection lost ({reason}); reconnecting, attempt {attempt}")
            }
            ConnectionState::Connected { session_id, .. } => {
                warn!("reconnected as session {session_id}; subscribed again")
            }
            _ => {}
        }
    }
}

fn lost(url: &str, why: &str) -> Failure {
    Failure::operation(
        &format!("the subscription on {url}"),
        wamp_client::Error::ConnectionLost(why.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_with_and_without_timestamps() {
        let t = Some("2026-12-01T10:00:00.000Z");
        let e = json!({"a": 1});
        assert_eq!(
            render("http://t", &e, false, None).unwrap(),
            r#"{"topic":"http://t","event":{"a":1}}"#
        );
        assert_eq!(
            render("http://t", &e, false, t).unwrap(),
            r#"{"time":"2026-12-01T10:00:00.000Z","topic":"http://t","event":{"a":1}}"#
        );
        assert_eq!(render("http://t", &e, true, None).unwrap(), r#"{"a":1}"#);
        assert_eq!(
            render("http://t", &e, true, t).unwrap(),
            r#"2026-12-01T10:00:00.000Z {"a":1}"#
        );
    }
}
