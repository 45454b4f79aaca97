//! Counters readable in code: what the receiver accepted, refused and processed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use hookwise_core::{Diagnosis, RejectionKind};

use crate::HandlerError;

/// A live view of the receiver's counters; clones share them.
///
/// With the `metrics` feature, the same events also go to the
/// [`metrics`](https://docs.rs/metrics) facade, for whatever recorder the
/// application installs (e.g. `metrics-exporter-prometheus`), under Prometheus
/// names, each labelled with the `provider`:
///
/// | metric | kind | labels | what |
/// | --- | --- | --- | --- |
/// | `hookwise_deliveries_total` | counter | `outcome`: `accepted`, `duplicate`, `skipped`, `rejected` | deliveries answered |
/// | `hookwise_rejections_total` | counter | `code` (`signature_mismatch`, ...) | deliveries refused, by code |
/// | `hookwise_handler_runs_total` | counter | `result`: `ok`, `failed`, `timed_out`, `panicked` | handler attempts |
/// | `hookwise_handler_duration_seconds` | histogram | | each attempt's duration |
/// | `hookwise_handler_retries_total` | counter | | attempts that failed and were tried again |
/// | `hookwise_dead_letters_total` | counter | | events whose every attempt failed |
/// | `hookwise_stale_events_total` | counter | | events skipped because a newer one of their resource was applied first ([`Ordering::skip_stale`](crate::Ordering::skip_stale)) |
/// | `hookwise_events_in_flight` | gauge | | accepted events not finished: queued, running or waiting to retry |
/// | `hookwise_events_waiting` | gauge | | accepted events waiting for a running slot (the in-memory queue's depth) |
/// | `hookwise_store_errors_total` | counter | `operation`: `renew`, `commit`, `release` | dedupe store calls that failed in the background (a failure on the request path is a `store_unavailable` rejection) |
/// | `hookwise_lease_renewals_total` | counter | | claim leases renewed while an event waited or ran |
/// | `hookwise_diagnoses_total` | counter | `kind` | [`Diagnosis`] findings, with the receiver's diagnostics on |
///
/// A durable queue's depth is its database's to report (the Redis stream's length,
/// the Postgres table's rows); `hookwise_events_in_flight` counts what this instance
/// holds.
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
    /// The same events, sent to the `metrics` facade, when exported.
    exported: Option<export::Exported>,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    skipped: AtomicU64,
    rejected: [AtomicU64; RejectionKind::ALL.len()],
    processed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    stale: AtomicU64,
    finished: AtomicU64,
    waiting: AtomicU64,
    diagnosed: [AtomicU64; Diagnosis::LABELS.len()],
}

impl Stats {
    /// The counters of one runtime for `provider`; with `export` (and the `metrics`
    /// feature) also sent to the `metrics` facade.
    pub(crate) fn new(provider: &'static str, export: bool) -> Self {
        Self {
            counters: Arc::new(Counters {
                exported: export.then(|| export::Exported::new(provider)),
                ..Counters::default()
            }),
        }
    }

    pub(crate) fn accepted(&self) {
        self.counters.accepted.fetch_add(1, Relaxed);
        self.export(export::Exported::accepted);
    }

    pub(crate) fn duplicate(&self) {
        self.counters.duplicates.fetch_add(1, Relaxed);
        self.export(export::Exported::duplicate);
    }

    pub(crate) fn skipped(&self) {
        self.counters.skipped.fetch_add(1, Relaxed);
        self.export(export::Exported::skipped);
    }

    pub(crate) fn rejected(&self, kind: RejectionKind) {
        self.counters.rejected[kind.index()].fetch_add(1, Relaxed);
        self.export(|e| e.rejected(kind));
    }

    pub(crate) fn diagnosed(&self, diagnosis: &Diagnosis) {
        self.counters.diagnosed[diagnosis.index()].fetch_add(1, Relaxed);
        self.export(|e| e.diagnosed(diagnosis));
    }

