//! A session's outbox: the handle that the router, the broker and call tasks hold to send to
//! one session (bounded in frames and in bytes), and the writer task, the only writer of that
//! session's socket.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Sink, SinkExt};
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::close::{self, SessionError};
use crate::stats::{CloseReason, Stats};
use crate::transport::{Outbound, Text};

/// What the writer task is asked to send.
pub(crate) enum Outgoing {
    Frame(Text),
    /// Boxed so that the queue's slots stay the size of a frame handle.
    Close(Box<(u16, String)>),
    /// Send what is queued, then end the connection without a close handshake.
    End,
    /// Flush the socket (it holds pongs the WebSocket library queued itself).
    Flush,
}

/// The part of a session that others hold: the router (to publish to it or close it) and
/// call tasks (to reply). Sending never blocks: a full queue closes the session.
///
/// The queue is a locked `VecDeque` that the writer takes whole (one lock per batch), with its
/// bound kept by counters of queued frames and bytes: atomic adds per frame instead of a
/// semaphore acquire and release (fan-out sends one frame to every subscriber of a topic, so
/// this is the hottest path of a publish). Unlike a channel it allocates nothing until a frame
/// is queued and frees its buffers when the writer goes idle: an idle session's outbox is the
/// handle alone (a tokio channel's first block alone is 1.3 KiB).
pub(crate) struct SessionHandle {
    pub(crate) id: Arc<str>,
    queue: Mutex<Queue>,
    /// Wakes the writer when the queue goes from empty to not empty.
    queue_signal: Notify,
    /// Frames queued and not yet taken by the writer.
    queued: AtomicUsize,
    /// Bytes of the frames queued and not yet taken by the writer.
    queued_bytes: AtomicUsize,
    /// Bytes of pongs answered by the WebSocket library and not yet flushed to the socket.
    pong_bytes: AtomicUsize,
    /// Whether a [`Outgoing::Flush`] is on its way to the writer.
    flush_asked: AtomicBool,
    /// The most frames that may be queued ([`crate::Options::outbox_capacity`]).
    capacity: usize,
    /// The most bytes that may be queued ([`crate::Options::outbox_max_bytes`]).
    max_bytes: usize,
    /// A close that must skip the queue (the queue is full, or the session must stop now),
    /// with the close frame to send (`None` when the client closed: the WebSocket library
    /// has answered its close frame already, and sending ours would fail).
    abort: Mutex<Option<Option<(u16, String)>>>,
    /// Wakes the writer for an abort.
    abort_signal: Notify,
    /// Whether an abort was asked for, and the reader's wake-up for it.
    aborted: AtomicBool,
    reader_signal: Notify,
    /// Why the server closed this session, the first reason given.
    close_reason: Mutex<Option<(CloseReason, String)>>,
    /// The router's counters.
    pub(crate) stats: Arc<Stats>,
}

