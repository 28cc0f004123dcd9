//! The command line: global options and one struct per command, with clap derive. The help
//! text, examples and exit codes a person sees with `--help` live here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use clap_complete::Shell;

use crate::args::{parse_duration, parse_prefix};
use wamp_proto::cra::CraStyle;

const MAIN_EXAMPLES: &str = "\
Examples:
  wamp-cli call rpc:echo test                       # prints \"test\"
  wamp-cli call rpc:add 1 2 3.5                     # arguments that parse as JSON are sent as JSON
  wamp-cli subscribe event:chat                     # one JSON line per event, Ctrl-C to stop
  wamp-cli publish event:chat '{\"text\":\"hi\"}'
  wamp-cli --auth-key guest --auth-secret secret-password call rpc:whoami
  wamp-cli --url ws://example.com:9000/ws --prefix calc=http://example.com/simple/calc# call calc:square 23
  wamp-cli --url wss://localhost:8080/ws --ca-file cert.pem call rpc:echo test   # TLS with a private CA
  wamp-cli bench rpc --connections 4 --in-flight 16 --duration 10s
  wamp-cli bench fanout --subscribers 8 --duration 10s --json

Environment:
  WAMP_URL, WAMP_PREFIXES (NAME=URI,NAME=URI), WAMP_AUTH_KEY, WAMP_AUTH_SECRET, WAMP_CA_FILE, RUST_LOG

Exit codes:
  0  success
  1  the server answered CALLERROR (URI, description and details on stderr), or the command failed
  2  usage: bad flags or arguments, invalid URL, a CURIE whose prefix is not declared
  3  connection: server unreachable, handshake refused, not a WAMP v1 server, connection lost
  4  authentication failed
  5  timeout: connecting or a call took longer than --timeout

