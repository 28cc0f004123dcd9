//! [`Connection`]: the global options turned into [`ConnectOptions`], one connect that maps
//! every failure to an exit code, and topic resolution for subscriptions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};
use wamp_client::{Client, ConnectOptions, ReconnectPolicy};
use wamp_proto::cra::CraStyle;
use wamp_proto::uri::Prefixes;

use crate::cli::GlobalArgs;
use crate::exit::Failure;

/// The tutorial server's default prefixes. `wamp-cli` uses them to resolve a subscription
/// topic given as a CURIE whose prefix was not declared with `--prefix` (events carry full
/// URIs, so the client must know them); they are never sent to the server.
pub const TUTORIAL_PREFIXES: [(&str, &str); 2] = [
    ("rpc", "http://wamptutorial/rpc#"),
    ("event", "http://wamptutorial/event#"),
];

/// The connect time limit when `--timeout 0` lets calls wait forever.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect: built once from the global options, used by every command.
#[derive(Debug, Clone)]
pub struct Connection {
    url: String,
    prefixes: Vec<(String, String)>,
    auth: Option<(String, String)>,
    call_timeout: Option<Duration>,
    connect_timeout: Duration,
    skip_subprotocol_check: bool,
    cra_style: CraStyle,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // refused by from_args then
    ca_files: Vec<PathBuf>,
    insecure: bool,
}

