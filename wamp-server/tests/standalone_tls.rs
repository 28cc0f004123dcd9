//! The standalone router over TLS: `[tls]` in the file (paths relative to it) serving wss://
//! with the publish API reaching a wss:// subscriber; `--tls-cert`/`--tls-key` replacing the
//! file's `[tls]`; a bad key refused at startup in one line; and `[[rpc.proxy]] ca_file`
//! calling a real https backend signed by a private CA.

#![cfg(feature = "tls")]

mod binary_support;
mod common;
mod tls_support;

use std::net::SocketAddr;
use std::time::Duration;

use binary_support::{after, config_command, run_to_end, Started};
use serde_json::{json, Value};
use tls_support::{temp_dir, TestCerts, WssClient};

const API_KEY: &str = "tls-test-key-0123456789";

/// Starts the binary on `config` with `args`: it, its WAMP address and API URL.
async fn start(config: &std::path::Path, args: &[&str]) -> (Started, SocketAddr, String) {
    let started = binary_support::start(config_command(config, args, &[])).await;
    let line = &started.line;
    let wss = after(line, "WAMP wss://").unwrap_or_else(|| panic!("{line}"));
    let addr: SocketAddr = wss.split('/').next().unwrap().parse().unwrap();
    let api = after(line, "API ").unwrap().to_string();
    (started, addr, api)
}

