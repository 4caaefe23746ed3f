//! From flags to client [`Options`], connecting, and leaving.

use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mqtt_client_tokio::{
    Bytes, Client, DisconnectOptions, Error, Event, Events, Options, Persistence, ProtocolVersion,
    QueueFull, Socks5Proxy, Will,
};
use tokio::sync::oneshot;

use super::args::ConnArgs;
use super::exit::{Exit, Failure};
use super::props::PropertySet;
use super::trace::{print_stderr, Trace};

/// Which program runs: it decides the default protocol version and what `-d` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `mqtt pub` (mosquitto_pub): 3.1.1 by default.
    Pub,
    /// `mqtt sub` (mosquitto_sub): 3.1.1 by default; `-d` adds "Subscribed (mid: 1): 0".
    Sub,
    /// `mqtt rr` (mosquitto_rr): 5.0 by default.
    Rr,
}

/// 5.0 session expiry used while running when the user asked for a clean session: long
/// enough to resume the session across a dropped connection (nothing published meanwhile is
/// lost), and reset to 0 by the final DISCONNECT, so nothing outlives a normal exit. A
/// killed process leaves the session on the broker for this long.
const RESUME_EXPIRY_SECS: u32 = 300;

/// A connected client and how to leave.
#[derive(Debug)]
pub struct Session {
    /// The client.
    pub client: Client,
    /// The DISCONNECT to send at the end.
    pub disconnect: DisconnectOptions,
    /// The protocol version (for mosquitto's wording of errors).
    pub version: ProtocolVersion,
}

/// Client options, and the topic a `-L` URL named.
#[derive(Debug)]
pub struct Plan {
    /// The options.
    pub options: Options,
    /// The topic in the path of an `mqtt://host/topic` URL.
    pub url_topic: Option<String>,
    /// The DISCONNECT to send at the end.
    pub disconnect: DisconnectOptions,
    /// The protocol version.
    pub version: ProtocolVersion,
    /// `-d`: print connection losses on stderr (the packet trace is tapped in `options`).
    pub debug: bool,
    /// `-d`: the packet trace.
    pub trace: Option<Arc<Trace>>,
}

impl Plan {
    /// Builds client options from the flags.
    ///
    /// # Errors
    /// A usage failure for inconsistent flags, unreadable certificate files or a bad URL.
    pub fn new(args: &ConnArgs, props: &PropertySet, kind: Kind) -> Result<Self, Failure> {
        let version = args.version.unwrap_or(match kind {
            Kind::Rr => ProtocolVersion::V5,
            Kind::Pub | Kind::Sub => ProtocolVersion::V3_1_1,
        });
        if !props.is_empty() && version != ProtocolVersion::V5 {
            return Err(Failure::usage("-D properties need MQTT 5.0 (-V mqttv5)"));
        }
        let (url, url_topic) = broker_url(args)?;
        let mut options =
            Options::new(&url).map_err(|e| Failure::usage(format!("invalid broker: {e}")))?;
        let p = &mut options.protocol;
        p.version = version;
        p.client_id = match (&args.id, &args.id_prefix) {
            (Some(id), _) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
            (None, None) => String::new(),
        };
        if let Some(user) = &args.username {
            p.username = Some(user.clone());
        }
        if let Some(password) = &args.password {
            p.password = Some(Bytes::from(password.clone()));
        }
        p.keep_alive = Duration::from_secs(args.keepalive.into());
        // A kept session is only worth it if the broker keeps its side too.
        let no_clean = args.no_clean || args.session_dir.is_some();
        p.clean_start = !no_clean;
        let wanted_expiry = args
            .session_expiry
            .or(props.connect.session_expiry_interval);
        let mut disconnect = DisconnectOptions {
            session_expiry_interval: props.disconnect_session_expiry,
            reason_string: props.disconnect_reason_string.clone(),
            ..DisconnectOptions::default()
        };
        if version == ProtocolVersion::V5 {
            p.session_expiry_interval = match (wanted_expiry, no_clean) {
                (Some(secs), _) => Some(secs),
                (None, true) => Some(u32::MAX),
                (None, false) => {
                    disconnect.session_expiry_interval.get_or_insert(0);
                    Some(RESUME_EXPIRY_SECS)
                }
            };
        } else if wanted_expiry.is_some() {
            return Err(Failure::usage("-x needs MQTT 5.0 (-V mqttv5)"));
        }
        let c = &props.connect;
        if let Some(n) = c.receive_maximum {
            p.receive_maximum = n;
        }
        if let Some(n) = c.maximum_packet_size {
            p.maximum_packet_size = n;
        }
        if let Some(n) = c.topic_alias_maximum {
            p.topic_alias_maximum = n;
        }
        p.user_properties = c.user_properties.clone();
        p.will = will(args, props);
        tls(args, &mut options)?;
        socket(args, &mut options)?;
        let trace = args.debug.then(|| Trace::new(kind == Kind::Sub));
        options.transport.tap = trace.as_ref().map(Trace::tap);
        if let Some(dir) = &args.session_dir {
            options.persistence = Some(Persistence::new(dir).sync(args.sync));
            // `sub` acknowledges a message once it is printed, so a killed run gets the
            // unprinted ones again and a QoS 2 message is only marked received (and never
            // printed again) after its printing.
            options.protocol.manual_acks = kind == Kind::Sub;
            // What is not delivered at the end stays stored for the next run; a run that
            // ends normally still tries for longer to deliver it all.
            options.policy.drain_timeout = Duration::from_secs(60);
        }
        options.policy.reconnect = !args.no_reconnect;
        options.policy.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
        // Back-pressure instead of failing when stdin outruns the broker.
        options.policy.queue_full = QueueFull::Wait;
        options.policy.backoff_max = Duration::from_secs(10);
        Ok(Self {
            options,
            url_topic,
            disconnect,
            version,
            debug: args.debug,
            trace,
        })
    }