URLs: ws://HOST:PORT/PATH; HOST:PORT/PATH without a scheme means ws://HOST:PORT/PATH.
CURIEs: a name such as foo:bar needs its prefix declared (--prefix foo=URI); rpc and event
(the tutorial server's) are known. Any other is refused, in every command, with exit 2.
WAMP v1 has no acknowledgement for SUBSCRIBE and PUBLISH: nothing confirms them (-v says so).";

const CALL_EXAMPLES: &str = "\
Examples:
  wamp-cli call rpc:echo test                  # \"test\"
  wamp-cli call rpc:echo '{\"a\":[1,2]}'         # {\"a\":[1,2]}
  wamp-cli call rpc:add 1 2 3.5                # 6.5
  wamp-cli call rpc:echo -s 42                 # \"42\" (every ARG as a string)
  wamp-cli call rpc:echo -- -text              # \"-text\" (after --, nothing is a flag)
  wamp-cli call rpc:echo hi --raw              # hi (a string result without JSON quotes)
  wamp-cli call rpc:throw                      # exit 1; URI, description and details on stderr
  wamp-cli --timeout 2s call http://example.com/slow#proc
  wamp-cli --prefix calc=http://example.com/simple/calc# call calc:square 23";

const SUBSCRIBE_EXAMPLES: &str = "\
Examples:
  wamp-cli subscribe event:chat                     # {\"topic\":\"http://wamptutorial/event#chat\",\"event\":...}
  wamp-cli subscribe event:chat --raw               # the event only, one JSON value per line
  wamp-cli subscribe event:chat --count 1           # exit after the first event
  wamp-cli sub event:chat --timestamps              # {\"time\":\"2026-12-01T10:00:00.000Z\",\"topic\":...}
  wamp-cli --prefix news=http://example.com/news# subscribe news:sports news:weather
  wamp-cli subscribe http://example.com/topic | jq .event

A topic given as a CURIE is resolved with --prefix, else with the tutorial's rpc and event
prefixes (WAMP v1 events carry full URIs); any other prefix is refused (exit 2).
WAMP v1 has no acknowledgement for SUBSCRIBE: nothing tells wamp-cli whether the server
accepted the subscription, and a topic it refused simply stays quiet (-v says so).
Stops cleanly on Ctrl-C.";

const PUBLISH_EXAMPLES: &str = "\
Examples:
  wamp-cli publish event:chat hello
  wamp-cli publish event:chat '{\"text\":\"hi\",\"n\":1}'
  wamp-cli publish event:chat tick --count 10 --interval 1s
  wamp-cli publish event:chat secret --eligible SESSION_ID
  wamp-cli publish event:chat 'not for you' --exclude SESSION_ID,OTHER_ID
  tail -f app.log | wamp-cli publish event:log --stdin     # one event per line

Session ids are shown by `wamp-cli -v subscribe`.
WAMP v1 has no acknowledgement for PUBLISH: exit 0 means the events were sent, not that the
server accepted them or that anyone received them (-v says so).";

const BENCH_EXAMPLES: &str = "\
Examples:
  wamp-cli bench rpc                                          # 4 connections x 16 calls in flight, 10 s
  wamp-cli bench rpc -c 8 -i 32 -d 30s --size 1024 --procedure rpc:echo
  wamp-cli bench fanout                                        # 4 subscribers, 1 publisher, 10 s, on event:bench
  wamp-cli bench fanout --subscribers 16 --publishers 2 -d 10s --size 256 --json
  wamp-cli --prefix t=http://example.com/ bench fanout --topic t:bench
  wamp-cli bench connect -c 8 -d 5s                            # sessions opened and closed per second

Uses only CALL, SUBSCRIBE and PUBLISH, so it runs against any WAMP v1 server.";

const RPC_EXAMPLES: &str = "\
Examples:
  wamp-cli bench rpc
  wamp-cli bench rpc --connections 8 --in-flight 32 --duration 30s --size 1024
  wamp-cli --prefix calc=http://example.com/calc# bench rpc --procedure calc:echo --json
  wamp-cli bench rpc --rate 20000 --json          # latency at 20,000 calls/s in all

Each call sends one argument, a string of --size bytes, and waits for its result.";

const CONNECT_EXAMPLES: &str = "\
Examples:
  wamp-cli bench connect
  wamp-cli bench connect --concurrency 16 --duration 10s --json

Each loop connects (TCP, WebSocket handshake, WELCOME), closes the session (WebSocket close
handshake), and starts again. Setup latency is from the start of the connection to WELCOME.";

const FANOUT_EXAMPLES: &str = "\
Examples:
  wamp-cli bench fanout
  wamp-cli bench fanout --subscribers 16 --publishers 2 --duration 10s --size 256
  wamp-cli bench fanout --rate 1000 --json        # latency at 1000 events/s per publisher

The default topic, event:bench, is the tutorial server's topic for benchmarks: its page does
not show it, so a benchmark does not flood the chat. Against another server, choose --topic.
Each event carries its publish time; latency is publish -> delivery to a subscriber. A publisher
keeps at most --window events that some subscriber has not received yet, so the server is never
flooded into closing slow subscribers.";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  wamp-cli completions bash > ~/.local/share/bash-completion/completions/wamp-cli
  wamp-cli completions zsh > ~/.zfunc/_wamp-cli
  wamp-cli completions fish > ~/.config/fish/completions/wamp-cli.fish";

/// Call, subscribe, publish and benchmark against any WAMP v1 server.
#[derive(Debug, Parser)]
#[command(name = "wamp-cli", version, about, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (they may come before or after the command name).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// WebSocket URL of the WAMP v1 server (HOST:PORT/PATH without a scheme means ws://HOST:PORT/PATH).
    #[arg(
        short,
        long,
        global = true,
        env = "WAMP_URL",
        hide_env_values = true,
        default_value = "ws://localhost:8080/ws"
    )]
    pub url: String,

    /// Declare a CURIE prefix, NAME=URI (repeatable; WAMP_PREFIXES takes a comma-separated list).
    #[arg(
        short,
        long = "prefix",
        global = true,
        env = "WAMP_PREFIXES",
        hide_env_values = true,
        value_name = "NAME=URI",
        value_delimiter = ',',
        value_parser = parse_prefix
    )]
    pub prefixes: Vec<(String, String)>,

    /// Authenticate with WAMP-CRA as this key (needs --auth-secret).
    #[arg(
        long,
        global = true,
        env = "WAMP_AUTH_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub auth_key: Option<String>,

    /// The secret of --auth-key (prefer the environment variable: it stays out of shell history).
    #[arg(
        long,
        global = true,
        env = "WAMP_AUTH_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub auth_secret: Option<String>,

    /// Limit for connecting (and authenticating) and for each call: 500ms, 10s, 1m; 0 lets calls wait forever.
    #[arg(
        short,
        long,
        global = true,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration
    )]
    pub timeout: Duration,

    /// Accept servers that do not select the `wamp` WebSocket subprotocol.
    #[arg(long, global = true)]
    pub no_subprotocol_check: bool,

    /// For wss://: trust the CA certificates in this PEM file too (repeatable); for a self-signed server, its certificate.
    #[arg(
        long = "ca-file",
        global = true,
        env = "WAMP_CA_FILE",
        value_name = "FILE"
    )]
    pub ca_files: Vec<PathBuf>,

    /// For wss://, testing only: accept any certificate (still encrypted; warns every time).
    #[arg(short = 'k', long, global = true)]
    pub insecure: bool,

    /// How WAMP-CRA signs the challenge: auto (standard for a JSON challenge, clj-wamp for an opaque one), standard, clj-wamp.
    #[arg(long, global = true, value_name = "STYLE", default_value_t = CraStyle::Auto)]
    pub cra_style: CraStyle,

    /// Log what happens on stderr: -v the client's steps, -vv every WAMP message sent and received too.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Call a procedure and print its result as JSON.
    #[command(after_help = CALL_EXAMPLES)]
    Call(CallArgs),
    /// Print the events of one or more topics, one JSON line each (alias: sub).
    #[command(visible_alias = "sub", after_help = SUBSCRIBE_EXAMPLES)]
    Subscribe(SubscribeArgs),
    /// Publish an event (once, several times, or one per line of stdin) (alias: pub).
    #[command(visible_alias = "pub", after_help = PUBLISH_EXAMPLES)]
    Publish(PublishArgs),
    /// Measure throughput and latency: RPC round trips, PubSub fan-out or connection setup.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
}

