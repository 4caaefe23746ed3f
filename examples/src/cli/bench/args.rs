//! The flags of `mqtt bench`, after emqtt-bench's (`-c` clients, `-I` interval, `-L` limit,
//! `-s` size), so `pub`'s and `sub`'s `-c`, `-I` and `-L` mean something else here.

use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};
use mqtt_client_tokio::{ProtocolVersion, QoS};

use crate::cli::args::{parse_qos, parse_version, ConnArgs};

/// What `mqtt bench` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Open `-c` connections at `--conn-rate` and hold them; report the RSS per connection.
    Conn,
    /// `-c` publishers, each sending at `-I` / `--rate`; publish→ack latency at QoS 1 and 2.
    Pub,
    /// `-c` subscribers; publish→receive latency of messages from `mqtt bench pub`.
    Sub,
}

/// Flags of `mqtt bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// conn: open and hold connections; pub: publish; sub: subscribe and receive.
    #[arg(value_enum)]
    pub mode: Mode,
    /// Broker host.
    #[arg(
        short = 'h',
        long = "host",
        default_value = "localhost",
        help_heading = "Connection"
    )]
    pub host: String,
    /// Broker port. Default: 1883, 8883 with TLS.
    #[arg(short = 'p', long = "port", help_heading = "Connection")]
    pub port: Option<u16>,
    /// Broker URL instead of -h/-p: mqtt(s)://[user[:password]@]host[:port] or ws(s)://...
    /// (`-L` is the message limit here).
    #[arg(long = "url", value_name = "URL", help_heading = "Connection")]
    pub url: Option<String>,
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
    /// Protocol version: mqttv5 (or 5), mqttv311 (or 311), mqttv31 (or 31). Default: mqttv311.
    #[arg(short = 'V', long = "protocol-version", value_parser = parse_version, help_heading = "Connection")]
    pub version: Option<ProtocolVersion>,
    /// Keep alive in seconds (0 turns it off).
    #[arg(
        short = 'k',
        long = "keepalive",
        default_value_t = 60,
        value_name = "SECONDS",
        help_heading = "Connection"
    )]
    pub keepalive: u16,
    /// Connect timeout of each client in seconds: TCP/TLS, then CONNACK.
    #[arg(
        long = "connect-timeout",
        default_value_t = 10,
        value_name = "SECONDS",
        help_heading = "Connection"
    )]
    pub connect_timeout: u64,
    /// Client identifier prefix: client N is PREFIXN. Default: `bench-PID-`.
    #[arg(long = "prefix", help_heading = "Connection")]
    pub prefix: Option<String>,
    /// PEM file of CA certificates to trust; turns on TLS (`mqtts://`).
    #[arg(long = "cafile", value_name = "FILE", help_heading = "Connection")]
    pub cafile: Option<PathBuf>,
    /// Accept a broker certificate issued for another host name (the chain is still verified).
    #[arg(long = "insecure", help_heading = "Connection")]
    pub insecure: bool,
    /// Number of clients (connections).
    #[arg(
        short = 'c',
        long = "count",
        default_value_t = 1,
        value_name = "CLIENTS",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        help_heading = "Load"
    )]
    pub clients: u32,
    /// New connections per second (0: all at once). Each client connects once; a failed or
    /// lost connection counts as an error and is not retried.
    #[arg(
        short = 'R',
        long = "conn-rate",
        default_value_t = 1000,
        value_name = "PER_SECOND",
        help_heading = "Load"
    )]
    pub conn_rate: u32,
    /// Topic: `pub` publishes to it, `sub` subscribes to it (wildcards allowed). `%i` is the
    /// client's index (0-based), `%c` its client identifier.
    #[arg(
        short = 't',
        long = "topic",
        default_value = "bench/%i",
        help_heading = "Load"
    )]
    pub topic: String,
    /// QoS of the messages (pub) or of the subscriptions (sub): 0, 1 or 2.
    #[arg(short = 'q', long = "qos", default_value = "0", value_parser = parse_qos, help_heading = "Load")]
    pub qos: QoS,
    /// Payload size in bytes. From 24 bytes on, the payload starts with a send-time header
    /// (see below) from which `sub` measures publish→receive latency; shorter payloads are
    /// counted but not timed.
    #[arg(
        short = 's',
        long = "size",
        default_value_t = 256,
        value_name = "BYTES",
        value_parser = clap::value_parser!(u32).range(..=268_435_000),
        help_heading = "Load"
    )]
    pub size: u32,
    /// pub: milliseconds between two messages of one client (0: as fast as the in-flight
    /// window allows).
    #[arg(
        short = 'I',
        long = "interval",
        default_value_t = 1000,
        value_name = "MS",
        help_heading = "Load"
    )]
    pub interval_ms: u64,
    /// pub: messages per second per client, instead of -I.
    #[arg(
        long = "rate",
        value_name = "PER_SECOND",
        conflicts_with = "interval_ms",
        help_heading = "Load"
    )]
    pub rate: Option<f64>,
    /// pub: messages to send in all (over all clients); sub: messages to receive in all
    /// (each subscriber's copy counts). The run ends when it is reached.
    #[arg(
        short = 'L',
        long = "limit",
        value_name = "MESSAGES",
        help_heading = "Load"
    )]
    pub limit: Option<u64>,
    /// Longest run in seconds (fractions allowed), counted from the start. conn: how long to
    /// hold the connections once all are up (default 0); pub and sub: default 10, or 60
    /// with -L (whichever ends first).
    #[arg(long = "duration", value_name = "SECONDS", help_heading = "Load")]
    pub duration: Option<f64>,
    /// pub: QoS 1 and 2 messages in flight per client, unacknowledged, at most (also the
    /// bound of QoS 0 messages queued but not yet written).
    #[arg(
        long = "inflight",
        default_value_t = 20,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u16).range(1..),
        help_heading = "Load"
    )]
    pub inflight: u16,
    /// The session store of each client in bytes (`Policy::offline_queue_bytes`: messages
    /// queued or awaiting acknowledgement). Default: the library's, 1 MiB, reserved as
    /// virtual memory and resident only where written.
    #[arg(long = "store-bytes", value_name = "BYTES", help_heading = "Load")]
    pub store_bytes: Option<usize>,
    /// Print this help.
    #[arg(long = "help", action = ArgAction::HelpLong)]
    help: Option<bool>,
}

