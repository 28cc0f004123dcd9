//! The router's counters and gauges as plain atomics (no metrics dependency), and the
//! snapshot [`RouterStats`] that [`crate::Router::stats`] reads from them.
//!
//! Hot paths pay one relaxed atomic add per event: a fan-out is counted once with
//! `+= recipients`, nothing takes a lock per message. The gauges (sessions, subscriptions,
//! topics) are read from the router's own tables when a snapshot is taken.
//!
//! **Compiled out for measuring their cost**: built with `RUSTFLAGS="--cfg wamp_no_stats"`,
//! every increment here is a no-op (the counters stay at zero: [`crate::Router::stats`]
//! returns zeros for every counter and high-water mark, and `/metrics` shows zeros; the gauges
//! `sessions`, `subscriptions` and `topics` still come from the router's tables). It exists
//! only for `scripts/bench --scenarios counters` (BENCHMARKS.md, "The cost of the counters");
//! what it does not remove is the call's start `Instant` (two clock reads per call) and
//! computing a call's outcome label, which the callers do. Check it builds with
//! `RUSTFLAGS="--cfg wamp_no_stats" cargo check -p wamp-server --target-dir target/nostats`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use serde_json::Value;
use wamp_proto::uri::errors;

use crate::close::SessionError;
use crate::handler::CallError;

macro_rules! labels {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $label:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)*
        }

        impl $name {
            /// Every value, in the order of [`RouterStats`]' arrays.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The value's label in metrics (`snake_case`).
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$v => $label,)*
                }
            }
        }
    };
}

labels! {
    /// Why a session ended.
    CloseReason {
        /// The client closed the connection (a close frame, or the TCP connection ended
        /// after one).
        Client = "client",
        /// The connection ended without a close handshake, or the socket failed.
        Lost = "lost",
        /// The client broke the protocol: not a WAMP v1 client message, a binary frame, a
        /// WebSocket framing error or invalid UTF-8.
        ProtocolError = "protocol_error",
        /// The client did not read fast enough (its outgoing queue passed its bound).
        SlowConsumer = "slow_consumer",
        /// The session did not authenticate in time.
        AuthTimeout = "auth_timeout",
        /// The application closed it: an application error that asked for it, or
        /// [`crate::Router::close_session`].
        Killed = "killed",
        /// The router shut down.
        Shutdown = "shutdown",
        /// A per-session limit was passed (prefixes, subscriptions, URI length, message
        /// size).
        Limit = "limit",
        /// The session's task panicked (a bug in a hook or the server).
        Panic = "panic",
    }
}

impl CloseReason {
    /// The reason a [`SessionError`] counts under.
    pub fn of(e: &SessionError) -> CloseReason {
        match e {
            SessionError::Protocol(_)
            | SessionError::ServerMessage(_)
            | SessionError::Binary
            | SessionError::WebSocket(..) => CloseReason::ProtocolError,
            SessionError::TooBig(_) | SessionError::Limit { .. } => CloseReason::Limit,
            SessionError::AuthTimeout => CloseReason::AuthTimeout,
            SessionError::SlowConsumer | SessionError::SlowConsumerBytes(_) => {
                CloseReason::SlowConsumer
            }
            SessionError::Killed => CloseReason::Killed,
            SessionError::ShuttingDown => CloseReason::Shutdown,
            SessionError::ClientClosed => CloseReason::Client,
        }
    }
}

labels! {
    /// Why a connection was refused before it became a session.
    RefusedReason {
        /// Every session slot was taken ([`crate::Options::max_connections`], HTTP 503).
        Limit = "limit",
        /// Too many connections in their handshakes
        /// ([`crate::Options::max_pending_handshakes`], closed at accept).
        Pending = "pending_limit",
        /// A browser origin not allowed ([`crate::Options::allowed_origins`], HTTP 403).
        Origin = "origin",
        /// No acceptable `wamp` subprotocol (HTTP 400).
        Subprotocol = "subprotocol",
        /// The handshakes did not complete within [`crate::Options::handshake_timeout`].
        HandshakeTimeout = "handshake_timeout",
        /// The TLS handshake failed.
        Tls = "tls",
        /// The WebSocket handshake failed (not a valid upgrade request).
        Handshake = "handshake",
    }
}

impl RefusedReason {
    /// The reason for a refusal of [`crate::handshake::check`].
    pub fn of(refusal: &crate::handshake::Refusal) -> RefusedReason {
        if refusal.status == http::StatusCode::FORBIDDEN {
            RefusedReason::Origin
        } else {
            RefusedReason::Subprotocol
        }
    }
}

