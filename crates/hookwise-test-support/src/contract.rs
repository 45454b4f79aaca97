//! The [`DedupeStore`] protocol, as one suite every store runs: `MemoryStore`,
//! `RedisStore` and `PgStore` each call [`dedupe_store_contract`] with a way to make
//! themselves, and so answer to the same checks.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hookwise_core::{Claim, ClaimOutcome, DedupeKey, DedupeStore, Duplicate};

/// The lease the suite's expiry checks give a store: short, so that they wait
/// little, and long enough for a loaded machine to claim within it.
pub const CONTRACT_LEASE: Duration = Duration::from_millis(400);

/// A key no other run of the suite uses, for stores that outlive a run.
fn fresh_key(what: &str) -> DedupeKey {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    DedupeKey::new(
        "contract",
        &format!("{what}-{}-{nanos}-{n}", std::process::id()),
    )
}

async fn claim<S: DedupeStore>(store: &S, key: &DedupeKey) -> Claim {
    match store.claim(key).await {
        Ok(ClaimOutcome::Claimed(claim)) => claim,
        other => panic!("{key}: a free key was not claimed: {other:?}"),
    }
}

async fn duplicate<S: DedupeStore>(store: &S, key: &DedupeKey) -> Duplicate {
    match store.claim(key).await {
        Ok(ClaimOutcome::Duplicate(state)) => state,
        other => panic!("{key}: a taken key was claimed again: {other:?}"),
    }
}

/// Runs every check of the protocol against stores made by `make`, which is given
/// the lease to use ([`CONTRACT_LEASE`] for the expiry checks, a long one for the
/// others). `name` labels the failures.
///
/// What it checks: exactly one of many concurrent claims of a key wins; a claim is
/// provisional until confirmed, then in flight, then processed once committed;
/// release frees the key, but only for its own claim; confirm and renew act only
/// while the claim holds its key; renew keeps a claim as it was and extends it; an
/// unrenewed claim expires after its lease; and a commit after the claim expired
/// still records the event.
pub async fn dedupe_store_contract<S, F>(name: &str, make: F)
where
    S: DedupeStore + Clone,
    F: Fn(Duration) -> S,
{
    let store = make(Duration::from_secs(60));
    exactly_one_concurrent_claim_wins(name, &store).await;
    provisional_confirmed_processed(name, &store).await;
    release_frees_only_its_own_claim(name, &store).await;
    confirm_and_renew_only_while_held(name, &store).await;
    let short = make(CONTRACT_LEASE);
    renew_extends_and_keeps_the_state(name, &short).await;
    an_unrenewed_claim_expires(name, &short).await;
    a_commit_after_expiry_still_records(name, &short).await;
}

async fn exactly_one_concurrent_claim_wins<S: DedupeStore + Clone>(name: &str, store: &S) {
    for round in 0..5 {
        let key = fresh_key("race");
        let claims = (0..32).map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.claim(&key).await })
        });
        let mut won = 0;
        for claim in claims {
            match claim.await.expect("a claim task") {
                Ok(ClaimOutcome::Claimed(_)) => won += 1,
                Ok(ClaimOutcome::Duplicate(_)) => {}
                Err(error) => panic!("{name}: a claim failed: {error}"),
            }
        }
        assert_eq!(
            won, 1,
            "{name}, round {round}: {won} of 32 concurrent claims won"
        );
    }
}

async fn provisional_confirmed_processed<S: DedupeStore>(name: &str, store: &S) {
    let key = fresh_key("states");
    let claim = claim(store, &key).await;
    assert_eq!(
        duplicate(store, &key).await,
        Duplicate::Provisional,
        "{name}"
    );
    assert!(store.confirm(&claim).await.expect("confirm"), "{name}");
    assert_eq!(duplicate(store, &key).await, Duplicate::InFlight, "{name}");
    store.commit(&claim).await.expect("commit");
    assert_eq!(duplicate(store, &key).await, Duplicate::Processed, "{name}");
    // Released after the commit: the event stays processed.
    store.release(&claim).await.expect("release");
    assert_eq!(duplicate(store, &key).await, Duplicate::Processed, "{name}");
}

