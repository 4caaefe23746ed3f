//! Sets `cfg(mqtt_sansio_small)` when the crate is compiled for size (`opt-level = "s"` or
//! `"z"`, as microcontroller firmware is): the codec then takes its smaller paths where speed
//! and flash pull apart (see `properties.rs`), and nothing is forced inline: every
//! `inline(always)` of the crate is `cfg_attr(not(mqtt_sansio_small), inline(always))`, so
//! the size-optimising inliner decides there. No public item depends on it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mqtt_sansio_small)");
    println!("cargo::rerun-if-changed=build.rs");
    let opt_level = std::env::var("OPT_LEVEL").unwrap_or_default();
    if opt_level == "s" || opt_level == "z" {
        println!("cargo::rustc-cfg=mqtt_sansio_small");
    }
}
