//! The control page's server: a few static files (the page and the `mqtt-client-wasm`
//! bundle) and `config.json` (the broker's WebSocket port and the login), over plain HTTP/1.1
//! on `std`'s TCP listener, one short thread per request. Loopback only unless the user asks
//! for every interface (`--lan`).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The page's files, relative to the web directory, with their content types. Nothing else is
/// served.
const FILES: [(&str, &str); 5] = [
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    (BUNDLE_JS, "text/javascript; charset=utf-8"),
    (BUNDLE_WASM, "application/wasm"),
];
/// The `wasm-bindgen --target web` output the page imports.
const BUNDLE_JS: &str = "pkg/mqtt_client_wasm.js";
const BUNDLE_WASM: &str = "pkg/mqtt_client_wasm_bg.wasm";
/// The largest request head read.
const HEAD_LIMIT: usize = 8 * 1024;
/// A client that sends nothing is dropped after this.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The page's files in the source tree.
pub(crate) fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// How to build the wasm bundle, when it is missing from `dir`.
pub(crate) fn missing_bundle(dir: &Path) -> Option<String> {
    let wasm = dir.join(BUNDLE_WASM);
    if wasm.is_file() && dir.join(BUNDLE_JS).is_file() {
        return None;
    }
    Some(format!(
        "no control page: its wasm bundle {} is missing; build it with `bash scripts/build-wasm.sh` \
         (cargo build --release --target wasm32-unknown-unknown -p mqtt-client-wasm, then \
         wasm-bindgen --target web)",
        wasm.display()
    ))
}

/// A running page server.
#[derive(Debug)]
pub(crate) struct PageServer {
    addr: SocketAddr,
}

impl PageServer {
    /// Serves `dir` and `config` (the body of `config.json`) on a free port of 127.0.0.1, or
    /// of every interface when `lan`. The server thread lives as long as the process.
    pub(crate) fn start(dir: PathBuf, config: String, lan: bool) -> io::Result<Self> {
        let ip = if lan {
            Ipv4Addr::UNSPECIFIED
        } else {
            Ipv4Addr::LOCALHOST
        };
        let listener = TcpListener::bind((ip, 0))?;
        let addr = listener.local_addr()?;
        let site = Arc::new(Site { dir, config });
        thread::Builder::new()
            .name("page-server".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let site = Arc::clone(&site);
                    // One short thread per request; a failed request only concerns its client.
                    let _ = thread::Builder::new()
                        .name("page-request".into())
                        .spawn(move || site.serve(stream));
                }
            })?;
        Ok(Self { addr })
    }

    /// The page's port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// What the server serves.
#[derive(Debug)]
struct Site {
    dir: PathBuf,
    config: String,
}

impl Site {
    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let response = match read_head(&mut stream) {
            Ok(head) => self.respond(&head),
            Err(_) => return,
        };
        let _ = stream.write_all(&response);
        let _ = stream.flush();
    }

    /// The whole response to a request head.
    fn respond(&self, head: &str) -> Vec<u8> {
        let mut words = head.split_whitespace();
        let (method, target) = (words.next(), words.next().unwrap_or("/"));
        if method != Some("GET") && method != Some("HEAD") {
            return response(405, "text/plain", b"only GET\n", method == Some("HEAD"));
        }
        let path = target.split(['?', '#']).next().unwrap_or("/");
        let path = path.trim_start_matches('/');
        let path = if path.is_empty() { "index.html" } else { path };
        let head_only = method == Some("HEAD");
        if path == "config.json" {
            return response(200, "application/json", self.config.as_bytes(), head_only);
        }
        let Some(&(file, kind)) = FILES.iter().find(|(file, _)| *file == path) else {
            return response(404, "text/plain", b"not found\n", head_only);
        };
        match std::fs::read(self.dir.join(file)) {
            Ok(body) => response(200, kind, &body, head_only),
            Err(_) => response(404, "text/plain", b"not built\n", head_only),
        }
    }
}

/// Reads up to the blank line that ends the request head.
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > HEAD_LIMIT {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn response(status: u16, kind: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// `config.json` for the page: the broker's WebSocket port (on the host the page came from)
/// and the login.
pub(crate) fn config_json(ws_port: u16, username: Option<&str>, password: Option<&str>) -> String {
    let text = |s: Option<&str>| match s {
        Some(s) => serde_json::Value::from(s),
        None => serde_json::Value::Null,
    };
    serde_json::json!({
        "wsPort": ws_port,
        "username": text(username),
        "password": text(password),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(port: u16, path: &str) -> String {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_the_listed_files_and_the_config_only() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("index.html"), "<h1>page</h1>").unwrap();
        std::fs::write(dir.join("secret.txt"), "no").unwrap();
        let config = config_json(9001, Some("demo"), Some("pw"));
        let server = PageServer::start(dir.clone(), config, false).unwrap();
        let index = get(server.port(), "/");
        assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
        assert!(index.ends_with("<h1>page</h1>"), "{index}");
        let config = get(server.port(), "/config.json?x=1");
        assert!(
            config.ends_with(r#"{"password":"pw","username":"demo","wsPort":9001}"#),
            "{config}"
        );
        assert!(get(server.port(), "/secret.txt").starts_with("HTTP/1.1 404"));
        assert!(get(server.port(), "/../Cargo.toml").starts_with("HTTP/1.1 404"));
        assert!(get(server.port(), "/app.js").starts_with("HTTP/1.1 404"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_bundle_says_how_to_build_it() {
        let dir = tempfile_dir();
        let hint = missing_bundle(&dir).expect("missing");
        assert!(hint.contains("scripts/build-wasm.sh"), "{hint}");
        std::fs::create_dir(dir.join("pkg")).unwrap();
        std::fs::write(dir.join(BUNDLE_JS), "").unwrap();
        std::fs::write(dir.join(BUNDLE_WASM), "").unwrap();
        assert_eq!(missing_bundle(&dir), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "demo-page-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
