//! The workers of one handler's stream: read, run, finish, and take over what a
//! dead worker left.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use hookwise_core::{Provider, StoreError};
use hookwise_runtime::{RunResult, Workers};
use redis::{
    AsyncCommands, Value,
    streams::{StreamAutoClaimOptions, StreamId, StreamPendingCountReply, StreamReadOptions},
};
use tokio::{sync::Semaphore, time::Instant};

use crate::{
    RedisQueue,
    acks::Acks,
    connection::millis,
    entry::{StoredEntry, delivery_fields},
    queue::GROUP,
    script_call::ScriptCall,
};

/// Dead-letters an entry in one step: acknowledges the entry `ARGV[2]` of the stream
/// `KEYS[1]` for the group `ARGV[1]`, appends it (fields in `ARGV[3..]`) to the
/// dead-letter stream `KEYS[2]` and deletes it. Nothing when the entry was
/// acknowledged already (a worker thought dead finished it too): no second dead
/// letter. Atomic, so a Redis restart leaves either the entry pending (it runs
/// again) or all of it done, never a dead letter of a pending entry. Entries run to
/// success are acknowledged in batches instead ([`Acks`]).
pub(crate) const BURY: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
";

/// The start of a scan of the pending entries.
const SCAN_START: &str = "0-0";

/// Reads one handler's stream and runs its entries, at most `concurrency` at once.
pub(crate) struct Reader<P: Provider> {
    pub(crate) workers: Arc<Workers<P>>,
    /// Shared with the request path, which runs entries in its slots too
    /// ([`crate::local`]); dropped with the reader.
    pub(crate) workshop: Arc<Workshop>,
}

/// What this instance's workers of one stream share, the reader and the request
/// path: the queue and the stream, the running slots (`concurrency` of them), the
/// entries running (kept fresh together, [`keep_fresh`]), the acknowledger, and the
/// names a dead letter is stored under.
pub(crate) struct Workshop {
    pub(crate) queue: RedisQueue,
    pub(crate) stream: Arc<str>,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) running: Mutex<HashSet<String>>,
    pub(crate) acks: Acks,
    pub(crate) dead_stream: Arc<str>,
    pub(crate) handler: Arc<str>,
}

impl Workshop {
    /// The ids of the entries running.
    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the run of the entry `id`: handed over to be acknowledged when it
    /// succeeded, dead-lettered with its `fields` (made only then) when it failed.
    pub(crate) async fn finish(
        &self,
        id: String,
        result: RunResult,
        fields: impl FnOnce() -> Vec<(String, Vec<u8>)>,
    ) {
        match result {
            Ok(()) => self.acks.done(id).await,
            Err(failure) => self.dead_letter(&id, fields(), failure).await,
        }
    }

    /// Moves the entry `id` (a delivery's `fields`) that failed (`(error,
    /// attempts)`) to the dead-letter stream in one script ([`BURY`]). When the
    /// script cannot run (Redis down), the entry stays pending, to be taken over and
    /// run again after the idle time: at least once.
    async fn dead_letter(
        &self,
        id: &str,
        fields: Vec<(String, Vec<u8>)>,
        (error, attempts): (String, u32),
    ) {
        let queue = &self.queue;
        let mut call = ScriptCall::new(&queue.scripts.bury, &[&*self.stream, &*self.dead_stream]);
        call.arg(GROUP).arg(id);
        for (name, value) in fields {
            call.arg(name).arg(value);
        }
        call.arg("error")
            .arg(error)
            .arg("attempts")
            .arg(attempts)
            .arg("handler")
            .arg(&*self.handler);
        let buried: Result<i64, StoreError> =
            queue.connection.run_script("dead-letter", &call).await;
        match buried {
            Ok(1) => {}
            Ok(_) => tracing::debug!(%id, "entry finished by another worker already"),
            // Neither acknowledged nor dead-lettered: the entry is run again after the
            // idle time.
            Err(error) => {
                tracing::warn!(%error, %id, "cannot dead-letter an entry; it stays pending and runs again");
            }
        }
    }
}

/// What one read took from the stream.
#[derive(Default)]
struct Taken {
    /// Entries to run: new ones, and abandoned ones with deliveries left.
    run: Vec<StreamId>,
    /// Abandoned entries delivered too often, with their unfinished deliveries.
    exhausted: Vec<(StreamId, u64)>,
}

