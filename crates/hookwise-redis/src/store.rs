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
    script_call::ScriptCall,
};

/// The value of a committed key.
const DONE: &str = "done";

/// The prefix of a provisional claim's value: `pending:<token>`.
const PENDING: &str = "pending:";

/// The prefix of a confirmed claim's value: `claim:<token>`.
const CONFIRMED: &str = "claim:";

/// The shortest lease and retention: Redis counts them in whole milliseconds.
const MINIMUM_TTL: Duration = Duration::from_millis(1);

/// Claims atomically: takes a free key, provisionally, for the lease, or reports the
/// value that holds it.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 'claimed'
end
return redis.call('GET', KEYS[1]) or 'claimed-expired'
";

/// Whether the key `claim_key` holds the claim of token `token`, provisional or
/// confirmed.
macro_rules! holds_token {
    () => {
        "local value = redis.call('GET', claim_key)
local held = value == 'pending:' .. token or value == 'claim:' .. token
"
    };
}

/// The claim's key and token, for `holds_token!`, in the scripts that take them
/// first.
macro_rules! claim_args {
    () => {
        "local claim_key, token = KEYS[1], ARGV[1]
"
    };
}

/// Confirms the claim of token `ARGV[1]` and renews it for `ARGV[2]` ms, only while
/// the key holds it.
const CONFIRM: &str = concat!(
    claim_args!(),
    holds_token!(),
    "if held then
    redis.call('SET', KEYS[1], 'claim:' .. ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"
);

/// Extends the claim of token `ARGV[1]` to `ARGV[2]` ms from now, as it is
/// (provisional or confirmed), only while the key holds it.
const RENEW: &str = concat!(
    claim_args!(),
    holds_token!(),
    "if held then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"
);

/// Deletes the key only while it holds the claim of token `ARGV[1]`, provisional or
/// confirmed.
const RELEASE: &str = concat!(
    claim_args!(),
    holds_token!(),
    "if held then
    return redis.call('DEL', KEYS[1])
end
return 0
"
);

/// Stores a delivery in a durable queue's stream and commits its claim, in one
/// atomic step: while the key `KEYS[2]` holds the claim of token `ARGV[2]` and the
/// stream `KEYS[1]` holds fewer than `ARGV[1]` entries, appends the fields `ARGV[4..]`
/// and sets the key to `done` for `ARGV[3]` ms. Answers `stored`, `full` or `lost`
/// (the claim no longer holds the key).
pub(crate) const STORE_AND_COMMIT: &str = concat!(
    "local claim_key, token = KEYS[2], ARGV[2]
",
    holds_token!(),
    "if not held then
    return 'lost'
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then
    return 'full'
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('SET', KEYS[2], 'done', 'PX', ARGV[3])
return 'stored'
"
);

/// A [`DedupeStore`] on Redis, shared by every instance of a receiver.
///
/// Each event key is one Redis string, `<namespace>:dedupe:{<provider>}:<event key>`
/// (the namespace is `hookwise` by default), whose value says what holds it:
///
/// | value | meaning | a redelivery is |
/// | --- | --- | --- |
/// | `pending:<token>` | claimed, provisional (TTL: the lease) | [`Duplicate::Provisional`]: `409`, the sender comes back |
/// | `claim:<token>` | claimed and confirmed (TTL: the lease) | [`Duplicate::InFlight`]: `200` |
/// | `done` | processed (TTL: the retention) | [`Duplicate::Processed`]: `200` |
///
/// - Claim: `SET <key> pending:<token> NX PX <lease>`, in one script that also
///   reads what holds a taken key, so exactly one of any number of concurrent claims,
///   from any number of instances, wins.
/// - Confirm: a script that, while the key still holds this claim's token (either
///   prefix), sets it to `claim:<token>` with a whole lease from now.
/// - Renew: a script that, while the key still holds this claim's token, extends its
///   TTL to a whole lease from now (`PEXPIRE`), keeping it provisional or confirmed.
/// - Commit: the value becomes `done`, with the retention as its TTL (96 h by
///   default): retries within it are duplicates.
/// - Release: deletes the key only while it still holds this claim's token (a
///   script), so an instance whose lease ran out never frees a newer claim.
/// - Every call is bounded by a timeout (2 s by default); a failure or timeout is a
///   [`StoreError`], which the receiver answers with `503` + `Retry-After`, so the
///   sender retries and nothing is acknowledged that was not stored.
/// - The connection is made on first use and remade by itself after it is lost.
///
/// # A claim whose reply is lost
///
/// A claim can succeed in Redis while its reply misses the timeout (or the caller
/// drops the future first): the caller answers `503`, and the key holds a claim
/// nobody owns. Two things keep that from losing the event:
///
/// - The token is chosen before the call, so when the claim call fails, times out,
///   or is dropped before its reply arrived, the store itself releases that token at
///   once: a best-effort, token-checked `EVAL` of the release script, bounded by the
///   timeout, spawned on the tokio runtime the store was made in. It is sent on the
///   same connection right behind the claim, so Redis runs it after the claim
///   whatever happens to the replies.
/// - Should that release fail too (the connection is gone), the orphan is only
///   provisional: the sender's retry is answered `409` `in_progress`, never `200`, and
///   is processed once the lease runs out.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    namespace: String,
    retention: Duration,
    lease: Duration,
    claim: Script,
    confirm: Script,
    renew: Script,
    release: Script,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://host:port/db`). Does not connect yet:
    /// the first claim does, so a receiver can start while Redis is still coming up.
    ///
    /// Must be called within a tokio runtime, which runs the connection and the
    /// releases of claims whose reply was lost.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::on(Connection::open(url, "RedisStore::new")?)
    }

    /// A store on the Redis Cluster (or Valkey cluster) that the seed `nodes`
    /// (`redis://host:port/` each) belong to. Does not connect yet. Each call goes to
    /// the node holding its key: the keys of one provider share a hash tag
    /// (`<ns>:dedupe:{hoursmith}:<id>`), so they live in one slot with that
    /// provider's queue streams, which the queue's store-and-commit script needs.
    ///
    /// ```no_run
    /// # use hookwise_redis::RedisStore;
    /// # async fn demo() -> Result<(), hookwise_core::StoreError> {
    /// let store = RedisStore::cluster(&["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"])?;
    /// # Ok(()) }
    /// ```
    pub fn cluster(nodes: &[&str]) -> Result<Self, StoreError> {
        Self::on(Connection::open_cluster(nodes, "RedisStore::cluster")?)
    }

    fn on(connection: Connection) -> Result<Self, StoreError> {
        Ok(Self {
            connection,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            retention: DEFAULT_RETENTION,
            lease: DEFAULT_LEASE,
            claim: Script::new(CLAIM),
            confirm: Script::new(CONFIRM),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        })
    }

    /// Sets the prefix of every key (default `hookwise`), e.g. to share one Redis
    /// between applications. Give the queue the same one. No braces: in a cluster,
    /// braces choose a key's slot (see [`cluster`](Self::cluster)).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets how long a processed event is remembered (default 96 h). At least 1 ms:
    /// Redis counts it in milliseconds.
    pub fn retention(mut self, retention: Duration) -> Result<Self, ConfigError> {
        self.retention = whole_millis("dedupe retention", retention)?;
        Ok(self)
    }

    /// Sets how long an unrenewed claim holds its key before it expires (default
    /// 5 min), so a claim of a crashed instance, or one whose reply was lost and
    /// could not be released, frees the event. At least 1 ms.
    ///
    /// Whoever holds a claim renews it well within the lease (the runtime's processor:
    /// every third of it), so keep it well above the [`timeout`](Self::timeout).
    pub fn lease(mut self, lease: Duration) -> Result<Self, ConfigError> {
        self.lease = whole_millis("dedupe lease", lease)?;
        Ok(self)
    }

    /// Sets the bound on each Redis call (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.connection.set_timeout(timeout)?;
        Ok(self)
    }

    /// What a durable queue on the same server needs to commit `claim` in its own
    /// script ([`STORE_AND_COMMIT`]): the claim's Redis key, its token, and the
    /// retention in ms; `None` when `connection` is another server's.
    pub(crate) fn commit_args(
        &self,
        connection: &Connection,
        claim: &Claim,
    ) -> Option<(String, String, u64)> {
        self.connection.same_server(connection).then(|| {
            (
                self.redis_key(claim.key()),
                token_hex(claim.token()),
                millis(self.retention),
            )
        })
    }

    /// What a durable queue on the same server needs to mark `key` processed in its
    /// own script (`batch::STORE_IF_NEW`): the key's Redis key and the retention in ms;
    /// `None` when `connection` is another server's.
    pub(crate) fn mark_args(
        &self,
        connection: &Connection,
        key: &DedupeKey,
    ) -> Option<(String, u64)> {
        self.connection
            .same_server(connection)
            .then(|| (self.redis_key(key), millis(self.retention)))
    }

    /// The Redis key of a dedupe key.
    fn redis_key(&self, key: &DedupeKey) -> String {
        format!(
            "{}:dedupe:{{{}}}:{}",
            self.namespace,
            key.provider(),
            key.id()
        )
    }

    /// Runs one of the token-checked scripts on `claim`'s key; `true` when it acted.
    async fn on_held(
        &self,
        what: &'static str,
        script: &Script,
        claim: &Claim,
    ) -> Result<bool, StoreError> {
        let mut call = ScriptCall::new(script, &[self.redis_key(claim.key())]);
        call.arg(token_hex(claim.token())).arg(millis(self.lease));
        let acted: i64 = self.connection.run_script(what, &call).await?;
        Ok(acted == 1)
    }
}

