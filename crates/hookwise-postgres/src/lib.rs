//! Postgres for hookwise: a dedupe store and a durable queue shared by every
//! instance of a receiver, and exactly-once effects for handlers that write to it.
//!
//! Most services that receive webhooks already run Postgres. [`PgStore`] keeps the
//! claims in one table of it, so the replicas of a receiver dedupe as one, with the
//! same protocol as `MemoryStore` and `RedisStore` (provisional → confirmed → done,
//! leases, token-checked release; the three run one shared test suite).
//!
//! And it can do what no store outside the application's database can: an
//! [`Inbox`] ([`PgStore::begin`]) is a transaction in which a handler makes its
//! writes and marks them made, in one commit, so the effects happen exactly once
//! (an error or a crash rolls back both, and the retry starts clean), whether the
//! event runs at once or from the [`PgQueue`].
//!
//! [`PgQueue`] keeps accepted events in the same database until a worker of any
//! instance has run them, so a `200` survives the process that gave it.
//!
//! All three together, for a service with only Postgres: every instance dedupes
//! with the others, a `200` survives a crash, and a handler's writes happen exactly
//! once (a queued row run again after a crash finds its inbox committed):
//!
//! ```no_run
//! use axum::{Router, routing::post_service};
//! use hookwise_core::{Delivery, Hoursmith, Receiver, hoursmith};
//! use hookwise_postgres::{PgQueue, PgStore, sqlx};
//! use hookwise_runtime::Webhooks;
//! use hookwise_tower::WebhookEndpoint;
//!
//! type BoxError = Box<dyn std::error::Error + Send + Sync>;
//!
//! async fn on_invoice(store: PgStore, delivery: Delivery<hoursmith::Event>) -> Result<(), BoxError> {
//!     let Some(mut inbox) = store.begin(delivery.dedupe_key()).await? else {
//!         return Ok(()); // made already
//!     };
//!     sqlx::query("INSERT INTO payments (event_id) VALUES ($1)")
//!         .bind(delivery.event().id())
//!         .execute(inbox.conn())
//!         .await?;
//!     inbox.commit().await?; // the payment and the inbox's mark, together
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), BoxError> {
//! let url = "postgres://app@db.internal/app";
//! let store = PgStore::new(url)?.schema("webhooks")?;
//! store.migrate().await?; // or run migration_sql("webhooks") with your migrations
//! let receiver = Receiver::new(Hoursmith::new("whsec_...")?, store.clone())?;
//! let webhooks = Webhooks::builder(receiver)
//!     .durable_queue(PgQueue::new(url)?.schema("webhooks")?) // the store's schema
//!     .handler("invoices", move |delivery| on_invoice(store.clone(), delivery))
//!     .build()?;
//! let endpoint = WebhookEndpoint::new(&webhooks, "invoices")?;
//! let app: Router = Router::new().route("/webhooks/hoursmith", post_service(endpoint));
//! # Ok(()) }
//! ```
//!
//! It is built on `sqlx` (Postgres, the tokio runtime, rustls): the widely used
//! async Postgres client in Rust, pure Rust, with a pool. No compile-time checked
//! queries (`query!`), so building needs no database. Every call is bounded by a
//! timeout (2 s by default), waiting for a pooled connection included, so a
//! database that is down or a pool that is exhausted is a `503`, never a hang.
//!
//! The schema is yours to place: [`PgStore::schema`] picks it (default
//! `hookwise`), [`PgStore::migrate`] creates what is missing, and
//! [`migration_sql`] gives the same SQL for your migration tool:
//!
//! ```
//! let sql = hookwise_postgres::migration_sql("webhooks")?;
//! assert!(sql.contains(r#"CREATE TABLE IF NOT EXISTS "webhooks".dedupe"#));
//! # Ok::<(), hookwise_core::ConfigError>(())
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod dead_letters;
mod inbox;
mod local;
mod queue;
mod reader;
mod schema;
mod statements;
mod store;

use std::time::Duration;

/// The `sqlx` this crate is built on, for the statements in an [`Inbox`].
pub use sqlx;

pub use self::{
    inbox::Inbox,
    queue::{
        DEFAULT_MAX_BACKLOG, DEFAULT_MAX_DELIVERIES, DEFAULT_POLL_INTERVAL, DEFAULT_VISIBILITY,
        PgQueue, StoredDeadLetter,
    },
    store::{DEFAULT_CLEANUP_INTERVAL, PgStore},
};

/// The default schema of the table.
pub const DEFAULT_SCHEMA: &str = "hookwise";

/// The default bound on each call, waiting for a pooled connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The SQL [`PgStore::migrate`] runs for `schema`: creates, where missing, the
/// schema, the `dedupe` table (`key text primary key`, `state`, `token bigint`,
/// `expires_at timestamptz`), the `applied` table of [`Inbox`] marks (`key`,
/// `expires_at`), each with an index on `expires_at`, and the [`PgQueue`]'s
/// `queue` and `dead` tables. Refused for a schema name that is not a plain
/// identifier.
pub fn migration_sql(schema: &str) -> Result<String, hookwise_core::ConfigError> {
    Ok(schema::migration(schema::checked(schema)?))
}
