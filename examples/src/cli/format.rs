//! How `mqtt sub` prints a message: the payload, `-v`, `-j`, or a `-F` format.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use mqtt_client_tokio::{Message, Properties};
use serde_json::{json, Map, Value};

use super::cjson::{num, object, Json};
use super::time::Now;

/// The output style of `mqtt sub` and `mqtt rr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The payload (`topic payload` with `-v`), as mosquitto_sub prints it.
    Plain {
        /// `-v`.
        verbose: bool,
    },
    /// `-j`: one JSON object per message (indented with `--pretty`).
    Json {
        /// `--pretty`.
        pretty: bool,
    },
    /// `-F`: a mosquitto_sub format string.
    Format(Format),
}

impl Output {
    /// Appends `message` to `out`, with a newline unless `no_eol`, exactly as mosquitto_sub
    /// prints it (an empty payload prints nothing without `-v`). Returns an error to print
    /// on stderr (`%J` of a payload that is not JSON).
    pub fn render(&self, message: &Message, no_eol: bool, out: &mut Vec<u8>) -> Option<String> {
        let mut warning = None;
        match self {
            Self::Plain { verbose: true } => {
                if !message.payload.is_empty() {
                    out.extend_from_slice(message.topic.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(&message.payload);
                } else if !no_eol {
                    out.extend_from_slice(message.topic.as_bytes());
                    out.extend_from_slice(b" (null)");
                } else {
                    return None;
                }
            }
            Self::Plain { verbose: false } => {
                if message.payload.is_empty() {
                    return None;
                }
                out.extend_from_slice(&message.payload);
            }
            Self::Json { pretty } => out.extend_from_slice(json_line(message, *pretty).as_bytes()),
            Self::Format(format) => warning = format.render(message, out),
        }
        if !no_eol {
            out.push(b'\n');
        }
        warning
    }
}

/// The `-j` object: topic, qos, retain, dup, payload with its encoding, properties.
pub fn json_line(message: &Message, pretty: bool) -> String {
    let (payload, encoding) = match message.payload_str() {
        Some(text) => (text.to_string(), "utf8"),
        None => (BASE64.encode(&message.payload), "base64"),
    };
    let value = json!({
        "topic": message.topic,
        "qos": message.qos as u8,
        "retain": message.retain,
        "dup": message.dup,
        "payload": payload,
        "encoding": encoding,
        "properties": properties_json(&message.properties),
    });
    if pretty {
        serde_json::to_string_pretty(&value).unwrap_or_default()
    } else {
        value.to_string()
    }
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

/// mosquitto_sub's `%j` (`escaped`: the payload as a string) or `%J` (the payload embedded
/// as JSON; `None` when it is not valid JSON) object.
fn mosquitto_json(message: &Message, now: &Now, escaped: bool) -> Option<Json> {
    let mut root = vec![
        ("tst", Json::String(now.json_timestamp().into_bytes())),
        ("topic", Json::c_string(message.topic.as_bytes())),
        ("qos", num(message.qos as u8)),
        ("retain", num(u8::from(message.retain))),
        ("payloadlen", num(message.payload.len() as f64)),
    ];
    if let Some(id) = message.packet_id() {
        root.push(("mid", num(id.get())));
    }
    let p = &message.properties;
    let mut props = Vec::new();
    // The order in which this workspace's codec encodes them, so that a message published by
    // `mqtt pub` prints the same here and in mosquitto_sub (which keeps the wire order).
    if let Some(v) = p.payload_format_indicator {
        props.push(("payload-format-indicator", num(u8::from(v))));
    }
    if let Some(v) = p.message_expiry_interval {
        props.push(("message-expiry-interval", num(v)));
    }
    if let Some(v) = &p.response_topic {
        props.push(("response-topic", Json::c_string(v.as_bytes())));
    }
    if let Some(v) = &p.correlation_data {
        props.push(("correlation-data", Json::c_string(v)));
    }
    if let Some(v) = &p.content_type {
        props.push(("content-type", Json::c_string(v.as_bytes())));
    }
    for id in &p.subscription_identifiers {
        props.push(("subscription-identifier", num(id.get())));
    }
    if !p.user_properties.is_empty() {
        let users = Json::Object(
            p.user_properties
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), Json::c_string(v.as_bytes())))
                .collect(),
        );
        props.push(("user-properties", users));
    }
    if !props.is_empty() {
        root.push(("properties", object(props)));
    }
    let payload = match (message.payload.is_empty(), escaped) {
        (true, _) => Json::Null,
        (false, true) => Json::c_string(&message.payload),
        (false, false) => Json::parse(&message.payload)?,
    };
    root.push(("payload", payload));
    Some(object(root))
}

