//! The memory benchmark: resident bytes per key of `MemoryStore`.
//!
//! ```text
//! cargo run --release -p hookwise-bench --bin memory            # 1,000,000 keys
//! cargo run --release -p hookwise-bench --bin memory -- --keys 10000
//! ```
//!
//! Claims and commits `--keys` unique keys (default 1,000,000: the default bound, so
//! nothing is evicted) in a fresh store and prints the growth of the process's
//! resident memory (`VmRSS` in `/proc/self/status`) divided by the keys held.
//! `--max-keys M` lowers the store's bound, so that claims past `M` run in the steady
//! state of a full store (each one evicting the oldest key), e.g. under callgrind.

#![forbid(unsafe_code)]

use std::{fmt::Write as _, fs, process::ExitCode, time::Instant};

use hookwise_bench::ready;
use hookwise_core::{ClaimOutcome, DedupeKey, DedupeStore, MemoryStore, dedupe::DEFAULT_MAX_KEYS};

/// The process's resident memory in bytes, or `None` without `/proc`.
fn resident_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn main() -> ExitCode {
    let (mut keys, mut max_keys) = (DEFAULT_MAX_KEYS, DEFAULT_MAX_KEYS);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (
            flag.as_str(),
            args.next().and_then(|v| v.parse::<usize>().ok()),
        ) {
            ("--keys", Some(n)) if n > 0 => keys = n,
            ("--max-keys", Some(n)) if n > 0 => max_keys = n,
            _ => {
                eprintln!(
                    "usage: memory [--keys N] [--max-keys M]   (default {DEFAULT_MAX_KEYS} each)"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(before) = resident_bytes() else {
        eprintln!("/proc/self/status is not readable: this benchmark needs Linux");
        return ExitCode::FAILURE;
    };

    let store = MemoryStore::new().max_keys(max_keys).expect("max_keys > 0");
    let started = Instant::now();
    let mut id = String::with_capacity(64);
    for n in 0..keys {
        id.clear();
        // UUID-shaped, like Hoursmith's event ids.
        let _ = write!(id, "4f9c2a1e-0000-4000-8000-{n:012x}");
        let key = DedupeKey::new("hoursmith", &id);
        match ready(store.claim(&key)) {
            Ok(ClaimOutcome::Claimed(claim)) => ready(store.commit(&claim)).expect("commit"),
            other => panic!("a fresh key must be claimed: {other:?}"),
        }
    }
    let took = started.elapsed();
    let after = resident_bytes().unwrap_or(before);
    let stats = store.stats();

    let grown = after.saturating_sub(before);
    let per_key = grown as f64 / stats.keys.max(1) as f64;
    println!(
        "| keys held | evicted | resident before | resident after | growth | bytes/key | claim+commit |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | **{per_key:.0}** | {:.0} ns/key |",
        stats.keys,
        stats.evictions,
        mib(before),
        mib(after),
        mib(grown),
        took.as_nanos() as f64 / keys as f64,
    );
    // Keep the store alive until after the measurement.
    drop(store);
    ExitCode::SUCCESS
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
