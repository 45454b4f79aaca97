//! The in-process dedupe store, on `dashmap`.

use std::{
    collections::VecDeque,
    hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use dashmap::{DashMap, mapref::entry::Entry};

use super::{
    Claim, ClaimOutcome, DEFAULT_LEASE, DEFAULT_RETENTION, DedupeKey, DedupeStore, Duplicate,
    StoreError,
};
use crate::{Clock, ConfigError, clock};

/// The default bound on remembered keys.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The shortest lease or retention accepted: the store counts in milliseconds, so a
/// shorter one would round to nothing and let every duplicate in.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// How many entries a claim sweeps from the front of each order queue, so that
/// expiry is amortized over claims instead of needing a background task.
const SWEEP_PER_CLAIM: usize = 4;

/// Keys are stored as a 128-bit keyed hash: a fixed, small size whatever the
/// sender's ids look like. Two independent keyed SipHash values (the standard
/// library's `RandomState`, seeded from the OS once per process): a sender who does
/// not know the keys cannot aim at a collision, and chance collisions are out of
/// reach (2^-64 at a billion keys). A tenth of the cost of the SHA-256 it replaces
/// (`BENCHMARKS.md`, section 11).
type Fingerprint = [u8; 16];

fn fingerprint(key: &DedupeKey) -> Fingerprint {
    static KEYS: std::sync::OnceLock<[RandomState; 2]> = std::sync::OnceLock::new();
    let [low, high] = KEYS.get_or_init(|| [RandomState::new(), RandomState::new()]);
    let bytes = key.as_str().as_bytes();
    let mut fp = [0u8; 16];
    fp[..8].copy_from_slice(&low.hash_one(bytes).to_le_bytes());
    fp[8..].copy_from_slice(&high.hash_one(bytes).to_le_bytes());
    fp
}

/// Hashes a fingerprint for the map by taking its first 8 bytes: they are already
/// a keyed hash, so hashing them again would only cost time.
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A `[u8; 16]` hashes as its length, then its bytes: keep the bytes.
        if let Some(first) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*first);
        }
    }

    fn write_usize(&mut self, _len: usize) {}
}

type Slots = DashMap<Fingerprint, Slot, BuildHasherDefault<FingerprintHasher>>;

/// The fingerprint of a claim's key: the one the claim carries when this store made
/// it (a pure function of the key, so the same), else computed.
fn claim_fingerprint(claim: &Claim) -> Fingerprint {
    claim
        .fingerprint()
        .copied()
        .unwrap_or_else(|| fingerprint(claim.key()))
}

/// An entry of an order queue: 32 bytes.
#[derive(Debug, Clone, Copy)]
struct QueueEntry {
    fp: Fingerprint,
    /// The `seq` of the slot it was pushed for; another `seq` in the slot means the
    /// entry is stale.
    seq: u64,
    /// The slot's deadline when the entry was pushed, on the slot's clock: monotonic
    /// milliseconds in the claims queue, Unix milliseconds in the processed queue.
    deadline: u64,
}

/// Where a remembered key is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Claimed, not confirmed: a redelivery is [`Duplicate::Provisional`].
    Provisional,
    /// Claimed and confirmed: a redelivery is [`Duplicate::InFlight`].
    Confirmed,
    /// Committed (processed): a redelivery is [`Duplicate::Processed`].
    Done,
}

impl State {
    /// Held by a claim (provisional or confirmed) rather than committed.
    fn in_flight(self) -> bool {
        self != Self::Done
    }

    /// What a claim of a key in this state loses to.
    fn duplicate(self) -> Duplicate {
        match self {
            Self::Provisional => Duplicate::Provisional,
            Self::Confirmed => Duplicate::InFlight,
            Self::Done => Duplicate::Processed,
        }
    }
}

/// One remembered key: 24 bytes beside its 16-byte fingerprint.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The claim's token, unique per store; also ties the slot to its queue entries.
    seq: u64,
    /// The millisecond from which the slot is forgotten, on its own clock: monotonic
    /// time for a claim (its lease), Unix time once done (its retention).
    expires_at: u64,
    /// Provisional, confirmed or done.
    state: State,
}

/// Both readings of the clock, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Now {
    /// Unix milliseconds: retention deadlines.
    wall: u64,
    /// Monotonic milliseconds: lease deadlines.
    monotonic: u64,
}

