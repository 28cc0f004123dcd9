//! [`Client`]: the cloneable handle. Connect, call, subscribe, publish, prefix,
//! authenticate, close; each operation is a message to the driver task.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use wamp_proto::cra::CraStyle;
use wamp_proto::Permissions;

use crate::connect::{self, Caller, Target};
use crate::driver::{self, Command, Control, Driver};
use crate::error::{Error, Result};
use crate::options::{ConnectOptions, ConnectionState, Credentials, PublishOptions};
use crate::registry::LocalSub;
use crate::subscription::Subscription;

/// A connection to a WAMP v1 server.
///
/// `Client` is a cheap handle (an `Arc` and a timeout): clone it freely and use it from any
/// task. All clones talk to one driver task, which `connect` spawns and which alone owns the
/// WebSocket. The driver stops, closing the connection, when [`Client::close`] is called or
/// when the last handle (clients and [`Subscription`]s) is dropped.
///
/// See the [crate docs](crate) for an example of every operation.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    call_timeout: Option<Duration>,
}

/// What every clone of a client shares.
struct Shared {
    url: String,
    cmd: mpsc::Sender<Command>,
    control: mpsc::UnboundedSender<Control>,
    state: watch::Receiver<ConnectionState>,
    next_subscription: AtomicU64,
    subscription_capacity: usize,
    calls: CallIds,
    cra_style: CraStyle,
}

/// Call ids: 16 characters, a random prefix of 10 per client (60 bits) then a 6-character
/// counter. Unique among the calls one client has in flight (the counter wraps after 2^36
/// calls), and not guessable by another session (WAMP v1 asks no more of them), without a
/// trip to the operating system's random source per call.
struct CallIds {
    prefix: String,
    next: AtomicU64,
}

impl CallIds {
    /// The characters of the counter part: those of [`wamp_proto::ids::new_id`].
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const COUNTER_LEN: usize = 6;

    fn new() -> Self {
        let mut prefix = wamp_proto::ids::new_id();
        prefix.truncate(wamp_proto::ids::ID_LEN - Self::COUNTER_LEN);
        CallIds {
            prefix,
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let mut n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(wamp_proto::ids::ID_LEN);
        id.push_str(&self.prefix);
        let mut counter = [0u8; Self::COUNTER_LEN];
        for digit in counter.iter_mut().rev() {
            *digit = Self::DIGITS[(n & 63) as usize];
            n >>= 6;
        }
        id.extend(counter.iter().map(|&b| b as char));
        id
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.shared.url)
            .field("state", &*self.shared.state.borrow())
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl Client {
    /// Connects to `url` (e.g. `ws://localhost:8080/ws`) with the default
    /// [`ConnectOptions`]. Returns once the server's WELCOME has arrived.
    pub async fn connect(url: &str) -> Result<Client> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// Connects to `url` with `options`. Returns once the server's WELCOME has arrived and,
    /// with [`ConnectOptions::auth`], authentication has succeeded; the first attempt is not
    /// retried (the reconnect policy applies to connections that were up).
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Client> {
        let target = check_url(url)?;
        #[cfg(feature = "tls")]
        let options = {
            let mut options = options;
            if target.tls {
                options.tls.config = Some(crate::tls::client_config(&options.tls)?);
            }
            options
        };
        let options = Arc::new(options);
        let span = tracing::info_span!("wamp_client", url = %url);
        let (ws, welcome) =
            connect::establish(target.clone(), options.clone(), options.credentials.clone())
                .instrument(span.clone())
                .await?;
        let (cmd_tx, cmd_rx) = mpsc::channel(driver::COMMAND_CAPACITY);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connected {
            session_id: welcome.session_id.clone(),
            server_ident: welcome.server_ident.clone(),
        });
        let driver = Driver::new(target, options.clone(), cmd_rx, ctl_rx, state_tx);
        tokio::spawn(driver.run(ws, welcome).instrument(span));
        Ok(Client {
            shared: Arc::new(Shared {
                url: url.to_string(),
                cmd: cmd_tx,
                control: ctl_tx,
                state: state_rx,
                next_subscription: AtomicU64::new(1),
                subscription_capacity: options.subscription_capacity,
                calls: CallIds::new(),
                cra_style: options.cra_style,
            }),
            call_timeout: options.call_timeout,
        })
    }

    /// The URL this client connects to.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The current session's id (from WELCOME), or `None` while disconnected. A reconnect
    /// gives a new session and so a new id.
    pub fn session_id(&self) -> Option<String> {
        match &*self.shared.state.borrow() {
            ConnectionState::Connected { session_id, .. } => Some(session_id.clone()),
            _ => None,
        }
    }

    /// The server ident of the current session (from WELCOME), or `None` while
    /// disconnected.
    pub fn server_ident(&self) -> Option<String> {
        match &*self.shared.state.borrow() {
            ConnectionState::Connected { server_ident, .. } => Some(server_ident.clone()),
            _ => None,
        }
    }

    /// Where the connection stands now.
    pub fn state(&self) -> ConnectionState {
        self.shared.state.borrow().clone()
    }

    /// A receiver of connection state changes (connected, reconnecting, closed).
    ///
    /// ```no_run
    /// # async fn run(client: wamp_client::Client) {
    /// let mut states = client.state_changes();
    /// while states.changed().await.is_ok() {
    ///     println!("now {:?}", *states.borrow());
    /// }
    /// # }
    /// ```
    pub fn state_changes(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.clone()
    }

    /// True while a session is up.
    pub fn is_connected(&self) -> bool {
        self.shared.state.borrow().is_connected()
    }

    /// A handle to the same connection whose calls time out after `timeout` (`None`: never)
    /// instead of the [`ConnectOptions::call_timeout`] default.
    pub fn with_call_timeout(&self, timeout: Option<Duration>) -> Client {
        Client {
            shared: self.shared.clone(),
            call_timeout: timeout,
        }
    }

    /// The call timeout of this handle.
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// Defines a CURIE prefix for this session (sends PREFIX). The client remembers it:
    /// it is sent again after every reconnect, and used to resolve the topics of
    /// [`Client::subscribe`] and of incoming events.
    pub async fn prefix(&self, prefix: &str, uri: &str) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.send(Command::Prefix {
            prefix: prefix.to_string(),
            uri: uri.to_string(),
            reply,
        })
        .await?;
        done.await.map_err(|_| self.closed_error())
    }

