//! The ceiling: the least a WAMP v1 server on tokio-tungstenite + serde_json can do and still
//! serve the benchmarks. WELCOME; CALL answered with its first argument as CALLRESULT;
//! SUBSCRIBE; PUBLISH relayed as EVENT (serialised once) to every subscriber, publisher
//! included. No prefixes, no auth, no limits, no error handling beyond closing.
//!
//! Run with: `cargo run --release -p wamp-bench --bin ceiling-server -- --port 9100`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser)]
struct Args {
    /// Port to listen on (0 picks one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

type Topics = Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Utf8Bytes>>>>>;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(wamp_bench::bind_addr(args.port))
        .await
        .expect("bind");
    wamp_bench::announce("ceiling-server", listener.local_addr().expect("addr"));
    let topics: Topics = Arc::default();
    let mut next_id: u64 = 0;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        tokio::spawn(connection(
            stream,
            topics.clone(),
            format!("s{next_id:015}"),
        ));
    }
}

async fn connection(stream: tokio::net::TcpStream, topics: Topics, id: String) {
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    let callback = |_: &Request, mut response: Response| {
        response
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "wamp".parse().expect("header"));
        Ok(response)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            while let Ok(more) = rx.try_recv() {
                if sink.feed(Message::Text(more)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let _ = tx.send(Utf8Bytes::from(format!(r#"[0,"{id}",1,"ceiling/0"]"#)));
    while let Some(Ok(msg)) = source.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) else {
            break;
        };
        match items.first().and_then(Value::as_u64) {
            Some(2) => {
                let call_id = items.get(1).cloned().unwrap_or(Value::Null);
                let arg = items.get(3).cloned().unwrap_or(Value::Null);
                let reply = serde_json::to_string(&(3, call_id, arg)).expect("json");
                let _ = tx.send(Utf8Bytes::from(reply));
            }
            Some(5) => {
                if let Some(topic) = items.get(1).and_then(Value::as_str) {
                    let mut topics = topics.lock().expect("topics");
                    topics
                        .entry(topic.to_string())
                        .or_default()
                        .push(tx.clone());
                }
            }
            Some(7) => {
                let (Some(topic), Some(event)) =
                    (items.get(1).and_then(Value::as_str), items.get(2))
                else {
                    continue;
                };
                let frame =
                    Utf8Bytes::from(serde_json::to_string(&(8, topic, event)).expect("json"));
                let topics = topics.lock().expect("topics");
                for sub in topics.get(topic).into_iter().flatten() {
                    let _ = sub.send(frame.clone());
                }
            }
            _ => {}
        }
    }
    drop(tx);
    writer.abort();
}
