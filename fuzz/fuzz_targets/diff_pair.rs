#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotreload::fuzzing::diff_pair(data));
