//! Fuzz target `metadata_parse`: see `tagtrust_fuzz::metadata_parse` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tagtrust_fuzz::metadata_parse(data));
