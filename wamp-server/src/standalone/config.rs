//! The standalone router's configuration file: its schema (TOML, or JSON by extension; unknown
//! keys refused), validation into a ready router builder, and one-line error messages that name
//! the file, the line and the key.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use wamp_proto::cra::AuthExtra;
use wamp_proto::uri::Prefixes;
use wamp_proto::{Permissions, PubSubPermission, RpcPermission};
use wamp_server::{
    AuthConfig, AuthUser, InMemoryAuth, Options, Router, RouterBuilder, ShutdownClose, Topic,
};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    server: Server,
    #[serde(default)]
    prefixes: BTreeMap<String, String>,
    #[serde(default)]
    topics: Vec<TopicRule>,
    auth: Option<Auth>,
    #[serde(default)]
    rpc: Rpc,
    api: Option<Api>,
    tls: Option<Tls>,
    cluster: Option<Cluster>,
    metrics: Option<Metrics>,
}

/// `[cluster]`: share PubSub with other nodes through Redis (feature `redis`; without it the
/// section is parsed, so its keys are checked, then refused).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cluster {
    redis_url: Option<String>,
    /// The environment variable holding the URL (it may carry a password).
    redis_url_env: Option<String>,
    node_name: Option<String>,
    prefix: Option<String>,
    queue_capacity: Option<usize>,
    heartbeat: Option<Secs>,
}

/// `[metrics]`: `/metrics`, `/healthz`, `/readyz` on their own listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metrics {
    #[serde(default = "default_metrics_bind")]
    bind: SocketAddr,
}

fn default_metrics_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// The shortest backplane heartbeat interval accepted (in the file and on the command line).
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

/// Parses `--redis-heartbeat`: seconds (`2`, `0.5`), or with a unit (`500ms`, `2s`); at least
/// [`MIN_HEARTBEAT`].
pub fn parse_heartbeat(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (t.strip_suffix('s').unwrap_or(t), 1.0),
    };
    let d = number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
        .ok_or_else(|| format!("{text:?} is not a duration: give seconds (e.g. 1, 0.5) or milliseconds (e.g. 500ms)"))?;
    check_heartbeat(d)?;
    Ok(d)
}

/// Refuses a heartbeat interval below [`MIN_HEARTBEAT`].
fn check_heartbeat(d: Duration) -> Result<(), String> {
    if d < MIN_HEARTBEAT {
        return Err(format!(
            "{} s is too short: give at least 0.01 seconds (10 ms; the default is 1)",
            d.as_secs_f64()
        ));
    }
    Ok(())
}

/// Parses `--redis-queue-capacity`: a number of events, at least 1.
pub fn parse_queue_capacity(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err(
            "0 would drop every cross-node event: give at least 1 (the default is 10000)".into(),
        ),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of events (e.g. 10000)")),
    }
}

/// Parses `--node-name` and `--redis-prefix`: any non-empty text.
pub fn parse_non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("is empty: give a name".into())
    } else {
        Ok(text.to_string())
    }
}

/// `[tls]`: serve https:// and wss:// (paths relative to the configuration file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tls {
    cert_pem_file: PathBuf,
    key_pem_file: PathBuf,
}

/// `[server]`: the public WebSocket listener and the router's options.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Server {
    bind: IpAddr,
    port: u16,
    path: String,
    /// Also serve the tutorial's demo page on `/` (its WAMP endpoint is then `/ws`).
    page: bool,
    allowed_origins: Option<Vec<String>>,
    max_connections: Option<usize>,
    max_message_size: Option<usize>,
    outbox_capacity: Option<usize>,
    strict_subprotocol: Option<bool>,
    shutdown_grace: Option<Secs>,
    read_buffer_size: Option<usize>,
    write_buffer_size: Option<usize>,
    handshake_timeout: Option<Secs>,
    max_pending_handshakes: Option<usize>,
    outbox_max_bytes: Option<usize>,
    max_calls_in_flight: Option<usize>,
    detach_calls_on_close: Option<bool>,
    max_prefixes: Option<usize>,
    max_subscriptions: Option<usize>,
    max_uri_length: Option<usize>,
    close_wait: Option<Secs>,
    policy_timeout: Option<Secs>,
    /// Absent: shutdown ends connections without a close handshake (AutobahnJS 0.8 pages
    /// reconnect); a code (e.g. 1001): a close frame with it.
    shutdown_close_code: Option<u16>,
    ident: Option<String>,
    publisher_receives_own_events: Option<bool>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            path: "/ws".into(),
            page: false,
            allowed_origins: None,
            max_connections: None,
            max_message_size: None,
            outbox_capacity: None,
            strict_subprotocol: None,
            shutdown_grace: None,
            read_buffer_size: None,
            write_buffer_size: None,
            handshake_timeout: None,
            max_pending_handshakes: None,
            outbox_max_bytes: None,
            max_calls_in_flight: None,
            detach_calls_on_close: None,
            max_prefixes: None,
            max_subscriptions: None,
            max_uri_length: None,
            close_wait: None,
            policy_timeout: None,
            shutdown_close_code: None,
            ident: None,
            publisher_receives_own_events: None,
        }
    }
}