impl Connection {
    /// Checks the global options (both or neither of `--auth-key` and `--auth-secret`).
    pub fn from_args(args: &GlobalArgs) -> Result<Self, Failure> {
        let auth = match (&args.auth_key, &args.auth_secret) {
            (Some(key), Some(secret)) => Some((key.clone(), secret.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Failure::usage(
                    "--auth-key needs --auth-secret (or WAMP_AUTH_SECRET)",
                ))
            }
            (None, Some(_)) => {
                return Err(Failure::usage(
                    "--auth-secret needs --auth-key (or WAMP_AUTH_KEY)",
                ))
            }
        };
        let call_timeout = Some(args.timeout).filter(|t| !t.is_zero());
        if !cfg!(feature = "tls") && (!args.ca_files.is_empty() || args.insecure) {
            return Err(Failure::usage(
                "--ca-file and --insecure need TLS, which this build of wamp-cli leaves out \
                 (its `tls` feature is off)",
            ));
        }
        for file in &args.ca_files {
            // Said here as a usage error, before any connection is tried.
            if let Err(e) = std::fs::metadata(file) {
                return Err(Failure::usage(format!(
                    "cannot read --ca-file {}: {e}",
                    file.display()
                )));
            }
        }
        Ok(Connection {
            url: args.url.clone(),
            prefixes: args.prefixes.clone(),
            auth,
            call_timeout,
            connect_timeout: call_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            skip_subprotocol_check: args.no_subprotocol_check,
            cra_style: args.cra_style,
            ca_files: args.ca_files.clone(),
            insecure: args.insecure,
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same options for another server (`bench fanout --subscriber-url`).
    pub fn with_url(&self, url: &str) -> Connection {
        Connection {
            url: url.to_string(),
            ..self.clone()
        }
    }

    /// The call timeout (`None`: calls wait as long as the connection lives).
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// The connect timeout (also the limit for things such as a benchmark's warm-up).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The client options: timeouts, prefixes (declared with PREFIX on every connection),
    /// credentials and their CRA style, TLS trust, and `reconnect`.
    pub fn options(&self, reconnect: ReconnectPolicy) -> ConnectOptions {
        let mut options = ConnectOptions::new()
            .connect_timeout(self.connect_timeout)
            .call_timeout(self.call_timeout)
            .skip_subprotocol_check(self.skip_subprotocol_check)
            .cra_style(self.cra_style)
            .reconnect(reconnect);
        #[cfg(feature = "tls")]
        {
            for file in &self.ca_files {
                options = options.ca_file(file.clone());
            }
            options = options.insecure(self.insecure);
        }
        for (name, uri) in &self.prefixes {
            options = options.prefix(name.clone(), uri.clone());
        }
        if let Some((key, secret)) = &self.auth {
            options = options.auth(key.clone(), secret.clone());
        }
        options
    }

    /// Connects with `options` (from [`Connection::options`], maybe adjusted), mapping a
    /// failure to its exit code.
    pub async fn connect_with(&self, options: ConnectOptions) -> Result<Client, Failure> {
        debug!(url = %self.url, ?options, "connecting");
        if self.insecure && self.url.starts_with("wss:") {
            warn!(
                url = %self.url,
                "--insecure: the server's TLS certificate is NOT verified (the connection is \
                 encrypted, but anyone could be at the other end)"
            );
        }
        let client = options.connect(&self.url).await.map_err(|e| {
            Failure::connecting(&self.url, self.auth.as_ref().map(|(k, _)| k.as_str()), e)
        })?;
        info!(
            url = %self.url,
            session_id = client.session_id().unwrap_or_default(),
            server = client.server_ident().unwrap_or_default(),
            authenticated_as = self.auth.as_ref().map(|(k, _)| k.as_str()),
            "connected"
        );
        Ok(client)
    }

    /// Connects without reconnecting (a dropped link ends the command).
    pub async fn connect(&self) -> Result<Client, Failure> {
        self.connect_with(self.options(ReconnectPolicy::never()))
            .await
    }

    /// The full URI of a topic to subscribe to: `--prefix` first, then
    /// [`TUTORIAL_PREFIXES`]. A CURIE whose prefix neither knows is a usage error, since the
    /// client could not match the events (they carry full URIs) to it.
    pub fn subscription_topic(&self, topic: &str) -> Result<String, Failure> {
        let defaults: HashMap<String, String> = TUTORIAL_PREFIXES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut prefixes = Prefixes::with_defaults(Arc::new(defaults));
        for (name, uri) in &self.prefixes {
            prefixes.insert(name.clone(), uri.clone());
        }
        // The client's own test of what reads as a CURIE (it would refuse the same topic).
        if let Some(name) = wamp_client::curie_prefix(topic) {
            if prefixes.get(name).is_none() {
                return Err(Failure::usage(format!(
                    "cannot subscribe to {topic:?}: the prefix {name:?} is unknown; declare it \
                     with --prefix {name}=URI (or WAMP_PREFIXES), or give the full topic URI"
                )));
            }
        }
        let resolved = prefixes.resolve(topic).into_owned();
        if resolved != topic {
            info!(%topic, %resolved, "topic resolved");
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::USAGE;
    use clap::Parser;

    fn connection(extra: &[&str]) -> Result<Connection, Failure> {
        let mut argv = vec!["wamp-cli"];
        argv.extend_from_slice(extra);
        argv.extend_from_slice(&["call", "x"]);
        Connection::from_args(&crate::Cli::try_parse_from(argv).unwrap().global)
    }

    #[test]
    fn subscription_topics_resolve() {
        let c = connection(&["--prefix", "event=http://other/event#", "-p", "n=urn:x:"]).unwrap();
        assert_eq!(
            c.subscription_topic("event:chat").unwrap(),
            "http://other/event#chat"
        );
        assert_eq!(c.subscription_topic("n:y").unwrap(), "urn:x:y");
        assert_eq!(
            c.subscription_topic("rpc:x").unwrap(),
            "http://wamptutorial/rpc#x"
        );
        assert_eq!(
            c.subscription_topic("http://a/b#c").unwrap(),
            "http://a/b#c"
        );
        assert_eq!(c.subscription_topic("urn:a:b").unwrap(), "urn:a:b");
        assert_eq!(c.subscription_topic("plain").unwrap(), "plain");
        assert_eq!(c.subscription_topic("nope:x").unwrap_err().code(), USAGE);
    }

    #[test]
    fn auth_needs_both_halves_and_zero_timeout_means_none() {
        assert_eq!(connection(&["--auth-key", "k"]).unwrap_err().code(), USAGE);
        let c = connection(&["--auth-key", "k", "--auth-secret", "s", "-t", "0"]).unwrap();
        assert_eq!(c.call_timeout(), None);
        assert_eq!(c.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert!(!format!("{:?}", c.options(ReconnectPolicy::never())).contains("\"s\""));
    }

    #[test]
    fn tls_and_cra_style_options() {
        let c = connection(&["-k", "--cra-style", "clj-wamp"]).unwrap();
        let shown = format!("{:?}", c.options(ReconnectPolicy::never()));
        assert!(shown.contains("CljWamp"), "{shown}");
        #[cfg(feature = "tls")]
        assert!(shown.contains("insecure: true"), "{shown}");
        assert_eq!(connection(&[]).unwrap().cra_style, CraStyle::Auto);
        let missing = connection(&["--ca-file", "/no/such/ca.pem"]).unwrap_err();
        assert_eq!(missing.code(), USAGE);
        assert!(missing.message().contains("/no/such/ca.pem"), "{missing:?}");
        let mut argv = vec!["wamp-cli", "--cra-style", "sideways", "call", "x"];
        assert!(crate::Cli::try_parse_from(&argv).is_err());
        argv[2] = "standard";
        assert!(crate::Cli::try_parse_from(&argv).is_ok());
    }
}
