//! Plain option types: how to connect (timeouts, subprotocol check, reconnect policy,
//! credentials), the connection states a client goes through, and who receives a publish.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use wamp_proto::cra::CraStyle;
use wamp_proto::{Exclude, Message};

use crate::client::Client;
use crate::error::Result;

/// How a [`Client`] connects and what it does when the link drops.
///
/// Every setter consumes and returns the options, so they chain; [`ConnectOptions::connect`]
/// ends the chain.
///
/// ```no_run
/// use std::time::Duration;
/// use wamp_client::{ConnectOptions, ReconnectPolicy};
///
/// # async fn run() -> wamp_client::Result<()> {
/// let client = ConnectOptions::new()
///     .connect_timeout(Duration::from_secs(5))
///     .call_timeout(Some(Duration::from_secs(10)))
///     .reconnect(ReconnectPolicy::new(60, Duration::from_secs(30)))
///     .prefix("rpc", "http://wamptutorial/rpc#")
///     .auth("guest", "secret-password")
///     .connect("ws://localhost:8080/ws")
///     .await?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) skip_subprotocol_check: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) cra_style: CraStyle,
    pub(crate) prefixes: Vec<(String, String)>,
    pub(crate) subscription_capacity: usize,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) max_message_size: usize,
    pub(crate) tls: TlsOptions,
}

/// How a `wss://` connection decides whom to trust.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    /// Extra CA certificates (PEM files), trusted besides the OS store.
    pub(crate) ca_files: Vec<PathBuf>,
    /// Accept any certificate (signatures still checked), warning each time.
    pub(crate) insecure: bool,
    /// The configuration to use: the application's, or the one built from the above
    /// (once, when the client connects).
    #[cfg(feature = "tls")]
    pub(crate) config: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TlsOptions");
        d.field("ca_files", &self.ca_files)
            .field("insecure", &self.insecure);
        #[cfg(feature = "tls")]
        d.field("custom_config", &self.config.is_some());
        d.finish()
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            skip_subprotocol_check: false,
            connect_timeout: Duration::from_secs(10),
            call_timeout: Some(Duration::from_secs(60)),
            reconnect: ReconnectPolicy::default(),
            credentials: None,
            cra_style: CraStyle::Auto,
            prefixes: Vec::new(),
            subscription_capacity: 4096,
            ping_interval: Some(Duration::from_secs(30)),
            max_message_size: 16 << 20,
            tls: TlsOptions::default(),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("skip_subprotocol_check", &self.skip_subprotocol_check)
            .field("connect_timeout", &self.connect_timeout)
            .field("call_timeout", &self.call_timeout)
            .field("reconnect", &self.reconnect)
            .field("credentials", &self.credentials)
            .field("cra_style", &self.cra_style)
            .field("prefixes", &self.prefixes)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("ping_interval", &self.ping_interval)
            .field("max_message_size", &self.max_message_size)
            .field("tls", &self.tls)
            .finish()
    }
}

impl ConnectOptions {
    /// The defaults: subprotocol checked, 10 s connect timeout, 60 s call timeout,
    /// [`ReconnectPolicy::default`], no credentials, 4096 buffered events per subscription,
    /// a WebSocket ping every 30 s, messages up to 16 MiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept a server that does not select the `wamp` subprotocol (AutobahnJS's
    /// `skipSubprotocolCheck`). The client still offers `wamp`; if the server's answer lacks
    /// it, the client connects once more without offering any subprotocol (the WebSocket
    /// library refuses a handshake in which an offered subprotocol was not selected).
    pub fn skip_subprotocol_check(mut self, skip: bool) -> Self {
        self.skip_subprotocol_check = skip;
        self
    }

