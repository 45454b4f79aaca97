//! Where "now" comes from.
//!
//! Timestamp tolerance, max age, dedupe retention and claim leases all depend on the
//! current time. Everything that reads the time takes a [`Clock`], so tests can move
//! time by hand with [`ManualClock`] instead of sleeping.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A source of wall-clock time, as a duration since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time since the Unix epoch.
    fn now(&self) -> Duration;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock set before 1970 reads as the epoch rather than failing a delivery.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use hookwise_core::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix_secs(1_700_000_000);
/// clock.advance(Duration::from_secs(301));
/// assert_eq!(clock.now().as_secs(), 1_700_000_301);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `secs` seconds after the Unix epoch.
    pub fn at_unix_secs(secs: u64) -> Self {
        let clock = Self::default();
        clock.set(Duration::from_secs(secs));
        clock
    }

    /// Sets the time, as a duration since the Unix epoch (millisecond precision).
    pub fn set(&self, since_epoch: Duration) {
        self.millis.store(millis(since_epoch), Ordering::SeqCst);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(millis(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// A duration in whole milliseconds, saturating instead of truncating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The clock used when none is configured.
pub(crate) fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
