//! Redis: a `redis-server` of its own for the run (`RedisServer`, without
//! persistence), and per scenario a `RedisStore` and a `RedisQueue` under a key
//! namespace of their own, so each scenario starts empty.

use hookwise_core::StoreError;
use hookwise_redis::{RedisQueue, RedisStore};
use hookwise_test_support::RedisServer;

/// The redis-server started for the run; stopped and removed on drop.
#[derive(Debug)]
pub(super) struct Redis {
    server: RedisServer,
}

impl Redis {
    /// Starts it, or says what to install.
    pub(super) fn start() -> Result<Self, String> {
        let server = RedisServer::start("hookwise-bench").ok_or(
            "--store redis and --queue redis need a redis-server, which the benchmark \
             starts itself, and none is installed: apt-get install redis-server",
        )?;
        Ok(Self { server })
    }

    /// Which server, and where.
    pub(super) fn describe(&self) -> String {
        let info = self.server.cli(&["INFO", "server"]);
        let version = info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("(version unknown)");
        format!(
            "redis-server {version} on 127.0.0.1:{}, started for this run, without \
             persistence; a fresh key namespace per scenario",
            self.server.port
        )
    }

    /// A store whose keys start with `namespace`.
    pub(super) fn store(&self, namespace: &str) -> Result<RedisStore, StoreError> {
        Ok(RedisStore::new(&self.server.url())?.namespace(namespace))
    }

    /// A queue whose keys start with `namespace` (the store's: a delivery is then
    /// stored and its claim committed in one script).
    pub(super) fn queue(&self, namespace: &str) -> Result<RedisQueue, StoreError> {
        Ok(RedisQueue::new(&self.server.url())?.namespace(namespace))
    }
}