    /// The longest one connection attempt may take: TCP connect, WebSocket handshake, the
    /// WELCOME message and, with [`ConnectOptions::auth`], authentication. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The default time a call waits for its answer before failing with
    /// [`Error::Timeout`](crate::Error::Timeout); `None` waits as long as the connection
    /// lives. Default 60 s. One call or one handle can use another with
    /// [`Client::with_call_timeout`].
    pub fn call_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// What to do when the link drops. Default: [`ReconnectPolicy::default`].
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Authenticate with WAMP-CRA on every connection, before anything else is sent; the
    /// first connect fails if authentication does: with
    /// [`Error::AuthRefused`](crate::Error::AuthRefused) (the server's CALLERROR URI and
    /// description) when the server refuses, [`Error::Auth`](crate::Error::Auth) when the
    /// client cannot use its challenge. A refusal on a reconnect closes the client.
    /// (Authenticating later with [`Client::authenticate`] also makes reconnects
    /// authenticate.)
    pub fn auth(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::new(
            key.into(),
            secret.into(),
            None,
            self.cra_style,
        ));
        self
    }

    /// How WAMP-CRA signs the server's challenge, for [`ConnectOptions::auth`] and
    /// [`Client::authenticate`]: [`CraStyle::Standard`] (`HMAC(key = secret, message =
    /// challenge)`, with PBKDF2 for a salted challenge: AutobahnPython, AutobahnJS, this
    /// project's server), [`CraStyle::CljWamp`] (`HMAC(key = challenge, message = secret)`:
    /// clj-wamp 1.0's server), or [`CraStyle::Auto`], the default, which signs a challenge
    /// that is a JSON object the standard way and an opaque one the clj-wamp way.
    pub fn cra_style(mut self, style: CraStyle) -> Self {
        self.cra_style = style;
        if let Some(credentials) = &mut self.credentials {
            credentials.style = style;
        }
        self
    }

    /// Define a CURIE prefix from the start, as [`Client::prefix`] would; it is sent on every
    /// connection, and [`Client::subscribe`] can use it (a subscription needs the client to
    /// know the prefix, even one the server has by default).
    pub fn prefix(mut self, prefix: impl Into<String>, uri: impl Into<String>) -> Self {
        self.prefixes.push((prefix.into(), uri.into()));
        self
    }

    /// How many events a subscription buffers for a reader that has not taken them yet
    /// (minimum 1, default 4096). When the buffer is full, newer events for that
    /// subscription are dropped and counted
    /// ([`Subscription::dropped`](crate::Subscription::dropped)): a slow reader never stalls
    /// the connection, its calls or other subscriptions.
    pub fn subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = capacity.max(1);
        self
    }

    /// Send a WebSocket ping this often, and treat the link as dead when nothing at all has
    /// been received for two intervals (WAMP v1 has no heartbeat of its own). `None`
    /// disables both. Default 30 s.
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval.filter(|d| !d.is_zero());
        self
    }

    /// The largest message accepted from the server, in bytes (default 16 MiB); a larger one
    /// drops the connection.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Trust the CA certificates in this PEM file for `wss://`, besides the operating
    /// system's store (or, where that is empty, the webpki-roots Mozilla roots). Call it again
    /// for more files. A file that cannot be read or holds no certificate fails `connect`
    /// with [`Error::TlsSetup`](crate::Error::TlsSetup). For a server with a self-signed
    /// certificate, this file is the certificate itself.
    #[cfg(feature = "tls")]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_files.push(path.into());
        self
    }

    /// Use this rustls configuration for `wss://` instead of building one (the trust
    /// settings [`ConnectOptions::ca_file`] and [`ConnectOptions::insecure`] are then not
    /// used). Build it with the re-exported [`rustls`](crate::rustls) and its ring provider.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls.config = Some(config);
        self
    }

    /// For testing only: accept any certificate on `wss://` (expired, self-signed, for
    /// another name). The connection is still encrypted and the server must still hold the
    /// key of the certificate it shows, but anyone could be at the other end. Every
    /// connection made this way logs a warning.
    #[cfg(feature = "tls")]
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.tls.insecure = insecure;
        self
    }

    /// Connects to `url` (`ws://host:port/path`, or `wss://` with the `tls` feature) with
    /// these options. Returns once the
    /// server's WELCOME has arrived (and authentication, if configured, has succeeded); the
    /// returned client's driver task then runs in the background.
    pub async fn connect(self, url: &str) -> Result<Client> {
        Client::connect_with(url, self).await
    }
}