    /// Calls procedure `proc_uri` (a URI or a CURIE) with positional arguments and returns
    /// its result.
    ///
    /// Fails with [`Error::CallError`] (URI, description, details) when the server answers
    /// CALLERROR, [`Error::Timeout`] after the call timeout, [`Error::ConnectionLost`] when
    /// the link drops before the answer, [`Error::NotConnected`] while reconnecting.
    /// Any number of calls may be in flight at once; answers may come in any order.
    /// Dropping the returned future abandons the call (a late answer is ignored).
    pub async fn call(&self, proc_uri: &str, args: Vec<Value>) -> Result<Value> {
        let call_id = self.shared.calls.next();
        // If this future is dropped or times out before the answer, the guard tells the
        // driver to forget the call (otherwise it would wait for the server's answer, which
        // every CALL gets, to clean up).
        let mut guard = ForgetCall {
            control: &self.shared.control,
            call_id: Some(call_id.clone()),
        };
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            self.send(Command::Call {
                call_id,
                proc_uri: proc_uri.to_string(),
                args,
                reply,
            })
            .await?;
            answer.await.map_err(|_| self.closed_error())?
        };
        let result = match self.call_timeout {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or(Err(Error::Timeout(limit))),
            None => exchange.await,
        };
        if !matches!(result, Err(Error::Timeout(_))) {
            guard.call_id = None;
        }
        result
    }

    /// Calls `proc_uri` with typed arguments and decodes the result.
    ///
    /// `args` must serialize to a JSON array, whose elements are the positional arguments:
    /// a tuple (`(a, b)`, or `(a,)` for one argument), a `Vec`, an array, or `()` for none.
    ///
    /// ```no_run
    /// # async fn run(client: wamp_client::Client) -> wamp_client::Result<()> {
    /// let sum: f64 = client.call_typed("rpc:add", (1, 2, 3.5)).await?;
    /// let echo: String = client.call_typed("rpc:echo", ("hello",)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call_typed<R, A>(&self, proc_uri: &str, args: A) -> Result<R>
    where
        R: DeserializeOwned,
        A: Serialize,
    {
        let result = self.call(proc_uri, to_args(args)?).await?;
        serde_json::from_value(result).map_err(Error::decode)
    }

    /// Subscribes to `topic` (a URI or a CURIE) and returns the stream of its events.
    ///
    /// The topic is resolved with the client's own prefixes (those of [`Client::prefix`] and
    /// [`ConnectOptions::prefix`]), and the SUBSCRIBE carries the full URI; incoming events
    /// are matched the same way.
    ///
    /// # Prefixes only the server knows
    ///
    /// A server may have default prefixes that every session can use without a PREFIX (the
    /// tutorial server has `rpc:` and `event:`), but WAMP v1 never tells the client about
    /// them, and EVENTs always carry full URIs. A subscription to `event:chat` with only the
    /// server knowing `event` would be accepted by the server and yet never receive an
    /// event, since nothing could match `http://wamptutorial/event#chat` to it. So a
    /// topic that reads as a CURIE (see [`curie_prefix`](crate::curie_prefix)) whose prefix
    /// the client does not know fails with [`Error::UnknownPrefix`], and nothing is sent.
    /// Declare the prefix locally first — [`Client::prefix`] or [`ConnectOptions::prefix`],
    /// which also send PREFIX to the server, so both sides agree — or subscribe with the
    /// full URI:
    ///
    /// ```no_run
    /// # async fn run(client: wamp_client::Client) -> wamp_client::Result<()> {
    /// client.prefix("event", "http://wamptutorial/event#").await?;
    /// let chat = client.subscribe("event:chat").await?;
    /// assert_eq!(chat.topic(), "http://wamptutorial/event#chat");
    /// // The same without a prefix:
    /// let also_chat = client.subscribe("http://wamptutorial/event#chat").await?;
    /// # drop((chat, also_chat));
    /// # Ok(()) }
    /// ```
    ///
    /// (A topic name that merely contains a colon, such as `chat:room`, and that the server
    /// uses unresolved, reads as a CURIE too: declare its prefix as itself,
    /// `client.prefix("chat", "chat:")`, which resolves it to the same name on both sides.)
    ///
    /// While reconnecting, the subscription is recorded and sent once connected. WAMP v1 has
    /// no acknowledgement for SUBSCRIBE: when this returns, the SUBSCRIBE is queued on the
    /// connection, and the server handles it before anything this session sends later.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        let id = self
            .shared
            .next_subscription
            .fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.shared.subscription_capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let (reply, filed) = oneshot::channel();
        self.send(Command::Subscribe {
            topic: topic.to_string(),
            sub: LocalSub {
                id,
                tx,
                dropped: dropped.clone(),
            },
            reply,
        })
        .await?;
        let resolved = filed.await.map_err(|_| self.closed_error())??;
        Ok(Subscription::new(id, resolved, rx, dropped, self.clone()))
    }

    /// Publishes `event` to `topic` (a URI or a CURIE): `[7, topic, event]`. Whether this
    /// session receives its own event when subscribed is the server's default (this
    /// project's server: it does); use [`Client::publish_with`] to say.
    ///
    /// Returns once the PUBLISH has been handed to the connection (WAMP v1 has no
    /// acknowledgement). Fails with [`Error::NotConnected`] while reconnecting.
    pub async fn publish(&self, topic: &str, event: impl Serialize) -> Result<()> {
        self.publish_with(topic, event, PublishOptions::default())
            .await
    }

    /// Publishes `event` to `topic` with exclude/eligible options, in the shortest PUBLISH
    /// form that says what the options mean.
    pub async fn publish_with(
        &self,
        topic: &str,
        event: impl Serialize,
        options: PublishOptions,
    ) -> Result<()> {
        let event = serde_json::to_value(event).map_err(Error::encode)?;
        let (reply, done) = oneshot::channel();
        self.send(Command::Publish {
            topic: topic.to_string(),
            event,
            options,
            reply,
        })
        .await?;
        done.await.map_err(|_| self.closed_error())?
    }

    /// Authenticates with WAMP-CRA and returns the permissions granted.
    ///
    /// Calls `http://api.wamp.ws/procedure#authreq` with `(key, null)`, signs the exact
    /// challenge text it returns in the [`ConnectOptions::cra_style`] (by default: the
    /// standard way, deriving the key with PBKDF2 first when the challenge is salted, for a
    /// JSON challenge; clj-wamp's way for an opaque one), and calls `http://api.wamp.ws/procedure#auth` with the signature. A CALLERROR
    /// from either is [`Error::AuthRefused`], with the server's URI (e.g.
    /// `http://api.wamp.ws/error#invalid-signature`), description and details; a challenge
    /// or result the client cannot use is [`Error::Auth`]; timeouts and connection errors are
    /// those of [`Client::call`]. The permissions may come in AutobahnPython's form or in
    /// clj-wamp's map form. On success the client remembers the credentials and
    /// authenticates again after every reconnect, before re-subscribing.
    pub async fn authenticate(&self, key: &str, secret: &str) -> Result<Permissions> {
        self.authenticate_with_extra(key, secret, None).await
    }

    /// [`Client::authenticate`] with the `extra` object of `authreq`, which the server puts
    /// in the challenge.
    pub async fn authenticate_with_extra(
        &self,
        key: &str,
        secret: &str,
        extra: Option<Map<String, Value>>,
    ) -> Result<Permissions> {
        let credentials = Credentials::new(
            key.to_string(),
            secret.to_string(),
            extra,
            self.shared.cra_style,
        );
        let mut caller = self;
        let permissions = connect::authenticate(&mut caller, &credentials).await?;
        self.send(Command::SetCredentials(credentials)).await?;
        Ok(permissions)
    }

    /// Closes the connection for good (WebSocket close 1000) and waits until the driver has
    /// stopped. Calls in flight fail with [`Error::Closed`], subscription streams end, and
    /// every later operation fails with [`Error::Closed`]. Closing a closed client does
    /// nothing.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.shared.cmd.send(Command::Close { reply }).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Hands a command to the driver.
    pub(crate) async fn send(&self, cmd: Command) -> Result<()> {
        self.shared
            .cmd
            .send(cmd)
            .await
            .map_err(|_| self.closed_error())
    }

    /// Tells the driver something from a `Drop`.
    pub(crate) fn control(&self, ctl: Control) {
        // Fails only when the driver has stopped, and then there is nothing to undo.
        let _ = self.shared.control.send(ctl);
    }

    /// The error for an operation that found the driver stopped.
    pub(crate) fn closed_error(&self) -> Error {
        match &*self.shared.state.borrow() {
            ConnectionState::Closed { reason } => Error::Closed(reason.clone()),
            _ => Error::Closed("the client's driver stopped".into()),
        }
    }
}

