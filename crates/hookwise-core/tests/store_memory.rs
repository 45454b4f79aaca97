//! The dedupe store's memory is bounded by `max_keys`, not by how many distinct
//! events arrive. Alone in its test binary, so no other test moves the RSS it reads.

// Memory and descriptors are read from Linux's /proc.
#![cfg(target_os = "linux")]

use hookwise_core::{ClaimOutcome, DedupeKey, DedupeStore, MemoryStore};
use hookwise_test_support::rss_bytes;

#[tokio::test]
async fn a_full_store_stays_at_its_bound_whatever_arrives() {
    const MAX_KEYS: usize = 25_000;
    let store = MemoryStore::new().max_keys(MAX_KEYS).expect("positive");
    let mut next = 0u64;
    // Unique event ids, each claimed and committed like a processed event; the ids
    // are long, as a sender may make them: the store keeps a fixed-size fingerprint.
    let mut fill = async |n: usize| {
        for _ in 0..n {
            let key = DedupeKey::new("hoursmith", &format!("{next:0>200}"));
            next += 1;
            match store.claim(&key).await.expect("memory store") {
                ClaimOutcome::Claimed(claim) => store.commit(&claim).await.expect("commit"),
                other => panic!("a new id was {other:?}"),
            }
        }
    };
    let empty = rss_bytes();
    // Up to the bound, then once more: the map's tables reach their working size
    // (evictions leave tombstones, and a rehash may double a shard once).
    fill(2 * MAX_KEYS).await;
    let settled = rss_bytes();
    // Then four times the bound again: nothing grows.
    let mut rounds = Vec::new();
    for _ in 0..4 {
        fill(MAX_KEYS).await;
        rounds.push(rss_bytes());
    }

    let stats = store.stats();
    assert_eq!(stats.keys, MAX_KEYS);
    assert_eq!(stats.evictions, 5 * MAX_KEYS as u64);
    let per_key = settled.saturating_sub(empty) as f64 / MAX_KEYS as f64;
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    eprintln!(
        "MemoryStore of {MAX_KEYS} keys: RSS {:.1} MiB empty, {:.1} MiB at the bound \
         ({per_key:.0} B per key), then {:.1?} MiB after each {MAX_KEYS} more unique ids",
        mib(empty),
        mib(settled),
        rounds.iter().map(|&r| mib(r)).collect::<Vec<_>>(),
    );
    // About 100 bytes per key (README); generous.
    assert!(per_key < 400.0, "{per_key:.0} bytes per key");
    for round in rounds {
        assert!(
            round < settled + 1024 * 1024,
            "RSS {:.1} -> {:.1} MiB",
            mib(settled),
            mib(round)
        );
    }
}
