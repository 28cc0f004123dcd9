//! A session's outbox: the handle that the router, the broker and call tasks hold to send to
//! one session (bounded in frames and in bytes), and its writer, the only writer of that
//! session's socket, which the session's own task polls.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use futures::Sink;
use tracing::{debug, warn};

use crate::close::{self, SessionError};
use crate::stats::{CloseReason, Stats};
use crate::transport::{Outbound, Text};

/// What the writer is asked to send.
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
    /// Wakes the session's task (which polls the writer) when the queue goes from empty to
    /// not empty, and for an abort.
    waker: AtomicWaker,
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
    /// Whether an abort was asked for.
    aborted: AtomicBool,
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
            waker: AtomicWaker::new(),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            pong_bytes: AtomicUsize::new(0),
            flush_asked: AtomicBool::new(false),
            capacity,
            max_bytes,
            abort: Mutex::new(None),
            aborted: AtomicBool::new(false),
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
        // wake it; a wake-up while it is busy only costs it one more look.
        if was_empty {
            self.waker.wake();
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

    /// Frames queued and not yet taken by the writer.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
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
        self.waker.wake();
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

    /// The next message, or `Pending` with the task registered for the next send. While it
    /// waits, the outbox holds no buffer at all.
    #[cfg(test)]
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Outgoing> {
        if let Ok(message) = self.try_recv() {
            return Poll::Ready(message);
        }
        self.batch = VecDeque::new();
        self.handle.waker.register(cx.waker());
        match self.try_recv() {
            Ok(message) => Poll::Ready(message),
            Err(Empty) => Poll::Pending,
        }
    }

    /// The next message, waiting for one.
    #[cfg(test)]
    pub(crate) async fn recv(&mut self) -> Outgoing {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut queue = self.handle.queue.lock().expect("outbox lock");
        queue.open = false;
        queue.items = VecDeque::new();
    }
}

/// What the writer reports to the session that polls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterEvent {
    /// The session was just aborted: what was queued is dropped, the close frame (if any) is
    /// on its way under `close_wait`. The session stops reading; polling the writer again
    /// goes on with the close.
    Aborted,
    /// The writer is done: the connection is closed or failed, or ends without a close frame.
    /// The outbox takes no more frames.
    Done,
}

/// Goes through the steps of a close; `Ready` once the sink is closed (or failed).
fn poll_close<Si>(stage: &mut CloseStage, sink: &mut Si, cx: &mut Context<'_>) -> Poll<()>
where
    Si: Sink<Outbound> + Unpin,
{
    loop {
        match stage {
            CloseStage::Send(code, reason) => match Pin::new(&mut *sink).poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {
                    let close = Outbound::Close(*code, std::mem::take(reason));
                    *stage = match Pin::new(&mut *sink).start_send(close) {
                        Ok(()) => CloseStage::Flush,
                        Err(_) => CloseStage::Close,
                    };
                }
                Poll::Ready(Err(_)) => *stage = CloseStage::Close,
            },
            CloseStage::Flush => match Pin::new(&mut *sink).poll_flush(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => *stage = CloseStage::Close,
            },
            CloseStage::Close => return Pin::new(&mut *sink).poll_close(cx).map(|_| ()),
        }
    }
}

/// Where a writer stands.
enum State {
    /// Draining the queue.
    Open,
    /// Ending the connection with a close frame of ours (or the answer to the client's),
    /// for at most `close_wait` from the start.
    Closing {
        stage: CloseStage,
        timer: Pin<Box<tokio::time::Sleep>>,
    },
    /// Flushing what was written, then dropping the connection without a close frame.
    Ending,
    /// Finished.
    Done,
}

/// The steps of a close: like `SinkExt::send` then `SinkExt::close`, errors ignored.
enum CloseStage {
    /// Send this close frame.
    Send(u16, String),
    /// Flush it.
    Flush,
    /// Close the sink (for tokio-tungstenite: flush the close handshake's frames).
    Close,
}

