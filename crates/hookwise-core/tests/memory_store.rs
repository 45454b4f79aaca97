//! The in-memory dedupe store: one winner per key, TTL, lease, bound, eviction.

use std::{
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use hookwise_core::{
    Claim, ClaimOutcome, DedupeKey, DedupeStore, Duplicate, ManualClock, MemoryStore,
};

fn key(id: &str) -> DedupeKey {
    DedupeKey::new("test", id)
}

/// The store's methods are async but never wait; a tiny executor keeps the thread
/// tests free of a runtime.
fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn claim(store: &MemoryStore, id: &str) -> ClaimOutcome {
    run(store.claim(&key(id))).expect("memory store never fails")
}

fn claimed(store: &MemoryStore, id: &str) -> Claim {
    match claim(store, id) {
        ClaimOutcome::Claimed(claim) => claim,
        other => panic!("{id}: expected a claim, got {other:?}"),
    }
}

#[test]
fn exactly_one_of_many_threads_wins_a_key() {
    const THREADS: usize = 16;
    for round in 0..50 {
        let store = Arc::new(MemoryStore::new());
        let barrier = Arc::new(Barrier::new(THREADS));
        let winners: usize = (0..THREADS)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    matches!(claim(&store, "contended"), ClaimOutcome::Claimed(_))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| usize::from(t.join().expect("thread")))
            .sum();
        assert_eq!(winners, 1, "round {round}");
        let stats = store.stats();
        assert_eq!((stats.claims, stats.duplicates), (1, THREADS as u64 - 1));
    }
}

#[test]
fn concurrent_claims_of_distinct_keys_all_win() {
    let store = Arc::new(MemoryStore::new());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                (0..1000)
                    .filter(|i| {
                        matches!(claim(&store, &format!("{t}-{i}")), ClaimOutcome::Claimed(_))
                    })
                    .count()
            })
        })
        .collect();
    let won: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    assert_eq!(won, 8000);
    assert_eq!(store.stats().keys, 8000);
}

#[test]
fn in_flight_then_processed() {
    let store = MemoryStore::new();
    let first = claimed(&store, "a");
    assert_eq!(
        claim(&store, "a"),
        ClaimOutcome::Duplicate(Duplicate::InFlight)
    );
    run(store.commit(&first)).expect("commit");
    assert_eq!(
        claim(&store, "a"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
}

#[test]
fn committed_keys_expire_after_the_retention() {
    let clock = ManualClock::at_unix_secs(1_000_000);
    let store = MemoryStore::new()
        .retention(Duration::from_secs(96 * 3600))
        .expect("non-zero")
        .clock(clock.clone());
    run(store.commit(&claimed(&store, "a"))).expect("commit");

    clock.advance(Duration::from_secs(96 * 3600 - 1));
    assert_eq!(
        claim(&store, "a"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
    clock.advance(Duration::from_secs(1));
    assert!(
        matches!(claim(&store, "a"), ClaimOutcome::Claimed(_)),
        "forgotten after 96 h"
    );
    assert_eq!(store.stats().expirations, 1);
}

#[test]
fn an_abandoned_claim_expires_after_the_lease() {
    let clock = ManualClock::at_unix_secs(1_000_000);
    let store = MemoryStore::new()
        .lease(Duration::from_secs(60))
        .expect("non-zero")
        .clock(clock.clone());
    let crashed = claimed(&store, "a");
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        claim(&store, "a"),
        ClaimOutcome::Duplicate(Duplicate::InFlight)
    );
    clock.advance(Duration::from_secs(1));
    let retry = claimed(&store, "a");
    assert_ne!(retry.token(), crashed.token());

    // The crashed claim's late release must not free the new claim.
    run(store.release(&crashed)).expect("release");
    assert_eq!(
        claim(&store, "a"),
        ClaimOutcome::Duplicate(Duplicate::InFlight)
    );
    run(store.release(&retry)).expect("release");
    assert!(matches!(claim(&store, "a"), ClaimOutcome::Claimed(_)));
}

#[test]
fn a_late_commit_still_records_the_event_as_processed() {
    let clock = ManualClock::at_unix_secs(1_000_000);
    let store = MemoryStore::new()
        .lease(Duration::from_secs(60))
        .expect("non-zero")
        .clock(clock.clone());
    let slow = claimed(&store, "a");
    clock.advance(Duration::from_secs(61));
    let second = claimed(&store, "a");
    run(store.commit(&slow)).expect("commit");
    // The second claimant fails and releases: the processed record survives.
    run(store.release(&second)).expect("release");
    assert_eq!(
        claim(&store, "a"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
}

#[test]
fn release_after_commit_keeps_the_processed_record() {
    let store = MemoryStore::new();
    let c = claimed(&store, "a");
    run(store.commit(&c)).expect("commit");
    run(store.release(&c)).expect("release");
    assert_eq!(
        claim(&store, "a"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
}

#[test]
fn the_bound_holds_and_evicts_oldest_first() {
    let store = MemoryStore::new().max_keys(100).expect("non-zero");
    for i in 0..250 {
        run(store.commit(&claimed(&store, &i.to_string()))).expect("commit");
        assert!(store.stats().keys <= 100, "after {i}: {:?}", store.stats());
    }
    let stats = store.stats();
    assert_eq!((stats.keys, stats.evictions), (100, 150));
    // The newest 100 are remembered, the oldest 150 forgotten.
    assert_eq!(
        claim(&store, "249"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
    assert_eq!(
        claim(&store, "150"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
    assert!(matches!(claim(&store, "149"), ClaimOutcome::Claimed(_)));
    assert_eq!(store.stats().keys, 100);
}

#[test]
fn the_bound_holds_under_concurrent_claims() {
    let store = Arc::new(MemoryStore::new().max_keys(1000).expect("non-zero"));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..5000 {
                    claim(&store, &format!("{t}-{i}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let stats = store.stats();
    assert_eq!(stats.keys, 1000, "{stats:?}");
    assert_eq!(stats.claims, 20_000);
    assert_eq!(stats.evictions, 19_000);
}

#[test]
fn expired_keys_are_swept_by_later_claims() {
    let clock = ManualClock::at_unix_secs(1_000_000);
    let store = MemoryStore::new()
        .retention(Duration::from_secs(10))
        .expect("non-zero")
        .clock(clock.clone());
    for i in 0..40 {
        run(store.commit(&claimed(&store, &format!("old-{i}")))).expect("commit");
    }
    clock.advance(Duration::from_secs(11));
    for i in 0..10 {
        claimed(&store, &format!("new-{i}"));
    }
    let stats = store.stats();
    assert_eq!(stats.expirations, 40, "{stats:?}");
    assert_eq!(stats.keys, 10);
}

#[test]
fn release_and_reclaim_cycles_keep_one_key_per_event() {
    let store = MemoryStore::new().max_keys(10).expect("non-zero");
    let keeper = claimed(&store, "keeper");
    for _ in 0..10_000 {
        let c = claimed(&store, "flapping");
        run(store.release(&c)).expect("release");
    }
    assert_eq!(store.stats().keys, 1);
    assert_eq!(
        claim(&store, "keeper"),
        ClaimOutcome::Duplicate(Duplicate::InFlight)
    );
    run(store.commit(&keeper)).expect("commit");
}

#[test]
fn zero_settings_are_refused() {
    assert!(MemoryStore::new().max_keys(0).is_err());
    assert!(MemoryStore::new().retention(Duration::ZERO).is_err());
    assert!(MemoryStore::new().lease(Duration::ZERO).is_err());
}
