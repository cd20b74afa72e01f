//! Fuzz target `envelope`: [`passerelle_tests::fuzzing::envelope`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::envelope(data));