/// An in-memory [`DedupeStore`]: bounded, with TTL retention and oldest-first eviction
/// of processed keys.
///
/// - A committed key is remembered for the retention time (default 96 h), on the wall
///   clock, as the signed timestamps it guards against are. A claim holds its key for
///   the lease (default 5 min) from when it was made, confirmed or last renewed, on
///   the monotonic clock ([`Clock::monotonic`]), so a step of the wall clock frees no
///   claim.
/// - At most `max_keys` keys are held (default 1,000,000, about 120 bytes each):
///   past that, the oldest processed (committed) key is evicted and counted in
///   [`DedupeStats::evictions`]. A key held by a claim is never evicted, since its
///   event would then run twice: when every held key is a live claim, a new claim is
///   refused with a [`StoreError`] (the receiver answers `503`, and the sender
///   retries) and counted in [`DedupeStats::refused_full`]. Claims whose lease ran
///   out are dropped to make room.
/// - Expired keys are swept a few at a time on each claim; no background task.
///   Eviction takes the oldest processed key from a queue, so it costs the same
///   whatever the number of keys.
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
/// // Not confirmed yet: a redelivery is answered `409`, so the sender tries again.
/// assert_eq!(store.claim(&key).await?, ClaimOutcome::Duplicate(Duplicate::Provisional));
/// // Confirmed: the event is taken care of, a redelivery is answered `200`.
/// assert!(store.confirm(&claim).await?);
/// assert_eq!(store.claim(&key).await?, ClaimOutcome::Duplicate(Duplicate::InFlight));
/// store.commit(&claim).await?;
/// assert_eq!(store.claim(&key).await?, ClaimOutcome::Duplicate(Duplicate::Processed));
/// assert_eq!(store.stats().duplicates, 3);
/// # Ok::<(), hookwise_core::StoreError>(())
/// # })?;
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// # Ok::<(), hookwise_core::StoreError>(())
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    slots: Slots,
    /// The order queues, under one lock. Whoever holds it may take shard locks
    /// (to look entries up or remove them), so it is never taken while a shard
    /// lock is held.
    order: Mutex<Order>,
    /// Keys held, claimed or processed.
    len: AtomicUsize,
    /// Keys held by a claim (provisional or confirmed).
    in_flight: AtomicUsize,
    next_seq: AtomicU64,
    retention: Duration,
    lease: Duration,
    max_keys: usize,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

/// The keys in the order they expire and are evicted in.
#[derive(Debug, Default)]
struct Order {
    /// Claims in the order they were made (or last found renewed), each with its
    /// lease deadline then; an entry whose `seq` no longer matches its slot, or whose
    /// slot is done, is stale and skipped.
    claims: VecDeque<QueueEntry>,
    /// Processed keys in commit order, each with its retention deadline: the eviction
    /// order. An entry whose slot has another `seq`, is not done, or has another
    /// deadline is stale and skipped.
    processed: VecDeque<QueueEntry>,
}

#[derive(Debug, Default)]
struct Counters {
    claims: AtomicU64,
    duplicates: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    refused_full: AtomicU64,
}

/// A snapshot of a [`MemoryStore`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DedupeStats {
    /// Claims won (keys taken for processing).
    pub claims: u64,
    /// Claims lost to a key that is claimed (provisional or confirmed) or processed.
    pub duplicates: u64,
    /// Processed keys dropped, oldest first, to stay within `max_keys`.
    pub evictions: u64,
    /// Keys forgotten because their retention or lease ran out.
    pub expirations: u64,
    /// Keys held now.
    pub keys: usize,
    /// Claims refused (a [`StoreError`], answered `503`) because the store held
    /// `max_keys` keys and all of them were live claims, none of which may be evicted.
    pub refused_full: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks a lease or retention: positive, and at least [`MIN_PERIOD`].
fn check_period(what: &'static str, given: Duration) -> Result<Duration, ConfigError> {
    if given.is_zero() {
        Err(ConfigError::Zero(what))
    } else if given < MIN_PERIOD {
        Err(ConfigError::TooShort {
            what,
            given,
            minimum: MIN_PERIOD,
        })
    } else {
        Ok(given)
    }
}

