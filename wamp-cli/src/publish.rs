//! `publish TOPIC EVENT`: one PUBLISH, `--count` of them, or one per line of stdin.

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::{debug, info};
use wamp_client::{Client, PublishOptions};

use crate::args::json_or_string;
use crate::cli::PublishArgs;
use crate::connect::Connection;
use crate::exit::Failure;

/// Runs `publish`.
pub async fn run(conn: &Connection, args: PublishArgs) -> Result<(), Failure> {
    let options = PublishOptions {
        exclude_me: args.exclude_me.then_some(true),
        exclude: args.exclude.clone(),
        eligible: args.eligible.clone(),
    };
    let parse = |text: &str| {
        if args.string {
            Value::String(text.to_string())
        } else {
            json_or_string(text)
        }
    };
    let client = conn.connect().await?;
    let mut publisher = Publisher {
        client: &client,
        topic: &args.topic,
        options,
        interval: args.interval,
        sent: 0,
    };
    let outcome = async {
        if args.stdin {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines
                .next_line()
                .await
                .map_err(|e| Failure::other(format!("cannot read stdin: {e}")))?
            {
                if !line.trim().is_empty() {
                    publisher.publish(parse(&line)).await?;
                }
            }
        } else {
            let event = parse(args.event.as_deref().unwrap_or_default());
            for _ in 0..args.count {
                publisher.publish(event.clone()).await?;
            }
        }
        Ok(())
    }
    .await;
    let sent = publisher.sent;
    // Closing sends what is queued, then the WebSocket close: every event has left.
    client.close().await;
    info!(
        topic = %args.topic,
        events = sent,
        "PUBLISH sent; WAMP v1 has no reply to PUBLISH, so nothing confirms that the server \
         accepted it or that anyone received it"
    );
    outcome
}

/// Publishes events one after the other, `interval` apart.
struct Publisher<'a> {
    client: &'a Client,
    topic: &'a str,
    options: PublishOptions,
    interval: Option<std::time::Duration>,
    sent: u64,
}

impl Publisher<'_> {
    async fn publish(&mut self, event: Value) -> Result<(), Failure> {
        if self.sent > 0 {
            if let Some(pause) = self.interval {
                tokio::time::sleep(pause).await;
            }
        }
        debug!(topic = %self.topic, %event, "PUBLISH");
        self.client
            .publish_with(self.topic, event, self.options.clone())
            .await
            .map_err(|e| Failure::operation(&format!("publishing to {}", self.topic), e))?;
        self.sent += 1;
        Ok(())
    }
}
