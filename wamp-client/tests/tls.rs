//! `wss://` through the client against the real server behind a TLS proxy on 127.0.0.1, with
//! rcgen certificates: RPC, PubSub and WAMP-CRA to `localhost` and `127.0.0.1`, reconnecting
//! after a restart, each refusal with its own error, the insecure mode, and bad CA files.

#![cfg(feature = "tls")]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::tls::{self_signed_ca_true, temp_file, ServerCert, TestCa, TlsProxy, Validity};
use common::*;
use serde_json::json;
use wamp_client::{ConnectOptions, ConnectionState, Error, TlsFailure};

/// The tutorial server behind a TLS proxy with `cert`.
async fn tls_server(cert: &ServerCert) -> (TestServer, TlsProxy) {
    let server = TestServer::start(tutorial()).await;
    let proxy = TlsProxy::start(server.addr, cert).await;
    (server, proxy)
}

/// The error a connect with `options` to `url` fails with.
async fn refusal(options: ConnectOptions, url: &str) -> Error {
    match within("the connect to fail", options.connect(url)).await {
        Ok(_) => panic!("{url}: connected, but it should have been refused"),
        Err(e) => e,
    }
}

fn tls_failure(e: &Error) -> &TlsFailure {
    match e {
        Error::Tls { failure, .. } => failure,
        other => panic!("not a TLS error: {other:?}"),
    }
}

#[tokio::test]
async fn wss_to_localhost_and_127_0_0_1_calls_subscribes_publishes_and_authenticates() {
    init_tracing();
    let ca = TestCa::new();
    let ca_file = temp_file("ca.pem", &ca.pem());
    let (server, proxy) = tls_server(&ca.issue(&["localhost", "127.0.0.1"], Validity::Now)).await;
    for host in ["localhost", "127.0.0.1"] {
        let url = proxy.url(host);
        let client = within(
            "a wss connect",
            ConnectOptions::new()
                .ca_file(&ca_file)
                .auth("guest", "secret-password")
                .prefix("event", "http://wamptutorial/event#")
                .connect(&url),
        )
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            client.call("rpc:whoami", vec![]).await.unwrap(),
            json!("guest")
        );
        assert_eq!(
            client.call("rpc:echo", vec![json!(host)]).await.unwrap(),
            json!(host)
        );
        let mut chat = client.subscribe("event:chat").await.unwrap();
        client
            .publish("event:chat", json!({"via": host}))
            .await
            .unwrap();
        let event = next_event(&mut chat).await;
        assert_eq!(event.topic, CHAT);
        assert_eq!(event.payload, json!({"via": host}));
        client.close().await;
    }
    drop(server);
}

#[tokio::test]
async fn a_custom_client_config_is_used_as_given() {
    let ca = TestCa::new();
    let (_server, proxy) = tls_server(&ca.issue(&["localhost"], Validity::Now)).await;
    let mut roots = wamp_client::rustls::RootCertStore::empty();
    let pem = ca.pem();
    let der =
        wamp_client::rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let provider = Arc::new(wamp_client::rustls::crypto::ring::default_provider());
    let config = wamp_client::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = ConnectOptions::new()
        .tls_config(Arc::new(config))
        .connect(&proxy.url("localhost"))
        .await
        .unwrap();
    sync(&client).await;
    // The same server without that configuration (nor a CA file) is not trusted.
    let err = refusal(ConnectOptions::new(), &proxy.url("localhost")).await;
    assert_eq!(tls_failure(&err), &TlsFailure::UnknownIssuer);
}

#[tokio::test]
async fn reconnects_over_wss_after_a_server_restart_with_the_same_certificate() {
    init_tracing();
    let ca = TestCa::new();
    let ca_file = temp_file("ca.pem", &ca.pem());
    let cert = ca.issue(&["localhost", "127.0.0.1"], Validity::Now);
    let (mut server, proxy) = tls_server(&cert).await;
    let (server_addr, proxy_addr) = (server.addr, proxy.addr);
    let client = within(
        "a wss connect",
        fast_reconnect()
            .ca_file(&ca_file)
            .auth("guest", "secret-password")
            .connect(&proxy.url("127.0.0.1")),
    )
    .await
    .unwrap();
    let first = client.session_id().unwrap();
    let mut chat = client.subscribe(CHAT).await.unwrap();

    server.stop().await;
    drop(proxy);
    wait_state(
        &client,
        "the link to drop",
        |s| !matches!(s, ConnectionState::Connected { session_id, .. } if *session_id == first),
    )
    .await;
    let server = TestServer::start_on(server_addr, tutorial()).await;
    let _proxy = TlsProxy::start_on(proxy_addr, server_addr, &cert).await;
    let state = wait_state(
        &client,
        "reconnected over wss",
        ConnectionState::is_connected,
    )
    .await;
    assert!(matches!(state, ConnectionState::Connected { session_id, .. } if session_id != first));
    // Authenticated again, and subscribed again.
    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("guest")
    );
    wait_until("the server to have the subscription again", || {
        !server.router.subscribers(CHAT).is_empty()
    })
    .await;
    server.router.publish(CHAT, "after restart");
    assert_eq!(next_event(&mut chat).await.payload, json!("after restart"));
}