labels! {
    /// How a CALL was answered.
    CallOutcome {
        /// A CALLRESULT.
        Result = "result",
        /// `#notfound`: no such procedure.
        NotFound = "notfound",
        /// `#unauthorized`: the session may not call it (permissions, or a `before_call`
        /// hook that refused).
        Unauthorized = "unauthorized",
        /// `#internal`: the handler panicked or failed unexpectedly.
        Internal = "internal",
        /// Any other error URI: the application's own errors.
        Application = "application",
    }
}

impl CallOutcome {
    /// The outcome of a call's result.
    pub fn of(result: &Result<Value, CallError>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Result,
            Err(e) if e.uri == errors::NOT_FOUND.uri => CallOutcome::NotFound,
            Err(e) if e.uri == errors::UNAUTHORIZED.uri => CallOutcome::Unauthorized,
            Err(e) if e.uri == errors::INTERNAL.uri => CallOutcome::Internal,
            Err(_) => CallOutcome::Application,
        }
    }
}

labels! {
    /// How an authentication step ended.
    AuthResult {
        /// `auth` with a valid signature (or anonymous): the session is authenticated.
        Success = "success",
        /// `auth` or `authreq` answered with an error (unknown key, invalid signature,
        /// anonymous forbidden, a failed credential lookup, a bad argument).
        Failure = "failure",
    }
}

/// The upper bounds of the call duration histogram's buckets, in seconds (the last bucket,
/// `+Inf`, is implied).
pub const CALL_DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many WAMP v1 message types there are (type ids 0 to 8).
const MESSAGE_TYPES: usize = 9;

/// The types a client sends, and the types a server sends.
const CLIENT_TYPES: [u64; 5] = {
    use wamp_proto::message::*;
    [
        TYPE_PREFIX,
        TYPE_CALL,
        TYPE_SUBSCRIBE,
        TYPE_UNSUBSCRIBE,
        TYPE_PUBLISH,
    ]
};
const SERVER_TYPES: [u64; 4] = {
    use wamp_proto::message::*;
    [TYPE_WELCOME, TYPE_CALLRESULT, TYPE_CALLERROR, TYPE_EVENT]
};

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The live counters, one per router, shared by its sessions' outboxes.
#[derive(Debug)]
pub(crate) struct Stats {
    sessions_opened: AtomicU64,
    sessions_closed: [AtomicU64; CloseReason::ALL.len()],
    refused: [AtomicU64; RefusedReason::ALL.len()],
    received: [AtomicU64; MESSAGE_TYPES],
    sent: [AtomicU64; MESSAGE_TYPES],
    received_bytes: AtomicU64,
    sent_bytes: AtomicU64,
    calls: [AtomicU64; CallOutcome::ALL.len()],
    /// Not cumulative: one count per bucket, the last for `+Inf`.
    call_buckets: [AtomicU64; CALL_DURATION_BUCKETS.len() + 1],
    call_nanos: AtomicU64,
    auth: [AtomicU64; AuthResult::ALL.len()],
    publishes: AtomicU64,
    deliveries: AtomicU64,
    outbox_frames_high: AtomicUsize,
    outbox_bytes_high: AtomicUsize,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            sessions_opened: AtomicU64::new(0),
            sessions_closed: counters(),
            refused: counters(),
            received: counters(),
            sent: counters(),
            received_bytes: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            calls: counters(),
            call_buckets: counters(),
            call_nanos: AtomicU64::new(0),
            auth: counters(),
            publishes: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            outbox_frames_high: AtomicUsize::new(0),
            outbox_bytes_high: AtomicUsize::new(0),
        }
    }
}

#[inline(always)]
fn add(counter: &AtomicU64, n: u64) {
    #[cfg(not(wamp_no_stats))]
    counter.fetch_add(n, Relaxed);
    #[cfg(wamp_no_stats)]
    let _ = (counter, n);
}

/// Raises a high-water mark; a plain load first, so the usual case (no new high) does not
/// write the shared cache line.
#[inline(always)]
fn raise(mark: &AtomicUsize, value: usize) {
    #[cfg(not(wamp_no_stats))]
    if value > mark.load(Relaxed) {
        mark.fetch_max(value, Relaxed);
    }
    #[cfg(wamp_no_stats)]
    let _ = (mark, value);
}

impl Stats {
    pub(crate) fn session_opened(&self) {
        add(&self.sessions_opened, 1);
    }

    pub(crate) fn session_closed(&self, reason: CloseReason) {
        add(&self.sessions_closed[reason as usize], 1);
    }

    pub(crate) fn refused(&self, reason: RefusedReason) {
        add(&self.refused[reason as usize], 1);
    }

    /// A valid client message of this type id was read.
    pub(crate) fn received(&self, type_id: u64) {
        if let Some(c) = self.received.get(type_id as usize) {
            add(c, 1);
        }
    }

