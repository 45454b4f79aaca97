//! The in-memory dedupe store: one winner per key, provisional and confirmed claims,
//! TTL, lease (on the monotonic clock), bound, eviction of processed keys only.

use std::{
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use hookwise_core::{
    Claim, ClaimOutcome, Clock, ConfigError, DedupeKey, DedupeStore, Duplicate, ManualClock,
    MemoryStore, StoreError,
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

/// A claim that may be refused (a store full of in-flight claims).
fn try_claim(store: &MemoryStore, id: &str) -> Result<ClaimOutcome, StoreError> {
    run(store.claim(&key(id)))
}

fn claim(store: &MemoryStore, id: &str) -> ClaimOutcome {
    try_claim(store, id).expect("the store has room")
}

fn confirm(store: &MemoryStore, claim: &Claim) -> bool {
    run(store.confirm(claim)).expect("memory store never fails")
}

fn renew(store: &MemoryStore, claim: &Claim) -> bool {
    run(store.renew(claim)).expect("memory store never fails")
}

fn commit(store: &MemoryStore, claim: &Claim) {
    run(store.commit(claim)).expect("memory store never fails");
}

fn release(store: &MemoryStore, claim: &Claim) {
    run(store.release(claim)).expect("memory store never fails");
}

const PROVISIONAL: ClaimOutcome = ClaimOutcome::Duplicate(Duplicate::Provisional);
const IN_FLIGHT: ClaimOutcome = ClaimOutcome::Duplicate(Duplicate::InFlight);
const PROCESSED: ClaimOutcome = ClaimOutcome::Duplicate(Duplicate::Processed);

/// A store on a manual clock with a 60 s lease.
fn leased_store() -> (MemoryStore, ManualClock) {
    let clock = ManualClock::at_unix_secs(1_000_000);
    let store = MemoryStore::new()
        .lease(Duration::from_secs(60))
        .expect("valid")
        .clock(clock.clone());
    (store, clock)
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
fn provisional_then_in_flight_then_processed() {
    let store = MemoryStore::new();
    let first = claimed(&store, "a");
    // Not confirmed yet: its request may still fail, so a redelivery is not
    // acknowledged.
    assert_eq!(claim(&store, "a"), PROVISIONAL);
    assert!(confirm(&store, &first));
    assert_eq!(claim(&store, "a"), IN_FLIGHT);
    run(store.commit(&first)).expect("commit");
    assert_eq!(claim(&store, "a"), PROCESSED);
    assert_eq!(store.stats().duplicates, 3);
}

#[test]
fn renew_keeps_a_claim_provisional_or_confirmed_as_it_was() {
    let store = MemoryStore::new();
    let c = claimed(&store, "a");
    assert!(renew(&store, &c));
    assert_eq!(claim(&store, "a"), PROVISIONAL, "renew does not confirm");
    assert!(confirm(&store, &c));
    assert!(renew(&store, &c));
    assert_eq!(claim(&store, "a"), IN_FLIGHT, "renew does not unconfirm");
    assert!(confirm(&store, &c), "confirming twice is harmless");
    assert_eq!(claim(&store, "a"), IN_FLIGHT);
}

#[test]
fn confirm_and_renew_extend_the_lease_to_a_whole_lease_from_now() {
    let (store, clock) = leased_store();
    let provisional = claimed(&store, "p");
    let confirmed = claimed(&store, "c");
    clock.advance(Duration::from_secs(50));
    assert!(renew(&store, &provisional));
    assert!(confirm(&store, &confirmed));
    // 50 s + 59 s after the claims: past their first lease, within the renewed one.
    clock.advance(Duration::from_secs(59));
    assert_eq!(claim(&store, "p"), PROVISIONAL);
    assert_eq!(claim(&store, "c"), IN_FLIGHT);
    clock.advance(Duration::from_secs(1));
    assert!(matches!(claim(&store, "p"), ClaimOutcome::Claimed(_)));
    assert!(matches!(claim(&store, "c"), ClaimOutcome::Claimed(_)));
}

#[test]
fn confirm_and_renew_are_false_once_the_claim_no_longer_holds_its_key() {
    let (store, clock) = leased_store();
    // Released.
    let released = claimed(&store, "released");
    release(&store, &released);
    assert!(!confirm(&store, &released));
    assert!(!renew(&store, &released));
    // Committed.
    let committed = claimed(&store, "committed");
    commit(&store, &committed);
    assert!(!confirm(&store, &committed));
    assert!(!renew(&store, &committed));
    assert_eq!(claim(&store, "committed"), PROCESSED, "still processed");
    // Its lease ran out, and then another claim took the key.
    let expired = claimed(&store, "expired");
    let taken = claimed(&store, "taken");
    clock.advance(Duration::from_secs(60));
    assert!(
        !confirm(&store, &expired),
        "a lease that ran out is not revived"
    );
    assert!(!renew(&store, &expired));
    let newer = claimed(&store, "taken");
    assert!(!confirm(&store, &taken));
    assert!(!renew(&store, &taken));
    // Neither touched the newer claim.
    assert_eq!(claim(&store, "taken"), PROVISIONAL);
    assert!(confirm(&store, &newer));
    assert_eq!(claim(&store, "taken"), IN_FLIGHT);
}

#[test]
fn the_lease_period_is_the_configured_lease() {
    let (store, _) = leased_store();
    assert_eq!(store.lease_period(), Duration::from_secs(60));
    assert_eq!(
        MemoryStore::new().lease_period(),
        hookwise_core::dedupe::DEFAULT_LEASE
    );
}

#[test]
fn release_frees_a_provisional_or_confirmed_claim() {
    let store = MemoryStore::new();
    let provisional = claimed(&store, "p");
    let confirmed = claimed(&store, "c");
    assert!(confirm(&store, &confirmed));
    release(&store, &provisional);
    release(&store, &confirmed);
    assert!(matches!(claim(&store, "p"), ClaimOutcome::Claimed(_)));
    assert!(matches!(claim(&store, "c"), ClaimOutcome::Claimed(_)));
    assert_eq!(store.stats().keys, 2);
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
    assert!(confirm(&store, &crashed));
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
        ClaimOutcome::Duplicate(Duplicate::Provisional)
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
                    commit(&store, &claimed(&store, &format!("{t}-{i}")));
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
    assert_eq!(stats.refused_full, 0);
}

#[test]
fn the_bound_holds_under_concurrent_claims_that_never_commit() {
    let store = Arc::new(MemoryStore::new().max_keys(1000).expect("non-zero"));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                (0..5000)
                    .filter(|i| try_claim(&store, &format!("{t}-{i}")).is_err())
                    .count()
            })
        })
        .collect();
    let refused: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    let stats = store.stats();
    // No claim is evicted: once the store is full of claims, new ones are refused.
    assert_eq!(stats.keys, 1000, "{stats:?}");
    assert_eq!(stats.claims, 1000);
    assert_eq!(stats.evictions, 0);
    assert_eq!(stats.refused_full, 19_000);
    assert_eq!(refused, 19_000);
}

