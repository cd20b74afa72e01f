//! Fuzz target `import_csv`: [`passerelle_tests::fuzzing::import_csv`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::import_csv(data));
