//! Redis for hookwise: a dedupe store shared by every instance of a receiver.
//!
//! Behind a load balancer, each replica of a receiver with its own
//! [`MemoryStore`](hookwise_core::MemoryStore) would process the same event once per
//! replica. [`RedisStore`] keeps the claims in one Redis, so the replicas dedupe as one.
//!
//! It is built on the `redis` crate's tokio [`ConnectionManager`](redis::aio::ConnectionManager):
//! the widely used client, pure Rust, which reconnects by itself after a connection
//! is lost, and is cheap to clone and share across tasks.
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

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connection;
mod queue;
mod store;

use std::time::Duration;

pub use self::{
    queue::{DEFAULT_CLAIM_IDLE, DEFAULT_POLL_INTERVAL, RedisQueue, StoredDeadLetter},
    store::RedisStore,
};

/// The default prefix of every key this crate writes.
pub const DEFAULT_NAMESPACE: &str = "hookwise";

/// The default bound on each Redis call, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
