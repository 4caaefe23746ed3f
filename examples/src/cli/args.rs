//! The command line: mosquitto_pub's, mosquitto_sub's and mosquitto_rr's flags, parsed with
//! clap.
//!
//! `-h` is the host, as in mosquitto, so clap's own `-h`/`-V` flags are off and help is
//! `--help` only; `-V` is the protocol version.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use mqtt_client_tokio::{ProtocolVersion, QoS};

use super::exit::EXIT_CODES_HELP;

/// `mqtt pub ...` / `mqtt sub ...` / `mqtt rr ...`.
#[derive(Debug, Parser)]
#[command(
    name = "mqtt",
    version,
    about = "Publish, subscribe and request/response on MQTT 3.1 / 3.1.1 / 5.0 brokers with \
             mosquitto_pub's, mosquitto_sub's and mosquitto_rr's flags",
    long_about = "Publish, subscribe and request/response on MQTT 3.1 / 3.1.1 / 5.0 brokers.\n\n\
                  `mqtt pub` takes mosquitto_pub's flags, `mqtt sub` mosquitto_sub's and \
                  `mqtt rr` mosquitto_rr's, with the same output, `-d` packet trace and exit \
                  codes, so scripts carry over by replacing the program name. As in \
                  mosquitto, `-h` is the host: help is `--help` (`mqtt pub --help` for the \
                  flags of one command).\n\n\
                  Unlike mosquitto's clients, a lost connection is re-established with \
                  backoff and the session resumed (unless --no-reconnect), so \
                  `mqtt pub -l -q 1` delivers every line across a dropped connection.",
    disable_help_flag = true,
    disable_version_flag = true,
    after_long_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// The operation.
    #[command(subcommand)]
    pub command: Command,
    /// Print help (this text; `mqtt pub --help`, `mqtt sub --help` and `mqtt rr --help`
    /// list their flags).
    #[arg(long, action = ArgAction::HelpLong)]
    help: Option<bool>,
    /// Print the version.
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,
}

impl Cli {
    /// Parses a command line (the program name first), keeping each `-D` group apart.
    ///
    /// # Errors
    /// clap's error for bad flags, `--help` and `--version`.
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().try_get_matches_from(args)?;
        let mut cli = Self::from_arg_matches(&matches)?;
        let groups = match matches.subcommand() {
            Some((name, sub)) if name != "bench" => sub
                .get_occurrences::<String>("property")
                .map(|o| o.map(|g| g.cloned().collect()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        match &mut cli.command {
            Command::Pub(p) => p.conn.properties = groups,
            Command::Sub(s) => s.conn.properties = groups,
            Command::Rr(r) => r.conn.properties = groups,
            Command::Bench(_) => {}
        }
        Ok(cli)
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish messages (mosquitto_pub).
    #[command(
        name = "pub",
        disable_help_flag = true,
        long_about = "Publish a message, a file, or stdin line by line, then disconnect \
                      (mosquitto_pub).\n\n\
                      Examples:\n  \
                      mqtt pub -h broker -t sensors/1/temp -m 21.5 -q 1 -r\n  \
                      mqtt pub -t t -n -r                          # clear a retained message\n  \
                      tail -f log | mqtt pub -t logs -l -q 1       # one connection for all lines\n  \
                      mqtt pub -V 5 -t t -m x -D publish user-property k v",
        after_long_help = EXIT_CODES_HELP
    )]
    Pub(PubArgs),
    /// Subscribe and print messages (mosquitto_sub).
    #[command(
        name = "sub",
        disable_help_flag = true,
        long_about = "Subscribe to topic filters and print the messages that arrive \
                      (mosquitto_sub).\n\n\
                      Examples:\n  \
                      mqtt sub -h broker -t 'sensors/#' -v -C 10 -W 30\n  \
                      mqtt sub -t 'a/#' -F '@Y-@m-@dT@H:@M:@S %t %p'\n  \
                      mqtt sub -t 'status/#' --retained-only --remove-retained",
        after_long_help = EXIT_CODES_HELP
    )]
    Sub(SubArgs),
    /// Send a request and print the response (mosquitto_rr).
    #[command(
        name = "rr",
        disable_help_flag = true,
        long_about = "Request/response (mosquitto_rr): subscribe to the response topic (-e), \
                      publish the request to -t (on 5.0 with the Response Topic property \
                      set to -e, and any -D publish correlation-data), print the first \
                      response and exit.\n\n\
                      Examples:\n  \
                      mqtt rr -t service/time -e replies/me -m now -W 5\n  \
                      mqtt rr -t svc -e r/1 -m q -D publish correlation-data 42 -F '%D %p'",
        after_long_help = EXIT_CODES_HELP
    )]
    Rr(RrArgs),
    /// Load generator: many connections, publishers or subscribers, with rates and latency
    /// percentiles (as emqtt-bench and MQTTX bench).
    #[command(
        name = "bench",
        disable_help_flag = true,
        long_about = "Load generator (as emqtt-bench and `mqttx bench`): `conn` opens -c \
                      connections at --conn-rate per second and reports the process's memory \
                      per connection; `pub` runs -c publishers, each sending a message every \
                      -I ms (or --rate per second), until -L messages or --duration; `sub` runs \
                      -c subscribers. Every second a progress line goes to stderr (connected, \
                      messages per second sent and received, errors); at the end (also on \
                      Ctrl-C) a summary with latency percentiles (HdrHistogram) goes to \
                      stdout: publish->ack for `pub` at QoS 1 and 2, publish->receive for `sub` \
                      of messages that `mqtt bench pub` sent.\n\n\
                      Examples:\n  \
                      mqtt bench conn -c 10000 --conn-rate 2000 --duration 5\n  \
                      mqtt bench sub -c 10 -t 'bench/#' -q 1 -L 100000\n  \
                      mqtt bench pub -c 10 -t bench/%i -q 1 -I 10 -s 64 -L 100000",
        after_long_help = crate::cli::bench::args::HEADER_HELP
    )]
    Bench(crate::cli::bench::args::BenchArgs),
}

