//! A tower [`Layer`](tower_layer::Layer) that receives signed webhooks in front of a
//! handler: it answers the sender fast and processes the event in the background.
//!
//! For each delivery, [`WebhookService`]:
//!
//! 1. refuses any method but `POST` (`405`, `Allow: POST`) before reading anything;
//!    then refuses a `Content-Length` over the limit (`413`) before reading, then buffers
//!    the body, refusing it (`413`) as soon as it crosses the limit, and (`408`) when
//!    it does not arrive within the body timeout;
//! 2. verifies, parses and claims it through the core's
//!    [`Receiver::receive`](hookwise_core::Receiver::receive), answering rejections
//!    with the contract's status and `{"error":"<code>"}`;
//! 3. answers `200` to a new event, a duplicate, or a skipped test event, and `409`
//!    `in_progress` to a redelivery whose first delivery is not yet taken on.
//!
//! Apply it with `route_layer` on the webhook route, so that it wraps that route only;
//! `Router::layer` wraps the router's fallback too, so a signed delivery to an unknown
//! path would be accepted and run the fallback as its handler. Either way, a method
//! other than `POST` is refused with `405` before anything is read.
//!
//! A new event reaches the handler (the inner service) as a request with the
//! original head, the verified raw body, and the
//! [`Delivery`](hookwise_core::Delivery) in its extensions. In [`AckMode::Fast`] (the
//! default) the handler runs after the `200`, in a [`Processor`]: bounded
//! concurrency, a bounded queue (full → `503` + `Retry-After` and the claim released),
//! retries with backoff, dead letters kept for replay ([`DeadLetters`], or your
//! callback), a handler timeout, and a [`ShutdownHandle`] that drains. A run fails on
//! an `Err`, a non-2xx response, a panic, or the timeout. On success the claim is
//! committed. Every claim is held by a [`HeldClaim`], which ends it whatever happens,
//! a dropped request included (its docs have the table of who ends a claim when).
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Router, body::Body, routing::post};
//! use hookwise_core::{Delivery, Hoursmith, MemoryStore, Receiver, hoursmith, sign};
//! use hookwise_tower::WebhookLayer;
//! use tower::ServiceExt;
//!
//! async fn on_event(Extension(delivery): Extension<Delivery<hoursmith::Event>>) {
//!     // Runs in the background, after the sender got its 200.
//!     println!("{} {}", delivery.event().event_type(), delivery.event().id());
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
//! let layer = WebhookLayer::new(receiver);
//! let shutdown = layer.shutdown_handle();
//! let app = Router::new()
//!     .route("/webhooks/hoursmith", post(on_event))
//!     .route_layer(layer);
//!
//! // A signed delivery, as Hoursmith sends it.
//! let body = r#"{"id":"evt_1","type":"client.created","created":1717603200,
//!     "orgId":"o","livemode":true,"data":{"client":{"id":"c_1"}}}"#;
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! let signature = sign::hoursmith(b"whsec_...", now, body.as_bytes());
//! let request = http::Request::post("/webhooks/hoursmith")
//!     .header(signature.name(), signature.value())
//!     .body(Body::from(body))?;
//!
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! shutdown.shutdown(std::time::Duration::from_secs(5)).await; // the handler has run
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
mod claim;
mod dead_letter;
mod durable;
mod intake;
mod layer;
mod processor;
mod retry;
mod service;
mod shutdown;
mod stats;

pub use self::{
    claim::HeldClaim,
    dead_letter::{
        DEFAULT_KEPT_DEAD_LETTERS, DeadLetter, DeadLetterHandler, DeadLetters, LogDeadLetter,
    },
    durable::{
        DurableQueue, HandlerFactory, HandlerJob, HandlerRun, QueueFuture, SharedQueue, Workers,
    },
    intake::Intake,
    layer::{DEFAULT_BODY_TIMEOUT, WebhookLayer},
    processor::{HandlerError, ProcessingConfig, Processor},
    retry::RetryPolicy,
    service::{AckMode, HandlerBody, ResponseBody, ResponseFuture, WebhookService},
    shutdown::{ShutdownHandle, ShutdownReport},
    stats::{Stats, StatsSnapshot},
};
