//! Fuzz target `admission`: [`passerelle_tests::fuzzing::admission`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::admission(data));