/// The only writer of a session's socket, polled by the session's own task (no task of its
/// own): drains the queue, feeding the frames already waiting (at most [`Writer::BATCH`]) before
/// one flush, until a close is asked for or the socket fails. An abort interrupts it, even
/// while a write waits on a full socket; then the close frame gets `close_wait` to go out
/// ([`crate::Options::close_wait`]).
pub(crate) struct Writer {
    /// `None` once done: dropping it closes the queue.
    rx: Option<Receiver>,
    handle: Arc<SessionHandle>,
    close_wait: Duration,
    batch: Batch,
}

/// A writer's progress through its current batch.
struct Batch {
    state: State,
    /// Frames fed since the last flush.
    fed: usize,
    /// Frames and bytes taken from the queue whose share of the bound is not yet given back
    /// (given back once per batch, see [`SessionHandle::taken`]).
    frames: usize,
    bytes: usize,
    /// Whether something was fed (or a flush asked for) since the last flush.
    dirty: bool,
    /// A flush in progress, with the pong bytes counted when it started.
    flushing: Option<usize>,
}

impl Writer {
    /// Frames fed before a flush, at most.
    pub(crate) const BATCH: usize = 64;

    /// A writer for the outbox whose receiving end is `rx`.
    pub(crate) fn new(rx: Receiver, close_wait: Duration) -> Writer {
        Writer {
            handle: rx.handle.clone(),
            rx: Some(rx),
            close_wait,
            batch: Batch {
                state: State::Open,
                fed: 0,
                frames: 0,
                bytes: 0,
                dirty: false,
                flushing: None,
            },
        }
    }

    /// Whether the outbox holds a quarter of its byte bound or more, so that the session
    /// should let the writer go before it reads on: replies to a run of large calls read in
    /// a row would otherwise pile up past the bound and close a client that does read
    /// (cheap: one atomic load).
    pub(crate) fn much_queued(&self) -> bool {
        self.handle.queued_bytes.load(Ordering::Relaxed) >= self.handle.max_bytes / 4
    }

    /// Whether an abort waits for this writer to take it (cheap: one atomic load).
    pub(crate) fn abort_waiting(&self) -> bool {
        matches!(self.batch.state, State::Open) && self.handle.aborted.load(Ordering::Acquire)
    }

    /// Writes what it can without waiting. `Pending` while there is nothing to write or the
    /// socket is full (the task is woken by the next frame, an abort or the socket); `Ready`
    /// on an abort (once) and when done (from then on).
    pub(crate) fn poll_write<Si>(
        &mut self,
        sink: &mut Si,
        cx: &mut Context<'_>,
    ) -> Poll<WriterEvent>
    where
        Si: Sink<Outbound> + Unpin,
    {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(WriterEvent::Done);
        };
        let polled = self.batch.poll(rx, &self.handle, self.close_wait, sink, cx);
        if polled == Poll::Ready(WriterEvent::Done) {
            // The queue closes: later sends fail, what is queued is freed.
            self.batch.state = State::Done;
            self.rx = None;
        }
        polled
    }

    /// Writes until done (an abort on the way is followed through).
    pub(crate) async fn finish<Si>(&mut self, sink: &mut Si)
    where
        Si: Sink<Outbound> + Unpin,
    {
        std::future::poll_fn(|cx| loop {
            match self.poll_write(sink, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(WriterEvent::Done) => return Poll::Ready(()),
                Poll::Ready(WriterEvent::Aborted) => {}
            }
        })
        .await
    }
}

