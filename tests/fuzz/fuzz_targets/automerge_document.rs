//! Fuzz target `automerge_document`: [`passerelle_tests::fuzzing::automerge_document`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: passerelle_tests::fuzzing::panic_hook(), |data: &[u8]| passerelle_tests::fuzzing::automerge_document(data));
