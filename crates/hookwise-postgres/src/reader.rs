//! The queue's readers: each handler's task that takes its ready rows and runs
//! them, and what ends a run wherever it ran (kept fresh meanwhile, then deleted in
//! batches or dead-lettered).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use hookwise_core::{Provider, Verified};
use hookwise_runtime::{
    AckBatcher, DEFAULT_ACK_BATCH, RunResult, ShutdownHandle, StoredHead, Workers,
};
use sqlx::{AssertSqlSafe, Row, postgres::PgRow};
use tokio::task::JoinHandle;

use crate::{PgQueue, local::Workshop, store::bounded};

/// How long a batch of rows run to success waits for more before its delete. The
/// delete is planned for its ids each time, about 110 µs of the database's time a
/// call whatever its size (BENCHMARKS.md, section 22); the rows, done and
/// invisible, lose nothing by waiting.
const DELETE_LINGER: Duration = Duration::from_millis(10);

/// Takes one handler's ready rows and runs them, at most `concurrency` at once.
pub(crate) struct Reader<P: Provider> {
    pub(crate) queue: PgQueue,
    pub(crate) provider: &'static str,
    pub(crate) handler: String,
    pub(crate) workers: Arc<Workers<P>>,
    /// The running slots, shared with deliveries run where they were stored, and
    /// what deletes the rows run to success, in batches.
    pub(crate) workshop: Arc<Workshop>,
}

/// A row taken from the queue.
struct Taken {
    id: i64,
    deliveries: i32,
    stored: StoredRow,
}

impl Taken {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            deliveries: row.try_get("deliveries")?,
            stored: StoredRow::from_row(row)?,
        })
    }
}

/// A stored delivery's columns read back, in the `queue` and `dead` tables alike.
pub(crate) struct StoredRow {
    pub(crate) head: StoredHead,
    pub(crate) body: Bytes,
    pub(crate) verified: Verified,
    pub(crate) received_at: Duration,
}

impl StoredRow {
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let mut verified =
            Verified::new(usize::try_from(row.try_get::<i32, _>("secret")?).unwrap_or(0));
        if let Some(t) = row.try_get::<Option<i64>, _>("signed_at")? {
            verified = verified.signed_at(u64::try_from(t).unwrap_or(0));
        }
        Ok(Self {
            head: StoredHead {
                method: row.try_get("method")?,
                uri: row.try_get("uri")?,
                headers: row.try_get("headers")?,
            },
            body: Bytes::from(row.try_get::<Vec<u8>, _>("body")?),
            verified,
            received_at: Duration::from_millis(
                u64::try_from(row.try_get::<i64, _>("received_ms")?).unwrap_or(0),
            ),
        })
    }
}

impl<P: Provider> Reader<P> {
    pub(crate) async fn run(self) {
        let shutdown = self.workers.processor.shutdown_handle().clone();
        let slots = &self.workshop.slots;
        let queue = &self.queue;
        while !shutdown.is_closed() {
            // Every slot busy: wait for one to free up, not for a poll interval.
            if slots.available_permits() == 0 && slots.acquire().await.is_err() {
                return;
            }
            let free = slots.available_permits().max(1);
            let query = sqlx::query(AssertSqlSafe(queue.sql.take.clone()))
                .bind(self.provider)
                .bind(&self.handler)
                .bind(queue.visibility_ms())
                .bind(i64::try_from(free).unwrap_or(1));
            let rows = match bounded(queue.timeout, "take", query.fetch_all(&queue.pool)).await {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the durable queue; retrying");
                    tokio::time::sleep(queue.poll_interval).await;
                    continue;
                }
            };
            if rows.is_empty() {
                tokio::time::sleep(queue.poll_interval).await;
                continue;
            }
            for row in rows {
                let taken = match Taken::from_row(&row) {
                    Ok(taken) => taken,
                    Err(error) => {
                        let id: i64 = row.try_get("id").unwrap_or_default();
                        tracing::error!(%error, id, "unreadable durable queue row; dead-lettered");
                        queue.bury(id, ("unreadable queue row".to_owned(), 0)).await;
                        continue;
                    }
                };
                if u32::try_from(taken.deliveries).unwrap_or(u32::MAX) > queue.max_deliveries {
                    let error = format!(
                        "delivered {} times without finishing (its worker died each time)",
                        taken.deliveries - 1
                    );
                    let attempts = u32::try_from(taken.deliveries - 1).unwrap_or(0);
                    queue.bury(taken.id, (error, attempts)).await;
                    continue;
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (queue, workers, workshop) =
                    (queue.clone(), self.workers.clone(), self.workshop.clone());
                shutdown.spawn(async move {
                    queue.run_taken(&workers, &workshop.done, taken).await;
                    drop(slot);
                });
            }
        }
    }
}

