//! `--cra-style` from the real binary against a server that does WAMP-CRA as clj-wamp 1.0.2
//! does: auto (the default) and clj-wamp authenticate; standard cannot sign the opaque
//! challenge and exits 4 saying which style can.

mod common;

#[path = "../../wamp-client/tests/common/clj.rs"]
#[allow(dead_code)] // shared with wamp-client's tests, which use all of it
mod clj;

use clj::{CljServer, CLJ_SIGNATURE, ECHO, KEY, SECRET};
use common::*;

/// The server on a runtime of its own, for the synchronous CLI tests.
struct Running {
    server: Option<CljServer>,
    rt: tokio::runtime::Runtime,
}

impl Running {
    fn start() -> Running {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(CljServer::start());
        Running {
            server: Some(server),
            rt,
        }
    }

    fn server(&self) -> &CljServer {
        self.server.as_ref().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.server.take();
    }
}

fn call_echo(running: &Running, style: Option<&str>) -> std::process::Output {
    let mut cmd = cli();
    cmd.args(["--url", &running.server().url()])
        .args(["--auth-key", KEY, "--auth-secret", SECRET]);
    if let Some(style) = style {
        cmd.args(["--cra-style", style]);
    }
    run(cmd.args(["call", ECHO, "hi"]))
}

#[test]
fn auto_and_clj_wamp_styles_authenticate_with_clj_wamp() {
    let running = Running::start();
    for style in [None, Some("auto"), Some("clj-wamp")] {
        let out = call_echo(&running, style);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "\"hi\"\n", "{style:?}");
    }
    assert_eq!(
        *running.server().signatures.lock().unwrap(),
        vec![CLJ_SIGNATURE; 3]
    );
}

#[test]
fn the_standard_style_exits_4_and_names_the_style_that_works() {
    let running = Running::start();
    let out = call_echo(&running, Some("standard"));
    assert_code(&out, 4);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--cra-style"), "{err}");
    assert!(running.server().signatures.lock().unwrap().is_empty());
    // A style that does not exist is a usage error.
    let out = call_echo(&running, Some("sideways"));
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("auto, standard or clj-wamp"),
        "{}",
        stderr(&out)
    );
}
