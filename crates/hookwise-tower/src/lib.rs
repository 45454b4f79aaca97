//! A tower [`Layer`](tower_layer::Layer) that receives signed webhooks in front of a
//! handler: it answers the sender fast and processes the event in the background.
//!
//! For each delivery, [`WebhookService`]:
//!
//! 1. refuses a `Content-Length` over the limit (`413`) before reading, then buffers
//!    the body, refusing it (`413`) as soon as it crosses the limit, and (`408`) when
//!    it does not arrive within the body timeout;
//! 2. verifies, parses and claims it through the core's
//!    [`Receiver::receive`](hookwise_core::Receiver::receive), answering rejections
//!    with the contract's status and `{"error":"<code>"}`;
//! 3. answers `200` to a new event, a duplicate, or a skipped test event.
//!
//! A new event reaches the handler (the inner service) as a request with the
//! original head, the verified raw body, and the
//! [`Delivery`](hookwise_core::Delivery) in its extensions. In [`AckMode::Fast`] (the
//! default) the handler runs after the `200`, in a [`Processor`]: bounded
//! concurrency, a bounded queue (full → `503` + `Retry-After` and the claim released),
//! retries with backoff, a dead-letter callback, a handler timeout, and a
//! [`ShutdownHandle`] that drains. A run fails on an `Err`, a non-2xx response, a
//! panic, or the timeout. On success the claim is committed.
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Router, routing::post};
//! use hookwise_core::{Delivery, Hoursmith, MemoryStore, Receiver, hoursmith};
//! use hookwise_tower::WebhookLayer;
//!
//! async fn on_event(Extension(delivery): Extension<Delivery<hoursmith::Event>>) {
//!     // Runs in the background, after the sender got its 200.
//!     println!("{} {}", delivery.event().event_type(), delivery.event().id());
//! }
//!
//! # fn main() -> Result<(), hookwise_core::ConfigError> {
//! let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
//! let app: Router = Router::new()
//!     .route("/webhooks/hoursmith", post(on_event))
//!     .layer(WebhookLayer::new(receiver));
//! # Ok(()) }
//! ```
//!
//! # Observability
//!
//! Each delivery runs in a `webhook` span with `provider`, `event_id`, `event_type`
//! and `outcome` fields; no secret, signature or body is logged. [`Stats`] gives the
//! counters in code.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod intake;
mod layer;
mod processor;
mod retry;
mod service;
mod shutdown;
mod stats;

pub use self::{
    intake::Intake,
    layer::{DEFAULT_BODY_TIMEOUT, WebhookLayer},
    processor::{
        DeadLetter, DeadLetterHandler, HandlerError, LogDeadLetter, ProcessingConfig, Processor,
    },
    retry::RetryPolicy,
    service::{AckMode, HandlerBody, ResponseBody, ResponseFuture, WebhookService},
    shutdown::{ShutdownHandle, ShutdownReport},
    stats::{Stats, StatsSnapshot},
};
