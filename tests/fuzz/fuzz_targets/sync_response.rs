//! Fuzz target `sync_response`: [`passerelle_tests::fuzzing::sync_response`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: passerelle_tests::fuzzing::panic_hook(), |data: &[u8]| passerelle_tests::fuzzing::sync_response(data));
