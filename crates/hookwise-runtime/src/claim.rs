//! [`HeldClaim`]: the one owner of an accepted event's dedupe claim.

use std::{fmt, sync::Arc};

use hookwise_core::{AnyStore, Claim, DedupeStore, Provider, Receiver, StoreError};

use crate::{ShutdownHandle, Stats, stats::StoreCall};

/// How a held claim ends if it is dropped before it was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnDrop {
    Release,
    Commit,
}

/// An accepted event's dedupe claim, held until it is committed or released.
///
/// Dropping it unended (a cancelled request, a panic) releases the claim on a task of
/// its own, so the sender's retry is processed; dropping it while
/// [`commit`](Self::commit) is under way completes the commit instead. Either way the
/// claim's end is counted once in [`Stats`] (it is no longer in flight).
///
/// Every path that ends a claim goes through a `HeldClaim`, so no path can forget one.
/// [`Webhooks::receive`](crate::Webhooks::receive) hands one out with every new
/// event; [`Webhooks::process`](crate::Webhooks::process) and
/// [`Webhooks::hand_to`](crate::Webhooks::hand_to) take it and end it:
///
/// | what happened | who ends the claim | how |
/// | --- | --- | --- |
/// | ack-fast, taken by the processor | the request confirms, the background run commits | confirmed once spawned, before the `200` ([`DedupeStore::confirm`](hookwise_core::DedupeStore::confirm)), renewed while queued or running, [`commit`](HeldClaim::commit) when processed or dead-lettered |
/// | ack-fast, queue full or shutting down (`503`) | the request | [`release`](HeldClaim::release) |
/// | ack-after-handler, handler succeeded | the request | [`commit`](HeldClaim::commit), then `200` |
/// | ack-after-handler, handler failed (`500`) | the request | [`release`](HeldClaim::release) |
/// | durable queue stored the delivery | the request, or the queue | [`commit`](HeldClaim::commit): the queue owns the event now; a queue on the store's server commits in the same atomic step as it stores ([`Stored::Committed`](crate::Stored::Committed)) |
/// | durable queue could not store it (`503`) | the request | [`release`](HeldClaim::release) |
/// | no handler of that name, or a per-request job on a durable runtime (`500`) | the request | [`release`](HeldClaim::release) |
/// | the extractor's handler commits or releases itself | the handler | [`commit`](HeldClaim::commit) / [`release`](HeldClaim::release) |
/// | the request's future was dropped (client gone, cancelled), or a panic | `Drop` | finishes what was under way: a commit that had begun is completed, anything else is released, on a task of its own |
///
/// A claim ended by nobody (the process died) expires after the store's lease.
pub struct HeldClaim<P: Provider> {
    claim: Option<Claim>,
    on_drop: OnDrop,
    receiver: Arc<Receiver<P, AnyStore>>,
    stats: Stats,
    shutdown: ShutdownHandle,
}

impl<P: Provider> HeldClaim<P> {
    pub(crate) fn new(
        claim: Claim,
        receiver: Arc<Receiver<P, AnyStore>>,
        stats: Stats,
        shutdown: ShutdownHandle,
    ) -> Self {
        Self {
            claim: Some(claim),
            on_drop: OnDrop::Release,
            receiver,
            stats,
            shutdown,
        }
    }

    /// The claim, until it ended.
    pub fn claim(&self) -> Option<&Claim> {
        self.claim.as_ref()
    }

    /// The store's lease: renew well within it.
    pub(crate) fn lease_period(&self) -> std::time::Duration {
        self.receiver.store().lease_period()
    }

    /// Extends the claim's lease while its event waits or runs. A claim that no
    /// longer holds its key is logged: a redelivery may then run the event again.
    pub async fn renew(&self) {
        let Some(claim) = &self.claim else { return };
        match self.receiver.renew(claim).await {
            Ok(true) => {
                self.stats.lease_renewed();
                tracing::trace!(key = %claim.key(), "webhook claim renewed");
            }
            Ok(false) => {
                tracing::error!(key = %claim.key(), "a webhook claim expired while its event was still running; a redelivery may run it again");
            }
            Err(error) => {
                self.stats.store_error(StoreCall::Renew);
                tracing::warn!(%error, key = %claim.key(), "could not renew a webhook claim; retrying at the next heartbeat");
            }
        }
    }

    /// Records the event as processed. If this future is dropped before the store
    /// answered, the commit is completed on a task of its own. A failure is logged
    /// and returned: the claim then expires with its lease.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.on_drop = OnDrop::Commit;
        let result = match &self.claim {
            Some(claim) => end(&self.receiver, &self.stats, claim, OnDrop::Commit).await,
            None => Ok(()),
        };
        self.finish();
        result
    }

    /// Gives the claim back so the sender's retry is processed. A failure is logged
    /// and returned: the claim then stays provisional until its lease runs out, so
    /// redeliveries are answered `409` meanwhile, never `200`.
    pub async fn release(mut self) -> Result<(), StoreError> {
        let result = match &self.claim {
            Some(claim) => end(&self.receiver, &self.stats, claim, OnDrop::Release).await,
            None => Ok(()),
        };
        self.finish();
        result
    }

    /// Records that a durable queue committed the claim in the same atomic step as
    /// it stored the event ([`Stored::Committed`](crate::Stored::Committed)): the
    /// claim has ended, with no call to the store.
    pub(crate) fn committed_by_queue(mut self) {
        self.finish();
    }

    /// The claim has ended: nothing left for `Drop`.
    fn finish(&mut self) {
        if self.claim.take().is_some() {
            self.stats.finished();
        }
    }
}

/// Ends `claim` in the store, logging a failure: an unreleased claim expires with its
/// lease, and is provisional meanwhile, so redeliveries are not acknowledged.
async fn end<P: Provider>(
    receiver: &Receiver<P, AnyStore>,
    stats: &Stats,
    claim: &Claim,
    how: OnDrop,
) -> Result<(), StoreError> {
    let result = match how {
        OnDrop::Commit => receiver.commit(claim).await,
        OnDrop::Release => receiver.release(claim).await,
    };
    if let Err(error) = &result {
        stats.store_error(match how {
            OnDrop::Commit => StoreCall::Commit,
            OnDrop::Release => StoreCall::Release,
        });
        match how {
            OnDrop::Commit => {
                tracing::error!(%error, key = %claim.key(), "could not record a processed webhook event");
            }
            OnDrop::Release => {
                tracing::error!(%error, key = %claim.key(), "could not release a webhook claim; it expires with its lease");
            }
        }
    }
    result
}

impl<P: Provider> Drop for HeldClaim<P> {
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        self.stats.finished();
        let how = self.on_drop;
        tracing::debug!(key = %claim.key(), ?how, "webhook claim dropped unended; ending it");
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!(key = %claim.key(), "no runtime to end a dropped webhook claim; it expires with its lease");
            return;
        }
        let (receiver, stats) = (self.receiver.clone(), self.stats.clone());
        // Tracked, so a drain waits for it.
        self.shutdown.spawn(async move {
            end(&receiver, &stats, &claim, how)
                .await
                .unwrap_or_default();
        });
    }
}

impl<P: Provider> fmt::Debug for HeldClaim<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldClaim")
            .field("claim", &self.claim)
            .field("on_drop", &self.on_drop)
            .finish_non_exhaustive()
    }
}