async fn release_frees_only_its_own_claim<S: DedupeStore>(name: &str, store: &S) {
    let key = fresh_key("release");
    let first = claim(store, &key).await;
    store.release(&first).await.expect("release");
    let second = claim(store, &key).await;
    assert_ne!(
        first.token(),
        second.token(),
        "{name}: a new claim, a new token"
    );
    // The first claim's owner, late, releases: the second claim keeps the key.
    store.release(&first).await.expect("release");
    assert_eq!(
        duplicate(store, &key).await,
        Duplicate::Provisional,
        "{name}"
    );
    store.release(&second).await.expect("release");
    let _third = claim(store, &key).await;
}

async fn confirm_and_renew_only_while_held<S: DedupeStore>(name: &str, store: &S) {
    let key = fresh_key("held");
    let first = claim(store, &key).await;
    store.release(&first).await.expect("release");
    assert!(
        !store.confirm(&first).await.expect("confirm"),
        "{name}: released"
    );
    assert!(
        !store.renew(&first).await.expect("renew"),
        "{name}: released"
    );
    let second = claim(store, &key).await;
    assert!(
        !store.confirm(&first).await.expect("confirm"),
        "{name}: another's"
    );
    assert_eq!(
        duplicate(store, &key).await,
        Duplicate::Provisional,
        "{name}"
    );
    store.commit(&second).await.expect("commit");
    assert!(
        !store.confirm(&second).await.expect("confirm"),
        "{name}: committed"
    );
    assert!(
        !store.renew(&second).await.expect("renew"),
        "{name}: committed"
    );
    assert_eq!(duplicate(store, &key).await, Duplicate::Processed, "{name}");
}

async fn renew_extends_and_keeps_the_state<S: DedupeStore>(name: &str, store: &S) {
    let lease = store.lease_period();
    let (provisional, confirmed) = (fresh_key("renew-p"), fresh_key("renew-c"));
    let kept = claim(store, &provisional).await;
    let taken = claim(store, &confirmed).await;
    assert!(store.confirm(&taken).await.expect("confirm"), "{name}");
    // Renewed every half lease for two leases: still held, as it was.
    for _ in 0..4 {
        tokio::time::sleep(lease / 2).await;
        assert!(store.renew(&kept).await.expect("renew"), "{name}");
        assert!(store.renew(&taken).await.expect("renew"), "{name}");
    }
    assert_eq!(
        duplicate(store, &provisional).await,
        Duplicate::Provisional,
        "{name}"
    );
    assert_eq!(
        duplicate(store, &confirmed).await,
        Duplicate::InFlight,
        "{name}"
    );
}

async fn an_unrenewed_claim_expires<S: DedupeStore>(name: &str, store: &S) {
    let key = fresh_key("expiry");
    let stale = claim(store, &key).await;
    tokio::time::sleep(store.lease_period() + store.lease_period() / 2).await;
    let fresh = claim(store, &key).await;
    // The stale owner can neither confirm, renew nor release the new claim.
    assert!(!store.confirm(&stale).await.expect("confirm"), "{name}");
    assert!(!store.renew(&stale).await.expect("renew"), "{name}");
    store.release(&stale).await.expect("release");
    assert_eq!(
        duplicate(store, &key).await,
        Duplicate::Provisional,
        "{name}"
    );
    store.release(&fresh).await.expect("release");
}

async fn a_commit_after_expiry_still_records<S: DedupeStore>(name: &str, store: &S) {
    let key = fresh_key("late-commit");
    let claim = claim(store, &key).await;
    tokio::time::sleep(store.lease_period() + store.lease_period() / 2).await;
    // Processed is a fact about the event, whatever became of the claim.
    store.commit(&claim).await.expect("commit");
    assert_eq!(duplicate(store, &key).await, Duplicate::Processed, "{name}");
}
