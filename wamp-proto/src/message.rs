//! The nine WAMP v1 messages and their JSON array encoding (`docs/PROTOCOL.md` section 2).

use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

use crate::error::Error;

/// Type id of WELCOME (server to client).
pub const TYPE_WELCOME: u64 = 0;
/// Type id of PREFIX (client to server).
pub const TYPE_PREFIX: u64 = 1;
/// Type id of CALL (client to server).
pub const TYPE_CALL: u64 = 2;
/// Type id of CALLRESULT (server to client).
pub const TYPE_CALLRESULT: u64 = 3;
/// Type id of CALLERROR (server to client).
pub const TYPE_CALLERROR: u64 = 4;
/// Type id of SUBSCRIBE (client to server).
pub const TYPE_SUBSCRIBE: u64 = 5;
/// Type id of UNSUBSCRIBE (client to server).
pub const TYPE_UNSUBSCRIBE: u64 = 6;
/// Type id of PUBLISH (client to server).
pub const TYPE_PUBLISH: u64 = 7;
/// Type id of EVENT (server to client).
pub const TYPE_EVENT: u64 = 8;

/// The WAMP protocol version that WELCOME announces.
pub const PROTOCOL_VERSION: i64 = 1;

/// Who a PUBLISH excludes: element 3 of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclude {
    /// `excludeMe`: `true` leaves the publisher out, `false` keeps it in even where a
    /// router's default would leave it out.
    Me(bool),
    /// These session ids do not receive the event.
    Sessions(Vec<String>),
}

/// One WAMP v1 message.
///
/// Parse a text frame with [`Message::from_json`] and encode one with [`Message::to_json`].
/// URIs are carried exactly as sent: resolving CURIEs is [`crate::uri::Prefixes`]'s job.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `[0, sessionId, protocolVersion, serverIdent]`: the server's first message.
    Welcome {
        /// The session id the server gave this connection.
        session_id: String,
        /// Always 1 for WAMP v1.
        protocol_version: i64,
        /// Free text naming the server software, e.g. `wamp-server/0.1.0`.
        server_ident: String,
    },
    /// `[1, prefix, uri]`: defines a CURIE prefix for this session.
    Prefix {
        /// The short name, e.g. `rpc`.
        prefix: String,
        /// The URI it stands for, e.g. `http://wamptutorial/rpc#`.
        uri: String,
    },
    /// `[2, callId, procUri, arg1, …, argN]`: a remote procedure call.
    Call {
        /// The caller's id for this call, echoed in the reply.
        call_id: String,
        /// The procedure's URI or CURIE.
        proc_uri: String,
        /// The positional arguments, zero or more, any JSON values.
        args: Vec<Value>,
    },
    /// `[3, callId, result]`: a call succeeded.
    CallResult {
        /// The id of the call this answers.
        call_id: String,
        /// The result; `null` when the procedure returned nothing.
        result: Value,
    },
    /// `[4, callId, errorUri, errorDesc(, errorDetails)]`: a call failed.
    CallError {
        /// The id of the call this answers.
        call_id: String,
        /// What kind of error, as a URI.
        error_uri: String,
        /// A description for a developer; may be empty.
        error_desc: String,
        /// Application-defined details. `None` leaves element 4 out; it is never `null` on the
        /// wire (a `null` received in element 4 reads as `None`).
        error_details: Option<Value>,
    },
    /// `[5, topicUri]`: subscribe to a topic.
    Subscribe {
        /// The topic's URI or CURIE.
        topic_uri: String,
    },
    /// `[6, topicUri]`: unsubscribe from a topic.
    Unsubscribe {
        /// The topic's URI or CURIE.
        topic_uri: String,
    },
    /// `[7, topicUri, event(, exclude(, eligible))]`: publish an event.
    ///
    /// The four forms of `docs/PROTOCOL.md` section 2 map as follows: no element 3 is `exclude: None`;
    /// a boolean is [`Exclude::Me`]; a list is [`Exclude::Sessions`]; element 4 is `eligible`.
    /// A `null` in element 3 or 4 reads as absent (AutobahnPython 0.8 sends
    /// `[7, topic, event, null]`); a `null` exclude before an eligible list reads as an empty
    /// exclude list. [`Message::to_json`] writes the shortest form that says the same.
    Publish {
        /// The topic's URI or CURIE.
        topic_uri: String,
        /// The event payload, any JSON value.
        event: Value,
        /// Who is left out, if anyone.
        exclude: Option<Exclude>,
        /// If present, only these sessions may receive the event.
        eligible: Option<Vec<String>>,
    },
    /// `[8, topicUri, event]`: an event the client subscribed to.
    Event {
        /// The topic's full URI.
        topic_uri: String,
        /// The event payload.
        event: Value,
    },
}