impl Command {
    /// The procedure and topic names the command will use, for the CURIE rule
    /// ([`crate::curie::check`]).
    pub fn uris(&self) -> Vec<&str> {
        match self {
            Command::Call(a) => vec![a.procedure.as_str()],
            Command::Subscribe(a) => a.topics.iter().map(String::as_str).collect(),
            Command::Publish(a) => vec![a.topic.as_str()],
            Command::Bench(b) => match &b.mode {
                BenchMode::Rpc(r) => vec![r.procedure.as_str()],
                BenchMode::Fanout(f) => vec![f.topic.as_str()],
                BenchMode::Connect(_) => Vec::new(),
            },
            Command::Completions { .. } => Vec::new(),
        }
    }
}

/// `call PROC [ARG...]`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The procedure: a full URI or a CURIE (rpc:echo).
    #[arg(value_name = "PROC")]
    pub procedure: String,
    /// Arguments: one that parses as JSON is sent as that JSON, anything else as a string.
    #[arg(value_name = "ARG", allow_negative_numbers = true)]
    pub args: Vec<String>,
    /// Send every ARG as a string, even one that parses as JSON.
    #[arg(short, long)]
    pub string: bool,
    /// Pretty-print the result.
    #[arg(long)]
    pub pretty: bool,
    /// Print a string result as its text, without JSON quotes (other results stay JSON).
    #[arg(long)]
    pub raw: bool,
}

/// `subscribe TOPIC...`.
#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Topics: full URIs or CURIEs (event:chat).
    #[arg(value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
    /// Print only the event, not {"topic":...,"event":...}.
    #[arg(long)]
    pub raw: bool,
    /// Exit after this many events (all topics together).
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// Add the time each event arrived (UTC, ISO 8601, ms): a "time" field first, or with
    /// --raw the time and a space before the event.
    #[arg(long)]
    pub timestamps: bool,
}

/// `publish TOPIC EVENT`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The topic: a full URI or a CURIE (event:chat).
    #[arg(value_name = "TOPIC")]
    pub topic: String,
    /// The event: sent as JSON if it parses as JSON, else as a string.
    #[arg(
        value_name = "EVENT",
        required_unless_present = "stdin",
        conflicts_with = "stdin",
        allow_negative_numbers = true
    )]
    pub event: Option<String>,
    /// Publish one event per line of standard input (each parsed like EVENT; empty lines skipped).
    #[arg(long)]
    pub stdin: bool,
    /// Publish EVENT this many times.
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        default_value_t = 1,
        conflicts_with = "stdin"
    )]
    pub count: u64,
    /// Wait this long between two events (with --count or --stdin).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Ask the server not to send the event to this session itself (excludeMe = true).
    #[arg(long)]
    pub exclude_me: bool,
    /// Session ids that must not receive the event (repeatable, or comma-separated).
    // Session ids may start with `-`: such a value is still an id, not a flag.
    #[arg(
        long,
        value_name = "ID",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub exclude: Vec<String>,
    /// Only these session ids may receive the event (repeatable, or comma-separated).
    #[arg(
        long,
        value_name = "ID",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub eligible: Option<Vec<String>>,
    /// Send EVENT as a string even if it parses as JSON.
    #[arg(short, long)]
    pub string: bool,
}

/// `bench rpc|fanout|connect`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The benchmark to run.
    #[command(subcommand)]
    pub mode: BenchMode,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchMode {
    /// RPC: calls in flight on several connections; calls/s and round-trip latency.
    #[command(after_help = RPC_EXAMPLES)]
    Rpc(RpcBenchArgs),
    /// PubSub fan-out: publishers to subscribers; deliveries/s and publish-to-delivery latency.
    #[command(after_help = FANOUT_EXAMPLES)]
    Fanout(FanoutBenchArgs),
    /// Connection setup: sessions opened (up to WELCOME) and closed per second, setup latency.
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(ConnectBenchArgs),
}

