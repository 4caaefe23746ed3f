//! A private mosquitto per test: generated config, free loopback ports, killed on drop.

mod config;
mod error;
mod process;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use error::BrokerError;

use crate::TlsMaterial;
use config::{Files, Options, Ports, TlsFiles};

/// How long [`BrokerBuilder::start`] and [`Broker::restart`] wait for mosquitto by default.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Broker::stop`] waits for a clean exit before it kills.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll interval of every wait in this module.
const POLL: Duration = Duration::from_millis(10);
/// Fresh port sets tried when mosquitto cannot bind (another process took a port between our
/// probe and mosquitto's bind).
const START_ATTEMPTS: u32 = 3;
/// How much of the log an error message quotes.
const LOG_TAIL: u64 = 4096;

/// Configures a [`Broker`]. Every broker has a plain TCP listener; the other listeners and
/// options are off unless asked for. All listeners bind `127.0.0.1` on ports the OS picks.
#[derive(Debug, Clone)]
#[must_use = "call .start() to start the broker"]
pub struct BrokerBuilder {
    tls: Option<bool>,
    websockets: bool,
    credentials: Option<(String, String)>,
    options: Options,
    start_timeout: Duration,
}

impl Default for BrokerBuilder {
    fn default() -> Self {
        Self {
            tls: None,
            websockets: false,
            credentials: None,
            options: Options::default(),
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

impl BrokerBuilder {
    /// Adds a TLS listener ([`Broker::tls_port`]) with a server certificate from a CA made for
    /// this broker ([`Broker::tls`]). Clients need not present a certificate.
    pub fn tls(mut self) -> Self {
        self.tls = Some(false);
        self
    }

    /// Adds a TLS listener that requires a client certificate signed by the broker's CA
    /// (`require_certificate true`); use [`TlsMaterial::mtls_client_config`]. A client without
    /// one fails the handshake (with TLS 1.3, often only at its first read).
    pub fn mutual_tls(mut self) -> Self {
        self.tls = Some(true);
        self
    }

    /// Adds a WebSocket listener ([`Broker::ws_port`], `protocol websockets`); clients upgrade
    /// with subprotocol `mqtt` on any path.
    pub fn websockets(mut self) -> Self {
        self.websockets = true;
        self
    }

    /// Requires this username and password on every listener (`allow_anonymous false`,
    /// password file made with `mosquitto_passwd`). mosquitto 2.0 refuses wrong *and* missing
    /// credentials alike with CONNACK "not authorized": return code 5 (3.1.1) / 0x87 (5.0).
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((username.into(), password.into()));
        self
    }

    /// Persists sessions, subscriptions, retained and queued messages in the broker's temp
    /// dir, across [`Broker::restart`]. mosquitto saves on `SIGTERM` ([`Broker::stop`]), on
    /// [`Broker::save`], and after every change (`autosave_on_changes true`,
    /// `autosave_interval 1`); see [`Broker::kill`] for what a crash loses.
    pub fn persistence(mut self, on: bool) -> Self {
        self.options.persistence = on;
        self
    }

    /// `max_inflight_messages`: QoS 1/2 messages in flight to each client (0 = unlimited).
    pub fn max_inflight_messages(mut self, n: u16) -> Self {
        self.options.max_inflight_messages = Some(n);
        self
    }

    /// `max_queued_messages`: messages queued per client beyond the in-flight ones
    /// (0 = unlimited; mosquitto's default is 1000).
    pub fn max_queued_messages(mut self, n: u32) -> Self {
        self.options.max_queued_messages = Some(n);
        self
    }

    /// `max_packet_size`: larger packets from clients make mosquitto drop the connection
    /// (5.0 clients are told the limit in CONNACK).
    pub fn max_packet_size(mut self, bytes: u32) -> Self {
        self.options.max_packet_size = Some(bytes);
        self
    }

    /// `queue_qos0_messages`: also queue QoS 0 messages for offline persistent sessions.
    pub fn queue_qos0_messages(mut self, on: bool) -> Self {
        self.options.queue_qos0_messages = on;
        self
    }

    /// Appends a raw broker-wide line to the config (e.g. `"max_keepalive 30"`,
    /// `"retain_available false"`). Lines go before the listeners; a directive mosquitto does
    /// not know makes [`BrokerBuilder::start`] fail with the log explaining why. Do not add
    /// listeners here: they would not be on loopback-only, test-owned ports.
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.options.extra.push(line.into());
        self
    }

    /// How long to wait for mosquitto to accept connections (default 10 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Writes the config, certificates and password file to a new temp dir, starts mosquitto
    /// and waits until every listener accepts TCP connections. Blocks for ~20-100 ms (fine in
    /// an async test).
    ///
    /// # Errors
    /// [`BrokerError::NotInstalled`] when mosquitto (or `mosquitto_passwd`, with
    /// [`BrokerBuilder::credentials`]) is missing; [`BrokerError::Start`] with the log when
    /// mosquitto rejects the config, exits, or is not ready within the start timeout; I/O and
    /// certificate errors while preparing files.
    pub fn start(self) -> Result<Broker, BrokerError> {
        let binary = process::find_mosquitto()?;
        let dir = tempfile::Builder::new()
            .prefix("mqtt-test-broker-")
            .tempdir()
            .map_err(BrokerError::io("creating the broker's temp dir"))?;
        let root = dir.path().to_path_buf();
        let tls = self
            .tls
            .map(|_| TlsMaterial::generate().map_err(BrokerError::Certificates))
            .transpose()?;
        let files = Files {
            log: root.join("mosquitto.log"),
            password: self
                .credentials
                .as_ref()
                .map(|(user, pass)| write_password_file(&binary, &root, user, pass))
                .transpose()?,
            tls: match (&tls, self.tls) {
                (Some(material), Some(require)) => Some(write_tls_files(&root, material, require)?),
                _ => None,
            },
            dir: root.clone(),
        };
        let mut broker = Broker {
            binary,
            config: root.join("mosquitto.conf"),
            output: root.join("mosquitto.out"),
            ports: Ports {
                tcp: 0,
                tls: None,
                ws: None,
                wss: None,
            },
            files,
            options: self.options,
            tls,
            credentials: self.credentials,
            start_timeout: self.start_timeout,
            child: Mutex::new(None),
            _dir: dir,
        };
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            broker.ports = pick_ports(broker.tls.is_some(), self.websockets)?;
            broker.write_config()?;
            match broker.spawn_and_wait() {
                Ok(child) => {
                    *broker.child() = Some(child);
                    return Ok(broker);
                }
                Err(e) if is_address_in_use(&e) => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(BrokerError::Usage("no start attempt was made")))
    }
}

/// A mosquitto process of its own, on free loopback ports, with its files in a temp dir.
///
/// Dropping it kills the process (`SIGKILL`) and deletes the temp dir; that also happens when
/// the test panics (the value is dropped while unwinding). If the test process exits without
/// dropping it (a `static`, an abort), Linux still kills the broker (parent-death signal).
///
/// All methods take `&self` (it can sit in an `Arc` shared by tasks) and block; the waits are
/// bounded (start 10 s by default, stop 10 s, save 10 s).
///
/// # Restart without losing queued QoS 1/2 messages
/// Build with [`BrokerBuilder::persistence`]`(true)`. The messages must be queued for a
/// *persistent* session: the subscriber connected with clean session 0 (3.1.1) or a non-zero
/// session expiry interval (5.0), subscribed with QoS 1/2, and disconnected. Then either
/// - [`Broker::stop`] + [`Broker::restart`]: `SIGTERM` makes mosquitto write its database before
///   it exits, so nothing is lost; or
/// - [`Broker::save`] + [`Broker::kill`] + [`Broker::restart`]: a crash after a completed save.
///
/// A bare [`Broker::kill`] right after a publisher got its PUBACK may lose that message:
/// mosquitto autosaves after each change, but from its main loop *after* sending the PUBACK.
/// [`Broker::restart`] reuses the same ports, persistence dir and log file.
#[derive(Debug)]
pub struct Broker {
    binary: PathBuf,
    config: PathBuf,
    output: PathBuf,
    ports: Ports,
    files: Files,
    options: Options,
    tls: Option<TlsMaterial>,
    credentials: Option<(String, String)>,
    start_timeout: Duration,
    child: Mutex<Option<Child>>,
    // Dropped after `Drop::drop` has killed the process.
    _dir: TempDir,
}

impl Broker {
    /// A broker with only a plain TCP listener, anonymous access and no persistence.
    ///
    /// # Errors
    /// As [`BrokerBuilder::start`].
    pub fn start() -> Result<Self, BrokerError> {
        Self::builder().start()
    }