fn lock(order: &Mutex<Order>) -> MutexGuard<'_, Order> {
    order.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    /// A store with the defaults: 96 h retention, 5 min lease, 1,000,000 keys.
    pub fn new() -> Self {
        Self {
            slots: Slots::default(),
            order: Mutex::default(),
            len: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            next_seq: AtomicU64::new(1),
            retention: DEFAULT_RETENTION,
            lease: DEFAULT_LEASE,
            max_keys: DEFAULT_MAX_KEYS,
            clock: clock::system(),
            counters: Counters::default(),
        }
    }

    /// Sets how long a processed event is remembered (default 96 h). At least 1 ms
    /// ([`ConfigError::TooShort`]).
    pub fn retention(mut self, retention: Duration) -> Result<Self, ConfigError> {
        self.retention = check_period("dedupe retention", retention)?;
        Ok(self)
    }

    /// Sets the lease (default 5 min): how long a claim holds its key after it was
    /// made, confirmed or last [renewed](DedupeStore::renew), unless it is committed
    /// or released first. A holder that does not renew must finish within it. At
    /// least 1 ms ([`ConfigError::TooShort`]): the store counts whole milliseconds.
    pub fn lease(mut self, lease: Duration) -> Result<Self, ConfigError> {
        self.lease = check_period("dedupe lease", lease)?;
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

    /// Reads time from `clock` instead of the system clock (for tests): its wall
    /// clock for retention, its monotonic clock for leases.
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
            refused_full: self.counters.refused_full.load(Relaxed),
        }
    }

    fn wall_ms(&self) -> u64 {
        clock::millis(self.clock.now())
    }

    fn monotonic_ms(&self) -> u64 {
        clock::millis(self.clock.monotonic())
    }

    fn deadline(&self, now: u64, ttl: Duration) -> u64 {
        now.saturating_add(clock::millis(ttl))
    }

    /// The slot of a new, provisional claim made at `monotonic`.
    fn new_claim(&self, seq: u64, monotonic: u64) -> Slot {
        Slot {
            seq,
            expires_at: self.deadline(monotonic, self.lease),
            state: State::Provisional,
        }
    }

    /// The synchronous claim: one shard lock, held only for the entry.
    fn claim_now(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        let fp = fingerprint(key);
        let seq = self.next_seq.fetch_add(1, Relaxed);
        let (grew, monotonic) = match self.slots.entry(fp) {
            Entry::Occupied(mut held) => {
                let current = *held.get();
                // A duplicate reads only the clock its slot's deadline is on.
                let now = if current.state.in_flight() {
                    self.monotonic_ms()
                } else {
                    self.wall_ms()
                };
                if current.expires_at > now {
                    self.counters.duplicates.fetch_add(1, Relaxed);
                    return Ok(ClaimOutcome::Duplicate(current.state.duplicate()));
                }
                // A lease or retention ran out: the key is free again.
                self.counters.expirations.fetch_add(1, Relaxed);
                if !current.state.in_flight() {
                    self.in_flight.fetch_add(1, Relaxed);
                }
                let monotonic = self.monotonic_ms();
                *held.get_mut() = self.new_claim(seq, monotonic);
                (false, monotonic)
            }
            Entry::Vacant(free) => {
                let monotonic = self.monotonic_ms();
                free.insert(self.new_claim(seq, monotonic));
                self.len.fetch_add(1, Relaxed);
                self.in_flight.fetch_add(1, Relaxed);
                (true, monotonic)
            }
        };
        let deadline = self.deadline(monotonic, self.lease);
        // The shard guard is dropped: the queues' lock is taken before shard locks,
        // and no path takes them the other way round.
        let now = Now {
            wall: self.wall_ms(),
            monotonic,
        };
        if !self.admit(fp, seq, deadline, now, grew) {
            if self
                .slots
                .remove_if(&fp, |_, slot| slot.seq == seq && slot.state.in_flight())
                .is_some()
            {
                self.len.fetch_sub(1, Relaxed);
                self.in_flight.fetch_sub(1, Relaxed);
            }
            self.counters.refused_full.fetch_add(1, Relaxed);
            return Err(StoreError::new(format!(
                "the in-memory dedupe store holds {} keys, all claimed by events in flight",
                self.max_keys
            )));
        }
        self.counters.claims.fetch_add(1, Relaxed);
        Ok(ClaimOutcome::Claimed(Claim::with_fingerprint(
            key.clone(),
            seq,
            fp,
        )))
    }

    /// Restores the bounds after a new claim's slot was inserted (`grew`) or took an
    /// expired slot's place, and records it in claim order: sweeps expired keys, evicts
    /// the oldest processed keys while over `max_keys`, and when no processed key is
    /// left to evict, drops expired claims or refuses the new claim (`false`) if it
    /// grew the store past the bound.
    fn admit(&self, fp: Fingerprint, seq: u64, deadline: u64, now: Now, grew: bool) -> bool {
        let mut order = lock(&self.order);
        let Order { claims, processed } = &mut *order;
        self.sweep_processed(processed, now.wall);
        let exhausted = self.evict_processed(processed, now.wall);
        // Whether this claim is over the bound with nothing processed to evict. A
        // claim that took an expired slot's place did not grow the store: it is not
        // the one to refuse. (Over the bound only because of claims being made
        // alongside, which evict for themselves, is not full either.)
        let full = || exhausted && grew && self.len.load(Relaxed) > self.max_keys;
        // When full, drop the claims whose lease ran out, however many: amortized all
        // the same, as each entry is popped once, and requeued once per renewal.
        // Claims being made, confirmed or ended alongside may still win this one a
        // `503` it could have done without; the sender retries.
        let sweep = if full() { usize::MAX } else { SWEEP_PER_CLAIM };
        self.sweep_claims(claims, now.monotonic, sweep);
        if full() {
            return false;
        }
        claims.push_back(QueueEntry { fp, seq, deadline });
        // Committed, released and re-claimed keys leave stale entries behind a live
        // claim at the front; keep the queue within twice the live claims.
        if claims.len() > 2 * self.in_flight.load(Relaxed).max(1024) {
            claims.retain(|entry| self.holds_claim(entry).is_some());
        }
        true
    }

    /// Sweeps up to [`SWEEP_PER_CLAIM`] processed keys whose retention ran out off the
    /// front of the processed queue. The front's deadline is its slot's, so a front
    /// that has not expired stops the sweep without touching the map.
    fn sweep_processed(&self, processed: &mut VecDeque<QueueEntry>, wall: u64) {
        for _ in 0..SWEEP_PER_CLAIM {
            match processed.front() {
                Some(front) if front.deadline <= wall => {
                    // Expired, or stale (a live slot has another deadline or `seq`).
                    if self
                        .slots
                        .remove_if(&front.fp, |_, slot| {
                            slot.seq == front.seq
                                && slot.state == State::Done
                                && slot.expires_at <= wall
                        })
                        .is_some()
                    {
                        self.len.fetch_sub(1, Relaxed);
                        self.counters.expirations.fetch_add(1, Relaxed);
                    }
                    processed.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Evicts the oldest processed keys while more than `max_keys` are held. Claims
    /// are not in this queue, so they are never evicted. Whether it ran out of
    /// processed keys while still over the bound.
    fn evict_processed(&self, processed: &mut VecDeque<QueueEntry>, wall: u64) -> bool {
        let mut exhausted = false;
        while self.len.load(Relaxed) > self.max_keys {
            let Some(oldest) = processed.pop_front() else {
                exhausted = true;
                break;
            };
            let removed = self.slots.remove_if(&oldest.fp, |_, slot| {
                slot.seq == oldest.seq
                    && slot.state == State::Done
                    && slot.expires_at == oldest.deadline
            });
            if let Some((_, slot)) = removed {
                self.len.fetch_sub(1, Relaxed);
                if slot.expires_at <= wall {
                    self.counters.expirations.fetch_add(1, Relaxed);
                } else {
                    self.counters.evictions.fetch_add(1, Relaxed);
                }
            }
        }
        // Stale entries (a key processed twice, or forgotten and processed again)
        // are skipped by eviction; keep the queue within twice the keys held.
        if processed.len() > 2 * self.len.load(Relaxed).max(1024) {
            processed.retain(|entry| self.holds_processed(entry));
        }
        exhausted
    }

    /// Sweeps up to `limit` entries off the front of the claims queue, each by its
    /// slot's own lease on the monotonic clock: once the deadline an entry was pushed
    /// with has passed, drops it if it is stale or its claim's lease ran out, and
    /// requeues it with the new deadline if the claim was renewed meanwhile.
    fn sweep_claims(&self, claims: &mut VecDeque<QueueEntry>, monotonic: u64, limit: usize) {
        for _ in 0..limit {
            let Some(&front) = claims.front() else {
                break;
            };
            // A lease only ever moves later, and entries are pushed in the order of
            // their deadlines (near enough: a requeued claim may wait behind a few
            // made after its renewal): if the front's has not passed, no claim's
            // has. Stop without touching the map; stale entries behind a live claim
            // wait for compaction.
            if front.deadline > monotonic {
                break;
            }
            match self.holds_claim(&front) {
                None => {}
                Some(expires_at) if expires_at <= monotonic => {
                    if self
                        .slots
                        .remove_if(&front.fp, |_, slot| {
                            slot.seq == front.seq
                                && slot.state.in_flight()
                                && slot.expires_at <= monotonic
                        })
                        .is_some()
                    {
                        self.len.fetch_sub(1, Relaxed);
                        self.in_flight.fetch_sub(1, Relaxed);
                        self.counters.expirations.fetch_add(1, Relaxed);
                    } else {
                        // Renewed or ended meanwhile: look at it again.
                        continue;
                    }
                }
                Some(expires_at) => {
                    // Renewed since it was queued: requeue it by its new deadline.
                    claims.push_back(QueueEntry {
                        deadline: expires_at,
                        ..front
                    });
                }
            }
            claims.pop_front();
        }
    }

    /// The lease deadline of the claim the claims-queue `entry` was pushed for, if
    /// that claim still holds its key (its lease may have run out).
    fn holds_claim(&self, entry: &QueueEntry) -> Option<u64> {
        self.slots
            .get(&entry.fp)
            .filter(|slot| slot.seq == entry.seq && slot.state.in_flight())
            .map(|slot| slot.expires_at)
    }

    /// Whether the processed-queue `entry` still refers to its slot.
    fn holds_processed(&self, entry: &QueueEntry) -> bool {
        self.slots.get(&entry.fp).is_some_and(|slot| {
            slot.seq == entry.seq && slot.state == State::Done && slot.expires_at == entry.deadline
        })
    }

    fn commit_now(&self, claim: &Claim) {
        let fp = claim_fingerprint(claim);
        let expires_at = self.deadline(self.wall_ms(), self.retention);
        let done = |seq| Slot {
            seq,
            expires_at,
            state: State::Done,
        };
        let seq = match self.slots.entry(fp) {
            Entry::Occupied(mut held) if held.get().seq == claim.token() => {
                if held.get().state.in_flight() {
                    self.in_flight.fetch_sub(1, Relaxed);
                }
                *held.get_mut() = done(claim.token());
                claim.token()
            }
            // The claim expired or was taken over meanwhile; the event was processed
            // all the same, so remember that under a fresh entry.
            entry => {
                let seq = self.next_seq.fetch_add(1, Relaxed);
                match entry {
                    Entry::Occupied(mut held) => {
                        if held.get().state.in_flight() {
                            self.in_flight.fetch_sub(1, Relaxed);
                        }
                        *held.get_mut() = done(seq);
                    }
                    Entry::Vacant(free) => {
                        free.insert(done(seq));
                        self.len.fetch_add(1, Relaxed);
                    }
                }
                seq
            }
        };
        // The shard guard is dropped before the queues' lock is taken. A late commit
        // may have added a key past the bound: the next claim evicts.
        let mut order = lock(&self.order);
        order.processed.push_back(QueueEntry {
            fp,
            seq,
            deadline: expires_at,
        });
        // The claim's own entry is stale now. It is usually the newest or the oldest
        // claim: drop it here, where it is known to be stale, rather than have a
        // later claim's sweep look its slot up.
        let claims = &mut order.claims;
        let ours = |entry: Option<&QueueEntry>| {
            entry.is_some_and(|entry| entry.seq == claim.token() && entry.fp == fp)
        };
        if ours(claims.back()) {
            claims.pop_back();
        } else if ours(claims.front()) {
            claims.pop_front();
        }
    }

    fn release_now(&self, claim: &Claim) {
        let fp = claim_fingerprint(claim);
        let removed = self.slots.remove_if(&fp, |_, slot| {
            slot.seq == claim.token() && slot.state.in_flight()
        });
        if removed.is_some() {
            self.len.fetch_sub(1, Relaxed);
            self.in_flight.fetch_sub(1, Relaxed);
        }
    }

    /// Marks `claim` confirmed (when `confirm`) and renews its lease, if it still
    /// holds its key: a claim whose lease ran out is not revived, even if no other
    /// claim has taken the key yet.
    fn extend_now(&self, claim: &Claim, confirm: bool) -> bool {
        let fp = claim_fingerprint(claim);
        let now = self.monotonic_ms();
        let Some(mut slot) = self.slots.get_mut(&fp) else {
            return false;
        };
        if slot.seq != claim.token() || !slot.state.in_flight() || slot.expires_at <= now {
            return false;
        }
        slot.expires_at = self.deadline(now, self.lease);
        if confirm {
            slot.state = State::Confirmed;
        }
        true
    }
}

impl DedupeStore for MemoryStore {
    /// Claims `key`; refused with a [`StoreError`] when the store holds `max_keys`
    /// keys and all of them are live claims (see [`MemoryStore`]).
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        self.claim_now(key)
    }

    async fn confirm(&self, claim: &Claim) -> Result<bool, StoreError> {
        Ok(self.extend_now(claim, true))
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, StoreError> {
        Ok(self.extend_now(claim, false))
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

    fn lease_period(&self) -> Duration {
        self.lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(store: &MemoryStore, id: &str) -> Claim {
        match store.claim_now(&DedupeKey::new("t", id)) {
            Ok(ClaimOutcome::Claimed(claim)) => claim,
            other => panic!("{other:?}"),
        }
    }

    fn queue_lens(store: &MemoryStore) -> (usize, usize) {
        let order = lock(&store.order);
        (order.claims.len(), order.processed.len())
    }

    #[test]
    fn stale_queue_entries_from_release_cycles_stay_bounded() {
        let store = MemoryStore::new();
        let _keeper = claim(&store, "keeper");
        for _ in 0..100_000 {
            let flapping = claim(&store, "flapping");
            store.release_now(&flapping);
        }
        // Compaction keeps the queue within twice the live claims (floor 1024).
        let (claims, processed) = queue_lens(&store);
        assert!(claims <= 2 * 1024 + 1, "{claims}");
        assert_eq!(processed, 0);
        assert_eq!(store.stats().keys, 1);
    }

    #[test]
    fn stale_claim_entries_behind_a_long_claim_stay_bounded() {
        // A claim that is neither renewed nor ended holds the front of the claims
        // queue for its whole lease; the entries of the events processed meanwhile
        // are stale behind it.
        // Two claims at a time, so that the first one's entry is at neither end of
        // the queue when it commits.
        let store = MemoryStore::new().max_keys(5000).expect("positive");
        let _long = claim(&store, "long");
        let (mut most_claims, mut most_processed) = (0, 0);
        for i in 0..50_000 {
            let first = claim(&store, &format!("{i}a"));
            let second = claim(&store, &format!("{i}b"));
            store.commit_now(&first);
            store.commit_now(&second);
            let (claims, processed) = queue_lens(&store);
            most_claims = most_claims.max(claims);
            most_processed = most_processed.max(processed);
        }
        assert!(
            most_claims > 1024,
            "no stale entries piled up: {most_claims}"
        );
        assert!(most_claims <= 2 * 1024 + 1, "{most_claims}");
        // One entry per processed key, plus the one committed past the bound.
        assert!(most_processed <= 5000 + 1, "{most_processed}");
        let stats = store.stats();
        assert_eq!((stats.keys, stats.evictions), (5000, 100_000 - 4999));
        assert_eq!(store.in_flight.load(Relaxed), 1);
    }

    #[test]
    fn committing_twice_keeps_one_live_processed_entry() {
        let store = MemoryStore::new().max_keys(2).expect("positive");
        let twice = claim(&store, "twice");
        store.commit_now(&twice);
        store.commit_now(&twice);
        assert_eq!(queue_lens(&store).1, 2);
        store.commit_now(&claim(&store, "b"));
        // One key over the bound: the stale first entry of `twice` is skipped, its
        // live entry evicted (the oldest), and `b` is kept.
        store.commit_now(&claim(&store, "c"));
        let stats = store.stats();
        assert_eq!((stats.keys, stats.evictions), (2, 1), "{stats:?}");
        assert_eq!(
            store.claim_now(&DedupeKey::new("t", "b")).ok(),
            Some(ClaimOutcome::Duplicate(Duplicate::Processed))
        );
        assert!(matches!(
            store.claim_now(twice.key()),
            Ok(ClaimOutcome::Claimed(_))
        ));
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
            store.claim_now(made.key()).ok(),
            Some(ClaimOutcome::Duplicate(Duplicate::Processed))
        );
        assert_eq!(store.in_flight.load(Relaxed), 0);
    }

    #[test]
    fn a_slot_is_small() {
        // 16-byte fingerprint + 24-byte slot: the per-key budget of the bound.
        assert_eq!(size_of::<Fingerprint>() + size_of::<Slot>(), 40);
        assert_eq!(size_of::<QueueEntry>(), 32);
    }
}