impl PgQueue {
    /// Runs a taken row to its end, kept fresh meanwhile: processed and handed to
    /// `done` to be deleted, or dead-lettered.
    async fn run_taken<P: Provider>(
        &self,
        workers: &Workers<P>,
        done: &AckBatcher<i64>,
        taken: Taken,
    ) {
        let heartbeat = Heartbeat::start(self, taken.id, taken.deliveries);
        let stored = taken.stored;
        let outcome = match stored.head.to_parts() {
            Some(head) => {
                workers
                    .run_stored(&head, stored.body, stored.received_at, stored.verified)
                    .await
            }
            None => {
                tracing::error!(
                    id = taken.id,
                    "a queued row's request head no longer reads; dead-lettered"
                );
                Err(("unreadable request head".to_owned(), 0))
            }
        };
        // Kept fresh until handed over; the delete follows within a statement or two.
        self.end_run(done, taken.id, outcome).await;
        drop(heartbeat);
    }

    /// Ends the run of row `id`: handed to `done` to be deleted when it succeeded,
    /// dead-lettered when it failed.
    pub(crate) async fn end_run(&self, done: &AckBatcher<i64>, id: i64, outcome: RunResult) {
        match outcome {
            Ok(()) => done.done(id).await,
            Err(failure) => self.bury(id, failure).await,
        }
    }

    /// The task that deletes the rows run to success, in batches of at most
    /// [`DEFAULT_ACK_BATCH`], one statement each, a batch waiting up to
    /// [`DELETE_LINGER`] for more rows. When the statement cannot run, the rows
    /// become visible again after the visibility timeout and run again.
    pub(crate) fn deleter(&self, shutdown: &ShutdownHandle) -> AckBatcher<i64> {
        let queue = self.clone();
        AckBatcher::lingering(
            shutdown,
            DEFAULT_ACK_BATCH,
            DELETE_LINGER,
            move |ids: Vec<i64>| {
                let queue = queue.clone();
                async move {
                    // Planned for its ids each time (an unnamed statement): a plan a
                    // connection cached while the table was small could go on reading
                    // hundreds of pages a delete once it had grown (BENCHMARKS section 20).
                    let query = sqlx::query(AssertSqlSafe(queue.sql.delete.clone()))
                        .bind(&ids)
                        .persistent(false);
                    let deleted =
                        bounded(queue.timeout, "finish", query.execute(&queue.pool)).await;
                    if let Err(error) = deleted {
                        tracing::warn!(%error, rows = ids.len(), "cannot delete processed durable queue rows; they run again after the visibility timeout");
                    }
                }
            },
        )
    }

    /// Moves a row that failed (`(error, attempts)`) to the dead letters in one
    /// statement. A row finished already (by a worker that took it over) is left
    /// alone: no second dead letter. When the statement cannot run, the row becomes
    /// visible again after the visibility timeout and runs again.
    async fn bury(&self, id: i64, (error, attempts): (String, u32)) {
        let query = sqlx::query(AssertSqlSafe(self.sql.bury.clone()))
            .bind(id)
            .bind(error)
            .bind(i32::try_from(attempts).unwrap_or(i32::MAX));
        if let Err(error) = bounded(self.timeout, "dead-letter", query.execute(&self.pool)).await {
            tracing::warn!(%error, id, "cannot dead-letter a durable queue row; it runs again after the visibility timeout");
        }
    }
}

/// Keeps a running row invisible to other workers, while it is still this run's
/// (its delivery count unchanged).
async fn keep_fresh(queue: PgQueue, id: i64, deliveries: i32) {
    let every = queue.visibility / 3;
    loop {
        tokio::time::sleep(every).await;
        let query = sqlx::query(AssertSqlSafe(queue.sql.refresh.clone()))
            .bind(id)
            .bind(deliveries)
            .bind(queue.visibility_ms());
        if let Err(error) = bounded(queue.timeout, "refresh", query.execute(&queue.pool)).await {
            tracing::debug!(%error, id, "cannot refresh a running row");
        }
    }
}

/// The heartbeat of a running row, aborted when dropped: on every way out of the
/// run, a panic included.
pub(crate) struct Heartbeat(JoinHandle<()>);

impl Heartbeat {
    /// Keeps row `id` of `queue` fresh while it has been taken `deliveries` times.
    pub(crate) fn start(queue: &PgQueue, id: i64, deliveries: i32) -> Self {
        Self(tokio::spawn(keep_fresh(queue.clone(), id, deliveries)))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