/// What a client does when its connection drops: how often and how fast it tries again.
///
/// Delay before attempt `n` (1-based) is `delay * backoff^(n-1)`, at most `max_delay`.
/// The attempt count starts again at 1 for every outage.
///
/// ```
/// use std::time::Duration;
/// use wamp_client::ReconnectPolicy;
///
/// // The seed tutorial page: 60 attempts, 30 s apart.
/// let seed = ReconnectPolicy::new(60, Duration::from_secs(30));
/// assert_eq!(seed.delay_for(60), Some(Duration::from_secs(30)));
/// assert_eq!(seed.delay_for(61), None);
///
/// let exp = ReconnectPolicy::new(5, Duration::from_millis(100)).backoff(2.0);
/// assert_eq!(exp.delay_for(3), Some(Duration::from_millis(400)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    max_retries: Option<u32>,
    delay: Duration,
    backoff: f64,
    max_delay: Duration,
}

impl Default for ReconnectPolicy {
    /// Up to 10 attempts, the first after 1 s, doubling each time, at most 30 s apart.
    fn default() -> Self {
        ReconnectPolicy {
            max_retries: Some(10),
            delay: Duration::from_secs(1),
            backoff: 2.0,
            max_delay: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// Never reconnect: a dropped link closes the client.
    pub fn never() -> Self {
        ReconnectPolicy {
            max_retries: Some(0),
            ..Self::default()
        }
    }

    /// Up to `max_retries` attempts per outage, `delay` apart (no backoff until
    /// [`ReconnectPolicy::backoff`] says so).
    pub fn new(max_retries: u32, delay: Duration) -> Self {
        ReconnectPolicy {
            max_retries: Some(max_retries),
            delay,
            backoff: 1.0,
            max_delay: delay.max(Duration::from_secs(30)),
        }
    }

    /// Try again for as long as it takes, `delay` apart.
    pub fn forever(delay: Duration) -> Self {
        ReconnectPolicy {
            max_retries: None,
            ..Self::new(0, delay)
        }
    }

    /// Multiply the delay by `factor` after each failed attempt (1.0 keeps it constant;
    /// values below 1.0 are taken as 1.0).
    pub fn backoff(mut self, factor: f64) -> Self {
        self.backoff = if factor.is_finite() && factor > 1.0 {
            factor
        } else {
            1.0
        };
        self
    }

    /// The longest delay between two attempts, however far the backoff has grown.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// The maximum number of attempts per outage (`None`: unlimited).
    pub fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// The delay before attempt `attempt` (1-based), or `None` when the policy has given up
    /// by then.
    pub fn delay_for(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || self.max_retries.is_some_and(|max| attempt > max) {
            return None;
        }
        let factor = self.backoff.powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = (self.delay.as_secs_f64() * factor).min(self.max_delay.as_secs_f64());
        // A max_delay below delay still wins: it is the cap.
        Some(Duration::from_secs_f64(secs.max(0.0)).min(self.max_delay.max(Duration::ZERO)))
    }
}

/// Where a client's connection stands. Watch it with
/// [`Client::state_changes`](crate::Client::state_changes); a
/// [`tokio::sync::watch`] keeps only the latest state, so a fast sequence of changes may be
/// seen as its last one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// A WAMP session is up.
    Connected {
        /// The session id from the server's WELCOME.
        session_id: String,
        /// The server ident from the server's WELCOME, e.g. `wamp-server/0.1.0`.
        server_ident: String,
    },
    /// The link dropped; the client is waiting before, or busy with, attempt `attempt`.
    Reconnecting {
        /// The attempt number in this outage, from 1.
        attempt: u32,
        /// Why the link dropped, or why the previous attempt failed.
        reason: String,
    },
    /// The client is closed for good: every operation fails with
    /// [`Error::Closed`](crate::Error::Closed) and every subscription stream has ended.
    Closed {
        /// Why: closed by the application, the reconnect policy gave up, or
        /// re-authentication failed.
        reason: String,
    },
}

impl ConnectionState {
    /// True for [`ConnectionState::Connected`].
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnectionState::Connected { .. })
    }

    /// True for [`ConnectionState::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, ConnectionState::Closed { .. })
    }
}