/// Where a message's payload comes from: `-m`, `-f`, `-l`, `-s` or `-n`.
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// Send MESSAGE as the payload.
    #[arg(short = 'm', long = "message", help_heading = "Message")]
    pub message: Option<String>,
    /// Send the contents of FILE as one message.
    #[arg(short = 'f', long = "file", help_heading = "Message")]
    pub file: Option<PathBuf>,
    /// Read stdin and send each line as a message (newline removed; empty lines are empty
    /// messages), all over one connection that is re-established if it drops.
    #[arg(short = 'l', long = "stdin-line", help_heading = "Message")]
    pub stdin_line: bool,
    /// Read stdin to its end and send it as one message.
    #[arg(short = 's', long = "stdin-file", help_heading = "Message")]
    pub stdin_file: bool,
    /// Send a zero-length message (`-r -n` clears a retained message).
    #[arg(short = 'n', long = "null-message", help_heading = "Message")]
    pub null_message: bool,
}

/// How received messages are printed (`sub` and `rr`).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print `topic payload` instead of the payload alone.
    #[arg(short = 'v', long = "verbose", help_heading = "Output")]
    pub verbose: bool,
    /// Do not add a newline after each message.
    #[arg(short = 'N', long = "no-eol", help_heading = "Output")]
    pub no_eol: bool,
    /// Do not print retained ("stale") messages.
    #[arg(short = 'R', long = "no-retained", help_heading = "Output")]
    pub no_retained: bool,
    /// (Ours, not mosquitto's.) One JSON object per line: {"topic", "qos", "retain",
    /// "dup", "payload", "encoding" ("utf8", or "base64" when the payload is not UTF-8),
    /// "properties" (5.0: payload_format_indicator, message_expiry_interval, content_type,
    /// response_topic, correlation_data (base64), user_properties as [name, value] pairs)}.
    #[arg(
        short = 'j',
        long = "json",
        conflicts_with = "format",
        help_heading = "Output"
    )]
    pub json: bool,
    /// Indent the JSON of -F %j / %J (tabs, as mosquitto) and of -j.
    #[arg(long = "pretty", help_heading = "Output")]
    pub pretty: bool,
    /// Print each message with this format, as mosquitto_sub: %t topic, %p payload, %x / %X
    /// payload in hex, %l payload length, %q QoS, %r retain (0/1), %m packet id, %j JSON
    /// with the payload as a string, %J JSON with the payload embedded (it must be valid
    /// JSON), %I ISO 8601 local time (2024-05-06T21:48:00+0200), %U Unix time with
    /// nanoseconds, %A topic alias, %C content type, %D correlation data, %E message expiry
    /// interval, %F payload format indicator, %P user properties (name:value ...), %R
    /// response topic, %S subscription identifier (always blank: the client numbers its
    /// subscriptions itself), %% a percent sign. Between % and the
    /// letter: `-` left-aligns, `0` pads numbers with zeros, a width pads to that many
    /// characters (and cuts %p / %x to it), `.N` cuts strings to N bytes. @ followed by a
    /// strftime letter prints the local time: @Y year, @m month, @d day, @H hour, @M
    /// minute, @S second, @s Unix seconds, @N nanoseconds, @z zone ... and @@ an @.
    /// Escapes: \n \t \r \a \e \v \0 \\. A newline is added unless -N is given.
    #[arg(short = 'F', long = "format", help_heading = "Output")]
    pub format: Option<String>,
}

