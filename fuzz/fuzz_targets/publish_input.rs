//! Fuzz target `publish_input`: see `tagtrust_fuzz::publish_input` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagtrust_fuzz::publish_input(data));
