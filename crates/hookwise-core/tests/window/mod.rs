//! Issue item 5, for every provider: a provider's `replay_window` is the whole window of
//! receiver time in which one delivery is accepted, and a `Receiver` refuses a store
//! whose retention is shorter. Each provider's test file states its window and calls
//! these checks; `mod window;` includes this file in each of them.

// Each test file uses the checks that apply to its provider.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use hookwise_core::{
    ConfigError, Duplicate, ManualClock, MemoryStore, Outcome, Provider, Receiver, RejectionKind,
};
use http::HeaderMap;

/// The receiver clock's precision.
const MS: Duration = Duration::from_millis(1);

/// The window of receiver time in which one delivery, signed (or stamped) at `t`, is
/// accepted: from `first` to `last`, both included, at the clock's millisecond
/// precision. Providers compare `now` in whole seconds, so a delivery accepted at
/// second `s` is accepted until its last millisecond.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// When the delivery was signed (or its payload stamped), in Unix seconds.
    pub(crate) t: u64,
    /// The first instant it is accepted.
    pub(crate) first: Duration,
    /// The last instant it is accepted.
    pub(crate) last: Duration,
}

impl Window {
    /// A signed timestamp `t`, accepted while the whole seconds of `now` are within
    /// `tolerance` seconds of it: from `t - tolerance` to the last millisecond of the
    /// second `t + tolerance`.
    pub(crate) fn signed(t: u64, tolerance: u64) -> Self {
        Self {
            t,
            first: Duration::from_secs(t - tolerance),
            last: last_ms_of(t + tolerance),
        }
    }

    /// A payload timestamp `t`, accepted from `tolerance` seconds ahead of it until it
    /// is `max_age` seconds old: from `t - tolerance` to the last millisecond of the
    /// second `t + max_age`.
    pub(crate) fn payload(t: u64, max_age: u64, tolerance: u64) -> Self {
        Self {
            t,
            first: Duration::from_secs(t - tolerance),
            last: last_ms_of(t + max_age),
        }
    }

    /// From the first instant to the end of the last one.
    pub(crate) fn length(self) -> Duration {
        self.last + MS - self.first
    }
}

/// The last instant, at the clock's millisecond precision, at which a check of whole
/// seconds still accepts `secs`.
fn last_ms_of(secs: u64) -> Duration {
    Duration::from_secs(secs + 1) - MS
}

/// What `provider` answers one delivery at `now`, asked as the receiver asks it: the
/// signature (and a signed timestamp), then the payload (and a payload timestamp).
fn answer<P: Provider>(
    provider: &P,
    headers: &HeaderMap,
    body: &Bytes,
    now: Duration,
) -> Result<(), RejectionKind> {
    provider
        .verify(headers, body, now)
        .and_then(|_| provider.parse(headers, body, now))
        .map(drop)
        .map_err(|rejection| rejection.kind())
}

/// `provider` accepts the delivery (`headers`, `body`) in `window` and nowhere else:
/// at its first and last instants it answers as at `window.t` (where the signature
/// verifies), one millisecond earlier the delivery is too new, one millisecond later
/// too old; and `replay_window` is the length of that window.
pub(crate) fn accepted_exactly_in<P: Provider>(
    provider: &P,
    headers: &HeaderMap,
    body: &[u8],
    window: Window,
) {
    let name = provider.name();
    let body = Bytes::copy_from_slice(body);
    let at = |now: Duration| answer(provider, headers, &body, now);
    let signed_at = Duration::from_secs(window.t);
    assert!(
        provider.verify(headers, &body, signed_at).is_ok(),
        "{name}: the delivery does not verify at its own timestamp"
    );
    let answer = at(signed_at);
    assert_eq!(
        at(window.first),
        answer,
        "{name}: first instant of {window:?}"
    );
    assert_eq!(
        at(window.last),
        answer,
        "{name}: last instant of {window:?}"
    );
    assert_eq!(
        at(window.first - MS),
        Err(RejectionKind::TimestampTooNew),
        "{name}: before {window:?}"
    );
    assert_eq!(
        at(window.last + MS),
        Err(RejectionKind::TimestampTooOld),
        "{name}: after {window:?}"
    );
    assert_eq!(provider.replay_window(), window.length(), "{name}");
}