/// Options both benchmarks take.
#[derive(Debug, Clone, Args)]
pub struct BenchCommon {
    /// How long to measure.
    #[arg(short, long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Payload size in bytes (rpc: the string argument; fanout: the whole event, at least about 80).
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    pub size: usize,
    /// Print the results as one JSON object (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Print `MEASURE start` and `MEASURE stop` lines on stderr at the edges of the measuring
    /// window (after the sessions are set up, before they close), for a tool that samples the
    /// server (e.g. its CPU time) around exactly that window.
    #[arg(long)]
    pub mark: bool,
}

/// `bench rpc`.
#[derive(Debug, Clone, Args)]
pub struct RpcBenchArgs {
    /// WebSocket connections (sessions).
    #[arg(short, long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Calls in flight on each connection.
    #[arg(short, long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub in_flight: u32,
    /// The procedure to call (a full URI or a CURIE); it should return quickly.
    #[arg(long, value_name = "PROC", default_value = "rpc:echo")]
    pub procedure: String,
    /// Calls per second in all, spread evenly over the callers (0: each caller calls again as
    /// soon as its answer arrives). A caller that falls behind does not burst to catch up.
    #[arg(short, long, value_name = "N", default_value_t = 0)]
    pub rate: u32,
    /// Duration, payload size, JSON output.
    #[command(flatten)]
    pub common: BenchCommon,
}

/// `bench connect`.
#[derive(Debug, Clone, Args)]
pub struct ConnectBenchArgs {
    /// Loops running at once, each opening and closing one session after another.
    #[arg(short, long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub concurrency: u32,
    /// Duration, JSON output (--size is not used).
    #[command(flatten)]
    pub common: BenchCommon,
}

/// `bench fanout`.
#[derive(Debug, Clone, Args)]
pub struct FanoutBenchArgs {
    /// Subscriber connections.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub subscribers: u32,
    /// Publisher connections.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub publishers: u32,
    /// The topic (a full URI or a CURIE; resolved like `subscribe` does). The default is the
    /// tutorial server's benchmark topic, which its page does not show.
    #[arg(long, value_name = "TOPIC", default_value = "event:bench")]
    pub topic: String,
    /// Events a publisher may have out that some subscriber has not received yet.
    #[arg(short, long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Events per second per publisher (0: as fast as the window allows).
    #[arg(short, long, value_name = "N", default_value_t = 0)]
    pub rate: u32,
    /// Connect the subscribers to this server instead of --url (repeatable: spread
    /// round-robin over them, e.g. the nodes of a cluster); the publishers stay on --url.
    #[arg(long = "subscriber-url", value_name = "URL")]
    pub subscriber_urls: Vec<String>,
    /// Duration, payload size, JSON output.
    #[command(flatten)]
    pub common: BenchCommon,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from([
            "wamp-cli",
            "call",
            "rpc:add",
            "1",
            "-2",
            "--url",
            "ws://h:1/ws",
            "-p",
            "a=http://x/",
        ])
        .unwrap();
        assert_eq!(cli.global.url, "ws://h:1/ws");
        assert_eq!(
            cli.global.prefixes,
            vec![("a".to_string(), "http://x/".to_string())]
        );
        let Command::Call(call) = cli.command else {
            panic!("not a call")
        };
        assert_eq!(call.args, ["1", "-2"]);
    }

    #[test]
    fn publish_needs_an_event_or_stdin() {
        assert!(Cli::try_parse_from(["wamp-cli", "publish", "t"]).is_err());
        assert!(Cli::try_parse_from(["wamp-cli", "publish", "t", "--stdin"]).is_ok());
        assert!(Cli::try_parse_from(["wamp-cli", "publish", "t", "e", "--stdin"]).is_err());
        let cli = Cli::try_parse_from([
            "wamp-cli",
            "publish",
            "t",
            "e",
            "--exclude",
            "a,b",
            "--exclude",
            "c",
        ])
        .unwrap();
        let Command::Publish(p) = cli.command else {
            panic!("not a publish")
        };
        assert_eq!(p.exclude, ["a", "b", "c"]);
        assert_eq!(p.eligible, None);

        // Session ids are drawn from [A-Za-z0-9_-] and may start with a hyphen.
        let cli = Cli::try_parse_from([
            "wamp-cli",
            "publish",
            "t",
            "e",
            "--exclude",
            "-Vab",
            "--eligible",
            "-x,y",
        ])
        .unwrap();
        let Command::Publish(p) = cli.command else {
            panic!("not a publish")
        };
        assert_eq!(p.exclude, ["-Vab"]);
        assert_eq!(p.eligible, Some(vec!["-x".to_string(), "y".to_string()]));
    }
}