impl<P: Provider> Reader<P> {
    pub(crate) async fn run(self) {
        let shutdown = self.workers.processor.shutdown_handle().clone();
        let slots = self.workshop.slots.clone();
        let mut group_ready = false;
        let poll = self.workshop.queue.poll_interval;
        let mut backoff = poll;
        // Where the next XAUTOCLAIM goes on scanning the pending entries, and when.
        let mut cursor = SCAN_START.to_owned();
        let mut next_scan = Instant::now();
        while !shutdown.is_closed() {
            if !group_ready {
                group_ready = self.create_group().await;
            }
            // Every slot busy: wait for one to free up, not for a poll interval.
            if slots.available_permits() == 0 && slots.acquire().await.is_err() {
                return;
            }
            let free = slots.available_permits().max(1);
            let read = if !group_ready {
                Ok(Taken::default())
            } else {
                self.read(free, &mut cursor, &mut next_scan).await
            };
            match read {
                Ok(taken) if taken.run.is_empty() && taken.exhausted.is_empty() => {
                    backoff = poll;
                    tokio::time::sleep(poll).await;
                }
                Ok(taken) => {
                    backoff = poll;
                    for (entry, deliveries) in taken.exhausted {
                        self.bury(entry, deliveries).await;
                    }
                    for entry in taken.run {
                        let Ok(slot) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let run = self.run_entry(entry);
                        shutdown.spawn(async move {
                            run.await;
                            drop(slot);
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, stream = %self.workshop.stream, ?backoff, "durable queue read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    // A restarted Redis may have lost the group: create it again.
                    group_ready = false;
                    cursor = SCAN_START.to_owned();
                    next_scan = Instant::now();
                }
            }
        }
    }

    /// Creates the consumer group (and the stream) unless it exists.
    async fn create_group(&self) -> bool {
        let mut connection = self.workshop.queue.connection.handle();
        let created: Result<(), StoreError> = self
            .workshop
            .queue
            .connection
            .bounded(
                "XGROUP CREATE",
                connection.xgroup_create_mkstream(&*self.workshop.stream, GROUP, "0"),
            )
            .await;
        match created {
            Ok(()) => true,
            Err(error) if format!("{error:?}").contains("BUSYGROUP") => true,
            Err(error) => {
                tracing::warn!(%error, stream = %self.workshop.stream, "cannot create the consumer group yet");
                false
            }
        }
    }

    /// Entries abandoned by a dead worker first, then new ones. `cursor` is where
    /// the scan of the pending entries goes on; it comes back to the start once the
    /// scan has gone round. A scan that went round is taken up again after the poll
    /// interval, not on every read: an entry is abandoned only after the claim
    /// idle time, and a busy stream would otherwise pay a second command per read.
    async fn read(
        &self,
        count: usize,
        cursor: &mut String,
        next_scan: &mut Instant,
    ) -> Result<Taken, StoreError> {
        let queue = &self.workshop.queue;
        let mut connection = queue.connection.handle();
        if Instant::now() >= *next_scan {
            let abandoned: redis::streams::StreamAutoClaimReply = queue
                .connection
                .bounded(
                    "XAUTOCLAIM",
                    connection.xautoclaim_options(
                        &*self.workshop.stream,
                        GROUP,
                        &*queue.consumer,
                        millis(queue.claim_idle),
                        cursor.as_str(),
                        StreamAutoClaimOptions::default().count(count),
                    ),
                )
                .await?;
            abandoned.next_stream_id.clone_into(cursor);
            if cursor == SCAN_START {
                *next_scan = Instant::now() + queue.poll_interval;
            }
            if !abandoned.claimed.is_empty() {
                return self.sort_out(abandoned.claimed).await;
            }
        }
        let options = StreamReadOptions::default()
            .group(GROUP, &*queue.consumer)
            .count(count);
        let fresh: Option<redis::streams::StreamReadReply> = queue
            .connection
            .bounded(
                "XREADGROUP",
                connection.xread_options(&[&*self.workshop.stream], &[">"], &options),
            )
            .await?;
        Ok(Taken {
            run: fresh
                .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
                .unwrap_or_default(),
            exhausted: Vec::new(),
        })
    }

    /// Splits entries just taken over by their delivery counts: those delivered more
    /// than `max_deliveries` times (this takeover included) are exhausted. An entry
    /// no longer pending was finished meanwhile by a worker thought dead: dropped.
    async fn sort_out(&self, claimed: Vec<StreamId>) -> Result<Taken, StoreError> {
        let queue = &self.workshop.queue;
        let mut connection = queue.connection.handle();
        let mut pipe = redis::pipe();
        for entry in &claimed {
            pipe.cmd("XPENDING")
                .arg(&*self.workshop.stream)
                .arg(GROUP)
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1);
        }
        let counts: Vec<StreamPendingCountReply> = queue
            .connection
            .bounded("XPENDING", pipe.query_async(&mut connection))
            .await?;
        let mut taken = Taken::default();
        for (entry, pending) in claimed.into_iter().zip(counts) {
            let Some(pending) = pending.ids.first() else {
                continue;
            };
            let deliveries = u64::try_from(pending.times_delivered).unwrap_or(u64::MAX);
            if deliveries > u64::from(queue.max_deliveries) {
                taken.exhausted.push((entry, deliveries - 1));
            } else {
                taken.run.push(entry);
            }
        }
        Ok(taken)
    }

    /// Dead-letters an entry that was delivered `deliveries` times without ever
    /// finishing, without running it again.
    async fn bury(&self, entry: StreamId, deliveries: u64) {
        tracing::error!(
            id = %entry.id,
            stream = %self.workshop.stream,
            deliveries,
            "a durable queue entry killed its worker every time; dead-lettered unrun"
        );
        let error =
            format!("delivered {deliveries} times without finishing (its worker died each time)");
        let attempts = u32::try_from(deliveries).unwrap_or(u32::MAX);
        self.workshop
            .dead_letter(&entry.id, delivery_fields(&entry), (error, attempts))
            .await;
    }

    /// Runs one entry to its end: processed and handed over to be acknowledged, or
    /// dead-lettered.
    fn run_entry(&self, entry: StreamId) -> impl std::future::Future<Output = ()> + Send + 'static {
        let workers = self.workers.clone();
        let workshop = self.workshop.clone();
        async move {
            // Kept fresh until handed over, so it is not taken over meanwhile; the
            // acknowledgement follows within a round trip or two.
            let heartbeat = Heartbeat::start(&workshop, &entry.id);
            let result = run_stored(&workers, &entry).await;
            let id = entry.id.clone();
            workshop
                .finish(id, result, || delivery_fields(&entry))
                .await;
            drop(heartbeat);
        }
    }
}

/// An entry counted as running by its workshop, so that [`keep_fresh`] keeps it
/// fresh; no longer counted once dropped: on every way out of the run, a panic or a
/// cancelled run included, so an entry is never kept fresh by a worker that no
/// longer runs it.
pub(crate) struct Heartbeat {
    workshop: Arc<Workshop>,
    id: String,
}

impl Heartbeat {
    /// Counts the entry `id` as running in `workshop`.
    pub(crate) fn start(workshop: &Arc<Workshop>, id: &str) -> Self {
        workshop.running().insert(id.to_owned());
        Self {
            workshop: workshop.clone(),
            id: id.to_owned(),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.workshop.running().remove(&self.id);
    }
}

/// Decodes a stream entry and runs it ([`Workers::run_stored`]); an entry that no
/// longer decodes is dead-lettered unrun.
async fn run_stored<P: Provider>(workers: &Workers<P>, entry: &StreamId) -> RunResult {
    let Some(stored) = StoredEntry::decode(entry) else {
        tracing::error!(id = %entry.id, "unreadable durable queue entry; dead-lettered");
        return Err(("unreadable queue entry".to_owned(), 0));
    };
    workers
        .run_stored(
            &stored.head,
            stored.body,
            stored.received_at,
            stored.verified,
        )
        .await
}

/// Keeps the idle time of the entries `workshop` runs low, so no other worker takes
/// them over: every third of the claim idle time (`every`), one `XCLAIM` of them
/// all. Ends once the workshop is gone (its reader stopped and its last run ended).
pub(crate) async fn keep_fresh(workshop: Weak<Workshop>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(workshop) = workshop.upgrade() else {
            return;
        };
        let ids: Vec<String> = workshop.running().iter().cloned().collect();
        // Not held across the call, so a drain never waits for it.
        let (queue, stream) = (workshop.queue.clone(), workshop.stream.clone());
        drop(workshop);
        if ids.is_empty() {
            continue;
        }
        let mut connection = queue.connection.handle();
        let mut refresh = queue.claim_here(&stream, &ids);
        refresh.arg("JUSTID");
        let touched: Result<Value, StoreError> = queue
            .connection
            .bounded("XCLAIM", refresh.query_async(&mut connection))
            .await;
        if let Err(error) = touched {
            tracing::debug!(%error, entries = ids.len(), "cannot refresh running entries");
        }
    }
}
