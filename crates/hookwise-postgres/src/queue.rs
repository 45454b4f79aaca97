//! [`PgQueue`]: a durable queue for ack-fast mode, on Postgres.

use std::{
    fmt,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Duration,
};

use hookwise_core::{AnyStore, ConfigError, Provider, Receiver, StoreError};
use hookwise_runtime::{
    DeadLetterStore, DurableQueue, Enqueue, IfNew, QueueFuture, Stored, Unclaimed, Workers,
};
use sqlx::{AssertSqlSafe, PgPool, Row, postgres::PgRow};
use tokio::sync::Semaphore;

use crate::{
    DEFAULT_TIMEOUT, PgStore,
    batch::{Pending, QueueRow, Writers, Written},
    dead_letters::PgDeadLetters,
    local::{Workshop, Workshops},
    reader::Reader,
    statements::QueueStatements,
    store::{bounded, duplicate_of, millis, place, pool_for, timed_out},
};

/// How long a taken entry stays invisible to other workers, by default: a worker
/// that died gives its entries back after this.
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(60);

/// The default pause between reads of an empty queue.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How many times an entry may be taken before it is dead-lettered unrun, by default.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// The default bound on a handler's backlog: its rows in the queue, ready and running.
/// Lower than `RedisQueue`'s (100 000): near the bound each delivery counts the
/// backlog, and a count over 10 000 rows takes about 5 ms of the database's time.
pub const DEFAULT_MAX_BACKLOG: u64 = 10_000;

/// The `deliveries` of a row inserted as taken by the instance that runs it
/// ([`crate::local`]).
pub(crate) const RUN_HERE: i32 = 1;

/// The shortest visibility timeout: a third of it is a running entry's heartbeat.
const MINIMUM_VISIBILITY: Duration = Duration::from_millis(30);

/// A [`DurableQueue`] on Postgres, for a runtime's ack-fast mode, so that a service
/// with only Postgres gets "a `200` survives a crash":
/// `Webhooks::builder(receiver).durable_queue(PgQueue::new(url)?).handler("invoices", f)`.
///
/// - Before the `200`, the accepted delivery (request head, raw body, verification
///   facts, receipt time) is a row of `<schema>.queue`, under the name of the handler
///   that runs it. When the receiver's store is a [`PgStore`] on the same database,
///   the row and the event's done-mark are one statement: there is no moment when
///   the delivery is stored and the event not marked done, nor the other way round.
///   Through a `WebhookEndpoint` ([`Webhooks::deliver_to`](hookwise_runtime::Webhooks::deliver_to))
///   that statement also finds the event's key free (absent or expired) or taken,
///   so a delivery takes one statement and no claim is made
///   ([`DurableQueue::enqueue_if_new`]). Deliveries of a handler that arrive while
///   its statements run share the next one (up to 16 rows, two statements at
///   once; each row stored or not on its own): Postgres's cost is mostly the
///   statement's, not the row's. When one of the handler's running slots is free
///   in this instance, the statement stores the row as taken by it, and the
///   delivery runs here from the copy in hand: no worker takes it, nothing is read
///   back ([`run_where_stored`](Self::run_where_stored), on by default).
/// - Workers in every instance take ready rows with `FOR UPDATE SKIP LOCKED` and
///   make them invisible for the visibility timeout (60 s by default), kept fresh by a
///   heartbeat while they run; a row whose worker died becomes visible again and is
///   taken by another. Delivery is at least once.
/// - A run ends in one statement: the row is deleted (one statement for every row
///   processed while the last delete was on its way or within 10 ms of the first,
///   through an [`AckBatcher`](hookwise_runtime::AckBatcher)), or, when every
///   attempt failed, moved to `<schema>.dead` with its last error, where
///   [`dead_letters`](Self::dead_letters) lists it and [`replay`](Self::replay)
///   moves it back. A row taken more than [`max_deliveries`](Self::max_deliveries)
///   times (its worker died each time) and a row that no longer reads or parses are
///   moved there unrun.
/// - Each handler's backlog (its rows, ready and running; finished ones are deleted)
///   is bounded by [`max_backlog`](Self::max_backlog) (10 000 by default): past it a
///   delivery is not stored (nor its event marked done), `enqueue` fails with a
///   "full" error ([`StoreError::is_full`]), and the runtime answers `503`
///   `queue_full` with `Retry-After` and releases the claim (through an endpoint,
///   none was made). The count and the
///   insert are one statement; deliveries racing for the last places can overshoot
///   the bound by at most their number (one per pooled connection, and through an
///   endpoint a batch's rows, which share one count: at most 16 per statement).
///   Nothing stored is ever deleted to make room.
/// - Every call is bounded by a timeout (2 s by default), pool waits included: a
///   database that is down is a `503` for the sender, and workers try again.
/// - The tables are created by [`PgStore::migrate`] (or
///   [`migration_sql`](crate::migration_sql)); give the queue the store's schema.
#[derive(Clone)]
pub struct PgQueue {
    pub(crate) pool: PgPool,
    /// Where the pool connects, worked out once: a receiver's `PgStore` at the same
    /// place shares the database.
    place: Arc<str>,
    pub(crate) sql: Arc<QueueStatements>,
    pub(crate) visibility: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) max_deliveries: u32,
    max_backlog: u64,
    pub(crate) timeout: Duration,
    /// How long a batch of deliveries waits for more ([`Self::batch_wait`]).
    pub(crate) batch_wait: Duration,
    /// The lowest row id seen, per provider and handler (see `QueueStatements::room`).
    lowest: Arc<Mutex<Vec<Lowest>>>,
    run_where_stored: bool,
    /// This instance's workers, by provider and handler, for a delivery stored here
    /// to run here ([`crate::local`]).
    local: Arc<Workshops>,
    /// The writers of deliveries stored through endpoints, in batches
    /// ([`crate::batch`]).
    pub(crate) writers: Arc<Writers>,
}