    pub(crate) fn processed(&self) {
        self.counters.processed.fetch_add(1, Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.counters.retried.fetch_add(1, Relaxed);
        self.export(export::Exported::retried);
    }

    pub(crate) fn dead_lettered(&self) {
        self.counters.dead_lettered.fetch_add(1, Relaxed);
        self.export(export::Exported::dead_lettered);
    }

    /// An event was skipped: a newer one of its resource was applied first.
    pub(crate) fn stale(&self) {
        self.counters.stale.fetch_add(1, Relaxed);
        self.export(export::Exported::stale);
    }

    /// An accepted event left the receiver's hands (processed, dead-lettered, or
    /// handed back to the sender with a 5xx).
    pub(crate) fn finished(&self) {
        self.counters.finished.fetch_add(1, Relaxed);
        self.export(export::Exported::finished);
    }

    /// An accepted event starts waiting for a running slot, until the guard drops.
    pub(crate) fn waiting(&self) -> Waiting {
        self.counters.waiting.fetch_add(1, Relaxed);
        self.export(|e| e.waiting(1.0));
        Waiting(self.clone())
    }

    /// One attempt of a handler ended with `result` after `took`.
    pub(crate) fn handler_run(&self, took: Duration, result: &Result<(), HandlerError>) {
        // Indexes into `export::RESULTS`.
        // Indexes into `RUN_RESULTS`.
        let result = match result {
            Ok(()) => 0,
            Err(HandlerError::TimedOut(_)) => 2,
            Err(HandlerError::Panicked(_)) => 3,
            Err(_) => 1,
        };
        self.export(|e| e.handler_run(result, took));
    }

    /// A claim's lease was renewed while its event waited or ran.
    pub(crate) fn lease_renewed(&self) {
        self.export(export::Exported::lease_renewed);
    }

    /// A store call made in the background failed.
    pub(crate) fn store_error(&self, call: StoreCall) {
        self.export(|e| e.store_error(call));
    }

    /// Runs `emit` on the exported metrics, when they are.
    fn export(&self, emit: impl FnOnce(&export::Exported)) {
        if let Some(exported) = &self.counters.exported {
            emit(exported);
        }
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
            stale: c.stale.load(Relaxed),
            in_flight: accepted.saturating_sub(c.finished.load(Relaxed)),
            waiting: c.waiting.load(Relaxed),
            diagnosed: std::array::from_fn(|i| c.diagnosed[i].load(Relaxed)),
        }
    }
}

/// The `result` label of a handler run, by index.
#[cfg(feature = "metrics")]
const RUN_RESULTS: [&str; 4] = ["ok", "failed", "timed_out", "panicked"];

/// A dedupe store call made in the background, whose failure is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoreCall {
    Renew,
    Commit,
    Release,
}

#[cfg(feature = "metrics")]
impl StoreCall {
    /// The `operation` label of each, in declaration order.
    const LABELS: [&str; 3] = ["renew", "commit", "release"];
}

/// An event waiting for a running slot: counted until dropped, so that a wait cut
/// short (a shutdown dropping the run) is uncounted too.
pub(crate) struct Waiting(Stats);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.counters.waiting.fetch_sub(1, Relaxed);
        self.0.export(|e| e.waiting(-1.0));
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
    /// Accepted events skipped, never run, because a newer event of their resource
    /// had been applied ([`Ordering::skip_stale`](crate::Ordering::skip_stale)).
    pub stale: u64,
    /// Accepted events not finished yet: queued, running, or waiting to retry.
    pub in_flight: u64,
    /// Accepted events waiting for a running slot (part of `in_flight`).
    pub waiting: u64,
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

/// The runtime's metrics, registered once with the recorder installed when the
/// runtime is built: each event is then an atomic add on a handle, not a lookup of
/// its name and labels. Without the `metrics` feature, nothing.
#[cfg(feature = "metrics")]
mod export {
    use std::time::Duration;

    use hookwise_core::{Diagnosis, RejectionKind};
    use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

    #[derive(Debug)]
    pub(super) struct Exported {
        accepted: Counter,
        duplicate: Counter,
        skipped: Counter,
        rejected: Counter,
        by_code: Vec<Counter>,
        diagnosed: Vec<Counter>,
        runs: [Counter; 4],
        duration: Histogram,
        retried: Counter,
        dead_lettered: Counter,
        stale: Counter,
        in_flight: Gauge,
        waiting: Gauge,
        renewed: Counter,
        store_errors: [Counter; 3],
    }

