//! A provider's rows of the `dead` table as a [`DeadLetterStore`], for an admin
//! router.

use std::sync::Arc;

use hookwise_core::{AnyStore, Provider, Receiver, StoreError};
use hookwise_runtime::{DeadLetterError, DeadLetterFuture, DeadLetterRecord, DeadLetterStore};
use sqlx::{AssertSqlSafe, postgres::PgRow};

use crate::{PgQueue, StoredDeadLetter, reader::StoredRow, store::bounded};

/// What a dead letter's row gives an admin: its identity, failure and time, and the
/// stored delivery that names its event's type.
const ROW: &str = "id, handler, key, method, uri, headers, body, secret, signed_at, \
                   received_ms, error, attempts, floor(extract(epoch FROM dead_at))::bigint AS dead_at";

/// An admin's statements on the `dead` table, built once per schema with the queue's.
#[derive(Debug)]
pub(crate) struct DeadStatements {
    /// `$1` provider, `$2` the id to start before (`NULL`: from the newest), `$3`
    /// the most rows: newest first.
    page: Arc<str>,
    /// `$1` id, `$2` provider.
    one: Arc<str>,
    /// `$1` id, `$2` provider.
    delete: Arc<str>,
}

impl DeadStatements {
    /// The statements on `dead`, the quoted, schema-qualified table.
    pub(crate) fn new(dead: &str) -> Self {
        Self {
            page: format!(
                "SELECT {ROW} FROM {dead}
WHERE provider = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
            )
            .into(),
            one: format!("SELECT {ROW} FROM {dead} WHERE id = $1 AND provider = $2").into(),
            delete: format!("DELETE FROM {dead} WHERE id = $1 AND provider = $2").into(),
        }
    }
}

/// The `dead` rows of one runtime's provider. Ids are the row ids (`bigserial`, in
/// decimal), newest highest; a page is keyset-paged by id, a replay
/// [`PgQueue::replay`] (one statement, bounded by the handler's backlog), a delete
/// a `DELETE`.
pub(crate) struct PgDeadLetters<P: Provider> {
    queue: PgQueue,
    /// Restores a stored delivery, to name its event's type.
    receiver: Arc<Receiver<P, AnyStore>>,
}

impl<P: Provider> PgDeadLetters<P> {
    pub(crate) fn new(queue: PgQueue, receiver: Arc<Receiver<P, AnyStore>>) -> Self {
        Self { queue, receiver }
    }

    fn provider(&self) -> &'static str {
        self.receiver.provider().name()
    }

    fn record(&self, row: &PgRow, body: bool) -> Result<DeadLetterRecord, DeadLetterError> {
        let unexpected = |e| StoreError::with_source("unexpected dead letter row", e);
        let stored = StoredDeadLetter::from_row(row).map_err(unexpected)?;
        let delivery = StoredRow::from_row(row).map_err(unexpected)?;
        let dead_at: i64 = sqlx::Row::try_get(row, "dead_at").map_err(unexpected)?;
        let mut record = DeadLetterRecord::new(stored.id.to_string(), self.provider(), stored.key);
        record.handler = Some(stored.handler);
        record.attempts = stored.attempts;
        record.error = stored.error;
        record.dead_at = u64::try_from(dead_at).unwrap_or(0);
        record.body = body.then(|| delivery.body.clone());
        if let Some(head) = delivery.head.to_parts() {
            record.name_stored_event(
                &self.receiver,
                &head,
                delivery.body,
                delivery.received_at,
                delivery.verified,
            );
        }
        Ok(record)
    }
}

/// A row id: a positive decimal number.
fn parse(id: &str) -> Result<i64, DeadLetterError> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(DeadLetterError::BadId("a positive decimal number"))
}

impl<P: Provider> DeadLetterStore for PgDeadLetters<P> {
    fn page<'a>(
        &'a self,
        before: Option<&'a str>,
        count: usize,
    ) -> DeadLetterFuture<'a, Vec<DeadLetterRecord>> {
        Box::pin(async move {
            let before = before.map(parse).transpose()?;
            let query = sqlx::query(AssertSqlSafe(self.queue.sql.dead.page.clone()))
                .bind(self.provider())
                .bind(before)
                .bind(i64::try_from(count).unwrap_or(i64::MAX));
            let rows = bounded(
                self.queue.timeout,
                "dead letters",
                query.fetch_all(&self.queue.pool),
            )
            .await?;
            rows.iter().map(|row| self.record(row, false)).collect()
        })
    }

    fn show<'a>(
        &'a self,
        id: &'a str,
        body: bool,
    ) -> DeadLetterFuture<'a, Option<DeadLetterRecord>> {
        Box::pin(async move {
            let query = sqlx::query(AssertSqlSafe(self.queue.sql.dead.one.clone()))
                .bind(parse(id)?)
                .bind(self.provider());
            let row = bounded(
                self.queue.timeout,
                "dead letter",
                query.fetch_optional(&self.queue.pool),
            )
            .await?;
            row.map(|row| self.record(&row, body)).transpose()
        })
    }

    fn replay<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool> {
        Box::pin(async move { Ok(self.queue.replay(self.provider(), parse(id)?).await?) })
    }

    fn delete<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool> {
        Box::pin(async move {
            let query = sqlx::query(AssertSqlSafe(self.queue.sql.dead.delete.clone()))
                .bind(parse(id)?)
                .bind(self.provider());
            let done = bounded(
                self.queue.timeout,
                "delete dead letter",
                query.execute(&self.queue.pool),
            )
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