    /// Starts the client and waits for the first connection (one attempt; later losses are
    /// reconnected). Events go to stderr with `-d`.
    ///
    /// # Errors
    /// The connect failure (exit code 3 or 4).
    pub async fn connect(self) -> Result<Session, Failure> {
        let (session, first) = self.start()?;
        match first.await {
            Ok(Ok(())) => Ok(session),
            Ok(Err(e)) => Err(Failure::connect(&e, session.version)),
            Err(_) => Err(Failure::new(Exit::Error, "Error: the client stopped")),
        }
    }

    /// Starts the client without waiting: commands given now are queued and go out right
    /// after CONNECT, e.g. a SUBSCRIBE that must be in place (routed) before a resumed
    /// session's queued messages arrive. The receiver tells how the first attempt ended.
    ///
    /// # Errors
    /// A usage failure when the options cannot form a CONNECT or TLS material is bad.
    pub fn start(self) -> Result<(Session, FirstConnection), Failure> {
        let (client, events) =
            Client::new(self.options).map_err(|e| Failure::connect(&e, self.version))?;
        let (tx, first) = oneshot::channel();
        tokio::spawn(report_events(events, self.debug, tx));
        let session = Session {
            client,
            disconnect: self.disconnect,
            version: self.version,
        };
        Ok((session, first))
    }
}

/// How the first connection attempt ended: `Ok` once connected, else its error.
pub type FirstConnection = oneshot::Receiver<Result<(), Error>>;

impl Session {
    /// Sends DISCONNECT (after everything queued) and stops the client.
    pub async fn close(self) {
        let _ = self.client.disconnect_with(self.disconnect).await;
    }
}

/// The broker URL from `-L` or `-h`/`-p`, and the topic of a `-L` path.
fn broker_url(args: &ConnArgs) -> Result<(String, Option<String>), Failure> {
    if let Some(url) = &args.url {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Failure::usage(format!("-L {url:?}: missing scheme://")))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "ws" || scheme == "wss" {
            return Ok((url.clone(), None));
        }
        return Ok(match rest.split_once('/') {
            Some((authority, topic)) => {
                let topic = (!topic.is_empty()).then(|| topic.to_string());
                (format!("{scheme}://{authority}"), topic)
            }
            None => (url.clone(), None),
        });
    }
    let scheme = if args.wants_tls() { "mqtts" } else { "mqtt" };
    let port = args
        .port
        .unwrap_or(if args.wants_tls() { 8883 } else { 1883 });
    let host = if args.host.contains(':') && !args.host.starts_with('[') {
        format!("[{}]", args.host)
    } else {
        args.host.clone()
    };
    Ok((format!("{scheme}://{host}:{port}"), None))
}

fn will(args: &ConnArgs, props: &PropertySet) -> Option<Will> {
    let topic = args.will_topic.as_ref()?;
    let payload = args.will_payload.clone().unwrap_or_default();
    let mut will = Will::new(topic.clone(), payload, args.will_qos, args.will_retain);
    will.delay_interval = props.will_delay_interval;
    will.properties = props.will.clone();
    Some(will)
}

fn tls(args: &ConnArgs, options: &mut Options) -> Result<(), Failure> {
    let tls = &mut options.transport.tls;
    let mut roots = Vec::new();
    if let Some(file) = &args.cafile {
        roots.extend(read(file)?);
    }
    if let Some(dir) = &args.capath {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Failure::usage(format!("--capath {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let is_cert = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pem" | "crt")
            );
            if is_cert {
                roots.extend(read(&path)?);
                roots.push(b'\n');
            }
        }
    }
    if !roots.is_empty() {
        tls.ca_pem = Some(roots);
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls.client_cert_pem = Some(read(cert)?);
        tls.client_key_pem = Some(read(key)?);
    }
    if let Some(alpn) = &args.tls_alpn {
        tls.alpn = vec![alpn.as_bytes().to_vec()];
    }
    tls.insecure_skip_hostname = args.insecure;
    tls.version = args.tls_version;
    Ok(())
}

