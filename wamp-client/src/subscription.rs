//! [`Subscription`]: a `Stream` of the events of one topic; dropping it unsubscribes.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::client::Client;
use crate::driver::{Command, Control};
use crate::error::Result;
use crate::event::Event;

/// The events of one topic, as a [`Stream`]. Made by
/// [`Client::subscribe`](crate::Client::subscribe).
///
/// - Several subscriptions to one topic (as the client resolves it with its own prefixes)
///   share one SUBSCRIBE on the wire, and each gets every event.
/// - Dropping a subscription (or calling [`Subscription::unsubscribe`]) removes it; when the
///   last one of a topic goes, the client sends UNSUBSCRIBE.
/// - The subscription survives reconnects: the client subscribes again on every new session.
///   Events published while the link was down are lost (WAMP v1 keeps no history).
/// - The stream ends (`None`) when the client is closed for good.
/// - Events are buffered up to
///   [`ConnectOptions::subscription_capacity`](crate::ConnectOptions::subscription_capacity);
///   beyond that, new events are dropped and counted in [`Subscription::dropped`].
///
/// The subscription holds a [`Client`] handle, so the connection stays up while it lives.
pub struct Subscription {
    id: u64,
    topic: String,
    /// One `Arc` per event, shared with the topic's other local subscriptions.
    rx: mpsc::Receiver<Arc<Event>>,
    dropped: Arc<AtomicU64>,
    client: Client,
    /// Set once the driver has been told; `Drop` then has nothing to do.
    done: bool,
}

impl Subscription {
    pub(crate) fn new(
        id: u64,
        topic: String,
        rx: mpsc::Receiver<Arc<Event>>,
        dropped: Arc<AtomicU64>,
        client: Client,
    ) -> Self {
        Subscription {
            id,
            topic,
            rx,
            dropped,
            client,
            done: false,
        }
    }

    /// The topic URI this subscription is filed under: the topic given to `subscribe`,
    /// resolved with the client's own prefixes.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// How many events were dropped because this subscription's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The client this subscription belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Removes this subscription, and waits until the driver has handled it: if it was the
    /// topic's last, UNSUBSCRIBE is queued on the connection when this returns.
    /// Dropping the subscription does the same without waiting.
    pub async fn unsubscribe(mut self) -> Result<()> {
        self.done = true;
        let (reply, done) = oneshot::channel();
        self.client
            .send(Command::Unsubscribe { id: self.id, reply })
            .await?;
        done.await.map_err(|_| self.client.closed_error())
    }
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        // The last subscription to take an event takes it without a copy; only a topic with
        // several local subscriptions copies it, in the readers rather than in the driver.
        self.rx
            .poll_recv(cx)
            .map(|event| event.map(Arc::unwrap_or_clone))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.done {
            self.client.control(Control::Unsubscribe(self.id));
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("topic", &self.topic)
            .field("dropped", &self.dropped())
            .finish()
    }
}
