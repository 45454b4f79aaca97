//! The in-process dedupe store, on `dashmap`.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use dashmap::{DashMap, mapref::entry::Entry};
use sha2::{Digest as _, Sha256};

use super::{
    Claim, ClaimOutcome, DEFAULT_LEASE, DEFAULT_RETENTION, DedupeKey, DedupeStore, Duplicate,
    StoreError,
};
use crate::{Clock, ConfigError, clock};

/// The default bound on remembered keys.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// How many expired entries a claim sweeps from the front of the order queue, so that
/// expiry is amortized over claims instead of needing a background task.
const SWEEP_PER_CLAIM: usize = 4;

/// Keys are stored as the first 16 bytes of their SHA-256: a fixed, small size
/// whatever the sender's ids look like, and collisions are out of reach (2^-64 at
/// a billion keys).
type Fingerprint = [u8; 16];

fn fingerprint(key: &DedupeKey) -> Fingerprint {
    let digest = Sha256::digest(key.as_str().as_bytes());
    let mut fp = [0u8; 16];
    fp.copy_from_slice(&digest[..16]);
    fp
}

/// The fingerprint of a claim's key: the one the claim carries when this store made
/// it (a pure function of the key, so the same), else computed.
fn claim_fingerprint(claim: &Claim) -> Fingerprint {
    claim
        .fingerprint()
        .copied()
        .unwrap_or_else(|| fingerprint(claim.key()))
}

/// An entry of the claim-order queue: 32 bytes per remembered key.
#[derive(Debug, Clone, Copy)]
struct QueueEntry {
    fp: Fingerprint,
    /// The `seq` of the slot it was pushed for; another `seq` in the slot means the
    /// entry is stale.
    seq: u64,
    /// Unix milliseconds when it was pushed.
    pushed_at: u64,
}

/// One remembered key: 24 bytes beside its 16-byte fingerprint.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The claim's token, unique per store; also ties the slot to its queue entry.
    seq: u64,
    /// Unix milliseconds after which the slot is forgotten.
    expires_at: u64,
    /// Committed (processed) rather than in flight.
    done: bool,
}

/// An in-memory [`DedupeStore`]: bounded, with TTL retention and oldest-first eviction.
///
/// - A committed key is remembered for the retention time (default 96 h); an in-flight
///   claim for the lease (default 5 min).
/// - At most `max_keys` keys are held (default 1,000,000, about 120 bytes each):
///   past that, the oldest claimed key is evicted and counted in
///   [`DedupeStats::evictions`].
/// - Expired keys are swept a few at a time on each claim; no background task.
///
/// It dedupes within one process. Several instances behind a load balancer need a
/// shared store.
///
/// ```
/// use hookwise_core::{ClaimOutcome, DedupeKey, DedupeStore, Duplicate, MemoryStore};
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let key = DedupeKey::new("hoursmith", "evt_1");
/// let ClaimOutcome::Claimed(claim) = store.claim(&key).await? else { unreachable!() };
/// assert_eq!(store.claim(&key).await?, ClaimOutcome::Duplicate(Duplicate::InFlight));
/// store.commit(&claim).await?;
/// assert_eq!(store.claim(&key).await?, ClaimOutcome::Duplicate(Duplicate::Processed));
/// assert_eq!(store.stats().duplicates, 2);
/// # Ok::<(), hookwise_core::StoreError>(())
/// # })?;
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// # Ok::<(), hookwise_core::StoreError>(())
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    slots: DashMap<Fingerprint, Slot>,
    /// Fingerprints in claim order, each with the `seq` it was pushed for and when
    /// (Unix milliseconds); an entry
    /// whose `seq` no longer matches its slot is stale and skipped.
    order: Mutex<VecDeque<QueueEntry>>,
    len: AtomicUsize,
    next_seq: AtomicU64,
    retention: Duration,
    lease: Duration,
    max_keys: usize,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    claims: AtomicU64,
    duplicates: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

