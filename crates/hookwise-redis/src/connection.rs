//! [`Connection`]: the Redis connection the store and the queue share the handling of.

use std::{future::Future, time::Duration};

use hookwise_core::{ConfigError, StoreError};
use redis::{Client, RedisResult, aio::ConnectionManager};

use crate::DEFAULT_TIMEOUT;

/// A lazily made, self-healing connection, and the timeout every call through it is
/// bounded by.
#[derive(Clone)]
pub(crate) struct Connection {
    manager: ConnectionManager,
    /// The URL it connects to: a store and a queue on the same URL share a server.
    url: std::sync::Arc<str>,
    timeout: Duration,
    /// The runtime the connection was set up in, for work spawned where there is no
    /// current runtime (in a `Drop`).
    runtime: tokio::runtime::Handle,
}

impl Connection {
    /// Sets up the connection to `url` without connecting; `owner` names the caller
    /// in the error when there is no tokio runtime to run it.
    pub(crate) fn open(url: &str, owner: &str) -> Result<Self, StoreError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(StoreError::new(format!(
                "{owner} must be called within a tokio runtime"
            )));
        };
        let client =
            Client::open(url).map_err(|e| StoreError::with_source("invalid Redis URL", e))?;
        // No response timeout of the connection's own: every call is bounded by
        // `bounded`, with the timeout the store or queue was configured with; a
        // fixed one here would cut a longer configured timeout short.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(None)
            .set_number_of_retries(1);
        let manager = client
            .get_connection_manager_lazy(config)
            .map_err(|e| StoreError::with_source("cannot set up the Redis connection", e))?;
        Ok(Self {
            manager,
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            runtime,
        })
    }

    /// Sets the bound on each call.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) -> Result<(), ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Zero("Redis timeout"));
        }
        self.timeout = timeout;
        Ok(())
    }

    /// Whether `other` connects to the same URL, hence the same server: only then
    /// may one script touch both's keys.
    pub(crate) fn same_server(&self, other: &Connection) -> bool {
        self.url == other.url
    }

    /// The bound on each call.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A handle to send commands on (cheap: the connection is multiplexed).
    pub(crate) fn handle(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Runs `work` in the background: on the current tokio runtime, or outside one on
    /// the runtime the connection was set up in; callable from anywhere, a `Drop`
    /// included. Dropped unrun if that runtime has shut down.
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let runtime =
            tokio::runtime::Handle::try_current().unwrap_or_else(|_| self.runtime.clone());
        drop(runtime.spawn(work));
    }

    /// Runs one call within the timeout; a failure or timeout is a [`StoreError`].
    pub(crate) async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::with_source(
                format!("Redis {what} failed"),
                error,
            )),
            Err(_) => Err(StoreError::new(format!(
                "Redis {what} timed out after {:?}",
                self.timeout
            ))),
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