/// WAMP-CRA credentials kept to authenticate again after a reconnect. The secret is never
/// printed.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) key: String,
    pub(crate) secret: String,
    pub(crate) extra: Option<Map<String, Value>>,
    pub(crate) style: CraStyle,
}

impl Credentials {
    pub(crate) fn new(
        key: String,
        secret: String,
        extra: Option<Map<String, Value>>,
        style: CraStyle,
    ) -> Self {
        Credentials {
            key,
            secret,
            extra,
            style,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .field("extra", &self.extra)
            .field("style", &self.style)
            .finish()
    }
}

/// Who receives a published event: see [`Client::publish_with`](crate::Client::publish_with).
///
/// The server computes recipients = (subscribers ∩ eligible) − exclude.
///
/// ```
/// use wamp_client::PublishOptions;
/// let everyone_but_me = PublishOptions::new().exclude_me(true);
/// let only_these = PublishOptions::new().eligible(["s1-session-id", "s2-session-id"]);
/// let not_those = PublishOptions {
///     exclude: vec!["s3-session-id".into()],
///     ..Default::default()
/// };
/// # drop((everyone_but_me, only_these, not_those));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// `Some(true)`: this session does not receive its own event; `Some(false)`: it does,
    /// even on a server whose default is to leave the publisher out; `None`: the server's
    /// default.
    pub exclude_me: Option<bool>,
    /// Session ids that do not receive the event.
    pub exclude: Vec<String>,
    /// If set, only these session ids may receive the event.
    pub eligible: Option<Vec<String>>,
}

impl PublishOptions {
    /// No options: the plain `[7, topic, event]`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`PublishOptions::exclude_me`].
    pub fn exclude_me(mut self, exclude_me: bool) -> Self {
        self.exclude_me = Some(exclude_me);
        self
    }

    /// Adds session ids to [`PublishOptions::exclude`].
    pub fn exclude<I, S>(mut self, sessions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude.extend(sessions.into_iter().map(Into::into));
        self
    }

    /// Sets [`PublishOptions::eligible`].
    pub fn eligible<I, S>(mut self, sessions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.eligible = Some(sessions.into_iter().map(Into::into).collect());
        self
    }