#[test]
fn eviction_keeps_in_flight_claims() {
    // Issue item 4: claim A (not committed), then B and C: A must still be held.
    let store = MemoryStore::new().max_keys(2).expect("non-zero");
    let a = claimed(&store, "A");
    commit(&store, &claimed(&store, "B"));
    commit(&store, &claimed(&store, "C"));
    assert_eq!(claim(&store, "A"), PROVISIONAL, "A was evicted");
    assert!(confirm(&store, &a));
    assert_eq!(claim(&store, "A"), IN_FLIGHT);
    // B, the oldest processed key, made room for C.
    let stats = store.stats();
    assert_eq!((stats.keys, stats.evictions), (2, 1), "{stats:?}");
    assert_eq!(claim(&store, "C"), PROCESSED);
    commit(&store, &claimed(&store, "B"));
}

#[test]
fn a_store_full_of_claims_refuses_a_new_claim_rather_than_evict_one() {
    let store = MemoryStore::new().max_keys(2).expect("non-zero");
    let a = claimed(&store, "A");
    let b = claimed(&store, "B");
    assert!(confirm(&store, &b));
    let refused = try_claim(&store, "C");
    assert!(refused.is_err(), "{refused:?}");
    let stats = store.stats();
    assert_eq!(
        (
            stats.keys,
            stats.claims,
            stats.evictions,
            stats.refused_full
        ),
        (2, 2, 0, 1),
        "{stats:?}"
    );
    // Both claims still hold their keys; the refused key is not held.
    assert_eq!(claim(&store, "A"), PROVISIONAL);
    assert_eq!(claim(&store, "B"), IN_FLIGHT);
    assert!(
        try_claim(&store, "C").is_err(),
        "C was left holding its key"
    );
    assert_eq!(store.stats().refused_full, 2);

    // Once a claim is committed, its processed key is evicted to make room.
    commit(&store, &a);
    let c = claimed(&store, "C");
    let stats = store.stats();
    assert_eq!((stats.keys, stats.evictions), (2, 1), "{stats:?}");
    assert_eq!(claim(&store, "B"), IN_FLIGHT);
    // And a released claim leaves room too.
    release(&store, &b);
    claimed(&store, "D");
    assert_eq!(claim(&store, "C"), PROVISIONAL);
    commit(&store, &c);
}