impl Message {
    /// The message's type id (element 0).
    pub fn type_id(&self) -> u64 {
        match self {
            Message::Welcome { .. } => TYPE_WELCOME,
            Message::Prefix { .. } => TYPE_PREFIX,
            Message::Call { .. } => TYPE_CALL,
            Message::CallResult { .. } => TYPE_CALLRESULT,
            Message::CallError { .. } => TYPE_CALLERROR,
            Message::Subscribe { .. } => TYPE_SUBSCRIBE,
            Message::Unsubscribe { .. } => TYPE_UNSUBSCRIBE,
            Message::Publish { .. } => TYPE_PUBLISH,
            Message::Event { .. } => TYPE_EVENT,
        }
    }

    /// The message's name in capitals, as the spec writes it (`"CALL"`).
    pub fn name(&self) -> &'static str {
        type_name(self.type_id()).unwrap_or("UNKNOWN")
    }

    /// True for the types a client sends (PREFIX, CALL, SUBSCRIBE, UNSUBSCRIBE, PUBLISH).
    pub fn is_client_to_server(&self) -> bool {
        matches!(
            self,
            Message::Prefix { .. }
                | Message::Call { .. }
                | Message::Subscribe { .. }
                | Message::Unsubscribe { .. }
                | Message::Publish { .. }
        )
    }

    /// Parses one text frame. Never panics: any input that is not a well-formed WAMP v1
    /// message gives an [`Error`] naming the element that was wrong and what was expected.
    pub fn from_json(text: &str) -> Result<Message, Error> {
        crate::decode::decode(text)
    }

    /// Reads a message from an already parsed JSON value, with the same rules and errors as
    /// [`Message::from_json`] (one reader serves both).
    pub fn from_value(value: Value) -> Result<Message, Error> {
        crate::decode::decode_value(value)
    }

    /// Encodes the message as the JSON array text of one WebSocket frame.
    pub fn to_json(&self) -> String {
        // Serialising a Message cannot fail: every key is a string and every value is JSON.
        serde_json::to_string(self).expect("a WAMP message always serialises")
    }
}

/// Encodes `[8, topicUri, event]` from borrowed parts, without building a [`Message`]: a
/// router serialises each published event once this way and sends the same text to every
/// recipient.
pub fn event_json(topic_uri: &str, event: &Value) -> String {
    serde_json::to_string(&(TYPE_EVENT, topic_uri, event)).expect("an EVENT always serialises")
}

/// Encodes `[3, callId, result]` from borrowed parts.
pub fn call_result_json(call_id: &str, result: &Value) -> String {
    serde_json::to_string(&(TYPE_CALLRESULT, call_id, result))
        .expect("a CALLRESULT always serialises")
}

