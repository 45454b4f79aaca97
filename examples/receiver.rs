//! A real webhook receiver for Mojave and Hoursmith.
//!
//! ```text
//! MOJAVE_WEBHOOK_SECRET=... HOURSMITH_WEBHOOK_SECRET=... cargo run --example receiver
//! ```
//!
//! - Listens on `HOOKWISE_ADDR` (default `127.0.0.1:3000`): `POST /webhooks/mojave`
//!   and `POST /webhooks/hoursmith`.
//! - Secrets come from `MOJAVE_WEBHOOK_SECRET` and `HOURSMITH_WEBHOOK_SECRET`; a
//!   missing or empty one is a clear error and exit code 2.
//! - With `HOOKWISE_REDIS_URL` (e.g. `redis://127.0.0.1:6379/`), dedupe and the
//!   accepted events live in Redis (`RedisStore`, `RedisQueue`): run as many
//!   instances as you like, and a `200` survives the process that gave it. Without
//!   it, everything is in memory and nothing else is needed.
//!   `HOOKWISE_TAKEOVER_SECS` sets how long a crashed instance's claims and queue
//!   entries wait before another instance takes them over (by default the claim
//!   lease, 5 min, and the queue's claim idle time, 60 s).
//! - With `HOOKWISE_DATABASE_URL` (e.g. `postgres://app@127.0.0.1/app`) instead, the
//!   same on Postgres (`PgStore`, `PgQueue`, in the schema `hookwise`, created at
//!   start-up if missing), and each processed event is also recorded as a row of
//!   the table `receiver_events` (created at start-up if missing) in an `Inbox`:
//!   the row exists exactly once, even for an event run again after a crash.
//! - Serves its metrics at `GET /metrics` in the Prometheus text format
//!   (`metrics-exporter-prometheus`; the names are listed on
//!   `hookwise::runtime::Stats`): deliveries by outcome and code, handler runs and
//!   their durations, retries, dead letters, events in flight.
//! - Prints exactly one JSON line per processed event on stdout:
//!   `{"provider":"hoursmith","id":"<dedupe key>","type":"invoice.paid","livemode":true}`
//!   (Mojave has no test mode, so its events are always `"livemode":true`). Logs go
//!   to stderr (`RUST_LOG` sets the level, `info` by default).
//! - On SIGTERM or Ctrl-C it stops taking deliveries (`503` + `Retry-After`),
//!   finishes every accepted event, and exits 0 (1 if some did not finish within
//!   30 s).

mod support;

use std::{future::Future, process::ExitCode, time::Duration};

use axum::{
    Router,
    routing::{get, post_service},
};
use hookwise::{
    DedupeKey, Delivery, Hoursmith, MemoryStore, Mojave, Provider, Receiver, Webhooks,
    tower::WebhookEndpoint,
};
use hookwise_postgres::{PgQueue, PgStore, sqlx};
use hookwise_redis::{RedisQueue, RedisStore};
use support::{Config, print_event};

/// How long accepted events get to finish on shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// The name each provider's handler is registered under: with Redis, the stream
/// its accepted events wait in.
const HANDLER: &str = "print";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a processed event leaves behind: its line on stdout and, on Postgres, a row
/// of `receiver_events` made in an [`Inbox`](hookwise_postgres::Inbox), so that the
/// row exists exactly once even when the event runs again after a crash.
#[derive(Clone)]
struct Record {
    inbox: Option<PgStore>,
}

impl Record {
    /// The table of the rows: no unique constraint, so that a second row of an event
    /// would show (an application would add one all the same).
    const TABLE: &str = "CREATE TABLE IF NOT EXISTS receiver_events (
    provider    text        NOT NULL,
    id          text        NOT NULL,
    type        text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
)";

    async fn event(
        &self,
        provider: &str,
        key: &DedupeKey,
        event_type: &str,
        livemode: bool,
    ) -> Result<(), BoxError> {
        let Some(store) = &self.inbox else {
            print_event(provider, key.id(), event_type, livemode);
            return Ok(());
        };
        let Some(mut inbox) = store.begin(key).await? else {
            return Ok(()); // recorded by an earlier run
        };
        sqlx::query("INSERT INTO receiver_events (provider, id, type) VALUES ($1, $2, $3)")
            .bind(provider)
            .bind(key.id())
            .bind(event_type)
            .execute(inbox.conn())
            .await?;
        // Printed before the commit: a crash between the two prints it again on the
        // next run, while the row is made once.
        print_event(provider, key.id(), event_type, livemode);
        inbox.commit().await?;
        Ok(())
    }
}

/// Where accepted events and claims live.
enum Backend {
    Memory,
    Redis(String),
    Postgres(Box<PgStore>, String),
}

