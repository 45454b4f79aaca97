//! Redis for hookwise: a dedupe store and a durable queue shared by every instance
//! of a receiver.
//!
//! Behind a load balancer, each replica of a receiver with its own
//! [`MemoryStore`](hookwise_core::MemoryStore) would process the same event once per
//! replica. [`RedisStore`] keeps the claims in one Redis, so the replicas dedupe as one.
//! [`RedisQueue`] keeps accepted events in Redis Streams until a worker of any
//! replica has run them, so a `200` survives the process that gave it.
//!
//! It is built on the `redis` crate's tokio [`ConnectionManager`](redis::aio::ConnectionManager):
//! the widely used client, pure Rust, which reconnects by itself after a connection
//! is lost, and is cheap to clone and share across tasks; and on its cluster client
//! for a Redis Cluster or a Valkey cluster ([`RedisStore::cluster`],
//! [`RedisQueue::cluster`]). Every Redis call is bounded by a timeout (2 s by
//! default).
//!
//! Every key of one provider carries the provider as a hash tag
//! (`hookwise:dedupe:{hoursmith}:<id>`, `hookwise:queue:{hoursmith}:<handler>`,
//! `hookwise:dead:{hoursmith}`), so a script that touches a dedupe key and a stream
//! runs on one cluster node.
//!
//! # The dedupe store
//!
//! [`RedisStore`] follows the [`DedupeStore`](hookwise_core::DedupeStore) protocol:
//! a claim is provisional (`pending:<token>`) until confirmed (`claim:<token>`),
//! then committed (`done`). A redelivery of a provisional claim is answered `409`
//! `in_progress`, so the sender comes back; of a confirmed or committed one, `200`.
//!
//! A claim can be made in Redis while its reply is lost (a timeout, a dropped
//! request). The caller answers `503`, and the sender retries: that retry must not
//! meet a `200` for an event nobody took on. So the store chooses the claim's token
//! before the call and, when the call fails, times out or is dropped, releases that
//! token itself at once (best effort, token-checked, bounded). Should the release
//! fail too, the orphaned claim is only provisional: retries get `409` until its
//! lease runs out, then the event is processed. See
//! [`RedisStore`](RedisStore#a-claim-whose-reply-is-lost).
//!
//! ```no_run
//! use hookwise_core::{Hoursmith, Receiver};
//! use hookwise_redis::RedisStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::new("redis://127.0.0.1:6379/")?.namespace("billing-hooks");
//! let receiver = Receiver::new(Hoursmith::new("whsec_...")?, store)?;
//! # Ok(()) }
//! ```
//!
//! # The durable queue
//!
//! [`RedisQueue`] is a [`DurableQueue`](hookwise_runtime::DurableQueue) for
//! `WebhooksBuilder::durable_queue`: entries are stored with `XADD` before the `200`,
//! under the name of the handler that runs them (with the receiver's [`RedisStore`]
//! on the same URL, in one script with the event's `done` mark; through a
//! `WebhookEndpoint`, that script is the delivery's only round trip), run by a
//! consumer group's workers
//! (one reader per handler, started when the runtime is built) with the runtime's
//! retries, acknowledged when
//! done, and moved to a dead-letter stream when every attempt failed (a panicking
//! dead-letter callback is caught; the entry is dead-lettered all the same). An
//! entry whose worker died is taken over after an idle time; one that killed its
//! worker [`max_deliveries`](RedisQueue::max_deliveries) times is dead-lettered
//! without running again, and so is one that no longer reads or parses. Each handler's
//! backlog is bounded ([`max_backlog`](RedisQueue::max_backlog), 100 000 entries by
//! default): beyond it, deliveries are answered `503` with `Retry-After` and their
//! claims released (through an endpoint none was made), so senders retry later;
//! nothing stored is trimmed.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod acks;
mod batch;
mod connection;
mod dead_letters;
mod entry;
mod local;
mod queue;
mod reader;
mod script_call;
mod store;

use std::time::Duration;

pub use self::{
    queue::{
        DEFAULT_CLAIM_IDLE, DEFAULT_MAX_BACKLOG, DEFAULT_MAX_DELIVERIES, DEFAULT_POLL_INTERVAL,
        RedisQueue, StoredDeadLetter,
    },
    store::RedisStore,
};

/// The default prefix of every key this crate writes.
pub const DEFAULT_NAMESPACE: &str = "hookwise";

/// The default bound on each Redis call, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
