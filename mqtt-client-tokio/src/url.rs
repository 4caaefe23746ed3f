//! Broker addresses: `mqtt://`, `mqtts://`, `ws://` and `wss://` URLs, and 5.0 server
//! references.

use std::fmt;

use crate::options::Socks5Proxy;
use crate::Error;

/// Why a `mqtts://` or `wss://` URL is refused without the `tls` feature.
pub(crate) const NO_TLS: &str = "mqtts:// and wss:// need mqtt-client-tokio's `tls` feature";
/// Why a `ws://` or `wss://` URL is refused without the `websocket` feature.
pub(crate) const NO_WEBSOCKET: &str =
    "ws:// and wss:// need mqtt-client-tokio's `websocket` feature";
/// Why TLS cannot start with the `tls` feature alone and no process-default provider.
#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
pub(crate) const NO_CRYPTO_PROVIDER: &str = "no TLS crypto provider: enable mqtt-client-tokio's \
    `ring` or `aws-lc-rs` feature, or install a process-default rustls CryptoProvider";

/// How bytes reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Plain TCP.
    Mqtt,
    /// TLS over TCP.
    Mqtts,
    /// WebSocket over TCP.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Scheme {
    pub(crate) fn is_tls(self) -> bool {
        matches!(self, Self::Mqtts | Self::Wss)
    }

    pub(crate) fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }

    /// Why this build cannot reach a broker over this scheme: the cargo feature it lacks.
    fn missing_feature(self) -> Option<&'static str> {
        if self.is_tls() && !cfg!(feature = "tls") {
            Some(NO_TLS)
        } else if self.is_websocket() && !cfg!(feature = "websocket") {
            Some(NO_WEBSOCKET)
        } else {
            None
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Mqtt => 1883,
            Self::Mqtts => 8883,
            Self::Ws => 80,
            Self::Wss => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Mqtts => "mqtts",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }
}

/// One broker to connect to. Credentials found in a URL are split off when parsing, so this
/// type can be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerUrl {
    pub(crate) scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// WebSocket path (`/mqtt` unless the URL says otherwise).
    pub(crate) path: String,
}

/// User name and password found in a URL.
pub(crate) type UrlCredentials = Option<(String, Option<String>)>;

impl BrokerUrl {
    /// Parses `scheme://[user[:password]@]host[:port][/path]`. `tcp://` is read as `mqtt://`,
    /// `ssl://` and `tls://` as `mqtts://`.
    pub(crate) fn parse(url: &str) -> Result<(Self, UrlCredentials), Error> {
        let invalid = |reason| Error::InvalidUrl {
            url: redact(url),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or(invalid("missing scheme://"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Scheme::Mqtt,
            "mqtts" | "ssl" | "tls" => Scheme::Mqtts,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            _ => return Err(invalid("unknown scheme (mqtt, mqtts, ws, wss)")),
        };
        if let Some(feature) = scheme.missing_feature() {
            return Err(invalid(feature));
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(percent_decode(p))),
                    None => (userinfo, None),
                };
                (Some((percent_decode(user), password)), host_port)
            }
            None => (None, authority),
        };
        let (host, port) = split_host_port(host_port).ok_or(invalid("bad host or port"))?;
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let path = if path.is_empty() || path == "/" {
            "/mqtt".to_string()
        } else {
            path.to_string()
        };
        let broker = Self {
            scheme,
            host: host.to_string(),
            port: port.unwrap_or(scheme.default_port()),
            path,
        };
        Ok((broker, credentials))
    }

    /// The broker a 5.0 Server Reference names: the first of a space-separated list, either a
    /// URL or `host[:port]` reached the way `self` is (same scheme and path; same port when
    /// none is given).
    pub(crate) fn redirect(&self, reference: &str) -> Option<Self> {
        let first = reference.split_whitespace().next()?;
        if first.contains("://") {
            return Self::parse(first).ok().map(|(b, _)| b);
        }
        let (host, port) = split_host_port(first)?;
        if host.is_empty() {
            return None;
        }
        Some(Self {
            scheme: self.scheme,
            host: host.to_string(),
            port: port.unwrap_or(self.port),
            path: self.path.clone(),
        })
    }

    /// `host:port`, with brackets around IPv6 addresses.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())?;
        if self.scheme.is_websocket() {
            f.write_str(&self.path)?;
        }
        Ok(())
    }
}

