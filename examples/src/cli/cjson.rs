//! JSON as mosquitto_sub writes it with `%j`, `%J` and `--pretty` (it uses cJSON): keys in
//! insertion order, duplicates kept, strings as raw bytes with only `"`, `\` and control
//! characters escaped, numbers as C doubles, `--pretty` indented with tabs.

use std::fmt::Write as _;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (cJSON keeps every number as a double).
    Number(f64),
    /// A string, as bytes (not necessarily UTF-8, as in mosquitto).
    String(Vec<u8>),
    /// An array.
    Array(Vec<Json>),
    /// An object: keys in order, duplicates allowed.
    Object(Vec<(Vec<u8>, Json)>),
}

impl Json {
    /// A string value from bytes, cut at the first NUL as cJSON's C strings are.
    pub fn c_string(bytes: &[u8]) -> Self {
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        Self::String(bytes.get(..end).unwrap_or_default().to_vec())
    }

    /// Parses a whole document (whitespace around it allowed), as
    /// `cJSON_ParseWithOpts(.., require_null_terminated)`; `None` if it is not valid JSON.
    pub fn parse(input: &[u8]) -> Option<Self> {
        let mut p = Parser { input, at: 0 };
        let value = p.value(0)?;
        p.skip_ws();
        (p.at == input.len()).then_some(value)
    }

    /// Writes the value: compact, or `pretty` as `cJSON_Print`.
    pub fn write(&self, pretty: bool, out: &mut Vec<u8>) {
        self.write_at(pretty, 0, out);
    }

    fn write_at(&self, pretty: bool, depth: usize, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Self::Number(n) => out.extend_from_slice(number(*n).as_bytes()),
            Self::String(s) => string(s, out),
            Self::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(if pretty { b", " } else { b"," });
                    }
                    item.write_at(pretty, depth + 1, out);
                }
                out.push(b']');
            }
            Self::Object(fields) => {
                let depth = depth + 1;
                out.push(b'{');
                if pretty {
                    out.push(b'\n');
                }
                for (i, (key, value)) in fields.iter().enumerate() {
                    if pretty {
                        out.extend(std::iter::repeat_n(b'\t', depth));
                    }
                    string(key, out);
                    out.push(b':');
                    if pretty {
                        out.push(b'\t');
                    }
                    value.write_at(pretty, depth, out);
                    if i + 1 < fields.len() {
                        out.push(b',');
                    }
                    if pretty {
                        out.push(b'\n');
                    }
                }
                if pretty {
                    out.extend(std::iter::repeat_n(b'\t', depth - 1));
                }
                out.push(b'}');
            }
        }
    }
}

/// cJSON's string escaping: `"`, `\`, `\b \f \n \r \t`, other bytes below 0x20 as `\u00XX`;
/// every other byte as it is.
fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// cJSON's numbers: integers that fit an `int` as `%d`, others as `%1.15g` (or `%1.17g` when
/// 15 digits do not give the same double back); NaN and infinities as `null`.
fn number(n: f64) -> String {
    if !n.is_finite() {
        return "null".into();
    }
    let int = n.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
    if f64::from(int) == n {
        return int.to_string();
    }
    let short = c_g(n, 15);
    if short.parse::<f64>().ok() == Some(n) {
        short
    } else {
        c_g(n, 17)
    }
}

/// C's `%1.<precision>g`.
fn c_g(n: f64, precision: usize) -> String {
    let sci = format!("{:.*e}", precision - 1, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{n:.decimals$}"))
    }
}

