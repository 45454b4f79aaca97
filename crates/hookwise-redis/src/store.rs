//! [`RedisStore`]: the dedupe store on Redis.

use std::{
    fmt,
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hookwise_core::{
    Claim, ClaimOutcome, ConfigError, DedupeKey, DedupeStore, Duplicate, StoreError,
    dedupe::{DEFAULT_LEASE, DEFAULT_RETENTION},
};
use redis::{AsyncCommands, Script};

use crate::{
    DEFAULT_NAMESPACE,
    connection::{Connection, millis},
};

/// The value of a committed key.
const DONE: &str = "done";

/// Claims atomically: takes a free key for the lease, or reports what holds it.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 'claimed'
end
return redis.call('GET', KEYS[1]) or 'claimed-expired'
";

/// Deletes the key only while it still holds this claim's token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`DedupeStore`] on Redis, shared by every instance of a receiver.
///
/// - Claim: `SET <ns>:dedupe:<key> claim:<token> NX PX <lease>`, in one script that
///   also reads what holds a taken key, so exactly one of any number of concurrent
///   claims, from any number of instances, wins.
/// - Commit: the value becomes `done`, with the retention as its TTL (96 h by
///   default): retries within it are duplicates.
/// - Release: deletes the key only while it still holds this claim's token (a
///   script), so an instance whose lease ran out never frees a newer claim.
/// - Every call is bounded by a timeout (2 s by default); a failure or timeout is a
///   [`StoreError`], which the receiver answers with `503` + `Retry-After`, so the
///   sender retries and nothing is acknowledged that was not stored.
/// - The connection is made on first use and remade by itself after it is lost.
///
/// Keys are `<namespace>:dedupe:<provider>:<event key>`; the namespace is
/// `hookwise` by default.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    namespace: String,
    retention: Duration,
    lease: Duration,
    claim: Script,
    release: Script,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://host:port/db`). Does not connect yet:
    /// the first claim does, so a receiver can start while Redis is still coming up.
    ///
    /// Must be called within a tokio runtime, which runs the connection.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            connection: Connection::open(url, "RedisStore::new")?,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            retention: DEFAULT_RETENTION,
            lease: DEFAULT_LEASE,
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
        })
    }

    /// Sets the prefix of every key (default `hookwise`), e.g. to share one Redis
    /// between applications.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets how long a processed event is remembered (default 96 h).
    pub fn retention(mut self, retention: Duration) -> Result<Self, ConfigError> {
        if millis(retention) == 0 {
            return Err(ConfigError::Zero("dedupe retention"));
        }
        self.retention = retention;
        Ok(self)
    }

    /// Sets how long an in-flight claim holds its key before it expires (default
    /// 5 min), so a claim of a crashed instance frees the event.
    pub fn lease(mut self, lease: Duration) -> Result<Self, ConfigError> {
        if millis(lease) == 0 {
            return Err(ConfigError::Zero("dedupe lease"));
        }
        self.lease = lease;
        Ok(self)
    }

    /// Sets the bound on each Redis call (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.connection.set_timeout(timeout)?;
        Ok(self)
    }

    /// The Redis key of a dedupe key.
    fn redis_key(&self, key: &DedupeKey) -> String {
        format!("{}:dedupe:{}", self.namespace, key.as_str())
    }
}

impl DedupeStore for RedisStore {
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        let token = new_token();
        let value = format!("claim:{token:016x}");
        let mut connection = self.connection.handle();
        let mut invocation = self.claim.key(self.redis_key(key));
        invocation.arg(&value).arg(millis(self.lease));
        let answer: String = self
            .connection
            .bounded("claim", invocation.invoke_async(&mut connection))
            .await?;
        Ok(match answer.as_str() {
            "claimed" => ClaimOutcome::Claimed(Claim::new(key.clone(), token)),
            DONE => ClaimOutcome::Duplicate(Duplicate::Processed),
            // Held by another claim (or expired between the two commands of the
            // script, which Redis runs atomically, so only in theory).
            _ => ClaimOutcome::Duplicate(Duplicate::InFlight),
        })
    }

    async fn commit(&self, claim: &Claim) -> Result<(), StoreError> {
        let mut connection = self.connection.handle();
        let key = self.redis_key(claim.key());
        let ttl = millis(self.retention);
        self.connection
            .bounded("commit", connection.pset_ex::<_, _, ()>(key, DONE, ttl))
            .await
    }

    async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        let mut connection = self.connection.handle();
        let mut invocation = self.release.key(self.redis_key(claim.key()));
        invocation.arg(format!("claim:{:016x}", claim.token()));
        self.connection
            .bounded("release", invocation.invoke_async::<i64>(&mut connection))
            .await
            .map(drop)
    }

    fn retention_period(&self) -> Duration {
        self.retention
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace)
            .field("retention", &self.retention)
            .field("lease", &self.lease)
            .field("timeout", &self.connection.timeout())
            .finish_non_exhaustive()
    }
}

/// A token unique among the claims of any instance: a per-process random base (from
/// the standard library's randomly keyed hasher) plus a counter.
fn new_token() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| RandomState::new().hash_one(std::process::id()));
    base.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
}
