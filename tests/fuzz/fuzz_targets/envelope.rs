//! Fuzz target `envelope`: [`passerelle_tests::fuzzing::envelope`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: passerelle_tests::fuzzing::panic_hook(), |data: &[u8]| passerelle_tests::fuzzing::envelope(data));