/// One provider's runtime, built once: in memory, on Redis or on Postgres.
fn runtime<P, H, F>(
    provider: P,
    backend: &Backend,
    handler: H,
) -> Result<Webhooks<P>, Box<dyn std::error::Error>>
where
    P: Provider,
    H: Fn(Delivery<P::Event>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let builder = match backend {
        Backend::Redis(url) => {
            let (mut store, mut queue) = (RedisStore::new(url)?, RedisQueue::new(url)?);
            if let Some(takeover) = takeover()? {
                store = store.lease(takeover)?;
                queue = queue.claim_idle(takeover)?;
            }
            Webhooks::builder(Receiver::new(provider, store)?).durable_queue(queue)
        }
        Backend::Postgres(store, url) => {
            let (mut store, mut queue) = (PgStore::clone(store), PgQueue::new(url)?);
            if let Some(takeover) = takeover()? {
                store = store.lease(takeover)?;
                queue = queue.visibility(takeover)?;
            }
            Webhooks::builder(Receiver::new(provider, store)?).durable_queue(queue)
        }
        Backend::Memory => Webhooks::builder(Receiver::new(provider, MemoryStore::new())?),
    };
    Ok(builder.handler(HANDLER, handler).build()?)
}

/// `HOOKWISE_TAKEOVER_SECS`, when set.
fn takeover() -> Result<Option<Duration>, String> {
    match std::env::var("HOOKWISE_TAKEOVER_SECS") {
        Ok(secs) => secs
            .parse()
            .map(|secs| Some(Duration::from_secs(secs)))
            .map_err(|_| format!("HOOKWISE_TAKEOVER_SECS is not a number of seconds: {secs:?}")),
        Err(_) => Ok(None),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    support::main("receiver", run).await
}

async fn run(config: Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let env = |name| {
        std::env::var(name)
            .ok()
            .filter(|url: &String| !url.is_empty())
    };
    // Installed before the runtimes are built: they register their metrics with it.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    // Summaries are kept in windows; the exporter drains them when asked to.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let backend = match (env("HOOKWISE_REDIS_URL"), env("HOOKWISE_DATABASE_URL")) {
        (Some(url), _) => Backend::Redis(url),
        (None, Some(url)) => {
            let store = PgStore::new(&url)?;
            store.migrate().await?;
            sqlx::query(Record::TABLE).execute(store.pool()).await?;
            Backend::Postgres(Box::new(store), url)
        }
        (None, None) => Backend::Memory,
    };
    let record = Record {
        inbox: match &backend {
            Backend::Postgres(store, _) => Some(PgStore::clone(store)),
            _ => None,
        },
    };
    let on_hoursmith = {
        let record = record.clone();
        move |delivery: Delivery<hookwise::hoursmith::Event>| {
            let record = record.clone();
            async move {
                let event = delivery.event();
                let (event_type, livemode) = (event.event_type(), event.livemode());
                let key = delivery.dedupe_key();
                record.event("hoursmith", key, event_type, livemode).await
            }
        }
    };
    // Mojave has no test mode: its events are always live.
    let on_mojave = move |delivery: Delivery<hookwise::mojave::Event>| {
        let record = record.clone();
        async move {
            let event_type = delivery.event().event_type();
            let key = delivery.dedupe_key();
            record.event("mojave", key, event_type, true).await
        }
    };
    let hoursmith = runtime(
        Hoursmith::new(&config.hoursmith_secret)?,
        &backend,
        on_hoursmith,
    )?;
    let mojave = runtime(Mojave::new(&config.mojave_secret)?, &backend, on_mojave)?;
    let app = Router::new()
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .route(
            "/webhooks/hoursmith",
            post_service(WebhookEndpoint::new(&hoursmith, HANDLER)?),
        )
        .route(
            "/webhooks/mojave",
            post_service(WebhookEndpoint::new(&mojave, HANDLER)?),
        );
    let shutdowns = [hoursmith.shutdown_handle(), mojave.shutdown_handle()];

    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let backend = match backend {
        Backend::Memory => "memory",
        Backend::Redis(_) => "redis",
        Backend::Postgres(..) => "postgres",
    };
    tracing::info!(addr = %listener.local_addr()?, backend, "listening");
    let closing = shutdowns.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            tracing::info!("stopping: no new deliveries, finishing accepted events");
            closing.iter().for_each(|shutdown| shutdown.close());
        })
        .await?;

    let mut unfinished = 0;
    for shutdown in &shutdowns {
        unfinished += shutdown.drain(DRAIN_DEADLINE).await.unfinished;
    }
    if unfinished > 0 {
        tracing::error!(unfinished, "events did not finish before the deadline");
        return Ok(ExitCode::FAILURE);
    }
    tracing::info!("stopped: every accepted event finished");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
