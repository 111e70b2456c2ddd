//! Bytes as a master file: the zone reader, serial and in pieces, and the
//! writer read back (see src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| signet_fuzz::zone_reader(data));