/// Nesting deeper than this is refused, as cJSON does (its limit is 1000).
const MAX_DEPTH: usize = 1000;

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b <= b' ' && b != 0) {
            self.at += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        let found = self.input.get(self.at..self.at + word.len()) == Some(word);
        if found {
            self.at += word.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        let value = match self.peek()? {
            b'n' if self.eat(b"null") => Json::Null,
            b't' if self.eat(b"true") => Json::Bool(true),
            b'f' if self.eat(b"false") => Json::Bool(false),
            b'"' => Json::String(self.string()?),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if !self.eat(b"]") {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.skip_ws();
                        if self.eat(b"]") {
                            break;
                        }
                        if !self.eat(b",") {
                            return None;
                        }
                    }
                }
                Json::Array(items)
            }
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                self.skip_ws();
                if !self.eat(b"}") {
                    loop {
                        self.skip_ws();
                        if self.peek()? != b'"' {
                            return None;
                        }
                        let key = self.string()?;
                        self.skip_ws();
                        if !self.eat(b":") {
                            return None;
                        }
                        fields.push((key, self.value(depth + 1)?));
                        self.skip_ws();
                        if self.eat(b"}") {
                            break;
                        }
                        if !self.eat(b",") {
                            return None;
                        }
                    }
                }
                Json::Object(fields)
            }
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        };
        Some(value)
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        {
            self.at += 1;
        }
        let text = std::str::from_utf8(self.input.get(start..self.at)?).ok()?;
        text.parse::<f64>().ok().map(Json::Number)
    }

    /// A string after its opening quote, escapes decoded (`\uXXXX` to UTF-8).
    fn string(&mut self) -> Option<Vec<u8>> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    match e {
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'u' => {
                            let c = self.unicode()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                b => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.input.get(self.at..self.at + 4)?).ok()?;
        let v = u32::from_str_radix(digits, 16).ok()?;
        self.at += 4;
        Some(v)
    }

    fn unicode(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) {
            if !self.eat(b"\\u") {
                return None;
            }
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return None;
            }
            char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
        } else {
            char::from_u32(first)
        }
    }
}

/// Builds an object from `(key, value)` pairs.
pub fn object<'a>(fields: impl IntoIterator<Item = (&'a str, Json)>) -> Json {
    Json::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

/// A number value from an integer.
pub fn num(n: impl Into<f64>) -> Json {
    Json::Number(n.into())
}

/// Renders a value to a string (lossy for non-UTF-8 strings), for tests and messages.
pub fn to_string(value: &Json, pretty: bool) -> String {
    let mut out = Vec::new();
    value.write(pretty, &mut out);
    let mut s = String::new();
    let _ = write!(s, "{}", String::from_utf8_lossy(&out));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprints_like_cjson() {
        let doc = br#" {"a":[1, 2,{"b":null}],"c":{},"d":[],"e":1.5e10,"f":"x\/y\u00e9","g":0.1,"h":-3} "#;
        let v = Json::parse(doc).unwrap();
        assert_eq!(
            to_string(&v, false),
            r#"{"a":[1,2,{"b":null}],"c":{},"d":[],"e":15000000000,"f":"x/yé","g":0.1,"h":-3}"#
        );
        let root = object([("p", v)]);
        let pretty = to_string(&root, true);
        assert!(pretty.starts_with("{\n\t\"p\":\t{\n\t\t\"a\":\t[1, 2, {\n\t\t\t\t\"b\":\tnull\n\t\t\t}],\n\t\t\"c\":\t{\n\t\t},"), "{pretty}");
        assert!(pretty.ends_with("\n\t}\n}"), "{pretty}");
    }

    #[test]
    fn refuses_what_cjson_refuses() {
        for bad in [
            &b"notjson"[..],
            b"{\"a\":1",
            b"[1,]x",
            b"",
            b"{\"a\" 1}",
            b"1 2",
        ] {
            assert!(
                Json::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn escapes_control_characters_only() {
        let mut out = Vec::new();
        Json::c_string(b"a\"b\t\x01\xff\0rest").write(false, &mut out);
        assert_eq!(out, b"\"a\\\"b\\t\\u0001\xff\"");
        assert_eq!(number(1e300), "1e+300");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1e-7), "1e-07");
    }
}
