//! [`PgStore`]: the dedupe store on Postgres.

use std::{
    fmt,
    future::Future,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use hookwise_core::{
    Claim, ClaimOutcome, ConfigError, DedupeKey, DedupeStore, Duplicate, StoreError,
    dedupe::{DEFAULT_LEASE, DEFAULT_RETENTION},
};
use sqlx::{
    AssertSqlSafe, PgPool, Row,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{DEFAULT_SCHEMA, DEFAULT_TIMEOUT, schema::Statements};

/// How often expired keys are deleted, by default.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The most expired keys one cleanup deletes, so that a cleanup is short.
const CLEANUP_BATCH: i64 = 10_000;

/// A [`DedupeStore`] on Postgres, shared by every instance of a receiver.
///
/// Each event key is one row of `<schema>.dedupe` (the schema is `hookwise` by
/// default; [`migrate`](Self::migrate) creates it, and [`migration_sql`] is the same
/// SQL for your own migration tool):
///
/// | `state` | meaning | a redelivery is |
/// | --- | --- | --- |
/// | `pending` | claimed, provisional, until `expires_at` (the lease) | [`Duplicate::Provisional`]: `409`, the sender comes back |
/// | `confirmed` | claimed and confirmed, until `expires_at` (the lease) | [`Duplicate::InFlight`]: `200` |
/// | `done` | processed, until `expires_at` (the retention) | [`Duplicate::Processed`]: `200` |
///
/// - Claim: one `INSERT … ON CONFLICT (key) DO UPDATE … WHERE expires_at <= now`
///   statement, so exactly one of any number of concurrent claims, from any number
///   of instances, wins a free or expired key; a taken key's state is read in the
///   same statement.
/// - Confirm, renew and release act only while the row holds this claim's token
///   (and, for confirm and renew, its lease has not run out), so an instance whose
///   lease ran out never touches a newer claim.
/// - Commit: the row becomes `done` for the retention, whatever became of the claim:
///   being processed is a fact about the event.
/// - Times are the database server's (`clock_timestamp()`), so every instance
///   measures leases on one clock.
/// - Expired rows are deleted by a periodic cleanup (every minute by default, at
///   most 10,000 rows at a time, through the index on `expires_at`), while any
///   clone of the store is alive; [`cleanup`](Self::cleanup) runs one by hand.
/// - Every call is bounded by a timeout (2 s by default), a busy pool included: a
///   failure is a [`StoreError`], which the receiver answers with `503` +
///   `Retry-After`, so the sender retries and nothing is acknowledged that was not
///   stored.
/// - A claim whose call fails, times out or is dropped before its answer (the
///   `INSERT` may have committed) is released by the store itself, by its token,
///   chosen before the call, once the statement has ended on the server (its
///   `statement_timeout`, the store's timeout); should that fail too, the orphan is
///   only provisional: retries are answered `409` until its lease runs out.
///
/// ```no_run
/// use hookwise_core::{Hoursmith, Receiver};
/// use hookwise_postgres::PgStore;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgStore::new("postgres://app@db.internal/app")?.schema("webhooks")?;
/// store.migrate().await?; // once at start-up, or run `migration_sql` with your tool
/// let receiver = Receiver::new(Hoursmith::new("whsec_...")?, store)?;
/// # Ok(()) }
/// ```
///
/// [`migration_sql`]: crate::migration_sql
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Where the pool connects ([`place`]), worked out once: compared on every
    /// enqueue of a `PgQueue`.
    pub(crate) place: Arc<str>,
    pub(crate) sql: Arc<Statements>,
    pub(crate) retention: Duration,
    lease: Duration,
    timeout: Duration,
    cleanup_interval: Duration,
    /// Alive while a clone of the store is: the cleanup task stops with the last.
    alive: Arc<()>,
    /// How to connect, when the store made its own pool ([`new`](Self::new)): its
    /// statements then time out on the server too, with the store's timeout.
    options: Option<PgConnectOptions>,
}

impl PgStore {
    /// A store on the Postgres at `url` (`postgres://user:password@host:port/db`).
    /// Does not connect yet: the first call does, so a receiver can start while the
    /// database is still coming up. Must be called within a tokio runtime, which
    /// runs the pool, the periodic cleanup and the releases of claims whose answer
    /// was lost.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::new(
                "PgStore::new must be called within a tokio runtime",
            ));
        }
        let options = options(url)?;
        let mut store = Self::with_pool(pool(options.clone(), DEFAULT_TIMEOUT));
        store.options = Some(options);
        Ok(store)
    }

    /// A store on a pool you already have (the application's own), with its own
    /// size and timeouts. Must be called within a tokio runtime.
    pub fn with_pool(pool: PgPool) -> Self {
        let store = Self {
            place: place(&pool),
            pool,
            sql: Arc::new(Statements::new(DEFAULT_SCHEMA)),
            retention: DEFAULT_RETENTION,
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            alive: Arc::new(()),
            options: None,
        };
        store.start_cleanup();
        store
    }

    /// Keeps the table in schema `schema` (default `hookwise`): lowercase ASCII
    /// letters, digits and `_`, starting with a letter or `_`, at most 63 bytes.
    pub fn schema(mut self, schema: &str) -> Result<Self, ConfigError> {
        self.sql = Arc::new(Statements::new(crate::schema::checked(schema)?));
        Ok(self)
    }

    /// Sets how long a processed event is remembered (default 96 h).
    pub fn retention(mut self, retention: Duration) -> Result<Self, ConfigError> {
        self.retention = at_least_a_millisecond("dedupe retention", retention)?;
        Ok(self)
    }

    /// Sets how long an unrenewed claim holds its key (default 5 min), so that a
    /// claim of a crashed instance frees its event. Whoever holds a claim renews it
    /// well within the lease (the runtime: every third of it), so keep it well above
    /// the [`timeout`](Self::timeout).
    pub fn lease(mut self, lease: Duration) -> Result<Self, ConfigError> {
        self.lease = at_least_a_millisecond("dedupe lease", lease)?;
        Ok(self)
    }

    /// Sets the bound on each call, waiting for a pooled connection included
    /// (default 2 s). On the pool [`new`](Self::new) makes, it is the server's
    /// `statement_timeout` too, so a statement whose caller gave up ends on the
    /// server by then; give a pool of your own ([`with_pool`](Self::with_pool)) a
    /// `statement_timeout` no longer than this for the same guarantee.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Zero("Postgres timeout"));
        }
        self.timeout = timeout;
        if let Some(options) = &self.options {
            // Not connected yet (the pool is lazy): remade with the new bound.
            self.pool = pool(options.clone(), timeout);
        }
        Ok(self)
    }

    /// Sets how often expired rows are deleted (default 1 min).
    pub fn cleanup_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::Zero("cleanup interval"));
        }
        self.cleanup_interval = interval;
        Ok(self)
    }

    /// Creates the schema, the table and its index if they are missing
    /// ([`migration_sql`](crate::migration_sql)), under an advisory lock, so that
    /// instances starting together do not race.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let sql = AssertSqlSafe(self.sql.migrate.clone());
        self.bounded("migrate", sqlx::raw_sql(sql).execute(&self.pool))
            .await
            .map(drop)
    }

    /// Deletes up to 10,000 dedupe rows and 10,000 inbox marks whose lease or
    /// retention has run out, oldest first; how many it deleted. The store runs it every
    /// [`cleanup_interval`](Self::cleanup_interval) by itself.
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        self.cleaner().run().await
    }

    /// `insert_select` (an `INSERT … SELECT $1..$10` of a queue row, its line `$14`)
    /// run only when, in the same statement, the `room` CTE (its bound `$13`, the
    /// lowest id seen `$15`) is `ok` and the claim of key `$3` and token `$11` is
    /// marked done for `$12` ms: both or neither.
    /// Answers whether there was room, whether the row was stored, and the lowest id
    /// if it was read.
    pub(crate) fn store_and_commit(&self, room: &str, insert_select: &str) -> Arc<str> {
        let table = format!(r#""{}".dedupe"#, self.sql.schema);
        format!(
            "WITH {room},
marked AS (
    UPDATE {table} SET state = 'done',
        expires_at = clock_timestamp() + ($12::float8 * interval '1 millisecond')
    WHERE key = $3 AND token = $11 AND state <> 'done' AND expires_at > clock_timestamp()
        AND (SELECT ok FROM room)
    RETURNING 1
),
inserted AS ({insert_select} WHERE EXISTS (SELECT 1 FROM marked) RETURNING 1)
SELECT (SELECT ok FROM room), EXISTS (SELECT 1 FROM inserted), (SELECT low FROM low)",
            room = room
                .replace("{bound}", "$13")
                .replace("{low}", "$15::bigint"),
            insert_select = insert_select.replace("{line}", "$14::text"),
        )
        .into()
    }

    /// A batch of queue rows of provider `$1`'s handler `$2` (`$3` to `$10` the
    /// arrays of their other [`COLUMNS`](crate::statements::COLUMNS), one element
    /// per row, `$13` their lines, `$15` how many times each is taken, `$16` for how many ms
    /// each is invisible: 1 and the visibility timeout for a row this instance runs,
    /// 0 and 0 for the readers), each inserted into `queue` only when, in the same
    /// statement, the `room` CTE (its bound `$12`, the lowest id seen `$14`) is `ok`
    /// and the row's key is free (absent or expired) and is marked done for `$11`
    /// ms: both or neither, row by row. No two rows may share a key.
    /// Answers one row per input row, in their order: its position (from 1),
    /// whether there was room, the stored row's id, the lowest id if it was read,
    /// and the state of the row holding the key when it was not free.
    pub(crate) fn store_if_new(&self, room: &str, queue: &str) -> Arc<str> {
        let table = format!(r#""{}".dedupe"#, self.sql.schema);
        let columns = crate::statements::COLUMNS;
        format!(
            "WITH input AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::bytea[], $7::bytea[],
        $8::integer[], $9::bigint[], $10::bigint[], $13::text[], $15::integer[], $16::float8[])
        WITH ORDINALITY AS i(key, method, uri, headers, body, secret, signed_at, received_ms,
            line, deliveries, hidden, n)
),
{room},
marked AS (
    INSERT INTO {table} AS d (key, state, token, expires_at)
    SELECT key, 'done', 0, clock_timestamp() + ($11::float8 * interval '1 millisecond')
    FROM input WHERE (SELECT ok FROM room)
    ON CONFLICT (key) DO UPDATE
        SET state = 'done', token = 0, expires_at = EXCLUDED.expires_at
        WHERE d.expires_at <= clock_timestamp()
    RETURNING key
),
inserted AS (
    INSERT INTO {queue} ({columns}, line, deliveries, visible_at)
    SELECT $1, $2, i.key, i.method, i.uri, i.headers, i.body, i.secret, i.signed_at,
        i.received_ms, i.line, i.deliveries,
        clock_timestamp() + (i.hidden * interval '1 millisecond')
    FROM input i JOIN marked USING (key) ORDER BY i.n
    RETURNING id, key
)
SELECT i.n, (SELECT ok FROM room), inserted.id, (SELECT low FROM low),
    (SELECT state FROM {table}
     WHERE key = i.key AND expires_at > clock_timestamp()
        AND NOT EXISTS (SELECT 1 FROM marked WHERE marked.key = i.key))
FROM input i LEFT JOIN inserted USING (key) ORDER BY i.n",
            room = room
                .replace("{bound}", "$12")
                .replace("{low}", "$14::bigint"),
        )
        .into()
    }

    /// The schema of the store's table.
    pub(crate) fn schema_name(&self) -> &str {
        &self.sql.schema
    }

    /// The pool, e.g. to share with the application.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the periodic cleanup while a clone of the store is alive.
    fn start_cleanup(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let alive: Weak<()> = Arc::downgrade(&self.alive);
        let store = self.cleaner();
        let every = self.cleanup_interval;
        drop(runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if alive.strong_count() == 0 {
                    return;
                }
                match store.run().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "expired dedupe rows deleted"),
                    Err(error) => tracing::warn!(%error, "dedupe cleanup failed; retrying later"),
                }
            }
        }));
    }

    /// What the cleanup needs of the store, without keeping it alive.
    fn cleaner(&self) -> Cleaner {
        Cleaner {
            pool: self.pool.clone(),
            sql: self.sql.clone(),
            timeout: self.timeout,
        }
    }

    /// Runs one call within the timeout; a failure or timeout is a [`StoreError`].
    pub(crate) async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        bounded(self.timeout, what, call).await
    }

    /// Runs a token-checked statement on `claim`; `true` when it changed a row.
    async fn on_held(
        &self,
        what: &'static str,
        sql: &Arc<str>,
        claim: &Claim,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(claim.key().as_str())
            .bind(token(claim.token()))
            .bind(millis(self.lease));
        let done = self.bounded(what, query.execute(&self.pool)).await?;
        Ok(done.rows_affected() == 1)
    }
}

