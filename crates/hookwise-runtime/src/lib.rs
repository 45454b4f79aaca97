//! The receiving runtime of hookwise: everything between "this delivery is verified
//! and claimed" and "its handler has run", built once and shared by every adapter.
//!
//! [`Webhooks`] is the one object that does work. Build it at start-up with
//! [`Webhooks::new`] or [`Webhooks::builder`], which checks every setting once; it
//! owns:
//!
//! - the core [`Receiver`](hookwise_core::Receiver) (verification, parsing, dedupe),
//!   with its store's type erased, so `Webhooks<Hoursmith>` names the provider only;
//! - the bounded background processor: a bounded number of events run at once and a
//!   bounded number wait (full → `503` + `Retry-After`, the claim released), retried
//!   with backoff ([`RetryPolicy`]), cancelled after the handler timeout, and
//!   dead-lettered after the last attempt ([`DeadLetters`], or your callback);
//! - the handlers registered by name ([`Handler`]), and with a
//!   [`DurableQueue`] the readers that run stored deliveries, started once per
//!   handler when the runtime is built, keyed by the handler's name (a queue's
//!   workers acknowledge processed entries in batches through an [`AckBatcher`], and
//!   its endpoint path may store deliveries in batches through a [`BatchWriter`]);
//! - the [`Stats`] and the [`ShutdownHandle`] that drains it all.
//!
//! Adapters only wrap it: `hookwise-tower`'s `WebhookLayer` and `hookwise-axum`'s
//! `Webhook` extractor each turn a request into [`Webhooks::receive`], then
//! [`Webhooks::process`] or [`Webhooks::hand_to`], and an answer; `WebhookEndpoint`,
//! whose handler is named up front, into [`Webhooks::deliver_to`], which lets a
//! durable queue on the store's server claim, store and commit a new event in one
//! step ([`DurableQueue::enqueue_if_new`]), and give it back to run here, from the
//! delivery in hand ([`IfNew::StoredToRunHere`]). Every claim the runtime takes is held by
//! a [`HeldClaim`], which ends it whatever happens (its docs have the table of who
//! ends a claim when).
//!
//! # Example
//!
//! ```
//! use hookwise_core::{Hoursmith, MemoryStore, Receiver};
//! use hookwise_runtime::{Received, Webhooks};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
//! let webhooks = Webhooks::builder(receiver)
//!     .handler("clients", |delivery| async move {
//!         println!("{} {}", delivery.event().event_type(), delivery.event().id());
//!         Ok::<_, std::convert::Infallible>(())
//!     })
//!     .build()?;
//!
//! // What an adapter does with one request:
//! # let body = r#"{"id":"evt_1","type":"client.created","created":1717603200,
//! #     "orgId":"o","livemode":true,"data":{"client":{"id":"c_1"}}}"#;
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! # let signature = hookwise_core::sign::hoursmith(b"whsec_...", now, body.as_bytes());
//! # let request = http::Request::post("/webhooks/hoursmith")
//! #     .header(signature.name(), signature.value())
//! #     .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
//! let (head, body) = request.into_parts();
//! match webhooks.receive(&head, body).await {
//!     Ok(Received::New { delivery, claim }) => {
//!         webhooks.hand_to("clients", &head, delivery, claim).await?; // then 200
//!     }
//!     Ok(_acknowledged) => { /* 200: a duplicate or a skipped test event */ }
//!     Err(rejection) => { /* webhooks.reject(&rejection) is the answer */ }
//! }
//! let report = webhooks.shutdown(std::time::Duration::from_secs(5)).await;
//! assert_eq!(report.unfinished, 0); // the handler has run
//! # Ok(()) }
//! ```
//!
//! # Observability
//!
//! Each delivery runs in a `webhook` span ([`Webhooks::span`]) with `provider`,
//! `event_id`, `event_type` and `outcome` fields; no secret, signature or body is
//! logged. [`Stats`] gives the counters in code.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod ack_batcher;
mod attempt;
mod batch_writer;
mod body;
mod builder;
mod claim;
mod dead_letter;
mod durable;
mod handler;
mod intake;
mod ordering;
mod processor;
mod retry;
mod shutdown;
mod stats;
mod webhooks;

pub use self::{
    ack_batcher::{AckBatcher, DEFAULT_ACK_BATCH},
    batch_writer::{BATCH_WRITER_WAITING, BatchWriter, Batching},
    builder::{DEFAULT_BODY_TIMEOUT, WebhooksBuilder},
    claim::HeldClaim,
    dead_letter::{
        DEFAULT_KEPT_DEAD_LETTERS, DeadLetter, DeadLetterError, DeadLetterFilter, DeadLetterFuture,
        DeadLetterHandler, DeadLetterPage, DeadLetterRecord, DeadLetterStore, DeadLetters,
        LogDeadLetter, ReplayReport,
    },
    durable::{
        DurableQueue, Enqueue, IfNew, QueueFuture, RunHere, RunResult, Stored, StoredHead,
        Unclaimed, Workers,
    },
    handler::{BoxError, Handler, HandlerError, HandlerJob, HandlerRun},
    ordering::{DEFAULT_REMEMBERED_RESOURCES, Ordering},
    processor::{DEFAULT_CONCURRENCY, DEFAULT_HANDLER_TIMEOUT, DEFAULT_QUEUE_CAPACITY, Processor},
    retry::RetryPolicy,
    shutdown::{ShutdownHandle, ShutdownReport},
    stats::{Stats, StatsSnapshot},
    webhooks::{AckMode, Received, Webhooks},
};