/// A snapshot of a [`MemoryStore`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DedupeStats {
    /// Claims won (keys taken for processing).
    pub claims: u64,
    /// Claims lost to an in-flight or processed key.
    pub duplicates: u64,
    /// Keys dropped, oldest first, to stay within `max_keys`.
    pub evictions: u64,
    /// Keys forgotten because their retention or lease ran out.
    pub expirations: u64,
    /// Keys held now.
    pub keys: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the defaults: 96 h retention, 5 min lease, 1,000,000 keys.
    pub fn new() -> Self {
        Self {
            slots: DashMap::new(),
            order: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            next_seq: AtomicU64::new(1),
            retention: DEFAULT_RETENTION,
            lease: DEFAULT_LEASE,
            max_keys: DEFAULT_MAX_KEYS,
            clock: clock::system(),
            counters: Counters::default(),
        }
    }

    /// Sets how long a processed event is remembered (default 96 h).
    pub fn retention(mut self, retention: Duration) -> Result<Self, ConfigError> {
        if retention.is_zero() {
            return Err(ConfigError::Zero("dedupe retention"));
        }
        self.retention = retention;
        Ok(self)
    }

    /// Sets how long an in-flight claim holds its key before it expires (default
    /// 5 min). Make it longer than processing, retries included, takes.
    pub fn lease(mut self, lease: Duration) -> Result<Self, ConfigError> {
        if lease.is_zero() {
            return Err(ConfigError::Zero("dedupe lease"));
        }
        self.lease = lease;
        Ok(self)
    }

    /// Sets the bound on remembered keys (default 1,000,000).
    pub fn max_keys(mut self, max_keys: usize) -> Result<Self, ConfigError> {
        if max_keys == 0 {
            return Err(ConfigError::Zero("dedupe max_keys"));
        }
        self.max_keys = max_keys;
        Ok(self)
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The counters, and how many keys are held.
    pub fn stats(&self) -> DedupeStats {
        DedupeStats {
            claims: self.counters.claims.load(Relaxed),
            duplicates: self.counters.duplicates.load(Relaxed),
            evictions: self.counters.evictions.load(Relaxed),
            expirations: self.counters.expirations.load(Relaxed),
            keys: self.len.load(Relaxed),
        }
    }

    fn now_ms(&self) -> u64 {
        clock::millis(self.clock.now())
    }

    fn deadline(&self, now: u64, ttl: Duration) -> u64 {
        now.saturating_add(clock::millis(ttl))
    }

    /// The synchronous claim: one shard lock, held only for the entry.
    fn claim_now(&self, key: &DedupeKey) -> ClaimOutcome {
        let fp = fingerprint(key);
        let now = self.now_ms();
        let seq = self.next_seq.fetch_add(1, Relaxed);
        let slot = Slot {
            seq,
            expires_at: self.deadline(now, self.lease),
            done: false,
        };
        match self.slots.entry(fp) {
            Entry::Occupied(held) if held.get().expires_at > now => {
                self.counters.duplicates.fetch_add(1, Relaxed);
                return ClaimOutcome::Duplicate(if held.get().done {
                    Duplicate::Processed
                } else {
                    Duplicate::InFlight
                });
            }
            Entry::Occupied(mut expired) => {
                // A lease or retention ran out: the key is free again.
                self.counters.expirations.fetch_add(1, Relaxed);
                *expired.get_mut() = slot;
            }
            Entry::Vacant(free) => {
                free.insert(slot);
                self.len.fetch_add(1, Relaxed);
            }
        }
        // The shard guard is dropped: `enqueue` takes the order lock, then shard
        // locks, and no path takes them the other way round.
        self.counters.claims.fetch_add(1, Relaxed);
        self.enqueue(fp, seq, now);
        ClaimOutcome::Claimed(Claim::with_fingerprint(key.clone(), seq, fp))
    }

    fn commit_now(&self, claim: &Claim) {
        let fp = claim_fingerprint(claim);
        let now = self.now_ms();
        let expires_at = self.deadline(now, self.retention);
        let requeue = match self.slots.entry(fp) {
            Entry::Occupied(mut held) if held.get().seq == claim.token() => {
                let slot = held.get_mut();
                slot.done = true;
                slot.expires_at = expires_at;
                None
            }
            // The claim expired, was evicted or taken over meanwhile; the event was
            // processed all the same, so remember that under a fresh entry.
            entry => {
                let seq = self.next_seq.fetch_add(1, Relaxed);
                let slot = Slot {
                    seq,
                    expires_at,
                    done: true,
                };
                match entry {
                    Entry::Occupied(mut held) => *held.get_mut() = slot,
                    Entry::Vacant(free) => {
                        free.insert(slot);
                        self.len.fetch_add(1, Relaxed);
                    }
                }
                Some(seq)
            }
        };
        if let Some(seq) = requeue {
            self.enqueue(fp, seq, now);
        }
    }

    fn release_now(&self, claim: &Claim) {
        let fp = claim_fingerprint(claim);
        let removed = self
            .slots
            .remove_if(&fp, |_, slot| slot.seq == claim.token() && !slot.done);
        if removed.is_some() {
            self.len.fetch_sub(1, Relaxed);
        }
    }

    /// Records a new slot in claim order, then restores the bounds: sweeps expired
    /// slots off the front, evicts the oldest while over `max_keys`, and compacts the
    /// queue when stale entries dominate it.
    fn enqueue(&self, fp: Fingerprint, seq: u64, now: u64) {
        let mut order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
        order.push_back(QueueEntry {
            fp,
            seq,
            pushed_at: now,
        });
        // No slot expires sooner than this after its entry was pushed: a claim holds
        // for the lease, a commit (always later) for the retention.
        let min_ttl = clock::millis(self.lease.min(self.retention));

        let mut swept = 0;
        while swept < SWEEP_PER_CLAIM {
            let Some(&QueueEntry {
                fp: front,
                seq: front_seq,
                pushed_at,
            }) = order.front()
            else {
                break;
            };
            // The front was pushed first, so if it cannot have expired yet, nothing
            // behind it has either: stop without touching the map (a stale front is
            // left for later; it holds no key).
            if now < pushed_at.saturating_add(min_ttl) {
                break;
            }
            // The common case, a live front that has not expired, costs one shared
            // lookup; only an expired or stale front takes the shard's write lock.
            let front_state = self
                .slots
                .get(&front)
                .map(|slot| (slot.seq == front_seq, slot.expires_at <= now));
            if front_state == Some((true, false)) {
                break;
            }
            let removed = self.slots.remove_if(&front, |_, slot| {
                slot.seq == front_seq && slot.expires_at <= now
            });
            if removed.is_some() {
                self.len.fetch_sub(1, Relaxed);
                self.counters.expirations.fetch_add(1, Relaxed);
            } else if self.is_live(&front, front_seq) {
                break;
            }
            order.pop_front();
            swept += 1;
        }

        while self.len.load(Relaxed) > self.max_keys {
            let Some(QueueEntry {
                fp: oldest,
                seq: oldest_seq,
                ..
            }) = order.pop_front()
            else {
                break;
            };
            if self
                .slots
                .remove_if(&oldest, |_, slot| slot.seq == oldest_seq)
                .is_some()
            {
                self.len.fetch_sub(1, Relaxed);
                self.counters.evictions.fetch_add(1, Relaxed);
            }
        }

        // Released and re-claimed keys leave stale entries behind; keep the queue
        // within twice the live keys so it is bounded too.
        if order.len() > 2 * self.len.load(Relaxed).max(1024) {
            order.retain(|entry| self.is_live(&entry.fp, entry.seq));
        }
    }

    /// Whether the queue entry `(fp, seq)` still refers to its slot.
    fn is_live(&self, fp: &Fingerprint, seq: u64) -> bool {
        self.slots.get(fp).is_some_and(|slot| slot.seq == seq)
    }
}