/// A `-F` format, checked when the command line is read (as mosquitto_sub does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
    /// `--pretty`: indent `%j` and `%J`.
    pub pretty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Bytes printed as they are (escapes already replaced).
    Literal(Vec<u8>),
    /// `%[-][0][width][.precision]c`.
    Field(Field),
    /// `@c`: `strftime("%c")` of the time the message arrived (`@N`: nanoseconds).
    Time(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    conversion: char,
    left: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

/// The conversions mosquitto_sub 2.0 knows.
const CONVERSIONS: &str = "%ACDEFIjJlmPpqRrStUxX";

impl Format {
    /// Parses a mosquitto_sub format string.
    ///
    /// # Errors
    /// mosquitto_sub's message for an unknown or incomplete `%` conversion or `\` escape.
    pub fn parse(format: &str, pretty: bool) -> Result<Self, String> {
        let chars: Vec<char> = format.chars().collect();
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            match c {
                '%' => {
                    let mut field = Field {
                        conversion: '%',
                        left: false,
                        zero: false,
                        width: 0,
                        precision: None,
                    };
                    if chars.get(i) == Some(&'-') {
                        field.left = true;
                        i += 1;
                    }
                    if chars.get(i) == Some(&'0') {
                        field.zero = true;
                        i += 1;
                    }
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        field.width = field.width.saturating_mul(10).saturating_add(d as usize);
                        i += 1;
                    }
                    if chars.get(i) == Some(&'.') {
                        i += 1;
                        let mut precision = 0usize;
                        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                            precision = precision.saturating_mul(10).saturating_add(d as usize);
                            i += 1;
                        }
                        field.precision = Some(precision);
                    }
                    let Some(&conversion) = chars.get(i) else {
                        return Err("Error: Incomplete format specifier.".into());
                    };
                    i += 1;
                    if !CONVERSIONS.contains(conversion) {
                        return Err(format!("Error: Invalid format specifier '{conversion}'."));
                    }
                    field.conversion = conversion;
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    pieces.push(Piece::Field(field));
                }
                '@' => {
                    let Some(&spec) = chars.get(i) else {
                        return Err("Error: Incomplete format specifier.".into());
                    };
                    i += 1;
                    if spec == '@' {
                        literal.push(b'@');
                    } else {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                        pieces.push(Piece::Time(spec));
                    }
                }
                '\\' => {
                    let Some(&e) = chars.get(i) else {
                        return Err("Error: Incomplete escape specifier.".into());
                    };
                    i += 1;
                    let byte = match e {
                        '\\' => b'\\',
                        '0' => 0,
                        'a' => 0x07,
                        'e' => 0x1b,
                        'n' => b'\n',
                        'r' => b'\r',
                        't' => b'\t',
                        'v' => 0x0b,
                        other => return Err(format!("Error: Invalid escape specifier '{other}'.")),
                    };
                    literal.push(byte);
                }
                c => push_char(&mut literal, c),
            }
        }
        pieces.push(Piece::Literal(literal));
        pieces.retain(|p| !matches!(p, Piece::Literal(l) if l.is_empty()));
        Ok(Self { pieces, pretty })
    }

    /// Expands the format for `m`; returns the error to print on stderr when `%J` finds a
    /// payload that is not JSON (the rest of the line is still printed, as mosquitto does).
    fn render(&self, m: &Message, out: &mut Vec<u8>) -> Option<String> {
        let now = Now::read();
        let mut warning = None;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Time('N') => out.extend_from_slice(format!("{:09}", now.nanos).as_bytes()),
                Piece::Time(c) => out.extend_from_slice(now.strftime(&format!("%{c}")).as_bytes()),
                Piece::Field(f) => {
                    if let Some(w) = field(*f, m, &now, self.pretty, out) {
                        warning = Some(w);
                    }
                }
            }
        }
        warning
    }
}