/// For each of `tolerances` (seconds), the provider `with_tolerance(tolerance)`
/// accepts the delivery signed at `t` exactly in [`Window::signed`], and its
/// `replay_window` is `2 × tolerance + 1 s`.
pub(crate) fn signed_windows<P: Provider>(
    with_tolerance: impl Fn(u64) -> P,
    headers: &HeaderMap,
    body: &[u8],
    t: u64,
    tolerances: &[u64],
) {
    for &tolerance in tolerances {
        let provider = with_tolerance(tolerance);
        accepted_exactly_in(&provider, headers, body, Window::signed(t, tolerance));
        assert_eq!(
            provider.replay_window(),
            Duration::from_secs(2 * tolerance + 1),
            "{}: tolerance {tolerance} s",
            provider.name()
        );
    }
}

/// `Receiver::new` refuses a store retaining any of `refused` (naming `provider`, its
/// `window` and the retention) and accepts one retaining exactly `window`, the
/// shortest retention allowed.
pub(crate) fn retention_must_cover<P: Provider>(
    provider: impl Fn() -> P,
    name: &'static str,
    window: Duration,
    refused: &[Duration],
) {
    let store = |retention| MemoryStore::new().retention(retention).expect("non-zero");
    assert_eq!(provider().replay_window(), window, "{name}");
    for &retention in refused {
        let Err(err) = Receiver::new(provider(), store(retention)) else {
            panic!("{name}: retention {retention:?} accepted");
        };
        assert_eq!(
            err,
            ConfigError::ReplayWindowExceedsRetention {
                provider: name,
                window,
                retention,
            },
            "{name}: retention {retention:?}"
        );
    }
    assert!(
        Receiver::new(provider(), store(window)).is_ok(),
        "{name}: retention {window:?}"
    );
}

/// Under the shortest retention `Receiver::new` allows (`replay_window`), a delivery
/// first received at the start of `window`, processed (committed), then replayed at
/// its last instant is a processed duplicate; one millisecond later it is too old.
pub(crate) async fn replay_at_the_end_is_a_duplicate<P: Provider>(
    provider: P,
    headers: &HeaderMap,
    body: Bytes,
    window: Window,
) {
    let name = provider.name();
    assert_eq!(provider.replay_window(), window.length(), "{name}");
    let clock = ManualClock::default();
    clock.set(window.first);
    let store = MemoryStore::new()
        .retention(provider.replay_window())
        .expect("non-zero")
        .clock(clock.clone());
    let receiver = Receiver::new(provider, store)
        .expect("the retention covers the window")
        .clock(clock.clone());
    let first = receiver.receive(headers, body.clone()).await;
    let Ok(Outcome::Accepted { claim, .. }) = first else {
        panic!("{name}: first delivery accepted: {first:?}");
    };
    // Committed, so the replay meets a processed key, not a provisional claim.
    receiver.commit(&claim).await.expect("commit");

    // The last instant the same delivery is accepted: still a duplicate.
    clock.set(window.last);
    let replay = receiver.receive(headers, body.clone()).await;
    assert!(
        matches!(
            replay,
            Ok(Outcome::Duplicate {
                state: Duplicate::Processed,
                ..
            })
        ),
        "{name}: replay processed twice: {replay:?}"
    );
    // One millisecond later it is no longer accepted: that was the end of the window.
    clock.advance(MS);
    let late = receiver.receive(headers, body).await.expect_err("too old");
    assert_eq!(late.kind(), RejectionKind::TimestampTooOld, "{name}");
}
