//! The router mounted in an axum app (the tutorial server's transport): the same rules as
//! `serve`, plus the pages beside the endpoint.

mod common;

use std::time::Duration;

use common::{test_router, Client};
use futures::SinkExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use wamp_server::Router;

/// Serves the tutorial app for `router` on a free port; returns its address.
async fn start(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = wamp_server::tutorial::app(router);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn http_get(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connection = if headers.contains("Upgrade:") {
        "Upgrade, close"
    } else {
        "close"
    };
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: {connection}\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).to_string()
}

#[tokio::test]
async fn the_tutorial_endpoint_serves_wamp_and_pages() {
    let addr = start(wamp_server::tutorial::router()).await;
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(
        c.call("1", "rpc:echo", &[json!("test")]).await,
        json!([3, "1", "test"])
    );
    assert_eq!(
        c.call("2", "rpc:throw", &[]).await,
        json!([
            4,
            "2",
            "http://api.wamp.ws/error#internal",
            "internal error",
            "An exception"
        ])
    );
    assert_eq!(
        c.call("3", "rpc:ping", &[]).await,
        json!([
            4,
            "3",
            "http://api.wamp.ws/error#unauthorized",
            "unauthorized"
        ])
    );
    assert_eq!(
        c.call("4", "rpc:add", &[json!(1), json!(2), json!(3.5)])
            .await,
        json!([3, "4", 6.5])
    );
    assert_eq!(
        c.call("5", "rpc:whoami", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
    c.send(r#"[5,"event:chat"]"#).await;
    c.send(r#"[7,"event:chat","foo"]"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"[8,"http://wamptutorial/event#chat","foo"]"#
    );

    let page = http_get(addr, "/", "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("text/html"), "{page}");
    assert!(page.contains("RPC: Ping (Not Authorized)"));
    let js = http_get(addr, "/wamp1.js", "").await;
    assert!(js.contains("text/javascript"), "{js}");
}

#[tokio::test]
async fn guest_authenticates_and_may_call_whoami() {
    let addr = start(wamp_server::tutorial::router()).await;
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    let ch = c
        .call(
            "1",
            "http://api.wamp.ws/procedure#authreq",
            &[json!("guest")],
        )
        .await;
    let sig =
        wamp_proto::cra::client_signature(ch[2].as_str().unwrap(), "secret-password").unwrap();
    assert_eq!(
        c.call("2", "http://api.wamp.ws/procedure#auth", &[json!(sig)])
            .await[0],
        3
    );
    assert_eq!(
        c.call("3", "rpc:whoami", &[]).await,
        json!([3, "3", "guest"])
    );
    assert_eq!(
        c.call("4", "rpc:ping", &[]).await[2],
        "http://api.wamp.ws/error#unauthorized"
    );
}

#[tokio::test]
async fn bad_input_and_limits_through_axum() {
    let router = test_router().max_message_size(1024).build();
    let addr = start(router).await;
    let url = format!("ws://{addr}/ws");
    let mut bystander = Client::connect(&url).await;

    let mut binary = Client::connect(&url).await;
    binary.ws.send(Ws::binary(vec![0u8; 4])).await.unwrap();
    assert_eq!(binary.expect_close().await.0, 1003);

    let mut big = Client::connect(&url).await;
    big.send(&format!(
        r#"[2,"c","http://test/rpc#echo","{}"]"#,
        "x".repeat(4000)
    ))
    .await;
    let (code, reason) = big.expect_close().await;
    assert_eq!(code, 1009, "{reason}");

    let mut garbage = Client::connect(&url).await;
    garbage.send("not json").await;
    assert_eq!(garbage.expect_close().await.0, 1002);

    bystander.assert_alive().await;
}

#[tokio::test]
async fn handshake_rules_through_axum() {
    let router = test_router()
        .allowed_origins(["http://localhost:1"])
        .max_connections(1)
        .build();
    let addr = start(router).await;
    let upgrade = "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let r = http_get(
        addr,
        "/ws",
        &format!("{upgrade}Origin: http://evil.example\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let r = http_get(
        addr,
        "/ws",
        &format!("{upgrade}Sec-WebSocket-Protocol: mqtt\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let mut only = Client::connect(&format!("ws://{addr}/ws")).await;
    let r = http_get(
        addr,
        "/ws",
        &format!("{upgrade}Sec-WebSocket-Protocol: wamp\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    only.assert_alive().await;
}

#[tokio::test]
async fn router_shutdown_closes_axum_sessions_with_1001() {
    let router = test_router()
        .shutdown_close(wamp_server::ShutdownClose::Handshake(1001))
        .build();
    let addr = start(router.clone()).await;
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    c.send(r#"[2,"late","http://test/rpc#sleep",200]"#).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    router.shutdown();
    assert_eq!(c.recv().await, json!([3, "late", 200]));
    assert_eq!(c.expect_close().await.0, 1001);
    tokio::time::timeout(Duration::from_secs(5), router.closed())
        .await
        .expect("every session ends");
    assert_eq!(router.session_count(), 0);
}

#[tokio::test]
async fn router_shutdown_ends_axum_sessions_without_a_close_frame_by_default() {
    let router = test_router().build();
    let addr = start(router.clone()).await;
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    c.assert_alive().await;
    router.shutdown();
    c.expect_connection_end().await;
    tokio::time::timeout(Duration::from_secs(5), router.closed())
        .await
        .expect("every session ends");
    assert_eq!(router.session_count(), 0);
}
