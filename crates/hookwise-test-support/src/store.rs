//! Dedupe stores that fail on purpose.

use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use hookwise_core::{Claim, ClaimOutcome, DedupeKey, DedupeStore, StoreError};

/// A store whose next claim is made in `S`, then reported as failed: the claim
/// holds its key in `S`, but its reply was lost (to a timeout, say), so the
/// receiver never learns of it. Once: every other call goes straight to `S`.
///
/// A claim that `S` itself fails is passed on as it is, and does not use up the
/// lost reply.
#[derive(Debug)]
pub struct ClaimReplyLost<S> {
    inner: S,
    lose_next: AtomicBool,
}

impl<S: DedupeStore> ClaimReplyLost<S> {
    /// `inner`, losing the reply of its next claim.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            lose_next: AtomicBool::new(true),
        }
    }

    /// The store that makes the claims.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: DedupeStore> DedupeStore for ClaimReplyLost<S> {
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        let outcome = self.inner.claim(key).await?;
        if self.lose_next.swap(false, Ordering::SeqCst) {
            return Err(StoreError::new("the claim was made, its reply lost"));
        }
        Ok(outcome)
    }

    async fn confirm(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.inner.confirm(claim).await
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.inner.renew(claim).await
    }

    async fn commit(&self, claim: &Claim) -> Result<(), StoreError> {
        self.inner.commit(claim).await
    }

    async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.inner.release(claim).await
    }

    fn retention_period(&self) -> Duration {
        self.inner.retention_period()
    }

    fn lease_period(&self) -> Duration {
        self.inner.lease_period()
    }
}

/// A store whose confirmations never answer (a store that went quiet after the
/// claim), counting them: a request that waits on one can only be cancelled.
/// Every other call goes straight to `S`.
#[derive(Debug)]
pub struct ConfirmStalls<S> {
    inner: S,
    confirms: AtomicUsize,
}

impl<S: DedupeStore> ConfirmStalls<S> {
    /// `inner`, with confirmations that never answer.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            confirms: AtomicUsize::new(0),
        }
    }

    /// How many confirmations were asked for.
    pub fn confirms(&self) -> usize {
        self.confirms.load(Ordering::SeqCst)
    }
}

impl<S: DedupeStore> DedupeStore for ConfirmStalls<S> {
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        self.inner.claim(key).await
    }

    async fn confirm(&self, _: &Claim) -> Result<bool, StoreError> {
        self.confirms.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.inner.renew(claim).await
    }

    async fn commit(&self, claim: &Claim) -> Result<(), StoreError> {
        self.inner.commit(claim).await
    }

    async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.inner.release(claim).await
    }

    fn retention_period(&self) -> Duration {
        self.inner.retention_period()
    }

    fn lease_period(&self) -> Duration {
        self.inner.lease_period()
    }
}
