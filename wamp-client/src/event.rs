//! [`Event`]: one event received on a subscribed topic, plain data.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// One event received on a subscribed topic.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The topic's full URI, as the server sent it in the EVENT.
    pub topic: String,
    /// The event payload, any JSON value.
    pub payload: Value,
}

impl Event {
    pub(crate) fn new(topic: String, payload: Value) -> Self {
        Event { topic, payload }
    }

    /// Decodes the payload into `T`.
    ///
    /// ```
    /// # use wamp_client::Event;
    /// # fn show(event: Event) -> wamp_client::Result<()> {
    /// let text: String = event.decode()?;
    /// # Ok(()) }
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.payload).map_err(Error::decode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_decode() {
        let e = Event::new("http://x/t".into(), serde_json::json!({"n": 1}));
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct N {
            n: u32,
        }
        assert_eq!(e.decode::<N>().unwrap(), N { n: 1 });
        assert!(matches!(e.decode::<String>(), Err(Error::Decode(_))));
    }
}
