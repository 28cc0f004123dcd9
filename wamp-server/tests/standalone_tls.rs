//! The standalone router over TLS: `[tls]` in the file (paths relative to it) serving wss://
//! with the publish API reaching a wss:// subscriber; `--tls-cert`/`--tls-key` replacing the
//! file's `[tls]`; and a bad key refused at startup in one line.

#![cfg(feature = "tls")]

mod tls_support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tls_support::{temp_dir, TestCerts, WssClient};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_wamp-server");
const API_KEY: &str = "tls-test-key-0123456789";

/// Starts the binary on `config` with `args`; the child, its WAMP address and API URL.
async fn start(config: &std::path::Path, args: &[&std::ffi::OsStr]) -> (Child, SocketAddr, String) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("WAMP_TLS_CERT")
        .env_remove("WAMP_TLS_KEY")
        .env_remove("WAMP_PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line),
    )
    .await
    .expect("no listening line")
    .unwrap();
    let wss = line
        .split("WAMP wss://")
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"));
    let addr: SocketAddr = wss.split('/').next().unwrap().parse().unwrap();
    let api = line.split("API ").nth(1).unwrap().trim().to_string();
    (child, addr, api)
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
    let (_child, addr, api) = start(&path, &[]).await;
    publish_reaches(addr, &api, &certs).await;

    // The flags replace a [tls] whose files do not exist.
    let path = config(
        &dir,
        "[tls]\ncert_pem_file = \"gone.pem\"\nkey_pem_file = \"gone.pem\"",
    );
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (_child, addr, api) = start(
        &path,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    )
    .await;
    publish_reaches(addr, &api, &certs).await;
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
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .env_remove("WAMP_TLS_CERT")
        .env_remove("WAMP_TLS_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    let expected = format!(
        "error: {}:5: tls: the private key does not fit the certificate",
        path.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
