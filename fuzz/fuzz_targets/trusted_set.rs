//! Fuzz target `trusted_set`: see `tagtrust_fuzz::trusted_set` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagtrust_fuzz::trusted_set(data));
