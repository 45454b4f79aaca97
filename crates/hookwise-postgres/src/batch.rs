//! Deliveries stored through endpoints, written in batches: one statement stores
//! (and marks done, and may take for a run here) every delivery of a handler that
//! arrived while the statements before it ran. Postgres's cost of a statement is
//! mostly the statement's, not the row's (a batch of 8 costs about a third per row
//! of a batch of 1: BENCHMARKS section 20), so under load the deliveries share it;
//! a lone delivery is written at once (after one yield to the scheduler), in a batch
//! of one.
//!
//! Each handler has a writer task, fed by a bounded channel: it takes what waits,
//! at most [`MAX_BATCH`] deliveries, whenever one of its [`IN_FLIGHT`] statements is
//! free, and answers each delivery on its own channel. A delivery whose request was
//! dropped meanwhile is still written, with the others (it was sent); its answer
//! finds no one, and a row taken for a run here is given back by its [`Handover`].

use std::sync::{Arc, Mutex, PoisonError};

use hookwise_core::{Delivery, StoreError};
use hookwise_runtime::{BatchWriter, Batching, StoredHead};
use http::request::Parts;
use sqlx::AssertSqlSafe;
use tokio::sync::oneshot;

use crate::{
    PgQueue,
    local::{FreeSlot, Handover},
    store::{bounded, millis},
};

/// The most deliveries one statement stores.
pub(crate) const MAX_BATCH: usize = 16;

/// The statements of one handler's writer running at once: two keep both cores of
/// a small database busy while the next batch fills.
pub(crate) const IN_FLIGHT: usize = 2;

/// A delivery's row, its columns owned, for a batch.
pub(crate) struct QueueRow {
    pub(crate) key: String,
    pub(crate) method: String,
    pub(crate) uri: String,
    pub(crate) headers: Vec<u8>,
    pub(crate) body: Vec<u8>,
    pub(crate) secret: i32,
    pub(crate) signed_at: Option<i64>,
    pub(crate) received_ms: i64,
    pub(crate) line: Option<String>,
}

impl QueueRow {
    /// The row of `delivery`, received with request `head`, in `line` if any.
    pub(crate) fn of<E>(head: &Parts, delivery: &Delivery<E>, line: Option<&str>) -> Self {
        let StoredHead {
            method,
            uri,
            headers,
        } = StoredHead::of(head);
        let verified = delivery.verified();
        Self {
            key: delivery.dedupe_key().as_str().to_owned(),
            method,
            uri,
            headers,
            body: delivery.raw_body().to_vec(),
            secret: i32::try_from(verified.secret_index()).unwrap_or(i32::MAX),
            signed_at: verified
                .signed_timestamp()
                .and_then(|t| i64::try_from(t).ok()),
            received_ms: millis(delivery.received_at()),
            line: line.map(str::to_owned),
        }
    }
}

/// A delivery waiting for its batch.
pub(crate) struct Pending {
    pub(crate) row: QueueRow,
    /// The store-if-new statement of the receiver's store, and its retention in ms.
    pub(crate) sql: Arc<str>,
    pub(crate) retention_ms: i64,
    /// A running slot here, when the delivery is to run where it is stored.
    pub(crate) free: Option<FreeSlot>,
    pub(crate) answer: Answering,
}

/// Where a delivery's request waits for what became of it.
pub(crate) type Answering = oneshot::Sender<Result<Written, StoreError>>;

/// What the statement did with one delivery.
pub(crate) enum Written {
    /// Stored, and taken for a run here when it had a slot.
    Stored(Option<Handover>),
    /// Not stored: there was no room (`false`) or the key was taken, by a row in
    /// this state if the statement saw it.
    NotStored { room: bool, held: Option<String> },
}

/// One answer row of the statement: position (from 1), room, stored id, lowest id
/// read, state holding the key.
type Answer = (i64, bool, Option<i64>, Option<i64>, Option<String>);

/// The writers of this queue, one per provider and handler, started on first use.
#[derive(Default)]
pub(crate) struct Writers(Mutex<Vec<Writer>>);

/// A handler's writer: where its deliveries wait.
struct Writer {
    provider: &'static str,
    handler: String,
    waiting: BatchWriter<Pending>,
}

