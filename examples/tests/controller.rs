//! The `controller` binary against a private mosquitto with credentials, driving a fake LED
//! device: a small mqtt-client-tokio responder that answers `devices/<id>/led/set` with a
//! retained `devices/<id>/led/state`, as the real device does. Every child process and wait is
//! bounded.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mqtt_client_tokio::{Client, Options, QoS};
use mqtt_test_support::Broker;
use tokio::task::JoinHandle;

const USER: &str = "ctl";
const PASSWORD: &str = "s3cret";
/// Upper bound of a controller run.
const WAIT: Duration = Duration::from_secs(20);

/// How the fake device reacts to commands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Applies them, as the real device.
    Obedient,
    /// Reports `off` whatever it is told.
    Stuck,
}

/// A fake device `id`: retained `online` status and LED state, telemetry, command handling.
async fn fake_device(broker: &Broker, id: &str, led: bool, behaviour: Behaviour) -> JoinHandle<()> {
    let mut options = Options::new(&broker.url()).unwrap();
    options.protocol.username = Some(USER.into());
    options.protocol.password = Some(PASSWORD.into());
    let (client, _events) = Client::connect(options).await.expect("device connects");
    let prefix = format!("devices/{id}");
    let mut commands = client
        .subscribe(format!("{prefix}/led/set"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let state = |on: bool| if on { "on" } else { "off" };
    let publish = move |topic: String, payload: &'static str, retain: bool| {
        let client = client.clone();
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, retain, payload)
                .await
                .unwrap();
        }
    };
    publish(format!("{prefix}/status"), "online", true).await;
    publish(format!("{prefix}/led/state"), state(led), true).await;
    tokio::spawn(async move {
        let mut led = led;
        let mut telemetry = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    led = match (&command.payload[..], behaviour) {
                        (_, Behaviour::Stuck) => false,
                        (b"on", _) => true,
                        (b"off", _) => false,
                        (b"toggle", _) => !led,
                        _ => led,
                    };
                    publish(format!("{prefix}/led/state"), state(led), true).await;
                }
                _ = telemetry.tick() => {
                    publish(format!("{prefix}/telemetry"), r#"{"uptime_s":1}"#, false).await;
                }
            }
        }
    })
}

/// Runs the controller with the broker's URL and credentials, then `args`.
fn controller(broker: &Broker, args: &str) -> (Option<i32>, String) {
    let url = broker.url();
    run(&format!(
        "--broker {url} --username {USER} --password {PASSWORD} {args}"
    ))
}

/// Runs the controller to its end (killed and failed after `WAIT`); exit code and stdout.
fn run(args: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args(args.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn controller");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("controller {args} still running after {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("controller {args}: {status}\n{out}{err}");
    (status.code(), out)
}

fn broker() -> Broker {
    Broker::builder()
        .credentials(USER, PASSWORD)
        .start()
        .expect("mosquitto (apt-get install mosquitto)")
}

/// `controller` runs block; the fake device needs the runtime's worker threads meanwhile.
async fn run_controller(broker: &Broker, args: &str) -> (Option<i32>, String) {
    tokio::task::block_in_place(|| controller(broker, args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_off_toggle_wait_for_the_reported_state() {
    let broker = broker();
    let device = fake_device(&broker, "lamp-1", false, Behaviour::Obedient).await;
    let (code, out) = run_controller(&broker, "--id lamp-1 on").await;
    assert_eq!(code, Some(0));
    assert!(out.contains("status: online (retained)"), "{out}");
    assert!(out.contains("led/state: off (retained)"), "{out}");
    assert!(out.trim_end().ends_with("led/state: on"), "{out}");

    let (code, out) = run_controller(&broker, "--id lamp-1 toggle").await;
    assert_eq!(code, Some(0));
    assert!(out.trim_end().ends_with("led/state: off"), "{out}");

    let (code, out) = run_controller(&broker, "--id lamp-1 toggle --mqtt311").await;
    assert_eq!(code, Some(0));
    assert!(out.trim_end().ends_with("led/state: on"), "{out}");

    let (code, out) = run_controller(&broker, "--id lamp-1 off").await;
    assert_eq!(code, Some(0));
    assert!(out.trim_end().ends_with("led/state: off"), "{out}");
    device.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_status_state_and_telemetry() {
    let broker = broker();
    let device = fake_device(&broker, "lamp-2", true, Behaviour::Obedient).await;
    let (code, out) = run_controller(&broker, "--id lamp-2 watch --count 3").await;
    assert_eq!(code, Some(0));
    assert!(out.contains("status: online (retained)"), "{out}");
    assert!(out.contains("led/state: on (retained)"), "{out}");
    assert!(out.contains(r#"telemetry: {"uptime_s":1}"#), "{out}");
    device.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_device_wrong_state_and_bad_credentials() {
    let broker = broker();
    // Nobody answers: exit 5 after the timeout.
    let start = Instant::now();
    let (code, _) = run_controller(&broker, "--id nobody on --timeout 1").await;
    assert_eq!(code, Some(5));
    assert!(start.elapsed() < Duration::from_secs(10));
    // The device reports another state: exit 6.
    let device = fake_device(&broker, "stuck", false, Behaviour::Stuck).await;
    let (code, out) = run_controller(&broker, "--id stuck on").await;
    assert_eq!(code, Some(6), "{out}");
    device.abort();
    // Wrong password: exit 4; no broker: exit 3; bad device id or command: exit 2.
    let url = broker.url();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("mqtt://127.0.0.1:{}", free.local_addr().unwrap().port());
    drop(free);
    for (args, want) in [
        (
            format!("--broker {url} --username {USER} --password wrong --id x on"),
            4,
        ),
        (format!("--broker {nobody} --id x on"), 3),
        (format!("--broker {url} --id a/b on"), 2),
        ("--id x blink".to_string(), 2),
    ] {
        let (code, _) = tokio::task::block_in_place(|| run(&args));
        assert_eq!(code, Some(want), "{args}");
    }
}
