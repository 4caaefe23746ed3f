//! Arbitrary bytes decoded as 3.1, 3.1.1 or 5.0; every packet re-encoded and decoded again.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mqtt_sansio::fuzzing::decode(data));