/// Flags of `mqtt pub`.
#[derive(Debug, Args)]
pub struct PubArgs {
    /// Connection, session, will and TLS flags.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to publish to (or the path of `-L mqtt://host/topic`).
    #[arg(short = 't', long = "topic", help_heading = "Message")]
    pub topic: Option<String>,
    /// The payload.
    #[command(flatten)]
    pub source: MessageArgs,
    /// Quality of service: 0, 1 or 2. `pub` returns once the broker acknowledged every
    /// message (PUBACK for 1, PUBCOMP for 2).
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos, help_heading = "Message")]
    pub qos: QoS,
    /// Ask the broker to retain the message.
    #[arg(short = 'r', long = "retain", help_heading = "Message")]
    pub retain: bool,
    /// Publish the message COUNT times.
    #[arg(
        long = "repeat",
        default_value_t = 1,
        value_name = "COUNT",
        help_heading = "Message"
    )]
    pub repeat: u32,
    /// Seconds (fractions allowed) to wait between repeated messages.
    #[arg(
        long = "repeat-delay",
        default_value_t = 0.0,
        value_name = "SECONDS",
        help_heading = "Message"
    )]
    pub repeat_delay: f64,
    /// At most this many QoS 1 and 2 messages in flight at once (default 20).
    #[arg(
        short = 'M',
        long = "max-inflight",
        value_name = "COUNT",
        value_parser = clap::value_parser!(u16).range(1..),
        help_heading = "Message"
    )]
    pub max_inflight: Option<u16>,
    /// Print `stored N` on stdout once message N (counted from 1) is stored (with
    /// --session-dir: durably, so a script may forget it; else: queued in memory), and
    /// `acked N` once the broker acknowledged it (QoS 1 and 2).
    #[arg(long = "receipts", help_heading = "Message")]
    pub receipts: bool,
}

