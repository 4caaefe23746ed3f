//! The `mqtt` binary against private mosquitto brokers (loopback, ports the test support
//! picks): round trips at every QoS, `pub -l` across a cut connection, `-C`/`-W` and the exit
//! codes, `-j`, 5.0 properties, credentials, the will of a killed client, TLS, and
//! interoperability with mosquitto_pub / mosquitto_sub. Byte-for-byte comparisons with
//! mosquitto's clients are in `tests/parity.rs`. Every child process and wait is
//! bounded: a child still running at its deadline is killed and the test fails.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use mqtt_client_tokio::{Client, Options, ProtocolVersion, QoS, Subscription};
use mqtt_test_support::{Broker, Direction, FaultMode, FaultProxy, TlsMaterial};

mod support;

use support::{mqtt, program, Finished, Running, WAIT};

/// Runs a command to its end (bounded), feeding `input` on stdin.
fn run(cmd: &mut Command, input: &[u8]) -> Finished {
    let mut running = Running::spawn(cmd);
    running.feed(input);
    running.wait(WAIT)
}

fn broker() -> Broker {
    Broker::start().expect("mosquitto (apt-get install mosquitto mosquitto-clients)")
}

/// `-h 127.0.0.1 -p PORT`.
fn at(broker: &Broker) -> String {
    format!("-h 127.0.0.1 -p {}", broker.port())
}

/// Starts `mqtt sub` (or another subscriber) with client id `id` and waits until the broker
/// acknowledged its subscription.
fn subscribed(broker: &Broker, id: &str, cmd: &mut Command) -> Running {
    let running = Running::spawn(cmd);
    broker
        .wait_for_log(&format!("Sending SUBACK to {id}"), WAIT)
        .expect("subscriber ready");
    running
}

/// A mqtt-client-tokio subscriber (5.0 unless `version` says otherwise).
async fn tokio_subscriber(
    url: &str,
    filter: &str,
    version: ProtocolVersion,
) -> (Client, Subscription) {
    let mut options = Options::new(url).unwrap();
    options.protocol.version = version;
    let (client, _events) = Client::connect(options).await.expect("connect");
    let sub = client
        .subscribe(filter, QoS::ExactlyOnce)
        .await
        .expect("subscribe");
    (client, sub)
}

#[test]
fn round_trip_at_each_qos_and_version() {
    let broker = broker();
    let b = at(&broker);
    for (qos, version) in [("0", "mqttv311"), ("1", "mqttv5"), ("2", "311"), ("2", "5")] {
        let id = format!("sub-{qos}-{version}");
        let topic = format!("rt/{qos}/{version}");
        let sub = subscribed(
            &broker,
            &id,
            &mut mqtt(&format!(
                "sub {b} -t rt/# -q {qos} -V {version} -i {id} -v -C 1 -W 10"
            )),
        );
        let published = run(
            mqtt(&format!("pub {b} -t {topic} -q {qos} -V {version} -m")).arg("hello world"),
            b"",
        );
        assert_eq!(published.code, Some(0), "{published:?}");
        let got = sub.wait(WAIT);
        assert_eq!(got.code, Some(0), "{got:?}");
        assert_eq!(got.stdout, [format!("{topic} hello world")]);
    }
}

