//! [`RedisQueue`]: a durable queue for ack-fast mode, on Redis Streams.

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use hookwise_core::{DedupeStore, Delivery, Provider, StoreError, Verified};
use hookwise_tower::{DurableQueue, QueueFuture, Workers};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, request::Parts};
use redis::{
    AsyncCommands, Value,
    streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions},
};
use tokio::sync::Semaphore;

use crate::{
    DEFAULT_NAMESPACE,
    connection::{Connection, millis},
};

/// The consumer group every instance's workers read through.
const GROUP: &str = "hookwise";

/// The default idle time after which another worker takes over an entry whose
/// worker stopped (crashed, killed) before acknowledging it.
pub const DEFAULT_CLAIM_IDLE: Duration = Duration::from_secs(60);

/// The default pause between reads of an empty stream.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A durable queue for [`WebhookLayer`](hookwise_tower::WebhookLayer)'s ack-fast
/// mode, on Redis Streams: `WebhookLayer::durable_queue(RedisQueue::new(url)?)`.
///
/// - Before the `200`, the accepted delivery (request head, raw body, verification
///   facts, receipt time) is appended with `XADD` to `<ns>:queue:<provider>:<route>`,
///   where `route` names the handler to run it (see
///   [`DurableQueue`](hookwise_tower::DurableQueue)). Run Redis with `appendonly yes` so that what
///   was acknowledged survives a Redis restart.
/// - Workers in every instance read through one consumer group, run the route's
///   handler with the layer's retries, timeout and dead-letter callback, and `XACK`
///   the entry when done. An entry that fails every attempt is moved to the
///   dead-letter stream `<ns>:dead:<provider>` with its last error, where
///   [`dead_letters`](Self::dead_letters) lists it and [`replay`](Self::replay) puts it
///   back.
/// - A running entry's idle time is kept fresh; an entry left pending by a worker that
///   died is taken over with `XAUTOCLAIM` once idle for the claim idle time (60 s by
///   default), so it is processed by another worker. Delivery is at least once.
/// - Lost connections are remade by themselves; workers keep retrying Redis until
///   the layer's shutdown handle closes. Every call is bounded by a timeout.
#[derive(Clone)]
pub struct RedisQueue {
    connection: Connection,
    namespace: String,
    consumer: String,
    claim_idle: Duration,
    poll_interval: Duration,
}

impl RedisQueue {
    /// A queue on the Redis at `url`. Does not connect yet. Must be called within a
    /// tokio runtime, which runs the connection.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            connection: Connection::open(url, "RedisQueue::new")?,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            consumer: default_consumer_name(),
            claim_idle: DEFAULT_CLAIM_IDLE,
            poll_interval: DEFAULT_POLL_INTERVAL,
        })
    }

    /// Sets the prefix of every key (default `hookwise`).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Names this instance's workers in the consumer group (default: host, process
    /// id and a random suffix). Must differ between instances.
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// Sets how long an entry may sit unacknowledged and untouched before another
    /// worker takes it over (default 60 s). Running entries are kept fresh, so this
    /// only delays recovery from a worker that died.
    pub fn claim_idle(mut self, idle: Duration) -> Result<Self, hookwise_core::ConfigError> {
        if millis(idle) < 10 {
            return Err(hookwise_core::ConfigError::Zero(
                "claim idle time (in 10 ms)",
            ));
        }
        self.claim_idle = idle;
        Ok(self)
    }

    /// Sets the pause between reads of an empty stream (default 100 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Result<Self, hookwise_core::ConfigError> {
        if interval.is_zero() {
            return Err(hookwise_core::ConfigError::Zero("poll interval"));
        }
        self.poll_interval = interval;
        Ok(self)
    }

    /// Sets the bound on each Redis call (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, hookwise_core::ConfigError> {
        self.connection.set_timeout(timeout)?;
        Ok(self)
    }

    fn stream(&self, provider: &str, route: &str) -> String {
        format!("{}:queue:{provider}:{route}", self.namespace)
    }

    fn dead_stream(&self, provider: &str) -> String {
        format!("{}:dead:{provider}", self.namespace)
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

    /// Puts a dead letter back in the queue of the route it came in on, to be
    /// processed again (after fixing what made it fail), and removes it from the
    /// dead-letter stream. `false` when there is no such dead letter.
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
        let Some(route) = entry.get::<String>("route") else {
            return Err(StoreError::new(format!("dead letter {id} has no route")));
        };
        let fields = delivery_fields(entry);
        let stream = self.stream(provider, &route);
        self.connection
            .bounded(
                "XADD",
                connection.xadd::<_, _, _, _, String>(&stream, "*", &fields),
            )
            .await?;
        self.connection
            .bounded("XDEL", connection.xdel::<_, _, i64>(&dead, &[id]))
            .await?;
        Ok(true)
    }
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("namespace", &self.namespace)
            .field("consumer", &self.consumer)
            .field("claim_idle", &self.claim_idle)
            .field("poll_interval", &self.poll_interval)
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
    /// The route it came in on: the handler that runs it.
    pub route: String,
    /// How many attempts were made.
    pub attempts: u32,
}

