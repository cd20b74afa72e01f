//! The fuzz targets on stable (`passerelle_tests::fuzzing`): each over its corpus
//! (`tests/fuzz/corpus/<target>/`, what libFuzzer found worth keeping) and its seeds, then a
//! bounded number of mutations of them (`PASSERELLE_FUZZ_ROUNDS`, default 300 a target;
//! `PASSERELLE_FUZZ_SEED`; one target only: `PASSERELLE_FUZZ_ONLY`). An input that makes a target panic is written to
//! `target/fuzz-failures/` and named in the failure.

use std::path::PathBuf;

use passerelle_tests::fuzzing::{TARGETS, Target, mutate, seeds};
use rand::{Rng, SeedableRng};

/// The target's corpus, and the inputs that once broke it (`tests/fuzz/regressions/<target>-…`).
fn corpus(name: &str) -> Vec<Vec<u8>> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(fuzz.join("corpus").join(name)) {
        inputs.extend(
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok()),
        );
    }
    if let Ok(entries) = std::fs::read_dir(fuzz.join("regressions")) {
        inputs.extend(
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{name}-"))
                })
                .filter_map(|e| std::fs::read(e.path()).ok()),
        );
    }
    inputs
}

fn try_input(name: &str, target: Target, input: &[u8]) {
    let outcome = std::panic::catch_unwind(|| target(input));
    if outcome.is_err() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        let digest: u64 = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        let path = dir.join(format!("{name}-{digest:016x}"));
        let _ = std::fs::write(&path, input);
        panic!(
            "fuzz target {name} panicked on the input saved in {}",
            path.display()
        );
    }
}

#[test]
fn fuzz_targets_hold_on_their_corpus_and_random_inputs() {
    let seed = std::env::var("PASSERELLE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rounds: usize = std::env::var("PASSERELLE_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let only = std::env::var("PASSERELLE_FUZZ_ONLY").ok();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (name, target) in TARGETS {
        if only.as_deref().is_some_and(|only| only != *name) {
            continue;
        }
        let mut inputs = seeds(name);
        inputs.extend(corpus(name));
        assert!(!inputs.is_empty(), "{name} has no seed");
        for input in &inputs {
            try_input(name, *target, input);
        }
        for _ in 0..rounds {
            let base = &inputs[rng.random_range(0..inputs.len())];
            let input = mutate(base, &mut rng);
            try_input(name, *target, &input);
        }
    }
}

#[test]
#[ignore = "writes the seeds into tests/fuzz/corpus for libFuzzer; run once before fuzzing"]
fn write_fuzz_seeds_into_the_corpus() {
    for (name, _) in TARGETS {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join("corpus")
            .join(name);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        for (i, seed) in seeds(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write seed");
        }
    }
}
