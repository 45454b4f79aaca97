//! `MemoryStore` claim + commit: one thread, and two threads contending, in a store
//! already full (1,000,000 keys, the default bound, or 100,000), so each claim also
//! evicts the oldest key; and the claim of a processed key (a duplicate).
//!
//! `cargo bench -p hookwise-bench --bench dedupe`

#![forbid(unsafe_code)]

use std::{
    fmt::Write as _,
    hint::black_box,
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookwise_bench::ready;
use hookwise_core::{ClaimOutcome, DedupeKey, DedupeStore, MemoryStore, dedupe::DEFAULT_MAX_KEYS};

/// Claims a key never seen before (the `n`th of thread `thread`), then commits it:
/// what the store does for every new event. Building the key is included, as the
/// receiver builds one per delivery.
fn claim_commit(store: &MemoryStore, id: &mut String, thread: u32, n: u64) {
    id.clear();
    let _ = write!(id, "evt-{thread}-{n}");
    let key = DedupeKey::new("hoursmith", id);
    match ready(store.claim(black_box(&key))) {
        Ok(ClaimOutcome::Claimed(claim)) => ready(store.commit(&claim)).expect("commit"),
        other => panic!("a fresh key must be claimed: {other:?}"),
    }
}

/// A store holding `max_keys` processed keys: the steady state of a busy receiver,
/// where each new claim also evicts the oldest key. Measuring a fresh store instead
/// would mostly measure its tables growing.
///
/// Run as a smoke test (`cargo test --benches`, or without `--bench`), it fills only
/// 10,000 keys, so that the check stays quick in an unoptimized build.
fn full_store(max_keys: usize) -> MemoryStore {
    let store = MemoryStore::new().max_keys(max_keys).expect("max_keys > 0");
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let fill = if measuring {
        max_keys
    } else {
        max_keys.min(10_000)
    };
    let mut id = String::new();
    for n in 0..fill as u64 {
        claim_commit(&store, &mut id, u32::MAX, n);
    }
    store
}

/// Claims an already processed key: what the store does for every duplicate.
fn claim_duplicate(store: &MemoryStore, key: &DedupeKey) {
    match ready(store.claim(black_box(key))) {
        Ok(ClaimOutcome::Duplicate(_)) => {}
        other => panic!("a processed key must be a duplicate: {other:?}"),
    }
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("dedupe");
    group.throughput(Throughput::Elements(1));

    // At the default bound the table outgrows the CPU caches; at 100,000 keys it
    // mostly fits in them.
    for (name, max_keys) in [("1M_keys", DEFAULT_MAX_KEYS), ("100k_keys", 100_000)] {
        let store = full_store(max_keys);
        let mut id = String::new();
        let mut n = 0;
        group.bench_function(format!("claim_commit/1_thread/{name}"), |b| {
            b.iter(|| {
                n += 1;
                claim_commit(&store, &mut id, 0, n);
            })
        });
    }

    let store = MemoryStore::new();
    let key = DedupeKey::new("hoursmith", "evt-processed");
    if let Ok(ClaimOutcome::Claimed(claim)) = ready(store.claim(&key)) {
        ready(store.commit(&claim)).expect("commit");
    }
    group.bench_function("claim_duplicate/1_thread", |b| {
        b.iter(|| claim_duplicate(&store, &key))
    });
    group.finish();
}

/// Two threads claim + commit distinct keys in one store at the same time. The time
/// reported per iteration is the wall time for one claim + commit on each thread, so
/// perfect scaling reads the same as one thread and full serialization twice that.
fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("dedupe");
    group.throughput(Throughput::Elements(2));
    let store = Arc::new(full_store(DEFAULT_MAX_KEYS));
    let mut round = 0u32;
    group.bench_function("claim_commit/2_threads/1M_keys", |b| {
        b.iter_custom(|iters| {
            round += 1;
            let start = Arc::new(Barrier::new(3));
            let workers: Vec<_> = (0..2u32)
                .map(|t| {
                    let (store, start) = (store.clone(), start.clone());
                    let thread_tag = round * 2 + t;
                    thread::spawn(move || {
                        let mut id = String::new();
                        start.wait();
                        let begun = Instant::now();
                        for n in 0..iters {
                            claim_commit(&store, &mut id, thread_tag, n);
                        }
                        begun.elapsed()
                    })
                })
                .collect();
            start.wait();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker"))
                .max()
                .unwrap_or(Duration::ZERO)
        })
    });
    group.finish();
}

criterion_group!(benches, single_thread, two_threads);
criterion_main!(benches);
