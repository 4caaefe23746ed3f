//! The device state machine, driven through its public API as the firmware drives it.

use led_device::{
    Config, Device, DeviceId, Outgoing, PlatformInfo, Qos, Reaction, Subscription, MAX_ID_LEN,
};

const MAC: [u8; 6] = [0x24, 0x6f, 0x28, 0xa1, 0xb2, 0xc3];
const SET: &str = "devices/esp32-a1b2c3/led/set";
const STATE: &str = "devices/esp32-a1b2c3/led/state";
const STATUS: &str = "devices/esp32-a1b2c3/status";
const ERROR: &str = "devices/esp32-a1b2c3/led/error";
const TELEMETRY: &str = "devices/esp32-a1b2c3/telemetry";
const NO_INFO: PlatformInfo = PlatformInfo {
    free_heap: None,
    rssi: None,
};

fn device() -> Device {
    Device::new(DeviceId::from_mac(MAC), Config::default())
}

fn device_with(config: Config) -> Device {
    Device::new(DeviceId::from_mac(MAC), config)
}

/// An owned copy of an outgoing message, so tests can hold several.
#[derive(Debug, PartialEq, Eq)]
struct Msg {
    topic: String,
    payload: String,
    qos: Qos,
    retain: bool,
}

impl From<Outgoing<'_>> for Msg {
    fn from(m: Outgoing<'_>) -> Self {
        Msg {
            topic: m.topic.into(),
            payload: String::from_utf8(m.payload.to_vec()).unwrap(),
            qos: m.qos,
            retain: m.retain,
        }
    }
}

fn msg(topic: &str, payload: &str, qos: Qos, retain: bool) -> Msg {
    Msg {
        topic: topic.into(),
        payload: payload.into(),
        qos,
        retain,
    }
}

fn connect(device: &mut Device, now: u64) -> Vec<Msg> {
    device.on_connected(now).map(Msg::from).collect()
}

fn send(device: &mut Device, payload: &[u8]) -> (Option<bool>, Option<Msg>) {
    let Reaction { led, publish } = device.on_message(SET, payload);
    (led, publish.map(Msg::from))
}

// ---- identity and topics ----

#[test]
fn client_id_and_topics_derive_from_the_mac() {
    let mut d = device();
    assert_eq!(d.client_id(), "esp32-a1b2c3");
    assert_eq!(d.id().as_str(), "esp32-a1b2c3");
    assert_eq!(d.will().topic, STATUS);
    assert_eq!(d.subscriptions()[0].filter, SET);
    assert_eq!(d.on_message(SET, b"on").publish.unwrap().topic, STATE);
    assert_eq!(d.on_message(SET, b"x").publish.unwrap().topic, ERROR);
    d.on_connected(0).for_each(drop);
    assert_eq!(d.poll_telemetry(0, NO_INFO).unwrap().topic, TELEMETRY);
}

#[test]
fn a_custom_id_of_maximum_length_fits_every_topic() {
    let id = "x".repeat(MAX_ID_LEN);
    let mut d = Device::new(DeviceId::new(&id).unwrap(), Config::default());
    assert_eq!(d.will().topic, format!("devices/{id}/status"));
    assert_eq!(d.subscriptions()[0].filter, format!("devices/{id}/led/set"));
    let set = format!("devices/{id}/led/set");
    assert_eq!(
        d.on_message(&set, b"nope").publish.unwrap().topic,
        format!("devices/{id}/led/error")
    );
    assert_eq!(
        d.on_message(&set, b"on").publish.unwrap().topic,
        format!("devices/{id}/led/state")
    );
    d.on_connected(0).for_each(drop);
    assert_eq!(
        d.poll_telemetry(0, NO_INFO).unwrap().topic,
        format!("devices/{id}/telemetry")
    );
}

// ---- will, connect, subscriptions ----

#[test]
fn will_is_offline_retained_qos1() {
    assert_eq!(
        Msg::from(device().will()),
        msg(STATUS, "offline", Qos::AtLeastOnce, true)
    );
}

#[test]
fn subscribes_to_the_command_topic_at_qos1() {
    assert_eq!(
        device().subscriptions(),
        [Subscription {
            filter: SET,
            qos: Qos::AtLeastOnce
        }]
    );
}