#[test]
fn a_full_store_drops_claims_whose_lease_ran_out_to_make_room() {
    let (store, clock) = leased_store();
    let store = store.max_keys(3).expect("non-zero");
    let crashed = claimed(&store, "crashed");
    let renewed = claimed(&store, "renewed");
    let _young = {
        clock.advance(Duration::from_secs(30));
        claimed(&store, "young")
    };
    assert!(renew(&store, &renewed));
    assert!(try_claim(&store, "new").is_err(), "full of live claims");
    // 61 s after the first two claims: `crashed` ran out, `renewed` did not.
    clock.advance(Duration::from_secs(31));
    claimed(&store, "new");
    let stats = store.stats();
    assert_eq!(
        (
            stats.keys,
            stats.expirations,
            stats.evictions,
            stats.refused_full
        ),
        (3, 1, 0, 1),
        "{stats:?}"
    );
    assert_eq!(claim(&store, "renewed"), PROVISIONAL);
    assert_eq!(claim(&store, "young"), PROVISIONAL);
    assert!(!renew(&store, &crashed));
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
        ClaimOutcome::Duplicate(Duplicate::Provisional)
    );
    run(store.commit(&keeper)).expect("commit");
}

#[test]
fn zero_settings_are_refused() {
    assert!(MemoryStore::new().max_keys(0).is_err());
    assert!(MemoryStore::new().retention(Duration::ZERO).is_err());
    assert!(MemoryStore::new().lease(Duration::ZERO).is_err());
}

#[test]
fn a_lease_under_a_millisecond_is_refused() {
    // Issue item 10: 500 µs rounded to a 0 ms lease, and every concurrent duplicate
    // won its claim.
    let given = Duration::from_micros(500);
    assert_eq!(
        MemoryStore::new().lease(given).err(),
        Some(ConfigError::TooShort {
            what: "dedupe lease",
            given,
            minimum: Duration::from_millis(1),
        })
    );
    assert!(
        MemoryStore::new()
            .lease(Duration::from_nanos(999_999))
            .is_err()
    );
    let store = MemoryStore::new()
        .lease(Duration::from_millis(1))
        .expect("a millisecond is enough");
    assert_eq!(store.lease_period(), Duration::from_millis(1));
}