impl DedupeStore for PgStore {
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        let claim = Claim::new(key.clone(), new_token());
        // Armed until the answer is in: an error, a timeout or a drop before then
        // releases whatever this call may have claimed.
        let mut unanswered = UnansweredClaim {
            store: Some(self.clone()),
            claim: claim.clone(),
        };
        let query = sqlx::query(AssertSqlSafe(self.sql.claim.clone()))
            .bind(key.as_str())
            .bind(token(claim.token()))
            .bind(millis(self.lease));
        let row = self
            .bounded("claim", query.fetch_optional(&self.pool))
            .await?;
        unanswered.store = None;
        let state: Option<String> = match row {
            Some(row) => row
                .try_get(0)
                .map_err(|e| StoreError::with_source("unexpected claim answer", e))?,
            None => None,
        };
        Ok(match state.as_deref() {
            Some("claimed") => ClaimOutcome::Claimed(claim),
            held => ClaimOutcome::Duplicate(duplicate_of(held)),
        })
    }

    async fn confirm(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.on_held("confirm", &self.sql.confirm, claim).await
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.on_held("renew", &self.sql.renew, claim).await
    }

    async fn commit(&self, claim: &Claim) -> Result<(), StoreError> {
        let query = sqlx::query(AssertSqlSafe(self.sql.commit.clone()))
            .bind(claim.key().as_str())
            .bind(token(claim.token()))
            .bind(millis(self.retention));
        self.bounded("commit", query.execute(&self.pool))
            .await
            .map(drop)
    }

    async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        release(&self.pool, &self.sql, self.timeout, claim).await
    }

    fn retention_period(&self) -> Duration {
        self.retention
    }

    fn lease_period(&self) -> Duration {
        self.lease
    }
}