impl SessionHandle {
    /// A new outbox and the receiving end for its writer.
    pub(crate) fn new(
        id: Arc<str>,
        capacity: usize,
        max_bytes: usize,
        stats: Arc<Stats>,
    ) -> (Arc<SessionHandle>, Receiver) {
        let handle = SessionHandle {
            id,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                open: true,
            }),
            queue_signal: Notify::new(),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            pong_bytes: AtomicUsize::new(0),
            flush_asked: AtomicBool::new(false),
            capacity,
            max_bytes,
            abort: Mutex::new(None),
            abort_signal: Notify::new(),
            aborted: AtomicBool::new(false),
            reader_signal: Notify::new(),
            close_reason: Mutex::new(None),
            stats,
        };
        let handle = Arc::new(handle);
        let rx = Receiver {
            handle: handle.clone(),
            batch: VecDeque::new(),
        };
        (handle, rx)
    }

    /// Queues a message for the writer; `false` once the writer has stopped (its [`Receiver`]
    /// is gone), as a channel's send fails then.
    fn push(&self, message: Outgoing) -> bool {
        let mut queue = self.queue.lock().expect("outbox lock");
        if !queue.open {
            return false;
        }
        let was_empty = queue.items.is_empty();
        queue.items.push_back(message);
        drop(queue);
        // The writer takes the whole queue, so only the first message after a take needs to
        // wake it; a wake-up while it is busy is kept and only costs it one more look.
        if was_empty {
            self.queue_signal.notify_one();
        }
        true
    }

    /// Queues a text frame. Returns `false` if the session is closing or was just closed
    /// because its queue is full. Frames larger than [`SessionHandle::max_frame`] are for
    /// the caller to keep out (they would close the session).
    pub(crate) fn send(&self, frame: Text) -> bool {
        if self.aborted.load(Ordering::Acquire) {
            // The writer has stopped taking frames: queueing would only count them as sent.
            return false;
        }
        let len = frame.len();
        let frames = self.queued.fetch_add(1, Ordering::Relaxed);
        let bytes = self.queued_bytes.fetch_add(len, Ordering::Relaxed)
            + self.pong_bytes.load(Ordering::Relaxed);
        let over = if frames >= self.capacity {
            Some(SessionError::SlowConsumer)
        } else if bytes + len > self.max_bytes {
            Some(SessionError::SlowConsumerBytes(self.max_bytes))
        } else {
            None
        };
        if let Some(e) = over {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.abort_for(&e);
            return false;
        }
        self.stats.outbox(frames + 1, bytes + len);
        self.push(Outgoing::Frame(frame))
    }

    /// Counts the pong the WebSocket library sends for a ping of `len` payload bytes: it
    /// waits in the socket's write buffer until a flush, and counts against the byte bound
    /// until then. Asks the writer to flush.
    pub(crate) fn charge_pong(&self, len: usize) {
        let size = len + 2;
        let pongs = self.pong_bytes.fetch_add(size, Ordering::Relaxed) + size;
        if pongs + self.queued_bytes.load(Ordering::Relaxed) > self.max_bytes {
            self.abort_for(&SessionError::SlowConsumerBytes(self.max_bytes));
            return;
        }
        if !self.flush_asked.swap(true, Ordering::AcqRel) {
            let _ = self.push(Outgoing::Flush);
        }
    }

    /// The largest frame this outbox takes ([`crate::Options::outbox_max_bytes`]).
    pub(crate) fn max_frame(&self) -> usize {
        self.max_bytes
    }

    fn note_reason(&self, kind: CloseReason, reason: &str) {
        let mut slot = self.close_reason.lock().expect("close reason lock");
        if slot.is_none() {
            *slot = Some((kind, reason.to_string()));
        }
    }

    /// Why the server closed this session, if it did.
    #[cfg(test)]
    pub(crate) fn close_reason(&self) -> Option<String> {
        self.closed_as().map(|(_, reason)| reason)
    }

    /// Why the server closed this session, if it did, with the reason it counts under.
    pub(crate) fn closed_as(&self) -> Option<(CloseReason, String)> {
        self.close_reason.lock().expect("close reason lock").clone()
    }

    /// Closes after the frames already queued (the application asked: counted as killed).
    /// The reason is cut to fit a close frame ([`close::MAX_REASON`] bytes).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        self.close_as(CloseReason::Killed, code, reason);
    }

    /// Closes after the frames already queued, counted under `kind`.
    pub(crate) fn close_as(&self, kind: CloseReason, code: u16, reason: &str) {
        let mut reason = reason.to_string();
        close::truncate_reason(&mut reason);
        self.note_reason(kind, &reason);
        // The queue has no hard limit, so a close always fits behind the frames before it.
        let _ = self.push(Outgoing::Close(Box::new((code, reason))));
    }

    /// Closes after the frames already queued, with the error's code and reason.
    pub(crate) fn close_for(&self, e: &SessionError) {
        self.close_as(CloseReason::of(e), e.code(), &e.reason());
    }

    /// Ends the connection after the frames already queued, without a close frame (the
    /// client sees the TCP connection end).
    pub(crate) fn end(&self, reason: &str) {
        self.note_reason(CloseReason::Shutdown, reason);
        let _ = self.push(Outgoing::End);
    }

    /// Closes now, dropping whatever is queued; interrupts a write that waits on a full
    /// socket. Only the first abort counts (and logs). The reason is cut to fit a close
    /// frame ([`close::MAX_REASON`] bytes).
    #[cfg(test)]
    pub(crate) fn abort(&self, code: u16, reason: &str) {
        self.abort_as(CloseReason::Killed, code, reason);
    }

    /// [`SessionHandle::abort`], counted under `kind`. When the client closed, no close
    /// frame is sent: the WebSocket library has answered the client's already.
    fn abort_as(&self, kind: CloseReason, code: u16, reason: &str) {
        if self.aborted.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut reason = reason.to_string();
        close::truncate_reason(&mut reason);
        self.note_reason(kind, &reason);
        if code == close::NORMAL {
            debug!(session = %self.id, code, reason, "closing session");
        } else {
            warn!(session = %self.id, code, reason, "closing session");
        }
        let frame = (kind != CloseReason::Client).then_some((code, reason));
        *self.abort.lock().expect("abort lock") = Some(frame);
        self.abort_signal.notify_one();
        self.reader_signal.notify_waiters();
    }

    /// Completes once the session is aborted (the reader loop stops then).
    pub(crate) async fn aborted(&self) {
        loop {
            let woken = self.reader_signal.notified();
            tokio::pin!(woken);
            // Register before checking, so an abort between check and wait is not lost.
            woken.as_mut().enable();
            if self.aborted.load(Ordering::Acquire) {
                return;
            }
            woken.await;
        }
    }

    /// Closes now with the error's code and reason.
    pub(crate) fn abort_for(&self, e: &SessionError) {
        self.abort_as(CloseReason::of(e), e.code(), &e.reason());
    }

    /// Takes the share of the bound of `frames` frames of `bytes` bytes in all, once the writer
    /// has handed them to the socket's buffer. Called once per batch, not per frame: these
    /// counters share a cache line with every sender's (the publisher on another core), so
    /// each update is a cache-line transfer.
    fn taken(&self, frames: usize, bytes: usize) {
        if frames > 0 {
            self.queued.fetch_sub(frames, Ordering::Relaxed);
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// The messages queued for the writer, and whether it still takes them.
struct Queue {
    items: VecDeque<Outgoing>,
    open: bool,
}

/// The writer's end of a session's outbox. Dropping it (the writer ended, or its task was
/// aborted) closes the queue: what is queued is freed, and later sends fail.
pub(crate) struct Receiver {
    handle: Arc<SessionHandle>,
    /// The messages taken from the queue and not yet handled, in order.
    batch: VecDeque<Outgoing>,
}

/// The queue was empty.
#[derive(Debug)]
pub(crate) struct Empty;

impl Receiver {
    /// The next message, without waiting.
    pub(crate) fn try_recv(&mut self) -> Result<Outgoing, Empty> {
        if let Some(message) = self.batch.pop_front() {
            return Ok(message);
        }
        // Taken whole: the queue starts again from an unallocated buffer.
        self.batch = std::mem::take(&mut self.handle.queue.lock().expect("outbox lock").items);
        self.batch.pop_front().ok_or(Empty)
    }

    /// The next message, waiting for one. While it waits, the outbox holds no buffer at all:
    /// an idle session costs nothing here (a burst's first frame allocates one).
    pub(crate) async fn recv(&mut self) -> Outgoing {
        loop {
            if let Ok(message) = self.try_recv() {
                return message;
            }
            self.batch = VecDeque::new();
            // A send after the look above left a wake-up in the Notify, so none is lost.
            self.handle.queue_signal.notified().await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut queue = self.handle.queue.lock().expect("outbox lock");
        queue.open = false;
        queue.items = VecDeque::new();
    }
}

/// How the writer's queue ended.
enum Ending {
    /// Send this close frame, then close the sink.
    Close(u16, String),
    /// Close the sink without a close frame of ours (the close handshake is done).
    Closed,
    /// Drop the sink without a close frame.
    Drop,
    /// The socket failed.
    Failed,
}

/// The only writer of a session's socket: drains the queue, batching frames that are
/// already waiting into one flush, until a close is asked for or the socket fails. An abort
/// interrupts it, even inside a write blocked on a full socket; then the close frame gets
/// `close_wait` to go out ([`crate::Options::close_wait`]).
pub(crate) async fn write_loop<Si>(
    mut sink: Si,
    mut rx: Receiver,
    handle: Arc<SessionHandle>,
    close_wait: Duration,
) where
    Si: Sink<Outbound> + Unpin,
{
    let ending = tokio::select! {
        biased;
        _ = handle.abort_signal.notified() => {
            match handle.abort.lock().expect("abort lock").take() {
                Some(Some((code, reason))) => Ending::Close(code, reason),
                Some(None) => Ending::Closed,
                None => Ending::Drop,
            }
        }
        ending = drain(&mut sink, &mut rx, &handle) => ending,
    };
    match ending {
        Ending::Close(code, reason) => send_close(&mut sink, code, reason, close_wait).await,
        Ending::Closed => {
            let _ = tokio::time::timeout(close_wait, sink.close()).await;
        }
        Ending::Drop | Ending::Failed => {}
    }
}

/// Sends a close frame and closes the sink, for at most `close_wait`: the socket may be full
/// (that is often why the session is aborted), and then the connection is just dropped.
async fn send_close<Si>(sink: &mut Si, code: u16, reason: String, close_wait: Duration)
where
    Si: Sink<Outbound> + Unpin,
{
    let _ = tokio::time::timeout(close_wait, async {
        let _ = sink.send(Outbound::Close(code, reason)).await;
        let _ = sink.close().await;
    })
    .await;
}

async fn drain<Si>(sink: &mut Si, rx: &mut Receiver, handle: &SessionHandle) -> Ending
where
    Si: Sink<Outbound> + Unpin,
{
    /// Frames fed before a flush, at most.
    const BATCH: usize = 64;
    loop {
        let mut next = rx.recv().await;
        let mut fed = 0;
        // The frames of this batch taken from the queue (they still count against the bound
        // until the batch is fed: a batch is at most BATCH frames).
        let (mut frames, mut bytes) = (0, 0);
        loop {
            match next {
                Outgoing::Close(close) => {
                    handle.taken(frames, bytes);
                    let (code, reason) = *close;
                    return Ending::Close(code, reason);
                }
                Outgoing::End => {
                    handle.taken(frames, bytes);
                    return match flush(sink, handle).await {
                        Ok(()) => Ending::Drop,
                        Err(()) => Ending::Failed,
                    };
                }
                Outgoing::Flush => handle.flush_asked.store(false, Ordering::Release),
                Outgoing::Frame(frame) => {
                    frames += 1;
                    bytes += frame.len();
                    if sink.feed(Outbound::Text(frame)).await.is_err() {
                        return Ending::Failed;
                    }
                }
            }
            fed += 1;
            if fed == BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(m) => next = m,
                Err(_) => break,
            }
        }
        handle.taken(frames, bytes);
        if flush(sink, handle).await.is_err() {
            return Ending::Failed;
        }
    }
}

/// Flushes the socket; the pongs counted before it are out once it succeeds.
async fn flush<Si>(sink: &mut Si, handle: &SessionHandle) -> Result<(), ()>
where
    Si: Sink<Outbound> + Unpin,
{
    let pongs = handle.pong_bytes.load(Ordering::Relaxed);
    sink.flush().await.map_err(|_| ())?;
    handle.pong_bytes.fetch_sub(pongs, Ordering::Relaxed);
    Ok(())
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Text {
        Text::from("x".repeat(len))
    }

    #[test]
    fn the_byte_bound_holds_exactly() {
        let (handle, _rx) = SessionHandle::new(Arc::from("s"), 1000, 100, Arc::default());
        assert!(handle.send(text(60)));
        assert!(handle.send(text(40)), "exactly at the bound");
        assert!(handle.close_reason().is_none());
        assert!(!handle.send(text(1)), "one byte past the bound");
        assert_eq!(
            handle.close_reason().unwrap(),
            "outgoing queue over 100 bytes: the client does not read fast enough"
        );
        assert!(handle.aborted.load(Ordering::Acquire));
    }

    #[test]
    fn the_frame_bound_holds_exactly() {
        let (handle, _rx) = SessionHandle::new(Arc::from("s"), 2, 1 << 20, Arc::default());
        assert!(handle.send(text(1)));
        assert!(handle.send(text(1)));
        assert!(!handle.send(text(1)));
        assert_eq!(
            handle.close_reason().unwrap(),
            "outgoing queue full: the client does not read fast enough"
        );
    }

    #[test]
    fn taking_frames_frees_the_bound() {
        let (handle, _rx) = SessionHandle::new(Arc::from("s"), 10, 100, Arc::default());
        assert!(handle.send(text(100)));
        handle.taken(1, 100);
        assert!(handle.send(text(100)));
        assert!(handle.close_reason().is_none());
    }

    #[test]
    fn an_aborted_outbox_takes_no_frames_and_aborts_once() {
        let (handle, mut rx) = SessionHandle::new(Arc::from("s"), 10, 100, Arc::default());
        assert!(handle.send(text(1)));
        handle.abort(close::KILLED, "first");
        assert!(!handle.send(text(1)), "a frame after the abort");
        assert_eq!(handle.queued.load(Ordering::Relaxed), 1);
        // The writer takes the abort; a later overflow must not abort again.
        let taken = handle.abort.lock().unwrap().take();
        assert_eq!(taken, Some(Some((close::KILLED, "first".to_string()))));
        handle.abort_for(&SessionError::SlowConsumer);
        assert!(handle.abort.lock().unwrap().is_none());
        assert_eq!(handle.close_reason().as_deref(), Some("first"));
        assert!(matches!(rx.try_recv(), Ok(Outgoing::Frame(_))));
        assert!(rx.try_recv().is_err());
    }

    fn frame_text(m: Outgoing) -> String {
        match m {
            Outgoing::Frame(t) => t.as_str().to_string(),
            _ => panic!("expected a frame"),
        }
    }

    #[test]
    fn frames_leave_in_order_across_batches() {
        let (handle, mut rx) = SessionHandle::new(Arc::from("s"), 10_000, 1 << 20, Arc::default());
        let mut sent = 0;
        let mut seen = 0;
        for burst in 1..40 {
            for _ in 0..burst {
                assert!(handle.send(Text::from(sent.to_string())));
                sent += 1;
            }
            // Take part of the burst, so later sends land behind a batch in progress.
            for _ in 0..burst / 2 {
                assert_eq!(frame_text(rx.try_recv().unwrap()), seen.to_string());
                handle.taken(1, seen.to_string().len());
                seen += 1;
            }
        }
        while let Ok(m) = rx.try_recv() {
            assert_eq!(frame_text(m), seen.to_string());
            seen += 1;
        }
        assert_eq!(seen, sent);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn sends_fail_once_the_writer_is_gone() {
        let (handle, rx) = SessionHandle::new(Arc::from("s"), 10, 100, Arc::default());
        assert!(handle.send(text(10)));
        drop(rx);
        assert!(!handle.send(text(10)), "nobody would write it");
        let queue = handle.queue.lock().unwrap();
        assert!(
            queue.items.is_empty() && queue.items.capacity() == 0,
            "freed"
        );
    }

    #[tokio::test]
    async fn a_send_wakes_the_waiting_writer() {
        let (handle, mut rx) = SessionHandle::new(Arc::from("s"), 10, 100, Arc::default());
        let writer = tokio::spawn(async move {
            let first = frame_text(rx.recv().await);
            let second = frame_text(rx.recv().await);
            (first, second)
        });
        // Give the writer a chance to wait first (not needed for correctness).
        tokio::task::yield_now().await;
        assert!(handle.send(Text::from("a")));
        assert!(handle.send(Text::from("b")));
        let got = tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("the writer was woken")
            .unwrap();
        assert_eq!(got, ("a".to_string(), "b".to_string()));
    }

    #[tokio::test]
    async fn an_idle_outbox_holds_no_buffer() {
        let (handle, mut rx) = SessionHandle::new(Arc::from("s"), 10, 100, Arc::default());
        for _ in 0..3 {
            assert!(handle.send(text(1)));
        }
        for _ in 0..3 {
            let _ = rx.recv().await;
        }
        // The writer waits for the next frame.
        let next = tokio::time::timeout(Duration::from_millis(10), rx.recv()).await;
        assert!(next.is_err());
        assert_eq!(rx.batch.capacity(), 0);
        assert_eq!(handle.queue.lock().unwrap().items.capacity(), 0);
        // And still wakes for the next one.
        assert!(handle.send(text(1)));
        let next = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
        assert!(matches!(next, Ok(Outgoing::Frame(_))));
    }

    /// A sink that records what the writer does to it, in order.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Sink<Outbound> for Recorder {
        type Error = ();

        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn start_send(self: std::pin::Pin<&mut Self>, item: Outbound) -> Result<(), ()> {
            let event = match item {
                Outbound::Text(t) => t.to_string(),
                Outbound::Close(code, reason) => format!("close {code} {reason}"),
            };
            self.0.lock().unwrap().push(event);
            Ok(())
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            self.0.lock().unwrap().push("flush".into());
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            self.0.lock().unwrap().push("closed".into());
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn queued_frames_leave_in_order_in_one_flush_and_free_the_bound() {
        let (handle, rx) = SessionHandle::new(Arc::from("s"), 1000, 1 << 20, Arc::default());
        let frames: Vec<String> = (0..100).map(|i| format!("[8,\"t\",{i}]")).collect();
        for f in &frames {
            assert!(handle.send(Text::from(f.as_str())));
        }
        handle.close(close::NORMAL, "bye");
        let sink = Recorder::default();
        write_loop(sink.clone(), rx, handle.clone(), Duration::from_secs(5)).await;
        let got = sink.0.lock().unwrap().clone();
        // 64 frames a batch, then the rest and the close (whose send flushes).
        let mut want: Vec<String> = frames[..64].to_vec();
        want.push("flush".into());
        want.extend(frames[64..].iter().cloned());
        want.extend(["close 1000 bye", "flush", "closed"].map(String::from));
        assert_eq!(got, want);
        assert_eq!(handle.queued.load(Ordering::Relaxed), 0);
        assert_eq!(handle.queued_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn close_reasons_are_cut_to_fit_a_close_frame() {
        let long = "é".repeat(100);
        let (handle, mut rx) = SessionHandle::new(Arc::from("s"), 10, 100, Arc::default());
        handle.close(close::NORMAL, &long);
        match rx.try_recv() {
            Ok(Outgoing::Close(close)) => {
                assert_eq!(close.1, "é".repeat(61));
                assert_eq!(close.1.len(), 122);
            }
            _ => panic!("expected a close"),
        }
        let (handle, _rx) = SessionHandle::new(Arc::from("s"), 10, 100, Arc::default());
        handle.abort(close::KILLED, &"x".repeat(200));
        let (_, reason) = handle.abort.lock().unwrap().take().flatten().unwrap();
        assert_eq!(reason, "x".repeat(close::MAX_REASON));
    }
}
