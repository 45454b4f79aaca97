//! Where "now" comes from.
//!
//! Timestamp tolerance, max age, dedupe retention and claim leases all depend on the
//! current time. Everything that reads the time takes a [`Clock`], so tests can move
//! time by hand with [`ManualClock`] instead of sleeping.
//!
//! A clock has two readings:
//!
//! - [`Clock::now`], the wall clock, for everything tied to timestamps a sender
//!   signed (tolerance, max age, and the retention of processed events, which must
//!   cover the window those timestamps are accepted in);
//! - [`Clock::monotonic`], which never goes back and does not follow steps of the
//!   wall clock (NTP corrections, a VM resumed), for durations measured inside this
//!   process: the leases of dedupe claims. A step of the wall clock then frees no
//!   claim that is still being processed.

use std::{
    fmt,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// A source of time: wall-clock time, as a duration since the Unix epoch, and a
/// monotonic reading for measuring durations.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time since the Unix epoch.
    fn now(&self) -> Duration;

    /// A monotonic reading: time since an arbitrary, fixed base (e.g. the start of
    /// the process). It never goes back and is not moved by steps of the wall clock,
    /// so the difference of two readings is the time that passed between them.
    ///
    /// Only differences of readings are meaningful. The default returns
    /// [`now`](Self::now), so a clock that only knows wall-clock time still works,
    /// with leases then following its steps.
    fn monotonic(&self) -> Duration {
        self.now()
    }
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

    /// The time since a process-wide base, taken the first time any
    /// [`SystemClock`] is read monotonically ([`Instant`], so `CLOCK_MONOTONIC` on
    /// Linux).
    fn monotonic(&self) -> Duration {
        static BASE: OnceLock<Instant> = OnceLock::new();
        BASE.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// It keeps wall-clock time ([`now`](Clock::now)) and monotonic time
/// ([`monotonic`](Clock::monotonic), starting at zero) apart: time passing
/// ([`advance`](Self::advance)) moves both, while setting or stepping the wall clock
/// ([`set`](Self::set), [`step`](Self::step)) moves only `now`, as NTP or a resumed
/// VM would.
///
/// ```
/// use std::time::Duration;
/// use hookwise_core::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix_secs(1_700_000_000);
/// clock.advance(Duration::from_secs(301));
/// assert_eq!(clock.now().as_secs(), 1_700_000_301);
/// assert_eq!(clock.monotonic().as_secs(), 301);
///
/// // The wall clock is stepped an hour forward: no time passed.
/// clock.step(Duration::from_secs(3600));
/// assert_eq!(clock.now().as_secs(), 1_700_003_901);
/// assert_eq!(clock.monotonic().as_secs(), 301);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    /// Wall-clock milliseconds since the Unix epoch.
    millis: Arc<AtomicU64>,
    /// Monotonic milliseconds since the clock was made.
    monotonic: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `secs` seconds after the Unix epoch.
    pub fn at_unix_secs(secs: u64) -> Self {
        let clock = Self::default();
        clock.set(Duration::from_secs(secs));
        clock
    }

    /// Sets the wall-clock time, as a duration since the Unix epoch (millisecond
    /// precision). This is a step of the wall clock, forward or back: monotonic time
    /// does not move.
    pub fn set(&self, since_epoch: Duration) {
        self.millis.store(millis(since_epoch), Ordering::SeqCst);
    }

    /// Lets `by` pass: moves both the wall-clock and the monotonic time forward.
    pub fn advance(&self, by: Duration) {
        let by = millis(by);
        self.millis.fetch_add(by, Ordering::SeqCst);
        self.monotonic.fetch_add(by, Ordering::SeqCst);
    }

    /// A wall-clock step forward (NTP, a VM resume): moves `now` but not monotonic
    /// time.
    pub fn step(&self, by: Duration) {
        self.millis.fetch_add(millis(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }

    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.monotonic.load(Ordering::SeqCst))
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
