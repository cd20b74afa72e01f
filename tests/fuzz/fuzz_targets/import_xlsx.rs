//! Fuzz target `import_xlsx`: [`passerelle_tests::fuzzing::import_xlsx`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::import_xlsx(data));
