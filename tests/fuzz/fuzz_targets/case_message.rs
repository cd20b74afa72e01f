//! Fuzz target `case_message`: [`passerelle_tests::fuzzing::case_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::case_message(data));
