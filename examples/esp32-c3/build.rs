//! Linker arguments for esp-hal, and the CA certificate of the `tls` build. The linker
//! arguments are kept here, not in `.cargo/config.toml` rustflags: a `RUSTFLAGS` variable in
//! the environment (e.g. `-Dwarnings` in CI) replaces config rustflags, and the link would
//! then fail.
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    // esp-hal's linker script (memory map, sections, the ROM functions).
    println!("cargo:rustc-link-arg=-Tlinkall.x");
    // Xtensa chips (ESP32, S2, S3) link through GCC, which must not add its own start files.
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("xtensa") {
        println!("cargo:rustc-link-arg=-nostartfiles");
    }
    ca_certificate();
}

/// Writes `$OUT_DIR/ca.der`, which `src/config.rs` embeds: the certificate in the file that
/// `MQTT_CA_CERT` names (PEM or DER; a path relative to this folder), or nothing when it is
/// unset, so that the firmware builds without one (the `tls` build then refuses to connect
/// and says why).
fn ca_certificate() {
    println!("cargo:rerun-if-env-changed=MQTT_CA_CERT");
    let der = match env::var_os("MQTT_CA_CERT").filter(|path| !path.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            read_certificate(&path)
                .unwrap_or_else(|e| panic!("MQTT_CA_CERT={}: {e}", path.display()))
        }
        None => {
            if env::var_os("CARGO_FEATURE_TLS").is_some() {
                println!(
                    "cargo:warning=no MQTT_CA_CERT: this tls build has no CA certificate and \
                     will not connect"
                );
            }
            Vec::new()
        }
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ca.der");
    fs::write(&out, der).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// The first certificate of a PEM file, or a DER file as it is.
fn read_certificate(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains(BEGIN) => {
            let body = text.split(BEGIN).nth(1).unwrap_or_default();
            let body = body
                .split(END)
                .next()
                .filter(|_| body.contains(END))
                .ok_or("a PEM certificate without its END line")?;
            if text.matches(BEGIN).count() > 1 {
                println!(
                    "cargo:warning=MQTT_CA_CERT holds several certificates; only the first is \
                     built in (embedded-tls verifies against one CA)"
                );
            }
            base64(body)?
        }
        _ => bytes,
    };
    // An X.509 certificate is a DER SEQUENCE.
    if der.first() != Some(&0x30) || der.len() < 64 {
        return Err("not an X.509 certificate (PEM or DER)".into());
    }
    Ok(der)
}

/// Standard base64 with padding, whitespace ignored.
fn base64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("{:?} in the PEM body is not base64", char::from(c))),
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
