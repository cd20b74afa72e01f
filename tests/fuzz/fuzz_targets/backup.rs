//! Fuzz target `backup`: [`passerelle_tests::fuzzing::backup`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::backup(data));