/// The lowest row id a delivery of `provider`'s `handler` read: no row of theirs has
/// a lower one since, except rows inserted meanwhile by deliveries racing this one,
/// which the bound allows for (one per pooled connection).
#[derive(Debug)]
struct Lowest {
    provider: String,
    handler: String,
    id: i64,
}

impl PgQueue {
    /// A queue on the Postgres at `url`. Does not connect yet. Must be called within
    /// a tokio runtime.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Ok(Self::with_pool(pool_for(url, DEFAULT_TIMEOUT)?))
    }

    /// A queue on a pool you already have.
    pub fn with_pool(pool: PgPool) -> Self {
        Self {
            place: place(&pool),
            pool,
            sql: Arc::new(QueueStatements::new(crate::DEFAULT_SCHEMA)),
            visibility: DEFAULT_VISIBILITY,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            max_backlog: DEFAULT_MAX_BACKLOG,
            timeout: DEFAULT_TIMEOUT,
            batch_wait: Duration::ZERO,
            lowest: Arc::default(),
            run_where_stored: true,
            local: Arc::default(),
            writers: Arc::default(),
        }
    }

    /// Keeps the tables in schema `schema` (default `hookwise`); the store's.
    pub fn schema(mut self, schema: &str) -> Result<Self, ConfigError> {
        self.sql = Arc::new(QueueStatements::new(crate::schema::checked(schema)?));
        self.lowest = Arc::default();
        Ok(self)
    }

    /// Sets how long a taken entry stays invisible to other workers (default 60 s;
    /// at least 30 ms). Running entries are kept fresh every third of it, so this
    /// only delays recovery from a worker that died. Keep it well above the
    /// [`timeout`](Self::timeout).
    pub fn visibility(mut self, visibility: Duration) -> Result<Self, ConfigError> {
        if visibility < MINIMUM_VISIBILITY {
            return Err(ConfigError::TooShort {
                what: "visibility timeout",
                given: visibility,
                minimum: MINIMUM_VISIBILITY,
            });
        }
        self.visibility = visibility;
        Ok(self)
    }

    /// Sets the pause between reads of an empty queue (default 100 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::Zero("poll interval"));
        }
        self.poll_interval = interval;
        Ok(self)
    }

    /// Sets how many times an entry may be taken (default 5): one taken more often
    /// (its worker died each time) is dead-lettered without running again.
    pub fn max_deliveries(mut self, deliveries: u32) -> Result<Self, ConfigError> {
        if deliveries == 0 {
            return Err(ConfigError::Zero("max deliveries"));
        }
        self.max_deliveries = deliveries;
        Ok(self)
    }

    /// Sets the bound on each handler's backlog (default 10 000 rows): its rows in
    /// the queue, ready and running. A delivery that would go beyond it is not
    /// stored: `enqueue` fails, so the runtime answers `503` with `Retry-After` and
    /// releases the claim, and the sender retries once the workers have caught up.
    /// [`replay`](Self::replay) is bound by it too.
    ///
    /// Each delivery first reads the span of the handler's row ids, which bounds its
    /// rows from above: under the bound, there is room. Its high end is one index
    /// probe; its low end is read only when the lowest id the queue saw last no
    /// longer proves room, because it sits behind the index entries of deleted rows
    /// until the table is vacuumed.
    /// Only when the span reaches the bound (a backlog near it, or other handlers'
    /// rows interleaved) are the rows counted, up to the bound: about 5 ms of the
    /// database's time per delivery at 10 000 rows and 20 ms at 100 000 (measured
    /// with `EXPLAIN ANALYZE` on a 2-core machine), so a much larger bound makes
    /// deliveries into a long backlog dearer just when the workers are behind.
    pub fn max_backlog(mut self, rows: u64) -> Result<Self, ConfigError> {
        if rows == 0 {
            return Err(ConfigError::Zero("max backlog"));
        }
        self.max_backlog = rows;
        Ok(self)
    }

    /// Whether a delivery stored through an endpoint
    /// ([`Webhooks::deliver_to`](hookwise_runtime::Webhooks::deliver_to)) runs on
    /// the instance that stored it, when one of its handler's running slots is free
    /// there (default `true`): its row is stored as taken by this instance, in the
    /// same statement, and the runtime runs the delivery it holds, with nothing read
    /// back. Rows that no slot here was free for, and deliveries in a line
    /// ([`Enqueue::ordered`]), wait for the readers. A row run here is kept fresh,
    /// deleted and dead-lettered as one a reader took; should this instance die
    /// mid-run, another takes it over after the [`visibility`](Self::visibility)
    /// timeout. `false`: every row waits for a reader.
    pub fn run_where_stored(mut self, run_where_stored: bool) -> Self {
        self.run_where_stored = run_where_stored;
        self
    }

    /// Sets how long the statement that stores deliveries through an endpoint waits,
    /// from a batch's first delivery, for more to share it (default zero: a batch is
    /// what arrived while the handler's statements before it ran, after one turn of
    /// the scheduler). Never more than a quarter of the [`timeout`](Self::timeout),
    /// so a lone delivery is still answered in time.
    ///
    /// A trade of latency for throughput under steady load: every delivery of a
    /// quiet queue waits too. Measured on 2 shared cores with `1 ms`: 16 rows a
    /// statement instead of about 6 under load and a tenth to a fifth more
    /// deliveries a second, but a p50 of 4 to 6 ms instead of 2 to 3 at 50
    /// deliveries a second (BENCHMARKS.md, sections 23 and 24).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use hookwise_postgres::PgQueue;
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = PgQueue::new("postgres://localhost/app")?.batch_wait(Duration::from_millis(1));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn batch_wait(mut self, wait: Duration) -> Self {
        self.batch_wait = wait;
        self
    }

    /// Sets the bound on each call, pool waits included (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Zero("Postgres timeout"));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// `provider`'s dead letters (e.g. `"hoursmith"`), oldest first, at most `count`.
    pub async fn dead_letters(
        &self,
        provider: &str,
        count: usize,
    ) -> Result<Vec<StoredDeadLetter>, StoreError> {
        let query = sqlx::query(AssertSqlSafe(self.sql.dead_letters.clone()))
            .bind(provider)
            .bind(i64::try_from(count).unwrap_or(i64::MAX));
        let rows = bounded(self.timeout, "dead letters", query.fetch_all(&self.pool)).await?;
        rows.iter()
            .map(StoredDeadLetter::from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::with_source("unexpected dead letter row", e))
    }

    /// Moves a dead letter back to the queue of its handler, in one statement, to be
    /// processed again. `false` when there is no such dead letter (replayed already);
    /// a "full" error, with the dead letter left in place, when that handler's
    /// backlog is full ([`max_backlog`](Self::max_backlog)).
    pub async fn replay(&self, provider: &str, id: i64) -> Result<bool, StoreError> {
        let query = sqlx::query_as::<_, (bool, bool, bool)>(AssertSqlSafe(self.sql.replay.clone()))
            .bind(id)
            .bind(provider)
            .bind(self.bound());
        let (found, room, moved) =
            bounded(self.timeout, "replay", query.fetch_one(&self.pool)).await?;
        if found && !room {
            return Err(self.full(provider, "the dead letter's handler"));
        }
        Ok(moved)
    }

    /// A statement on the queue and `store`'s table, `make` of the queue's
    /// statements, kept in `made`: made once, not on every delivery (a store in
    /// another schema than the first one seen, which no setup needs, gets its own
    /// made each time).
    fn with_store(
        &self,
        made: &OnceLock<(String, Arc<str>)>,
        store: &PgStore,
        make: fn(&PgStore, &QueueStatements) -> Arc<str>,
    ) -> Arc<str> {
        let make = || make(store, &self.sql);
        let (schema, sql) = made.get_or_init(|| (store.schema_name().to_owned(), make()));
        match schema == store.schema_name() {
            true => sql.clone(),
            false => make(),
        }
    }

    /// The receiver's store, when it is a [`PgStore`] in this queue's database.
    fn same_database<'s>(&self, store: &'s AnyStore) -> Option<&'s PgStore> {
        store
            .downcast_ref::<PgStore>()
            .filter(|store| store.place == self.place)
    }

    /// The lowest row id seen for `provider`'s `handler`, if any.
    pub(crate) fn lowest(&self, provider: &str, handler: &str) -> Option<i64> {
        let lowest = self.lowest.lock().unwrap_or_else(PoisonError::into_inner);
        lowest
            .iter()
            .find(|seen| seen.provider == provider && seen.handler == handler)
            .map(|seen| seen.id)
    }

    /// Keeps `id`, the lowest row id a delivery of `provider`'s `handler` just read
    /// (`None`: it read none). One entry per handler the runtime enqueues for: its
    /// registered names.
    pub(crate) fn saw_lowest(&self, provider: &str, handler: &str, id: Option<i64>) {
        let Some(id) = id else {
            return;
        };
        let mut lowest = self.lowest.lock().unwrap_or_else(PoisonError::into_inner);
        match lowest
            .iter_mut()
            .find(|seen| seen.provider == provider && seen.handler == handler)
        {
            Some(seen) => seen.id = id,
            None => lowest.push(Lowest {
                provider: provider.to_owned(),
                handler: handler.to_owned(),
                id,
            }),
        }
    }

    /// The visibility timeout in ms, as a statement's parameter.
    pub(crate) fn visibility_ms(&self) -> i64 {
        millis(self.visibility)
    }

    /// [`max_backlog`](Self::max_backlog) as a statement's parameter.
    pub(crate) fn bound(&self) -> i64 {
        i64::try_from(self.max_backlog).unwrap_or(i64::MAX)
    }

    /// The error of a full backlog.
    fn full(&self, provider: &str, handler: &str) -> StoreError {
        StoreError::full(format!(
            "the durable queue's backlog is full: {handler} of {provider} has {} rows \
             waiting or running (PgQueue::max_backlog); try again once the workers catch up",
            self.max_backlog
        ))
    }
}

