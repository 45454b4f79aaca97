//! [`Inbox`]: a handler's transaction that also marks its event done.

use std::{fmt, sync::Arc};

use hookwise_core::{DedupeKey, StoreError};
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Transaction};

use crate::{PgStore, schema::Statements};

/// A transaction in which a handler makes its event's effects, and which marks them
/// made in the same commit: the effects and the mark are one, so they happen exactly
/// once.
///
/// - [`PgStore::begin`] opens it and marks the event's effects made, inside the
///   transaction; it gives `None` when an inbox of the event committed already (a
///   redelivery that slipped past, a durable queue row run again after a crash or a
///   failure after the commit): make no effect then. A second inbox of the same
///   event, opened while the first is open, waits for the first to end.
/// - Make the effects on [`conn`](Self::conn), then [`commit`](Self::commit): the
///   mark commits with them, and the event's dedupe key becomes `done`.
/// - Dropped without committing (an error returned with `?`, a panic, a timeout),
///   the transaction rolls back: no effect, no mark, and the event's retry runs it
///   again from a clean state.
///
/// It works the same whether the event runs on the request's runtime or from a
/// [`PgQueue`](crate::PgQueue): the mark is its own row (the `applied` table, kept
/// for the store's retention), not the dedupe key's state, which a durable queue
/// sets to `done` as soon as it stores the delivery.
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

    /// Commits the effects, the mark that they were made, and the event's dedupe key
    /// as `done`, together.
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
    /// in which the event's effects are marked made. `None` when an inbox of the
    /// event committed already. Bounded by the store's timeout, waiting for another
    /// open inbox of the event included.
    pub async fn begin(&self, key: &DedupeKey) -> Result<Option<Inbox>, StoreError> {
        let sql = self.sql.clone();
        let retention_ms = crate::store::millis(self.retention);
        let open = async {
            let mut tx = self.pool.begin().await?;
            let marked = sqlx::query(AssertSqlSafe(sql.apply.clone()))
                .bind(key.as_str())
                .bind(retention_ms)
                .fetch_optional(&mut *tx)
                .await?;
            Ok::<_, sqlx::Error>(marked.map(|_| tx))
        };
        let Some(tx) = self.bounded("begin", open).await? else {
            return Ok(None); // dropped: the transaction rolls back
        };
        Ok(Some(Inbox {
            tx,
            key: key.clone(),
            sql,
            retention_ms,
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
