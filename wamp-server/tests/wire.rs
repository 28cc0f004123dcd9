//! Wire-level tests of the router: exact JSON frames over a real socket.

mod common;

use std::time::Duration;

use common::{test_router, Client, TestServer};
use serde_json::{json, Value};
use wamp_server::Topic;

#[tokio::test]
async fn welcome_is_first_with_a_random_session_id() {
    let server = TestServer::start(test_router().build()).await;
    let a = server.client().await;
    let b = server.client().await;
    assert_eq!(a.welcome[2], 1);
    assert_eq!(
        a.welcome[3],
        concat!("wamp-server/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(a.welcome.as_array().unwrap().len(), 4);
    assert_eq!(a.session_id.len(), 16);
    assert!(a
        .session_id
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    assert_ne!(a.session_id, b.session_id);
}

#[tokio::test]
async fn server_ident_is_configurable() {
    let server = TestServer::start(test_router().server_ident("my-app/2").build()).await;
    let c = server.client().await;
    assert_eq!(c.welcome[3], "my-app/2");
}

#[tokio::test]
async fn call_echo_exact_frame() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"0.arg98rkv3aowp14i","http://test/rpc#echo","test"]"#)
        .await;
    assert_eq!(c.recv_text().await, r#"[3,"0.arg98rkv3aowp14i","test"]"#);
}

#[tokio::test]
async fn call_with_no_arguments_null_and_several() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"a","http://test/rpc#echo"]"#).await;
    assert_eq!(c.recv_text().await, r#"[3,"a",null]"#);
    c.send(r#"[2,"b","http://test/rpc#args",null,1,"x",[true],{"k":{}}]"#)
        .await;
    assert_eq!(
        c.recv_text().await,
        r#"[3,"b",[null,1,"x",[true],{"k":{}}]]"#
    );
}

#[tokio::test]
async fn unknown_procedure_is_notfound() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"c1","http://test/rpc#nope"]"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"[4,"c1","http://api.wamp.ws/error#notfound","not found error"]"#
    );
    // An unknown prefix is not resolved: it names no procedure either.
    c.send(r#"[2,"c2","foo:echo"]"#).await;
    assert_eq!(c.recv().await[2], "http://api.wamp.ws/error#notfound");
}

#[tokio::test]
async fn application_errors_with_and_without_details() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"e1","http://test/rpc#fail"]"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"[4,"e1","http://test/error#too-big","1001 too big",1000]"#
    );
    c.send(r#"[2,"e2","http://test/rpc#fail-plain"]"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"[4,"e2","http://api.wamp.ws/error#generic","math domain error"]"#
    );
}

#[tokio::test]
async fn a_panicking_handler_gives_internal_and_the_server_goes_on() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"p","http://test/rpc#panic"]"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"[4,"p","http://api.wamp.ws/error#internal","internal error","boom"]"#
    );
    c.assert_alive().await;
    let mut other = server.client().await;
    other.assert_alive().await;
}

#[tokio::test]
async fn an_error_may_close_the_session_after_replying() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"k","http://test/rpc#kill"]"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"[4,"k","http://test/error#bye","bye"]"#
    );
    let (code, reason) = c.expect_close().await;
    assert_eq!(code, 3000);
    assert!(reason.contains("application"), "{reason}");
}

