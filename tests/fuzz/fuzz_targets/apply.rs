//! Fuzz target `apply`: [`passerelle_tests::fuzzing::apply`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::apply(data));
