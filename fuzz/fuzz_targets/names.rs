//! Fuzz target `names`: see `tagtrust_fuzz::names` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagtrust_fuzz::names(data));