impl Writers {
    /// Where `provider`'s `handler`'s deliveries wait for `queue`'s writer; started
    /// if it is not running.
    pub(crate) fn of(
        &self,
        queue: &PgQueue,
        provider: &'static str,
        handler: &str,
    ) -> BatchWriter<Pending> {
        let mut writers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(writer) = writers
            .iter()
            .find(|w| w.provider == provider && w.handler == handler && !w.waiting.is_closed())
        {
            return writer.waiting.clone();
        }
        writers.retain(|w| !(w.provider == provider && w.handler == handler));
        // The writer's queue has writers of its own (none), not these, which hold
        // the writer's sender: it ends once the queue and its clones are gone.
        let mut own = queue.clone();
        own.writers = Arc::default();
        let batching = Batching {
            max: MAX_BATCH,
            in_flight: IN_FLIGHT,
            wait: queue.batch_wait.min(queue.timeout / 4),
        };
        let name: Arc<str> = handler.into();
        let waiting = BatchWriter::start(batching, move |waiting| {
            let (queue, handler) = (own.clone(), name.clone());
            async move { queue.write_statements(provider, &handler, waiting).await }
        });
        writers.push(Writer {
            provider,
            handler: handler.to_owned(),
            waiting: waiting.clone(),
        });
        waiting
    }
}

/// The deliveries of `waiting` that one statement can store, in their order, and
/// the rest for the next: not two of one key (a redelivery racing its first), nor
/// another store's statement than the first's.
fn one_statement(waiting: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(waiting.len());
    let mut rest = Vec::new();
    for pending in waiting {
        let fits = batch.first().is_none_or(|first| {
            Arc::ptr_eq(&first.sql, &pending.sql) && first.retention_ms == pending.retention_ms
        }) && batch.iter().all(|b| b.row.key != pending.row.key);
        match fits {
            true => batch.push(pending),
            false => rest.push(pending),
        }
    }
    (batch, rest)
}

impl PgQueue {
    /// Stores `waiting` (never empty) of `provider`'s `handler`, in as few
    /// statements as it takes, one after the other, and answers each delivery.
    async fn write_statements(&self, provider: &'static str, handler: &str, waiting: Vec<Pending>) {
        let mut rest = waiting;
        while !rest.is_empty() {
            let (batch, held_over) = one_statement(rest);
            self.write_batch(provider, handler, batch).await;
            rest = held_over;
        }
    }

    /// Stores `batch` (never empty) of `provider`'s `handler` in one statement and
    /// answers each delivery.
    async fn write_batch(&self, provider: &'static str, handler: &str, batch: Vec<Pending>) {
        let (sql, retention_ms) = (batch[0].sql.clone(), batch[0].retention_ms);
        let visibility_ms = self.visibility_ms();
        let mut columns = Columns::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        for pending in batch {
            let taken = pending.free.is_some();
            columns.push(pending.row, taken, visibility_ms);
            waiting.push((pending.free, pending.answer));
        }
        let query = sqlx::query_as::<_, Answer>(AssertSqlSafe(sql))
            .bind(provider)
            .bind(handler.to_owned())
            .bind(columns.keys)
            .bind(columns.methods)
            .bind(columns.uris)
            .bind(columns.headers)
            .bind(columns.bodies)
            .bind(columns.secrets)
            .bind(columns.signed_at)
            .bind(columns.received_ms)
            .bind(retention_ms)
            .bind(self.bound())
            .bind(columns.lines)
            .bind(self.lowest(provider, handler))
            .bind(columns.deliveries)
            .bind(columns.hidden_ms);
        let answers = match bounded(self.timeout, "enqueue", query.fetch_all(&self.pool)).await {
            Ok(answers) if answers.len() == waiting.len() => answers,
            Ok(answers) => {
                let error = StoreError::new(format!(
                    "the enqueue statement answered {} rows for {} deliveries",
                    answers.len(),
                    waiting.len()
                ));
                return fail(waiting, &error);
            }
            Err(error) => return fail(waiting, &error),
        };
        if let Some(&(_, _, _, lowest, _)) = answers.first() {
            self.saw_lowest(provider, handler, lowest);
        }
        for ((_, room, id, _, held), (free, answer)) in answers.into_iter().zip(waiting) {
            let written = match (id, free) {
                (Some(id), Some(free)) => {
                    Written::Stored(Some(Handover::new(self.clone(), id, free)))
                }
                (Some(_), None) => Written::Stored(None),
                (None, _) => Written::NotStored { room, held },
            };
            // No one waits any more (the request was dropped): a row taken for a
            // run here is given back as the answer is dropped.
            drop(answer.send(Ok(written)));
        }
    }
}

