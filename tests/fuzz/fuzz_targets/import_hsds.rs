//! Fuzz target `import_hsds`: [`passerelle_tests::fuzzing::import_hsds`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: passerelle_tests::fuzzing::panic_hook(), |data: &[u8]| passerelle_tests::fuzzing::import_hsds(data));