fn config(dir: &std::path::Path, tls: &str) -> std::path::PathBuf {
    let text = format!(
        "[server]\nport = 0\n[[topics]]\nuri = \"*\"\n{tls}\n[api]\nbind = \"127.0.0.1:0\"\nkey = \"{API_KEY}\"\n"
    );
    let path = dir.join("router.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn publish_reaches(addr: SocketAddr, api: &str, certs: &TestCerts) {
    let mut c = WssClient::connect(addr, "localhost", certs.client_config()).await;
    assert_eq!(c.welcome[0], 0);
    c.send(r#"[5, "http://x/t"]"#).await;
    // SUBSCRIBE has no reply: publish until the subscriber counts (no sleep as a wait).
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer: Value = http
            .post(format!("{api}publish"))
            .header("X-API-Key", API_KEY)
            .body(json!({"topic": "http://x/t", "event": "over tls"}).to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer == json!({"result": {"recipients": 1}}) {
            break;
        }
        assert_eq!(answer, json!({"result": {"recipients": 0}}));
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.recv().await, json!([8, "http://x/t", "over tls"]));
}

#[tokio::test]
async fn tls_from_the_file_and_from_the_flags() {
    let certs = TestCerts::new();
    let dir = temp_dir("standalone");
    certs.write(&dir);
    // Relative paths start at the file's directory.
    let path = config(
        &dir,
        "[tls]\ncert_pem_file = \"cert.pem\"\nkey_pem_file = \"key.pem\"",
    );
    let (started, addr, api) = start(&path, &[]).await;
    publish_reaches(addr, &api, &certs).await;
    started.kill().await;

    // The flags replace a [tls] whose files do not exist.
    let path = config(
        &dir,
        "[tls]\ncert_pem_file = \"gone.pem\"\nkey_pem_file = \"gone.pem\"",
    );
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let (started, addr, api) = start(&path, &["--tls-cert", cert, "--tls-key", key]).await;
    publish_reaches(addr, &api, &certs).await;
    started.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_key_that_does_not_fit_is_refused_in_one_line() {
    let certs = TestCerts::new();
    let dir = temp_dir("standalone-bad");
    certs.write(&dir);
    let path = config(
        &dir,
        "[tls]\ncert_pem_file = \"cert.pem\"\nkey_pem_file = \"other-key.pem\"",
    );
    let (code, _, err) = run_to_end(config_command(&path, &["--check"], &[])).await;
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    let expected = format!(
        "error: {}:5: tls: the private key does not fit the certificate",
        path.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real https backend (the library's own TLS server) signed by the test CA: answers every
/// POST /rpc with the procedure it was asked for.
async fn https_backend(certs: &TestCerts) -> u16 {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls =
        wamp_server::tls::TlsConfig::from_pem(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes())
            .unwrap();
    let app = axum::Router::new().route(
        "/rpc",
        post(|axum::Json(call): axum::Json<Value>| async move {
            axum::Json(json!({"result": {"over": "https", "procedure": call["procedure"]}}))
        }),
    );
    let router = wamp_server::Router::builder().build();
    tokio::spawn(wamp_server::serve_app_tls(
        listener,
        router,
        app,
        tls,
        std::future::pending(),
    ));
    port
}

/// `--check` on a file in `dir`: the exit code and stderr.
async fn check(dir: &std::path::Path, text: &str) -> (Option<i32>, String) {
    let path = dir.join("check.toml");
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = run_to_end(config_command(&path, &["--check"], &[])).await;
    (code, err)
}

#[tokio::test]
async fn a_private_https_backend_through_its_ca_file() {
    let certs = TestCerts::new();
    let dir = temp_dir("standalone-ca");
    std::fs::write(dir.join("ca.pem"), &certs.ca_pem).unwrap();
    let port = https_backend(&certs).await;
    // The same backend twice: trusted through ca_file (relative to the file), and with the
    // built-in roots only, which do not know the test CA.
    let text = format!(
        "[server]\nport = 0\n\
         [[rpc.proxy]]\nuri = \"http://x/private#*\"\nurl = \"https://localhost:{port}/rpc\"\nca_file = \"ca.pem\"\n\
         [[rpc.proxy]]\nuri = \"http://x/public#*\"\nurl = \"https://localhost:{port}/rpc\"\n"
    );
    let path = dir.join("router.toml");
    std::fs::write(&path, text).unwrap();
    let started = binary_support::start(config_command(&path, &[], &[])).await;
    let ws = format!("ws://{}", after(&started.line, "WAMP ws://").unwrap());
    let mut c = common::Client::connect(&ws).await;
    assert_eq!(
        c.call("c1", "http://x/private#echo", &[json!(1)]).await,
        json!([3, "c1", {"over": "https", "procedure": "http://x/private#echo"}])
    );
    let answer = c.call("c2", "http://x/public#echo", &[json!(1)]).await;
    assert_eq!(answer[0], 4, "{answer}");
    assert_eq!(answer[2], "http://api.wamp.ws/error#internal", "{answer}");
    let details = answer[4].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(
        details.contains("certificate") && details.contains("UnknownIssuer"),
        "{answer}"
    );
    // The router still answers (and did not panic) after the failed handshake.
    assert_eq!(
        c.call("c3", "http://x/private#again", &[]).await[0],
        json!(3)
    );
    drop(c);
    started.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_ca_files_are_refused_with_file_line_and_key() {
    let certs = TestCerts::new();
    let dir = temp_dir("standalone-ca-bad");
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    // A key, not a certificate.
    std::fs::write(dir.join("key-only.pem"), &certs.key_pem).unwrap();
    std::fs::write(
        dir.join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.join("ca.pem"), &certs.ca_pem).unwrap();
    let file = |url: &str, ca: &str| {
        format!("[server]\nport = 0\n\n[[rpc.proxy]]\nuri = \"x\"\nurl = \"{url}\"\nca_file = \"{ca}\"\n")
    };
    let at = format!(
        "error: {}:7: rpc.proxy[0].ca_file: ",
        dir.join("check.toml").display()
    );
    let (code, err) = check(&dir, &file("https://h/", "missing.pem")).await;
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "{at}cannot read {}",
            dir.join("missing.pem").display()
        )),
        "{err}"
    );
    for name in ["empty.pem", "key-only.pem"] {
        let (code, err) = check(&dir, &file("https://h/", name)).await;
        assert_eq!(code, Some(2));
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "{at}{} has no certificate in it",
                dir.join(name).display()
            )),
            "{err}"
        );
    }
    let (code, err) = check(&dir, &file("https://h/", "garbage.pem")).await;
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&at), "{err}");
    // A CA file only makes sense for https://.
    let (code, err) = check(&dir, &file("http://h/", "ca.pem")).await;
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with(&format!("{at}is for https:// backends")),
        "{err}"
    );
    // The good file passes.
    let (code, err) = check(&dir, &file("https://h/", "ca.pem")).await;
    assert_eq!(code, Some(0), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
