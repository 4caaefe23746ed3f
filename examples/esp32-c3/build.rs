//! Linker arguments for esp-hal. Kept here, not in `.cargo/config.toml` rustflags: a
//! `RUSTFLAGS` variable in the environment (e.g. `-Dwarnings` in CI) replaces config
//! rustflags, and the link would then fail.
fn main() {
    // esp-hal's linker script (memory map, sections, the ROM functions).
    println!("cargo:rustc-link-arg=-Tlinkall.x");
    // Xtensa chips (ESP32, S2, S3) link through GCC, which must not add its own start files.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("xtensa") {
        println!("cargo:rustc-link-arg=-nostartfiles");
    }
}
