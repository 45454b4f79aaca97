//! Where the hookwise runtime behind a server keeps its claims and accepted events:
//! in memory (the default), or in a database this benchmark starts for the run.
//!
//! `--store memory|redis|postgres` picks B's dedupe store and `--queue
//! none|redis|postgres` its durable queue; A, when it is the layer
//! (`--baseline layer`), is always in memory. B is built the way the project builds
//! a receiver on that backend (`examples/receiver.rs`):
//!
//! - without a queue: `WebhookLayer::new(&webhooks)` over a `Webhooks` with that
//!   store, ack-fast, in front of a route that does nothing, like the in-memory B;
//! - with a queue: `Webhooks::builder(Receiver::new(provider, store)?)
//!   .durable_queue(queue).handler(NAME, handler).build()?`, served by
//!   `WebhookEndpoint::new(&webhooks, NAME)?` (axum `post_service`), since a layer
//!   refuses a durable runtime. Each `200` then waits until the queue has stored
//!   the delivery; the queue's readers run the handler (which does nothing) in the
//!   background, on the server runtime.
//!
//! Any store goes with any queue. When both are on the same database, the queue
//! stores a delivery and commits its claim in one step; otherwise the runtime
//! commits the claim after the queue has stored it.
//!
//! Each database is a server of its own, started once for the run on a free
//! loopback port ([`redis`], [`postgres`]: `hookwise-test-support`'s `RedisServer`
//! and `PgServer`) and removed at the end. Each scenario gets fresh data, as the
//! in-memory store does: a key namespace (Redis) or a schema (Postgres) of its own.
//!
//! Reading the numbers:
//!
//! - The databases run as the tests start them, without syncing to disk (Redis
//!   without persistence, Postgres with `fsync=off`): the tables price the round
//!   trips and the database's work, not the disk.
//! - The server CPU column counts this process's server threads only: the
//!   database's own CPU time (another process) is in no column.
//! - With a queue, B's readers may still be running stored deliveries while A is
//!   driven; that work, and its CPU time, then lands in A's rounds. The line below
//!   the table says how many accepted events the handler had run by the end.

mod postgres;
mod redis;

use std::{convert::Infallible, error::Error, time::Duration};

use clap::ValueEnum;
use hookwise_bench::HOURSMITH_SECRET;
use hookwise_core::{Hoursmith, MemoryStore, Receiver};
use hookwise_runtime::{Webhooks, WebhooksBuilder};

use self::{postgres::Postgres, redis::Redis};

/// The name the durable B's handler is registered under (and its queue keyed by).
pub(crate) const HANDLER: &str = "bench";

/// How long a scenario's runtime gets to stop (its queue readers included).
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// `--store`: where the contender's dedupe claims live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Store {
    /// MemoryStore, in this process.
    Memory,
    /// RedisStore, on a redis-server started for the run.
    Redis,
    /// PgStore, on a Postgres cluster started for the run.
    Postgres,
}

/// `--queue`: where the contender keeps accepted events until the handler has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Queue {
    /// No durable queue: the runtime's in-memory, ack-fast processing.
    None,
    /// RedisQueue, on a redis-server started for the run.
    Redis,
    /// PgQueue, on a Postgres cluster started for the run.
    Postgres,
}

/// A hookwise runtime's backend: its store and its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backend {
    pub(crate) store: Store,
    pub(crate) queue: Queue,
    /// Whether the runtime sends its counters to the `metrics` facade (to the
    /// Prometheus recorder the benchmark installs with `--metrics`).
    pub(crate) metrics: bool,
    /// `PgQueue::batch_wait` of a Postgres queue.
    pub(crate) batch_wait: Duration,
}

impl Backend {
    /// Everything in memory: the layer as it was always benchmarked.
    pub(crate) const MEMORY: Self = Self {
        store: Store::Memory,
        queue: Queue::None,
        metrics: false,
        batch_wait: Duration::ZERO,
    };

    /// Whether accepted events go to a durable queue.
    pub(crate) fn is_durable(self) -> bool {
        self.queue != Queue::None
    }

    /// The server's name in the tables: `WebhookLayer` in memory, else what serves
    /// it and on what.
    pub(crate) fn label(self) -> String {
        let store = match self.store {
            Store::Memory => "MemoryStore",
            Store::Redis => "RedisStore",
            Store::Postgres => "PgStore",
        };
        let served = match self.queue {
            Queue::None if self.store == Store::Memory => "WebhookLayer".to_owned(),
            Queue::None => format!("WebhookLayer, {store}"),
            Queue::Redis => format!("WebhookEndpoint, {store} + RedisQueue"),
            Queue::Postgres => format!("WebhookEndpoint, {store} + PgQueue"),
        };
        let served = match self.batch_wait.is_zero() {
            true => served,
            false => format!("{served}, batch wait {:?}", self.batch_wait),
        };
        match self.metrics {
            true => format!("{served}, metrics"),
            false => served,
        }
    }