/// `[[topics]]`: one topic pattern's rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicRule {
    uri: String,
    #[serde(default = "Access::yes")]
    subscribe: Access,
    #[serde(default = "Access::yes")]
    publish: Access,
}

/// `true`, `false` or `"authenticated"`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    Yes,
    No,
    Authenticated,
}

impl Access {
    fn yes() -> Self {
        Access::Yes
    }
}

impl<'de> Deserialize<'de> for Access {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Access;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or \"authenticated\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Access, E> {
                Ok(if v { Access::Yes } else { Access::No })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Access, E> {
                match v {
                    "authenticated" => Ok(Access::Authenticated),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration in seconds (an integer or a fraction), never negative.
#[derive(Debug, Clone, Copy)]
struct Secs(Duration);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map(Secs).map_err(|_| {
            de::Error::custom(format!(
                "{s} is not a duration: give seconds, 0 or more (e.g. 2.5)"
            ))
        })
    }
}

/// `[auth]`: WAMP-CRA.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth {
    timeout: Option<Secs>,
    failure_delay: Option<Secs>,
    /// The permissions of anonymous sessions; absent: anonymous authentication is refused.
    anonymous: Option<Perms>,
    /// The permissions of sessions that have not authenticated.
    #[serde(default)]
    unauthenticated: Perms,
    #[serde(default)]
    users: Vec<User>,
}

/// `[[auth.users]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct User {
    key: String,
    secret: Option<String>,
    secret_env: Option<String>,
    salt: Option<String>,
    iterations: Option<u32>,
    keylen: Option<usize>,
    #[serde(default)]
    permissions: Perms,
}

/// Permissions in docs/PROTOCOL.md section 6.5's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Perms {
    #[serde(default)]
    rpc: Vec<RpcPerm>,
    #[serde(default)]
    pubsub: Vec<PubSubPerm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RpcPerm {
    uri: String,
    #[serde(default)]
    prefix: bool,
    #[serde(default)]
    call: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PubSubPerm {
    uri: String,
    #[serde(default)]
    prefix: bool,
    #[serde(default, rename = "pub")]
    publish: bool,
    #[serde(default, rename = "sub")]
    subscribe: bool,
}

/// `[rpc]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rpc {
    #[serde(default)]
    proxy: Vec<ProxyRule>,
}

/// `[[rpc.proxy]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyRule {
    uri: String,
    url: String,
    timeout: Option<Secs>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Headers whose values come from environment variables (name → variable).
    #[serde(default)]
    headers_env: BTreeMap<String, String>,
    /// PEM file of the CAs that sign the backend's certificate (https://); replaces the
    /// built-in roots for this backend, as curl's `--cacert` does.
    ca_file: Option<PathBuf>,
}

/// `[api]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Api {
    #[serde(default = "default_api_bind")]
    bind: SocketAddr,
    key: Option<String>,
    key_env: Option<String>,
    #[serde(default = "default_max_body")]
    max_body_size: usize,
}

fn default_api_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}

fn default_max_body() -> usize {
    1 << 20
}

/// The shortest API key accepted.
const MIN_API_KEY: usize = 16;

/// A backend that answers procedures, validated.
#[derive(Debug, Clone)]
pub struct ProxyPlan {
    /// The full procedure URI, or the prefix when `prefix`.
    pub uri: String,
    /// Whether `uri` is a prefix (`prefix*` in the file).
    pub prefix: bool,
    /// Where calls are POSTed.
    pub url: url::Url,
    /// Where `url` is, checked for the HTTP client.
    pub target: super::http_pool::Target,
    /// How long the backend has to answer.
    pub timeout: Duration,
    /// Headers added to each request.
    pub headers: HeaderMap,
    /// The CAs of this backend's `ca_file` (trusted instead of the built-in roots);
    /// `None`: the built-in roots.
    pub roots: Option<Arc<rustls::RootCertStore>>,
}

/// The HTTP API's settings, validated.
#[derive(Debug, Clone)]
pub struct ApiPlan {
    /// Where the API listens.
    pub bind: SocketAddr,
    /// The key requests must carry in `X-API-Key`.
    pub key: String,
    /// The largest request body accepted, in bytes.
    pub max_body_size: usize,
}

