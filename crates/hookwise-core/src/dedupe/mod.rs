//! Dedupe: process each event once although senders deliver it more than once.
//!
//! The protocol is claim → confirm → process → commit on success, release on failure:
//!
//! - [`DedupeStore::claim`] atomically takes a key: exactly one of many concurrent
//!   claims of one key wins; the others see a [`Duplicate`]. A new claim is
//!   *provisional*: nobody has been told yet that the event is taken care of.
//! - [`DedupeStore::confirm`] marks the claim as acknowledged: its owner answered (or
//!   is about to answer) `200` and has taken the event on. From then on a
//!   redelivery is a [`Duplicate::InFlight`], answered `200`. While a claim is
//!   provisional, a redelivery is a [`Duplicate::Provisional`], answered `409` so
//!   the sender tries again: the claim's request may still fail, or its reply may
//!   have been lost in a timeout, and a `200` then would lose the event.
//! - [`DedupeStore::renew`] extends the lease of a claim that is still queued or
//!   running (a heartbeat), so a long wait or many retries never let a redelivery in.
//! - [`DedupeStore::commit`] records the event as processed for the retention time, so
//!   retries during that time are duplicates.
//! - [`DedupeStore::release`] gives the key back (processing failed or was refused),
//!   so the sender's retry is processed. It only removes the claim it was given.
//! - A claim nobody commits, releases or renews (a crash) expires after the lease,
//!   and the event can be claimed again. Leases are measured on a monotonic clock,
//!   so a step of the wall clock frees no claim.
//!
//! [`MemoryStore`] keeps keys in this process; the trait is async and fallible so an
//! out-of-process store (Redis) fits behind it too.

mod any;
mod memory;

use std::{fmt, future::Future, sync::Arc, time::Duration};

pub use self::{
    any::AnyStore,
    memory::{DEFAULT_MAX_KEYS, DedupeStats, MemoryStore},
};

/// The default time a processed event is remembered: 96 h covers senders that retry
/// for three days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(96 * 60 * 60);

/// The default lease of an in-flight claim before it expires.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);

/// An event's identity in a dedupe store: the provider's name, `:`, then the
/// provider's key for the event, so one store can serve several providers.
///
/// Cloning it is cheap (the text is shared): a delivery, its claim and the runs of
/// its handler all hold it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupeKey {
    full: std::sync::Arc<str>,
    split: usize,
}

impl DedupeKey {
    /// The key for `id` under the namespace `provider`.
    ///
    /// ```
    /// use hookwise_core::DedupeKey;
    ///
    /// let key = DedupeKey::new("hoursmith", "4f9c2a1e");
    /// assert_eq!(key.as_str(), "hoursmith:4f9c2a1e");
    /// assert_eq!(key.id(), "4f9c2a1e");
    /// ```
    pub fn new(provider: &str, id: &str) -> Self {
        let mut full = String::with_capacity(provider.len() + 1 + id.len());
        full.push_str(provider);
        full.push(':');
        full.push_str(id);
        Self {
            full: full.into(),
            split: provider.len() + 1,
        }
    }

    /// The full, namespaced key, as stored.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The provider's part of the key (the event id, for Hoursmith).
    pub fn id(&self) -> &str {
        &self.full[self.split..]
    }

    /// The provider's name, the key's first part.
    ///
    /// ```
    /// use hookwise_core::DedupeKey;
    ///
    /// assert_eq!(DedupeKey::new("hoursmith", "4f9c2a1e").provider(), "hoursmith");
    /// ```
    pub fn provider(&self) -> &str {
        &self.full[..self.split - 1]
    }
}

impl fmt::Display for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// A won claim on a key: present it to commit or release.
#[derive(Clone)]
pub struct Claim {
    key: DedupeKey,
    token: u64,
    /// The key's fingerprint in [`MemoryStore`], computed when it made the claim, so
    /// that its commit or release need not hash the key again. Not part of the
    /// claim's identity.
    fingerprint: Option<[u8; 16]>,
}

impl Claim {
    /// A claim on `key`, identified by a store-chosen `token` unique among the claims
    /// of that key (for store implementors).
    pub fn new(key: DedupeKey, token: u64) -> Self {
        Self {
            key,
            token,
            fingerprint: None,
        }
    }

    /// A claim made by [`MemoryStore`], with the key's fingerprint.
    pub(crate) fn with_fingerprint(key: DedupeKey, token: u64, fingerprint: [u8; 16]) -> Self {
        Self {
            key,
            token,
            fingerprint: Some(fingerprint),
        }
    }

