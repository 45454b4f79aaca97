//! Running a delivery on the instance that stored it. When one of the handler's
//! running slots is free here, the statement that stores a delivery through an
//! endpoint (`store_if_new`) inserts its row as taken by this instance (taken once,
//! invisible to the readers for the visibility timeout), and the runtime runs it
//! from the delivery it holds ([`IfNew::StoredToRunHere`]): no take, no read back, no
//! second parse. The row is kept fresh while it runs and deleted or dead-lettered
//! after, as one a reader took. A request cut while the statement runs gives the row
//! back to the readers at once ([`Handover`]); a process that dies mid-run leaves it
//! to be taken over after the visibility timeout.
//!
//! [`IfNew::StoredToRunHere`]: hookwise_runtime::IfNew::StoredToRunHere

use std::sync::{Arc, Mutex, PoisonError, Weak};

use hookwise_runtime::{AckBatcher, RunHere};
use sqlx::AssertSqlSafe;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{PgQueue, queue::RUN_HERE, reader::Heartbeat, store::bounded};

/// One handler's workers in this instance: their running slots, and what deletes
/// the rows they ran to success. Held by the handler's reader (gone when it stops,
/// so that its deleter can end with the drain) and by the runs in progress.
pub(crate) struct Workshop {
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) done: AckBatcher<i64>,
}

/// This instance's workshops, by provider and handler, registered when the runtime
/// starts their readers.
#[derive(Default)]
pub(crate) struct Workshops(Mutex<Vec<Registered>>);

/// A workshop, under the provider and handler whose rows it runs.
struct Registered {
    provider: &'static str,
    handler: String,
    workshop: Weak<Workshop>,
}

/// A free running slot of a handler's workers, taken for a delivery about to be
/// stored: the delivery runs here once its row is stored, and the slot is given back
/// otherwise.
pub(crate) struct FreeSlot {
    workshop: Arc<Workshop>,
    slot: OwnedSemaphorePermit,
}

impl Workshops {
    /// Registers the workers of `provider`'s `handler`.
    pub(crate) fn register(&self, provider: &'static str, handler: &str, workshop: &Arc<Workshop>) {
        let mut registered = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        registered.retain(|r| !(r.provider == provider && r.handler == handler));
        registered.push(Registered {
            provider,
            handler: handler.to_owned(),
            workshop: Arc::downgrade(workshop),
        });
    }

    /// A free running slot of `provider`'s `handler`'s workers in this instance;
    /// `None` when they are all busy, or no worker of this instance runs them.
    pub(crate) fn free_slot(&self, provider: &str, handler: &str) -> Option<FreeSlot> {
        let workshop = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|r| r.provider == provider && r.handler == handler)?
            .workshop
            .upgrade()?;
        let slot = workshop.slots.clone().try_acquire_owned().ok()?;
        Some(FreeSlot { workshop, slot })
    }
}

/// A row just stored as taken by this instance, for its run here. Dropped before
/// [`run_here`](Self::run_here) (its request was dropped before the statement's
/// answer reached it), it gives the row back to the readers: visible at once, with
/// no delivery counted.
pub(crate) struct Handover(Option<(PgQueue, i64, FreeSlot)>);

impl Handover {
    /// Row `id` of `queue`, stored as taken by this instance, to run in the slot
    /// `free` of its handler's workers.
    pub(crate) fn new(queue: PgQueue, id: i64, free: FreeSlot) -> Self {
        Self(Some((queue, id, free)))
    }

    /// The row's run here: kept fresh from now on, deleted when the run succeeds,
    /// dead-lettered when it fails. The slot is held until then.
    pub(crate) fn run_here(mut self) -> Option<RunHere> {
        let (queue, id, FreeSlot { workshop, slot }) = self.0.take()?;
        let heartbeat = Heartbeat::start(&queue, id, RUN_HERE);
        Some(RunHere::new(move |result| async move {
            queue.end_run(&workshop.done, id, result).await;
            drop(heartbeat);
            drop(slot);
        }))
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        let Some((queue, id, free)) = self.0.take() else {
            return;
        };
        // The slot is free again now; the row goes back to the readers.
        drop(free);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // taken over after the visibility timeout
        };
        drop(runtime.spawn(async move {
            let query = sqlx::query(AssertSqlSafe(queue.sql.give_back.clone()))
                .bind(id)
                .bind(RUN_HERE);
            let given_back = bounded(queue.timeout, "give back", query.execute(&queue.pool)).await;
            if let Err(error) = given_back {
                tracing::debug!(%error, id, "cannot give a row back; taken over after the visibility timeout");
            }
        }));
    }
}