/// How to connect to `url`, which must be a `postgres://` or `postgresql://` URL.
fn options(url: &str) -> Result<PgConnectOptions, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::new(
            "invalid Postgres URL: it starts with postgres:// or postgresql://",
        ));
    }
    url.parse()
        .map_err(|e| StoreError::with_source("invalid Postgres URL", e))
}

/// A lazy pool to `url` whose statements time out on the server after `timeout`.
/// Must be called within a tokio runtime.
pub(crate) fn pool_for(url: &str, timeout: Duration) -> Result<PgPool, StoreError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(StoreError::new(
            "a Postgres pool must be made within a tokio runtime",
        ));
    }
    Ok(pool(options(url)?, timeout))
}

/// Where `pool` connects: user, host, port and database. Two pools at the same place
/// share a database, so one statement may touch both's tables.
pub(crate) fn place(pool: &PgPool) -> Arc<str> {
    let options = pool.connect_options();
    format!(
        "{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
    .into()
}

/// A lazy pool of 16 connections to `options`, whose statements time out on the
/// server after `timeout`.
fn pool(options: PgConnectOptions, timeout: Duration) -> PgPool {
    let options = options.options([("statement_timeout", millis(timeout))]);
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(timeout)
        .connect_lazy_with(options)
}

/// Deletes `claim`'s row while it holds the claim's token and is not `done`.
async fn release(
    pool: &PgPool,
    sql: &Statements,
    timeout: Duration,
    claim: &Claim,
) -> Result<(), StoreError> {
    let query = sqlx::query(AssertSqlSafe(sql.release.clone()))
        .bind(claim.key().as_str())
        .bind(token(claim.token()));
    bounded(timeout, "release", query.execute(pool))
        .await
        .map(drop)
}

/// Releases a claim whose call did not answer, when dropped armed.
struct UnansweredClaim {
    store: Option<PgStore>,
    claim: Claim,
}

impl Drop for UnansweredClaim {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let claim = self.claim.clone();
        drop(runtime.spawn(async move {
            // After the timeout, the claim's own statement has ended on the server
            // (`statement_timeout`), committed or not: the release comes after it.
            tokio::time::sleep(store.timeout).await;
            if let Err(error) = release(&store.pool, &store.sql, store.timeout, &claim).await {
                tracing::warn!(%error, key = %claim.key(), "could not release a claim whose answer was lost; it expires with its lease");
            }
        }));
    }
}