/// One `%` conversion, with mosquitto_sub's (sometimes surprising) width rules.
fn field(f: Field, m: &Message, now: &Now, pretty: bool, out: &mut Vec<u8>) -> Option<String> {
    let p = &m.properties;
    let pad = if f.zero { b'0' } else { b' ' };
    match f.conversion {
        '%' => out.push(b'%'),
        // Topic aliases are resolved by the client: there is never one to print.
        'A' => blank(pad, f.width, out),
        'C' => match &p.content_type {
            Some(v) => string(v.as_bytes(), f, out),
            None => blank(b' ', f.width, out),
        },
        'D' => out.extend_from_slice(p.correlation_data.as_deref().unwrap_or_default()),
        'E' => match p.message_expiry_interval {
            // mosquitto prints it through an int.
            Some(v) => int(i64::from(v as i32), f, out),
            None => blank(pad, f.width, out),
        },
        'F' => match p.payload_format_indicator {
            Some(v) => int(i64::from(v), f, out),
            None => blank(pad, f.width, out),
        },
        'I' => string(now.strftime("%Y-%m-%dT%H:%M:%S%z").as_bytes(), f, out),
        'j' | 'J' => match mosquitto_json(m, now, f.conversion == 'j') {
            Some(json) => json.write(pretty, out),
            None => {
                return Some(format!(
                    "Error: Message payload is not valid JSON on topic {}.",
                    m.topic
                ))
            }
        },
        'l' => int(m.payload.len() as i64, f, out),
        'm' => int(m.packet_id().map_or(0, |id| i64::from(id.get())), f, out),
        'P' => {
            let users: Vec<String> = p
                .user_properties
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            out.extend_from_slice(users.join(" ").as_bytes());
        }
        'p' => payload(&m.payload, 0, f, out),
        'q' => out.push(b'0' + m.qos as u8),
        'R' => {
            if let Some(v) = &p.response_topic {
                string(v.as_bytes(), f, out);
            }
        }
        'r' => out.push(if m.retain { b'1' } else { b'0' }),
        'S' => match p.subscription_identifiers.first() {
            Some(id) => int(i64::from(id.get() as i32), f, out),
            None => blank(pad, f.width, out),
        },
        't' => string(m.topic.as_bytes(), f, out),
        'U' => out.extend_from_slice(format!("{}.{:09}", now.secs, now.nanos).as_bytes()),
        'x' => payload(&m.payload, 1, f, out),
        'X' => payload(&m.payload, 2, f, out),
        _ => {}
    }
    None
}

fn blank(pad: u8, width: usize, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(pad, width));
}

/// printf's `%d`, `%-*d`, `%0*d` or `%*d`.
fn int(value: i64, f: Field, out: &mut Vec<u8>) {
    let w = f.width;
    let s = if f.left {
        format!("{value:<w$}")
    } else if f.zero {
        format!("{value:0w$}")
    } else {
        format!("{value:>w$}")
    };
    out.extend_from_slice(s.as_bytes());
}

/// printf's `%-*.*s` family, counting bytes as C does.
fn string(value: &[u8], f: Field, out: &mut Vec<u8>) {
    let value = match f.precision {
        Some(p) => value.get(..p.min(value.len())).unwrap_or_default(),
        None => value,
    };
    let padding = f.width.saturating_sub(value.len());
    if !f.left {
        blank(b' ', padding, out);
    }
    out.extend_from_slice(value);
    if f.left {
        blank(b' ', padding, out);
    }
}

