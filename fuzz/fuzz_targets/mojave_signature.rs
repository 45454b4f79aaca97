#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwise_fuzz::mojave_signature(data));
