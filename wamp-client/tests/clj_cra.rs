//! WAMP-CRA against a server that follows clj-wamp 1.0.2 (an opaque challenge, the signature
//! expected with key and message swapped, the permission-map result): the default style
//! (auto) and `clj-wamp` sign it as clj-wamp expects, with the exact vector of the research
//! notes; `standard` cannot sign it and says which style can; wrong secrets and unknown keys
//! get clj-wamp's own errors; `Client::authenticate` takes the same path and reads the map.

mod common;

use common::clj::*;
use common::within;
use serde_json::json;
use wamp_client::{Client, ConnectOptions, CraStyle, Error};

fn assert_clj_permissions(p: &wamp_client::Permissions) {
    assert!(p.may_call(ECHO));
    assert!(!p.may_call(PING), "not in the map: not allowed");
    assert!(p.may_subscribe(CHAT) && p.may_publish(CHAT));
    assert!(!p.may_subscribe("http://wamptutorial/event#other"));
}

#[tokio::test]
async fn auto_and_clj_wamp_styles_sign_the_opaque_challenge_as_clj_wamp_expects() {
    let server = CljServer::start().await;
    for style in [None, Some(CraStyle::Auto), Some(CraStyle::CljWamp)] {
        let mut options = ConnectOptions::new();
        if let Some(style) = style {
            options = options.cra_style(style);
        }
        let client = within(
            "a clj-wamp CRA connect",
            options.auth(KEY, SECRET).connect(&server.url()),
        )
        .await
        .unwrap_or_else(|e| panic!("{style:?}: {e}"));
        assert_eq!(client.session_id().as_deref(), Some(SESSION));
        assert_eq!(
            client.call(ECHO, vec![json!("hi")]).await.unwrap(),
            json!("hi"),
            "{style:?}: the server counts the session as authenticated"
        );
        client.close().await;
    }
    // The exact signature of the research notes, section 2.6(a), every time.
    assert_eq!(*server.signatures.lock().unwrap(), vec![CLJ_SIGNATURE; 3]);
}

#[tokio::test]
async fn authenticate_reads_the_permission_map() {
    let server = CljServer::start().await;
    let client = Client::connect(&server.url()).await.unwrap();
    // Before: clj-wamp's unauthorized error.
    let err = client.call(ECHO, vec![json!(1)]).await.unwrap_err();
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#unauthorized")
    );
    let permissions = client.authenticate(KEY, SECRET).await.unwrap();
    assert_clj_permissions(&permissions);
    assert_eq!(client.call(ECHO, vec![json!(1)]).await.unwrap(), json!(1));
    assert_eq!(*server.signatures.lock().unwrap(), vec![CLJ_SIGNATURE]);
}

#[tokio::test]
async fn the_standard_style_cannot_sign_an_opaque_challenge_and_says_which_style_can() {
    let server = CljServer::start().await;
    let err = ConnectOptions::new()
        .cra_style(CraStyle::Standard)
        .auth(KEY, SECRET)
        .connect(&server.url())
        .await
        .unwrap_err();
    match &err {
        Error::Auth(why) => {
            assert!(why.contains("invalid WAMP-CRA challenge"), "{why}");
            assert!(why.contains("clj-wamp or auto"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        server.signatures.lock().unwrap().is_empty(),
        "nothing was sent to auth"
    );
    // A wrong secret in the clj-wamp style is refused the same way.
    let err = ConnectOptions::new()
        .auth(KEY, "wrong")
        .connect(&server.url())
        .await
        .unwrap_err();
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#invalid-signature")
    );
    // And an unknown key before any signing.
    let err = ConnectOptions::new()
        .auth("nobody", SECRET)
        .connect(&server.url())
        .await
        .unwrap_err();
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#no-such-authkey")
    );
}

#[test]
fn the_mini_server_makes_the_documented_challenge() {
    // The server's own arithmetic, checked against the notes' vector, so the tests above
    // test the client against clj-wamp's numbers and not against themselves.
    let challenge = wamp_proto::cra::sign(&format!("{SECRET}-{MILLIS}-{SESSION}"), KEY);
    assert_eq!(challenge, CHALLENGE);
    assert_eq!(wamp_proto::cra::sign(CHALLENGE, SECRET), CLJ_SIGNATURE);
    assert_eq!(wamp_proto::cra::sign(SECRET, CHALLENGE), STANDARD_SIGNATURE);
}
