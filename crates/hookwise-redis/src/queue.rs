//! [`RedisQueue`]: a durable queue for ack-fast mode, on Redis Streams.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use hookwise_core::{AnyStore, ConfigError, Provider, Receiver, StoreError};
use hookwise_runtime::{
    DeadLetterStore, DurableQueue, Enqueue, IfNew, QueueFuture, Stored, Unclaimed, Workers,
};
use redis::{AsyncCommands, Script, ToRedisArgs, streams::StreamId};
use tokio::sync::Semaphore;

use crate::{
    DEFAULT_NAMESPACE, RedisStore,
    acks::{self, ACK_DONE},
    batch::{self, Pending, Writers, Written},
    connection::Connection,
    dead_letters::RedisDeadLetters,
    entry::{EntryFields, delivery_fields, entry_fields},
    local::Workshops,
    reader::{BURY, Reader, Workshop, keep_fresh},
    script_call::ScriptCall,
    store::{STORE_AND_COMMIT, duplicate_of},
};

/// The consumer group every instance's workers read through.
pub(crate) const GROUP: &str = "hookwise";

/// The default idle time after which another worker takes over an entry whose
/// worker stopped (crashed, killed) before acknowledging it.
pub const DEFAULT_CLAIM_IDLE: Duration = Duration::from_secs(60);

/// The default pause between reads of an empty stream.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The default limit on how many times one entry is delivered to a worker before it
/// is dead-lettered unrun: an entry whose worker died this many times in a row.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// The default bound on a handler's backlog: the entries in its stream, unread and
/// running.
pub const DEFAULT_MAX_BACKLOG: u64 = 100_000;

/// Appends an entry (`ARGV[2..]`: field, value, ...) to the stream `KEYS[1]` unless
/// it already holds `ARGV[1]` entries: the new entry's id, or nil when full. One
/// script, so that concurrent appends never go beyond the bound together. Done
/// entries are deleted, so the stream's length is its backlog.
const APPEND: &str = r"
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  return false
end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
";

/// Moves the dead letter `ARGV[2]` of `KEYS[2]` back to the stream `KEYS[1]` (fields
/// in `ARGV[3..]`) in one step, unless that stream's backlog holds `ARGV[1]` entries
/// (`full`) or the dead letter is gone (`gone`: replayed meanwhile).
const REPLAY: &str = r"
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  return 'full'
end
if redis.call('XDEL', KEYS[2], ARGV[2]) == 0 then
  return 'gone'
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
return 'moved'
";

/// The shortest claim idle time: a third of it is the heartbeat of a running entry.
const MINIMUM_CLAIM_IDLE: Duration = Duration::from_millis(10);

