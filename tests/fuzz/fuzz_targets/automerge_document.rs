//! Fuzz target `automerge_document`: [`passerelle_tests::fuzzing::automerge_document`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| passerelle_tests::fuzzing::automerge_document(data));