/// Flags of `mqtt sub`.
#[derive(Debug, Args)]
pub struct SubArgs {
    /// Connection, session, will and TLS flags.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic filter to subscribe to (repeat for several; `+` and `#` wildcards).
    #[arg(short = 't', long = "topic", help_heading = "Subscription")]
    pub topics: Vec<String>,
    /// Do not print messages whose topic matches this filter (repeatable).
    #[arg(
        short = 'T',
        long = "filter-out",
        value_name = "FILTER",
        help_heading = "Subscription"
    )]
    pub filter_out: Vec<String>,
    /// Unsubscribe from this filter (repeatable): clears a subscription of a persistent
    /// session. Sent in one UNSUBSCRIBE right after the SUBSCRIBE, as mosquitto_sub does.
    #[arg(
        short = 'U',
        long = "unsubscribe",
        value_name = "FILTER",
        help_heading = "Subscription"
    )]
    pub unsubscribe: Vec<String>,
    /// Maximum QoS of the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos, help_heading = "Subscription")]
    pub qos: QoS,
    /// Exit after printing COUNT messages.
    #[arg(
        short = 'C',
        long = "count",
        value_name = "COUNT",
        help_heading = "Subscription"
    )]
    pub count: Option<u64>,
    /// Exit with code 27 if the messages asked for (all of them without -C) have not arrived
    /// SECONDS after connecting.
    #[arg(
        short = 'W',
        long = "timeout",
        value_name = "SECONDS",
        help_heading = "Subscription"
    )]
    pub timeout: Option<u64>,
    /// Exit right after the subscriptions were acknowledged (sets up a persistent session).
    #[arg(
        short = 'E',
        long = "exit-after-subscribe",
        help_heading = "Subscription"
    )]
    pub exit_after_subscribe: bool,
    /// Print only retained messages; exit at the first message that is not retained.
    #[arg(long = "retained-only", help_heading = "Subscription")]
    pub retained_only: bool,
    /// Clear each retained message received (publish an empty retained message to its
    /// topic); -T filters out topics to keep.
    #[arg(long = "remove-retained", help_heading = "Subscription")]
    pub remove_retained: bool,
    /// Print only this percentage of the messages received, chosen at random (e.g. 10 or
    /// 0.5).
    #[arg(
        long = "random-filter",
        value_name = "PERCENT",
        value_parser = parse_percent,
        help_heading = "Subscription"
    )]
    pub random_filter: Option<f64>,
    /// How messages are printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Flags of `mqtt rr`.
