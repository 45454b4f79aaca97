//! Counters readable in code: what the receiver accepted, refused and processed.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering::Relaxed},
};

use hookwise_core::{Diagnosis, RejectionKind};

/// A live view of the receiver's counters; clones share them.
///
/// ```
/// # use hookwise_core::{Hoursmith, MemoryStore, Receiver, RejectionKind};
/// # use hookwise_runtime::Webhooks;
/// # let receiver = Receiver::new(Hoursmith::new("s")?, MemoryStore::new())?;
/// let webhooks = Webhooks::new(receiver);
/// let stats = webhooks.stats();
/// // ... serve ...
/// let now = stats.snapshot();
/// println!("{} accepted, {} forged", now.accepted, now.rejected(RejectionKind::SignatureMismatch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Stats {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    skipped: AtomicU64,
    rejected: [AtomicU64; RejectionKind::ALL.len()],
    processed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    finished: AtomicU64,
    diagnosed: [AtomicU64; Diagnosis::LABELS.len()],
}

impl Stats {
    pub(crate) fn accepted(&self) {
        self.counters.accepted.fetch_add(1, Relaxed);
    }

    pub(crate) fn duplicate(&self) {
        self.counters.duplicates.fetch_add(1, Relaxed);
    }

    pub(crate) fn skipped(&self) {
        self.counters.skipped.fetch_add(1, Relaxed);
    }

    pub(crate) fn rejected(&self, kind: RejectionKind) {
        self.counters.rejected[kind.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn diagnosed(&self, diagnosis: &Diagnosis) {
        self.counters.diagnosed[diagnosis.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn processed(&self) {
        self.counters.processed.fetch_add(1, Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.counters.retried.fetch_add(1, Relaxed);
    }

    pub(crate) fn dead_lettered(&self) {
        self.counters.dead_lettered.fetch_add(1, Relaxed);
    }

    /// An accepted event left the receiver's hands (processed, dead-lettered, or
    /// handed back to the sender with a 5xx).
    pub(crate) fn finished(&self) {
        self.counters.finished.fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.counters;
        let accepted = c.accepted.load(Relaxed);
        StatsSnapshot {
            accepted,
            duplicates: c.duplicates.load(Relaxed),
            skipped: c.skipped.load(Relaxed),
            rejected: std::array::from_fn(|i| c.rejected[i].load(Relaxed)),
            processed: c.processed.load(Relaxed),
            retried: c.retried.load(Relaxed),
            dead_lettered: c.dead_lettered.load(Relaxed),
            in_flight: accepted.saturating_sub(c.finished.load(Relaxed)),
            diagnosed: std::array::from_fn(|i| c.diagnosed[i].load(Relaxed)),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// New events accepted (claimed) for processing.
    pub accepted: u64,
    /// Deliveries of events already processed or in flight (answered 200).
    pub duplicates: u64,
    /// Verified events acknowledged without processing (dropped test events).
    pub skipped: u64,
    rejected: [u64; RejectionKind::ALL.len()],
    /// Accepted events whose handler succeeded.
    pub processed: u64,
    /// Handler runs that failed and were tried again.
    pub retried: u64,
    /// Accepted events handed to the dead-letter callback after the last attempt.
    pub dead_lettered: u64,
    /// Accepted events not finished yet: queued, running, or waiting to retry.
    pub in_flight: u64,
    diagnosed: [u64; Diagnosis::LABELS.len()],
}

impl StatsSnapshot {
    /// Deliveries refused with `kind`.
    pub fn rejected(&self, kind: RejectionKind) -> u64 {
        self.rejected[kind.index()]
    }

    /// Deliveries refused, all reasons together.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Deliveries with a [`Diagnosis`] of this [`label`](Diagnosis::label)
    /// (`"reencoded_body"`, `"wrong_kind_of_secret"`, `"retired_secret"`,
    /// `"clock_skew"`), counted when the receiver's
    /// [`diagnostics`](hookwise_core::Receiver::diagnostics) are on; 0 for another
    /// label.
    pub fn diagnosed(&self, label: &str) -> u64 {
        Diagnosis::LABELS
            .iter()
            .position(|known| *known == label)
            .map_or(0, |i| self.diagnosed[i])
    }
}