/// Parses a SOCKS5 proxy URL: `socks5h://[user[:password]@]host[:port]` (port 1080 by
/// default; `socks5://` is read the same way).
pub(crate) fn parse_socks5(url: &str) -> Result<Socks5Proxy, Error> {
    let invalid = |reason| Error::InvalidUrl {
        url: redact(url),
        reason,
    };
    let (scheme, rest) = url.split_once("://").ok_or(invalid("missing scheme://"))?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "socks5h" | "socks5") {
        return Err(invalid("a proxy URL starts with socks5h://"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let pair = (percent_decode(user), percent_decode(password));
            (Some(pair), host_port)
        }
        None => (None, authority),
    };
    let (host, port) = split_host_port(host_port).ok_or(invalid("bad proxy host or port"))?;
    if host.is_empty() || host.contains('/') {
        return Err(invalid("bad proxy host"));
    }
    Ok(Socks5Proxy {
        host: host.to_string(),
        port: port.unwrap_or(1080),
        credentials,
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when the port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        // An unbracketed IPv6 address has more than one colon: no port.
        Some((host, _)) if host.contains(':') => Some((s, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with any user information removed, for error messages.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme_with_default_ports() {
        let cases = [
            ("mqtt://localhost", Scheme::Mqtt, 1883),
            ("mqtts://h", Scheme::Mqtts, 8883),
            ("ws://h/mqtt", Scheme::Ws, 80),
            ("wss://h", Scheme::Wss, 443),
            ("tcp://h:1", Scheme::Mqtt, 1),
        ];
        for (url, scheme, port) in cases {
            if scheme.missing_feature().is_some() {
                continue;
            }
            let (b, c) = BrokerUrl::parse(url).unwrap();
            assert_eq!((b.scheme, b.port), (scheme, port), "{url}");
            assert!(c.is_none());
        }
    }

    #[test]
    fn schemes_of_a_missing_feature_are_refused_by_name() {
        for url in ["mqtts://h", "ws://h", "wss://h"] {
            let scheme = BrokerUrl::parse(url).map(|(b, _)| b.scheme);
            match scheme {
                Ok(scheme) => assert_eq!(scheme.missing_feature(), None, "{url}"),
                Err(e) => assert!(e.to_string().contains("feature"), "{url}: {e}"),
            }
        }
        assert!(BrokerUrl::parse("mqtt://h").is_ok());
    }

    #[test]
    #[cfg(feature = "websocket")]
    fn splits_credentials_path_and_ipv6() {
        let (b, c) = BrokerUrl::parse("ws://us%40er:p%3Ass@[::1]:8083/ws/path").unwrap();
        assert_eq!(b.host, "::1");
        assert_eq!(b.port, 8083);
        assert_eq!(b.path, "/ws/path");
        assert_eq!(c, Some(("us@er".to_string(), Some("p:ss".to_string()))));
        assert_eq!(b.to_string(), "ws://[::1]:8083/ws/path");
    }

    #[test]
    fn rejects_bad_urls_without_echoing_passwords() {
        for url in ["localhost:1883", "http://h", "mqtt://:1", "mqtt://h:port"] {
            assert!(BrokerUrl::parse(url).is_err(), "{url}");
        }
        let err = BrokerUrl::parse("foo://user:secret@h").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn socks5_proxy_urls_with_and_without_credentials() {
        let p = parse_socks5("socks5h://localhost").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.credentials),
            ("localhost", 1080, None)
        );
        let p = parse_socks5("socks5h://us%40er:pw@[::1]:9050").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 9050));
        assert_eq!(p.credentials, Some(("us@er".into(), "pw".into())));
        assert!(!format!("{p:?}").contains("pw\""));
        for bad in ["http://h:1", "socks5h://", "socks5h://h:x", "h:1080"] {
            assert!(parse_socks5(bad).is_err(), "{bad}");
        }
    }

    #[test]
    #[cfg(feature = "tls")]
    fn server_reference_keeps_scheme_and_port_unless_given() {
        let (b, _) = BrokerUrl::parse("mqtts://a:8884").unwrap();
        let r = b.redirect("b.example other:1").unwrap();
        assert_eq!(
            (r.scheme, r.host.as_str(), r.port),
            (Scheme::Mqtts, "b.example", 8884)
        );
        let r = b.redirect("c:9000").unwrap();
        assert_eq!(r.port, 9000);
        let r = b.redirect("mqtt://d:1").unwrap();
        assert_eq!(r.scheme, Scheme::Mqtt);
        assert!(b.redirect("  ").is_none());
    }
}