/// [`Client::authenticate`] runs the one WAMP-CRA routine over the client's own calls.
impl Caller for &Client {
    async fn call(&mut self, proc_uri: &str, args: Vec<Value>) -> Result<Value> {
        Client::call(self, proc_uri, args).await
    }
}

/// Tells the driver to forget a call whose future was dropped before its answer came.
struct ForgetCall<'a> {
    control: &'a mpsc::UnboundedSender<Control>,
    call_id: Option<String>,
}

impl Drop for ForgetCall<'_> {
    fn drop(&mut self) {
        if let Some(call_id) = self.call_id.take() {
            let _ = self.control.send(Control::ForgetCall(call_id));
        }
    }
}

/// Rejects URLs the client cannot use before trying the network.
/// Checks `url` and parses it once into where to connect.
fn check_url(url: &str) -> Result<Target> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    // The url crate lower-cases the scheme: `WSS://h` is `wss`.
    let tls = match parsed.scheme() {
        "ws" => false,
        #[cfg(feature = "tls")]
        "wss" => true,
        #[cfg(not(feature = "tls"))]
        "wss" => {
            return Err(invalid(
                "wss:// needs TLS, which this build of wamp-client leaves out (its `tls` \
                 feature is off)",
            ))
        }
        other => {
            return Err(invalid(&format!(
                "the scheme must be ws or wss, not {other}"
            )))
        }
    };
    let host = match parsed.host_str() {
        Some(host) if !host.is_empty() => host.to_string(),
        _ => return Err(invalid("no host")),
    };
    Ok(Target {
        url: url.to_string(),
        request: parsed.to_string(),
        tls,
        host,
    })
}

