//! Fuzz target `config`: [`passerelle_tests::fuzzing::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::config(data));