    /// A builder for a broker with more listeners or options.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// Port of the plain MQTT listener on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.ports.tcp
    }

    /// Address of the plain MQTT listener (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        loopback(self.ports.tcp)
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.ports.tcp)
    }

    /// Port of the TLS listener, if the broker has one.
    pub fn tls_port(&self) -> Option<u16> {
        self.ports.tls
    }

    /// `mqtts://127.0.0.1:PORT`, if the broker has a TLS listener. The certificate is valid for
    /// `127.0.0.1` and for [`TlsMaterial::SERVER_NAME`].
    pub fn tls_url(&self) -> Option<String> {
        self.ports.tls.map(|p| format!("mqtts://127.0.0.1:{p}"))
    }

    /// Port of the WebSocket listener, if the broker has one.
    pub fn ws_port(&self) -> Option<u16> {
        self.ports.ws
    }

    /// `ws://127.0.0.1:PORT/mqtt`, if the broker has a WebSocket listener.
    pub fn ws_url(&self) -> Option<String> {
        self.ports.ws.map(|p| format!("ws://127.0.0.1:{p}/mqtt"))
    }

    /// `wss://localhost:PORT/mqtt`: WebSocket over TLS, with the same certificate and client
    /// certificate rule as the TLS listener, when the broker has both a TLS and a WebSocket
    /// listener.
    pub fn wss_url(&self) -> Option<String> {
        self.ports
            .wss
            .map(|p| format!("wss://{}:{p}/mqtt", TlsMaterial::SERVER_NAME))
    }

    /// The CA, client certificate and client configs, if the broker has a TLS listener.
    pub fn tls(&self) -> Option<&TlsMaterial> {
        self.tls.as_ref()
    }

    /// The required username and password, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The temp dir holding config, log, certificates and database.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        let mut child = self.child();
        reap(&mut child);
        child.as_ref().map(Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Everything mosquitto logged (`log_type all`) over all runs of this broker, plus what it
    /// printed on stdout/stderr. For debugging: print it when a test fails.
    pub fn log(&self) -> String {
        let mut log = fs::read(&self.files.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if let Ok(out) = fs::read(&self.output) {
            if !out.is_empty() {
                log.push_str("--- mosquitto stdout/stderr ---\n");
                log.push_str(&String::from_utf8_lossy(&out));
            }
        }
        log
    }

    /// QoS 2 messages this mosquitto sent again as a PUBLISH after it had already released
    /// them with PUBREL, which a sender must not do (MQTT-4.3.3-5). mosquitto 2.0 does this
    /// after a reconnect that broke at once; a subscriber cannot tell such a replay from a new
    /// message under a reused identifier, so it delivers it again. Tests allow that many
    /// duplicates as the broker's. Read from the log (`Sending PUBREL to C (mN)`, later
    /// `Sending PUBLISH to C (d1, q2, ..., mN, ...)`).
    pub fn released_replays(&self) -> usize {
        released_replays(&self.log())
    }

    /// Waits until the log contains `needle` (e.g. `"Client sub1 disconnected"`).
    ///
    /// # Errors
    /// [`BrokerError::Timeout`] after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<(), BrokerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.timeout(format!("{needle:?} in the log")));
            }
            thread::sleep(POLL);
        }
    }

    /// Kills the process with `SIGKILL`, like a crash or power cut: what mosquitto has not
    /// saved is lost (see the type's docs). Does nothing if it is not running.
    ///
    /// # Errors
    /// Only if the kernel refuses to signal or reap our own child.
    pub fn kill(&self) -> Result<(), BrokerError> {
        let mut child = self.child();
        if let Some(mut c) = child.take() {
            if c.try_wait().ok().flatten().is_none() {
                c.kill().map_err(BrokerError::io("killing mosquitto"))?;
            }
            c.wait().map_err(BrokerError::io("reaping mosquitto"))?;
        }
        Ok(())
    }

    /// Stops the process with `SIGTERM`; mosquitto then saves its database (with persistence)
    /// and exits. Kills it if it has not exited after 10 s. Does nothing if not running.
    ///
    /// # Errors
    /// [`BrokerError::Timeout`] if it had to be killed; I/O errors from signalling.
    pub fn stop(&self) -> Result<(), BrokerError> {
        let mut child = self.child();
        let Some(mut c) = child.take() else {
            return Ok(());
        };
        if c.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        process::signal(c.id(), libc::SIGTERM).map_err(BrokerError::io("sending SIGTERM"))?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if c.try_wait().ok().flatten().is_some() {
                return Ok(());
            }
            thread::sleep(POLL);
        }
        let _ = c.kill();
        let _ = c.wait();
        Err(self.timeout("mosquitto to exit after SIGTERM (killed it)".into()))
    }

    /// Starts mosquitto again with the same config, ports, persistence dir and log, and waits
    /// until it accepts connections. A running broker is first stopped cleanly
    /// ([`Broker::stop`]); call [`Broker::kill`] first to simulate a crash instead.
    ///
    /// Clients see the broker go away and come back on the same address, as after a real
    /// broker restart.
    ///
    /// # Errors
    /// [`BrokerError::Start`] if it does not come back within the start timeout (e.g. another
    /// process took one of its ports meanwhile), and the errors of [`Broker::stop`].
    pub fn restart(&self) -> Result<(), BrokerError> {
        self.stop()?;
        let deadline = Instant::now() + self.start_timeout;
        loop {
            match self.spawn_and_wait() {
                Ok(child) => {
                    *self.child() = Some(child);
                    return Ok(());
                }
                // The old sockets may linger for a moment; the ports are ours to retry.
                Err(e) if is_address_in_use(&e) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes mosquitto write its database now (`SIGUSR1`) and waits until the new file is in
    /// place. Everything the broker acknowledged before this call is then on disk, so a
    /// [`Broker::kill`] after it loses none of it.
    ///
    /// # Errors
    /// [`BrokerError::Usage`] without persistence or when not running;
    /// [`BrokerError::Timeout`] if no new database appears within 10 s.
    pub fn save(&self) -> Result<(), BrokerError> {
        if !self.options.persistence {
            return Err(BrokerError::Usage(
                "Broker::save needs BrokerBuilder::persistence(true)",
            ));
        }
        let db = self.files.dir.join("mosquitto.db");
        // Hold the current file open: once an autosave renames a new file over it, ext4 may
        // give its freed inode to the next `mosquitto.db.new`, and a save that reused it would
        // look like no save at all.
        let _hold = fs::File::open(&db);
        let before = file_identity(&db);
        {
            let mut child = self.child();
            reap(&mut child);
            let Some(c) = child.as_ref() else {
                return Err(BrokerError::Usage("Broker::save needs a running broker"));
            };
            process::signal(c.id(), libc::SIGUSR1).map_err(BrokerError::io("sending SIGUSR1"))?;
        }
        // mosquitto writes `mosquitto.db.new` and renames it over `mosquitto.db`: a new inode
        // appears only once a save has completed. Any save completing after this call began
        // started after everything acknowledged before it (mosquitto is single-threaded).
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            let now = file_identity(&db);
            if now.is_some() && now != before {
                return Ok(());
            }
            thread::sleep(POLL);
        }
        Err(self.timeout("mosquitto to save its database after SIGUSR1".into()))
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock leaves the Option consistent.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_config(&self) -> Result<(), BrokerError> {
        let text = config::render(self.ports, &self.files, &self.options, process::is_root());
        fs::write(&self.config, text).map_err(BrokerError::io("writing mosquitto.conf"))
    }

    /// Spawns mosquitto and waits until it logged "running", is still alive, and every port
    /// accepts a TCP connection (so we know it is mosquitto listening, not a port thief).
    fn spawn_and_wait(&self) -> Result<Child, BrokerError> {
        let log_start = file_len(&self.files.log);
        let out_start = file_len(&self.output);
        let mut child = process::spawn(&self.binary, &self.config, &self.output).map_err(
            BrokerError::io(format!("spawning {}", self.binary.display())),
        )?;
        let deadline = Instant::now() + self.start_timeout;
        let fail = |child: &mut Child, reason: String| {
            let _ = child.kill();
            let _ = child.wait();
            let mut log = read_from(&self.files.log, log_start, LOG_TAIL);
            log.push_str(&read_from(&self.output, out_start, LOG_TAIL));
            BrokerError::Start { reason, log }
        };
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(fail(&mut child, format!("mosquitto exited with {status}")));
            }
            let running = read_from(&self.files.log, log_start, u64::MAX).contains(" running");
            if running && self.ports.all().all(accepts) {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let reason = format!(
                    "not accepting connections on ports {:?} after {:?}",
                    self.ports.all().collect::<Vec<_>>(),
                    self.start_timeout
                );
                return Err(fail(&mut child, reason));
            }
            thread::sleep(POLL);
        }
    }

    fn timeout(&self, what: String) -> BrokerError {
        let log = self.log();
        let tail = log.len().saturating_sub(LOG_TAIL as usize);
        let tail = (tail..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        BrokerError::Timeout {
            what,
            log: log[tail..].to_owned(),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Asks the OS for distinct free loopback ports. Port 0 yields ephemeral ports, which never
/// include 1883 in a sane configuration; one is skipped all the same if it turns up.
fn pick_ports(tls: bool, ws: bool) -> Result<Ports, BrokerError> {
    let both = tls && ws;
    let count = 1 + usize::from(tls) + usize::from(ws) + usize::from(both);
    // Every listener stays bound until all ports are known, so the ports are distinct.
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..count + 1 {
        if ports.len() == count {
            break;
        }
        let listener = TcpListener::bind(loopback(0))
            .map_err(BrokerError::io("binding 127.0.0.1:0 to find a free port"))?;
        let port = listener
            .local_addr()
            .map_err(BrokerError::io("reading a probe port"))?
            .port();
        if port != 1883 {
            ports.push(port);
        }
        listeners.push(listener);
    }
    let mut ports = ports.into_iter();
    let Some(tcp) = ports.next() else {
        return Err(BrokerError::Usage("the OS offered no free loopback port"));
    };
    let tls = if tls { ports.next() } else { None };
    let ws = if ws { ports.next() } else { None };
    let wss = if both { ports.next() } else { None };
    Ok(Ports { tcp, tls, ws, wss })
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&loopback(port), Duration::from_millis(200)).is_ok()
}

fn is_address_in_use(e: &BrokerError) -> bool {
    matches!(e, BrokerError::Start { log, .. } if log.contains("Address already in use"))
}

fn write_tls_files(
    dir: &Path,
    material: &TlsMaterial,
    require_certificate: bool,
) -> Result<TlsFiles, BrokerError> {
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        require_certificate,
    };
    for (path, text) in [
        (&files.ca, material.ca_pem()),
        (&files.cert, material.server_cert_pem()),
        (&files.key, material.server_key_pem()),
    ] {
        fs::write(path, text).map_err(BrokerError::io(format!("writing {}", path.display())))?;
    }
    Ok(files)
}

/// `mosquitto_passwd -b -c FILE USER PASS`.
fn write_password_file(
    mosquitto: &Path,
    dir: &Path,
    user: &str,
    pass: &str,
) -> Result<PathBuf, BrokerError> {
    let tool = process::find_program("mosquitto_passwd", Some(mosquitto))?;
    let file = dir.join("passwd");
    let out = Command::new(&tool)
        .args(["-b", "-c"])
        .arg(&file)
        .args([user, pass])
        .output()
        .map_err(BrokerError::io(format!("running {}", tool.display())))?;
    if !out.status.success() || !file.is_file() {
        return Err(BrokerError::Passwd(format!(
            "{} exited with {}: {}{}",
            tool.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(file)
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The file's contents from `offset`, at most the last `max` bytes of them.
fn read_from(path: &Path, offset: u64, max: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = offset.max(len.saturating_sub(max));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_ok() {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The inode of a file, to notice it being replaced by a rename.
fn file_identity(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|meta| meta.ino())
}

/// Forgets a child that has exited on its own.
fn reap(child: &mut Option<Child>) {
    if let Some(c) = child.as_mut() {
        if c.try_wait().ok().flatten().is_some() {
            *child = None;
        }
    }
}

/// See [`Broker::released_replays`].
fn released_replays(log: &str) -> usize {
    let mut released = std::collections::BTreeSet::new();
    let mut replays = 0;
    for line in log.lines() {
        if let Some((_, r)) = line.split_once("Sending PUBREL to ") {
            if let Some((client, mid)) = r.split_once(" (m") {
                released.insert((client.to_string(), mid.trim_end_matches(')').to_string()));
            }
        } else if let Some((_, r)) = line.split_once("Sending PUBLISH to ") {
            let Some((client, rest)) = r.split_once(" (") else {
                continue;
            };
            if let Some(mid) = rest
                .strip_prefix("d1, q2, ")
                .and_then(|r| r.split(", ").nth(1))
            {
                let mid = mid.trim_start_matches('m');
                if released.contains(&(client.to_string(), mid.to_string())) {
                    replays += 1;
                }
            }
        }
    }
    replays
}

#[cfg(test)]
mod replay_tests {
    #[test]
    fn released_replays_are_read_from_the_log() {
        let log = "\
1: Sending PUBLISH to c1 (d0, q2, r0, m277, 'kill/sub/5/2', ... (6 bytes))
2: Received PUBREC from c1 (Mid: 277)
3: Sending PUBREL to c1 (m277)
4: Sending PUBLISH to c1 (d1, q2, r0, m279, 'kill/sub/5/2', ... (6 bytes))
5: Sending PUBLISH to c2 (d1, q2, r0, m277, 'kill/sub/5/2', ... (6 bytes))
6: Sending PUBLISH to c1 (d1, q2, r0, m277, 'kill/sub/5/2', ... (6 bytes))";
        assert_eq!(super::released_replays(log), 1);
    }
}