/// Turns typed call arguments into positional JSON arguments.
fn to_args(args: impl Serialize) -> Result<Vec<Value>> {
    match serde_json::to_value(args).map_err(Error::encode)? {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(Error::encode(serde::ser::Error::custom(format!(
            "call arguments must serialize to a JSON array (a tuple such as (x,) for one \
             argument), got {other}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_ids_are_a_client_prefix_and_a_counter() {
        let ids = CallIds::new();
        let first = ids.next();
        let second = ids.next();
        assert_eq!((first.len(), second.len()), (16, 16));
        assert_eq!(first[..10], second[..10], "one prefix per client");
        assert_eq!(&first[10..], "AAAAAA");
        assert_eq!(&second[10..], "AAAAAB");
        ids.next.store(64, Ordering::Relaxed);
        assert_eq!(&ids.next()[10..], "AAAABA");
        ids.next.store((1 << 36) - 1, Ordering::Relaxed);
        assert_eq!(&ids.next()[10..], "______");
        assert_ne!(
            CallIds::new().prefix,
            ids.prefix,
            "another client, another prefix"
        );
    }

    #[test]
    fn typed_args_must_be_an_array() {
        assert_eq!(to_args((1, "a")).unwrap(), vec![json!(1), json!("a")]);
        assert_eq!(to_args(("x",)).unwrap(), vec![json!("x")]);
        assert_eq!(to_args(()).unwrap(), Vec::<Value>::new());
        assert_eq!(to_args(vec![1, 2]).unwrap(), vec![json!(1), json!(2)]);
        assert!(matches!(to_args(5), Err(Error::Encode(_))));
        assert!(matches!(to_args(json!({"a": 1})), Err(Error::Encode(_))));
    }

    #[test]
    fn urls_are_checked_before_connecting() {
        assert!(check_url("ws://localhost:8080/ws").is_ok());
        #[cfg(feature = "tls")]
        assert!(check_url("wss://x/").is_ok());
        #[cfg(not(feature = "tls"))]
        assert!(check_url("wss://x/").is_err());
        for bad in ["http://localhost/", "not a url", "ws://", "wss://"] {
            assert!(
                matches!(check_url(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn connecting_to_nothing_fails_quickly() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = Client::connect(&format!("ws://{addr}/ws"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
    }
}
