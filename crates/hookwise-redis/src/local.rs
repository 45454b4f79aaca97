//! Running a delivery on the instance that stored it. When one of the handler's
//! running slots is free here, the script that stores a delivery through an endpoint
//! (`batch::STORE_IF_NEW`) also claims the new entry for this instance's consumer,
//! and the runtime runs it from the delivery it holds ([`IfNew::StoredToRunHere`]):
//! no read of the stream, no decoding, no second parse. The entry is pending in this
//! consumer, kept fresh while it runs and acknowledged or dead-lettered after, as
//! one its reader read. A request cut while its batch's script runs gives it back
//! to the readers once the script has answered ([`Handover`]); a process that dies
//! mid-run leaves it to be taken over after the claim idle time.
//!
//! [`IfNew::StoredToRunHere`]: hookwise_runtime::IfNew::StoredToRunHere

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use hookwise_runtime::RunHere;
use tokio::sync::OwnedSemaphorePermit;

use crate::{
    connection::millis,
    entry::EntryFields,
    reader::{Heartbeat, Workshop},
};

/// This instance's workshops, by stream: one per handler, registered when the
/// runtime starts its reader, held by the reader (gone when it stops, so its
/// acknowledger can end with the drain).
#[derive(Default)]
pub(crate) struct Workshops(Mutex<HashMap<Arc<str>, Weak<Workshop>>>);

/// A free running slot of a stream's workers, taken for a delivery about to be
/// stored: the delivery runs here if the store script hands it over, and the slot
/// is given back otherwise.
pub(crate) struct FreeSlot {
    workshop: Arc<Workshop>,
    slot: OwnedSemaphorePermit,
}

impl Workshops {
    /// Registers the workers of `stream`.
    pub(crate) fn register(&self, stream: Arc<str>, workshop: &Arc<Workshop>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stream, Arc::downgrade(workshop));
    }

    /// A free running slot of `stream`'s workers in this instance; `None` when they
    /// are all busy, or no worker of this instance reads `stream`.
    pub(crate) fn free_slot(&self, stream: &str) -> Option<FreeSlot> {
        let workshop = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)?
            .upgrade()?;
        let slot = workshop.slots.clone().try_acquire_owned().ok()?;
        Some(FreeSlot { workshop, slot })
    }
}

/// An entry just stored and read into this instance's consumer, for its run here.
/// Dropped before [`run_here`](Self::run_here) (the request was cut while its store
/// script ran), it gives the entry back to the readers: made idle for the claim
/// idle time, with no delivery counted, so the next scan of any reader takes it
/// over, instead of waiting the whole idle time in this consumer.
pub(crate) struct Handover(Option<Entry>);

/// What a [`Handover`] hands over.
struct Entry {
    id: String,
    fields: EntryFields,
    free: FreeSlot,
}

impl Handover {
    /// The entry `id`, stored with `fields` and read into this instance's consumer,
    /// to run in the slot `free` of its stream's workers.
    pub(crate) fn new(id: String, fields: EntryFields, free: FreeSlot) -> Self {
        Self(Some(Entry { id, fields, free }))
    }

    /// The entry's run here: kept fresh from now on, acknowledged when the run
    /// succeeds, dead-lettered with its fields when it fails. The slot is held until
    /// then.
    pub(crate) fn run_here(mut self) -> Option<RunHere> {
        let Entry {
            id,
            fields,
            free: FreeSlot { workshop, slot },
        } = self.0.take()?;
        let heartbeat = Heartbeat::start(&workshop, &id);
        Some(RunHere::new(move |result| async move {
            let fields = || {
                fields
                    .map(|(name, value)| (name.to_owned(), value.to_vec()))
                    .into()
            };
            workshop.finish(id, result, fields).await;
            drop(heartbeat);
            drop(slot);
        }))
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        let Some(Entry { id, free, .. }) = self.0.take() else {
            return;
        };
        let (queue, stream) = (free.workshop.queue.clone(), free.workshop.stream.clone());
        // The slot is free again now; the entry goes back to the readers.
        drop(free);
        let connection = queue.connection.clone();
        connection.spawn(async move {
            let mut handle = queue.connection.handle();
            let mut give_back = queue.claim_here(&stream, &id);
            give_back.arg("IDLE").arg(millis(queue.claim_idle));
            give_back.arg("RETRYCOUNT").arg(0).arg("JUSTID");
            let given_back: Result<redis::Value, _> = queue
                .connection
                .bounded("XCLAIM", give_back.query_async(&mut handle))
                .await;
            if let Err(error) = given_back {
                tracing::debug!(%error, %id, "cannot give an entry back; taken over after the idle time");
            }
        });
    }
}