#[test]
fn message_sources_file_null_stdin_and_url_topic() {
    let broker = broker();
    let b = at(&broker);
    let file = broker.dir().join("payload.bin");
    std::fs::write(&file, b"from a file").unwrap();
    let sub = subscribed(
        &broker,
        "src-sub",
        &mut mqtt(&format!("sub {b} -t src/# -i src-sub -C 4 -F %t:%p:%l")),
    );
    let file = file.display();
    for (args, input) in [
        (format!("-t src/file -f {file}"), &b""[..]),
        ("-t src/null -n".to_string(), b""),
        ("-t src/stdin -s".to_string(), b"all of\nstdin"),
    ] {
        let done = run(&mut mqtt(&format!("pub {b} -q 1 {args}")), input);
        assert_eq!(done.code, Some(0), "{done:?}");
    }
    let url = format!("mqtt://127.0.0.1:{}/src/url", broker.port());
    let done = run(mqtt(&format!("pub -L {url} -m")).arg("via url"), b"");
    assert_eq!(done.code, Some(0), "{done:?}");
    let got = sub.wait(WAIT);
    let want = [
        "src/file:from a file:11",
        "src/null::0",
        "src/stdin:all of",
        "stdin:12",
        "src/url:via url:7",
    ];
    assert_eq!(got.stdout, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_lines_survive_a_cut_connection_at_qos1() {
    const LINES: usize = 400;
    let broker = broker();
    let b = at(&broker);
    for version in ["mqttv5", "mqttv311"] {
        // The first connection is cut after ~2 kB towards the broker: mid-stream.
        let mode = FaultMode::new()
            .cut_after(Direction::ToBroker, 2_000)
            .connections(1);
        let proxy = FaultProxy::start(broker.addr(), mode).await.unwrap();
        let id = format!("lines-sub-{version}");
        let sub = subscribed(
            &broker,
            &id,
            &mut mqtt(&format!("sub {b} -t lines -q 1 -i {id} -V {version} -W 20")),
        );
        let input: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
        let mut publisher = Running::spawn(&mut mqtt(&format!(
            "pub -h 127.0.0.1 -p {} -t lines -l -q 1 -V {version} -d",
            proxy.port()
        )));
        publisher.feed(input.as_bytes());
        let published = publisher.wait(WAIT);
        assert_eq!(published.code, Some(0), "{published:?}");
        let stats = proxy.stats();
        assert_eq!(stats.cuts, 1, "{stats:?}");
        assert_eq!(
            stats.accepted, 2,
            "one connection, re-established once: {stats:?}"
        );
        // Every line arrives (duplicates are allowed at QoS 1).
        let mut seen = BTreeSet::new();
        while seen.len() < LINES {
            seen.insert(sub.line());
        }
        let want: BTreeSet<String> = (0..LINES).map(|i| format!("line {i}")).collect();
        assert_eq!(seen, want);
    }
}

#[test]
fn count_timeout_and_exit_after_subscribe() {
    let broker = broker();
    let b = at(&broker);
    // -W without messages: exit 27, after about the timeout.
    let start = Instant::now();
    let quiet = run(&mut mqtt(&format!("sub {b} -t nothing -W 1")), b"");
    assert_eq!(quiet.code, Some(27), "{quiet:?}");
    assert!(quiet.stderr.contains("Timed out"));
    assert!(start.elapsed() < Duration::from_secs(8));
    // -C 2 with three messages: prints two and exits 0 before -W.
    let sub = subscribed(
        &broker,
        "count-sub",
        &mut mqtt(&format!("sub {b} -t c -C 2 -W 10 -i count-sub -q 1")),
    );
    for m in ["1", "2", "3"] {
        let done = run(&mut mqtt(&format!("pub {b} -t c -m {m} -q 1")), b"");
        assert_eq!(done.code, Some(0));
    }
    let got = sub.wait(WAIT);
    assert_eq!(
        (got.code, got.stdout),
        (Some(0), vec!["1".into(), "2".into()])
    );
    // -C 2 with one message: the timeout wins.
    let sub = subscribed(
        &broker,
        "short-sub",
        &mut mqtt(&format!("sub {b} -t s -C 2 -W 2 -i short-sub")),
    );
    run(&mut mqtt(&format!("pub {b} -t s -m only")), b"");
    let got = sub.wait(WAIT);
    assert_eq!((got.code, got.stdout), (Some(27), vec!["only".into()]));
    // -E: subscribe and leave; -c -x keeps the session, so a later -c run gets what was
    // published meanwhile.
    let session = "-t persist -q 1 -c -i persist-sub -V 5";
    let setup = run(&mut mqtt(&format!("sub {b} {session} -x 60 -E")), b"");
    assert_eq!(setup.code, Some(0), "{setup:?}");
    run(&mut mqtt(&format!("pub {b} -t persist -m kept -q 1")), b"");
    let resumed = run(
        &mut mqtt(&format!("sub {b} {session} -x 0 -C 1 -W 10")),
        b"",
    );
    assert_eq!(
        (resumed.code, resumed.stdout),
        (Some(0), vec!["kept".into()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_and_v5_properties() {
    let broker = broker();
    let b = at(&broker);
    let (_client, mut v5_sub) =
        tokio_subscriber(&broker.url(), "props/#", ProtocolVersion::V5).await;
    let sub = subscribed(
        &broker,
        "json-sub",
        &mut mqtt(&format!("sub {b} -t props/# -V 5 -j -C 2 -i json-sub -q 1")),
    );
    let properties = "-D publish user-property k v \
                      -D publish message-expiry-interval 60 \
                      -D publish content-type text/plain \
                      -D publish response-topic props/reply \
                      -D publish correlation-data abc \
                      -D publish payload-format-indicator 1";
    let done = run(
        &mut mqtt(&format!(
            "pub {b} -t props/text -m hi -q 1 -V 5 {properties}"
        )),
        b"",
    );
    assert_eq!(done.code, Some(0), "{done:?}");
    let file = broker.dir().join("binary.bin");
    std::fs::write(&file, [0xff, 0x00, 0x01]).unwrap();
    let done = run(
        &mut mqtt(&format!("pub {b} -t props/bin -V 5 -f {}", file.display())),
        b"",
    );
    assert_eq!(done.code, Some(0), "{done:?}");

    // A 5.0 subscriber of the library sees the properties.
    let m = tokio::time::timeout(WAIT, v5_sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.properties.user_properties, [("k".into(), "v".into())]);
    assert_eq!(m.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(m.properties.response_topic.as_deref(), Some("props/reply"));
    assert_eq!(m.properties.correlation_data.as_deref(), Some(&b"abc"[..]));
    assert_eq!(m.properties.payload_format_indicator, Some(true));
    assert!(m
        .properties
        .message_expiry_interval
        .is_some_and(|s| s <= 60));

    // -j: one JSON object per line.
    let got = sub.wait(WAIT);
    assert_eq!(got.code, Some(0), "{got:?}");
    let text: serde_json::Value = serde_json::from_str(&got.stdout[0]).unwrap();
    assert_eq!(text["topic"], "props/text");
    assert_eq!(text["payload"], "hi");
    assert_eq!(text["encoding"], "utf8");
    assert_eq!(text["qos"], 1);
    assert_eq!(text["retain"], false);
    let props = &text["properties"];
    assert_eq!(props["user_properties"], serde_json::json!([["k", "v"]]));
    assert_eq!(props["content_type"], "text/plain");
    assert_eq!(props["correlation_data"], "YWJj");
    let bin: serde_json::Value = serde_json::from_str(&got.stdout[1]).unwrap();
    assert_eq!(bin["payload"], "/wAB");
    assert_eq!(bin["encoding"], "base64");

    // Properties need 5.0: a usage error (exit 1), as in mosquitto_pub.
    let refused = run(
        &mut mqtt(&format!("pub {b} -t x -m x -D publish content-type a")),
        b"",
    );
    assert_eq!(refused.code, Some(1), "{refused:?}");
}

#[test]
fn credentials_accepted_and_refused() {
    let broker = Broker::builder()
        .credentials("alice", "s3cret")
        .start()
        .expect("mosquitto");
    let b = at(&broker);
    let publish = |extra: &str| run(&mut mqtt(&format!("pub {b} -t auth -m x {extra}")), b"");
    assert_eq!(publish("-u alice -P s3cret").code, Some(0));
    assert_eq!(publish("-u alice -P s3cret -V 5").code, Some(0));
    // mosquitto's codes: the CONNACK return code (3.1.1) or reason code (5.0).
    let wrong = publish("-u alice -P wrong");
    assert_eq!(wrong.code, Some(5), "{wrong:?}");
    assert!(wrong.stderr.contains("refused"), "{}", wrong.stderr);
    assert_eq!(publish("-u alice -P wrong -V 5").code, Some(135));
    assert_eq!(publish("").code, Some(5));
    let url = format!("mqtt://alice:s3cret@127.0.0.1:{}/auth", broker.port());
    assert_eq!(
        run(&mut mqtt(&format!("pub -L {url} -m x")), b"").code,
        Some(0)
    );
}

#[test]
fn unreachable_broker_and_usage_errors() {
    // A port nobody listens on (bound, then released).
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = format!("-h 127.0.0.1 -p {}", free.local_addr().unwrap().port());
    drop(free);
    // Exit 1 for both, as mosquitto's clients.
    let gone = run(&mut mqtt(&format!("pub {b} -t x -m x")), b"");
    assert_eq!(gone.code, Some(1), "{gone:?}");
    assert_eq!(gone.stderr, "Error: Connection refused\n");
    let gone = run(&mut mqtt(&format!("sub {b} -t x")), b"");
    assert_eq!(gone.code, Some(1), "{gone:?}");
    for bad in [
        "pub -t x",                   // no message
        "pub -m x",                   // no topic
        "pub -t x -m x -n",           // two sources
        "pub -t x -m x -q 3",         // bad QoS
        "sub",                        // no topic
        "sub -t x -V mqttv6",         // bad version
        "sub -t x -x 10",             // expiry needs 5.0
        "sub -t a/#/b",               // misplaced wildcard
        "pub -t a/+ -m x",            // wildcard in a topic name
        "pub -t x -m x -D bogus a b", // unknown property command (and not 5.0)
    ] {
        let done = run(&mut mqtt(&format!("{bad} {b}")), b"");
        assert_eq!(done.code, Some(1), "{bad}: {done:?}");
        assert!(done.stderr.contains("--help"), "{bad}: {done:?}");
    }
    // -h is the host and needs a value, as in mosquitto.
    assert_eq!(run(&mut mqtt("sub -t x -h"), b"").code, Some(1));
}

#[test]
fn help_documents_every_flag_and_the_exit_codes() {
    let pub_help = run(&mut mqtt("pub --help"), b"");
    let sub_help = run(&mut mqtt("sub --help"), b"");
    let rr_help = run(&mut mqtt("rr --help"), b"");
    assert_eq!(
        (pub_help.code, sub_help.code, rr_help.code),
        (Some(0), Some(0), Some(0))
    );
    let (pub_help, sub_help) = (pub_help.stdout.join("\n"), sub_help.stdout.join("\n"));
    let rr_help = rr_help.stdout.join("\n");
    let common = [
        "-h, --host",
        "-p, --port",
        "-L, --url",
        "-i, --id",
        "-I, --id-prefix",
        "-u, --username",
        "-P, --pw",
        "-k, --keepalive",
        "-c, --disable-clean-session",
        "-x, --session-expiry-interval",
        "-V, --protocol-version",
        "-D, --property",
        "--will-topic",
        "--will-payload",
        "--will-qos",
        "--will-retain",
        "--cafile",
        "--capath",
        "--cert",
        "--key",
        "-q, --qos",
        "-d, --debug",
        "-A <ADDRESS>",
        "--unix",
        "--proxy",
        "--nodelay",
        "--no-reconnect",
        "--insecure",
        "--tls-version",
        "--quiet",
        "Exit codes",
        "27",
        "Differences from mosquitto",
        "Examples:",
    ];
    for flag in common {
        assert!(pub_help.contains(flag), "pub --help lacks {flag}");
        assert!(sub_help.contains(flag), "sub --help lacks {flag}");
        assert!(rr_help.contains(flag), "rr --help lacks {flag}");
    }
    for flag in [
        "-e, --response-topic",
        "-W, --timeout",
        "-F, --format",
        "-v, --verbose",
        "--pretty",
    ] {
        assert!(rr_help.contains(flag), "rr --help lacks {flag}");
    }
    let pub_only = [
        "-t, --topic",
        "-m, --message",
        "-f, --file",
        "-l, --stdin-line",
        "-n, --null-message",
        "-r, --retain",
        "-s, --stdin-file",
        "--repeat",
        "-M, --max-inflight",
    ];
    for flag in pub_only {
        assert!(pub_help.contains(flag), "pub --help lacks {flag}");
    }
    let sub_only = [
        "-t, --topic",
        "-C, --count",
        "-W, --timeout",
        "-v, --verbose",
        "-F, --format",
        "-j, --json",
        "-N, --no-eol",
        "-R, --no-retained",
        "-T, --filter-out",
        "-U, --unsubscribe",
        "-E, --exit-after-subscribe",
        "--retained-only",
        "--remove-retained",
        "--random-filter",
        "--pretty",
    ];
    for flag in sub_only {
        assert!(sub_help.contains(flag), "sub --help lacks {flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_when_the_client_is_killed() {
    let broker = broker();
    let b = at(&broker);
    let (_client, mut watcher) =
        tokio_subscriber(&broker.url(), "wills/#", ProtocolVersion::V5).await;
    for version in ["311", "5"] {
        let id = format!("willer-{version}");
        let will = format!("--will-topic wills/{version} --will-payload gone --will-qos 1");
        let child = subscribed(
            &broker,
            &id,
            &mut mqtt(&format!("sub {b} -t anything -i {id} -V {version} {will}")),
        );
        drop(child); // SIGKILL: no DISCONNECT.
        let got = tokio::time::timeout(WAIT, watcher.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.topic, format!("wills/{version}"));
        assert_eq!(&got.payload[..], b"gone");
    }
    // A normal exit (here -W) sends DISCONNECT: no will.
    let will = "--will-topic wills/clean --will-payload gone";
    let done = run(&mut mqtt(&format!("sub {b} -t anything -W 1 {will}")), b"");
    assert_eq!(done.code, Some(27));
    let none = tokio::time::timeout(Duration::from_millis(500), watcher.recv()).await;
    assert!(none.is_err(), "unexpected will: {none:?}");
}

#[test]
fn tls_with_cafile() {
    let broker = Broker::builder().tls().start().expect("mosquitto");
    let tls_port = broker.tls_port().unwrap();
    let ca = broker.dir().join("cli-ca.pem");
    std::fs::write(&ca, broker.tls().unwrap().ca_pem()).unwrap();
    let tls = format!("-h 127.0.0.1 -p {tls_port} --cafile {}", ca.display());
    let sub = subscribed(
        &broker,
        "tls-sub",
        &mut mqtt(&format!("sub {tls} -t secure -C 2 -i tls-sub -W 10")),
    );
    let done = run(
        &mut mqtt(&format!("pub {tls} -t secure -m over-tls -q 1")),
        b"",
    );
    assert_eq!(done.code, Some(0), "{done:?}");
    let url = format!("mqtts://127.0.0.1:{tls_port}/secure");
    let via_url = format!("pub -L {url} --cafile {} -m via-url", ca.display());
    let done = run(&mut mqtt(&via_url), b"");
    assert_eq!(done.code, Some(0), "{done:?}");
    let got = sub.wait(WAIT);
    assert_eq!(got.stdout, ["over-tls", "via-url"]);
    // With another CA the broker's certificate is not trusted: cannot connect.
    let other = broker.dir().join("other-ca.pem");
    std::fs::write(&other, TlsMaterial::generate().unwrap().ca_pem()).unwrap();
    let untrusted = format!("pub -L {url} --cafile {} -m x", other.display());
    let untrusted = run(&mut mqtt(&untrusted), b"");
    assert_eq!(untrusted.code, Some(1), "{untrusted:?}");
}

#[test]
fn interoperates_with_mosquitto_clients() {
    let broker = broker();
    let b = at(&broker);
    let format = "%t|%p|%q|%P";
    // mosquitto_sub receives our pub (3.1.1, and 5.0 with a user property).
    let theirs = subscribed(
        &broker,
        "mosq-sub",
        program(
            "mosquitto_sub",
            &format!("{b} -t interop/ours/# -i mosq-sub -V 5 -C 2 -W 10 -q 2 -F"),
        )
        .arg(format),
    );
    let ours311 = run(
        &mut mqtt(&format!("pub {b} -t interop/ours/a -m one -q 1")),
        b"",
    );
    assert_eq!(ours311.code, Some(0), "{ours311:?}");
    let ours5 = format!("pub {b} -t interop/ours/b -m two -q 2 -V 5");
    let ours5 = run(
        &mut mqtt(&format!("{ours5} -D publish user-property from mqtt")),
        b"",
    );
    assert_eq!(ours5.code, Some(0), "{ours5:?}");
    let got = theirs.wait(WAIT);
    assert_eq!(got.code, Some(0), "{got:?}");
    let want = ["interop/ours/a|one|1|", "interop/ours/b|two|2|from:mqtt"];
    assert_eq!(got.stdout, want);

    // Our sub receives mosquitto_pub (-l over stdin, and 5.0 properties).
    let ours = subscribed(
        &broker,
        "our-sub",
        mqtt(&format!(
            "sub {b} -t interop/theirs/# -i our-sub -V 5 -q 2 -C 3 -W 10 -F"
        ))
        .arg(format),
    );
    let mut lines = program("mosquitto_pub", &format!("{b} -t interop/theirs/l -l -q 1"));
    let lines = run(&mut lines, b"first\nsecond\n");
    assert_eq!(lines.code, Some(0), "{lines:?}");
    let props = format!("{b} -t interop/theirs/p -m x -q 2 -V 5 -D publish user-property k v");
    let props = run(&mut program("mosquitto_pub", &props), b"");
    assert_eq!(props.code, Some(0), "{props:?}");
    let got = ours.wait(WAIT);
    assert_eq!(got.code, Some(0), "{got:?}");
    let want = [
        "interop/theirs/l|first|1|",
        "interop/theirs/l|second|1|",
        "interop/theirs/p|x|2|k:v",
    ];
    assert_eq!(got.stdout, want);
}

/// A scripted 3.1.1 broker on a free port that accepts one connection and refuses its
/// subscriptions (SUBACK 0x80).
fn refusing_broker() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = stream;
        let Some((1, _connect)) = read_packet(&mut reader) else {
            return;
        };
        writer.write_all(&[0x20, 2, 0, 0]).unwrap();
        while let Some((kind, body)) = read_packet(&mut reader) {
            if kind == 8 {
                // Packet id, then one failure code for the test's single filter.
                let _ = writer.write_all(&[0x90, 3, body[0], body[1], 0x80]);
            }
        }
    });
    port
}

/// Reads one MQTT packet: its type and body.
fn read_packet(s: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 1];
    s.read_exact(&mut header).ok()?;
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).ok()?;
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((header[0] >> 4, body))
}

#[test]
fn refused_subscription_exits_0_as_mosquitto_sub() {
    // Measured: mosquitto_sub 2.0.11 prints the line and exits 0 against this broker.
    let port = refusing_broker();
    let done = run(
        &mut mqtt(&format!("sub -h 127.0.0.1 -p {port} -t denied -W 10")),
        b"",
    );
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_eq!(done.stderr, "All subscription requests were denied.\n");
}

#[test]
fn no_reconnect_exits_when_the_connection_is_lost() {
    let broker = broker();
    let b = at(&broker);
    let sub = subscribed(
        &broker,
        "noreco-sub",
        &mut mqtt(&format!("sub {b} -t x -i noreco-sub --no-reconnect")),
    );
    broker.kill().expect("kill the broker");
    let done = sub.wait(WAIT);
    assert_eq!(done.code, Some(1), "{done:?}");
    assert!(done.stderr.contains("connection was lost"), "{done:?}");
}

#[cfg(unix)]
#[test]
fn bind_address_and_unix_socket() {
    use std::os::unix::net::UnixListener;
    let broker = broker();
    let b = at(&broker);
    let sub = subscribed(
        &broker,
        "sock-sub",
        &mut mqtt(&format!(
            "sub {b} -t sock/# -i sock-sub -C 2 -W 10 -A 127.0.0.1"
        )),
    );
    // -A: the socket is bound to the loopback address.
    let done = run(
        &mut mqtt(&format!("pub {b} -A 127.0.0.1 -t sock/a -m bound")),
        b"",
    );
    assert_eq!(done.code, Some(0), "{done:?}");
    // --unix: a relay from a Unix socket of this test to the broker's TCP port; -h and -p
    // are ignored.
    let path = broker.dir().join("cli.sock");
    let listener = UnixListener::bind(&path).expect("bind unix socket");
    let port = broker.port();
    thread::spawn(move || {
        let Ok((mut unix, _)) = listener.accept() else {
            return;
        };
        let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let (mut unix2, mut tcp2) = (unix.try_clone().unwrap(), tcp.try_clone().unwrap());
        let up = thread::spawn(move || std::io::copy(&mut unix2, &mut tcp2));
        let _ = std::io::copy(&mut tcp, &mut unix);
        let _ = up.join();
    });
    let done = run(
        &mut mqtt(&format!(
            "pub -h nowhere.invalid --unix {} -t sock/b -m unix",
            path.display()
        )),
        b"",
    );
    assert_eq!(done.code, Some(0), "{done:?}");
    let got = sub.wait(WAIT);
    assert_eq!(got.stdout, ["bound", "unix"]);
}

#[test]
fn remove_retained_clears_what_it_prints() {
    let broker = broker();
    let b = at(&broker);
    for topic in ["rr/a", "rr/keep"] {
        let done = run(
            &mut mqtt(&format!("pub {b} -t {topic} -m old -r -q 1")),
            b"",
        );
        assert_eq!(done.code, Some(0), "{done:?}");
    }
    // -T keeps rr/keep; rr/a is printed and cleared.
    let done = run(
        &mut mqtt(&format!(
            "sub {b} -t rr/# -T rr/keep --remove-retained --retained-only -v -W 5"
        )),
        b"",
    );
    assert_eq!(done.stdout, ["rr/a old"], "{done:?}");
    let left = run(
        &mut mqtt(&format!("sub {b} -t rr/# --retained-only -v -C 2 -W 2")),
        b"",
    );
    assert_eq!(
        (left.code, left.stdout),
        (Some(27), vec!["rr/keep old".into()])
    );
}
