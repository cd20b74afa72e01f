//! Fuzz target `sync_request`: [`passerelle_tests::fuzzing::sync_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: passerelle_tests::fuzzing::panic_hook(), |data: &[u8]| passerelle_tests::fuzzing::sync_request(data));
