//! WAMP-CRA through the client against the real server: success (plain and salted secrets),
//! the permissions returned, and failures.

mod common;

use common::*;
use serde_json::{json, Map, Value};
use wamp_client::{ConnectOptions, Error};

#[tokio::test]
async fn authenticate_returns_the_permissions_and_grants_them() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    // Before authenticating, whoami is not allowed: a plain CALLERROR.
    let err = client.call("rpc:whoami", vec![]).await.unwrap_err();
    assert!(matches!(err, Error::CallError { .. }), "{err:?}");
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#unauthorized")
    );

    let permissions = client
        .authenticate("guest", "secret-password")
        .await
        .unwrap();
    assert!(permissions.may_call(&format!("{RPC}whoami")));
    assert!(permissions.may_call(&format!("{RPC}echo")));
    assert!(!permissions.may_call(&format!("{RPC}ping")));
    assert!(permissions.may_subscribe(CHAT));

    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("guest")
    );
    // A second authentication is refused by the server.
    let err = client
        .authenticate("guest", "secret-password")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthRefused { .. }), "{err:?}");
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#already-authenticated")
    );
}

#[tokio::test]
async fn salted_secrets_are_derived_with_pbkdf2() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let permissions = client.authenticate("salted", "secret").await.unwrap();
    assert!(permissions.may_call(&format!("{RPC}whoami")));
    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("salted")
    );
}

#[tokio::test]
async fn extra_goes_into_the_challenge() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let extra: Map<String, Value> = serde_json::from_value(json!({"client": "test"})).unwrap();
    client
        .authenticate_with_extra("guest", "secret-password", Some(extra))
        .await
        .unwrap();
    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("guest")
    );
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let err = client.authenticate("guest", "wrong").await.unwrap_err();
    match &err {
        Error::AuthRefused { uri, desc, .. } => {
            assert_eq!(uri, "http://api.wamp.ws/error#invalid-signature");
            assert_eq!(desc, "signature for authentication request is invalid");
        }
        other => panic!("{other:?}"),
    }
    // Still unauthenticated, still connected; a new attempt with the right secret works.
    assert!(client.call("rpc:whoami", vec![]).await.is_err());
    client
        .authenticate("guest", "secret-password")
        .await
        .unwrap();
    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("guest")
    );
}

#[tokio::test]
async fn an_unknown_key_is_refused() {
    let server = TestServer::start(tutorial()).await;
    let client = server.client().await;
    let err = client.authenticate("nobody", "x").await.unwrap_err();
    assert!(matches!(err, Error::AuthRefused { .. }), "{err:?}");
    assert_eq!(
        err.call_error_uri(),
        Some("http://api.wamp.ws/error#no-such-authkey")
    );
}

#[tokio::test]
async fn connect_options_authenticate_before_anything_else() {
    let server = TestServer::start(tutorial()).await;
    let client = server
        .client_with(ConnectOptions::new().auth("guest", "secret-password"))
        .await;
    assert_eq!(
        client.call("rpc:whoami", vec![]).await.unwrap(),
        json!("guest")
    );
}

#[tokio::test]
async fn connect_fails_when_its_authentication_does() {
    let server = TestServer::start(tutorial()).await;
    let err = within(
        "connect",
        ConnectOptions::new()
            .auth("guest", "wrong")
            .connect(&server.url()),
    )
    .await
    .unwrap_err();
    match &err {
        Error::AuthRefused { uri, desc, .. } => {
            assert_eq!(uri, "http://api.wamp.ws/error#invalid-signature");
            assert_eq!(desc, "signature for authentication request is invalid");
        }
        other => panic!("a refused authentication must be AuthRefused, got {other:?}"),
    }
    assert!(!err.is_connection_error());
    assert!(
        err.to_string().starts_with("authentication refused: "),
        "{err}"
    );

    // An unknown key, refused at `authreq` already.
    let err = within(
        "connect",
        ConnectOptions::new()
            .auth("nobody", "x")
            .connect(&server.url()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::AuthRefused { uri, .. } if uri.ends_with("#no-such-authkey")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_without_wamp_cra_refuses_authentication() {
    // A router whose authreq is an unknown procedure: the refusal is still AuthRefused.
    let server = TestServer::start(wamp_server::Router::builder().build()).await;
    let client = server.client().await;
    let err = client.authenticate("guest", "x").await.unwrap_err();
    assert!(matches!(err, Error::AuthRefused { .. }), "{err:?}");
    let err = within(
        "connect",
        ConnectOptions::new()
            .auth("guest", "x")
            .connect(&server.url()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AuthRefused { .. }), "{err:?}");
}
