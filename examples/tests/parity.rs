//! Byte-for-byte parity with mosquitto's clients: the same command lines run through
//! mosquitto_pub / mosquitto_sub / mosquitto_rr (2.0) and through `mqtt pub` / `mqtt sub` /
//! `mqtt rr`, against one private broker (loopback, a port the test support picks), must
//! print the same stdout and stderr and exit with the same code. Only what differs by
//! nature is normalized: the program name in usage hints and, where a line shows the time,
//! its digits.
//!
//! Covered: the `-d` trace of pub (each QoS and version, repeats, retained, over TLS 1.2 and
//! 1.3, over a Unix socket and through a SOCKS5 proxy with credentials), of sub (QoS 1/2
//! deliveries, -U) and of rr; -F with every conversion, widths, precision, %j/%J, --pretty
//! and times by shape; -N/-R/-T/--retained-only; -W timeouts; refused credentials,
//! unreachable brokers, untrusted certificates, usage errors; a closed stdout. The Unix
//! socket and the proxy are relays of this test to the broker, on loopback.
//!
//! Every child runs at most `WAIT`; every wait and every relay is bounded.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mqtt_test_support::Broker;

/// Upper bound of a child's run and of each wait.
const WAIT: Duration = Duration::from_secs(20);

/// Which client runs a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Mosquitto,
    Ours,
}

impl Client {
    /// The command for `tool` (`pub`, `sub` or `rr`).
    fn command(self, tool: &str) -> Command {
        match self {
            Self::Mosquitto => Command::new(format!("mosquitto_{tool}")),
            Self::Ours => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqtt"));
                cmd.arg(tool);
                cmd
            }
        }
    }
}

/// A child's output, raw bytes.
#[derive(Debug, PartialEq, Eq)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A running child; killed when dropped.
struct Running {
    what: String,
    child: Child,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: mpsc::Receiver<Vec<u8>>,
}

