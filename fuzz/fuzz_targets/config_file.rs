#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotreload::fuzzing::config_file(data));