impl StoredDeadLetter {
    fn from_entry(entry: &StreamId) -> Self {
        Self {
            id: entry.id.clone(),
            key: entry.get("key").unwrap_or_default(),
            error: entry.get("error").unwrap_or_default(),
            route: entry.get("route").unwrap_or_default(),
            attempts: entry.get("attempts").unwrap_or_default(),
        }
    }
}

/// The fields of a queued delivery.
const ENTRY_FIELDS: [&str; 8] = [
    "key",
    "method",
    "uri",
    "headers",
    "body",
    "secret",
    "signed_at",
    "received_ms",
];

/// The fields of a stored delivery, copied from an entry (to dead-letter or replay it).
fn delivery_fields(entry: &StreamId) -> Vec<(String, Vec<u8>)> {
    ENTRY_FIELDS
        .iter()
        .filter_map(|name| entry.get::<Vec<u8>>(name).map(|v| ((*name).to_owned(), v)))
        .collect()
}

/// Encodes headers as `name: value\r\n` lines: header values never hold CR or LF.
fn encode_headers(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn decode_headers(bytes: &[u8]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|b| *b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = HeaderValue::from_bytes(line[colon + 1..].strip_prefix(b" ")?).ok()?;
        headers.append(name, value);
    }
    Some(headers)
}

/// A queued delivery read back: the request head and what restores the delivery.
struct Stored {
    head: Parts,
    body: bytes::Bytes,
    verified: Verified,
    received_at: Duration,
}

impl Stored {
    fn decode(entry: &StreamId) -> Option<Self> {
        let method = Method::from_str(&entry.get::<String>("method")?).ok()?;
        let uri = Uri::from_str(&entry.get::<String>("uri")?).ok()?;
        let headers = decode_headers(&entry.get::<Vec<u8>>("headers")?)?;
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let (head, ()) = request.into_parts();
        let mut verified = Verified::new(entry.get("secret")?);
        if let Some(t) = entry
            .get::<String>("signed_at")
            .and_then(|t| t.parse().ok())
        {
            verified = verified.signed_at(t);
        }
        Some(Self {
            head,
            body: bytes::Bytes::from(entry.get::<Vec<u8>>("body")?),
            verified,
            received_at: Duration::from_millis(entry.get("received_ms")?),
        })
    }
}

