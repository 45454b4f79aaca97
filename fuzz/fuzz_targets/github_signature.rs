#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwise_fuzz::github_signature(data));