#[test]
fn on_connected_publishes_online_then_led_state_retained() {
    let mut d = device();
    assert!(!d.is_connected());
    assert_eq!(
        connect(&mut d, 5),
        [
            msg(STATUS, "online", Qos::AtLeastOnce, true),
            msg(STATE, "off", Qos::AtLeastOnce, true),
        ]
    );
    assert!(d.is_connected());
}

#[test]
fn initial_led_state_comes_from_config() {
    let mut d = device_with(Config {
        initial_led: true,
        ..Config::default()
    });
    assert!(d.led());
    assert_eq!(connect(&mut d, 0)[1].payload, "on");
}

#[test]
fn every_reconnect_republishes_status_and_the_current_state() {
    let mut d = device();
    connect(&mut d, 0);
    send(&mut d, b"on");
    d.on_disconnected();
    assert!(!d.is_connected());
    assert_eq!(
        connect(&mut d, 60_000),
        [
            msg(STATUS, "online", Qos::AtLeastOnce, true),
            msg(STATE, "on", Qos::AtLeastOnce, true),
        ]
    );
    d.on_disconnected();
    send(&mut d, b"toggle");
    assert_eq!(connect(&mut d, 120_000)[1].payload, "off");
}

// ---- commands ----

#[test]
fn on_off_toggle_switch_the_led_and_publish_the_state_retained() {
    let mut d = device();
    connect(&mut d, 0);
    let state = |p: &str| Some(msg(STATE, p, Qos::AtLeastOnce, true));
    assert_eq!(send(&mut d, b"on"), (Some(true), state("on")));
    assert!(d.led());
    assert_eq!(send(&mut d, b"off"), (Some(false), state("off")));
    assert_eq!(send(&mut d, b"toggle"), (Some(true), state("on")));
    assert_eq!(send(&mut d, b"toggle"), (Some(false), state("off")));
    assert!(!d.led());
}

#[test]
fn commands_are_trimmed_and_case_insensitive() {
    let mut d = device();
    assert_eq!(send(&mut d, b"  ON \r\n").0, Some(true));
    assert_eq!(send(&mut d, b"\tOff").0, Some(false));
    assert_eq!(send(&mut d, b"Toggle\n").0, Some(true));
}

#[test]
fn repeating_a_command_confirms_the_unchanged_state() {
    let mut d = device();
    send(&mut d, b"on");
    assert_eq!(
        send(&mut d, b"on"),
        (Some(true), Some(msg(STATE, "on", Qos::AtLeastOnce, true)))
    );
}

#[test]
fn unknown_commands_leave_the_led_and_are_reported_on_the_error_topic() {
    let mut d = device();
    send(&mut d, b"on");
    assert_eq!(
        send(&mut d, b" blink\n"),
        (
            None,
            Some(msg(
                ERROR,
                "unknown command \"blink\" (expected on, off or toggle)",
                Qos::AtMostOnce,
                false
            ))
        )
    );
    assert!(d.led());
}

#[test]
fn error_reports_do_not_echo_binary_empty_or_long_payloads() {
    let generic = "unknown command (expected on, off or toggle)";
    let mut d = device();
    for payload in [&b""[..], b"  ", b"\xff\xfe", b"bad\x07", &[b'a'; 25]] {
        assert_eq!(
            send(&mut d, payload).1.unwrap().payload,
            generic,
            "{payload:?}"
        );
    }
    let longest_echoed = "a".repeat(24);
    assert!(send(&mut d, longest_echoed.as_bytes())
        .1
        .unwrap()
        .payload
        .contains(&longest_echoed));
}

#[test]
fn unknown_commands_are_only_counted_when_reporting_is_off() {
    let mut d = device_with(Config {
        report_rejected: false,
        ..Config::default()
    });
    assert!(d.on_message(SET, b"blink").is_none());
    assert_eq!(d.messages_rejected(), 1);
    assert_eq!(d.messages_handled(), 1);
}

#[test]
fn messages_on_other_topics_are_ignored_and_not_counted() {
    let mut d = device();
    for topic in [
        STATE,
        STATUS,
        "devices/esp32-000000/led/set",
        "devices/esp32-a1b2c3/led/set/",
        "devices/esp32-a1b2c3/LED/set",
    ] {
        assert_eq!(d.on_message(topic, b"on"), Reaction::NONE, "{topic}");
    }
    assert!(!d.led());
    assert_eq!(d.messages_handled(), 0);
}