/// Settings given on the command line or in the environment (clap has already applied
/// flag-over-env); they win over the file.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // the cluster ones need `redis`
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--bind` / `WAMP_BIND`.
    pub bind: Option<IpAddr>,
    /// `--port` / `WAMP_PORT`.
    pub port: Option<u16>,
    /// `--allow-origin` / `WAMP_ALLOW_ORIGINS`: replaces `[server] allowed_origins`.
    pub allowed_origins: Option<Vec<String>>,
    /// `--tls-cert` / `WAMP_TLS_CERT` (with the key): replaces `[tls]`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `WAMP_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
    /// `--max-connections` / `WAMP_MAX_CONNECTIONS`: replaces `[server] max_connections`.
    pub max_connections: Option<usize>,
    /// `--metrics-bind` / `WAMP_METRICS_BIND`: replaces `[metrics] bind`.
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// `--redis-url` / `WAMP_REDIS_URL`: replaces `[cluster] redis_url` (and turns cluster
    /// mode on without a `[cluster]` section).
    pub redis_url: Option<String>,
    /// `--node-name` / `WAMP_NODE_NAME`: replaces `[cluster] node_name`.
    pub node_name: Option<String>,
    /// `--redis-prefix` / `WAMP_REDIS_PREFIX`: replaces `[cluster] prefix`.
    pub redis_prefix: Option<String>,
    /// `--redis-queue-capacity` / `WAMP_REDIS_QUEUE_CAPACITY`: replaces `[cluster] queue_capacity`.
    pub redis_queue_capacity: Option<usize>,
    /// `--redis-heartbeat` / `WAMP_REDIS_HEARTBEAT`: replaces `[cluster] heartbeat`.
    pub redis_heartbeat: Option<Duration>,
}

/// A validated configuration: the router to build and where to serve it.
pub struct Plan {
    /// The router with everything from the file except the RPC proxies and API hooks.
    pub builder: RouterBuilder,
    /// The public listener's address.
    pub listen: SocketAddr,
    /// The WebSocket endpoint's path.
    pub path: String,
    /// Whether to serve the demo page.
    pub page: bool,
    /// The RPC proxies.
    pub proxies: Vec<ProxyPlan>,
    /// The HTTP API, if configured.
    pub api: Option<ApiPlan>,
    /// The router's message size limit (also the largest backend answer read).
    pub max_message_size: usize,
    /// TLS for the public listener.
    pub tls: Option<wamp_server::tls::TlsConfig>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub metrics_bind: Option<SocketAddr>,
    /// Cluster mode: the backplane to attach when the router is built to serve (its tasks
    /// start then, not during `--check`).
    pub cluster: Option<ClusterPlan>,
}

/// Cluster mode, validated.
pub struct ClusterPlan {
    /// The Redis backplane (not yet connected).
    pub backplane: Arc<dyn wamp_server::Backplane>,
    /// This node's id in the cluster (its name and a random suffix).
    pub node_id: String,
    /// The channel prefix.
    pub prefix: String,
}

/// A configuration error, already one line: `file:line: key: what is wrong`.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads, parses and validates a configuration file; `env` looks up environment variables
/// (secrets named with `secret_env` / `key_env`).
pub fn load(
    path: &Path,
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigError> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{name}: cannot read the configuration file: {e}")))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let file = if is_json {
        parse_json(&name, &source)?
    } else {
        parse_toml(&name, &source)?
    };
    let ctx = Ctx {
        name: &name,
        source: &source,
        dir: path.parent().unwrap_or(Path::new("")),
    };
    validate(file, &ctx, overrides, &env)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1-based line of a byte offset.
fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The dotted key at a byte offset of a TOML file: the table header above it (with the index
/// of an array-of-tables entry) and the key on its line.
fn toml_key_at(source: &str, offset: usize) -> String {
    let line_no = line_of(source, offset);
    let mut table = String::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut key = String::new();
    for (i, line) in source.lines().enumerate() {
        let t = line.trim();
        let header = if let Some(h) = t.strip_prefix("[[") {
            h.split("]]").next().map(|h| {
                let h = h.trim().to_string();
                let n = counts.entry(h.clone()).or_insert(0);
                *n += 1;
                format!("{h}[{}]", *n - 1)
            })
        } else if let Some(h) = t.strip_prefix('[') {
            h.split(']').next().map(|h| h.trim().to_string())
        } else {
            None
        };
        if let Some(h) = header {
            table = h;
        }
        if i + 1 == line_no {
            if !t.starts_with('[') {
                if let Some((k, _)) = t.split_once('=') {
                    key = k.trim().trim_matches('"').to_string();
                }
            }
            break;
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

fn parse_toml(name: &str, source: &str) -> Result<File, ConfigError> {
    toml::from_str(source).map_err(|e| {
        let message = one_line(e.message());
        match e.span() {
            Some(span) => {
                let line = line_of(source, span.start);
                let key = toml_key_at(source, span.start);
                if key.is_empty() {
                    ConfigError(format!("{name}:{line}: {message}"))
                } else {
                    ConfigError(format!("{name}:{line}: {key}: {message}"))
                }
            }
            None => ConfigError(format!("{name}: {message}")),
        }
    })
}

fn parse_json(name: &str, source: &str) -> Result<File, ConfigError> {
    serde_json::from_str(source).map_err(|e| {
        let line = e.line();
        // The key: the last `"name":` before the error on its line.
        let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let before = &text[..e.column().min(text.len())];
        let quoted_before = |end: usize| {
            before[..end]
                .rfind('"')
                .map(|start| &before[start + 1..end])
        };
        let key = match before.strip_suffix('"') {
            // The error is at a key (an unknown field): that key.
            Some(b) => quoted_before(b.len()),
            // The error is at a value: the key before it.
            None => before.rfind("\":").and_then(quoted_before),
        };
        // serde_json's message ends with " at line L column C": the prefix says it already.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        match key {
            Some(key) => ConfigError(format!("{name}:{line}: {key}: {}", one_line(message))),
            None => ConfigError(format!("{name}:{line}: {}", one_line(message))),
        }
    })
}

/// What error messages need to point into the file.
struct Ctx<'a> {
    name: &'a str,
    source: &'a str,
    /// The file's directory: relative paths in it start there.
    dir: &'a Path,
}

impl Ctx<'_> {
    /// An error about `key`, at the first line of the file that contains `needle` (if any).
    fn err(&self, needle: &str, key: &str, message: impl std::fmt::Display) -> ConfigError {
        let line = (!needle.is_empty())
            .then(|| self.source.find(needle))
            .flatten()
            .map(|offset| line_of(self.source, offset));
        match line {
            Some(line) => ConfigError(format!("{}:{line}: {key}: {message}", self.name)),
            None => ConfigError(format!("{}: {key}: {message}", self.name)),
        }
    }
}

/// Reads a secret given either inline or by the name of an environment variable.
fn secret(
    ctx: &Ctx<'_>,
    env: &impl Fn(&str) -> Option<String>,
    key: &str,
    inline: Option<String>,
    var: Option<String>,
    what: &str,
) -> Result<String, ConfigError> {
    let value = match (inline, var) {
        (Some(_), Some(var)) => {
            return Err(ctx.err(
                &var,
                key,
                format!("give `{what}` or `{what}_env`, not both"),
            ))
        }
        (Some(v), None) => v,
        (None, Some(var)) => match env(&var) {
            Some(v) => v,
            None => {
                return Err(ctx.err(
                    &format!("\"{var}\""),
                    &format!("{key}_env"),
                    format!(
                        "the environment variable {var} is not set (export it before starting \
                         the router, or fix the name)"
                    ),
                ))
            }
        },
        (None, None) => {
            return Err(ctx.err(
                "",
                key,
                format!(
                    "missing: give `{what}` or `{what}_env` (the name of an environment variable)"
                ),
            ))
        }
    };
    if value.is_empty() {
        return Err(ctx.err("", key, "is empty"));
    }
    Ok(value)
}

fn permissions(p: Perms, prefixes: &Prefixes) -> Permissions {
    Permissions {
        rpc: p
            .rpc
            .into_iter()
            .map(|e| RpcPermission {
                uri: prefixes.resolve(&e.uri).into_owned(),
                prefix: e.prefix,
                call: e.call,
            })
            .collect(),
        pubsub: p
            .pubsub
            .into_iter()
            .map(|e| PubSubPermission {
                uri: prefixes.resolve(&e.uri).into_owned(),
                prefix: e.prefix,
                publish: e.publish,
                subscribe: e.subscribe,
            })
            .collect(),
    }
}

/// Resolves a pattern (`uri`, `prefix*` or `*`) with the default prefixes: the full URI (or
/// prefix) and whether it is a prefix.
fn pattern(uri: &str, prefixes: &Prefixes) -> (String, bool) {
    match uri.strip_suffix('*') {
        Some(p) => (prefixes.resolve(p).into_owned(), true),
        None => (prefixes.resolve(uri).into_owned(), false),
    }
}

fn topic_for(rule: &TopicRule) -> Topic {
    let mut topic = Topic::open();
    topic = match rule.subscribe {
        Access::Yes => topic,
        Access::No => topic.deny_subscribe(),
        Access::Authenticated => topic.on_subscribe(|ctx| async move { ctx.auth_key.is_some() }),
    };
    match rule.publish {
        Access::Yes => topic,
        Access::No => topic.deny_publish(),
        Access::Authenticated => {
            topic.on_publish(|ctx, p| async move { ctx.auth_key.is_some().then_some(p) })
        }
    }
}

fn validate(
    file: File,
    ctx: &Ctx<'_>,
    overrides: &Overrides,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigError> {
    let server = file.server;
    if !server.path.starts_with('/') {
        return Err(ctx.err(
            "path",
            "server.path",
            format!("{:?} must start with `/` (e.g. \"/ws\")", server.path),
        ));
    }
    if server.page && server.path != "/ws" {
        return Err(ctx.err(
            "page",
            "server.page",
            "the demo page connects to /ws: set `path = \"/ws\"` or turn the page off",
        ));
    }
    let mut options = Options::default();
    for (key, value, target) in [
        (
            "max_connections",
            overrides.max_connections.or(server.max_connections),
            &mut options.max_connections,
        ),
        (
            "max_message_size",
            server.max_message_size,
            &mut options.max_message_size,
        ),
        (
            "outbox_capacity",
            server.outbox_capacity,
            &mut options.outbox_capacity,
        ),
        (
            "read_buffer_size",
            server.read_buffer_size,
            &mut options.read_buffer_size,
        ),
        (
            "write_buffer_size",
            server.write_buffer_size,
            &mut options.write_buffer_size,
        ),
        (
            "max_pending_handshakes",
            server.max_pending_handshakes,
            &mut options.max_pending_handshakes,
        ),
        (
            "outbox_max_bytes",
            server.outbox_max_bytes,
            &mut options.outbox_max_bytes,
        ),
        (
            "max_calls_in_flight",
            server.max_calls_in_flight,
            &mut options.max_calls_in_flight,
        ),
        (
            "max_prefixes",
            server.max_prefixes,
            &mut options.max_prefixes,
        ),
        (
            "max_subscriptions",
            server.max_subscriptions,
            &mut options.max_subscriptions,
        ),
        (
            "max_uri_length",
            server.max_uri_length,
            &mut options.max_uri_length,
        ),
    ] {
        if let Some(v) = value {
            if v == 0 {
                return Err(ctx.err(key, &format!("server.{key}"), "must be at least 1"));
            }
            *target = v;
        }
    }
    if let Some(v) = server.strict_subprotocol {
        options.strict_subprotocol = v;
    }
    if let Some(Secs(v)) = server.shutdown_grace {
        options.shutdown_grace = v;
    }
    if let Some(Secs(v)) = server.handshake_timeout {
        options.handshake_timeout = v;
    }
    if let Some(Secs(v)) = server.close_wait {
        options.close_wait = v;
    }
    if let Some(Secs(v)) = server.policy_timeout {
        options.policy_timeout = v;
    }
    if let Some(v) = server.detach_calls_on_close {
        options.detach_calls_on_close = v;
    }
    if let Some(code) = server.shutdown_close_code {
        if !matches!(code, 1000 | 1001 | 3000..=4999) {
            return Err(ctx.err(
                "shutdown_close_code",
                "server.shutdown_close_code",
                format!("{code} may not be sent: use 1001 (going away), 1000 or 3000-4999"),
            ));
        }
        options.shutdown_close = ShutdownClose::Handshake(code);
    }
    if let Some(v) = server.ident {
        options.server_ident = v;
    }
    if let Some(v) = server.publisher_receives_own_events {
        options.publisher_receives_own_events = v;
    }
    // Browsers from the router's own origin are always welcome; these are the others.
    let origins = match &overrides.allowed_origins {
        Some(flag) => flag.clone(),
        None => server.allowed_origins.unwrap_or_default(),
    };
    let mut checked = Vec::with_capacity(origins.len());
    for origin in &origins {
        let origin = wamp_server::handshake::parse_allowed_origin(origin)
            .map_err(|e| ctx.err(&format!("\"{origin}\""), "server.allowed_origins", e))?;
        checked.push(origin);
    }

    let mut builder = Router::builder();
    for (prefix, uri) in &file.prefixes {
        if prefix.is_empty() || prefix.contains(':') {
            return Err(ctx.err(
                prefix,
                &format!("prefixes.{prefix}"),
                "a prefix is a non-empty name without `:`",
            ));
        }
        builder = builder.default_prefix(prefix, uri);
    }
    let prefixes = Prefixes::with_defaults(Arc::new(file.prefixes.clone().into_iter().collect()));

    let mut seen = HashSet::new();
    for (i, rule) in file.topics.iter().enumerate() {
        let key = format!("topics[{i}]");
        if rule.uri.is_empty() {
            return Err(ctx.err(
                "",
                &format!("{key}.uri"),
                "is empty (use \"*\" for every topic)",
            ));
        }
        let (uri, prefix) = pattern(&rule.uri, &prefixes);
        if !seen.insert((uri.clone(), prefix)) {
            return Err(ctx.err(
                &format!("\"{}\"", rule.uri),
                &format!("{key}.uri"),
                format!("{:?} is given twice", rule.uri),
            ));
        }
        let needs_auth = [rule.subscribe, rule.publish].contains(&Access::Authenticated);
        if needs_auth && file.auth.is_none() {
            return Err(ctx.err(
                "\"authenticated\"",
                &key,
                "\"authenticated\" needs an [auth] section (nobody could authenticate)",
            ));
        }
        let pat = if prefix { format!("{uri}*") } else { uri };
        builder = builder.topic(&pat, topic_for(rule));
    }

    if let Some(auth) = file.auth {
        let mut users = InMemoryAuth::new();
        let mut keys = HashSet::new();
        for (i, user) in auth.users.into_iter().enumerate() {
            let key = format!("auth.users[{i}]");
            if user.key.is_empty() {
                return Err(ctx.err("", &format!("{key}.key"), "is empty"));
            }
            if !keys.insert(user.key.clone()) {
                return Err(ctx.err(
                    &format!("\"{}\"", user.key),
                    &format!("{key}.key"),
                    format!("the user {:?} is given twice", user.key),
                ));
            }
            let secret = secret(
                ctx,
                env,
                &format!("{key}.secret"),
                user.secret,
                user.secret_env,
                "secret",
            )?;
            let perms = permissions(user.permissions, &prefixes);
            let auth_user = match user.salt {
                Some(salt) => {
                    let mut extra = AuthExtra::new(salt);
                    if let Some(n) = user.iterations {
                        if n == 0 {
                            return Err(ctx.err(
                                "iterations",
                                &format!("{key}.iterations"),
                                "must be at least 1",
                            ));
                        }
                        extra.iterations = n;
                    }
                    if let Some(n) = user.keylen {
                        if n == 0 {
                            return Err(ctx.err(
                                "keylen",
                                &format!("{key}.keylen"),
                                "must be at least 1",
                            ));
                        }
                        extra.keylen = n;
                    }
                    AuthUser::salted(&secret, extra, perms)
                }
                None => {
                    if user.iterations.is_some() || user.keylen.is_some() {
                        return Err(ctx.err(
                            &format!("\"{}\"", user.key),
                            &key,
                            "`iterations` and `keylen` salt a secret: give `salt` too",
                        ));
                    }
                    AuthUser::new(secret, perms)
                }
            };
            users = users.user(user.key, auth_user);
        }
        let mut config = AuthConfig::new(users)
            .unauthenticated_permissions(permissions(auth.unauthenticated, &prefixes));
        if let Some(Secs(t)) = auth.timeout {
            config = config.timeout(t);
        }
        if let Some(Secs(d)) = auth.failure_delay {
            config = config.failure_delay(d);
        }
        if let Some(anon) = auth.anonymous {
            config = config.allow_anonymous(permissions(anon, &prefixes));
        }
        builder = builder.auth(config);
    }

    let mut proxies = Vec::new();
    let mut seen = HashSet::new();
    for (i, rule) in file.rpc.proxy.into_iter().enumerate() {
        let key = format!("rpc.proxy[{i}]");
        if rule.uri.is_empty() {
            return Err(ctx.err("", &format!("{key}.uri"), "is empty"));
        }
        let (uri, prefix) = pattern(&rule.uri, &prefixes);
        if !seen.insert((uri.clone(), prefix)) {
            return Err(ctx.err(
                &format!("\"{}\"", rule.uri),
                &format!("{key}.uri"),
                format!("{:?} is given twice", rule.uri),
            ));
        }
        let url = url::Url::parse(&rule.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                ctx.err(
                    &rule.url,
                    &format!("{key}.url"),
                    format!("{:?} is not an http:// or https:// URL", rule.url),
                )
            })?;
        let target = super::http_pool::Target::parse(&url).map_err(|why| {
            ctx.err(
                &rule.url,
                &format!("{key}.url"),
                format!("{:?} {why}", rule.url),
            )
        })?;
        let mut headers = HeaderMap::new();
        let mut values = rule.headers.clone();
        for (name, var) in &rule.headers_env {
            let Some(value) = env(var) else {
                return Err(ctx.err(
                    &format!("\"{var}\""),
                    &format!("{key}.headers_env.{name}"),
                    format!(
                        "the environment variable {var} is not set (export it before starting \
                         the router, or fix the name)"
                    ),
                ));
            };
            if values.insert(name.clone(), value).is_some() {
                return Err(ctx.err(
                    &format!("\"{var}\""),
                    &format!("{key}.headers_env.{name}"),
                    "is also in `headers`: give it once",
                ));
            }
        }
        for (name, value) in &values {
            let hname = HeaderName::try_from(name.as_str()).map_err(|_| {
                ctx.err(
                    name,
                    &format!("{key}.headers"),
                    format!("{name:?} is not a header name"),
                )
            })?;
            let hvalue = HeaderValue::try_from(value.as_str()).map_err(|_| {
                ctx.err(
                    name,
                    &format!("{key}.headers.{name}"),
                    "is not a valid header value",
                )
            })?;
            headers.insert(hname, hvalue);
        }
        let roots = match &rule.ca_file {
            None => None,
            Some(_) if url.scheme() != "https" => {
                return Err(ctx.err(
                    "ca_file",
                    &format!("{key}.ca_file"),
                    format!(
                    "is for https:// backends, and {:?} is not one: remove ca_file or use https://",
                    rule.url
                ),
                ))
            }
            Some(file) => Some(Arc::new(ca_roots(ctx, &key, file)?)),
        };
        proxies.push(ProxyPlan {
            uri,
            prefix,
            url,
            target,
            timeout: rule.timeout.map_or(Duration::from_secs(10), |s| s.0),
            headers,
            roots,
        });
    }

    let api = match file.api {
        None => None,
        Some(api) => {
            let key = secret(ctx, env, "api.key", api.key, api.key_env, "key")?;
            if key.len() < MIN_API_KEY {
                return Err(ctx.err(
                    "",
                    "api.key",
                    format!("is {} characters long: use at least {MIN_API_KEY} (e.g. `openssl rand -hex 24`)", key.len()),
                ));
            }
            if api.max_body_size == 0 {
                return Err(ctx.err("max_body_size", "api.max_body_size", "must be at least 1"));
            }
            Some(ApiPlan {
                bind: api.bind,
                key,
                max_body_size: api.max_body_size,
            })
        }
    };

    // The flags (both, clap makes sure) replace the file's [tls].
    let tls_files = match (&overrides.tls_cert, &overrides.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => file
            .tls
            .map(|t| (ctx.dir.join(t.cert_pem_file), ctx.dir.join(t.key_pem_file))),
    };
    let tls = match tls_files {
        None => None,
        Some((cert, key)) => Some(
            wamp_server::tls::TlsConfig::from_pem_files(&cert, &key)
                .map_err(|e| ctx.err("[tls]", "tls", e))?,
        ),
    };
    let metrics_bind = overrides.metrics_bind.or(file.metrics.map(|m| m.bind));
    let cluster = cluster_plan(file.cluster, ctx, overrides, env)?;

    let listen = SocketAddr::new(
        overrides.bind.unwrap_or(server.bind),
        overrides.port.unwrap_or(server.port),
    );
    let max_message_size = options.max_message_size;
    let mut builder = builder.options(options);
    if !checked.is_empty() {
        // After `options`, which replaces them all; the builder warns about `*`.
        builder = builder.allowed_origins(checked);
    }
    Ok(Plan {
        max_message_size,
        tls,
        builder,
        listen,
        path: server.path,
        page: server.page,
        proxies,
        api,
        metrics_bind,
        cluster,
    })
}

/// The CAs of `file` (PEM, relative to the configuration file), which one backend is
/// checked against instead of the built-in roots, like curl's `--cacert`.
fn ca_roots(ctx: &Ctx<'_>, key: &str, file: &Path) -> Result<rustls::RootCertStore, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    let needle = format!("\"{}\"", file.display());
    let field = format!("{key}.ca_file");
    let path = ctx.dir.join(file);
    let shown = path.display();
    let pem = std::fs::read(&path).map_err(|e| {
        ctx.err(
            &needle,
            &field,
            format!("cannot read {shown}: {e} (relative paths start at the configuration file's directory)"),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ctx.err(
                &needle,
                &field,
                format!("{shown} is not PEM certificates ({e})"),
            )
        })?;
    if certs.is_empty() {
        return Err(ctx.err(
            &needle,
            &field,
            format!(
                "{shown} has no certificate in it: give the backend's CA certificate in PEM \
                 (-----BEGIN CERTIFICATE-----)"
            ),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            ctx.err(
                &needle,
                &field,
                format!("{shown}: a certificate in it cannot be used as a CA ({e})"),
            )
        })?;
    }
    Ok(roots)
}

/// The line a build without the `redis` feature answers cluster settings with.
#[cfg(not(feature = "redis"))]
const NO_CLUSTER: &str = "needs cluster mode, which this build does not have: rebuild with \
                          `cargo build --release -p wamp-server --features redis`";

/// Cluster mode from `[cluster]` and the flags (which win), or `None`.
#[cfg(not(feature = "redis"))]
fn cluster_plan(
    section: Option<Cluster>,
    ctx: &Ctx<'_>,
    overrides: &Overrides,
    _env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ClusterPlan>, ConfigError> {
    if section.is_some() {
        return Err(ctx.err(
            "[cluster]",
            "cluster",
            format!("[cluster] {NO_CLUSTER} (or remove [cluster])"),
        ));
    }
    if overrides.redis_url.is_some() {
        return Err(ConfigError(format!("--redis-url {NO_CLUSTER}")));
    }
    Ok(None)
}

/// Cluster mode from `[cluster]` and the flags (which win), or `None`.
#[cfg(feature = "redis")]
fn cluster_plan(
    section: Option<Cluster>,
    ctx: &Ctx<'_>,
    overrides: &Overrides,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ClusterPlan>, ConfigError> {
    use wamp_server::backplane::redis::{RedisBackplane, RedisConfig};
    let file = section.as_ref();
    let url = match (&overrides.redis_url, file) {
        (Some(url), _) => url.clone(),
        (None, None) => return Ok(None),
        (None, Some(c)) => {
            if c.redis_url.is_none() && c.redis_url_env.is_none() {
                return Err(ctx.err(
                    "[cluster]",
                    "cluster.redis_url",
                    "missing: give `redis_url` or `redis_url_env` (the name of an environment \
                     variable), or --redis-url",
                ));
            }
            secret(
                ctx,
                env,
                "cluster.redis_url",
                c.redis_url.clone(),
                c.redis_url_env.clone(),
                "redis_url",
            )?
        }
    };
    let name = |flag: &Option<String>, value: Option<&String>, key: &str, default: &str| match (
        flag, value,
    ) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(v)) if v.is_empty() => Err(ctx.err(
            key,
            &format!("cluster.{key}"),
            "is empty: give a name (or leave the key out for the default)",
        )),
        (None, Some(v)) => Ok(v.clone()),
        (None, None) => Ok(default.to_string()),
    };
    let node_name = name(
        &overrides.node_name,
        file.and_then(|c| c.node_name.as_ref()),
        "node_name",
        "node",
    )?;
    let prefix = name(
        &overrides.redis_prefix,
        file.and_then(|c| c.prefix.as_ref()),
        "prefix",
        "wamp",
    )?;
    let mut config = RedisConfig::new(url.as_str())
        .node_name(node_name.as_str())
        .prefix(prefix.as_str());
    match overrides
        .redis_queue_capacity
        .or(file.and_then(|c| c.queue_capacity))
    {
        Some(0) => {
            return Err(ctx.err(
                "queue_capacity",
                "cluster.queue_capacity",
                "must be at least 1 (0 would drop every cross-node event; the default is 10000)",
            ))
        }
        Some(n) => config = config.queue_capacity(n),
        None => {}
    }
    if let Some(d) = overrides
        .redis_heartbeat
        .or(file.and_then(|c| c.heartbeat.map(|s| s.0)))
    {
        check_heartbeat(d).map_err(|e| ctx.err("heartbeat", "cluster.heartbeat", e))?;
        config = config.heartbeat(d);
    }
    let backplane = RedisBackplane::new(config).map_err(|e| {
        if overrides.redis_url.is_some() {
            ConfigError(format!(
                "--redis-url {url}: {e} (expected redis://HOST:PORT/)"
            ))
        } else {
            ctx.err(
                "redis_url",
                "cluster.redis_url",
                format!("{e} (expected redis://HOST:PORT/)"),
            )
        }
    })?;
    Ok(Some(ClusterPlan {
        node_id: backplane.node_id().to_string(),
        prefix,
        backplane,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Plan, String> {
        let name = "t.toml";
        let file = parse_toml(name, text).map_err(|e| e.0)?;
        let ctx = Ctx {
            name,
            source: text,
            dir: Path::new(""),
        };
        validate(file, &ctx, &Overrides::default(), &|v: &str| {
            (v == "SET").then(|| "from-env-secret!".to_string())
        })
        .map_err(|e| e.0)
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = check("[server]\nport = 1\nprot = 2\n").err().unwrap();
        assert!(
            e.starts_with("t.toml:3: server.prot: unknown field `prot`"),
            "{e}"
        );
        let e = check("[server]\nport = \"x\"\n").err().unwrap();
        assert!(e.starts_with("t.toml:2: server.port: invalid type"), "{e}");
        let e = check("[[topics]]\nuri = \"a\"\n[[topics]]\nuri = \"b\"\npublish = \"maybe\"\n")
            .err()
            .unwrap();
        assert!(
            e.starts_with("t.toml:5: topics[1].publish: invalid value"),
            "{e}"
        );
        let e = check("[auth]\n[[auth.users]]\nkey = \"a\"\nsecret_env = \"UNSET\"\n")
            .err()
            .unwrap();
        assert!(
            e.starts_with("t.toml:4: auth.users[0].secret_env: the environment variable UNSET"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = check("[api]\nkey = \"short\"\n").err().unwrap();
        assert!(e.contains("api.key: is 5 characters long"), "{e}");
        let e = check("[[topics]]\nuri = \"x\"\nsubscribe = \"authenticated\"\n")
            .err()
            .unwrap();
        assert!(e.contains("needs an [auth] section"), "{e}");
        let e = check("[server]\nshutdown_grace = -1\n").err().unwrap();
        assert!(
            e.starts_with("t.toml:2: server.shutdown_grace: -1 is not a duration"),
            "{e}"
        );
    }

    #[test]
    fn backplane_flag_values_at_their_bounds() {
        assert_eq!(parse_heartbeat("0.01"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_heartbeat("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_heartbeat("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_heartbeat(" 1 "), Ok(Duration::from_secs(1)));
        for bad in ["0", "9ms", "0.0099", "-1", "1h", "", "ms"] {
            assert!(parse_heartbeat(bad).is_err(), "{bad}");
        }
        assert!(parse_heartbeat("0")
            .unwrap_err()
            .starts_with("0 s is too short: give at least 0.01 seconds"));
        assert_eq!(parse_queue_capacity("1"), Ok(1));
        assert!(parse_queue_capacity("0")
            .unwrap_err()
            .starts_with("0 would drop every cross-node event"));
        assert!(parse_queue_capacity("-1").is_err());
        assert_eq!(parse_non_empty("a"), Ok("a".to_string()));
        assert!(parse_non_empty("").is_err());
    }

    #[test]
    fn a_full_file_validates() {
        let plan = check(
            r#"
[server]
port = 0
max_connections = 5
[prefixes]
rpc = "http://x/rpc#"
[[topics]]
uri = "*"
[auth]
timeout = 0
[[auth.users]]
key = "a"
secret_env = "SET"
salt = "s"
[[rpc.proxy]]
uri = "rpc:*"
url = "http://127.0.0.1:1/rpc"
headers = { Authorization = "Bearer x" }
[api]
key_env = "SET"
"#,
        )
        .map_err(|e| e.to_string())
        .unwrap();
        assert_eq!(plan.proxies[0].uri, "http://x/rpc#");
        assert!(plan.proxies[0].prefix);
        assert_eq!(plan.api.unwrap().key, "from-env-secret!");
        assert_eq!(plan.listen.port(), 0);
    }
}