/// A [`DurableQueue`] on Redis Streams, for a runtime's ack-fast mode:
/// `Webhooks::builder(receiver).durable_queue(RedisQueue::new(url)?).handler("invoices", f)`.
/// The runtime starts one reader per registered handler when it is built, keyed by
/// the handler's name, never again.
///
/// - Before the `200`, the accepted delivery (request head, raw body, verification
///   facts, receipt time) is appended with `XADD` to `<ns>:queue:{<provider>}:<handler>`,
///   where `handler` is the name of the handler that runs it. When the receiver's
///   store is a [`RedisStore`] on the same URL, the `XADD` and the event's `done`
///   mark are one script: there is no moment when the delivery is stored and the
///   event not marked done (a request cut there would have its retry stored and run
///   again), nor the other way round. Through a `WebhookEndpoint`
///   ([`Webhooks::deliver_to`](hookwise_runtime::Webhooks::deliver_to)) that script
///   also looks the event's key up, so a delivery takes one round trip and no claim
///   is made ([`DurableQueue::enqueue_if_new`]), and the deliveries of a handler
///   that arrive while its scripts run share the next one (up to 16, two scripts at
///   once; each delivery stored or not on its own): Redis's cost is mostly the
///   call's, not the delivery's. Through the axum extractor, which claims the event
///   before the handler is named, it commits the claim instead.
///   Run Redis with `appendonly yes` so that what was acknowledged survives a Redis
///   restart.
/// - Workers in every instance read through one consumer group, run the named
///   handler with the runtime's retries, timeout and dead-letter callback, and `XACK`
///   the entry when done: one task per stream acknowledges (and deletes), in one
///   script, every entry processed while its last script was on its way. An entry
///   that fails every attempt is moved to the dead-letter stream
///   `<ns>:dead:{<provider>}` with its last error, where
///   [`dead_letters`](Self::dead_letters) lists it and [`replay`](Self::replay) puts
///   it back.
/// - Through an endpoint, a delivery runs on the instance that stored it when one of
///   its handler's running slots is free there: the store script also claims the new
///   entry for this instance's consumer, and the handler runs from the delivery the
///   request holds, with nothing read back or parsed again
///   ([`run_where_stored`](Self::run_where_stored), on by default).
/// - A running entry's idle time is kept fresh (a heartbeat: one `XCLAIM` of all of
///   a handler's running entries every third of the claim idle time; an entry leaves
///   it on every way out of its run, a panic included); an entry left pending by a worker that died is
///   taken over with `XAUTOCLAIM` once idle for the claim idle time (60 s by default),
///   so it is processed by another worker. Delivery is at least once. Each reader
///   pages through the pending entries with the cursor `XAUTOCLAIM` returns, so an
///   abandoned entry behind many running ones is reached too.
/// - An entry that keeps killing its worker (a crash, an out-of-memory kill) would be
///   taken over and run forever: one delivered more than
///   [`max_deliveries`](Self::max_deliveries) times (5 by default; `XPENDING`'s
///   delivery count) is moved to the dead-letter stream unrun, with the error
///   `delivered N times without finishing (its worker died each time)`, and
///   acknowledged. The dead-letter callback is not called for it.
/// - A panicking dead-letter callback is caught and logged: the entry still reaches
///   the dead-letter stream and is acknowledged.
/// - Each handler's stream is bounded: an event that would take its backlog (the
///   entries unread or running; done ones are deleted) beyond
///   [`max_backlog`](Self::max_backlog) (100 000 by default) is not stored, and
///   `enqueue` fails with a "full" error ([`StoreError::is_full`]). The runtime
///   answers `503` `queue_full` with `Retry-After` and releases the claim (through
///   an endpoint, none was made), so the sender retries later. The check and the
///   `XADD` are one script, so concurrent deliveries cannot overshoot; nothing is
///   ever trimmed (`MAXLEN`) to make room, which could drop events already
///   acknowledged.
/// - An entry that can no longer be read (a missing or garbled field) or whose body
///   no longer parses is moved to the dead-letter stream unrun, with the reason, and
///   acknowledged; it never loops. The dead-letter callback is not called for it.
/// - Lost connections are remade by themselves; workers keep retrying Redis until
///   the runtime's shutdown handle closes. Every call is bounded by a timeout.
#[derive(Clone)]
pub struct RedisQueue {
    pub(crate) connection: Connection,
    namespace: Arc<str>,
    pub(crate) consumer: Arc<str>,
    pub(crate) claim_idle: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) max_deliveries: u32,
    pub(crate) max_backlog: u64,
    run_where_stored: bool,
    /// Shared by the clones a worker takes for each entry it runs.
    pub(crate) scripts: Arc<Scripts>,
    /// This instance's workers, by stream: a delivery stored through an endpoint
    /// runs here when one of its handler's slots is free ([`crate::local`]).
    workshops: Arc<Workshops>,
    /// The writers of deliveries stored through endpoints, in batches
    /// ([`crate::batch`]).
    pub(crate) writers: Arc<Writers>,
}

/// The queue's scripts, each with its SHA-1 for `EVALSHA`.
pub(crate) struct Scripts {
    append: Script,
    store_and_commit: Script,
    pub(crate) store_if_new: Script,
    pub(crate) ack_done: Script,
    pub(crate) bury: Script,
    replay: Script,
}