    /// The claimed key.
    pub fn key(&self) -> &DedupeKey {
        &self.key
    }

    /// The store's token for this claim.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The fingerprint [`MemoryStore`] recorded, if it made this claim.
    pub(crate) fn fingerprint(&self) -> Option<&[u8; 16]> {
        self.fingerprint.as_ref()
    }
}

// By hand, so that the cached fingerprint is neither compared nor shown: a claim is
// its key and its token.
impl PartialEq for Claim {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.token == other.token
    }
}

impl Eq for Claim {}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("key", &self.key)
            .field("token", &self.token)
            .finish()
    }
}

/// Why a claim lost: the key is already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Duplicate {
    /// Another claim on the key is being processed (within its lease), and its owner
    /// has confirmed it: the event is taken care of. Answered `200`.
    InFlight,
    /// Another claim holds the key but is not confirmed: its request may still fail
    /// or be cancelled, or its reply was lost. Not acknowledged (the receiver answers
    /// `409` `in_progress`), so the sender's retry comes back and is processed if the
    /// other claim is released or expires.
    Provisional,
    /// The event was processed and committed within the retention time.
    Processed,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was free: this caller processes the event.
    Claimed(Claim),
    /// The key is taken: the event must not be processed again.
    Duplicate(Duplicate),
}

/// A dedupe store failed; the delivery should be retried by the sender (503).
#[derive(Debug, thiserror::Error)]
#[error("dedupe store unavailable: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// The store works but is at its bound (answered `queue_full`, not
    /// `store_unavailable`).
    full: bool,
}

impl StoreError {
    /// An error with a message for logs.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
            full: false,
        }
    }

    /// The store is reachable but at its bound (e.g. a durable queue's backlog is
    /// full): the sender should retry later, and the answer says `queue_full`.
    pub fn full(message: impl Into<String>) -> Self {
        Self {
            full: true,
            ..Self::new(message)
        }
    }

    /// Whether the store refused for being at its bound rather than failing.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// An error caused by `source` (a connection error, a timeout).
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
            full: false,
        }
    }
}

/// Where claims on event keys live. See the [module docs](self) for the protocol.
///
/// Implementations must make `claim` atomic: of concurrent claims of one free key,
/// exactly one returns [`ClaimOutcome::Claimed`].
pub trait DedupeStore: Send + Sync + 'static {
    /// Claims `key` for processing, for at most the store's lease. The claim is
    /// provisional until [`confirm`](Self::confirm)ed.
    ///
    /// A store whose call can fail after the claim was made (a timeout on the
    /// reply) must leave nothing a retry would take for a confirmed claim: the
    /// claim stays provisional, and the store should try to release it.
    fn claim(
        &self,
        key: &DedupeKey,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Marks `claim` as confirmed (its event is taken on; redeliveries are answered
    /// `200`) and renews its lease. `Ok(false)` when the claim no longer holds its
    /// key (it expired, or was released or committed).
    fn confirm(&self, claim: &Claim) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Extends `claim`'s lease to a whole lease from now, keeping it provisional or
    /// confirmed as it was. `Ok(false)` when the claim no longer holds its key.
    fn renew(&self, claim: &Claim) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records the claimed event as processed, for the store's retention time.
    ///
    /// An event that was processed is recorded even when its claim has expired
    /// meanwhile: being processed is a fact about the event, not about the claim.
    fn commit(&self, claim: &Claim) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the key back so the event can be claimed again, unless the key is now
    /// held by another claim (which is left alone).
    fn release(&self, claim: &Claim) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How long a committed event is remembered. The [`Receiver`](crate::Receiver)
    /// checks it covers the provider's replay window.
    fn retention_period(&self) -> Duration;

    /// How long an unrenewed claim holds its key. Whoever holds a claim renews it
    /// well within this (the tower processor: every third of it).
    fn lease_period(&self) -> Duration;
}

impl<S: DedupeStore> DedupeStore for Arc<S> {
    fn claim(
        &self,
        key: &DedupeKey,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send {
        (**self).claim(key)
    }

    fn commit(&self, claim: &Claim) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).commit(claim)
    }

    fn release(&self, claim: &Claim) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(claim)
    }

    fn confirm(&self, claim: &Claim) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).confirm(claim)
    }

    fn renew(&self, claim: &Claim) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).renew(claim)
    }

    fn retention_period(&self) -> Duration {
        (**self).retention_period()
    }

    fn lease_period(&self) -> Duration {
        (**self).lease_period()
    }
}