#[test]
fn a_retention_under_a_millisecond_is_refused() {
    let given = Duration::from_micros(999);
    assert_eq!(
        MemoryStore::new().retention(given).err(),
        Some(ConfigError::TooShort {
            what: "dedupe retention",
            given,
            minimum: Duration::from_millis(1),
        })
    );
    let store = MemoryStore::new()
        .retention(Duration::from_millis(1))
        .expect("a millisecond is enough");
    assert_eq!(store.retention_period(), Duration::from_millis(1));
}

#[test]
fn a_wall_clock_step_frees_no_claim() {
    // Issue item 10: leases on the wall clock let a forward step (NTP, a resumed VM)
    // free every in-flight claim.
    let (store, clock) = leased_store();
    let held = claimed(&store, "a");
    clock.set(clock.now() + Duration::from_secs(3600));
    assert_eq!(
        claim(&store, "a"),
        PROVISIONAL,
        "freed by a wall-clock step"
    );
    assert!(renew(&store, &held), "its lease has not run out");
    assert!(confirm(&store, &held));
    assert_eq!(claim(&store, "a"), IN_FLIGHT);
    // Time passing past the lease does free it.
    clock.advance(Duration::from_secs(60));
    assert!(matches!(claim(&store, "a"), ClaimOutcome::Claimed(_)));
}

#[test]
fn a_wall_clock_step_back_keeps_no_claim_past_its_lease() {
    let (store, clock) = leased_store();
    claimed(&store, "a");
    clock.set(clock.now() - Duration::from_secs(3600));
    clock.advance(Duration::from_secs(60));
    assert!(
        matches!(claim(&store, "a"), ClaimOutcome::Claimed(_)),
        "held past its lease by a wall-clock step back"
    );
}

#[test]
fn retention_follows_the_wall_clock() {
    // Retention is about signed timestamps, which are wall-clock time.
    let clock = ManualClock::at_unix_secs(1_000_000);
    let store = MemoryStore::new()
        .retention(Duration::from_secs(3600))
        .expect("valid")
        .clock(clock.clone());
    commit(&store, &claimed(&store, "a"));
    clock.step(Duration::from_secs(3599));
    assert_eq!(claim(&store, "a"), PROCESSED);
    clock.step(Duration::from_secs(1));
    assert!(matches!(claim(&store, "a"), ClaimOutcome::Claimed(_)));
}

#[test]
fn claims_are_swept_on_the_monotonic_clock_and_processed_keys_on_the_wall_clock() {
    let clock = ManualClock::at_unix_secs(1_000_000);
    let store = MemoryStore::new()
        .lease(Duration::from_secs(10))
        .expect("valid")
        .retention(Duration::from_secs(20))
        .expect("valid")
        .clock(clock.clone());
    for i in 0..20 {
        claimed(&store, &format!("claim-{i}"));
        commit(&store, &claimed(&store, &format!("done-{i}")));
    }
    // An hour's wall-clock step: the processed keys are forgotten, not the claims.
    clock.set(clock.now() + Duration::from_secs(3600));
    for i in 0..10 {
        claimed(&store, &format!("new-{i}"));
    }
    let stats = store.stats();
    assert_eq!(stats.expirations, 20, "{stats:?}");
    assert_eq!(stats.keys, 30, "{stats:?}");
    for i in 0..20 {
        assert_eq!(claim(&store, &format!("claim-{i}")), PROVISIONAL);
    }
    // Ten seconds pass: the leases run out, and later claims sweep the claims.
    clock.advance(Duration::from_secs(10));
    // A few expired entries are swept per claim: 15 claims sweep all 30 claims.
    for i in 0..15 {
        claimed(&store, &format!("newer-{i}"));
    }
    let stats = store.stats();
    assert_eq!(stats.expirations, 20 + 30, "{stats:?}");
    assert_eq!(stats.keys, 15, "{stats:?}");
}
