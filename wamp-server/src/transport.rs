//! The transport seam: what a session reads and writes, independent of the WebSocket library.
//!
//! A session sees [`Inbound`] and [`Outbound`] values carrying [`Text`], a UTF-8 string in
//! shared [`bytes::Bytes`]. The adapters to tokio-tungstenite (used by [`crate::serve`]) are
//! here too, crate-private, so the WebSocket library's types stop at this file; the axum
//! adapter is in the axum mount. Converting to and from either library moves a reference
//! count, never the bytes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};

use crate::close;

/// One text message: valid UTF-8 in shared bytes. Cloning is a reference-count increment, so
/// one serialised event is shared by every recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(Utf8Bytes);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// From tungstenite's text (no copy, no check).
    pub(crate) fn from_tungstenite(text: Utf8Bytes) -> Text {
        Text(text)
    }

    /// Into tungstenite's text (no copy, no check).
    pub(crate) fn into_tungstenite(self) -> Utf8Bytes {
        self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(Utf8Bytes::from(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(Utf8Bytes::from(s))
    }
}

impl TryFrom<Bytes> for Text {
    type Error = std::str::Utf8Error;

    /// Checks that the bytes are UTF-8 (a scan, no copy).
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        Utf8Bytes::try_from(bytes).map(Text)
    }
}

impl From<Text> for Bytes {
    fn from(text: Text) -> Bytes {
        Bytes::from(text.0)
    }
}

/// What the client sent, as a session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text frame (one WAMP message).
    Text(Text),
    /// A binary frame (refused with 1003).
    Binary,
    /// A message over the size limit (refused with 1009).
    TooBig,
    /// A ping with this many payload bytes. The WebSocket library answers it itself; the
    /// session counts the pong against its outbox's byte bound until the socket is flushed,
    /// so a client that never reads its pongs is a slow consumer too.
    Ping(usize),
    /// The client broke the WebSocket protocol; the session is closed with this code and
    /// reason (invalid UTF-8 → 1007, framing violations → 1002).
    Violation(u16, String),
    /// The client closed the connection.
    Close,
}

/// What goes to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A text frame; the bytes are shared between all recipients of one event.
    Text(Text),
    /// A close frame with a code and reason.
    Close(u16, String),
}

/// Maps what tungstenite read to what a session sees; tungstenite answers pings itself (the
/// session only counts them), pongs are its business.
pub(crate) fn from_tungstenite(
    m: Result<tungstenite::Message, tungstenite::Error>,
) -> Option<Inbound> {
    use tungstenite::Message as M;
    match m {
        Ok(M::Text(text)) => Some(Inbound::Text(Text::from_tungstenite(text))),
        Ok(M::Binary(_)) => Some(Inbound::Binary),
        Ok(M::Close(_)) => Some(Inbound::Close),
        Ok(M::Ping(payload)) => Some(Inbound::Ping(payload.len())),
        Ok(M::Pong(_) | M::Frame(_)) => None,
        Err(e) => Some(error_to_inbound(&e)),
    }
}

/// What a read error of tungstenite means for the session.
pub(crate) fn error_to_inbound(e: &tungstenite::Error) -> Inbound {
    use tungstenite::Error as E;
    match e {
        E::Capacity(_) => Inbound::TooBig,
        E::Utf8(_) => Inbound::Violation(
            close::INVALID_DATA,
            "invalid UTF-8 in a text message or close reason".into(),
        ),
        // The peer dropped the TCP connection without a close frame: a lost connection (a
        // browser tab closed, a network failure), not a protocol violation to warn about.
        E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            tracing::debug!("connection ended without a close handshake");
            Inbound::Close
        }
        E::Protocol(p) => {
            let mut reason = format!("WebSocket protocol violation: {p}");
            close::truncate_reason(&mut reason);
            Inbound::Violation(close::PROTOCOL_ERROR, reason)
        }
        e => {
            tracing::debug!(error = %e, "read failed");
            Inbound::Close
        }
    }
}

/// Maps what a session sends to tungstenite's message.
pub(crate) fn to_tungstenite(o: Outbound) -> tungstenite::Message {
    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::protocol::CloseFrame;
    match o {
        Outbound::Text(text) => tungstenite::Message::Text(text.into_tungstenite()),
        Outbound::Close(code, reason) => tungstenite::Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        })),
    }
}

/// A WebSocket library's socket seen as one value that is both a stream of [`Inbound`] and a
/// sink of [`Outbound`], what [`crate::run_session`] takes: each value is mapped by a plain
/// function on its way (unlike `StreamExt::filter_map` and `SinkExt::with`, no future is built
/// and polled per frame; the writer feeds one frame per recipient of every event, so this is
/// per delivery). One value, not split halves: the session's one task reads and writes it,
/// with no lock between a reader and a writer.
pub(crate) struct MapIo<S, M, R> {
    inner: S,
    to: fn(Outbound) -> M,
    from: fn(R) -> Option<Inbound>,
}

