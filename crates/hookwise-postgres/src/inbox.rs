//! [`Inbox`]: a handler's transaction that also marks its event done.

use std::{fmt, sync::Arc};

use hookwise_core::{DedupeKey, StoreError};
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row, Transaction};

use crate::{PgStore, schema::Statements};

/// A transaction in which a handler makes its event's effects, and which marks the
/// event done in the same commit: the effects and the mark are one, so they happen
/// exactly once.
///
/// - [`PgStore::begin`] opens it and locks the event's dedupe row for the
///   transaction; it gives `None` when the event is already done (a redelivery that
///   slipped past, a durable entry run again after a crash): make no effect then.
/// - Make the effects on [`conn`](Self::conn), then [`commit`](Self::commit): the
///   row becomes `done` in the same transaction.
/// - Dropped without committing (an error returned with `?`, a panic, a timeout),
///   the transaction rolls back: no effect, not done, and the event's retry runs it
///   again from a clean state.
///
/// ```no_run
/// use hookwise_core::{Delivery, hoursmith};
/// use hookwise_postgres::PgStore;
///
/// async fn on_invoice(store: PgStore, delivery: Delivery<hoursmith::Event>)
///     -> Result<(), Box<dyn std::error::Error + Send + Sync>>
/// {
///     let Some(mut inbox) = store.begin(delivery.dedupe_key()).await? else {
///         return Ok(()); // already done: nothing to do
///     };
///     sqlx::query("INSERT INTO payments (event_id) VALUES ($1)")
///         .bind(delivery.event().id())
///         .execute(inbox.conn())
///         .await?;
///     inbox.commit().await?; // the payment and the event's mark, together
///     Ok(())
/// }
/// ```
pub struct Inbox {
    tx: Transaction<'static, Postgres>,
    key: DedupeKey,
    sql: Arc<Statements>,
    retention_ms: i64,
}

impl Inbox {
    /// The transaction's connection, for the handler's own statements.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The transaction itself.
    pub fn transaction(&mut self) -> &mut Transaction<'static, Postgres> {
        &mut self.tx
    }

    /// Marks the event done and commits, effects and mark together.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let mark = sqlx::query(AssertSqlSafe(self.sql.mark_done.clone()))
            .bind(self.key.as_str())
            .bind(self.retention_ms);
        mark.execute(&mut *self.tx)
            .await
            .map_err(|e| StoreError::with_source("Postgres could not mark the event done", e))?;
        self.tx
            .commit()
            .await
            .map_err(|e| StoreError::with_source("Postgres could not commit", e))
    }
}

impl PgStore {
    /// Opens an [`Inbox`] for the event of `key`: a transaction on the store's pool
    /// with the event's dedupe row locked until it ends. `None` when the event is
    /// done already. Bounded by the store's timeout, waiting for the lock included.
    pub async fn begin(&self, key: &DedupeKey) -> Result<Option<Inbox>, StoreError> {
        let sql = self.sql.clone();
        let open = async {
            let mut tx = self.pool.begin().await?;
            let row = sqlx::query(AssertSqlSafe(sql.lock.clone()))
                .bind(key.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let state: Option<String> = match row {
                Some(row) => row.try_get(0)?,
                None => None,
            };
            Ok::<_, sqlx::Error>((tx, state))
        };
        let (tx, state) = self.bounded("begin", open).await?;
        if state.as_deref() == Some("done") {
            return Ok(None);
        }
        Ok(Some(Inbox {
            tx,
            key: key.clone(),
            sql,
            retention_ms: crate::store::millis(self.retention),
        }))
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
