//! `wss://` from the real binary: `--ca-file` (and `WAMP_CA_FILE`) trusts a private CA,
//! each refused certificate exits 3 with one line saying why, `-k/--insecure` connects and
//! warns, and `--help` shows a `wss://` example. The server is the tutorial router behind a
//! TLS proxy on 127.0.0.1 with rcgen certificates.

#![cfg(feature = "tls")]

mod common;

#[path = "../../wamp-client/tests/common/tls.rs"]
#[allow(dead_code)] // shared with wamp-client's tests, which use all of it
mod tls;

use common::*;
use tls::{self_signed_ca_true, temp_file, ServerCert, TestCa, TlsProxy, Validity};

/// A TLS proxy with `cert` in front of `server`, on a runtime that lives as long as it.
struct Front {
    proxy: Option<TlsProxy>,
    rt: tokio::runtime::Runtime,
}

impl Front {
    fn start(server: &TestServer, cert: &ServerCert) -> Front {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let target = server
            .url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .parse()
            .unwrap();
        let proxy = rt.block_on(TlsProxy::start(target, cert));
        Front {
            proxy: Some(proxy),
            rt,
        }
    }

    fn url(&self, host: &str) -> String {
        self.proxy.as_ref().unwrap().url(host)
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // The proxy's tasks are aborted inside its runtime.
        let _guard = self.rt.enter();
        self.proxy.take();
    }
}

fn one_error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(stdout(out), "");
    err
}

#[test]
fn wss_with_a_ca_file_calls_by_name_and_by_address() {
    let server = TestServer::tutorial();
    let ca = TestCa::new();
    let ca_file = temp_file("ca.pem", &ca.pem());
    let front = Front::start(
        &server,
        &ca.issue(&["localhost", "127.0.0.1"], Validity::Now),
    );
    for host in ["localhost", "127.0.0.1"] {
        let out = run(cli()
            .args(["--url", &front.url(host)])
            .arg("--ca-file")
            .arg(&ca_file)
            .args(["call", "rpc:echo", "test"]));
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "\"test\"\n");
        assert_eq!(stderr(&out), "");
    }
    // The same from the environment, with WAMP-CRA.
    let out = run(cli()
        .env("WAMP_CA_FILE", &ca_file)
        .args(["--url", &front.url("localhost")])
        .args(["--auth-key", "guest", "--auth-secret", "secret-password"])
        .args(["call", "rpc:whoami"]));
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "\"guest\"\n");
}

#[test]
fn refused_certificates_exit_3_with_one_line_each() {
    let server = TestServer::tutorial();
    let ca = TestCa::new();
    let ca_file = temp_file("ca.pem", &ca.pem());
    let good = Front::start(&server, &ca.issue(&["localhost"], Validity::Now));
    let other = Front::start(&server, &ca.issue(&["other.example"], Validity::Now));
    let old = Front::start(&server, &ca.issue(&["localhost"], Validity::Expired));
    let ca_true = self_signed_ca_true(&["localhost"]);
    let ca_true_file = temp_file("ca-true.pem", &ca_true.pem);
    let bad = Front::start(&server, &ca_true);

    let cases = [
        (good.url("localhost"), None, "unknown issuer"),
        (
            other.url("localhost"),
            Some(&ca_file),
            "is not valid for \"localhost\"",
        ),
        (old.url("localhost"), Some(&ca_file), "has expired"),
        (bad.url("localhost"), Some(&ca_true_file), "CA:TRUE"),
    ];
    for (url, ca, want) in cases {
        let mut cmd = cli();
        cmd.args(["--url", &url]);
        if let Some(ca) = ca {
            cmd.arg("--ca-file").arg(ca);
        }
        let out = run(cmd.args(["call", "rpc:echo", "x"]));
        assert_code(&out, 3);
        let err = one_error_line(&out);
        println!("{err}");
        assert!(err.contains(want), "{url}: {err}");
        assert!(err.contains("TLS"), "{err}");
        // The URL once, in the TLS error's own words.
        assert!(
            err.starts_with(&format!("error: TLS with {url} failed: the server")),
            "{err}"
        );
        assert_eq!(err.matches(url.as_str()).count(), 1, "{err}");
    }
    // The whole line for the unknown issuer.
    let url = good.url("localhost");
    let out = run(cli().args(["--url", &url, "call", "rpc:echo", "x"]));
    let err = one_error_line(&out);
    let expected = format!(
        "error: TLS with {url} failed: the server's certificate is not issued by an authority \
         this client trusts (unknown issuer); "
    );
    assert!(err.starts_with(&expected), "{err}");
}

#[test]
fn insecure_connects_to_an_untrusted_server_and_warns() {
    let server = TestServer::tutorial();
    let ca = TestCa::new();
    let front = Front::start(&server, &ca.issue(&["other.example"], Validity::Expired));
    for flag in ["-k", "--insecure"] {
        let out = run(cli()
            .args(["--url", &front.url("localhost"), flag])
            .args(["call", "rpc:echo", "x"]));
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "\"x\"\n");
        let err = stderr(&out);
        assert!(err.contains("WARN"), "{err}");
        assert!(err.contains("NOT verified"), "{err}");
    }
}

#[test]
fn a_missing_ca_file_is_a_usage_error() {
    let out = run(cli().args([
        "--url",
        "wss://127.0.0.1:1/ws",
        "--ca-file",
        "/no/such/ca.pem",
        "call",
        "rpc:echo",
        "x",
    ]));
    assert_code(&out, 2);
    let err = one_error_line(&out);
    assert!(
        err.contains("cannot read --ca-file /no/such/ca.pem"),
        "{err}"
    );
}

#[test]
fn help_shows_a_wss_example_and_the_tls_flags() {
    let out = run(cli().arg("--help"));
    assert_code(&out, 0);
    let help = stdout(&out);
    assert!(help.contains("--url wss://"), "{help}");
    assert!(help.contains("--ca-file <FILE>"), "{help}");
    assert!(help.contains("-k, --insecure"), "{help}");
    assert!(help.contains("--cra-style <STYLE>"), "{help}");
}
