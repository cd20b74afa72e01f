//! Fuzz target `case_message`: [`passerelle_tests::fuzzing::case_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: passerelle_tests::fuzzing::panic_hook(), |data: &[u8]| passerelle_tests::fuzzing::case_message(data));