impl<P: Provider> DurableQueue<P> for PgQueue {
    fn enqueue<'a>(&'a self, entry: Enqueue<'a, P::Event>) -> QueueFuture<'a, Stored> {
        Box::pin(async move {
            let Enqueue {
                handler,
                head,
                delivery,
                claim,
                store,
                line: entry_line,
                ..
            } = entry;
            // The receiver's store in this database: the row and the done-mark in
            // one statement.
            let same = self.same_database(store);
            let (sql, committing) = match same {
                Some(store) => (
                    self.with_store(&self.sql.store_and_commit, store, |store, sql| {
                        store.store_and_commit(&sql.room, &sql.insert_select)
                    }),
                    true,
                ),
                None => (self.sql.insert.clone(), false),
            };
            let mut query = bind_row(
                sqlx::query_as::<_, (bool, bool, Option<i64>)>(AssertSqlSafe(sql)),
                delivery.provider(),
                handler,
                QueueRow::of(head, delivery, None),
            );
            if let Some(store) = same {
                query = query
                    .bind(crate::store::token(claim.token()))
                    .bind(millis(store.retention));
            }
            let query = query
                .bind(self.bound())
                .bind(entry_line)
                .bind(self.lowest(delivery.provider(), handler));
            let (room, stored, lowest) =
                bounded(self.timeout, "enqueue", query.fetch_one(&self.pool)).await?;
            self.saw_lowest(delivery.provider(), handler, lowest);
            match (room, stored, committing) {
                (_, true, false) => Ok(Stored::Uncommitted),
                (_, true, true) => Ok(Stored::Committed),
                (false, false, _) => {
                    Err(self.full(delivery.provider(), &format!("handler {handler:?}")))
                }
                (true, false, _) => Err(StoreError::new(
                    "the event's claim no longer holds its key (its lease ran out): nothing \
                     stored; the sender's retry claims it again",
                )),
            }
        })
    }