#[derive(Debug, Args)]
pub struct RrArgs {
    /// Connection, session, will and TLS flags.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to send the request to.
    #[arg(short = 't', long = "topic", help_heading = "Request")]
    pub topic: Option<String>,
    /// Response topic: subscribed to before the request is sent, and sent as the request's
    /// Response Topic (5.0).
    #[arg(
        short = 'e',
        long = "response-topic",
        value_name = "TOPIC",
        help_heading = "Request"
    )]
    pub response_topic: Option<String>,
    /// The request's payload.
    #[command(flatten)]
    pub source: MessageArgs,
    /// QoS of the request and of the response subscription: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos, help_heading = "Request")]
    pub qos: QoS,
    /// Exit with code 27 if no response arrived SECONDS after connecting.
    #[arg(
        short = 'W',
        long = "timeout",
        value_name = "SECONDS",
        help_heading = "Request"
    )]
    pub timeout: Option<u64>,
    /// How the response is printed.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Flags shared by `pub`, `sub` and `rr`: where the broker is, the session, the will, TLS.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Broker host name or IP address.
    #[arg(
        short = 'h',
        long = "host",
        default_value = "localhost",
        help_heading = "Connection"
    )]
    pub host: String,
    /// Broker port. Default: 1883, or 8883 with TLS flags.
    #[arg(short = 'p', long = "port", help_heading = "Connection")]
    pub port: Option<u16>,
    /// Broker URL instead of -h/-p/-u/-P/-t: `mqtt(s)://[user[:password]@]host[:port]/topic`
    /// (the path is the topic), or a `ws://` / `wss://` URL.
    #[arg(short = 'L', long = "url", help_heading = "Connection")]
    pub url: Option<String>,
    /// Client identifier. Default: on 5.0 the broker assigns one; on 3.1/3.1.1 a random
    /// `mqttrs-...` one.
    #[arg(short = 'i', long = "id", help_heading = "Connection")]
    pub id: Option<String>,
    /// Client identifier prefix: the identifier is PREFIX and the process id.
    #[arg(
        short = 'I',
        long = "id-prefix",
        value_name = "PREFIX",
        help_heading = "Connection"
    )]
    pub id_prefix: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username", help_heading = "Connection")]
    pub username: Option<String>,
    /// Password.
    #[arg(
        short = 'P',
        long = "pw",
        value_name = "PASSWORD",
        help_heading = "Connection"
    )]
    pub password: Option<String>,
    /// Keep alive in seconds (0 turns it off).
    #[arg(
        short = 'k',
        long = "keepalive",
        default_value_t = 60,
        value_name = "SECONDS",
        help_heading = "Connection"
    )]
    pub keepalive: u16,
    /// Protocol version: mqttv5 (or 5), mqttv311 (or 311), mqttv31 (or 31). Default:
    /// mqttv311 (mqttv5 for `rr`).
    #[arg(short = 'V', long = "protocol-version", value_parser = parse_version, help_heading = "Connection")]
    pub version: Option<ProtocolVersion>,
    /// Bind the outgoing socket to this local address (choosing the interface).
    #[arg(short = 'A', value_name = "ADDRESS", help_heading = "Connection")]
    pub bind_address: Option<String>,
    /// Connect through a Unix domain socket instead of TCP (e.g. /tmp/mosquitto.sock).
    #[arg(long = "unix", value_name = "PATH", help_heading = "Connection")]
    pub unix: Option<PathBuf>,
    /// SOCKS5 proxy: socks5h://[user[:password]@]host[:port] (port 1080 by default; the
    /// proxy resolves the broker's name).
    #[arg(long = "proxy", value_name = "URL", help_heading = "Connection")]
    pub proxy: Option<String>,
    /// Disable Nagle's algorithm (accepted for mosquitto's scripts: it is always off here).
    #[arg(long = "nodelay", help_heading = "Connection")]
    pub nodelay: bool,
    /// Do not reconnect when the connection is lost: exit with code 1 instead.
    #[arg(long = "no-reconnect", help_heading = "Connection")]
    pub no_reconnect: bool,
    /// Connect timeout in seconds: TCP/TLS, then CONNACK.
    #[arg(
        long = "connect-timeout",
        default_value_t = 10,
        value_name = "SECONDS",
        help_heading = "Connection"
    )]
    pub connect_timeout: u64,
    /// Disable 'clean session' (3.1.1) / 'clean start' (5.0): resume the broker's session of
    /// this client id, and keep it after disconnecting (on 5.0 for -x seconds, by default
    /// forever). Use with -i.
    #[arg(short = 'c', long = "disable-clean-session", help_heading = "Session")]
    pub no_clean: bool,
    /// Keep the session in DIR: messages accepted and not yet acknowledged, where each QoS 2
    /// handshake stands (both ways), the subscriptions and the client id. A run killed at
    /// any point and started again on the same DIR delivers every message it had stored
    /// (pub) and prints no QoS 2 message twice (sub). Implies -c; one run at a time per DIR.
    #[arg(long = "session-dir", value_name = "DIR", help_heading = "Session")]
    pub session_dir: Option<PathBuf>,
    /// With --session-dir: when the session is synced to the disk. always: before a message
    /// counts as stored (survives a power cut); periodic: every 100 ms (survives a crash of
    /// the process, a power cut loses the last 100 ms); never: the operating system decides.
    #[arg(long = "sync", value_name = "MODE", default_value = "always", value_parser = parse_sync, requires = "session_dir", help_heading = "Session")]
    pub sync: mqtt_client_tokio::SyncPolicy,
    /// 5.0: seconds the broker keeps the session after the connection ends; -1 or ∞ for ever.
    /// Default: ∞ with -c, else 0.
    #[arg(short = 'x', long = "session-expiry-interval", value_name = "SECONDS", allow_hyphen_values = true, value_parser = parse_expiry, help_heading = "Session")]
    pub session_expiry: Option<u32>,
    /// 5.0 property: COMMAND IDENTIFIER VALUE, or COMMAND user-property NAME VALUE
    /// (repeatable). connect: session-expiry-interval, receive-maximum,
    /// maximum-packet-size, topic-alias-maximum, user-property. publish (pub and rr):
    /// payload-format-indicator, message-expiry-interval, content-type, response-topic,
    /// correlation-data, user-property. subscribe (sub and rr): subscription-identifier,
    /// user-property. unsubscribe (sub -U): user-property. will: will-delay-interval and
    /// the publish identifiers. disconnect: session-expiry-interval, reason-string.
    #[arg(id = "property", short = 'D', long = "property", num_args = 3..=4, value_names = ["COMMAND", "IDENTIFIER", "VALUE"], help_heading = "Session")]
    property_words: Vec<String>,
    /// The `-D` groups, one per occurrence (filled by [`Cli::parse_args`]: clap's derive
    /// flattens them).
    #[arg(skip)]
    pub properties: Vec<Vec<String>>,
    /// Topic of the will: the message the broker publishes if this client disconnects
    /// without DISCONNECT (killed, network lost).
    #[arg(long = "will-topic", value_name = "TOPIC", help_heading = "Will")]
    pub will_topic: Option<String>,
    /// Payload of the will.
    #[arg(
        long = "will-payload",
        value_name = "PAYLOAD",
        requires = "will_topic",
        help_heading = "Will"
    )]
    pub will_payload: Option<String>,
    /// QoS of the will.
    #[arg(long = "will-qos", default_value = "0", value_parser = parse_qos, help_heading = "Will")]
    pub will_qos: QoS,
    /// Retain the will.
    #[arg(long = "will-retain", help_heading = "Will")]
    pub will_retain: bool,
    /// PEM file of CA certificates to trust; turns on TLS (`mqtts://`).
    #[arg(long = "cafile", value_name = "FILE", help_heading = "TLS")]
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates (`*.pem`, `*.crt`) to trust; turns on TLS.
    #[arg(long = "capath", value_name = "DIR", help_heading = "TLS")]
    pub capath: Option<PathBuf>,
    /// Trust the operating system's CA certificates; turns on TLS.
    #[arg(long = "tls-use-os-certs", help_heading = "TLS")]
    pub tls_use_os_certs: bool,
    /// PEM client certificate (chain) for mutual TLS, with --key.
    #[arg(
        long = "cert",
        value_name = "FILE",
        requires = "key",
        help_heading = "TLS"
    )]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(
        long = "key",
        value_name = "FILE",
        requires = "cert",
        help_heading = "TLS"
    )]
    pub key: Option<PathBuf>,
    /// ALPN protocol to offer (e.g. `mqtt` for AWS IoT on port 443).
    #[arg(long = "tls-alpn", value_name = "PROTOCOL", help_heading = "TLS")]
    pub tls_alpn: Option<String>,
    /// Accept a broker certificate issued for another host name (the chain is still
    /// verified). Never in production.
    #[arg(long = "insecure", help_heading = "TLS")]
    pub insecure: bool,
    /// TLS version to use: tlsv1.3 or tlsv1.2. Default: either.
    #[arg(long = "tls-version", value_name = "VERSION", value_parser = parse_tls_version, help_heading = "TLS")]
    pub tls_version: Option<mqtt_client_tokio::TlsVersion>,
    /// Print mosquitto's packet trace on stdout ("Client id sending CONNECT" ...), and
    /// connection losses and reconnects on stderr.
    #[arg(short = 'd', long = "debug", help_heading = "Output")]
    pub debug: bool,
    /// Do not print error messages (exit codes still tell).
    #[arg(long = "quiet", help_heading = "Output")]
    pub quiet: bool,
    /// Print this help.
    #[arg(long = "help", action = ArgAction::HelpLong)]
    help: Option<bool>,
}