    fn uses_redis(self) -> bool {
        self.store == Store::Redis || self.queue == Queue::Redis
    }

    fn uses_postgres(self) -> bool {
        self.store == Store::Postgres || self.queue == Queue::Postgres
    }
}

/// The database servers a backend needs, started for the run; stopped and removed
/// on drop.
#[derive(Debug)]
pub(crate) struct Databases {
    redis: Option<Redis>,
    postgres: Option<Postgres>,
}

impl Databases {
    /// No database: for servers that need none.
    pub(crate) fn none() -> Self {
        Self {
            redis: None,
            postgres: None,
        }
    }

    /// Starts what `backend` needs (nothing for memory). Fails, saying what to
    /// install, when a server is not installed.
    pub(crate) fn start(backend: Backend) -> Result<Self, String> {
        Ok(Self {
            redis: backend.uses_redis().then(Redis::start).transpose()?,
            postgres: backend.uses_postgres().then(Postgres::start).transpose()?,
        })
    }

    /// One line per server started: which, and where.
    pub(crate) fn describe(&self) -> Vec<String> {
        let redis = self.redis.as_ref().map(Redis::describe);
        let postgres = self.postgres.as_ref().map(Postgres::describe);
        redis.into_iter().chain(postgres).collect()
    }

    /// A runtime on `backend`, its data under `fresh` (a name no other scenario of
    /// the run uses: `[a-z0-9_]`, starting with a letter). Must run on the server
    /// runtime: a durable queue starts its readers there.
    pub(crate) async fn instance(
        &self,
        backend: Backend,
        fresh: &str,
    ) -> Result<Instance, Box<dyn Error>> {
        let provider = Hoursmith::new(HOURSMITH_SECRET)?;
        let mut pg_store = None;
        let builder: WebhooksBuilder<Hoursmith> = match backend.store {
            Store::Memory => Webhooks::builder(Receiver::new(provider, MemoryStore::new())?),
            Store::Redis => {
                let store = self.redis()?.store(fresh)?;
                Webhooks::builder(Receiver::new(provider, store)?)
            }
            Store::Postgres => {
                let store = self.postgres()?.store(fresh).await?;
                pg_store = Some(store.clone());
                Webhooks::builder(Receiver::new(provider, store)?)
            }
        };
        let builder = match backend.queue {
            // No named handler either: the route behind the layer is the handler.
            Queue::None => builder,
            Queue::Redis => builder.durable_queue(self.redis()?.queue(fresh)?),
            Queue::Postgres => {
                let postgres = self.postgres()?;
                if pg_store.is_none() {
                    // The queue's tables come with the store's migration.
                    pg_store = Some(postgres.store(fresh).await?);
                }
                builder.durable_queue(postgres.queue(fresh)?.batch_wait(backend.batch_wait))
            }
        };
        let builder = if backend.is_durable() {
            with_handler(builder)
        } else {
            builder
        };
        Ok(Instance {
            webhooks: builder.metrics(backend.metrics).build()?,
            pg_store,
        })
    }

    fn redis(&self) -> Result<&Redis, &'static str> {
        self.redis.as_ref().ok_or("no redis-server was started")
    }

    fn postgres(&self) -> Result<&Postgres, &'static str> {
        self.postgres.as_ref().ok_or("no Postgres was started")
    }
}

/// `builder` with a handler registered as [`HANDLER`] that does nothing.
fn with_handler(builder: WebhooksBuilder<Hoursmith>) -> WebhooksBuilder<Hoursmith> {
    builder.handler(HANDLER, |_| async { Ok::<_, Infallible>(()) })
}

/// A runtime for one scenario, on its backend, and what to close after it.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) webhooks: Webhooks<Hoursmith>,
    /// The Postgres store, whose pool is closed at the end (its periodic cleanup
    /// would otherwise keep it, and its connections, for up to a minute).
    pg_store: Option<hookwise_postgres::PgStore>,
}

impl Instance {
    /// A runtime in memory with a handler registered as [`HANDLER`] that does
    /// nothing, for `WebhookEndpoint`.
    pub(crate) fn with_handler() -> Result<Self, Box<dyn Error>> {
        let receiver = Receiver::new(Hoursmith::new(HOURSMITH_SECRET)?, MemoryStore::new())?;
        let webhooks = with_handler(Webhooks::builder(receiver)).build()?;
        Ok(Self {
            webhooks,
            pg_store: None,
        })
    }

    /// Stops taking deliveries, waits for accepted work (and a queue's readers) to
    /// stop, and closes the Postgres pool; how many events had not finished.
    pub(crate) async fn stop(self) -> usize {
        let report = self.webhooks.shutdown(STOP_DEADLINE).await;
        if let Some(store) = self.pg_store {
            store.pool().close().await;
        }
        report.unfinished
    }
}
