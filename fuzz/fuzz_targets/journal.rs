//! Arbitrary and truncated session journals, replayed and restored into a new session; see
//! `mqtt_sansio::fuzzing::journal` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mqtt_sansio::fuzzing::journal(data));