impl ConnArgs {
    /// The flags' defaults, as if none was given (`mqtt bench` has flags of its own and
    /// fills in the ones it shares).
    pub fn defaults() -> Self {
        use clap::FromArgMatches;
        let command = Self::augment_args(clap::Command::new("defaults").disable_help_flag(true));
        let matches = command.get_matches_from(["defaults"]);
        // Invariant: no flag of ConnArgs is required, so an empty command line parses.
        Self::from_arg_matches(&matches).expect("ConnArgs has defaults for every flag")
    }

    /// Whether a TLS flag asks for `mqtts://`.
    pub fn wants_tls(&self) -> bool {
        self.cafile.is_some()
            || self.capath.is_some()
            || self.tls_use_os_certs
            || self.cert.is_some()
    }
}

/// mosquitto's words for an unknown option ("Error: Unknown option '-j'." and the usage
/// hint), or `None` to let clap word the error.
pub fn mosquitto_words(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(option)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let tool = std::env::args()
        .nth(1)
        .filter(|t| matches!(t.as_str(), "pub" | "sub" | "rr" | "bench"));
    let hint = match tool {
        Some(tool) => format!("mqtt {tool} --help"),
        None => "mqtt --help".into(),
    };
    Some(format!(
        "Error: Unknown option '{option}'.\n\nUse '{hint}' to see usage."
    ))
}