impl DedupeStore for MemoryStore {
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        Ok(self.claim_now(key))
    }

    async fn commit(&self, claim: &Claim) -> Result<(), StoreError> {
        self.commit_now(claim);
        Ok(())
    }

    async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.release_now(claim);
        Ok(())
    }

    fn retention_period(&self) -> Duration {
        self.retention
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(store: &MemoryStore, id: &str) -> Claim {
        match store.claim_now(&DedupeKey::new("t", id)) {
            ClaimOutcome::Claimed(claim) => claim,
            other => panic!("{other:?}"),
        }
    }

    fn queue_len(store: &MemoryStore) -> usize {
        store.order.lock().map(|q| q.len()).unwrap_or_default()
    }

    #[test]
    fn stale_queue_entries_from_release_cycles_stay_bounded() {
        let store = MemoryStore::new();
        let _keeper = claim(&store, "keeper");
        for _ in 0..100_000 {
            let flapping = claim(&store, "flapping");
            store.release_now(&flapping);
        }
        // Compaction keeps the queue within twice the live keys (floor 1024).
        assert!(queue_len(&store) <= 2 * 1024 + 1, "{}", queue_len(&store));
        assert_eq!(store.stats().keys, 1);
    }

    #[test]
    fn a_claim_carries_its_keys_fingerprint_and_commits_without_it_too() {
        let store = MemoryStore::new();
        let made = claim(&store, "carried");
        assert_eq!(made.fingerprint(), Some(&fingerprint(made.key())));
        // The same claim rebuilt by hand (no fingerprint) is the same claim.
        let bare = Claim::new(made.key().clone(), made.token());
        assert_eq!(bare, made);
        store.commit_now(&bare);
        assert_eq!(
            store.claim_now(made.key()),
            ClaimOutcome::Duplicate(Duplicate::Processed)
        );
    }

    #[test]
    fn a_slot_is_small() {
        // 16-byte fingerprint + 24-byte slot: the per-key budget of the bound.
        assert_eq!(size_of::<Fingerprint>() + size_of::<Slot>(), 40);
    }
}
