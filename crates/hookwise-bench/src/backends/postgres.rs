//! Postgres: a cluster of its own for the run (`PgServer`: `initdb` and `pg_ctl`,
//! as the `postgres` user when run as root, `fsync=off`), and per scenario a
//! `PgStore` and a `PgQueue` in a schema of their own, so each scenario starts empty.

use std::error::Error;

use hookwise_postgres::{PgQueue, PgStore};
use hookwise_test_support::PgServer;

/// The Postgres cluster started for the run; stopped and removed on drop.
#[derive(Debug)]
pub(super) struct Postgres {
    server: PgServer,
}

impl Postgres {
    /// Starts it, or says what to install.
    pub(super) fn start() -> Result<Self, String> {
        let server = PgServer::start("hookwise-bench").ok_or(
            "--store postgres and --queue postgres need Postgres (initdb, pg_ctl), which \
             the benchmark starts itself, and none is installed: apt-get install postgresql",
        )?;
        Ok(Self { server })
    }

    /// Which server, and where.
    pub(super) fn describe(&self) -> String {
        let version = self.server.psql("SHOW server_version");
        format!(
            "PostgreSQL {version} on 127.0.0.1:{}, started for this run, fsync=off; a \
             fresh schema per scenario",
            self.server.port
        )
    }

    /// A store in `schema`, created (with the queue's tables) if missing.
    pub(super) async fn store(&self, schema: &str) -> Result<PgStore, Box<dyn Error>> {
        let store = PgStore::new(&self.server.url())?.schema(schema)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A queue in `schema`, whose tables [`store`](Self::store) created.
    pub(super) fn queue(&self, schema: &str) -> Result<PgQueue, Box<dyn Error>> {
        Ok(PgQueue::new(&self.server.url())?.schema(schema)?)
    }
}
