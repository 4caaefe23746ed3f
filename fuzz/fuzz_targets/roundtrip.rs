//! Packets of every type and version built from the input: encode, decode, compare.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mqtt_sansio::fuzzing::roundtrip(data));
