//! The queue's SQL for one schema, written once when the queue is made.

use std::sync::{Arc, OnceLock};

use crate::dead_letters::DeadStatements;

/// The columns a stored delivery has, in the `queue` and `dead` tables alike.
pub(crate) const COLUMNS: &str =
    "provider, handler, key, method, uri, headers, body, secret, signed_at, received_ms";

/// The queue's statements for one schema, built once.
#[derive(Debug)]
pub(crate) struct QueueStatements {
    /// The queue's table, quoted, with its schema.
    pub(crate) table: String,
    /// `$1`..`$10` the columns of [`COLUMNS`], `$11` the backlog's bound, `$12` the
    /// line, `$13` the lowest id seen: whether there was room, whether the row was
    /// stored, and the lowest id if it was read.
    pub(crate) insert: Arc<str>,
    /// The same as `INSERT … SELECT`, for a `WHERE` to follow, with `{line}` for the
    /// line's parameter.
    pub(crate) insert_select: String,
    /// The `span`, `low` and `room` CTEs (`ok`: provider `$1`'s handler `$2` has
    /// fewer rows than the bound; `low`: its lowest id, when it had to be read),
    /// with `{bound}` for the bound's parameter and `{low}` for the lowest id seen.
    pub(crate) room: String,
    /// `$1` provider, `$2` handler, `$3` visibility in ms, `$4` the most rows; never
    /// a row with an earlier one of its line still queued (running, or waiting to),
    /// so that a line's rows run one at a time, in order, across instances.
    pub(crate) take: Arc<str>,
    /// `$1` id, `$2` deliveries, `$3` visibility in ms.
    pub(crate) refresh: Arc<str>,
    /// `$1` id, `$2` deliveries: the row, taken to run here and not run, is ready
    /// for the readers again, as never taken.
    pub(crate) give_back: Arc<str>,
    /// `$1` the ids of rows run to success.
    pub(crate) delete: Arc<str>,
    /// `$1` id, `$2` error, `$3` attempts.
    pub(crate) bury: Arc<str>,
    /// `$1` provider, `$2` the most rows.
    pub(crate) dead_letters: Arc<str>,
    /// `$1` id, `$2` provider, `$3` the backlog's bound: whether the dead letter
    /// exists, whether its handler's backlog has room, whether it was moved.
    pub(crate) replay: Arc<str>,
    /// The store-and-commit statement with the receiver's `PgStore`, made on the
    /// first delivery, with the schema of that store's table.
    pub(crate) store_and_commit: OnceLock<(String, Arc<str>)>,
    /// The store-if-new statement with the receiver's `PgStore`, made likewise.
    pub(crate) store_if_new: OnceLock<(String, Arc<str>)>,
    /// An admin's statements on the dead letters.
    pub(crate) dead: DeadStatements,
}

impl QueueStatements {
    pub(crate) fn new(schema: &str) -> Self {
        let (queue, dead) = (
            format!(r#""{schema}".queue"#),
            format!(r#""{schema}".dead"#),
        );
        let visible = "clock_timestamp() + ($3::float8 * interval '1 millisecond')";
        // The span of the handler's ids bounds its rows from above. Its high end is
        // one probe of the index on (provider, handler, id); its low end, the lowest
        // id, sits behind the index entries of deleted rows until a vacuum, so it is
        // read only when the lowest id this queue saw last ({low}, never above the
        // lowest id since: rows leave, new ones come in above) no longer proves
        // room, and returned to be kept. Only when the span reaches the bound are the
        // rows counted, no further than the bound.
        let room = format!(
            "span AS (
    SELECT max(id) AS high FROM {queue} WHERE provider = $1 AND handler = $2
),
low AS (
    SELECT CASE
        WHEN (SELECT high FROM span) IS NULL THEN NULL
        WHEN (SELECT high FROM span) >= {{low}}
            AND (SELECT high FROM span) - {{low}} + 1 < {{bound}} THEN NULL
        ELSE (SELECT min(id) FROM {queue} WHERE provider = $1 AND handler = $2)
    END AS low
),
room AS (
    SELECT CASE
        WHEN (SELECT high FROM span) IS NULL OR (SELECT low FROM low) IS NULL THEN true
        WHEN (SELECT high FROM span) - (SELECT low FROM low) + 1 < {{bound}} THEN true
        ELSE (SELECT count(*) < {{bound}} FROM (
            SELECT 1 FROM {queue} WHERE provider = $1 AND handler = $2 LIMIT {{bound}}
        ) backlog)
    END AS ok
)"
        );
        // The line comes last, after the parameters of the statements around it.
        let insert_select = format!(
            "INSERT INTO {queue} ({COLUMNS}, line) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, {{line}}"
        );
        Self {
            insert: format!(
                "WITH {room},
inserted AS ({insert_select} WHERE (SELECT ok FROM room) RETURNING 1)
SELECT (SELECT ok FROM room), EXISTS (SELECT 1 FROM inserted), (SELECT low FROM low)",
                room = room
                    .replace("{bound}", "$11")
                    .replace("{low}", "$13::bigint"),
                insert_select = insert_select.replace("{line}", "$12::text"),
            )
            .into(),
            insert_select,
            room,
            table: queue.clone(),
            store_and_commit: OnceLock::new(),
            store_if_new: OnceLock::new(),
            dead: DeadStatements::new(&dead),
            take: format!(
                "UPDATE {queue} SET deliveries = deliveries + 1, visible_at = {visible}
WHERE id IN (
    SELECT id FROM {queue} q
    WHERE provider = $1 AND handler = $2 AND visible_at <= clock_timestamp()
        AND (line IS NULL OR NOT EXISTS (
            SELECT 1 FROM {queue} earlier
            WHERE earlier.provider = $1 AND earlier.handler = $2
                AND earlier.line = q.line AND earlier.id < q.id
        ))
    ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED
)
RETURNING id, deliveries, key, method, uri, headers, body, secret, signed_at, received_ms"
            )
            .into(),
            refresh: format!(
                "UPDATE {queue} SET visible_at = {visible} WHERE id = $1 AND deliveries = $2"
            )
            .into(),
            give_back: format!(
                "UPDATE {queue} SET deliveries = 0, visible_at = clock_timestamp()
WHERE id = $1 AND deliveries = $2"
            )
            .into(),
            delete: format!("DELETE FROM {queue} WHERE id = ANY($1)").into(),
            bury: format!(
                "WITH moved AS (DELETE FROM {queue} WHERE id = $1 RETURNING {COLUMNS})
INSERT INTO {dead} ({COLUMNS}, error, attempts) SELECT {COLUMNS}, $2, $3 FROM moved"
            )
            .into(),
            dead_letters: format!(
                "SELECT id, key, error, handler, attempts FROM {dead}
WHERE provider = $1 ORDER BY id LIMIT $2"
            )
            .into(),
            replay: format!(
                "WITH letter AS (SELECT handler FROM {dead} WHERE id = $1 AND provider = $2),
room AS (
    SELECT count(*) < $3 AS ok FROM (
        SELECT 1 FROM {queue} q, letter
        WHERE q.provider = $2 AND q.handler = letter.handler LIMIT $3
    ) backlog
),
moved AS (
    DELETE FROM {dead} WHERE id = $1 AND provider = $2 AND (SELECT ok FROM room)
    RETURNING {COLUMNS}
),
inserted AS (INSERT INTO {queue} ({COLUMNS}) SELECT {COLUMNS} FROM moved RETURNING 1)
SELECT EXISTS (SELECT 1 FROM letter), (SELECT ok FROM room), EXISTS (SELECT 1 FROM inserted)"
            )
            .into(),
        }
    }
}