    impl Exported {
        pub(super) fn new(provider: &'static str) -> Self {
            let delivery = |outcome: &'static str| counter!("hookwise_deliveries_total", "provider" => provider, "outcome" => outcome);
            Self {
                accepted: delivery("accepted"),
                duplicate: delivery("duplicate"),
                skipped: delivery("skipped"),
                rejected: delivery("rejected"),
                by_code: RejectionKind::ALL
                    .iter()
                    .map(|kind| {
                        counter!("hookwise_rejections_total", "provider" => provider, "code" => kind.code())
                    })
                    .collect(),
                diagnosed: Diagnosis::LABELS
                    .iter()
                    .map(|kind| {
                        counter!("hookwise_diagnoses_total", "provider" => provider, "kind" => *kind)
                    })
                    .collect(),
                runs: super::RUN_RESULTS.map(|result| {
                    counter!("hookwise_handler_runs_total", "provider" => provider, "result" => result)
                }),
                duration: histogram!("hookwise_handler_duration_seconds", "provider" => provider),
                retried: counter!("hookwise_handler_retries_total", "provider" => provider),
                dead_lettered: counter!("hookwise_dead_letters_total", "provider" => provider),
                stale: counter!("hookwise_stale_events_total", "provider" => provider),
                in_flight: gauge!("hookwise_events_in_flight", "provider" => provider),
                waiting: gauge!("hookwise_events_waiting", "provider" => provider),
                renewed: counter!("hookwise_lease_renewals_total", "provider" => provider),
                store_errors: super::StoreCall::LABELS.map(|operation| {
                    counter!("hookwise_store_errors_total", "provider" => provider, "operation" => operation)
                }),
            }
        }

        pub(super) fn accepted(&self) {
            self.accepted.increment(1);
            self.in_flight.increment(1.0);
        }

        pub(super) fn duplicate(&self) {
            self.duplicate.increment(1);
        }

        pub(super) fn skipped(&self) {
            self.skipped.increment(1);
        }

        pub(super) fn rejected(&self, kind: RejectionKind) {
            self.rejected.increment(1);
            self.by_code[kind.index()].increment(1);
        }

        pub(super) fn diagnosed(&self, diagnosis: &Diagnosis) {
            self.diagnosed[diagnosis.index()].increment(1);
        }

        pub(super) fn retried(&self) {
            self.retried.increment(1);
        }

        pub(super) fn dead_lettered(&self) {
            self.dead_lettered.increment(1);
        }

        pub(super) fn stale(&self) {
            self.stale.increment(1);
        }

        pub(super) fn finished(&self) {
            self.in_flight.decrement(1.0);
        }

        pub(super) fn waiting(&self, change: f64) {
            self.waiting.increment(change);
        }

        pub(super) fn handler_run(&self, result: usize, took: Duration) {
            self.runs[result].increment(1);
            self.duration.record(took.as_secs_f64());
        }

        pub(super) fn lease_renewed(&self) {
            self.renewed.increment(1);
        }

        pub(super) fn store_error(&self, call: super::StoreCall) {
            self.store_errors[call as usize].increment(1);
        }
    }
}

/// Without the `metrics` feature: nothing is ever exported.
#[cfg(not(feature = "metrics"))]
mod export {
    use std::time::Duration;

    use hookwise_core::{Diagnosis, RejectionKind};

    /// Never built: without the feature, the builder cannot turn the export on.
    #[derive(Debug)]
    pub(super) struct Exported;

    impl Exported {
        pub(super) fn new(_: &'static str) -> Self {
            Self
        }
        pub(super) fn accepted(&self) {}
        pub(super) fn duplicate(&self) {}
        pub(super) fn skipped(&self) {}
        pub(super) fn rejected(&self, _: RejectionKind) {}
        pub(super) fn diagnosed(&self, _: &Diagnosis) {}
        pub(super) fn retried(&self) {}
        pub(super) fn dead_lettered(&self) {}
        pub(super) fn stale(&self) {}
        pub(super) fn finished(&self) {}
        pub(super) fn waiting(&self, _: f64) {}
        pub(super) fn handler_run(&self, _: usize, _: Duration) {}
        pub(super) fn lease_renewed(&self) {}
        pub(super) fn store_error(&self, _: super::StoreCall) {}
    }
}