impl RedisQueue {
    /// A queue on the Redis at `url`. Does not connect yet. Must be called within a
    /// tokio runtime, which runs the connection.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::on(Connection::open(url, "RedisQueue::new")?)
    }

    /// A queue on the Redis Cluster (or Valkey cluster) that the seed `nodes` belong
    /// to; see [`RedisStore::cluster`]. With the store given the same `nodes`, a
    /// delivery is stored and its claim committed in one script, on the node of
    /// the provider's slot.
    pub fn cluster(nodes: &[&str]) -> Result<Self, StoreError> {
        Self::on(Connection::open_cluster(nodes, "RedisQueue::cluster")?)
    }

    fn on(connection: Connection) -> Result<Self, StoreError> {
        Ok(Self {
            connection,
            namespace: DEFAULT_NAMESPACE.into(),
            consumer: default_consumer_name().into(),
            claim_idle: DEFAULT_CLAIM_IDLE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            max_backlog: DEFAULT_MAX_BACKLOG,
            run_where_stored: true,
            scripts: Arc::new(Scripts {
                append: Script::new(APPEND),
                store_and_commit: Script::new(STORE_AND_COMMIT),
                store_if_new: Script::new(batch::STORE_IF_NEW),
                ack_done: Script::new(ACK_DONE),
                bury: Script::new(BURY),
                replay: Script::new(REPLAY),
            }),
            workshops: Arc::default(),
            writers: Arc::default(),
        })
    }

    /// Sets the prefix of every key (default `hookwise`); give the store the same
    /// one. No braces: in a cluster, braces choose a key's slot.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into().into();
        self
    }

    /// Names this instance's workers in the consumer group (default: host, process
    /// id and a random suffix). Must differ between instances.
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into().into();
        self
    }

    /// Sets how long an entry may sit unacknowledged and untouched before another
    /// worker takes it over (default 60 s; at least 10 ms). Running entries are kept
    /// fresh every third of it, so this only delays recovery from a worker that died.
    ///
    /// Keep it well above the [`timeout`](Self::timeout): a heartbeat that takes
    /// longer than the idle time lets a worker take over an entry that is still
    /// running, which then runs twice and counts one delivery more.
    pub fn claim_idle(mut self, idle: Duration) -> Result<Self, ConfigError> {
        if idle.is_zero() {
            return Err(ConfigError::Zero("claim idle time"));
        }
        if idle < MINIMUM_CLAIM_IDLE {
            return Err(ConfigError::TooShort {
                what: "claim idle time",
                given: idle,
                minimum: MINIMUM_CLAIM_IDLE,
            });
        }
        self.claim_idle = idle;
        Ok(self)
    }

    /// Sets how many times one entry may be delivered to a worker (default 5). An
    /// entry taken over from a dead worker after that many deliveries is moved to the
    /// dead-letter stream without running, and acknowledged: it is taken to be what
    /// kills its workers. Retries within a delivery (the runtime's retry policy) do
    /// not count; only deliveries that never finished do.
    pub fn max_deliveries(mut self, deliveries: u32) -> Result<Self, ConfigError> {
        if deliveries == 0 {
            return Err(ConfigError::Zero("max deliveries"));
        }
        self.max_deliveries = deliveries;
        Ok(self)
    }

    /// Whether a delivery stored through an endpoint runs on the instance that
    /// stored it, when one of its handler's running slots is free there (default
    /// `true`). The store script then also claims the new entry for this instance's
    /// consumer, and the handler runs from the delivery the request holds: no read
    /// of the stream, no decoding, no second parse, and no wait for a reader's next
    /// poll. That takes about a sixth of this process's CPU per delivery off
    /// (`BENCHMARKS.md`, section 17), and costs Redis about what a reader's read of
    /// the entry costs (section 21). The entry is pending in this consumer as one a
    /// reader read: kept fresh while it runs, acknowledged or dead-lettered after,
    /// taken over after the claim idle time if this process dies. A request cut
    /// while its batch's store script runs gives the entry back to the readers once
    /// the script has answered.
    #[must_use]
    pub fn run_where_stored(mut self, run_where_stored: bool) -> Self {
        self.run_where_stored = run_where_stored;
        self
    }

    /// Sets the bound on each handler's backlog (default 100 000 entries): the entries
    /// in its stream, unread and running. An event that would go beyond it is not
    /// stored: `enqueue` fails, so the runtime answers `503` with `Retry-After` and
    /// releases the claim, and the sender retries once the workers have caught up.
    /// Nothing stored is ever trimmed to make room. [`replay`](Self::replay) is bound
    /// by it too.
    pub fn max_backlog(mut self, entries: u64) -> Result<Self, ConfigError> {
        if entries == 0 {
            return Err(ConfigError::Zero("max backlog"));
        }
        self.max_backlog = entries;
        Ok(self)
    }

    /// Sets the pause between reads of an empty stream (default 100 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Result<Self, ConfigError> {
        if interval.is_zero() {
            return Err(ConfigError::Zero("poll interval"));
        }
        self.poll_interval = interval;
        Ok(self)
    }

    /// Sets the bound on each Redis call (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.connection.set_timeout(timeout)?;
        Ok(self)
    }

    /// `<ns>:queue:{<provider>}:<handler>`: the braces put a provider's keys in one
    /// cluster slot, with its dedupe keys (see [`RedisStore::cluster`]).
    fn stream(&self, provider: &str, handler: &str) -> String {
        format!("{}:queue:{{{provider}}}:{handler}", self.namespace)
    }

    pub(crate) fn dead_stream(&self, provider: &str) -> String {
        format!("{}:dead:{{{provider}}}", self.namespace)
    }

    /// Appends an entry of `fields` to `stream`, unless its backlog is full: then
    /// nothing is stored and the error says so.
    async fn append(&self, stream: &str, fields: &EntryFields) -> Result<(), StoreError> {
        let mut call = ScriptCall::with_room(&self.scripts.append, &[stream], room(fields));
        call.arg(self.max_backlog);
        write_fields(&mut call, fields);
        let id: Option<String> = self.connection.run_script("XADD", &call).await?;
        match id {
            Some(_) => Ok(()),
            None => Err(self.full(stream)),
        }
    }

    /// [`append`](Self::append) and commit the claim whose Redis key, token and
    /// retention are `commit`, in one script (`STORE_AND_COMMIT`): both or neither.
    async fn append_committing(
        &self,
        stream: &str,
        fields: &EntryFields,
        (claim_key, token, retention_ms): (String, String, u64),
    ) -> Result<Stored, StoreError> {
        let script = &self.scripts.store_and_commit;
        let answer = self
            .append_scripted(
                script,
                (stream, claim_key),
                &[token, retention_ms.to_string()],
                fields,
            )
            .await?;
        match answer.as_str() {
            "stored" => Ok(Stored::Committed),
            "full" => Err(self.full(stream)),
            _ => Err(StoreError::new(
                "the event's claim no longer holds its key (its lease ran out): nothing \
                 stored; the sender's retry claims it again",
            )),
        }
    }

    /// What the store script's `answer` for a delivery (other than `here:`) says.
    fn if_new(&self, stream: &str, answer: &str) -> Result<IfNew, StoreError> {
        match answer {
            // `here:` is never answered without a consumer.
            "stored" => Ok(IfNew::Stored),
            "full" => Err(self.full(stream)),
            taken => Ok(IfNew::Duplicate(duplicate_of(
                taken.strip_prefix("taken:").unwrap_or(taken),
            ))),
        }
    }

    /// Runs one of the scripts that append to a stream and touch an event's key:
    /// `KEYS` the stream and the key, `ARGV` the backlog's bound, `args`, then the
    /// entry's `fields`; the script's answer.
    async fn append_scripted(
        &self,
        script: &Script,
        (stream, event_key): (&str, String),
        args: &[String],
        fields: &EntryFields,
    ) -> Result<String, StoreError> {
        let mut call = ScriptCall::with_room(script, &[stream, &event_key], room(fields));
        call.arg(self.max_backlog).arg(args);
        write_fields(&mut call, fields);
        self.connection.run_script("XADD", &call).await
    }

    /// The start of an `XCLAIM` of the entries `ids` of `stream` into this
    /// instance's consumer, whatever their idle time; its options follow.
    pub(crate) fn claim_here(&self, stream: &str, ids: impl ToRedisArgs) -> redis::Cmd {
        let mut claim = redis::cmd("XCLAIM");
        claim
            .arg(stream)
            .arg(GROUP)
            .arg(&*self.consumer)
            .arg(0)
            .arg(ids);
        claim
    }

    /// The error of a full backlog.
    fn full(&self, stream: &str) -> StoreError {
        StoreError::full(format!(
            "the durable queue's backlog is full: {stream} holds {} entries \
             (RedisQueue::max_backlog); try again once the workers catch up",
            self.max_backlog
        ))
    }

    /// `provider`'s dead letters (e.g. `"hoursmith"`), oldest first, at most `count`.
    pub async fn dead_letters(
        &self,
        provider: &str,
        count: usize,
    ) -> Result<Vec<StoredDeadLetter>, StoreError> {
        let mut connection = self.connection.handle();
        let stream = self.dead_stream(provider);
        let reply: redis::streams::StreamRangeReply = self
            .connection
            .bounded("XRANGE", connection.xrange_count(&stream, "-", "+", count))
            .await?;
        Ok(reply.ids.iter().map(StoredDeadLetter::from_entry).collect())
    }

    /// Puts a dead letter back in the queue of the handler it came in on, to be
    /// processed again (after fixing what made it fail), and removes it from the
    /// dead-letter stream. `false` when there is no such dead letter. An error, the
    /// dead letter left in place, when that handler's backlog is full
    /// ([`max_backlog`](Self::max_backlog)).
    pub async fn replay(&self, provider: &str, id: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection.handle();
        let dead = self.dead_stream(provider);
        let reply: redis::streams::StreamRangeReply = self
            .connection
            .bounded("XRANGE", connection.xrange_count(&dead, id, id, 1))
            .await?;
        let Some(entry) = reply.ids.first() else {
            return Ok(false);
        };
        let Some(handler) = entry.get::<String>("handler") else {
            return Err(StoreError::new(format!("dead letter {id} has no handler")));
        };
        let stream = self.stream(provider, &handler);
        let mut call = ScriptCall::new(&self.scripts.replay, &[&stream, &dead]);
        call.arg(self.max_backlog).arg(id);
        for (name, value) in delivery_fields(entry) {
            call.arg(name).arg(value);
        }
        let answer: String = self.connection.run_script("replay", &call).await?;
        match answer.as_str() {
            "moved" => Ok(true),
            "full" => Err(self.full(&stream)),
            _ => Ok(false),
        }
    }
}