/// Answers every delivery of a batch whose statement failed with `error` (`503`
/// for the sender, who retries): nothing of it was stored, or, when the answer
/// timed out after the statement committed, the rows are the readers', those taken
/// to run here after the visibility timeout, and the retries are duplicates.
fn fail(waiting: Vec<(Option<FreeSlot>, Answering)>, error: &StoreError) {
    for (_, answer) in waiting {
        drop(answer.send(Err(StoreError::new(error.to_string()))));
    }
}

/// A batch's columns, one array each, for the statement's parameters.
struct Columns {
    keys: Vec<String>,
    methods: Vec<String>,
    uris: Vec<String>,
    headers: Vec<Vec<u8>>,
    bodies: Vec<Vec<u8>>,
    secrets: Vec<i32>,
    signed_at: Vec<Option<i64>>,
    received_ms: Vec<i64>,
    lines: Vec<Option<String>>,
    deliveries: Vec<i32>,
    hidden_ms: Vec<i64>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Self {
            keys: Vec::with_capacity(n),
            methods: Vec::with_capacity(n),
            uris: Vec::with_capacity(n),
            headers: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            secrets: Vec::with_capacity(n),
            signed_at: Vec::with_capacity(n),
            received_ms: Vec::with_capacity(n),
            lines: Vec::with_capacity(n),
            deliveries: Vec::with_capacity(n),
            hidden_ms: Vec::with_capacity(n),
        }
    }

    /// Adds `row`: taken once and invisible for `visibility_ms` when it runs here
    /// (`taken`), else ready for the readers.
    fn push(&mut self, row: QueueRow, taken: bool, visibility_ms: i64) {
        self.keys.push(row.key);
        self.methods.push(row.method);
        self.uris.push(row.uri);
        self.headers.push(row.headers);
        self.bodies.push(row.body);
        self.secrets.push(row.secret);
        self.signed_at.push(row.signed_at);
        self.received_ms.push(row.received_ms);
        self.lines.push(row.line);
        let (deliveries, hidden) = match taken {
            true => (crate::queue::RUN_HERE, visibility_ms),
            false => (0, 0),
        };
        self.deliveries.push(deliveries);
        self.hidden_ms.push(hidden);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(key: &str, sql: &Arc<str>) -> Pending {
        let (answer, _) = oneshot::channel();
        Pending {
            row: QueueRow {
                key: key.to_owned(),
                method: "POST".to_owned(),
                uri: "/hook".to_owned(),
                headers: Vec::new(),
                body: Vec::new(),
                secret: 0,
                signed_at: None,
                received_ms: 0,
                line: None,
            },
            sql: sql.clone(),
            retention_ms: 1_000,
            free: None,
            answer,
        }
    }

    fn keys(pendings: &[Pending]) -> Vec<&str> {
        pendings.iter().map(|p| p.row.key.as_str()).collect()
    }

    #[test]
    fn a_statement_never_holds_two_rows_of_one_key_nor_two_stores_statements() {
        let (mine, other): (Arc<str>, Arc<str>) = (Arc::from("mine"), Arc::from("other"));
        let arrived = vec![
            waiting("k1", &mine),
            waiting("k2", &mine),
            waiting("k1", &mine),
            waiting("k3", &other),
            waiting("k4", &mine),
        ];
        let (batch, rest) = one_statement(arrived);
        assert_eq!(keys(&batch), ["k1", "k2", "k4"]);
        // Held over, in their order, for the next statement.
        assert_eq!(keys(&rest), ["k1", "k3"]);
        let (batch, rest) = one_statement(rest);
        assert_eq!((keys(&batch), keys(&rest)), (vec!["k1"], vec!["k3"]));
    }
}
