//! The fuzz corpus as a normal test: every committed input in `fuzz/corpus/<target>/`
//! runs through the same check the fuzz target calls (`fuzz/src/lib.rs`, included
//! below), so a finding fixed once stays fixed without cargo-fuzz or nightly.

use std::{fs, path::PathBuf};

#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/lib.rs"]
mod checks;

/// Runs every file of `fuzz/corpus/<target>` through `check`; returns how many ran.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "fuzz",
        "corpus",
        target,
    ]
    .iter()
    .collect();
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    for file in &files {
        let input = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        // A failing input names its file, so it can be run under `cargo fuzz run` too.
        let outcome = std::panic::catch_unwind(|| check(&input));
        assert!(outcome.is_ok(), "{} fails its check", file.display());
    }
    files.len()
}

#[test]
fn hoursmith_header_corpus() {
    assert!(replay("hoursmith_header", checks::hoursmith_header) >= 10);
}

#[test]
fn mojave_signature_corpus() {
    assert!(replay("mojave_signature", checks::mojave_signature) >= 10);
}

#[test]
fn receive_corpus() {
    assert!(replay("receive", checks::receive) >= 20);
}

#[test]
fn standard_webhooks_signature_corpus() {
    assert!(
        replay(
            "standard_webhooks_signature",
            checks::standard_webhooks_signature
        ) >= 10
    );
}

#[test]
fn github_signature_corpus() {
    assert!(replay("github_signature", checks::github_signature) >= 8);
}

#[test]
fn receive_providers_corpus() {
    assert!(replay("receive_providers", checks::receive_providers) >= 10);
}