#[test]
fn counters_track_handled_and_rejected_messages() {
    let mut d = device();
    send(&mut d, b"on");
    send(&mut d, b"nope");
    send(&mut d, b"off");
    d.on_message(STATE, b"on");
    assert_eq!(d.messages_handled(), 3);
    assert_eq!(d.messages_rejected(), 1);
}

// ---- telemetry ----

#[test]
fn no_telemetry_before_connecting_or_after_disconnecting() {
    let mut d = device();
    assert_eq!(d.next_telemetry_at(), None);
    assert!(d.poll_telemetry(1_000_000, NO_INFO).is_none());
    connect(&mut d, 0);
    d.on_disconnected();
    assert_eq!(d.next_telemetry_at(), None);
    assert!(d.poll_telemetry(1_000_000, NO_INFO).is_none());
}

#[test]
fn first_telemetry_right_after_connect_then_every_interval() {
    let mut d = device_with(Config {
        telemetry_interval_ms: 10_000,
        ..Config::default()
    });
    connect(&mut d, 3_000);
    assert_eq!(d.next_telemetry_at(), Some(3_000));
    assert!(d.poll_telemetry(2_999, NO_INFO).is_none());
    assert!(d.poll_telemetry(3_000, NO_INFO).is_some());
    assert_eq!(d.next_telemetry_at(), Some(13_000));
    assert!(d.poll_telemetry(3_001, NO_INFO).is_none());
    assert!(d.poll_telemetry(12_999, NO_INFO).is_none());
    // Polled a little late: the cadence stays on the 10 s grid.
    assert!(d.poll_telemetry(13_400, NO_INFO).is_some());
    assert_eq!(d.next_telemetry_at(), Some(23_000));
}

#[test]
fn late_polls_skip_missed_telemetry_instead_of_bursting() {
    let mut d = device_with(Config {
        telemetry_interval_ms: 10_000,
        ..Config::default()
    });
    connect(&mut d, 0);
    assert!(d.poll_telemetry(0, NO_INFO).is_some());
    assert!(d.poll_telemetry(35_000, NO_INFO).is_some());
    assert_eq!(d.next_telemetry_at(), Some(45_000));
    assert!(d.poll_telemetry(35_001, NO_INFO).is_none());
}

#[test]
fn reconnect_restarts_the_telemetry_schedule() {
    let mut d = device_with(Config {
        telemetry_interval_ms: 10_000,
        ..Config::default()
    });
    connect(&mut d, 0);
    d.poll_telemetry(0, NO_INFO);
    d.on_disconnected();
    connect(&mut d, 4_000);
    assert_eq!(d.next_telemetry_at(), Some(4_000));
    assert!(d.poll_telemetry(4_000, NO_INFO).is_some());
}

#[test]
fn zero_interval_turns_telemetry_off() {
    let mut d = device_with(Config {
        telemetry_interval_ms: 0,
        ..Config::default()
    });
    connect(&mut d, 0);
    assert_eq!(d.next_telemetry_at(), None);
    assert!(d.poll_telemetry(u64::MAX, NO_INFO).is_none());
}

#[test]
fn telemetry_is_json_qos0_not_retained_with_uptime_counters_and_platform_values() {
    let mut d = device();
    connect(&mut d, 0);
    send(&mut d, b"on");
    send(&mut d, b"???");
    d.poll_telemetry(0, NO_INFO);
    let info = PlatformInfo {
        free_heap: Some(51_200),
        rssi: Some(-61),
    };
    assert_eq!(
        Msg::from(d.poll_telemetry(61_999, info).unwrap()),
        msg(
            TELEMETRY,
            r#"{"uptime_s":61,"messages":2,"rejected":1,"led":"on","free_heap":51200,"rssi":-61}"#,
            Qos::AtMostOnce,
            false
        )
    );
}

#[test]
fn telemetry_without_platform_values_leaves_them_out() {
    let mut d = device();
    connect(&mut d, 2_500);
    assert_eq!(
        d.poll_telemetry(2_500, NO_INFO).unwrap().payload,
        br#"{"uptime_s":2,"messages":0,"rejected":0,"led":"off"}"#
    );
}

#[test]
fn telemetry_schedule_survives_a_clock_near_its_end() {
    let mut d = device();
    connect(&mut d, u64::MAX - 1);
    assert!(d.poll_telemetry(u64::MAX - 1, NO_INFO).is_some());
    assert_eq!(d.next_telemetry_at(), Some(u64::MAX));
}
