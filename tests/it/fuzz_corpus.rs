//! The fuzzers' inputs replayed without a fuzzer: every seed in
//! `fuzz/corpus/` and every input a fuzzer found trouble with, kept in
//! `fuzz/regressions/`, goes through both targets exactly as the fuzzer
//! runs them (the harness is `fuzz/src/lib.rs`, included here). A panic is
//! a test failure, so `cargo test` keeps the reader and the verifier
//! panic-free on them. See "Fuzzing" in docs/testing.md.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Replays one input as the fuzzer ran it (one rayon thread, which makes
/// the piece reader cut the text in 4) and with 3 threads (12 pieces).
fn replay(path: &Path) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
        pool.install(|| {
            harness::zone_reader(&data);
            harness::verify(&data);
        });
    }
}

#[test]
fn corpus_replays_without_panic() {
    let corpus = files("corpus");
    assert!(corpus.len() >= 7, "the seed corpus went missing: {corpus:?}");
    for path in &corpus {
        replay(path);
    }
}

#[test]
fn regressions_replay_without_panic() {
    let regressions = files("regressions");
    assert!(!regressions.is_empty(), "fuzz/regressions/ holds the inputs the fuzzers found trouble with");
    for path in &regressions {
        eprintln!("replaying {}", path.display());
        replay(path);
    }
}

/// The signed seeds verify at the harness's time: the fuzzer starts from
/// valid zones, every signature checked, not from expired ones.
#[test]
fn signed_seeds_are_valid_at_the_harness_time() {
    for path in files("corpus/verify") {
        let data = std::fs::read(&path).expect("read");
        let report = harness::verify_report(&data).unwrap_or_else(|| panic!("{} does not read", path.display()));
        assert!(report.valid, "{}: {}", path.display(), report.to_text());
        assert!(report.stats.rrsigs_verified > 20, "{}: {:?}", path.display(), report.stats);
    }
}

/// For a human sorting a fuzzer's findings: `FUZZ_REPLAY=DIR cargo test
/// --test it fuzz_corpus::replay_dir -- --ignored` replays every file of DIR,
/// one line per file that panics.
#[test]
#[ignore = "needs FUZZ_REPLAY=DIR"]
fn replay_dir() {
    let Some(dir) = std::env::var_os("FUZZ_REPLAY") else { return };
    std::panic::set_hook(Box::new(|_| {}));
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("FUZZ_REPLAY is a directory").flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut failed = 0;
    for path in &paths {
        if let Err(panic) = std::panic::catch_unwind(|| replay(path)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            println!("{}: {}", path.display(), message.chars().take(400).collect::<String>());
            failed += 1;
        }
    }
    println!("{failed} of {} inputs panic", paths.len());
}
