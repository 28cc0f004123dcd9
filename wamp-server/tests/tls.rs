//! TLS on the server side (issue 14): `serve_tls` and `serve_app_tls` with rcgen certificates,
//! a wss:// client trusting the test CA, the TLS handshake under the handshake timeout, and
//! the errors of `TlsConfig` for bad certificate and key files.

#![cfg(feature = "tls")]

mod common;
mod tls_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::test_router;
use tls_support::{TestCerts, WssClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wamp_server::tls::{TlsConfig, TlsError};
use wamp_server::Router;

const ECHO: &str = "http://test/rpc#echo";
const TOPIC: &str = "http://test/event#tls";

async fn start_serve_tls(router: Router, tls: TlsConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(wamp_server::serve_tls(
        listener,
        router,
        tls,
        std::future::pending(),
    ));
    addr
}

async fn start_app_tls(router: Router, tls: TlsConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = wamp_server::tutorial::app(router.clone());
    tokio::spawn(wamp_server::serve_app_tls(
        listener,
        router,
        app,
        tls,
        std::future::pending(),
    ));
    addr
}

fn tls_of(certs: &TestCerts) -> TlsConfig {
    TlsConfig::from_pem(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn serve_tls_welcome_call_and_event_by_name_and_by_ip() {
    let certs = TestCerts::new();
    let addr = start_serve_tls(test_router().build(), tls_of(&certs)).await;
    for name in ["localhost", "127.0.0.1"] {
        let mut c = WssClient::connect(addr, name, certs.client_config()).await;
        c.welcome_call_event(ECHO, TOPIC).await;
    }
}

#[tokio::test]
async fn serve_app_tls_serves_the_page_and_wamp() {
    let certs = TestCerts::new();
    let addr = start_app_tls(test_router().build(), tls_of(&certs)).await;
    let mut c = WssClient::connect(addr, "localhost", certs.client_config()).await;
    c.welcome_call_event(ECHO, TOPIC).await;
    // The page over https.
    let mut tls = tls_support::tls_connect(addr, "localhost", certs.client_config())
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = Vec::new();
    // A TLS peer may end without close_notify after Connection: close; the bytes are what count.
    let _ = tokio::time::timeout(tls_support::WAIT, tls.read_to_end(&mut page)).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"), "{page}");
}

#[tokio::test]
async fn own_server_config_gets_alpn_http11() {
    let certs = TestCerts::new();
    let chain =
        vec![rustls_pki_types::CertificateDer::from_pem_slice(certs.cert_pem.as_bytes()).unwrap()];
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let addr = start_serve_tls(test_router().build(), TlsConfig::from_server_config(config)).await;
    // WssClient::connect asserts ALPN http/1.1.
    let mut c = WssClient::connect(addr, "localhost", certs.client_config()).await;
    c.welcome_call_event(ECHO, TOPIC).await;
}

use rustls_pki_types::pem::PemObject;

/// A client that starts a TLS handshake and stalls: the server drops it after the handshake
/// timeout (not before), and serves a good client meanwhile.
async fn stalled_tls_handshake_is_dropped(addr: SocketAddr, timeout: Duration, certs: &TestCerts) {
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    // The start of a TLS record carrying a ClientHello, and then nothing.
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .await
        .unwrap();
    let mut good = WssClient::connect(addr, "localhost", certs.client_config()).await;
    for s in [&mut silent, &mut stalled] {
        let mut buf = [0u8; 256];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Err(_) => panic!("a stalled TLS handshake was kept past the deadline"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
            }
        }
        let waited = started.elapsed();
        assert!(
            waited >= timeout,
            "dropped after {waited:?}, before {timeout:?}"
        );
    }
    // TLS done, then no HTTP request: dropped too, not before the timeout.
    let before_tls = Instant::now();
    let mut tls = tls_support::tls_connect(addr, "localhost", certs.client_config())
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let end = tokio::time::timeout(Duration::from_secs(15), tls.read(&mut buf))
        .await
        .expect("a TLS connection without a request was kept past the deadline");
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
    let waited = before_tls.elapsed();
    assert!(
        waited >= timeout,
        "dropped after {waited:?}, before {timeout:?}"
    );
    good.welcome_call_event(ECHO, TOPIC).await;
}

#[tokio::test]
async fn serve_tls_drops_a_stalled_tls_handshake_after_the_timeout() {
    let certs = TestCerts::new();
    let timeout = Duration::from_millis(300);
    let router = test_router().handshake_timeout(timeout).build();
    let addr = start_serve_tls(router, tls_of(&certs)).await;
    stalled_tls_handshake_is_dropped(addr, timeout, &certs).await;
}

#[tokio::test]
async fn serve_app_tls_drops_a_stalled_tls_handshake_after_the_timeout() {
    let certs = TestCerts::new();
    let timeout = Duration::from_millis(300);
    let router = test_router().handshake_timeout(timeout).build();
    let addr = start_app_tls(router, tls_of(&certs)).await;
    stalled_tls_handshake_is_dropped(addr, timeout, &certs).await;
}

#[tokio::test]
async fn a_plain_client_on_a_tls_port_fails_and_others_continue() {
    let certs = TestCerts::new();
    let addr = start_serve_tls(test_router().build(), tls_of(&certs)).await;
    let plain = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    assert!(plain.is_err(), "a ws:// handshake on a TLS port must fail");
    let mut c = WssClient::connect(addr, "127.0.0.1", certs.client_config()).await;
    c.welcome_call_event(ECHO, TOPIC).await;
}

#[test]
fn tls_config_errors_name_the_file_and_the_fix() {
    let certs = TestCerts::new();
    let dir = tls_support::temp_dir("config");
    let (cert, key, other) = certs.write(&dir);
    assert!(TlsConfig::from_pem_files(&cert, &key).is_ok());

    let missing = dir.join("missing.pem");
    let e = TlsConfig::from_pem_files(&missing, &key).unwrap_err();
    assert!(
        matches!(
            e,
            TlsError::Read {
                what: "certificate",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = TlsConfig::from_pem_files(&cert, &missing).unwrap_err();
    assert!(matches!(e, TlsError::Read { what: "key", .. }), "{e:?}");

    // A key file given as the certificate, and the reverse.
    let e = TlsConfig::from_pem_files(&key, &key).unwrap_err();
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
    assert!(e.to_string().contains("key.pem"), "{e}");
    let e = TlsConfig::from_pem_files(&cert, &cert).unwrap_err();
    assert!(matches!(e, TlsError::NoKey { .. }), "{e:?}");

    let e = TlsConfig::from_pem_files(&cert, &other).unwrap_err();
    assert!(matches!(e, TlsError::KeyMismatch(_)), "{e:?}");
    assert!(
        e.to_string().contains("does not fit the certificate"),
        "{e}"
    );

    for e in [
        TlsConfig::from_pem_files(&missing, &key).unwrap_err(),
        TlsConfig::from_pem_files(&cert, &other).unwrap_err(),
    ] {
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// TLS completed late, then a request head trickled in: the connection is dropped one
/// handshake timeout after it was accepted, not a TLS timeout and then a header timeout.
#[tokio::test]
async fn serve_app_tls_gives_tls_and_the_request_head_one_deadline() {
    let certs = TestCerts::new();
    let timeout = Duration::from_secs(2);
    let router = test_router().handshake_timeout(timeout).build();
    let addr = start_app_tls(router, tls_of(&certs)).await;
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await.unwrap();
    // The client waits 0.7 of the timeout before its ClientHello.
    tokio::time::sleep(timeout * 7 / 10).await;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(certs.client_config())
        .connect(name, tcp)
        .await
        .expect("the TLS handshake, within the timeout");
    // Then a request head, one byte every 100 ms, never finished.
    let head = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    let mut bytes = head.into_bytes().into_iter().chain(std::iter::repeat(b'x'));
    let end = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if tls.write_all(&[bytes.next().unwrap()]).await.is_err() {
                return;
            }
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(100), tls.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) | Err(_) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the connection was kept past 15 s");
    let waited = started.elapsed();
    assert!(
        waited >= timeout,
        "dropped after {waited:?}, before {timeout:?}"
    );
    assert!(
        waited < timeout * 3 / 2,
        "dropped after {waited:?}: more than one handshake timeout ({timeout:?}) from accept"
    );
}
