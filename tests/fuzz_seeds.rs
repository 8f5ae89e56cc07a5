//! Every seed of every fuzz target, replayed through the target's own check
//! (`shaddock::fuzzing`, built for tests through the crate's dev-dependency on itself with the
//! `fuzzing` feature): a crash once found and kept in `fuzz/corpus/<target>/` stays fixed on a
//! plain `cargo test`, no nightly or libFuzzer needed.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use shaddock::fuzzing::TARGETS;

/// The seed corpora stay small: they are committed.
const MAX_CORPUS_BYTES: u64 = 2 << 20;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_passes_its_target() {
    let mut failed = Vec::new();
    let mut replayed = 0;
    for &(name, check) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seed");
        for seed in seeds {
            let data = fs::read(&seed).expect("a readable seed");
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failed.push(seed.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(failed.is_empty(), "seeds that fail their target:\n{}", failed.join("\n"));
    println!("{replayed} seeds of {} targets replayed", TARGETS.len());
}

#[test]
fn every_target_has_its_fuzz_binary_and_corpus_and_nothing_else() {
    let named = |dir: &str, ext: &str| -> Vec<String> {
        let path = fuzz_dir().join(dir);
        let mut names: Vec<String> = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|entry| {
                entry.expect("a directory entry").file_name().into_string().expect("utf-8")
            })
            .filter_map(|name| name.strip_suffix(ext).map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    let mut targets: Vec<String> = TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    targets.sort();
    assert_eq!(named("fuzz_targets", ".rs"), targets, "fuzz/fuzz_targets/*.rs");
    assert_eq!(named("corpus", ""), targets, "fuzz/corpus/*/");
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &targets {
        assert!(manifest.contains(&format!("name = \"{name}\"")), "{name} is not a [[bin]]");
    }
}

#[test]
fn the_seed_corpora_stay_small() {
    let total: u64 = TARGETS
        .iter()
        .flat_map(|(name, _)| files(&fuzz_dir().join("corpus").join(name)))
        .map(|seed| fs::metadata(seed).expect("a seed's size").len())
        .sum();
    assert!(total <= MAX_CORPUS_BYTES, "the seeds take {total} bytes, over {MAX_CORPUS_BYTES}");
}
