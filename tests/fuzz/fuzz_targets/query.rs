#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spis::fuzzing::query(data));