/// The bytes [`write_fields`] writes.
fn room(fields: &EntryFields) -> usize {
    fields
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum()
}

/// Writes an entry's fields as the script's last arguments: name, value, ...
fn write_fields(call: &mut ScriptCall<'_>, fields: &EntryFields) {
    for (name, value) in fields {
        call.arg(*name).arg(&value[..]);
    }
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("namespace", &self.namespace)
            .field("consumer", &self.consumer)
            .field("claim_idle", &self.claim_idle)
            .field("poll_interval", &self.poll_interval)
            .field("max_deliveries", &self.max_deliveries)
            .field("max_backlog", &self.max_backlog)
            .field("run_where_stored", &self.run_where_stored)
            .field("timeout", &self.connection.timeout())
            .finish_non_exhaustive()
    }
}

/// A dead letter as stored in a dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredDeadLetter {
    /// The stream entry id, for [`RedisQueue::replay`].
    pub id: String,
    /// The event's dedupe key.
    pub key: String,
    /// The last attempt's error.
    pub error: String,
    /// The name of the handler that runs it.
    pub handler: String,
    /// How many attempts were made; for an entry dead-lettered after too many
    /// deliveries ([`RedisQueue::max_deliveries`]), how many deliveries never
    /// finished.
    pub attempts: u32,
}

