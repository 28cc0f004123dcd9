//! wamp-client against the AutobahnPython 0.8.15 server (`ab_server.py`): WAMP-CRA.
//!
//! Users of `ab_server.py`: `guest` / `secret-password` (plain secret) and `salted` / `secret`
//! (the server keeps the PBKDF2-derived key; authextra salt "RANDOM SALT", 1000 iterations,
//! keylen 32). `rpc#whoami` exists only after authentication.

use serde_json::json;
use wamp_client::Error;
use wamp_tests::{limited, options, PeerServer, CHAT, ERR, RPC};

async fn authenticated_as(ab: &PeerServer, key: &str, secret: &str) {
    let c = ab.connect().await;
    let perms = match c.authenticate(key, secret).await {
        Ok(p) => p,
        Err(e) => panic!(
            "WAMP-CRA as {key:?} against Autobahn failed: {e}\n{}\n{}",
            match &e {
                Error::AuthRefused { uri, .. } if uri.ends_with("#invalid-signature") =>
                    "Autobahn refused our signature: wamp-client signed differently from \
                     Autobahn's WampCraProtocol (DEVIATION OF OURS, unless the shim's \
                     authSignature is broken: see selftest.sh)",
                Error::Auth(_) => "wamp-client could not read Autobahn's challenge or result",
                _ => "see the frames",
            },
            ab.frames_text(10)
        ),
    };
    assert!(
        perms.may_call(&format!("{RPC}whoami")) && perms.may_publish(CHAT),
        "the permissions Autobahn granted should allow whoami and chat: {perms:?}\n{}",
        ab.frames_text(6)
    );
    ab.expect_result(&c, &format!("{RPC}whoami"), vec![], json!(key))
        .await;
    c.close().await;
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn cra_with_an_unsalted_secret_is_accepted() {
    limited("cra_with_an_unsalted_secret_is_accepted", async {
        let ab = PeerServer::autobahn(&[]);
        authenticated_as(&ab, "guest", "secret-password").await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn cra_with_a_salted_secret_derives_the_key_with_pbkdf2() {
    limited(
        "cra_with_a_salted_secret_derives_the_key_with_pbkdf2",
        async {
            let ab = PeerServer::autobahn(&[]);
            authenticated_as(&ab, "salted", "secret").await;
            // the challenge Autobahn sent carried the authextra our client used
            let challenge = ab
                .frames()
                .into_iter()
                .filter(|f| f.msg.get(0) == Some(&json!(3)))
                .find_map(|f| {
                    f.msg
                        .get(2)
                        .and_then(|s| s.as_str())
                        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                        .filter(|v| v.get("authextra").is_some())
                })
                .unwrap_or_else(|| {
                    panic!("no salted challenge in the log\n{}", ab.frames_text(10))
                });
            assert_eq!(
                challenge["authextra"],
                json!({"salt": "RANDOM SALT", "keylen": 32, "iterations": 1000}),
                "Autobahn's salted challenge (peer side)"
            );
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn cra_on_connect_option_authenticates_before_use() {
    limited("cra_on_connect_option_authenticates_before_use", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect_with(options().auth("salted", "secret")).await;
        ab.expect_result(&c, &format!("{RPC}whoami"), vec![], json!("salted"))
            .await;
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn cra_with_a_wrong_secret_is_refused() {
    limited("cra_with_a_wrong_secret_is_refused", async {
        let ab = PeerServer::autobahn(&[]);
        let c = ab.connect().await;
        for (key, secret) in [("guest", "not-the-secret"), ("salted", "not-the-password")] {
            let got = c.authenticate(key, secret).await;
            assert!(
                matches!(&got, Err(Error::AuthRefused { uri, desc, .. })
                    if *uri == format!("{ERR}invalid-signature")
                    && desc == "signature for authentication request is invalid"),
                "a wrong secret for {key:?} must be refused by Autobahn with #invalid-signature; \
                 got {got:?}\n{}",
                ab.frames_text(8)
            );
        }
        // not authenticated: whoami is not even registered
        let whoami = format!("{RPC}whoami");
        let desc = format!("No RPC endpoint registered for {whoami}.");
        ab.expect_error(&c, &whoami, vec![], &format!("{ERR}NoSuchRPCEndpoint"), &desc, None)
            .await;
        // a wrong secret as a connect option makes the connect fail
        let refused = options()
            .auth("guest", "wrong")
            .connect(&ab.url())
            .await
            .map(|_| ());
        assert!(
            matches!(&refused, Err(Error::AuthRefused { uri, .. }) if uri.ends_with("#invalid-signature")),
            "connect with a wrong secret should fail with #invalid-signature, got {refused:?}"
        );
        c.close().await;
    })
    .await
}

#[tokio::test]
#[ignore = "needs the AutobahnPython venv: run tests/interop/run.sh"]
async fn cra_with_an_unknown_key_is_refused_with_autobahn_wording() {
    limited(
        "cra_with_an_unknown_key_is_refused_with_autobahn_wording",
        async {
            let ab = PeerServer::autobahn(&[]);
            let c = ab.connect().await;
            let got = c.authenticate("nobody", "x").await;
            assert!(
                matches!(&got, Err(Error::AuthRefused { uri, desc, .. })
                if *uri == format!("{ERR}no-such-authkey")
                && desc == "authentication key 'nobody' does not exist."),
                "Autobahn refuses an unknown key with #no-such-authkey and its own wording; \
             got {got:?}\n{}",
                ab.frames_text(4)
            );
            c.close().await;
        },
    )
    .await
}