/// What the cleanup task needs of the store, without keeping it alive.
struct Cleaner {
    pool: PgPool,
    sql: Arc<Statements>,
    timeout: Duration,
}

impl Cleaner {
    async fn run(&self) -> Result<u64, StoreError> {
        let query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(self.sql.cleanup.clone()))
            .bind(CLEANUP_BATCH);
        let deleted = bounded(self.timeout, "cleanup", query.fetch_one(&self.pool)).await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }
}

pub(crate) async fn bounded<T>(
    timeout: Duration,
    what: &'static str,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(StoreError::with_source(
            format!("Postgres {what} failed"),
            error,
        )),
        Err(_) => Err(timed_out(what, timeout)),
    }
}

/// The error of a Postgres `what` that did not end within `timeout`.
pub(crate) fn timed_out(what: &'static str, timeout: Duration) -> StoreError {
    StoreError::new(format!("Postgres {what} timed out after {timeout:?}"))
}

fn at_least_a_millisecond(what: &'static str, given: Duration) -> Result<Duration, ConfigError> {
    const MINIMUM: Duration = Duration::from_millis(1);
    if given < MINIMUM {
        return Err(ConfigError::TooShort {
            what,
            given,
            minimum: MINIMUM,
        });
    }
    Ok(given)
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The state of an event whose key's row holds `state`.
pub(crate) fn duplicate_of(state: Option<&str>) -> Duplicate {
    match state {
        Some("done") => Duplicate::Processed,
        Some("confirmed") => Duplicate::InFlight,
        // `pending`, or a row the statement could not see yet (a concurrent claim
        // committed after it started): not acknowledged, the sender comes back.
        _ => Duplicate::Provisional,
    }
}

/// A claim's token as Postgres stores it (`bigint`): the same 64 bits.
pub(crate) fn token(token: u64) -> i64 {
    i64::from_ne_bytes(token.to_ne_bytes())
}

/// A fresh, unpredictable claim token.
fn new_token() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.sql.schema)
            .field("retention", &self.retention)
            .field("lease", &self.lease)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