impl<P: Provider, S: DedupeStore> DurableQueue<P, S> for RedisQueue {
    fn enqueue<'a>(
        &'a self,
        route: &'a str,
        head: &'a Parts,
        delivery: &'a Delivery<P::Event>,
    ) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            let verified = delivery.verified();
            let signed_at = verified
                .signed_timestamp()
                .map(|t| t.to_string())
                .unwrap_or_default();
            let fields: [(&str, Vec<u8>); 8] = [
                ("key", delivery.dedupe_key().as_str().as_bytes().to_vec()),
                ("method", head.method.as_str().as_bytes().to_vec()),
                ("uri", head.uri.to_string().into_bytes()),
                ("headers", encode_headers(&head.headers)),
                ("body", delivery.raw_body().to_vec()),
                ("secret", verified.secret_index().to_string().into_bytes()),
                ("signed_at", signed_at.into_bytes()),
                (
                    "received_ms",
                    millis(delivery.received_at()).to_string().into_bytes(),
                ),
            ];
            let stream = self.stream(delivery.provider(), route);
            let mut connection = self.connection.handle();
            self.connection
                .bounded(
                    "XADD",
                    connection.xadd::<_, _, _, _, String>(&stream, "*", &fields),
                )
                .await
                .map(drop)
        })
    }

    fn start(&self, route: &str, workers: Workers<P, S>) {
        let provider = workers.processor.receiver().provider().name();
        let reader = Reader {
            queue: self.clone(),
            stream: self.stream(provider, route),
            dead_stream: self.dead_stream(provider),
            route: route.to_owned(),
            workers: Arc::new(workers),
        };
        let shutdown = reader.workers.processor.shutdown_handle().clone();
        shutdown.spawn(reader.run());
    }
}

/// Reads one route's stream and runs its entries, at most `concurrency` at once.
struct Reader<P: Provider, S> {
    queue: RedisQueue,
    stream: String,
    dead_stream: String,
    route: String,
    workers: Arc<Workers<P, S>>,
}