impl<S, M, R> MapIo<S, M, R> {
    /// Wraps `inner`, mapping what goes out with `to` and what comes in with `from` (`None`:
    /// nothing for the session, read on).
    pub(crate) fn new(inner: S, to: fn(Outbound) -> M, from: fn(R) -> Option<Inbound>) -> Self {
        MapIo { inner, to, from }
    }
}

/// A tokio-tungstenite WebSocket as a session's transport.
pub(crate) fn tungstenite_io<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
) -> impl Stream<Item = Inbound> + Sink<Outbound> + Unpin + Send + 'static
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    MapIo::new(ws, to_tungstenite, from_tungstenite)
}

impl<S: Stream<Item = R> + Unpin, M, R> Stream for MapIo<S, M, R> {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        loop {
            match std::task::ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(m) => {
                    if let Some(inbound) = (self.from)(m) {
                        return Poll::Ready(Some(inbound));
                    }
                }
            }
        }
    }
}

impl<S: Sink<M> + Unpin, M, R> Sink<Outbound> for MapIo<S, M, R> {
    type Error = S::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> Result<(), S::Error> {
        let item = (self.to)(item);
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_is_a_lost_connection_not_a_violation() {
        use tungstenite::error::ProtocolError;
        let reset = tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(error_to_inbound(&reset), Inbound::Close);
        let unmasked = tungstenite::Error::Protocol(ProtocolError::UnmaskedFrameFromClient);
        assert!(matches!(
            error_to_inbound(&unmasked),
            Inbound::Violation(close::PROTOCOL_ERROR, _)
        ));
    }

    /// Both ends of a WebSocket as one value, over two channels.
    struct Duplex {
        out: futures::channel::mpsc::UnboundedSender<tungstenite::Message>,
        inp: futures::channel::mpsc::UnboundedReceiver<
            Result<tungstenite::Message, tungstenite::Error>,
        >,
    }

    impl Stream for Duplex {
        type Item = Result<tungstenite::Message, tungstenite::Error>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Pin::new(&mut self.inp).poll_next(cx)
        }
    }

    impl Sink<tungstenite::Message> for Duplex {
        type Error = futures::channel::mpsc::SendError;

        fn poll_ready(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.out).poll_ready(cx)
        }

        fn start_send(
            mut self: Pin<&mut Self>,
            m: tungstenite::Message,
        ) -> Result<(), Self::Error> {
            Pin::new(&mut self.out).start_send(m)
        }

        fn poll_flush(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.out).poll_flush(cx)
        }

        fn poll_close(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            Pin::new(&mut self.out).poll_close(cx)
        }
    }

    #[test]
    fn the_map_io_maps_both_ways_in_order_and_passes_flush_and_close_through() {
        use futures::{SinkExt, StreamExt};
        use tungstenite::Message as M;
        let (out, mut sent) = futures::channel::mpsc::unbounded();
        let (client, inp) = futures::channel::mpsc::unbounded();
        let mut io = MapIo::new(Duplex { out, inp }, to_tungstenite, from_tungstenite);
        for m in [
            M::Pong("p".into()),
            M::Text("[5,\"t\"]".into()),
            M::Ping("abc".into()),
            M::Binary(Bytes::from_static(b"b")),
        ] {
            client.unbounded_send(Ok(m)).unwrap();
        }
        drop(client);
        futures::executor::block_on(async {
            // The pong is nothing for the session: skipped, the next message comes.
            let text = Inbound::Text(Text::from("[5,\"t\"]"));
            assert_eq!(io.next().await, Some(text));
            assert_eq!(io.next().await, Some(Inbound::Ping(3)));
            assert_eq!(io.next().await, Some(Inbound::Binary));
            assert_eq!(io.next().await, None);
            let one = Outbound::Text(Text::from("[8,\"t\",1]"));
            io.feed(one).await.unwrap();
            let two = Outbound::Text(Text::from("[8,\"t\",2]"));
            io.feed(two).await.unwrap();
            io.send(Outbound::Close(1000, "bye".into())).await.unwrap();
            io.close().await.unwrap();
        });
        // The stream ends only because the sink's close reached the channel.
        let got: Vec<_> = futures::executor::block_on(futures::StreamExt::collect(&mut sent));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], M::Text("[8,\"t\",1]".into()));
        assert_eq!(got[1], M::Text("[8,\"t\",2]".into()));
        let M::Close(Some(close)) = &got[2] else {
            panic!("expected a close frame, got {:?}", got[2]);
        };
        assert_eq!(
            (u16::from(close.code), close.reason.as_str()),
            (1000, "bye")
        );
    }

    #[test]
    fn text_round_trips_without_copying() {
        let text = Text::from("[8,\"t\",1]".to_string());
        let ptr = text.as_ptr();
        let bytes = Bytes::from(text.clone());
        assert_eq!(bytes.as_ptr(), ptr);
        let back = Text::try_from(bytes).unwrap();
        assert_eq!(back.as_ptr(), ptr);
        assert_eq!(back, text);
        assert!(Text::try_from(Bytes::from_static(b"\xff")).is_err());
    }
}
