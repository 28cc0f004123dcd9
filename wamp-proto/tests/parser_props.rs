//! Property tests: the parser returns on any input (never panics), and whatever parses
//! encodes back to an equal message.

use proptest::prelude::*;
use serde_json::Value;
use wamp_proto::{Exclude, Message};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arrays that look like WAMP messages: a small type id (sometimes invalid) followed by
/// random elements, so that most branches of the parser are reached.
fn message_like() -> impl Strategy<Value = Value> {
    (
        prop_oneof![0u64..=9, any::<u64>()],
        prop::collection::vec(
            prop_oneof![
                3 => ".{0,10}".prop_map(Value::String),
                1 => json_value(),
                1 => prop::collection::vec(".{0,4}".prop_map(Value::String), 0..3).prop_map(|v| Value::Array(v.into_iter().collect())),
            ],
            0..7,
        ),
    )
        .prop_map(|(id, rest)| {
            let mut items = vec![Value::from(id)];
            items.extend(rest);
            Value::Array(items)
        })
}

fn ids() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[A-Za-z0-9_-]{16}", 0..4)
}

fn message() -> impl Strategy<Value = Message> {
    let s = || ".{0,16}";
    prop_oneof![
        (s(), any::<i64>(), s()).prop_map(|(a, v, b)| Message::Welcome {
            session_id: a,
            protocol_version: v,
            server_ident: b
        }),
        (s(), s()).prop_map(|(prefix, uri)| Message::Prefix { prefix, uri }),
        (s(), s(), prop::collection::vec(json_value(), 0..5)).prop_map(|(c, p, args)| {
            Message::Call {
                call_id: c,
                proc_uri: p,
                args,
            }
        }),
        (s(), json_value()).prop_map(|(c, result)| Message::CallResult { call_id: c, result }),
        (
            s(),
            s(),
            s(),
            prop::option::of(json_value().prop_filter("not null", |v| !v.is_null()))
        )
            .prop_map(|(c, u, d, details)| Message::CallError {
                call_id: c,
                error_uri: u,
                error_desc: d,
                error_details: details,
            }),
        s().prop_map(|t| Message::Subscribe { topic_uri: t }),
        s().prop_map(|t| Message::Unsubscribe { topic_uri: t }),
        (
            s(),
            json_value(),
            prop::option::of(prop_oneof![
                any::<bool>().prop_map(Exclude::Me),
                ids().prop_map(Exclude::Sessions)
            ]),
            prop::option::of(ids())
        )
            .prop_map(|(t, event, exclude, eligible)| {
                // The canonical form: an eligible list always comes with some exclude.
                let exclude = match (&exclude, &eligible) {
                    (None, Some(_)) => Some(Exclude::Sessions(vec![])),
                    _ => exclude,
                };
                Message::Publish {
                    topic_uri: t,
                    event,
                    exclude,
                    eligible,
                }
            }),
        (s(), json_value()).prop_map(|(t, event)| Message::Event {
            topic_uri: t,
            event
        }),
    ]
}

fn check_round_trip(text: &str) -> Result<(), TestCaseError> {
    // Reading from text and reading from an already parsed Value accept the same messages.
    let via_value = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| Message::from_value(v).ok());
    prop_assert_eq!(Message::from_json(text).ok(), via_value);
    if let Ok(msg) = Message::from_json(text) {
        let again = Message::from_json(&msg.to_json())
            .map_err(|e| TestCaseError::fail(format!("re-parse of {msg:?} failed: {e}")))?;
        prop_assert_eq!(again, msg);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn random_json_never_panics(v in json_value()) {
        check_round_trip(&v.to_string())?;
    }

    #[test]
    fn message_like_arrays_never_panic(v in message_like()) {
        check_round_trip(&v.to_string())?;
    }

    #[test]
    fn random_strings_never_panic(s in ".{0,64}") {
        check_round_trip(&s)?;
    }

    #[test]
    fn messages_round_trip(m in message()) {
        let text = m.to_json();
        let back = Message::from_json(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, m);
    }
}