impl<P: Provider, S: DedupeStore> Reader<P, S> {
    async fn run(self) {
        let shutdown = self.workers.processor.shutdown_handle().clone();
        let slots = Arc::new(Semaphore::new(
            self.workers.processor.config().concurrency.max(1),
        ));
        let mut group_ready = false;
        let mut backoff = self.queue.poll_interval;
        while !shutdown.is_closed() {
            if !group_ready {
                group_ready = self.create_group().await;
            }
            let free = slots.available_permits();
            let read = if !group_ready || free == 0 {
                Ok(Vec::new())
            } else {
                self.read(free).await
            };
            match read {
                Ok(entries) if entries.is_empty() => {
                    backoff = self.queue.poll_interval;
                    tokio::time::sleep(self.queue.poll_interval).await;
                }
                Ok(entries) => {
                    backoff = self.queue.poll_interval;
                    for entry in entries {
                        let Ok(slot) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let run = self.run_entry(entry);
                        shutdown.spawn(async move {
                            run.await;
                            drop(slot);
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, stream = %self.stream, ?backoff, "durable queue read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    // A restarted Redis may have lost the group: create it again.
                    group_ready = false;
                }
            }
        }
    }

    /// Creates the consumer group (and the stream) unless it exists.
    async fn create_group(&self) -> bool {
        let mut connection = self.queue.connection.handle();
        let created: Result<(), StoreError> = self
            .queue
            .connection
            .bounded(
                "XGROUP CREATE",
                connection.xgroup_create_mkstream(&self.stream, GROUP, "0"),
            )
            .await;
        match created {
            Ok(()) => true,
            Err(error) if format!("{error:?}").contains("BUSYGROUP") => true,
            Err(error) => {
                tracing::warn!(%error, stream = %self.stream, "cannot create the consumer group yet");
                false
            }
        }
    }

    /// Entries abandoned by a dead worker first, then new ones.
    async fn read(&self, count: usize) -> Result<Vec<StreamId>, StoreError> {
        let queue = &self.queue;
        let mut connection = queue.connection.handle();
        let abandoned: redis::streams::StreamAutoClaimReply = queue
            .connection
            .bounded(
                "XAUTOCLAIM",
                connection.xautoclaim_options(
                    &self.stream,
                    GROUP,
                    &queue.consumer,
                    millis(queue.claim_idle),
                    "0-0",
                    StreamAutoClaimOptions::default().count(count),
                ),
            )
            .await?;
        if !abandoned.claimed.is_empty() {
            return Ok(abandoned.claimed);
        }
        let options = StreamReadOptions::default()
            .group(GROUP, &queue.consumer)
            .count(count);
        let fresh: Option<redis::streams::StreamReadReply> = queue
            .connection
            .bounded(
                "XREADGROUP",
                connection.xread_options(&[&self.stream], &[">"], &options),
            )
            .await?;
        Ok(fresh
            .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
            .unwrap_or_default())
    }

    /// Runs one entry to its end: processed, or dead-lettered; then acknowledges it.
    fn run_entry(&self, entry: StreamId) -> impl std::future::Future<Output = ()> + Send + 'static {
        let queue = self.queue.clone();
        let stream = self.stream.clone();
        let dead_stream = self.dead_stream.clone();
        let route = self.route.clone();
        let workers = self.workers.clone();
        async move {
            let heartbeat =
                tokio::spawn(keep_fresh(queue.clone(), stream.clone(), entry.id.clone()));
            let outcome = run_stored(&workers, &entry).await;
            heartbeat.abort();
            if let Err((error, attempts)) = outcome {
                let mut fields = delivery_fields(&entry);
                fields.push(("error".to_owned(), error.into_bytes()));
                fields.push(("attempts".to_owned(), attempts.to_string().into_bytes()));
                fields.push(("route".to_owned(), route.into_bytes()));
                let mut connection = queue.connection.handle();
                if let Err(error) = queue
                    .connection
                    .bounded(
                        "XADD",
                        connection.xadd::<_, _, _, _, String>(&dead_stream, "*", &fields),
                    )
                    .await
                {
                    // Not acknowledged: the entry is run again after the idle time.
                    tracing::error!(%error, id = %entry.id, "cannot store a dead letter; the entry stays pending");
                    return;
                }
            }
            let mut connection = queue.connection.handle();
            let acked = queue
                .connection
                .bounded(
                    "XACK",
                    connection.xack::<_, _, _, i64>(&stream, GROUP, &[&entry.id]),
                )
                .await;
            let deleted = queue
                .connection
                .bounded("XDEL", connection.xdel::<_, _, i64>(&stream, &[&entry.id]))
                .await;
            if let Err(error) = acked.and(deleted) {
                tracing::warn!(%error, id = %entry.id, "cannot acknowledge an entry; it may run again");
            }
        }
    }
}

/// Runs a stored entry through the processor; `Err` carries the dead letter's error
/// and attempts after the dead-letter callback had it.
async fn run_stored<P: Provider, S: DedupeStore>(
    workers: &Workers<P, S>,
    entry: &StreamId,
) -> Result<(), (String, u32)> {
    let Some(stored) = Stored::decode(entry) else {
        tracing::error!(id = %entry.id, "unreadable durable queue entry; dead-lettered");
        return Err(("unreadable queue entry".to_owned(), 0));
    };
    let processor = &workers.processor;
    let delivery = match processor.receiver().restore(
        &stored.head.headers,
        stored.body,
        stored.received_at,
        stored.verified,
    ) {
        Ok(delivery) => delivery,
        Err(rejection) => {
            tracing::error!(%rejection, id = %entry.id, "a queued delivery no longer parses; dead-lettered");
            return Err((rejection.to_string(), 0));
        }
    };
    match processor
        .process(delivery, (workers.handler)(stored.head))
        .await
    {
        Ok(()) => Ok(()),
        Err(letter) => {
            let failure = (letter.error.to_string(), letter.attempts);
            processor.dead_letter(letter);
            Err(failure)
        }
    }
}

/// Keeps a running entry's idle time low, so no other worker takes it over.
async fn keep_fresh(queue: RedisQueue, stream: String, id: String) {
    let every = queue.claim_idle / 3;
    loop {
        tokio::time::sleep(every).await;
        let mut connection = queue.connection.handle();
        let touched: Result<Value, StoreError> = queue
            .connection
            .bounded(
                "XCLAIM",
                redis::cmd("XCLAIM")
                    .arg(&stream)
                    .arg(GROUP)
                    .arg(&queue.consumer)
                    .arg(0)
                    .arg(&id)
                    .arg("JUSTID")
                    .query_async(&mut connection),
            )
            .await;
        if let Err(error) = touched {
            tracing::debug!(%error, %id, "cannot refresh a running entry");
        }
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