    /// With the receiver's [`PgStore`] in this database: one statement marks the
    /// event's key done if it is free, and inserts the row.
    fn enqueue_if_new<'a>(
        &'a self,
        entry: Unclaimed<'a, P::Event>,
    ) -> Option<QueueFuture<'a, IfNew>> {
        let Unclaimed {
            handler,
            head,
            delivery,
            store,
            line,
            ..
        } = entry;
        let store = self.same_database(store)?;
        let sql = self.with_store(&self.sql.store_if_new, store, |store, sql| {
            store.store_if_new(&sql.room, &sql.table)
        });
        Some(Box::pin(async move {
            let provider = delivery.provider();
            // A free slot here, for a delivery outside any line: its row is stored
            // as taken by this instance, to run here.
            let free = match (self.run_where_stored, line) {
                (true, None) => self.local.free_slot(provider, handler),
                _ => None,
            };
            let row = QueueRow::of(head, delivery, line);
            let pending = |answer| Pending {
                row,
                sql,
                retention_ms: millis(store.retention),
                free,
                answer,
            };
            let writer = self.writers.of(self, provider, handler);
            // Bounded as a call is: a wait for room among the waiting deliveries,
            // and for the batch's statement. Should it run out, the delivery may
            // still be stored: the sender's retry finds it a duplicate.
            let written = tokio::time::timeout(self.timeout, writer.ask(pending))
                .await
                .map_err(|_| timed_out("enqueue", self.timeout))?
                .unwrap_or_else(|| {
                    Err(StoreError::new("the durable queue's writer has stopped"))
                })?;
            match written {
                Written::Stored(None) => Ok(IfNew::Stored),
                Written::Stored(Some(handover)) => Ok(handover
                    .run_here()
                    .map_or(IfNew::Stored, IfNew::StoredToRunHere)),
                Written::NotStored {
                    held: Some(held), ..
                } => Ok(IfNew::Duplicate(duplicate_of(Some(&held)))),
                Written::NotStored { room: false, .. } => {
                    Err(self.full(provider, &format!("handler {handler:?}")))
                }
                // Free, yet not marked: a concurrent claim took it after this
                // statement's snapshot.
                Written::NotStored { .. } => Ok(IfNew::Duplicate(duplicate_of(None))),
            }
        }))
    }

    fn start(&self, workers: Workers<P>) {
        let shutdown = workers.processor.shutdown_handle().clone();
        let workshop = Arc::new(Workshop {
            slots: Arc::new(Semaphore::new(workers.processor.concurrency().max(1))),
            done: self.deleter(&shutdown),
        });
        let provider = workers.processor.receiver().provider().name();
        let handler = workers.handler.name().to_owned();
        self.local.register(provider, &handler, &workshop);
        let reader = Reader {
            queue: self.clone(),
            provider,
            handler,
            workers: Arc::new(workers),
            workshop,
        };
        shutdown.spawn(reader.run());
    }

    /// The provider's rows of the `dead` table, newest first, ids their row ids.
    fn dead_letter_store(
        &self,
        receiver: &Arc<Receiver<P, AnyStore>>,
    ) -> Option<Arc<dyn DeadLetterStore>> {
        Some(Arc::new(PgDeadLetters::new(self.clone(), receiver.clone())))
    }
}