impl Running {
    fn spawn(client: Client, tool: &str, args: &[&str]) -> Self {
        let mut child = client
            .command(tool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn (apt-get install mosquitto-clients)");
        let drain = |mut r: Box<dyn Read + Send>| {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
            rx
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        Self {
            what: format!("{client:?} {tool} {args:?}"),
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the exit (bounded) and normalizes the output for comparison.
    fn finish(mut self, tool: &str) -> Output {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + WAIT;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let out = self.stdout.recv_timeout(WAIT).unwrap_or_default();
                let err = self.stderr.recv_timeout(WAIT).unwrap_or_default();
                panic!(
                    "{} still running after {WAIT:?}; stdout:\n{}\nstderr:\n{}",
                    self.what,
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&err)
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let text = |rx: &mpsc::Receiver<Vec<u8>>| {
            let bytes = rx.recv_timeout(WAIT).unwrap_or_default();
            String::from_utf8_lossy(&bytes)
                .replace(&format!("mosquitto_{tool} --help"), "PROGRAM --help")
                .replace(&format!("mqtt {tool} --help"), "PROGRAM --help")
        };
        Output {
            code,
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one command line to its end with both clients; returns (mosquitto's, ours).
fn both(tool: &str, args: &[&str]) -> (Output, Output) {
    let theirs = Running::spawn(Client::Mosquitto, tool, args).finish(tool);
    let ours = Running::spawn(Client::Ours, tool, args).finish(tool);
    (theirs, ours)
}

/// Asserts that both clients behave the same on `args`.
fn same(tool: &str, args: &[&str]) -> Output {
    let (theirs, ours) = both(tool, args);
    assert_eq!(theirs, ours, "{tool} {args:?}");
    ours
}

/// Runs a subscriber (`sub` or `rr`) with each client in turn: starts it, waits until the
/// broker acknowledged its SUBSCRIBE, runs `trigger`, and collects its output.
fn with_subscriber(
    broker: &Broker,
    tool: &str,
    id_base: &str,
    args: &[&str],
    trigger: impl Fn(),
) -> (Output, Output) {
    let mut outputs = Vec::new();
    for (n, client) in [Client::Mosquitto, Client::Ours].into_iter().enumerate() {
        // A fresh id per run (callers give each call its own base), so the SUBACK of this
        // run is the one waited for; the output normalizes it back.
        let id = format!("{id_base}-{n}");
        let mut full = vec!["-i", &id];
        full.extend_from_slice(args);
        let running = Running::spawn(client, tool, &full);
        broker
            .wait_for_log(&format!("Sending SUBACK to {id}"), WAIT)
            .expect("subscribed in time");
        trigger();
        let mut out = running.finish(tool);
        out.stdout = out.stdout.replace(&id, "ID");
        out.stderr = out.stderr.replace(&id, "ID");
        outputs.push(out);
    }
    let ours = outputs.pop().expect("ours");
    let theirs = outputs.pop().expect("theirs");
    (theirs, ours)
}

/// Publishes with mosquitto_pub (the same publisher for both subscribers).
fn publish(broker: &Broker, args: &[&str]) {
    let port = broker.port().to_string();
    let mut full = vec!["-h", "127.0.0.1", "-p", &port];
    full.extend_from_slice(args);
    let done = Running::spawn(Client::Mosquitto, "pub", &full).finish("pub");
    assert_eq!(done.code, Some(0), "{done:?}");
}

/// Every ASCII digit replaced by `0`: lines that show the time compare by shape.
fn digits_masked(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect()
}

#[test]
fn publish_trace_and_exit_codes_match() {
    let broker = Broker::start().expect("mosquitto");
    let port = broker.port().to_string();
    let at = ["-h", "127.0.0.1", "-p", port.as_str()];
    for (qos, version) in [
        ("0", "311"),
        ("1", "311"),
        ("2", "311"),
        ("1", "5"),
        ("2", "5"),
    ] {
        let mut args = at.to_vec();
        args.extend([
            "-d",
            "-i",
            "parity-pub",
            "-t",
            "p/t",
            "-m",
            "hello",
            "-q",
            qos,
        ]);
        args.extend(["-V", version]);
        let out = same("pub", &args);
        assert_eq!(out.code, Some(0));
        assert!(out.stdout.contains("sending PUBLISH (d0, q"), "{out:?}");
    }
    // Several messages (numbered m1, m2 ... even at QoS 0), retained, with properties.
    let mut args = at.to_vec();
    args.extend([
        "-d",
        "-i",
        "parity-rep",
        "-t",
        "p/r",
        "-m",
        "x",
        "-r",
        "--repeat",
        "3",
    ]);
    args.extend(["-V", "5", "-D", "publish", "user-property", "k", "v"]);
    same("pub", &args);
    let mut clear = at.to_vec();
    clear.extend([
        "-d",
        "-i",
        "parity-clear",
        "-t",
        "p/r",
        "-n",
        "-r",
        "-q",
        "1",
    ]);
    same("pub", &clear);
}

#[test]
fn connection_failures_and_usage_errors_match() {
    let broker = Broker::builder()
        .credentials("alice", "s3cret")
        .start()
        .expect("mosquitto");
    let port = broker.port().to_string();
    let at = ["-h", "127.0.0.1", "-p", port.as_str()];
    // A port nobody listens on (bound, then released).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free.local_addr().unwrap().port().to_string();
    drop(free);
    let nowhere = ["-h", "127.0.0.1", "-p", closed.as_str()];
    for version in ["311", "5"] {
        let bad_password = ["-u", "alice", "-P", "wrong", "-V", version, "-t", "t"];
        let out = same("pub", &[&at[..], &bad_password, &["-m", "x"]].concat());
        assert_eq!(out.code, Some(if version == "5" { 135 } else { 5 }));
        same("sub", &[&at[..], &bad_password, &["-W", "5"]].concat());
    }
    for version in ["311", "5"] {
        let bad_password = [
            "-u", "alice", "-P", "wrong", "-t", "t", "-e", "r", "-m", "x",
        ];
        let out = same(
            "rr",
            &[&at[..], &bad_password, &["-W", "5", "-V", version]].concat(),
        );
        assert_eq!(out.code, Some(if version == "5" { 135 } else { 5 }));
    }
    let out = same("pub", &[&nowhere[..], &["-t", "t", "-m", "x"]].concat());
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(1), "Error: Connection refused\n")
    );
    same("sub", &[&nowhere[..], &["-t", "t"]].concat());
    same(
        "rr",
        &[&nowhere[..], &["-t", "t", "-e", "r", "-m", "x"]].concat(),
    );
    // Usage errors checked before connecting: same words, same code.
    for (tool, args) in [
        ("sub", &["-F", "%Z", "-t", "x"][..]),
        ("sub", &["-F", "abc%", "-t", "x"]),
        ("sub", &["-F", r"\q", "-t", "x"]),
        ("sub", &["-t", "a/#/b"]),
        ("sub", &[]),
        ("pub", &["-t", "a/+", "-m", "x"]),
        ("rr", &["-t", "x", "-m", "y"]),
        ("rr", &["-t", "x", "-e", "r"]),
    ] {
        let out = same(tool, &[&nowhere[..], args].concat());
        assert_eq!(out.code, Some(1), "{tool} {args:?}");
    }
    // Unknown flags.
    for tool in ["pub", "sub", "rr"] {
        let out = same(tool, &["--no-such-flag"]);
        assert_eq!(out.code, Some(1), "{tool}");
    }
    same(
        "pub",
        &[&nowhere[..], &["-t", "x", "-m", "x", "-n"]].concat(),
    );
}

#[test]
fn subscriber_trace_and_formats_match() {
    let broker = Broker::start().expect("mosquitto");
    let port = broker.port().to_string();
    let at = ["-h", "127.0.0.1", "-p", port.as_str()];

    // The packet trace with QoS 1 and 2 deliveries, -v, an empty payload.
    let mut args = at.to_vec();
    args.extend([
        "-d", "-t", "s/#", "-t", "other", "-q", "2", "-C", "3", "-v", "-W", "10",
    ]);
    let (theirs, ours) = with_subscriber(&broker, "sub", "parity-sub", &args, || {
        publish(&broker, &["-t", "s/1", "-m", "one", "-q", "1"]);
        publish(&broker, &["-t", "s/2", "-m", "two", "-q", "2"]);
        publish(&broker, &["-t", "s/3", "-n", "-q", "2"]);
    });
    assert_eq!(theirs, ours);
    assert!(
        ours.stdout.contains("Subscribed (mid: 1): 2, 2"),
        "{ours:?}"
    );

    // -U: SUBSCRIBE, then one UNSUBSCRIBE for every -U filter (5.0, -E).
    let mut args = at.to_vec();
    args.extend([
        "-d", "-t", "u/1", "-U", "gone/1", "-U", "gone/2", "-V", "5", "-E",
    ]);
    let (theirs, mut ours) = with_subscriber(&broker, "sub", "parity-unsub", &args, || {});
    // Documented difference: with -E, mosquitto_sub leaves without waiting for the
    // UNSUBACKs; mqtt sub lets them arrive before its DISCONNECT.
    ours.stdout = ours.stdout.replace("Client ID received UNSUBACK\n", "");
    assert_eq!(theirs, ours);
    assert!(
        ours.stdout.contains("UNSUBSCRIBE (Mid: 3, Topic: gone/2)"),
        "{ours:?}"
    );

    // -F: every conversion that does not show the time, with widths and precision, on a
    // 5.0 message with properties (given in the order this workspace's codec encodes them).
    let format = "%t|%p|%l|%q|%r|%m|%x|%X|%10t|%-10t|%.2t|%5p|%-8X|%10x|%05l|%-5l|%5q|%A|\
                  %C|%E|%F|%R|%D|%P|%S|%%|@@|\\t|%-12C|%.3R";
    let mut args = at.to_vec();
    args.extend(["-t", "f/#", "-V", "5", "-q", "1", "-C", "2", "-F", format]);
    let (theirs, ours) = with_subscriber(&broker, "sub", "parity-fmt", &args, || {
        publish(
            &broker,
            &[
                "-t",
                "f/1",
                "-m",
                "hello",
                "-q",
                "1",
                "-V",
                "5",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
                "-D",
                "publish",
                "response-topic",
                "reply/here",
                "-D",
                "publish",
                "correlation-data",
                "corr",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-D",
                "publish",
                "user-property",
                "k1",
                "v1",
                "-D",
                "publish",
                "user-property",
                "k2",
                "v2",
            ],
        );
        publish(&broker, &["-t", "f/2", "-m", "\x01binary\x7f", "-V", "5"]);
    });
    assert_eq!(theirs, ours);

    // %j and %J (the timestamp's digits masked), --pretty, a payload that is not JSON.
    for pretty in [false, true] {
        let mut args = at.to_vec();
        args.extend(["-t", "j/#", "-V", "5", "-q", "1", "-C", "3", "-F", "%j|%J"]);
        if pretty {
            args.push("--pretty");
        }
        let (mut theirs, mut ours) = with_subscriber(
            &broker,
            "sub",
            &format!("parity-json-{pretty}"),
            &args,
            || {
                publish(
                    &broker,
                    &[
                        "-t",
                        "j/1",
                        "-m",
                        r#"{"a": [1, 2.5, {"b": null}], "c": "x\ty"}"#,
                        "-q",
                        "1",
                        "-V",
                        "5",
                        "-D",
                        "publish",
                        "content-type",
                        "application/json",
                        "-D",
                        "publish",
                        "user-property",
                        "k",
                        "v",
                    ],
                );
                publish(&broker, &["-t", "j/2", "-m", "not json", "-V", "5"]);
                publish(&broker, &["-t", "j/3", "-n", "-V", "5"]);
            },
        );
        theirs.stdout = digits_masked(&theirs.stdout);
        ours.stdout = digits_masked(&ours.stdout);
        assert_eq!(theirs, ours, "--pretty: {pretty}");
        assert!(
            ours.stderr.contains("not valid JSON on topic j/2"),
            "{ours:?}"
        );
    }

    // Times: %I, %U and @ dates compare by shape.
    let mut args = at.to_vec();
    args.extend([
        "-t",
        "t/#",
        "-C",
        "1",
        "-F",
        "%I|%U|@Y-@m-@dT@H:@M:@S.@N|@s|@z",
    ]);
    let (mut theirs, mut ours) = with_subscriber(&broker, "sub", "parity-time", &args, || {
        publish(&broker, &["-t", "t/1", "-m", "now"]);
    });
    theirs.stdout = digits_masked(&theirs.stdout);
    ours.stdout = digits_masked(&ours.stdout);
    assert_eq!(theirs, ours);

    // -N, -R, -T, --retained-only on retained messages.
    publish(&broker, &["-t", "r/kept", "-m", "old", "-r"]);
    publish(&broker, &["-t", "r/skip", "-m", "skipped", "-r"]);
    let mut args = at.to_vec();
    args.extend([
        "-t",
        "r/#",
        "-T",
        "r/skip",
        "--retained-only",
        "-N",
        "-v",
        "-W",
        "10",
    ]);
    let (theirs, ours) = with_subscriber(&broker, "sub", "parity-ret", &args, || {
        publish(&broker, &["-t", "r/new", "-m", "fresh"]);
    });
    assert_eq!(theirs, ours);
    assert_eq!(ours.stdout, "r/kept old");
}

#[test]
fn timeouts_and_request_response_match() {
    let broker = Broker::start().expect("mosquitto");
    let port = broker.port().to_string();
    let at = ["-h", "127.0.0.1", "-p", port.as_str()];
    // -W with nothing arriving: "Timed out", 27.
    let out = same(
        "sub",
        &[&at[..], &["-t", "none", "-W", "1", "-i", "parity-w"]].concat(),
    );
    assert_eq!((out.code, out.stderr.as_str()), (Some(27), "Timed out\n"));
    let out = same(
        "rr",
        &[
            &at[..],
            &["-t", "svc", "-e", "nobody", "-m", "q", "-W", "1", "-d"],
            &["-i", "parity-rrw"],
        ]
        .concat(),
    );
    assert_eq!(out.code, Some(27));

    // A responder (mosquitto_sub piped into mosquitto_pub would be racy): this test's own
    // 5.0 client answers each request on its response topic with its correlation data.
    let responder = Responder::start(&broker);
    let mut args = at.to_vec();
    args.extend([
        "-t", "svc/req", "-e", "svc/resp", "-m", "question", "-W", "10", "-d",
    ]);
    args.extend([
        "-D",
        "publish",
        "correlation-data",
        "c42",
        "-F",
        "%t %p %D",
        "-q",
        "1",
    ]);
    let (theirs, mut ours) = both_with_id("rr", &args, "parity-rr");
    // The one documented difference: mosquitto_rr 2.0 closes the connection after the
    // response without DISCONNECT (so the broker would publish a will); mqtt rr leaves
    // cleanly.
    let clean_exit = "Client ID sending DISCONNECT\n";
    assert!(ours.stdout.ends_with(clean_exit), "{ours:?}");
    ours.stdout.truncate(ours.stdout.len() - clean_exit.len());
    assert_eq!(theirs, ours);
    assert!(
        ours.stdout.contains("svc/resp answer:question c42"),
        "{ours:?}"
    );
    drop(responder);
}

/// [`both`] with a distinct client id per run (`-i ID-0`, `-i ID-1`), normalized to `ID`.
fn both_with_id(tool: &str, args: &[&str], id: &str) -> (Output, Output) {
    let mut outputs = Vec::new();
    for (n, client) in [Client::Mosquitto, Client::Ours].into_iter().enumerate() {
        let this = format!("{id}-{n}");
        let mut full = vec!["-i", this.as_str()];
        full.extend_from_slice(args);
        let mut out = Running::spawn(client, tool, &full).finish(tool);
        out.stdout = out.stdout.replace(&this, "ID");
        out.stderr = out.stderr.replace(&this, "ID");
        outputs.push(out);
    }
    let ours = outputs.pop().expect("ours");
    (outputs.pop().expect("theirs"), ours)
}

/// Answers requests on `svc/req`: publishes `answer:<request>` to the request's response
/// topic with its correlation data. Runs on its own thread and runtime until dropped.
struct Responder {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Responder {
    fn start(broker: &Broker) -> Self {
        use mqtt_client_tokio::{Client as MqttClient, Message, Options, Properties, QoS};
        let url = broker.url();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = mpsc::channel();
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let options = Options::new(&url).expect("url");
                let (client, _events) = MqttClient::connect(options).await.expect("connect");
                let mut requests = client
                    .subscribe("svc/req", QoS::AtLeastOnce)
                    .await
                    .expect("subscribe");
                let _ = ready_tx.send(());
                loop {
                    let request = tokio::select! {
                        r = requests.recv() => r,
                        _ = &mut stopped => None,
                    };
                    let Some(request) = request else { break };
                    let Some(topic) = request.properties.response_topic.clone() else {
                        continue;
                    };
                    let mut payload = b"answer:".to_vec();
                    payload.extend_from_slice(&request.payload);
                    let properties = Properties {
                        correlation_data: request.properties.correlation_data.clone(),
                        ..Properties::default()
                    };
                    let reply =
                        Message::new(topic, payload, QoS::AtLeastOnce).properties(properties);
                    let _ = client.publish_message(reply).await;
                }
                let _ = client.disconnect().await;
            });
        });
        ready.recv_timeout(WAIT).expect("responder ready");
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn closed_stdout_is_not_a_panic() {
    // `mqtt sub -d ... | head -1`: the trace's second line finds the pipe closed.
    let broker = Broker::start().expect("mosquitto");
    let port = broker.port().to_string();
    let mut child = Client::Ours
        .command("sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-d",
            "-t",
            "x",
            "-i",
            "parity-pipe",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).expect("first bytes");
    assert_eq!(&first, b"Client");
    drop(stdout);
    broker
        .wait_for_log("Sending SUBACK to parity-pipe", WAIT)
        .expect("subscribed");
    // The next trace line (a message arriving) fails to print: exit 0, no panic.
    publish(&broker, &["-t", "x", "-m", "ping"]);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running");
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::io::stdout().flush();
}

#[test]
fn tls_flags_match() {
    let broker = Broker::builder().tls().start().expect("mosquitto");
    let ca = broker.dir().join("parity-ca.pem");
    std::fs::write(&ca, broker.tls().expect("tls").ca_pem()).expect("write CA");
    let ca = ca.display().to_string();
    let port = broker.tls_port().expect("tls port").to_string();
    for version in ["tlsv1.2", "tlsv1.3"] {
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "--tls-version",
            version,
            "-d",
            "-i",
            "parity-tls",
            "-t",
            "tls/t",
            "-m",
            "secret",
            "-q",
            "1",
        ];
        let out = same("pub", &args);
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    // A CA that did not sign the broker's certificate: mosquitto's clients mostly fail in
    // mosquitto_connect (exit 1), rarely later in their loop (exit 8); ours always as the
    // former.
    let other = broker.dir().join("parity-other-ca.pem");
    let material = mqtt_test_support::TlsMaterial::generate().expect("material");
    std::fs::write(&other, material.ca_pem()).expect("write CA");
    let other = other.display().to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        &other,
        "-t",
        "tls/t",
        "-m",
        "x",
    ];
    for (tool, args) in [("pub", &args[..]), ("sub", &args[..8])] {
        let (theirs, ours) = both(tool, args);
        let usual = Output {
            code: Some(1),
            stdout: String::new(),
            stderr: "Unable to connect (A TLS error occurred.).\n".into(),
        };
        let rare = Output {
            code: Some(8),
            stdout: String::new(),
            stderr: "Error: A TLS error occurred.\n".into(),
        };
        assert_eq!(ours, usual, "{tool}");
        assert!(theirs == usual || theirs == rare, "{tool}: {theirs:?}");
    }
}

/// Forwards `connections` accepted connections (one at a time) from `listener` to the
/// broker's TCP port, after `handshake` (which may refuse by returning `false`). Threads of
/// this test, on loopback; each ends when its connection does.
fn relay<L, S>(
    accept: L,
    connections: usize,
    broker_port: u16,
    handshake: fn(&mut S) -> std::io::Result<bool>,
) -> thread::JoinHandle<()>
where
    L: Fn() -> std::io::Result<S> + Send + 'static,
    S: Read + Write + Send + 'static + TryCloneStream,
{
    thread::spawn(move || {
        for _ in 0..connections {
            let Ok(mut client) = accept() else { return };
            if !handshake(&mut client).unwrap_or(false) {
                continue;
            }
            let Ok(mut broker) = std::net::TcpStream::connect(("127.0.0.1", broker_port)) else {
                return;
            };
            let (Ok(mut client2), Ok(mut broker2)) =
                (client.try_clone_stream(), broker.try_clone())
            else {
                return;
            };
            let up = thread::spawn(move || std::io::copy(&mut client2, &mut broker2));
            let _ = std::io::copy(&mut broker, &mut client);
            let _ = up.join();
        }
    })
}

/// `try_clone` of the two stream types the relays use.
trait TryCloneStream: Sized {
    fn try_clone_stream(&self) -> std::io::Result<Self>;
}

impl TryCloneStream for std::net::TcpStream {
    fn try_clone_stream(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
}

impl TryCloneStream for std::os::unix::net::UnixStream {
    fn try_clone_stream(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
}

/// The server side of a SOCKS5 handshake with user name `u` and password `p` (RFC 1928 and
/// 1929): any destination is accepted (the relay goes to the broker).
fn socks5_handshake(c: &mut std::net::TcpStream) -> std::io::Result<bool> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods)?;
    if !methods.contains(&2) {
        c.write_all(&[5, 0xff])?;
        return Ok(false);
    }
    c.write_all(&[5, 2])?;
    let mut ver_len = [0u8; 2];
    c.read_exact(&mut ver_len)?;
    let mut user = vec![0u8; usize::from(ver_len[1])];
    c.read_exact(&mut user)?;
    let mut len = [0u8; 1];
    c.read_exact(&mut len)?;
    let mut password = vec![0u8; usize::from(len[0])];
    c.read_exact(&mut password)?;
    let ok = user == b"u" && password == b"p";
    c.write_all(&[1, u8::from(!ok)])?;
    if !ok {
        return Ok(false);
    }
    let mut request = [0u8; 4];
    c.read_exact(&mut request)?;
    let skip = match request[3] {
        1 => 4,
        4 => 16,
        _ => {
            c.read_exact(&mut len)?;
            usize::from(len[0])
        }
    };
    let mut rest = vec![0u8; skip + 2];
    c.read_exact(&mut rest)?;
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    Ok(true)
}

#[test]
fn unix_socket_and_socks5_proxy_match() {
    let broker = Broker::start().expect("mosquitto");
    let path = broker.dir().join("parity.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("unix socket");
    let unix = relay(
        move || listener.accept().map(|(s, _)| s),
        2,
        broker.port(),
        |_| Ok(true),
    );
    let path = path.display().to_string();
    let args = [
        "--unix",
        &path,
        "-d",
        "-i",
        "parity-unix",
        "-t",
        "u/t",
        "-m",
        "via unix",
        "-q",
        "1",
    ];
    let out = same("pub", &args);
    assert_eq!(out.code, Some(0), "{out:?}");
    // The relays are not joined: a relay still waiting must not hold the test up.
    drop(unix);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy port");
    let proxy = format!(
        "socks5h://u:p@127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let socks = relay(
        move || listener.accept().map(|(s, _)| s),
        2,
        broker.port(),
        socks5_handshake,
    );
    // The destination asked of the proxy is the broker's own port (the relay goes there anyway).
    let port = broker.port().to_string();
    let args = [
        "-h",
        "localhost",
        "-p",
        &port,
        "--proxy",
        &proxy,
        "-d",
        "-i",
        "parity-socks",
        "-t",
        "s/t",
        "-m",
        "via socks",
        "-q",
        "2",
    ];
    let out = same("pub", &args);
    assert_eq!(out.code, Some(0), "{out:?}");
    drop(socks);
}