#[tokio::test]
async fn refusals_say_what_is_wrong() {
    init_tracing();
    let ca = TestCa::new();
    let ca_file = temp_file("ca.pem", &ca.pem());
    let trusted = || ConnectOptions::new().ca_file(&ca_file);

    // Untrusted: a CA the client does not know.
    let (_s1, good) = tls_server(&ca.issue(&["localhost", "127.0.0.1"], Validity::Now)).await;
    let err = refusal(ConnectOptions::new(), &good.url("localhost")).await;
    assert_eq!(tls_failure(&err), &TlsFailure::UnknownIssuer);
    assert!(err.to_string().contains("unknown issuer"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "rustls's error is kept"
    );

    // Wrong host: a certificate for another name, by name and by address.
    let (_s2, other) = tls_server(&ca.issue(&["other.example"], Validity::Now)).await;
    for host in ["localhost", "127.0.0.1"] {
        let err = refusal(trusted(), &other.url(host)).await;
        match tls_failure(&err) {
            TlsFailure::NameMismatch { host: h, presented } => {
                assert_eq!(h, host);
                assert!(
                    presented.iter().any(|n| n == "other.example"),
                    "{presented:?}"
                );
            }
            f => panic!("{host}: {f:?}"),
        }
        assert!(err.to_string().contains("is not valid for"), "{err}");
    }

    // Expired.
    let (_s3, old) = tls_server(&ca.issue(&["localhost"], Validity::Expired)).await;
    let err = refusal(trusted(), &old.url("localhost")).await;
    assert_eq!(tls_failure(&err), &TlsFailure::Expired);
    assert!(err.to_string().contains("expired"), "{err}");

    // A CA:TRUE self-signed certificate, trusted as such, used as the server's own.
    let ca_true = self_signed_ca_true(&["localhost"]);
    let ca_true_file = temp_file("ca-true.pem", &ca_true.pem);
    let (_s4, bad) = tls_server(&ca_true).await;
    let err = refusal(
        ConnectOptions::new().ca_file(&ca_true_file),
        &bad.url("localhost"),
    )
    .await;
    assert_eq!(tls_failure(&err), &TlsFailure::CaUsedAsEndEntity);
    assert!(err.to_string().contains("CA:FALSE"), "{err}");

    // Not TLS at all on the other side.
    let plain = TestServer::start(tutorial()).await;
    let err = refusal(
        ConnectOptions::new(),
        &format!("wss://127.0.0.1:{}/ws", plain.addr.port()),
    )
    .await;
    assert!(
        matches!(tls_failure(&err), TlsFailure::Handshake(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_ca_files_fail_before_connecting() {
    let missing = std::env::temp_dir().join("wamp-tls-test-no-such-file.pem");
    let err = refusal(
        ConnectOptions::new().ca_file(&missing),
        "wss://127.0.0.1:1/ws",
    )
    .await;
    assert!(
        matches!(&err, Error::TlsSetup(why) if why.contains("cannot read CA file")),
        "{err:?}"
    );
    let empty = temp_file("empty.pem", "not a certificate\n");
    let err = refusal(
        ConnectOptions::new().ca_file(&empty),
        "wss://127.0.0.1:1/ws",
    )
    .await;
    assert!(
        matches!(&err, Error::TlsSetup(why) if why.contains("holds no certificate")),
        "{err:?}"
    );
    // A CA file is not read for ws:// URLs.
    let server = TestServer::start(tutorial()).await;
    let client = ConnectOptions::new()
        .ca_file(&missing)
        .connect(&server.url())
        .await
        .unwrap();
    sync(&client).await;
}

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the subscriber set below sees the handshakes, which `connect` runs itself.
#[tokio::test(flavor = "current_thread")]
async fn insecure_mode_connects_to_an_untrusted_server_and_warns() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ca = TestCa::new();
    let (_server, proxy) = tls_server(&ca.issue(&["other.example"], Validity::Expired)).await;
    for round in 1..=2 {
        let client = within(
            "an insecure connect",
            ConnectOptions::new()
                .insecure(true)
                .connect(&proxy.url("localhost")),
        )
        .await
        .unwrap();
        sync(&client).await;
        let mut states = client.state_changes();
        client.close().await;
        while states.changed().await.is_ok() {}
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            log.matches("TLS certificate NOT verified").count(),
            round,
            "one warning per connection:\n{log}"
        );
        assert!(log.contains("WARN"), "{log}");
    }
    // Without it, the same server is refused.
    let err = refusal(ConnectOptions::new(), &proxy.url("localhost")).await;
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn an_upper_case_wss_scheme_is_tls_too() {
    let ca = TestCa::new();
    let ca_file = temp_file("ca-upper.pem", &ca.pem());
    let (server, proxy) = tls_server(&ca.issue(&["localhost"], Validity::Now)).await;
    let url = proxy.url("localhost").replacen("wss://", "WSS://", 1);
    assert!(url.starts_with("WSS://"), "{url}");
    let client = within(
        "a WSS:// connect",
        ConnectOptions::new().ca_file(&ca_file).connect(&url),
    )
    .await
    .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(client.url(), url);
    assert_eq!(
        client.call("rpc:echo", vec![json!("upper")]).await.unwrap(),
        json!("upper")
    );
    client.close().await;
    // A certificate for another name is refused by that name, however the scheme is spelt.
    let other = ca.issue(&["elsewhere.example"], Validity::Now);
    let proxy = TlsProxy::start(server.addr, &other).await;
    let url = proxy.url("localhost").replacen("wss://", "Wss://", 1);
    let err = refusal(ConnectOptions::new().ca_file(&ca_file), &url).await;
    assert!(
        matches!(tls_failure(&err), TlsFailure::NameMismatch { host, .. } if host == "localhost"),
        "{err:?}"
    );
}