/// `0`, `1` or `2`.
pub fn parse_qos(s: &str) -> Result<QoS, String> {
    s.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("QoS must be 0, 1 or 2, not {s:?}"))
}

/// mosquitto's spellings of the protocol versions.
pub fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s.to_ascii_lowercase().as_str() {
        "mqttv5" | "5" | "v5" | "5.0" => Ok(ProtocolVersion::V5),
        "mqttv311" | "311" | "v311" | "3.1.1" => Ok(ProtocolVersion::V3_1_1),
        "mqttv31" | "31" | "v31" | "3.1" => Ok(ProtocolVersion::V3_1),
        _ => Err(format!(
            "unknown protocol version {s:?}: use mqttv5, mqttv311 or mqttv31"
        )),
    }
}

/// `tlsv1.3` or `tlsv1.2`.
pub fn parse_tls_version(s: &str) -> Result<mqtt_client_tokio::TlsVersion, String> {
    match s {
        "tlsv1.3" => Ok(mqtt_client_tokio::TlsVersion::Tls13),
        "tlsv1.2" => Ok(mqtt_client_tokio::TlsVersion::Tls12),
        "tlsv1.1" => Err("TLS 1.1 is not supported (rustls): use tlsv1.2 or tlsv1.3".into()),
        _ => Err(format!("unknown TLS version {s:?}: use tlsv1.3 or tlsv1.2")),
    }
}

/// A percentage, 0 to 100, fractions allowed.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.1..=100.0).contains(&p) => Ok(p),
        _ => Err("Error: --random-filter chance must be between 0.1-100.0".into()),
    }
}

/// A session expiry interval: seconds, or `-1` / `∞` for a session that never expires.
/// `--sync`: always, periodic or never.
///
/// # Errors
/// Any other word.
pub fn parse_sync(s: &str) -> Result<mqtt_client_tokio::SyncPolicy, String> {
    use mqtt_client_tokio::SyncPolicy;
    match s {
        "always" => Ok(SyncPolicy::Always),
        "periodic" => Ok(SyncPolicy::Periodic(std::time::Duration::from_millis(100))),
        "never" => Ok(SyncPolicy::Never),
        _ => Err(format!("{s:?}: expected always, periodic or never")),
    }
}