/// `-A`, `--unix`, `--proxy`.
fn socket(args: &ConnArgs, options: &mut Options) -> Result<(), Failure> {
    let t = &mut options.transport;
    if let Some(address) = &args.bind_address {
        let ip = (address.as_str(), 0)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| Failure::usage(format!("-A {address}: not a local address")))?;
        t.bind_address = Some(ip.ip());
    }
    if let Some(path) = &args.unix {
        t.unix_socket = Some(path.clone());
    }
    if let Some(url) = &args.proxy {
        let proxy = Socks5Proxy::parse(url).map_err(|e| Failure::usage(format!("--proxy: {e}")))?;
        t.proxy = Some(proxy);
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

/// Drains the event stream (so it never lags): reports how the first connection attempt
/// ended, and prints losses and reconnects on stderr with `-d` (mosquitto's clients have no
/// such lines: they do not reconnect).
async fn report_events(mut events: Events, debug: bool, first: oneshot::Sender<Result<(), Error>>) {
    let mut first = Some(first);
    while let Some(event) = events.recv().await {
        let outcome = match &event {
            Event::Connected { .. } => Some(Ok(())),
            Event::Error(e) => Some(Err(e.clone())),
            _ => None,
        };
        if let Some(outcome) = outcome {
            if let Some(tx) = first.take() {
                let _ = tx.send(outcome);
            }
        }
        if !debug {
            continue;
        }
        match event {
            Event::Disconnected {
                error: Error::Closed,
            } => {}
            Event::Disconnected { error } => print_stderr(&format!("Connection lost: {error}")),
            Event::Reconnecting { attempt, delay } => {
                print_stderr(&format!("Reconnecting in {delay:?} (attempt {attempt})."));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};

    fn plan(args: &[&str]) -> Result<Plan, Failure> {
        let cli = Cli::parse_args(["mqtt", "pub"].iter().chain(args)).unwrap();
        let Command::Pub(p) = cli.command else {
            unreachable!()
        };
        let props = PropertySet::parse(&p.conn.properties).unwrap();
        Plan::new(&p.conn, &props, Kind::Pub)
    }

    #[test]
    fn host_and_port_make_the_url() {
        let p = plan(&["-h", "10.0.0.1", "-p", "1999"]).unwrap();
        assert_eq!(p.options.brokers(), ["mqtt://10.0.0.1:1999"]);
        let p = plan(&["-h", "::1"]).unwrap();
        assert_eq!(p.options.brokers(), ["mqtt://[::1]:1883"]);
    }

    #[test]
    fn mosquitto_url_carries_credentials_and_topic() {
        let p = plan(&["-L", "mqtt://bob:pw@host:1884/a/b"]).unwrap();
        assert_eq!(p.options.brokers(), ["mqtt://host:1884"]);
        assert_eq!(p.url_topic.as_deref(), Some("a/b"));
        assert_eq!(p.options.protocol.username.as_deref(), Some("bob"));
    }

    #[test]
    fn clean_v5_session_resumes_while_running_and_ends_on_exit() {
        let p = plan(&["-V", "5"]).unwrap();
        assert_eq!(
            p.options.protocol.session_expiry_interval,
            Some(RESUME_EXPIRY_SECS)
        );
        assert_eq!(p.disconnect.session_expiry_interval, Some(0));
        let p = plan(&["-V", "5", "-c", "-i", "x"]).unwrap();
        assert!(!p.options.protocol.clean_start);
        assert_eq!(p.options.protocol.session_expiry_interval, Some(u32::MAX));
        assert_eq!(p.disconnect.session_expiry_interval, None);
    }

    #[test]
    fn socket_flags_reach_the_transport_options() {
        let p = plan(&[
            "-A",
            "127.0.0.1",
            "--proxy",
            "socks5h://u:p@proxy:1081",
            "--unix",
            "/tmp/x.sock",
            "--no-reconnect",
            "--insecure",
            "-d",
        ])
        .unwrap();
        let t = &p.options.transport;
        assert_eq!(t.bind_address, Some([127, 0, 0, 1].into()));
        assert_eq!(t.proxy.as_ref().map(|p| p.port), Some(1081));
        assert_eq!(t.unix_socket.as_deref(), Some(Path::new("/tmp/x.sock")));
        assert!(t.tap.is_some() && t.tls.insecure_skip_hostname);
        assert!(!p.options.policy.reconnect);
        assert!(plan(&["--proxy", "http://x"]).is_err());
    }

    #[test]
    fn properties_and_expiry_need_v5() {
        assert!(plan(&["-D", "publish", "content-type", "x"]).is_err());
        assert!(plan(&["-x", "10"]).is_err());
    }
}
