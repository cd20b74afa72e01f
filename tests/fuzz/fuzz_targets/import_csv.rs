//! Fuzz target `import_csv`: [`passerelle_tests::fuzzing::import_csv`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: passerelle_tests::fuzzing::panic_hook(), |data: &[u8]| passerelle_tests::fuzzing::import_csv(data));
