#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookwise_fuzz::standard_webhooks_signature(data));
