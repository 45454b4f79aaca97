//! The table, and the statements on it, in the schema the user picks.

use std::sync::Arc;

use hookwise_core::ConfigError;

/// A schema name that can go into SQL as it is: lowercase ASCII letters, digits and
/// `_`, starting with a letter or `_`, at most 63 bytes (Postgres's identifier
/// length). Quoted in the statements all the same.
pub(crate) fn checked(schema: &str) -> Result<&str, ConfigError> {
    let starts_well = schema
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if !starts_well || schema.len() > 63 || !schema.chars().all(allowed) {
        return Err(ConfigError::InvalidName {
            what: "Postgres schema",
            name: schema.to_owned(),
            reason: "lowercase ASCII letters, digits and '_', starting with a letter or '_', at most 63 bytes",
        });
    }
    Ok(schema)
}

/// The columns of a stored delivery, in the `queue` and `dead` tables alike (the
/// queue moves rows between the two with `crate::queue`'s `COLUMNS`).
const DELIVERY: &str = "    provider    text        NOT NULL,
    handler     text        NOT NULL,
    key         text        NOT NULL,
    method      text        NOT NULL,
    uri         text        NOT NULL,
    headers     bytea       NOT NULL,
    body        bytea       NOT NULL,
    secret      integer     NOT NULL,
    signed_at   bigint,
    received_ms bigint      NOT NULL,";

/// The SQL that creates what [`PgStore`](crate::PgStore) and
/// [`PgQueue`](crate::PgQueue) need in `schema`, if it is missing: the schema, the
/// `dedupe` table and its index on `expires_at`, the `applied` table (the events an
/// [`Inbox`](crate::Inbox) committed) and its index, the `queue` table and its indexes,
/// and the `dead` table. Safe to run again, and from instances starting together (it
/// takes an advisory lock).
pub(crate) fn migration(schema: &str) -> String {
    format!(
        r#"SELECT pg_advisory_xact_lock(4242424242);
CREATE SCHEMA IF NOT EXISTS "{schema}";
CREATE TABLE IF NOT EXISTS "{schema}".dedupe (
    key        text        PRIMARY KEY,
    state      text        NOT NULL CHECK (state IN ('pending', 'confirmed', 'done')),
    token      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS dedupe_expires_at ON "{schema}".dedupe (expires_at);
CREATE TABLE IF NOT EXISTS "{schema}".applied (
    key        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS applied_expires_at ON "{schema}".applied (expires_at);
CREATE TABLE IF NOT EXISTS "{schema}".queue (
    id          bigserial   PRIMARY KEY,
{DELIVERY}
    deliveries  integer     NOT NULL DEFAULT 0,
    visible_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS queue_ready ON "{schema}".queue (provider, handler, visible_at);
CREATE INDEX IF NOT EXISTS queue_order ON "{schema}".queue (provider, handler, id);
ALTER TABLE "{schema}".queue ADD COLUMN IF NOT EXISTS line text;
CREATE INDEX IF NOT EXISTS queue_line ON "{schema}".queue (provider, handler, line, id)
    WHERE line IS NOT NULL;
CREATE TABLE IF NOT EXISTS "{schema}".dead (
    id          bigserial   PRIMARY KEY,
{DELIVERY}
    error       text        NOT NULL,
    attempts    integer     NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
"#
    )
}

/// The store's statements for one schema, built once.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) schema: String,
    pub(crate) migrate: Arc<str>,
    /// `$1` key, `$2` token, `$3` lease in ms: `claimed`, or the state that holds
    /// the key.
    pub(crate) claim: Arc<str>,
    /// `$1` key, `$2` token, `$3` lease in ms.
    pub(crate) confirm: Arc<str>,
    /// `$1` key, `$2` token, `$3` lease in ms.
    pub(crate) renew: Arc<str>,
    /// `$1` key, `$2` token, `$3` retention in ms.
    pub(crate) commit: Arc<str>,
    /// `$1` key, `$2` token.
    pub(crate) release: Arc<str>,
    /// `$1` the most rows to delete from each table: how many it deleted.
    pub(crate) cleanup: Arc<str>,
    /// `$1` key, `$2` retention in ms: inside an inbox's transaction, marks the
    /// event's effects made, and returns a row only if they were not made yet.
    /// Waits for another transaction that marked the key until it ends.
    pub(crate) apply: Arc<str>,
    /// `$1` key, `$2` retention in ms: the event is done, inside a transaction.
    pub(crate) mark_done: Arc<str>,
}

/// `$3` milliseconds from now, on the database server's clock.
const IN_MS: &str = "clock_timestamp() + ($3::float8 * interval '1 millisecond')";

impl Statements {
    pub(crate) fn new(schema: &str) -> Self {
        let table = format!(r#""{schema}".dedupe"#);
        let applied = format!(r#""{schema}".applied"#);
        Self {
            schema: schema.to_owned(),
            migrate: migration(schema).into(),
            claim: format!(
                "WITH claimed AS (
    INSERT INTO {table} AS d (key, state, token, expires_at)
    VALUES ($1, 'pending', $2, {IN_MS})
    ON CONFLICT (key) DO UPDATE
        SET state = 'pending', token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
        WHERE d.expires_at <= clock_timestamp()
    RETURNING 'claimed'::text AS state
)
SELECT state FROM claimed
UNION ALL
SELECT state FROM {table} WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM claimed)
LIMIT 1"
            )
            .into(),
            confirm: format!(
                "UPDATE {table} SET state = 'confirmed', expires_at = {IN_MS}
WHERE key = $1 AND token = $2 AND state <> 'done' AND expires_at > clock_timestamp()"
            )
            .into(),
            renew: format!(
                "UPDATE {table} SET expires_at = {IN_MS}
WHERE key = $1 AND token = $2 AND state <> 'done' AND expires_at > clock_timestamp()"
            )
            .into(),
            commit: format!(
                "INSERT INTO {table} (key, state, token, expires_at) VALUES ($1, 'done', $2, {IN_MS})
ON CONFLICT (key) DO UPDATE
    SET state = 'done', token = EXCLUDED.token, expires_at = EXCLUDED.expires_at"
            )
            .into(),
            release: format!(
                "DELETE FROM {table} WHERE key = $1 AND token = $2 AND state <> 'done'"
            )
            .into(),
            apply: format!(
                "INSERT INTO {applied} AS a (key, expires_at)
VALUES ($1, clock_timestamp() + ($2::float8 * interval '1 millisecond'))
ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
    WHERE a.expires_at <= clock_timestamp()
RETURNING 1"
            )
            .into(),
            mark_done: format!(
                "INSERT INTO {table} (key, state, token, expires_at)
VALUES ($1, 'done', 0, clock_timestamp() + ($2::float8 * interval '1 millisecond'))
ON CONFLICT (key) DO UPDATE SET state = 'done', expires_at = EXCLUDED.expires_at"
            )
            .into(),
            cleanup: format!(
                "WITH dedupe AS (
    DELETE FROM {table} WHERE key IN (
        SELECT key FROM {table} WHERE expires_at < clock_timestamp() ORDER BY expires_at LIMIT $1
    )
    RETURNING 1
), applied AS (
    DELETE FROM {applied} WHERE key IN (
        SELECT key FROM {applied} WHERE expires_at < clock_timestamp() ORDER BY expires_at LIMIT $1
    )
    RETURNING 1
)
SELECT (SELECT count(*) FROM dedupe) + (SELECT count(*) FROM applied)"
            )
            .into(),
        }
    }
}
