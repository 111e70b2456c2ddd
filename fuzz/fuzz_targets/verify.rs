//! Bytes as a master file, read and verified in full (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| signet_fuzz::verify(data));