    /// A text frame of `bytes` bytes was read (valid or not).
    pub(crate) fn received_bytes(&self, bytes: usize) {
        add(&self.received_bytes, bytes as u64);
    }

    /// `n` messages of this type id, `bytes` bytes each, were queued for sending.
    pub(crate) fn sent(&self, type_id: u64, n: usize, bytes: usize) {
        if let Some(c) = self.sent.get(type_id as usize) {
            add(c, n as u64);
        }
        add(&self.sent_bytes, (n * bytes) as u64);
    }

    /// A call to a registered procedure was answered after `took`.
    pub(crate) fn call(&self, outcome: CallOutcome, took: Duration) {
        if cfg!(wamp_no_stats) {
            return; // Not even the bucket search.
        }
        add(&self.calls[outcome as usize], 1);
        let secs = took.as_secs_f64();
        let bucket = CALL_DURATION_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(CALL_DURATION_BUCKETS.len());
        add(&self.call_buckets[bucket], 1);
        add(
            &self.call_nanos,
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
        );
    }

    /// A call answered without running a procedure (`#notfound`, `#unauthorized`).
    pub(crate) fn call_refused(&self, outcome: CallOutcome) {
        add(&self.calls[outcome as usize], 1);
    }

    pub(crate) fn auth(&self, result: AuthResult) {
        add(&self.auth[result as usize], 1);
    }

    /// A publication (a client's or the server's) went to `n` sessions, the event frame
    /// being `bytes` long. Returns `n`.
    #[inline]
    pub(crate) fn published(&self, n: usize, bytes: usize) -> usize {
        add(&self.publishes, 1);
        add(&self.deliveries, n as u64);
        self.sent(wamp_proto::message::TYPE_EVENT, n, bytes);
        n
    }

    /// A session's outbox holds `frames` frames of `bytes` bytes.
    pub(crate) fn outbox(&self, frames: usize, bytes: usize) {
        raise(&self.outbox_frames_high, frames);
        raise(&self.outbox_bytes_high, bytes);
    }

