//! How `mqtt sub` prints a message: the payload, `-v`, `-j`, or a `-F` format.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use mqtt_client_tokio::{Message, Properties};
use serde_json::{json, Map, Value};

/// The output style of `mqtt sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The payload (`topic payload` with `-v`), as mosquitto_sub prints it.
    Plain {
        /// `-v`.
        verbose: bool,
    },
    /// `-j`: one JSON object per message.
    Json,
    /// `-F`: a mosquitto_sub format string.
    Format(String),
}

impl Output {
    /// Appends `message` to `out`, with a newline unless `no_eol`.
    pub fn render(&self, message: &Message, no_eol: bool, out: &mut Vec<u8>) {
        match self {
            Self::Plain { verbose } => {
                if *verbose {
                    out.extend_from_slice(message.topic.as_bytes());
                    out.push(b' ');
                    if message.payload.is_empty() {
                        out.extend_from_slice(b"(null)");
                    }
                }
                out.extend_from_slice(&message.payload);
            }
            Self::Json => out.extend_from_slice(json_line(message).as_bytes()),
            Self::Format(format) => render_format(format, message, out),
        }
        if !no_eol {
            out.push(b'\n');
        }
    }
}

/// The `-j` object: topic, qos, retain, dup, payload with its encoding, properties.
pub fn json_line(message: &Message) -> String {
    let (payload, encoding) = match message.payload_str() {
        Some(text) => (text.to_string(), "utf8"),
        None => (BASE64.encode(&message.payload), "base64"),
    };
    json!({
        "topic": message.topic,
        "qos": message.qos as u8,
        "retain": message.retain,
        "dup": message.dup,
        "payload": payload,
        "encoding": encoding,
        "properties": properties_json(&message.properties),
    })
    .to_string()
}

/// The 5.0 properties that are present, snake_case keys.
fn properties_json(p: &Properties) -> Value {
    let mut m = Map::new();
    if let Some(v) = p.payload_format_indicator {
        m.insert("payload_format_indicator".into(), json!(u8::from(v)));
    }
    if let Some(v) = p.message_expiry_interval {
        m.insert("message_expiry_interval".into(), json!(v));
    }
    if let Some(v) = &p.content_type {
        m.insert("content_type".into(), json!(v));
    }
    if let Some(v) = &p.response_topic {
        m.insert("response_topic".into(), json!(v));
    }
    if let Some(v) = &p.correlation_data {
        m.insert("correlation_data".into(), json!(BASE64.encode(v)));
    }
    if !p.user_properties.is_empty() {
        m.insert("user_properties".into(), json!(p.user_properties));
    }
    if !p.subscription_identifiers.is_empty() {
        let ids: Vec<u32> = p
            .subscription_identifiers
            .iter()
            .map(|id| id.get())
            .collect();
        m.insert("subscription_identifiers".into(), json!(ids));
    }
    Value::Object(m)
}

/// mosquitto_sub's `%j` (payload as text, or base64 with `base64`) object.
fn mosquitto_json(message: &Message, base64: bool) -> String {
    let mut m = Map::new();
    m.insert("tst".into(), json!(iso8601(SystemTime::now())));
    m.insert("topic".into(), json!(message.topic));
    m.insert("qos".into(), json!(message.qos as u8));
    m.insert("retain".into(), json!(u8::from(message.retain)));
    m.insert("payloadlen".into(), json!(message.payload.len()));
    let p = &message.properties;
    let mut props = Map::new();
    if !p.user_properties.is_empty() {
        let users: Map<String, Value> = p
            .user_properties
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        props.insert("user-properties".into(), Value::Object(users));
    }
    if let Some(v) = &p.content_type {
        props.insert("content-type".into(), json!(v));
    }
    if let Some(v) = &p.response_topic {
        props.insert("response-topic".into(), json!(v));
    }
    if let Some(v) = p.message_expiry_interval {
        props.insert("message-expiry-interval".into(), json!(v));
    }
    if !props.is_empty() {
        m.insert("properties".into(), Value::Object(props));
    }
    let payload = match (base64, message.payload_str()) {
        (false, Some(text)) => json!(text),
        _ => json!(BASE64.encode(&message.payload)),
    };
    m.insert("payload".into(), payload);
    Value::Object(m).to_string()
}