    /// The PUBLISH message for these options. `me` is this client's session id, needed when
    /// `exclude_me` has to be said with an exclude list (the wire has room for only one of
    /// the two).
    pub(crate) fn into_message(self, topic: String, event: Value, me: Option<&str>) -> Message {
        let PublishOptions {
            exclude_me,
            mut exclude,
            eligible,
        } = self;
        // An eligible list without exclusions needs an element 3 on the wire;
        // `Message::to_json` writes it (an empty list), so `None` says "nobody excluded".
        let exclude = if exclude.is_empty() {
            exclude_me.map(Exclude::Me)
        } else {
            if exclude_me == Some(true) {
                if let Some(me) = me {
                    if !exclude.iter().any(|s| s == me) {
                        exclude.push(me.to_string());
                    }
                }
            }
            Some(Exclude::Sessions(exclude))
        };
        Message::Publish {
            topic_uri: topic,
            event,
            exclude,
            eligible,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(options: PublishOptions) -> String {
        options
            .into_message("event:chat".into(), json!("hi"), Some("ME"))
            .to_json()
    }

    #[test]
    fn publish_uses_the_shortest_form() {
        assert_eq!(wire(PublishOptions::new()), r#"[7,"event:chat","hi"]"#);
        assert_eq!(
            wire(PublishOptions::new().exclude_me(true)),
            r#"[7,"event:chat","hi",true]"#
        );
        assert_eq!(
            wire(PublishOptions::new().exclude_me(false)),
            r#"[7,"event:chat","hi",false]"#
        );
        assert_eq!(
            wire(PublishOptions::new().exclude(["a", "b"])),
            r#"[7,"event:chat","hi",["a","b"]]"#
        );
        assert_eq!(
            wire(PublishOptions::new().eligible(["a"])),
            r#"[7,"event:chat","hi",[],["a"]]"#
        );
        assert_eq!(
            wire(PublishOptions::new().exclude(["b"]).eligible(["a", "b"])),
            r#"[7,"event:chat","hi",["b"],["a","b"]]"#
        );
        assert_eq!(
            wire(PublishOptions::new().exclude_me(true).eligible(["a"])),
            r#"[7,"event:chat","hi",true,["a"]]"#
        );
    }

    #[test]
    fn exclude_me_with_a_list_adds_the_own_session_once() {
        assert_eq!(
            wire(PublishOptions::new().exclude_me(true).exclude(["a"])),
            r#"[7,"event:chat","hi",["a","ME"]]"#
        );
        assert_eq!(
            wire(PublishOptions::new().exclude_me(true).exclude(["ME"])),
            r#"[7,"event:chat","hi",["ME"]]"#
        );
        assert_eq!(
            wire(PublishOptions::new().exclude_me(false).exclude(["a"])),
            r#"[7,"event:chat","hi",["a"]]"#
        );
    }

    #[test]
    fn never_gives_up_at_once() {
        assert_eq!(ReconnectPolicy::never().delay_for(1), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = ReconnectPolicy::new(100, Duration::from_secs(1))
            .backoff(2.0)
            .max_delay(Duration::from_secs(10));
        assert_eq!(p.delay_for(1), Some(Duration::from_secs(1)));
        assert_eq!(p.delay_for(2), Some(Duration::from_secs(2)));
        assert_eq!(p.delay_for(4), Some(Duration::from_secs(8)));
        assert_eq!(p.delay_for(5), Some(Duration::from_secs(10)));
        assert_eq!(p.delay_for(100), Some(Duration::from_secs(10)));
        assert_eq!(p.delay_for(101), None);
        assert_eq!(p.delay_for(0), None);
    }

    #[test]
    fn forever_never_gives_up_and_bad_backoff_is_constant() {
        let p = ReconnectPolicy::forever(Duration::from_millis(5)).backoff(f64::NAN);
        assert_eq!(p.max_retries(), None);
        assert_eq!(p.delay_for(u32::MAX), Some(Duration::from_millis(5)));
        let p = ReconnectPolicy::new(3, Duration::from_millis(5)).backoff(0.5);
        assert_eq!(p.delay_for(3), Some(Duration::from_millis(5)));
    }

    #[test]
    fn default_policy_and_options() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.max_retries(), Some(10));
        assert_eq!(p.delay_for(2), Some(Duration::from_secs(2)));
        assert_eq!(p.delay_for(10), Some(Duration::from_secs(30)));
        let o = ConnectOptions::new()
            .auth("k", "very-secret")
            .subscription_capacity(0)
            .ping_interval(Some(Duration::ZERO));
        assert_eq!(o.subscription_capacity, 1);
        assert_eq!(o.ping_interval, None);
        let shown = format!("{o:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(o.cra_style, CraStyle::Auto);
        let o = o.cra_style(CraStyle::CljWamp);
        assert_eq!(o.credentials.as_ref().unwrap().style, CraStyle::CljWamp);
        let o = ConnectOptions::new()
            .cra_style(CraStyle::Standard)
            .auth("k", "s");
        assert_eq!(o.credentials.unwrap().style, CraStyle::Standard);
    }
}
