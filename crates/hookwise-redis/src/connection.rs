//! [`Connection`]: the Redis connection the store and the queue share the handling of.

use std::{future::Future, sync::Arc, time::Duration};

use hookwise_core::{ConfigError, StoreError};
use redis::{
    Client, Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};
use tokio::sync::OnceCell;

use crate::{DEFAULT_TIMEOUT, script_call::ScriptCall};

/// A lazily made, self-healing connection, and the timeout every call through it is
/// bounded by.
#[derive(Clone)]
pub(crate) struct Connection {
    handle: Handle,
    /// Where it connects (a URL, or a cluster's seed URLs): a store and a queue
    /// that name the same place share a server.
    place: Arc<str>,
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
            handle: Handle::Single(manager),
            place: url.into(),
            timeout: DEFAULT_TIMEOUT,
            runtime,
        })
    }

    /// Sets up a connection to the Redis Cluster (or Valkey cluster) that `nodes`
    /// (seed URLs) belong to, without connecting: the first call does, and finds the
    /// others. Commands go to the node that holds their keys' slot.
    pub(crate) fn open_cluster(nodes: &[&str], owner: &str) -> Result<Self, StoreError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(StoreError::new(format!(
                "{owner} must be called within a tokio runtime"
            )));
        };
        if nodes.is_empty() {
            return Err(StoreError::new(format!("{owner}: no cluster node given")));
        }
        let client = ClusterClient::builder(nodes.iter().copied())
            .connection_timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(|e| StoreError::with_source("invalid Redis Cluster URLs", e))?;
        Ok(Self {
            handle: Handle::Cluster(Arc::new(LazyCluster {
                client,
                connection: OnceCell::new(),
            })),
            place: nodes.join(",").into(),
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

    /// Whether `other` connects to the same place (URL, or cluster seeds), hence
    /// the same server or cluster: only then may one script touch both's keys.
    pub(crate) fn same_server(&self, other: &Connection) -> bool {
        self.place == other.place
    }

    /// The bound on each call.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A handle to send commands on (cheap: the connection is multiplexed).
    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
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
            Err(_) => Err(self.timed_out(what)),
        }
    }

    /// The error of a call `what` that ran out of its timeout.
    pub(crate) fn timed_out(&self, what: &'static str) -> StoreError {
        StoreError::new(format!("Redis {what} timed out after {:?}", self.timeout))
    }

    /// Runs one script call within the timeout; `what` names it in the error.
    pub(crate) async fn run_script<T: FromRedisValue>(
        &self,
        what: &'static str,
        call: &ScriptCall<'_>,
    ) -> Result<T, StoreError> {
        let mut handle = self.handle();
        self.bounded(what, call.invoke(&mut handle)).await
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A connection to one server, or to a cluster, behind one type: every command of
/// the store and the queue goes through it.
#[derive(Clone)]
pub(crate) enum Handle {
    /// One server (or a primary behind a proxy).
    Single(ConnectionManager),
    /// A Redis Cluster or Valkey cluster, connected on first use.
    Cluster(Arc<LazyCluster>),
}

/// A cluster connection made on first use, as the single-server one is: a receiver
/// can start while the cluster is still coming up. A failed attempt is tried again
/// by the next call.
pub(crate) struct LazyCluster {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

impl LazyCluster {
    async fn connection(&self) -> RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(manager) => manager.req_packed_command(cmd),
            Self::Cluster(cluster) => Box::pin(async move {
                let mut connection = cluster.connection().await?;
                connection.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(manager) => manager.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => Box::pin(async move {
                let mut connection = cluster.connection().await?;
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(manager) => manager.get_db(),
            // A cluster has database 0 only.
            Self::Cluster(_) => 0,
        }
    }
}