/// mosquitto_sub's `write_payload`: a field width cuts the payload to that many bytes, and
/// in hex to half as many bytes (padding to the width); precision is ignored.
fn payload(bytes: &[u8], hex: u8, f: Field, out: &mut Vec<u8>) {
    let width = f.width as i64;
    let mut len = bytes.len() as i64;
    let padlen = if width > 0 {
        len = len.min(width);
        if hex > 0 {
            len /= 2;
            width - len * 2
        } else {
            width - len
        }
    } else {
        width - len
    };
    let pad = if f.zero { b'0' } else { b' ' };
    if !f.left {
        blank(pad, usize::try_from(padlen).unwrap_or(0), out);
    }
    let shown = bytes.get(..len as usize).unwrap_or_default();
    match hex {
        0 => out.extend_from_slice(shown),
        1 => out.extend_from_slice(hex_string(shown, false).as_bytes()),
        _ => out.extend_from_slice(hex_string(shown, true).as_bytes()),
    }
    if f.left {
        // printf("%*s", padlen, ""): a negative width pads as much on the left-justified side.
        blank(b' ', padlen.unsigned_abs() as usize, out);
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn hex_string(bytes: &[u8], upper: bool) -> String {
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

    fn render(output: &Output, m: &Message) -> String {
        let mut out = Vec::new();
        output.render(m, false, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn format(f: &str) -> Output {
        Output::Format(Format::parse(f, false).unwrap())
    }

    #[test]
    fn plain_and_verbose_match_mosquitto_sub() {
        let m = message(b"hi");
        assert_eq!(render(&Output::Plain { verbose: false }, &m), "hi\n");
        assert_eq!(render(&Output::Plain { verbose: true }, &m), "a/b hi\n");
        let empty = message(b"");
        assert_eq!(
            render(&Output::Plain { verbose: true }, &empty),
            "a/b (null)\n"
        );
        assert_eq!(render(&Output::Plain { verbose: false }, &empty), "");
    }

    #[test]
    fn json_has_text_or_base64_payload_and_properties() {
        let j = Output::Json { pretty: false };
        let v: Value = serde_json::from_str(&render(&j, &message(b"hi"))).unwrap();
        assert_eq!(v["topic"], "a/b");
        assert_eq!(v["payload"], "hi");
        assert_eq!(v["encoding"], "utf8");
        assert_eq!(v["qos"], 1);
        assert_eq!(v["retain"], true);
        assert_eq!(v["properties"]["user_properties"], json!([["k", "v"]]));
        let v: Value = serde_json::from_str(&render(&j, &message(b"\xff\x00"))).unwrap();
        assert_eq!(v["payload"], "/wA=");
        assert_eq!(v["encoding"], "base64");
        let pretty = render(&Output::Json { pretty: true }, &message(b"x"));
        assert!(pretty.contains("\n  \"topic\""), "{pretty}");
    }

    #[test]
    fn format_conversions_and_escapes() {
        let m = message(b"\x01\xab");
        let out = render(&format(r"%t|%x|%X|%l|%q|%r|%P|%%|\t|@@"), &m);
        assert_eq!(out, "a/b|01ab|01AB|2|1|1|k:v|%|\t|@\n");
    }

    #[test]
    fn widths_and_precision_as_mosquitto_sub_2_0() {
        // Measured with mosquitto_sub 2.0.11 on payload "hello", topic "f/1".
        let m = Message::new("f/1", &b"hello"[..], QoS::AtMostOnce);
        let out = render(
            &format("%10t|%-10t|%.2t|%5p|%-5p|%.2p|%05l|%-5l|%5q|%A|%x|%10x|%-8X"),
            &m,
        );
        assert_eq!(
            out,
            "       f/1|f/1       |f/|hello|hello|hello|00005|5    |0||68656c6c6f|      6865|6865    \n"
        );
    }

    #[test]
    fn mosquitto_json_embeds_or_escapes_the_payload() {
        let m = Message::new("f/2", &br#"{"a": [1,2]}"#[..], QoS::AtMostOnce);
        let out = render(&format("%J"), &m);
        assert!(
            out.ends_with(
                &(r#","topic":"f/2","qos":0,"retain":0,"payloadlen":12,"payload":{"a":[1,2]}}"#
                    .to_owned()
                    + "\n")
            ),
            "{out}"
        );
        assert!(out.starts_with(r#"{"tst":""#), "{out}");
        let bad = Message::new("f/3", &b"nope"[..], QoS::AtMostOnce);
        let mut line = Vec::new();
        let warning = format("%J").render(&bad, false, &mut line);
        assert_eq!(line, b"\n");
        assert_eq!(
            warning.as_deref(),
            Some("Error: Message payload is not valid JSON on topic f/3.")
        );
        let out = render(&format("%j"), &message(b"a\"b"));
        assert!(
            out.ends_with(
                &(r#""payloadlen":3,"properties":{"user-properties":{"k":"v"}},"payload":"a\"b"}"#
                    .to_owned()
                    + "\n")
            ),
            "{out}"
        );
    }

    #[test]
    fn invalid_formats_are_refused_with_mosquittos_words() {
        for (f, err) in [
            ("%Z", "Error: Invalid format specifier 'Z'."),
            ("abc%", "Error: Incomplete format specifier."),
            ("%-5", "Error: Incomplete format specifier."),
            (r"\q", "Error: Invalid escape specifier 'q'."),
            ("x\\", "Error: Incomplete escape specifier."),
        ] {
            assert_eq!(Format::parse(f, false).unwrap_err(), err, "{f}");
        }
    }

    #[test]
    fn time_formats() {
        let m = message(b"x");
        let out = render(&format("@Y|@N|%U|%I"), &m);
        let parts: Vec<&str> = out.trim_end().split('|').collect();
        assert_eq!(parts[0].len(), 4, "{out}");
        assert_eq!(parts[1].len(), 9, "{out}");
        assert!(parts[2].contains('.'), "{out}");
        // %I: ISO 8601 with a numeric zone, e.g. 2026-12-07T02:07:04+0000.
        assert_eq!(parts[3].len(), 24, "{out}");
        assert_eq!(&parts[3][10..11], "T");
    }
}