impl Batch {
    fn poll<Si>(
        &mut self,
        rx: &mut Receiver,
        handle: &SessionHandle,
        close_wait: Duration,
        sink: &mut Si,
        cx: &mut Context<'_>,
    ) -> Poll<WriterEvent>
    where
        Si: Sink<Outbound> + Unpin,
    {
        let closing = |stage| State::Closing {
            stage,
            timer: Box::pin(tokio::time::sleep(close_wait)),
        };
        loop {
            match &mut self.state {
                State::Open => {
                    // Registered before looking, so a frame or abort after the look wakes us.
                    handle.waker.register(cx.waker());
                    if handle.aborted.load(Ordering::Acquire) {
                        // Only a filled slot counts: an aborter between its flag and its slot
                        // wakes us once it has filled it.
                        let abort = handle.abort.lock().expect("abort lock").take();
                        if let Some(frame) = abort {
                            self.give_back(handle);
                            rx.batch = VecDeque::new();
                            self.state = match frame {
                                Some((code, reason)) => closing(CloseStage::Send(code, reason)),
                                // The client closed: the WebSocket library answers it.
                                None => closing(CloseStage::Close),
                            };
                            return Poll::Ready(WriterEvent::Aborted);
                        }
                    }
                    if let Some(pongs) = self.flushing {
                        match Pin::new(&mut *sink).poll_flush(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Err(_)) => return Poll::Ready(WriterEvent::Done),
                            Poll::Ready(Ok(())) => {
                                handle.pong_bytes.fetch_sub(pongs, Ordering::Relaxed);
                                self.flushing = None;
                                self.fed = 0;
                            }
                        }
                    }
                    if self.fed == Writer::BATCH {
                        self.start_flush(handle);
                        continue;
                    }
                    match Pin::new(&mut *sink).poll_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(_)) => return Poll::Ready(WriterEvent::Done),
                        Poll::Ready(Ok(())) => {}
                    }
                    match rx.try_recv() {
                        Ok(Outgoing::Frame(frame)) => {
                            self.frames += 1;
                            self.bytes += frame.len();
                            self.fed += 1;
                            self.dirty = true;
                            if Pin::new(&mut *sink)
                                .start_send(Outbound::Text(frame))
                                .is_err()
                            {
                                return Poll::Ready(WriterEvent::Done);
                            }
                        }
                        Ok(Outgoing::Flush) => {
                            handle.flush_asked.store(false, Ordering::Release);
                            self.fed += 1;
                            self.dirty = true;
                        }
                        Ok(Outgoing::Close(close)) => {
                            self.give_back(handle);
                            let (code, reason) = *close;
                            self.state = closing(CloseStage::Send(code, reason));
                        }
                        Ok(Outgoing::End) => {
                            self.give_back(handle);
                            self.state = State::Ending;
                        }
                        Err(Empty) if self.dirty => self.start_flush(handle),
                        Err(Empty) => {
                            // Idle: the outbox holds no buffer while it waits.
                            rx.batch = VecDeque::new();
                            return Poll::Pending;
                        }
                    }
                }
                State::Ending => {
                    return match Pin::new(&mut *sink).poll_flush(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(_) => Poll::Ready(WriterEvent::Done),
                    }
                }
                State::Closing { stage, timer } => {
                    // The close first, then the timer (as `tokio::time::timeout` does): even
                    // a zero close_wait sends the close frame if the socket takes it at once.
                    return match poll_close(stage, sink, cx) {
                        Poll::Ready(()) => Poll::Ready(WriterEvent::Done),
                        Poll::Pending if timer.as_mut().poll(cx).is_ready() => {
                            Poll::Ready(WriterEvent::Done)
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
                State::Done => return Poll::Ready(WriterEvent::Done),
            }
        }
    }

    /// Gives back the bound's share of the frames taken so far.
    fn give_back(&mut self, handle: &SessionHandle) {
        handle.taken(self.frames, self.bytes);
        self.frames = 0;
        self.bytes = 0;
    }