/// Expands a `-F` format string.
fn render_format(format: &str, m: &Message, out: &mut Vec<u8>) {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some(spec) => conversion(spec, m, out),
                None => out.push(b'%'),
            },
            '\\' => match chars.next() {
                Some(e) => push_char(out, escape(e)),
                None => out.push(b'\\'),
            },
            c => push_char(out, c),
        }
    }
}

fn conversion(spec: char, m: &Message, out: &mut Vec<u8>) {
    let p = &m.properties;
    let text = match spec {
        '%' => "%".to_string(),
        't' => m.topic.clone(),
        'p' => return out.extend_from_slice(&m.payload),
        'x' => hex(&m.payload, false),
        'X' => hex(&m.payload, true),
        'l' => m.payload.len().to_string(),
        'q' => (m.qos as u8).to_string(),
        'r' => u8::from(m.retain).to_string(),
        'm' => m.packet_id().map_or(0, |id| id.get()).to_string(),
        'j' => mosquitto_json(m, false),
        'J' => mosquitto_json(m, true),
        'I' => iso8601(SystemTime::now()),
        'U' => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
        }
        'C' => p.content_type.clone().unwrap_or_default(),
        'D' => return out.extend_from_slice(p.correlation_data.as_deref().unwrap_or_default()),
        'E' => p
            .message_expiry_interval
            .map(|v| v.to_string())
            .unwrap_or_default(),
        'F' => p
            .payload_format_indicator
            .map(|v| u8::from(v).to_string())
            .unwrap_or_default(),
        'P' => p
            .user_properties
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(" "),
        'R' => p.response_topic.clone().unwrap_or_default(),
        'S' => p
            .subscription_identifiers
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(","),
        other => format!("%{other}"),
    };
    out.extend_from_slice(text.as_bytes());
}

fn escape(e: char) -> char {
    match e {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\x07',
        'e' => '\x1b',
        'v' => '\x0b',
        '0' => '\0',
        other => other,
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn hex(bytes: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = if upper {
            write!(s, "{b:02X}")
        } else {
            write!(s, "{b:02x}")
        };
    }
    s
}

/// `2024-05-01T12:34:56.789012Z+0000`, as mosquitto_sub prints `tst`.
fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z+0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use mqtt_client_tokio::QoS;

    use super::*;

    fn message(payload: &'static [u8]) -> Message {
        let props = Properties::default().user_property("k", "v");
        Message::new("a/b", payload, QoS::AtLeastOnce)
            .retain(true)
            .properties(props)
    }

    fn render(output: Output, m: &Message) -> String {
        let mut out = Vec::new();
        output.render(m, false, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_and_verbose_match_mosquitto_sub() {
        let m = message(b"hi");
        assert_eq!(render(Output::Plain { verbose: false }, &m), "hi\n");
        assert_eq!(render(Output::Plain { verbose: true }, &m), "a/b hi\n");
        let empty = message(b"");
        assert_eq!(
            render(Output::Plain { verbose: true }, &empty),
            "a/b (null)\n"
        );
    }

    #[test]
    fn json_has_text_or_base64_payload_and_properties() {
        let v: Value = serde_json::from_str(&json_line(&message(b"hi"))).unwrap();
        assert_eq!(v["topic"], "a/b");
        assert_eq!(v["payload"], "hi");
        assert_eq!(v["encoding"], "utf8");
        assert_eq!(v["qos"], 1);
        assert_eq!(v["retain"], true);
        assert_eq!(v["properties"]["user_properties"], json!([["k", "v"]]));
        let v: Value = serde_json::from_str(&json_line(&message(b"\xff\x00"))).unwrap();
        assert_eq!(v["payload"], "/wA=");
        assert_eq!(v["encoding"], "base64");
    }

    #[test]
    fn format_conversions_and_escapes() {
        let m = message(b"\x01\xab");
        let out = render(Output::Format(r"%t|%x|%X|%l|%q|%r|%P|%%|\t".into()), &m);
        assert_eq!(out, "a/b|01ab|01AB|2|1|1|k:v|%|\t\n");
        let j: Value =
            serde_json::from_str(render(Output::Format("%j".into()), &message(b"x")).trim_end())
                .unwrap();
        assert_eq!(j["payload"], "x");
        assert_eq!(j["properties"]["user-properties"]["k"], "v");
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