impl StoredDeadLetter {
    pub(crate) fn from_entry(entry: &StreamId) -> Self {
        Self {
            id: entry.id.clone(),
            key: entry.get("key").unwrap_or_default(),
            error: entry.get("error").unwrap_or_default(),
            handler: entry.get("handler").unwrap_or_default(),
            attempts: entry.get("attempts").unwrap_or_default(),
        }
    }
}

impl<P: Provider> DurableQueue<P> for RedisQueue {
    fn enqueue<'a>(&'a self, entry: Enqueue<'a, P::Event>) -> QueueFuture<'a, Stored> {
        Box::pin(async move {
            let Enqueue {
                handler,
                head,
                delivery,
                claim,
                store,
                ..
            } = entry;
            let fields = entry_fields(head, delivery);
            let stream = self.stream(delivery.provider(), handler);
            // The receiver's store on this server: store and commit in one script.
            let commit = store
                .downcast_ref::<RedisStore>()
                .and_then(|store| store.commit_args(&self.connection, claim));
            match commit {
                Some(commit) => self.append_committing(&stream, &fields, commit).await,
                None => {
                    self.append(&stream, &fields).await?;
                    Ok(Stored::Uncommitted)
                }
            }
        })
    }

    /// With the receiver's [`RedisStore`] on this server: one script looks the
    /// event's key up, appends the entry and marks the key `done`.
    fn enqueue_if_new<'a>(
        &'a self,
        entry: Unclaimed<'a, P::Event>,
    ) -> Option<QueueFuture<'a, IfNew>> {
        let Unclaimed {
            handler,
            head,
            delivery,
            store,
            ..
        } = entry;
        let mark = store
            .downcast_ref::<RedisStore>()?
            .mark_args(&self.connection, delivery.dedupe_key())?;
        Some(Box::pin(async move {
            let (event_key, retention_ms) = mark;
            let fields = entry_fields(head, delivery);
            let stream = self.stream(delivery.provider(), handler);
            let free = self
                .run_where_stored
                .then(|| self.workshops.free_slot(&stream))
                .flatten();
            let pending = |answer| Pending {
                event_key,
                retention_ms,
                fields,
                free,
                answer,
            };
            let writer = self.writers.of(self, &stream);
            // Bounded as a call is: a wait for room among the waiting deliveries,
            // and for the batch's script. Should it run out, the delivery may still
            // be stored: the sender's retry finds it a duplicate.
            let written = tokio::time::timeout(self.connection.timeout(), writer.ask(pending))
                .await
                .map_err(|_| self.connection.timed_out("XADD"))?
                .unwrap_or_else(|| {
                    Err(StoreError::new("the durable queue's writer has stopped"))
                })?;
            match written {
                Written::Here(handover) => Ok(handover
                    .run_here()
                    .map_or(IfNew::Stored, IfNew::StoredToRunHere)),
                Written::Answered(answer) => self.if_new(&stream, &answer),
            }
        }))
    }

    fn start(&self, workers: Workers<P>) {
        let provider = workers.processor.receiver().provider().name();
        let handler = workers.handler.name();
        let shutdown = workers.processor.shutdown_handle().clone();
        let stream: Arc<str> = self.stream(provider, handler).into();
        let workshop = Arc::new(Workshop {
            queue: self.clone(),
            stream: stream.clone(),
            slots: Arc::new(Semaphore::new(workers.processor.concurrency().max(1))),
            running: Mutex::default(),
            acks: acks::start(self.clone(), stream.clone(), &shutdown),
            dead_stream: self.dead_stream(provider).into(),
            handler: handler.into(),
        });
        self.workshops.register(stream, &workshop);
        tokio::spawn(keep_fresh(Arc::downgrade(&workshop), self.claim_idle / 3));
        let reader = Reader {
            workers: Arc::new(workers),
            workshop,
        };
        shutdown.spawn(reader.run());
    }

    /// The provider's dead-letter stream, newest first, ids its entry ids.
    fn dead_letter_store(
        &self,
        receiver: &Arc<Receiver<P, AnyStore>>,
    ) -> Option<Arc<dyn DeadLetterStore>> {
        Some(Arc::new(RedisDeadLetters::new(
            self.clone(),
            receiver.clone(),
        )))
    }
}

/// A consumer name unique to this process.
fn default_consumer_name() -> String {
    use std::hash::{BuildHasher, RandomState};
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let suffix = RandomState::new().hash_one(std::process::id()) & 0xffff_ffff;
    format!("{host}-{}-{suffix:08x}", std::process::id())
}
