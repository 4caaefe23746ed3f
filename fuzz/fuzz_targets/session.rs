//! A session over a small store driven by commands, broker bytes, clock jumps and transport
//! drops from the input; its invariants are checked after every step.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mqtt_sansio::fuzzing::session(data));