pub fn parse_expiry(s: &str) -> Result<u32, String> {
    match s {
        "-1" | "∞" | "inf" | "infinity" => Ok(u32::MAX),
        _ => s
            .parse::<u32>()
            .map_err(|_| format!("session expiry must be 0 to 4294967295, -1 or ∞, not {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_args(std::iter::once("mqtt").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn mosquitto_pub_flags_parse() {
        let cli = parse(&[
            "pub",
            "-h",
            "broker",
            "-p",
            "1884",
            "-t",
            "a/b",
            "-m",
            "hi",
            "-q",
            "2",
            "-r",
            "-i",
            "me",
            "-u",
            "u",
            "-P",
            "pw",
            "-k",
            "5",
            "-c",
            "-x",
            "-1",
            "-V",
            "5",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "--will-topic",
            "w",
            "--will-payload",
            "bye",
            "--will-qos",
            "1",
            "--will-retain",
        ])
        .unwrap();
        let Command::Pub(p) = cli.command else {
            panic!("not pub")
        };
        assert_eq!(p.conn.host, "broker");
        assert_eq!(p.conn.port, Some(1884));
        assert_eq!(p.qos, QoS::ExactlyOnce);
        assert!(p.retain && p.conn.no_clean);
        assert_eq!(p.conn.session_expiry, Some(u32::MAX));
        assert_eq!(p.conn.version, Some(ProtocolVersion::V5));
        assert_eq!(p.conn.properties.len(), 2);
        assert_eq!(p.conn.properties[0], ["publish", "user-property", "k", "v"]);
        assert_eq!(
            p.conn.properties[1],
            ["publish", "content-type", "text/plain"]
        );
        assert_eq!(p.conn.will_qos, QoS::AtLeastOnce);
    }

    #[test]
    fn mosquitto_sub_flags_parse_with_attached_values() {
        let cli = parse(&[
            "sub", "-tfoo/#", "-t", "bar", "-C", "3", "-W", "2", "-v", "-q1", "-F", "%t %p",
        ])
        .unwrap();
        let Command::Sub(s) = cli.command else {
            panic!("not sub")
        };
        assert_eq!(s.topics, ["foo/#", "bar"]);
        assert_eq!(
            (s.count, s.timeout, s.output.verbose),
            (Some(3), Some(2), true)
        );
        assert_eq!(s.qos, QoS::AtLeastOnce);
        assert_eq!(s.output.format.as_deref(), Some("%t %p"));
    }

    #[test]
    fn dash_h_is_the_host_and_help_is_long_only() {
        let cli = parse(&["sub", "-h", "example", "-t", "x"]).unwrap();
        let Command::Sub(s) = cli.command else {
            panic!("not sub")
        };
        assert_eq!(s.conn.host, "example");
        let e = parse(&["pub", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = e.to_string();
        for flag in [
            "--will-topic",
            "--cafile",
            "-D",
            "--stdin-line",
            "Exit codes",
        ] {
            assert!(help.contains(flag), "help lacks {flag}:\n{help}");
        }
    }

    #[test]
    fn mosquitto_rr_and_the_new_flags_parse() {
        let cli = parse(&[
            "rr",
            "-t",
            "req",
            "-e",
            "resp",
            "-m",
            "q",
            "-W",
            "3",
            "-F",
            "%p",
            "--pretty",
            "-A",
            "127.0.0.1",
            "--nodelay",
            "--insecure",
            "--tls-version",
            "tlsv1.3",
            "--proxy",
            "socks5h://p:1080",
            "--no-reconnect",
            "-D",
            "subscribe",
            "user-property",
            "a",
            "b",
        ])
        .unwrap();
        let Command::Rr(r) = cli.command else {
            panic!("not rr")
        };
        assert_eq!(r.response_topic.as_deref(), Some("resp"));
        assert_eq!(r.source.message.as_deref(), Some("q"));
        assert!(r.output.pretty && r.conn.insecure && r.conn.no_reconnect);
        assert_eq!(
            r.conn.properties[0],
            ["subscribe", "user-property", "a", "b"]
        );
        let cli = parse(&[
            "sub",
            "-t",
            "x",
            "--remove-retained",
            "--random-filter",
            "12.5",
            "--unix",
            "/tmp/s",
        ])
        .unwrap();
        let Command::Sub(s) = cli.command else {
            panic!("not sub")
        };
        assert_eq!(s.random_filter, Some(12.5));
        assert!(s.remove_retained);
        assert!(parse(&["pub", "-t", "x", "-m", "y", "-M", "5"]).is_ok());
        assert!(parse(&["sub", "-t", "x", "--tls-version", "tlsv1.1"]).is_err());
        for sub in ["pub", "sub", "rr"] {
            let help = parse(&[sub, "--help"]).unwrap_err().to_string();
            assert!(
                help.contains("Examples:") && help.contains("Exit codes"),
                "{help}"
            );
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(parse(&["pub", "-t", "x", "-q", "3"]).is_err());
        assert!(parse(&["pub", "-t", "x", "-V", "mqttv6"]).is_err());
        assert!(parse(&["pub", "-t", "x", "-D", "publish", "content-type"]).is_err());
    }
}