    /// The counters now, with the gauges given by the router.
    pub(crate) fn snapshot(
        &self,
        sessions: usize,
        topics: usize,
        subscriptions: usize,
    ) -> RouterStats {
        let load = |c: &AtomicU64| c.load(Relaxed);
        let by_type = |counters: &[AtomicU64; MESSAGE_TYPES], types: &[u64]| {
            types
                .iter()
                .filter_map(|&id| {
                    let name = wamp_proto::message::type_name(id)?;
                    Some((name, load(&counters[id as usize])))
                })
                .collect()
        };
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(CALL_DURATION_BUCKETS.len() + 1);
        for (i, c) in self.call_buckets.iter().enumerate() {
            cumulative += load(c);
            let bound = CALL_DURATION_BUCKETS
                .get(i)
                .copied()
                .unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        RouterStats {
            sessions,
            sessions_opened: load(&self.sessions_opened),
            sessions_closed: CloseReason::ALL
                .iter()
                .map(|&r| (r, load(&self.sessions_closed[r as usize])))
                .collect(),
            connections_refused: RefusedReason::ALL
                .iter()
                .map(|&r| (r, load(&self.refused[r as usize])))
                .collect(),
            messages_received: by_type(&self.received, &CLIENT_TYPES),
            messages_sent: by_type(&self.sent, &SERVER_TYPES),
            received_bytes: load(&self.received_bytes),
            sent_bytes: load(&self.sent_bytes),
            calls: CallOutcome::ALL
                .iter()
                .map(|&o| (o, load(&self.calls[o as usize])))
                .collect(),
            call_duration: CallDurations {
                buckets,
                count: cumulative,
                sum_seconds: load(&self.call_nanos) as f64 / 1e9,
            },
            auth: AuthResult::ALL
                .iter()
                .map(|&r| (r, load(&self.auth[r as usize])))
                .collect(),
            subscriptions,
            topics,
            publishes: load(&self.publishes),
            deliveries: load(&self.deliveries),
            outbox_frames_high_water: self.outbox_frames_high.load(Relaxed),
            outbox_bytes_high_water: self.outbox_bytes_high.load(Relaxed),
        }
    }
}

/// The call duration histogram: how long calls to registered procedures took, from the
/// CALL read to the reply queued.
#[derive(Debug, Clone, PartialEq)]
pub struct CallDurations {
    /// `(upper bound in seconds, calls that took at most that long)`, cumulative, the bounds
    /// of [`CALL_DURATION_BUCKETS`] then `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    /// How many calls were timed (the `+Inf` bucket).
    pub count: u64,
    /// Their total duration in seconds.
    pub sum_seconds: f64,
}

/// A snapshot of a router's counters ([`crate::Router::stats`]). Counters (`u64`) only grow
/// from the router's start; gauges (`usize`) are the value now. The `(label, count)` lists
/// have one entry for every label, zero or not, in the order of the label type's `ALL`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterStats {
    /// Gauge: sessions open now.
    pub sessions: usize,
    /// Sessions opened (a WELCOME was queued).
    pub sessions_opened: u64,
    /// Sessions ended, by why. A session counts here once its task ends.
    pub sessions_closed: Vec<(CloseReason, u64)>,
    /// Connections refused before they became sessions, by why.
    pub connections_refused: Vec<(RefusedReason, u64)>,
    /// Valid client messages read, by type name as the spec writes it (`"CALL"`): PREFIX,
    /// CALL, SUBSCRIBE, UNSUBSCRIBE, PUBLISH (a server type sent by a client closes the
    /// session as a protocol error and is not counted here).
    pub messages_received: Vec<(&'static str, u64)>,
    /// Messages queued for sending to sessions, by type name: WELCOME, CALLRESULT,
    /// CALLERROR, EVENT.
    pub messages_sent: Vec<(&'static str, u64)>,
    /// Bytes of text frames read from clients (valid or not).
    pub received_bytes: u64,
    /// Bytes of text frames queued for sending (an event to 100 sessions counts 100 times).
    pub sent_bytes: u64,
    /// Calls answered, by outcome (`#authreq`/`#auth` count under [`RouterStats::auth`]
    /// instead).
    pub calls: Vec<(CallOutcome, u64)>,
    /// How long calls to registered procedures took (not `#notfound`, nor the
    /// `#unauthorized` of permissions).
    pub call_duration: CallDurations,
    /// Authentication steps, by result.
    pub auth: Vec<(AuthResult, u64)>,
    /// Gauge: subscriptions now (a session subscribed to a topic counts once).
    pub subscriptions: usize,
    /// Gauge: topics with at least one subscriber now.
    pub topics: usize,
    /// Publications relayed (a client's PUBLISH that passed its policy, or the server's
    /// own), whether or not anyone received them.
    pub publishes: u64,
    /// Events queued for sessions: the sum of every publication's recipients.
    pub deliveries: u64,
    /// The most frames any session's outgoing queue held at once.
    pub outbox_frames_high_water: usize,
    /// The most bytes any session's outgoing queue held at once.
    pub outbox_bytes_high_water: usize,
}

impl RouterStats {
    /// Sessions closed for this reason.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        find(&self.sessions_closed, &reason)
    }

    /// Connections refused for this reason.
    pub fn refused(&self, reason: RefusedReason) -> u64 {
        find(&self.connections_refused, &reason)
    }

    /// Calls answered with this outcome.
    pub fn calls_with(&self, outcome: CallOutcome) -> u64 {
        find(&self.calls, &outcome)
    }

    /// Authentication steps with this result.
    pub fn auths(&self, result: AuthResult) -> u64 {
        find(&self.auth, &result)
    }

    /// Client messages of this type read (`"CALL"`).
    pub fn received(&self, type_name: &str) -> u64 {
        find(&self.messages_received, &type_name)
    }

    /// Messages of this type queued for sending (`"EVENT"`).
    pub fn sent(&self, type_name: &str) -> u64 {
        find(&self.messages_sent, &type_name)
    }
}

fn find<K: PartialEq<Q>, Q>(list: &[(K, u64)], key: &Q) -> u64 {
    list.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts, or with `--cfg wamp_no_stats` stays at zero (the gauges still pass through).
    #[test]
    fn increments_count_unless_compiled_out() {
        let stats = Stats::default();
        assert_eq!(
            stats.published(3, 10),
            3,
            "the recipients are returned either way"
        );
        stats.call(CallOutcome::Result, Duration::from_millis(2));
        stats.outbox(5, 500);
        stats.session_opened();
        let snap = stats.snapshot(7, 2, 4);
        let on = u64::from(!cfg!(wamp_no_stats));
        assert_eq!(snap.publishes, on);
        assert_eq!(snap.deliveries, 3 * on);
        assert_eq!(snap.sent("EVENT"), 3 * on);
        assert_eq!(snap.sent_bytes, 30 * on);
        assert_eq!(snap.calls_with(CallOutcome::Result), on);
        assert_eq!(snap.call_duration.count, on);
        assert_eq!(snap.sessions_opened, on);
        assert_eq!(snap.outbox_frames_high_water, 5 * on as usize);
        assert_eq!(snap.outbox_bytes_high_water, 500 * on as usize);
        assert_eq!((snap.sessions, snap.topics, snap.subscriptions), (7, 2, 4));
    }
}