impl DedupeStore for RedisStore {
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        let token = new_token();
        let redis_key = self.redis_key(key);
        // Armed until the reply is in: an error, a timeout or a drop before then
        // releases whatever this call may have claimed.
        let mut unanswered = UnansweredClaim {
            connection: self.connection.clone(),
            key: redis_key.clone(),
            token: token_hex(token),
            armed: true,
        };
        let mut call = ScriptCall::new(&self.claim, &[redis_key]);
        call.arg(format!("{PENDING}{}", unanswered.token))
            .arg(millis(self.lease));
        let answer: String = self.connection.run_script("claim", &call).await?;
        unanswered.disarm();
        Ok(match answer.as_str() {
            "claimed" => ClaimOutcome::Claimed(Claim::new(key.clone(), token)),
            held => ClaimOutcome::Duplicate(duplicate_of(held)),
        })
    }

    async fn confirm(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.on_held("confirm", &self.confirm, claim).await
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.on_held("renew", &self.renew, claim).await
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
        let mut call = ScriptCall::new(&self.release, &[self.redis_key(claim.key())]);
        call.arg(token_hex(claim.token()));
        self.connection
            .run_script::<i64>("release", &call)
            .await
            .map(drop)
    }

    fn retention_period(&self) -> Duration {
        self.retention
    }

    fn lease_period(&self) -> Duration {
        self.lease
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

/// A claim call in progress. Unless [`disarm`](Self::disarm)ed once its reply is in,
/// dropping it (the call failed, timed out, or its future was dropped) releases the
/// token in the background: the claim may have been made although nobody learnt of
/// it.
struct UnansweredClaim {
    connection: Connection,
    key: String,
    token: String,
    armed: bool,
}

impl UnansweredClaim {
    /// The reply is in: the caller knows what it holds.
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for UnansweredClaim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let connection = self.connection.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        self.connection.spawn(async move {
            let mut handle = connection.handle();
            // `EVAL`, not `EVALSHA`: one round trip that acts on arrival, with no
            // `NOSCRIPT` reply to wait for over a connection whose replies are late.
            let mut release = redis::cmd("EVAL");
            release.arg(RELEASE).arg(1).arg(&key).arg(&token);
            match connection
                .bounded("release", release.query_async::<i64>(&mut handle))
                .await
            {
                Ok(released) => {
                    tracing::debug!(%key, released, "released a claim whose reply was lost");
                }
                Err(error) => tracing::warn!(
                    %error,
                    %key,
                    "cannot release a claim whose reply was lost; it stays provisional \
                     (redeliveries are answered 409) until its lease runs out"
                ),
            }
        });
    }
}

/// The state of an event whose key holds `value`.
pub(crate) fn duplicate_of(value: &str) -> Duplicate {
    match value {
        DONE => Duplicate::Processed,
        held if held.starts_with(CONFIRMED) => Duplicate::InFlight,
        // `pending:<token>`; or anything this version did not write: not
        // acknowledged, so the sender comes back.
        _ => Duplicate::Provisional,
    }
}

/// A duration Redis can hold as a TTL: at least 1 ms.
fn whole_millis(what: &'static str, given: Duration) -> Result<Duration, ConfigError> {
    if given.is_zero() {
        return Err(ConfigError::Zero(what));
    }
    if given < MINIMUM_TTL {
        return Err(ConfigError::TooShort {
            what,
            given,
            minimum: MINIMUM_TTL,
        });
    }
    Ok(given)
}

/// A token as it appears in stored values.
fn token_hex(token: u64) -> String {
    format!("{token:016x}")
}

/// A token unique among the claims of any instance: a per-process random base (from
/// the standard library's randomly keyed hasher) plus a counter.
fn new_token() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| RandomState::new().hash_one(std::process::id()));
    base.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
}