/// A dead letter as [`PgQueue::dead_letters`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredDeadLetter {
    /// Its row id, for [`PgQueue::replay`].
    pub id: i64,
    /// The event's dedupe key.
    pub key: String,
    /// The last attempt's error.
    pub error: String,
    /// The name of the handler that runs it.
    pub handler: String,
    /// How many attempts were made.
    pub attempts: u32,
}

impl StoredDeadLetter {
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            key: row.try_get("key")?,
            error: row.try_get("error")?,
            handler: row.try_get("handler")?,
            attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        })
    }
}

/// Binds a queue row's columns, `$1` to `$10`
/// ([`COLUMNS`](crate::statements::COLUMNS)): `provider`'s, for `handler`, of `row`.
fn bind_row<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    provider: &'static str,
    handler: &str,
    row: QueueRow,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(provider)
        .bind(handler.to_owned())
        .bind(row.key)
        .bind(row.method)
        .bind(row.uri)
        .bind(row.headers)
        .bind(row.body)
        .bind(row.secret)
        .bind(row.signed_at)
        .bind(row.received_ms)
}

impl fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgQueue")
            .field("visibility", &self.visibility)
            .field("poll_interval", &self.poll_interval)
            .field("max_deliveries", &self.max_deliveries)
            .field("max_backlog", &self.max_backlog)
            .field("timeout", &self.timeout)
            .field("run_where_stored", &self.run_where_stored)
            .field("batch_wait", &self.batch_wait)
            .finish_non_exhaustive()
    }
}