    /// Ends a batch: gives back its share of the bound and starts its flush.
    fn start_flush(&mut self, handle: &SessionHandle) {
        self.give_back(handle);
        self.dirty = false;
        self.flushing = Some(handle.pong_bytes.load(Ordering::Relaxed));
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
        Writer::new(rx, Duration::from_secs(5))
            .finish(&mut sink.clone())
            .await;
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

    /// A sink whose socket is full for good (`poll_ready` never ready) or broken.
    struct Stuck {
        broken: bool,
    }

    impl Sink<Outbound> for Stuck {
        type Error = ();

        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            if self.broken {
                std::task::Poll::Ready(Err(()))
            } else {
                std::task::Poll::Pending
            }
        }

        fn start_send(self: std::pin::Pin<&mut Self>, _: Outbound) -> Result<(), ()> {
            Err(())
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            self.poll_ready_again()
        }

        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            self.poll_ready_again()
        }
    }

    impl Stuck {
        fn poll_ready_again(&self) -> std::task::Poll<Result<(), ()>> {
            if self.broken {
                std::task::Poll::Ready(Err(()))
            } else {
                std::task::Poll::Pending
            }
        }
    }

    #[tokio::test]
    async fn an_abort_interrupts_a_writer_stuck_on_a_full_socket_and_close_wait_ends_it() {
        let (handle, rx) = SessionHandle::new(Arc::from("s"), 1000, 1 << 20, Arc::default());
        assert!(handle.send(text(10)));
        let close_wait = Duration::from_millis(100);
        let mut writer = Writer::new(rx, close_wait);
        let mut sink = Stuck { broken: false };
        let first = std::future::poll_fn(|cx| Poll::Ready(writer.poll_write(&mut sink, cx))).await;
        assert_eq!(first, Poll::Pending, "waits on the full socket");
        assert!(!writer.abort_waiting());
        let started = tokio::time::Instant::now();
        handle.abort(close::KILLED, "stop");
        assert!(writer.abort_waiting());
        let aborted = std::future::poll_fn(|cx| writer.poll_write(&mut sink, cx));
        assert_eq!(aborted.await, WriterEvent::Aborted);
        // The close frame cannot go out either: close_wait ends the writer.
        tokio::time::timeout(Duration::from_secs(30), writer.finish(&mut sink))
            .await
            .expect("close_wait ends a writer stuck on a full socket");
        assert!(started.elapsed() >= close_wait);
        assert!(
            !handle.send(text(1)),
            "the outbox is closed once the writer is done"
        );
    }

    #[tokio::test]
    async fn a_writer_on_a_broken_socket_is_done_and_its_outbox_takes_no_more() {
        let (handle, rx) = SessionHandle::new(Arc::from("s"), 1000, 1 << 20, Arc::default());
        assert!(handle.send(text(10)));
        let mut writer = Writer::new(rx, Duration::from_secs(60));
        let mut sink = Stuck { broken: true };
        let done = std::future::poll_fn(|cx| writer.poll_write(&mut sink, cx));
        assert_eq!(done.await, WriterEvent::Done);
        let again = std::future::poll_fn(|cx| writer.poll_write(&mut sink, cx));
        assert_eq!(again.await, WriterEvent::Done);
        assert!(!handle.send(text(1)));
        assert!(handle.queue.lock().unwrap().items.is_empty());
    }

    #[tokio::test]
    async fn an_end_flushes_what_is_queued_and_sends_no_close_frame() {
        let (handle, rx) = SessionHandle::new(Arc::from("s"), 1000, 1 << 20, Arc::default());
        assert!(handle.send(Text::from("a")));
        handle.end("shutting down");
        assert!(handle.send(Text::from("too late")), "queued, never written");
        let sink = Recorder::default();
        Writer::new(rx, Duration::from_secs(5))
            .finish(&mut sink.clone())
            .await;
        assert_eq!(*sink.0.lock().unwrap(), ["a", "flush"]);
    }

    #[tokio::test]
    async fn a_zero_close_wait_still_sends_the_close_frame_the_socket_takes_at_once() {
        let (handle, rx) = SessionHandle::new(Arc::from("s"), 1000, 1 << 20, Arc::default());
        assert!(handle.send(Text::from("a")));
        handle.abort(close::KILLED, "now");
        let sink = Recorder::default();
        Writer::new(rx, Duration::ZERO)
            .finish(&mut sink.clone())
            .await;
        // The abort drops the queued frame; the close goes out.
        assert_eq!(
            *sink.0.lock().unwrap(),
            ["close 3000 now", "flush", "closed"]
        );
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
