//! The one reader of message layouts, behind [`Message::from_json`] and
//! [`Message::from_value`]: reads the JSON array element by element, straight into a
//! [`Message`], without building a `serde_json::Value` for the array first.
//!
//! Shape errors are kept as typed [`Error`]s in a slot beside the deserializer (serde's own
//! error type can only carry text); invalid JSON stays serde_json's message.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{json_type, Error};
use crate::message::*;

/// Parses one text frame.
pub(crate) fn decode(text: &str) -> Result<Message, Error> {
    let mut slot = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let result = MessageSeed { slot: &mut slot }
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m));
    match result {
        Ok(m) => Ok(m),
        Err(e) => Err(slot.unwrap_or_else(|| Error::InvalidJson(e.to_string()))),
    }
}

/// Reads a message from an already parsed JSON value (the same visitor, over `Value`'s
/// deserializer).
pub(crate) fn decode_value(value: Value) -> Result<Message, Error> {
    let mut slot = None;
    match (MessageSeed { slot: &mut slot }).deserialize(value) {
        Ok(m) => Ok(m),
        Err(e) => Err(slot.unwrap_or_else(|| Error::InvalidJson(e.to_string()))),
    }
}

struct MessageSeed<'s> {
    slot: &'s mut Option<Error>,
}

/// Stores the typed error and aborts deserialization.
fn fail<E: de::Error, T>(slot: &mut Option<Error>, error: Error) -> Result<T, E> {
    let text = error.to_string();
    *slot = Some(error);
    Err(E::custom(text))
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Message;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Message, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! not_an_array {
    ($($method:ident($ty:ty) => $name:literal;)*) => {$(
        fn $method<E: de::Error>(self, _: $ty) -> Result<Message, E> {
            fail(self.slot, Error::NotAnArray($name))
        }
    )*};
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = Message;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a WAMP message (a JSON array)")
    }

    not_an_array! {
        visit_bool(bool) => "a boolean";
        visit_i64(i64) => "a number";
        visit_u64(u64) => "a number";
        visit_f64(f64) => "a number";
        visit_str(&str) => "a string";
    }

    fn visit_unit<E: de::Error>(self) -> Result<Message, E> {
        fail(self.slot, Error::NotAnArray("null"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Message, A::Error> {
        fail(self.slot, Error::NotAnArray("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Message, A::Error> {
        let mut r = Elements {
            seq,
            slot: self.slot,
            name: "message",
            index: 0,
        };
        let type_id = match r.seq.next_element::<TypeId>()? {
            None => return fail(r.slot, Error::EmptyArray),
            Some(TypeId(Ok(id))) => id,
            Some(TypeId(Err(found))) => return fail(r.slot, Error::InvalidTypeId(found)),
        };
        r.index = 1;
        r.name = match type_name(type_id) {
            Some(name) => name,
            None => return fail(r.slot, Error::UnknownType(type_id)),
        };
        let msg = match type_id {
            TYPE_WELCOME => Message::Welcome {
                session_id: r.string("the session id, a string")?,
                protocol_version: r.int("the protocol version, an integer")?,
                server_ident: r.string("the server ident, a string")?,
            },
            TYPE_PREFIX => Message::Prefix {
                prefix: r.string("the prefix, a string")?,
                uri: r.string("the URI, a string")?,
            },
            TYPE_CALL => {
                let call_id = r.string("the call id, a string")?;
                let proc_uri = r.string("the procedure URI, a string")?;
                let mut args = Vec::new();
                while let Some(arg) = r.seq.next_element::<Value>()? {
                    args.push(arg);
                }
                return Ok(Message::Call {
                    call_id,
                    proc_uri,
                    args,
                });
            }
            TYPE_CALLRESULT => Message::CallResult {
                call_id: r.string("the call id, a string")?,
                result: r.any("the result, any JSON value")?,
            },
            TYPE_CALLERROR => Message::CallError {
                call_id: r.string("the call id, a string")?,
                error_uri: r.string("the error URI, a string")?,
                error_desc: r.string("the error description, a string")?,
                error_details: r.optional()?.filter(|v| !v.is_null()),
            },
            TYPE_SUBSCRIBE => Message::Subscribe {
                topic_uri: r.string("the topic URI, a string")?,
            },
            TYPE_UNSUBSCRIBE => Message::Unsubscribe {
                topic_uri: r.string("the topic URI, a string")?,
            },
            TYPE_PUBLISH => {
                let topic_uri = r.string("the topic URI, a string")?;
                let event = r.any("the event, any JSON value")?;
                let exclude = r.optional()?;
                let eligible = r.optional()?;
                match publish_options(exclude, eligible) {
                    Ok((exclude, eligible)) => Message::Publish {
                        topic_uri,
                        event,
                        exclude,
                        eligible,
                    },
                    Err(e) => return fail(r.slot, e),
                }
            }
            TYPE_EVENT => Message::Event {
                topic_uri: r.string("the topic URI, a string")?,
                event: r.any("the event, any JSON value")?,
            },
            _ => unreachable!("type_name accepted only ids 0 to 8"),
        };
        r.no_more()?;
        Ok(msg)
    }
}

/// Reads the optional elements 3 and 4 of a PUBLISH (see [`Message::Publish`]).
fn publish_options(
    exclude: Option<Value>,
    eligible: Option<Value>,
) -> Result<(Option<Exclude>, Option<Vec<String>>), Error> {
    let wrong = |index, expected, found: &Value| Error::WrongType {
        message: "PUBLISH",
        index,
        expected,
        found: json_type(found),
    };
    let ids = |list: Vec<Value>, index| -> Result<Vec<String>, Error> {
        list.into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(wrong(index, "a list of session ids (strings)", &other)),
            })
            .collect()
    };
    let eligible = match eligible {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(ids(list, 4)?),
        Some(other) => return Err(wrong(4, "a list of session ids", &other)),
    };
    let exclude = match exclude {
        None | Some(Value::Null) if eligible.is_some() => Some(Exclude::Sessions(Vec::new())),
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(Exclude::Me(b)),
        Some(Value::Array(list)) => Some(Exclude::Sessions(ids(list, 3)?)),
        Some(other) => {
            return Err(wrong(
                3,
                "excludeMe (a boolean) or a list of session ids",
                &other,
            ))
        }
    };
    Ok((exclude, eligible))
}

/// The remaining elements of one message, with the position for error messages.
struct Elements<'s, A> {
    seq: A,
    slot: &'s mut Option<Error>,
    name: &'static str,
    index: usize,
}

impl<'de, A: SeqAccess<'de>> Elements<'_, A> {
    fn missing<T>(&mut self, expected: &'static str) -> Result<T, A::Error> {
        let error = Error::MissingElement {
            message: self.name,
            index: self.index,
            expected,
        };
        fail(self.slot, error)
    }

    fn wrong<T>(&mut self, expected: &'static str, found: &'static str) -> Result<T, A::Error> {
        let error = Error::WrongType {
            message: self.name,
            index: self.index,
            expected,
            found,
        };
        fail(self.slot, error)
    }

    fn string(&mut self, expected: &'static str) -> Result<String, A::Error> {
        let v = match self.seq.next_element::<Typed<String>>()? {
            None => return self.missing(expected),
            Some(Typed(Ok(s))) => s,
            Some(Typed(Err(found))) => return self.wrong(expected, found),
        };
        self.index += 1;
        Ok(v)
    }

    fn int(&mut self, expected: &'static str) -> Result<i64, A::Error> {
        let v = match self.seq.next_element::<Typed<i64>>()? {
            None => return self.missing(expected),
            Some(Typed(Ok(n))) => n,
            Some(Typed(Err(found))) => return self.wrong(expected, found),
        };
        self.index += 1;
        Ok(v)
    }

    fn any(&mut self, expected: &'static str) -> Result<Value, A::Error> {
        match self.optional()? {
            Some(v) => Ok(v),
            None => self.missing(expected),
        }
    }

    fn optional(&mut self) -> Result<Option<Value>, A::Error> {
        let v = self.seq.next_element::<Value>()?;
        if v.is_some() {
            self.index += 1;
        }
        Ok(v)
    }

    /// Fails if elements remain after the last one the layout allows.
    fn no_more(&mut self) -> Result<(), A::Error> {
        let max = self.index;
        let mut found = self.index;
        while self.seq.next_element::<IgnoredAny>()?.is_some() {
            found += 1;
        }
        if found > max {
            let error = Error::TooManyElements {
                message: self.name,
                max,
                found,
            };
            return fail(self.slot, error);
        }
        Ok(())
    }
}

/// Element 0: a type id, or the text of what stood there instead.
struct TypeId(Result<u64, String>);

impl<'de> de::Deserialize<'de> for TypeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a message type id")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<TypeId, E> {
                Ok(TypeId(Ok(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<TypeId, E> {
                Ok(TypeId(u64::try_from(n).map_err(|_| n.to_string())))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<TypeId, E> {
                let text = serde_json::Number::from_f64(x)
                    .map_or_else(|| x.to_string(), |n| n.to_string());
                Ok(TypeId(Err(text)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TypeId, E> {
                Ok(TypeId(Err("a boolean".into())))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<TypeId, E> {
                Ok(TypeId(Err("a string".into())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TypeId, E> {
                Ok(TypeId(Err("null".into())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TypeId, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TypeId(Err("an array".into())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TypeId, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TypeId(Err("an object".into())))
            }
        }
        d.deserialize_any(V)
    }
}

/// An element expected to be a string (`Typed<String>`) or an integer (`Typed<i64>`): the
/// value, or the JSON type found instead (the element is consumed either way).
struct Typed<T>(Result<T, &'static str>);

/// The JSON type names of anything a typed element may find instead.
trait Found: Sized {
    fn from_u64(n: u64) -> Result<Self, &'static str>;
    fn from_i64(n: i64) -> Result<Self, &'static str>;
    fn from_str(s: &str) -> Result<Self, &'static str>;
    fn from_string(s: String) -> Result<Self, &'static str>;
}

impl Found for String {
    fn from_u64(_: u64) -> Result<Self, &'static str> {
        Err("a number")
    }
    fn from_i64(_: i64) -> Result<Self, &'static str> {
        Err("a number")
    }
    fn from_str(s: &str) -> Result<Self, &'static str> {
        Ok(s.to_owned())
    }
    fn from_string(s: String) -> Result<Self, &'static str> {
        Ok(s)
    }
}

impl Found for i64 {
    fn from_u64(n: u64) -> Result<Self, &'static str> {
        i64::try_from(n).map_err(|_| "a number")
    }
    fn from_i64(n: i64) -> Result<Self, &'static str> {
        Ok(n)
    }
    fn from_str(_: &str) -> Result<Self, &'static str> {
        Err("a string")
    }
    fn from_string(_: String) -> Result<Self, &'static str> {
        Err("a string")
    }
}

impl<'de, T: Found> de::Deserialize<'de> for Typed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Found> Visitor<'de> for V<T> {
            type Value = Typed<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Typed<T>, E> {
                Ok(Typed(T::from_u64(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Typed<T>, E> {
                Ok(Typed(T::from_i64(n)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Typed<T>, E> {
                Ok(Typed(Err("a number")))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Typed<T>, E> {
                Ok(Typed(Err("a boolean")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Typed<T>, E> {
                Ok(Typed(T::from_str(s)))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Typed<T>, E> {
                Ok(Typed(T::from_string(s)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Typed<T>, E> {
                Ok(Typed(Err("null")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Typed<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Typed(Err("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Typed<T>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Typed(Err("an object")))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
