#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hotreload::fuzzing::handler_output(data));