#[tokio::test]
async fn curies_resolve_at_the_first_colon() {
    let router = test_router().build();
    router.add_procedure("http://test/rpc#a:b", |_, _| async { Ok(json!("colon")) });
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send(r#"[1,"t","http://test/rpc#"]"#).await;
    c.expect_silence().await; // PREFIX has no reply
    assert_eq!(c.call("1", "t:echo", &[json!(5)]).await, json!([3, "1", 5]));
    assert_eq!(c.call("2", "t:a:b", &[]).await, json!([3, "2", "colon"]));
    // Redefinition overwrites.
    c.send(r#"[1,"t","http://elsewhere/"]"#).await;
    assert_eq!(c.call("3", "t:echo", &[]).await[0], 4);
}

#[tokio::test]
async fn prefixes_are_per_session() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.send(r#"[1,"t","http://test/rpc#"]"#).await;
    assert_eq!(a.call("1", "t:echo", &[json!(1)]).await, json!([3, "1", 1]));
    assert_eq!(b.call("1", "t:echo", &[json!(1)]).await[0], 4);
}

#[tokio::test]
async fn default_prefixes_and_session_override() {
    let router = test_router()
        .default_prefix("rpc", "http://test/rpc#")
        .build();
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", "rpc:echo", &[json!("x")]).await,
        json!([3, "1", "x"])
    );
    c.send(r#"[1,"rpc","http://nowhere/"]"#).await;
    assert_eq!(
        c.call("2", "rpc:echo", &[]).await[2],
        "http://api.wamp.ws/error#notfound"
    );
}

#[tokio::test]
async fn a_slow_call_does_not_delay_a_fast_one() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    c.send(r#"[2,"slow","http://test/rpc#sleep",400]"#).await;
    c.send(r#"[2,"fast","http://test/rpc#echo","quick"]"#).await;
    assert_eq!(c.recv().await, json!([3, "fast", "quick"]));
    assert_eq!(c.recv().await, json!([3, "slow", 400]));
}

#[tokio::test]
async fn typed_procedures_read_and_check_arguments() {
    let router = test_router()
        .typed_procedure("http://test/rpc#add2", |_, (a, b): (i64, i64)| async move {
            Ok::<_, wamp_server::CallError>(a + b)
        })
        .build();
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", "http://test/rpc#add2", &[json!(23), json!(99)])
            .await,
        json!([3, "1", 122])
    );
    let e = c
        .call("2", "http://test/rpc#add2", &[json!("x"), json!(1)])
        .await;
    assert_eq!(e[2], "http://api.wamp.ws/error#invalid-argument");
    assert!(e[3].as_str().unwrap().contains("invalid"), "{e}");
}

#[tokio::test]
async fn many_calls_get_exactly_one_reply_each() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    for i in 0..500 {
        let proc_uri = match i % 4 {
            0 => "http://test/rpc#echo",
            1 => "http://test/rpc#fail",
            2 => "http://test/rpc#nope",
            _ => "http://test/rpc#panic",
        };
        c.send_json(json!([2, format!("c{i}"), proc_uri, i])).await;
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..500 {
        let reply = c.recv().await;
        assert!(reply[0] == 3 || reply[0] == 4, "{reply}");
        assert!(
            seen.insert(reply[1].as_str().unwrap().to_string()),
            "duplicate {reply}"
        );
    }
    c.expect_silence().await;
}

// ---- PubSub -------------------------------------------------------------------------------

async fn subscribed(server: &TestServer, topic: &str) -> Client {
    let mut c = server.client().await;
    c.send_json(json!([5, topic])).await;
    // SUBSCRIBE has no reply; a round trip proves it was processed.
    c.assert_alive().await;
    c
}

#[tokio::test]
async fn publisher_receives_its_own_event_by_default_with_the_full_uri() {
    let router = test_router()
        .default_prefix("event", "http://test/event#")
        .build();
    let server = TestServer::start(router).await;
    let mut a = subscribed(&server, "event:chat").await;
    let mut b = subscribed(&server, "http://test/event#chat").await;
    a.send(r#"[7,"event:chat","foo"]"#).await;
    assert_eq!(a.recv_text().await, r#"[8,"http://test/event#chat","foo"]"#);
    assert_eq!(b.recv_text().await, r#"[8,"http://test/event#chat","foo"]"#);
}

#[tokio::test]
async fn the_autobahn_default_excludes_the_publisher() {
    let router = test_router().publisher_receives_own_events(false).build();
    let server = TestServer::start(router).await;
    let mut a = subscribed(&server, "http://test/event#t").await;
    let mut b = subscribed(&server, "http://test/event#t").await;
    a.send(r#"[7,"http://test/event#t",1]"#).await;
    assert_eq!(b.recv().await, json!([8, "http://test/event#t", 1]));
    a.expect_silence().await;
    // excludeMe false overrides the default.
    a.send(r#"[7,"http://test/event#t",2,false]"#).await;
    assert_eq!(a.recv().await, json!([8, "http://test/event#t", 2]));
    assert_eq!(b.recv().await, json!([8, "http://test/event#t", 2]));
}

#[tokio::test]
async fn exclude_me_and_a_null_fourth_element() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = subscribed(&server, "http://test/event#t").await;
    let mut b = subscribed(&server, "http://test/event#t").await;
    a.send(r#"[7,"http://test/event#t","x",true]"#).await;
    assert_eq!(b.recv().await, json!([8, "http://test/event#t", "x"]));
    a.expect_silence().await;
    // AutobahnPython's plain publish: null reads as absent (publisher receives).
    a.send(r#"[7,"http://test/event#t","y",null]"#).await;
    assert_eq!(a.recv().await, json!([8, "http://test/event#t", "y"]));
    assert_eq!(b.recv().await, json!([8, "http://test/event#t", "y"]));
}

#[tokio::test]
async fn exclude_and_eligible_lists_together() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = subscribed(&server, "http://test/event#t").await;
    let mut b = subscribed(&server, "http://test/event#t").await;
    let mut c = subscribed(&server, "http://test/event#t").await;
    let mut d = subscribed(&server, "http://test/event#t").await;
    // Exclude list only: everyone but b and c.
    a.send_json(json!([
        7,
        "http://test/event#t",
        1,
        [b.session_id, c.session_id]
    ]))
    .await;
    assert_eq!(a.recv().await[2], 1);
    assert_eq!(d.recv().await[2], 1);
    b.expect_silence().await;
    c.expect_silence().await;
    // Eligible only (empty exclude): b and c.
    a.send_json(json!([
        7,
        "http://test/event#t",
        2,
        [],
        [b.session_id, c.session_id]
    ]))
    .await;
    assert_eq!(b.recv().await[2], 2);
    assert_eq!(c.recv().await[2], 2);
    a.expect_silence().await;
    d.expect_silence().await;
    // Both: (subscribers ∩ {a, b, c}) − {b} = {a, c}; an unknown id is ignored.
    a.send_json(json!([
        7,
        "http://test/event#t",
        3,
        [b.session_id],
        [a.session_id, b.session_id, c.session_id, "nobody-xxxxxxxxx"]
    ]))
    .await;
    assert_eq!(a.recv().await[2], 3);
    assert_eq!(c.recv().await[2], 3);
    b.expect_silence().await;
    d.expect_silence().await;
    // excludeMe with an eligible list.
    a.send_json(json!([
        7,
        "http://test/event#t",
        4,
        true,
        [a.session_id, d.session_id]
    ]))
    .await;
    assert_eq!(d.recv().await[2], 4);
    a.expect_silence().await;
}

#[tokio::test]
async fn subscribe_twice_is_one_subscription_and_unsubscribe_stops_events() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = subscribed(&server, "http://test/event#t").await;
    a.send(r#"[5,"http://test/event#t"]"#).await;
    a.send(r#"[7,"http://test/event#t","once"]"#).await;
    assert_eq!(a.recv().await[2], "once");
    a.expect_silence().await;
    assert_eq!(
        server.router.subscribers("http://test/event#t"),
        vec![a.session_id.clone()]
    );
    a.send(r#"[6,"http://test/event#t"]"#).await;
    a.send(r#"[6,"http://test/event#never-subscribed"]"#).await;
    a.send(r#"[7,"http://test/event#t","gone"]"#).await;
    a.assert_alive().await;
    a.expect_silence().await;
    assert!(server.router.subscribers("http://test/event#t").is_empty());
}

#[tokio::test]
async fn topics_without_a_policy_are_closed() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = subscribed(&server, "http://other/topic").await;
    a.send(r#"[7,"http://other/topic","x"]"#).await;
    a.assert_alive().await;
    a.expect_silence().await;
    assert!(server.router.subscribers("http://other/topic").is_empty());
}

#[tokio::test]
async fn an_exact_deny_beats_a_wildcard_and_read_only_topics() {
    let router = test_router()
        .topic("http://test/event#closed", Topic::closed())
        .topic("http://test/event#news", Topic::open().deny_publish())
        .build();
    let server = TestServer::start(router).await;
    let mut a = subscribed(&server, "http://test/event#closed").await;
    assert!(server
        .router
        .subscribers("http://test/event#closed")
        .is_empty());
    a.send(r#"[5,"http://test/event#news"]"#).await;
    a.send(r#"[7,"http://test/event#news","x"]"#).await;
    a.assert_alive().await;
    a.expect_silence().await;
    assert_eq!(
        server
            .router
            .publish("http://test/event#news", "from server"),
        1
    );
    assert_eq!(
        a.recv().await,
        json!([8, "http://test/event#news", "from server"])
    );
}

#[tokio::test]
async fn a_publish_broker_may_rewrite_or_drop() {
    let router = test_router()
        .topic(
            "http://test/event#signed",
            Topic::open().on_publish(|ctx, mut p| async move {
                if p.event == json!("drop me") {
                    return None;
                }
                p.event = json!({"from": &*ctx.session_id, "msg": p.event});
                p.exclude.clear();
                Some(p)
            }),
        )
        .topic(
            "http://test/event#vip",
            Topic::open().on_subscribe(|ctx| async move { ctx.session_id.starts_with('A') }),
        )
        .build();
    let server = TestServer::start(router).await;
    let mut a = subscribed(&server, "http://test/event#signed").await;
    a.send(r#"[7,"http://test/event#signed","hi",true]"#).await;
    assert_eq!(
        a.recv().await,
        json!([8, "http://test/event#signed", {"from": a.session_id, "msg": "hi"}])
    );
    a.send(r#"[7,"http://test/event#signed","drop me"]"#).await;
    a.assert_alive().await;
    a.expect_silence().await;
    // The subscribe callback decides per session.
    let b = subscribed(&server, "http://test/event#vip").await;
    let subs = server.router.subscribers("http://test/event#vip");
    assert_eq!(subs.contains(&b.session_id), b.session_id.starts_with('A'));
}

#[tokio::test]
async fn a_hundred_sessions_exchange_events_without_loss() {
    let server = TestServer::start(test_router().build()).await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(subscribed(&server, "http://test/event#all").await);
    }
    // Every session publishes 5 events; every session must see all 500, each publisher's in
    // order.
    for (i, c) in clients.iter_mut().enumerate() {
        for n in 0..5 {
            c.send_json(json!([7, "http://test/event#all", [i, n]]))
                .await;
        }
    }
    let readers = clients.into_iter().map(|mut c| {
        tokio::spawn(async move {
            let mut next = vec![0u64; 100];
            for _ in 0..500 {
                let ev = c.recv().await;
                let (from, n) = (
                    ev[2][0].as_u64().unwrap() as usize,
                    ev[2][1].as_u64().unwrap(),
                );
                assert_eq!(next[from], n, "events of publisher {from} out of order");
                next[from] += 1;
            }
            c.expect_silence().await;
        })
    });
    for r in futures::future::join_all(readers).await {
        r.unwrap();
    }
}

#[tokio::test]
async fn server_side_publish_to_all_some_and_all_but_some() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = subscribed(&server, "http://test/event#s").await;
    let mut b = subscribed(&server, "http://test/event#s").await;
    let router = &server.router;
    let mut subs = router.subscribers("http://test/event#s");
    subs.sort();
    let mut want = vec![a.session_id.clone(), b.session_id.clone()];
    want.sort();
    assert_eq!(subs, want);
    assert_eq!(router.publish("http://test/event#s", json!({"n": 1})), 2);
    assert_eq!(a.recv().await, json!([8, "http://test/event#s", {"n": 1}]));
    assert_eq!(b.recv().await, json!([8, "http://test/event#s", {"n": 1}]));
    assert_eq!(
        router.publish_excluding("http://test/event#s", 2, &[a.session_id.clone()]),
        1
    );
    assert_eq!(b.recv().await[2], 2);
    assert_eq!(
        router.publish_to("http://test/event#s", 3, &[a.session_id.clone()]),
        1
    );
    assert_eq!(a.recv().await[2], 3);
    a.expect_silence().await;
    b.expect_silence().await;
    assert_eq!(router.publish("http://test/event#nobody", 4), 0);
}

#[tokio::test]
async fn close_a_session_from_the_server() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    assert!(server.router.close_session(&a.session_id, 4000, "bye now"));
    assert_eq!(a.expect_close().await, (4000, "bye now".to_string()));
    assert!(!server.router.close_session("no-such-session!", 4000, "x"));
    b.assert_alive().await;
}

#[tokio::test]
async fn close_session_cuts_long_reasons_and_refuses_codes_a_close_frame_may_not_carry() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = server.client().await;
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        assert!(
            !server.router.close_session(&a.session_id, code, "no"),
            "{code}"
        );
    }
    a.assert_alive().await;
    // 200 bytes of reason: the close frame carries the first 123 (a control frame's 125
    // bytes, less the code).
    let reason = "r".repeat(200);
    assert!(server.router.close_session(&a.session_id, 4000, &reason));
    assert_eq!(a.expect_close().await, (4000, "r".repeat(123)));
}

#[tokio::test]
async fn procedures_and_topics_change_at_runtime() {
    let server = TestServer::start(test_router().build()).await;
    let mut c = server.client().await;
    assert_eq!(c.call("1", "http://test/rpc#new", &[]).await[0], 4);
    assert!(server
        .router
        .add_procedure("http://test/rpc#new", |_, _| async { Ok(json!("new")) }));
    assert!(!server
        .router
        .add_procedure("http://test/rpc#new", |_, _| async { Ok(json!("dup")) }));
    assert_eq!(
        c.call("2", "http://test/rpc#new", &[]).await,
        json!([3, "2", "new"])
    );
    assert!(server.router.remove_procedure("http://test/rpc#new"));
    assert_eq!(
        c.call("3", "http://test/rpc#new", &[]).await[2],
        "http://api.wamp.ws/error#notfound"
    );

    c.send(r#"[5,"http://rt/topic"]"#).await;
    c.assert_alive().await;
    assert!(server.router.subscribers("http://rt/topic").is_empty());
    server.router.set_topic("http://rt/*", Topic::open());
    c.send(r#"[5,"http://rt/topic"]"#).await;
    c.send(r#"[7,"http://rt/topic","now"]"#).await;
    assert_eq!(c.recv().await, json!([8, "http://rt/topic", "now"]));
    assert!(server.router.remove_topic("http://rt/*"));
    c.send(r#"[7,"http://rt/topic","closed again"]"#).await;
    c.assert_alive().await;
    c.expect_silence().await;
}

#[tokio::test]
async fn two_routers_are_isolated() {
    let one = wamp_server::Router::builder()
        .procedure("http://x/who", |_, _| async { Ok(json!("one")) })
        .topic("*", Topic::open())
        .build();
    let two = wamp_server::Router::builder()
        .procedure("http://x/who", |_, _| async { Ok(json!("two")) })
        .topic("*", Topic::open())
        .build();
    let s1 = TestServer::start(one).await;
    let s2 = TestServer::start(two).await;
    let mut a = s1.client().await;
    let mut b = s2.client().await;
    assert_eq!(a.call("1", "http://x/who", &[]).await[2], "one");
    assert_eq!(b.call("1", "http://x/who", &[]).await[2], "two");
    b.send(r#"[5,"http://x/t"]"#).await;
    a.send(r#"[5,"http://x/t"]"#).await;
    a.send(r#"[7,"http://x/t","only one",true]"#).await;
    a.expect_silence().await;
    b.expect_silence().await;
    assert_eq!(s1.router.session_count(), 1);
    assert_eq!(s2.router.session_count(), 1);
}

#[tokio::test]
async fn hooks_see_the_session_story() {
    use std::sync::{Arc, Mutex};
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = |log: &Arc<Mutex<Vec<String>>>| log.clone();
    let (l1, l2, l3, l4, l5, l6) = (l(&log), l(&log), l(&log), l(&log), l(&log), l(&log));
    let router = test_router()
        .on_session_open(move |_| l1.lock().unwrap().push("open".into()))
        .on_session_close(move |_, reason| l2.lock().unwrap().push(format!("close: {reason}")))
        .on_subscribe(move |_, t| l3.lock().unwrap().push(format!("sub {t}")))
        .on_unsubscribe(move |_, t| l4.lock().unwrap().push(format!("unsub {t}")))
        .on_publish(move |_, t, e| l5.lock().unwrap().push(format!("pub {t} {e}")))
        .before_call(|ctx, mut args| {
            if ctx.procedure.ends_with("#fail") {
                return Err(wamp_server::CallError::unauthorized());
            }
            args.push(json!("added"));
            Ok(args)
        })
        .after_call(move |ctx, r| {
            l6.lock()
                .unwrap()
                .push(format!("called {} ok={}", ctx.procedure, r.is_ok()))
        })
        .build();
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    c.send(r#"[5,"http://test/event#a"]"#).await;
    c.send(r#"[5,"http://test/event#b"]"#).await;
    c.send(r#"[6,"http://test/event#a"]"#).await;
    c.send(r#"[7,"http://test/event#b",7]"#).await;
    assert_eq!(c.recv().await[2], 7);
    assert_eq!(
        c.call("1", "http://test/rpc#args", &[json!(1)]).await,
        json!([3, "1", [1, "added"]])
    );
    assert_eq!(
        c.call("2", "http://test/rpc#fail", &[]).await,
        json!([
            4,
            "2",
            "http://api.wamp.ws/error#unauthorized",
            "unauthorized"
        ])
    );
    c.ws.close(None).await.unwrap();
    // Wait for the close hook.
    for _ in 0..100 {
        if log.lock().unwrap().iter().any(|l| l.starts_with("close")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            "open",
            "sub http://test/event#a",
            "sub http://test/event#b",
            "unsub http://test/event#a",
            "pub http://test/event#b 7",
            "called http://test/rpc#args ok=true",
            "called http://test/rpc#fail ok=false",
            "unsub http://test/event#b",
            "close: closed by the client",
        ]
    );
}

#[tokio::test]
async fn events_and_replies_keep_their_json_exactly() {
    let server = TestServer::start(test_router().build()).await;
    let mut a = subscribed(&server, "http://test/event#t").await;
    let event =
        r#"{"f":1.0000000000000002,"big":18446744073709551615,"neg":-1e-300,"s":"é\u0000\""}"#;
    a.send(&format!(r#"[7,"http://test/event#t",{event}]"#))
        .await;
    let got: Value = a.recv().await;
    let want: Value = serde_json::from_str(event).unwrap();
    assert_eq!(got[2], want);
}

#[tokio::test]
async fn panicking_hooks_are_internal_errors_not_dead_sessions() {
    let router = test_router()
        .before_call(|ctx, args| {
            if ctx.procedure.ends_with("#args") {
                panic!("before_call broke");
            }
            Ok(args)
        })
        .after_call(|ctx, _| {
            if ctx.procedure.ends_with("#fail-plain") {
                panic!("after_call broke");
            }
        })
        .build();
    let server = TestServer::start(router).await;
    let mut c = server.client().await;
    assert_eq!(
        c.call("1", "http://test/rpc#args", &[]).await,
        json!([
            4,
            "1",
            "http://api.wamp.ws/error#internal",
            "internal error",
            "before_call broke"
        ])
    );
    // The reply still goes out when the after_call hook panics.
    assert_eq!(
        c.call("2", "http://test/rpc#fail-plain", &[]).await[2],
        "http://api.wamp.ws/error#generic"
    );
    c.assert_alive().await;
}