/// The header of a timed payload, for `--help`.
pub const HEADER_HELP: &str = "\
Payload header (payloads of 24 bytes or more; all integers big-endian):
  bytes  0..4   magic \"MQB1\"
  bytes  4..12  send time: nanoseconds since the Unix epoch (the publisher's wall clock)
  bytes 12..16  run id: random per `mqtt bench pub` process
  bytes 16..20  publisher client index
  bytes 20..24  sequence number of the message within its publisher (from 0)
  then filler bytes up to -s.
`sub` takes receive time minus send time as the publish->receive latency (the clocks of
publisher and subscriber must agree: same host, or synchronised), and counts messages lost
(gaps in the sequence numbers of each publisher, per subscriber) and duplicated.";

impl BenchArgs {
    /// The common connection flags, for [`crate::cli::connect::Plan`].
    pub fn conn_args(&self) -> ConnArgs {
        let mut conn = ConnArgs::defaults();
        conn.host.clone_from(&self.host);
        conn.port = self.port;
        conn.url.clone_from(&self.url);
        conn.username.clone_from(&self.username);
        conn.password.clone_from(&self.password);
        conn.version = self.version;
        conn.keepalive = self.keepalive;
        conn.connect_timeout = self.connect_timeout;
        conn.cafile.clone_from(&self.cafile);
        conn.insecure = self.insecure;
        conn.no_reconnect = true;
        conn
    }

    /// The longest run.
    pub fn duration(&self) -> std::time::Duration {
        let default = match (self.mode, self.limit) {
            (Mode::Conn, _) => 0.0,
            (_, Some(_)) => 60.0,
            (_, None) => 10.0,
        };
        let secs = self.duration.unwrap_or(default);
        std::time::Duration::try_from_secs_f64(secs).unwrap_or(std::time::Duration::ZERO)
    }

    /// The pause between two messages of one publisher (zero: none).
    pub fn period(&self) -> std::time::Duration {
        match self.rate {
            Some(rate) if rate > 0.0 => {
                std::time::Duration::try_from_secs_f64(1.0 / rate).unwrap_or_default()
            }
            Some(_) => std::time::Duration::ZERO,
            None => std::time::Duration::from_millis(self.interval_ms),
        }
    }
}