/// The spec's name for a type id, or `None` for an id WAMP v1 does not define.
pub fn type_name(type_id: u64) -> Option<&'static str> {
    Some(match type_id {
        TYPE_WELCOME => "WELCOME",
        TYPE_PREFIX => "PREFIX",
        TYPE_CALL => "CALL",
        TYPE_CALLRESULT => "CALLRESULT",
        TYPE_CALLERROR => "CALLERROR",
        TYPE_SUBSCRIBE => "SUBSCRIBE",
        TYPE_UNSUBSCRIBE => "UNSUBSCRIBE",
        TYPE_PUBLISH => "PUBLISH",
        TYPE_EVENT => "EVENT",
        _ => return None,
    })
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Message::Welcome {
                session_id,
                protocol_version,
                server_ident,
            } => {
                let mut s = serializer.serialize_seq(Some(4))?;
                s.serialize_element(&TYPE_WELCOME)?;
                s.serialize_element(session_id)?;
                s.serialize_element(protocol_version)?;
                s.serialize_element(server_ident)?;
                s.end()
            }
            Message::Prefix { prefix, uri } => {
                let mut s = serializer.serialize_seq(Some(3))?;
                s.serialize_element(&TYPE_PREFIX)?;
                s.serialize_element(prefix)?;
                s.serialize_element(uri)?;
                s.end()
            }
            Message::Call {
                call_id,
                proc_uri,
                args,
            } => {
                let mut s = serializer.serialize_seq(Some(3 + args.len()))?;
                s.serialize_element(&TYPE_CALL)?;
                s.serialize_element(call_id)?;
                s.serialize_element(proc_uri)?;
                for arg in args {
                    s.serialize_element(arg)?;
                }
                s.end()
            }
            Message::CallResult { call_id, result } => {
                let mut s = serializer.serialize_seq(Some(3))?;
                s.serialize_element(&TYPE_CALLRESULT)?;
                s.serialize_element(call_id)?;
                s.serialize_element(result)?;
                s.end()
            }
            Message::CallError {
                call_id,
                error_uri,
                error_desc,
                error_details,
            } => {
                let details = error_details.as_ref().filter(|d| !d.is_null());
                let mut s = serializer.serialize_seq(Some(4 + details.is_some() as usize))?;
                s.serialize_element(&TYPE_CALLERROR)?;
                s.serialize_element(call_id)?;
                s.serialize_element(error_uri)?;
                s.serialize_element(error_desc)?;
                if let Some(details) = details {
                    s.serialize_element(details)?;
                }
                s.end()
            }
            Message::Subscribe { topic_uri } | Message::Unsubscribe { topic_uri } => {
                let mut s = serializer.serialize_seq(Some(2))?;
                s.serialize_element(&self.type_id())?;
                s.serialize_element(topic_uri)?;
                s.end()
            }
            Message::Publish {
                topic_uri,
                event,
                exclude,
                eligible,
            } => {
                let len = if eligible.is_some() {
                    5
                } else if exclude.is_some() {
                    4
                } else {
                    3
                };
                let mut s = serializer.serialize_seq(Some(len))?;
                s.serialize_element(&TYPE_PUBLISH)?;
                s.serialize_element(topic_uri)?;
                s.serialize_element(event)?;
                if len >= 4 {
                    match exclude {
                        Some(Exclude::Me(b)) => s.serialize_element(b)?,
                        Some(Exclude::Sessions(ids)) => s.serialize_element(ids)?,
                        None => s.serialize_element(&[] as &[String])?,
                    }
                }
                if let Some(eligible) = eligible {
                    s.serialize_element(eligible)?;
                }
                s.end()
            }
            Message::Event { topic_uri, event } => {
                let mut s = serializer.serialize_seq(Some(3))?;
                s.serialize_element(&TYPE_EVENT)?;
                s.serialize_element(topic_uri)?;
                s.serialize_element(event)?;
                s.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses `text`, checks it encodes back to exactly `text` (whitespace-free form) and
    /// returns the message.
    fn round_trip(text: &str) -> Message {
        let msg = Message::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(msg.to_json(), text, "re-encoding {msg:?}");
        msg
    }

    #[test]
    fn seed_tutorial_frames_round_trip() {
        // Every frame of the seed tutorial (clj-wamp-tutorial.txt).
        round_trip(r#"[0,"1372019248579-1",1,"clj-wamp/1.0.0"]"#);
        round_trip(r#"[1,"event","http://wamptutorial/event#"]"#);
        round_trip(r#"[1,"rpc","http://wamptutorial/rpc#"]"#);
        round_trip(r#"[5,"event:chat"]"#);
        round_trip(r#"[7,"event:chat","foo"]"#);
        round_trip(r#"[8,"http://wamptutorial/event#chat","foo"]"#);
        round_trip(r#"[2,"0.arg98rkv3aowp14i","rpc:echo","test"]"#);
        round_trip(r#"[3,"0.arg98rkv3aowp14i","test"]"#);
        round_trip(r#"[2,"0.wg3eowm7t6pf1or","rpc:throw"]"#);
        let err = round_trip(
            r#"[4,"0.wg3eowm7t6pf1or","http://api.wamp.ws/error#internal","internal error","An exception"]"#,
        );
        assert_eq!(
            err,
            Message::CallError {
                call_id: "0.wg3eowm7t6pf1or".into(),
                error_uri: "http://api.wamp.ws/error#internal".into(),
                error_desc: "internal error".into(),
                error_details: Some(json!("An exception")),
            }
        );
        round_trip(r#"[4,"0.xyz","http://api.wamp.ws/error#unauthorized","unauthorized"]"#);
    }

    #[test]
    fn spec_frames_round_trip() {
        let w = round_trip(r#"[0,"v59mbCGDXZ7WTyxB",1,"Autobahn/0.5.1"]"#);
        assert_eq!(
            w,
            Message::Welcome {
                session_id: "v59mbCGDXZ7WTyxB".into(),
                protocol_version: 1,
                server_ident: "Autobahn/0.5.1".into()
            }
        );
        round_trip(r#"[1,"calc","http://example.com/simple/calc#"]"#);
        let c = round_trip(r#"[2,"7DK6TdN4wLiUJgNM","http://example.com/api#howdy"]"#);
        assert!(matches!(c, Message::Call { ref args, .. } if args.is_empty()));
        let c = round_trip(r#"[2,"Yp9EFZt9DFkuKndg","api:add2",23,99]"#);
        assert!(matches!(c, Message::Call { ref args, .. } if args == &[json!(23), json!(99)]));
        let c = round_trip(r#"[2,"Dns3wuQo0ipOX1Xc","http://example.com/api#woooat",null]"#);
        assert!(matches!(c, Message::Call { ref args, .. } if args == &[Value::Null]));
        round_trip(r#"[3,"CcDnuI2bl2oLGBzO",null]"#);
        round_trip(
            r#"[4,"gwbN3EDtFv6JvNV5","http://autobahn.tavendo.de/error#generic","math domain error"]"#,
        );
        round_trip(
            r#"[4,"7bVW5pv8r60ZeL6u","http://example.com/error#number_too_big","1001 too big for me, max is 1000",1000]"#,
        );
        round_trip(r#"[5,"http://example.com/simple"]"#);
        round_trip(r#"[6,"event:myevent1"]"#);
        round_trip(r#"[8,"http://example.com/simple","Hello, I am a simple event."]"#);
    }

    #[test]
    fn the_four_publish_forms() {
        let p = round_trip(r#"[7,"event:myevent1","hello"]"#);
        assert!(matches!(
            p,
            Message::Publish {
                exclude: None,
                eligible: None,
                ..
            }
        ));
        let p = round_trip(r#"[7,"event:myevent1","hello",true]"#);
        assert!(matches!(
            p,
            Message::Publish {
                exclude: Some(Exclude::Me(true)),
                ..
            }
        ));
        let p = round_trip(r#"[7,"event:myevent1","hello",false]"#);
        assert!(matches!(
            p,
            Message::Publish {
                exclude: Some(Exclude::Me(false)),
                ..
            }
        ));
        let p =
            round_trip(r#"[7,"event:myevent1","hello",["NwtXQ8rdfPsy-ewS","dYqgDl0FthI6_hjb"]]"#);
        assert_eq!(
            p,
            Message::Publish {
                topic_uri: "event:myevent1".into(),
                event: json!("hello"),
                exclude: Some(Exclude::Sessions(vec![
                    "NwtXQ8rdfPsy-ewS".into(),
                    "dYqgDl0FthI6_hjb".into()
                ])),
                eligible: None,
            }
        );
        let p = round_trip(r#"[7,"event:myevent1","hello",[],["NwtXQ8rdfPsy-ewS"]]"#);
        assert_eq!(
            p,
            Message::Publish {
                topic_uri: "event:myevent1".into(),
                event: json!("hello"),
                exclude: Some(Exclude::Sessions(vec![])),
                eligible: Some(vec!["NwtXQ8rdfPsy-ewS".into()]),
            }
        );
        round_trip(r#"[7,"t",{"a":[1,2]},true,["x"]]"#);
    }

    #[test]
    fn publish_nulls_read_as_absent() {
        // AutobahnPython 0.8's client sends a null excludeMe for a plain publish.
        let p = Message::from_json(r#"[7,"t","e",null]"#).unwrap();
        assert_eq!(p.to_json(), r#"[7,"t","e"]"#);
        let p = Message::from_json(r#"[7,"t","e",null,null]"#).unwrap();
        assert_eq!(p.to_json(), r#"[7,"t","e"]"#);
        let p = Message::from_json(r#"[7,"t","e",null,["a"]]"#).unwrap();
        assert_eq!(p.to_json(), r#"[7,"t","e",[],["a"]]"#);
        let p = Message::from_json(r#"[7,"t","e",["a"],null]"#).unwrap();
        assert_eq!(p.to_json(), r#"[7,"t","e",["a"]]"#);
    }

    #[test]
    fn callerror_null_details_are_absent() {
        let e = Message::from_json(r#"[4,"c","u","d",null]"#).unwrap();
        assert_eq!(e.to_json(), r#"[4,"c","u","d"]"#);
        let e = Message::CallError {
            call_id: "c".into(),
            error_uri: "u".into(),
            error_desc: "d".into(),
            error_details: Some(Value::Null),
        };
        assert_eq!(e.to_json(), r#"[4,"c","u","d"]"#);
    }

    #[test]
    fn strings_are_escaped() {
        let m = Message::Event {
            topic_uri: "http://x/\"q\"".into(),
            event: json!("line\nbreak \u{1F600} \\"),
        };
        let text = m.to_json();
        assert_eq!(text, r#"[8,"http://x/\"q\"","line\nbreak 😀 \\"]"#);
        assert_eq!(Message::from_json(&text).unwrap(), m);
    }

    #[test]
    fn whitespace_is_accepted() {
        let m = Message::from_json(" [ 5 ,\n \"event:chat\" ] ").unwrap();
        assert_eq!(
            m,
            Message::Subscribe {
                topic_uri: "event:chat".into()
            }
        );
    }

    #[test]
    fn errors_name_the_element() {
        let cases: &[(&str, &str)] = &[
            ("", "invalid JSON"),
            ("[2,\"a\"", "invalid JSON"),
            ("{\"a\":1}", "must be a JSON array, got an object"),
            ("\"x\"", "must be a JSON array, got a string"),
            ("[]", "empty array"),
            (
                "[\"2\",\"a\",\"b\"]",
                "element 0 (message type) must be an integer",
            ),
            ("[-1,\"a\"]", "element 0 (message type) must be an integer"),
            ("[2.5,\"a\"]", "element 0 (message type) must be an integer"),
            ("[9,\"a\"]", "unknown message type id 9"),
            (
                "[18446744073709551615]",
                "unknown message type id 18446744073709551615",
            ),
            ("[2]", "CALL is missing element 1 (the call id, a string)"),
            (
                "[2,\"id\"]",
                "CALL is missing element 2 (the procedure URI, a string)",
            ),
            (
                "[2,5,\"p\"]",
                "CALL element 1 must be the call id, a string, got a number",
            ),
            (
                "[2,\"id\",null]",
                "CALL element 2 must be the procedure URI, a string, got null",
            ),
            ("[1,\"p\"]", "PREFIX is missing element 2"),
            (
                "[1,\"p\",\"u\",\"x\"]",
                "PREFIX has 4 elements, at most 3 are allowed",
            ),
            ("[5]", "SUBSCRIBE is missing element 1"),
            ("[5,\"t\",\"x\"]", "SUBSCRIBE has 3 elements, at most 2"),
            (
                "[6,{}]",
                "UNSUBSCRIBE element 1 must be the topic URI, a string, got an object",
            ),
            (
                "[7,\"t\"]",
                "PUBLISH is missing element 2 (the event, any JSON value)",
            ),
            (
                "[7,\"t\",1,\"me\"]",
                "PUBLISH element 3 must be excludeMe (a boolean) or a list",
            ),
            (
                "[7,\"t\",1,[1]]",
                "PUBLISH element 3 must be a list of session ids (strings), got a number",
            ),
            (
                "[7,\"t\",1,[],true]",
                "PUBLISH element 4 must be a list of session ids, got a boolean",
            ),
            ("[7,\"t\",1,[],[],1]", "PUBLISH has 6 elements, at most 5"),
            (
                "[0,\"s\",\"1\",\"x\"]",
                "WELCOME element 2 must be the protocol version, an integer, got a string",
            ),
            ("[3,\"c\"]", "CALLRESULT is missing element 2"),
            ("[4,\"c\",\"u\"]", "CALLERROR is missing element 3"),
            ("[8,\"t\"]", "EVENT is missing element 2"),
        ];
        for (input, want) in cases {
            let err = Message::from_json(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn borrowed_encoders_match_message() {
        let event = json!({"a": [1, "x"]});
        let m = Message::Event {
            topic_uri: "http://t/x".into(),
            event: event.clone(),
        };
        assert_eq!(event_json("http://t/x", &event), m.to_json());
        let r = Message::CallResult {
            call_id: "c".into(),
            result: event.clone(),
        };
        assert_eq!(call_result_json("c", &event), r.to_json());
    }

    #[test]
    fn direction_and_names() {
        let call = Message::from_json(r#"[2,"a","b"]"#).unwrap();
        assert!(call.is_client_to_server());
        assert_eq!(call.name(), "CALL");
        let ev = Message::from_json(r#"[8,"a",1]"#).unwrap();
        assert!(!ev.is_client_to_server());
        assert_eq!(ev.type_id(), TYPE_EVENT);
    }
}
