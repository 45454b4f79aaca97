//! An axum extractor that receives signed webhooks: `Webhook<Hoursmith>` as a handler
//! argument is a verified, deduped, typed event.
//!
//! The extractor takes the [`Webhooks`](hookwise_runtime::Webhooks) runtime from the
//! router state (`FromRef`), built once at start-up, and takes the request through
//! it, exactly as `hookwise_tower`'s layer does: body limit and timeout, signature
//! over the raw bytes, parse, dedupe claim. It builds nothing of its own. Its
//! rejection is the contract's response: a `401`, `400`, `413`, ... for a bad
//! delivery, and a `200` for a duplicate or a skipped test event, so the handler
//! only ever sees new events.
//!
//! The handler owns the dedupe claim it was given, and ends it one of four ways:
//!
//! - [`Webhook::process_in_background`]: answer `200` now and run a closure in the
//!   runtime's bounded, retrying, draining processor, which commits on success and
//!   dead-letters after the last attempt. The simplest way, in memory.
//! - [`Webhook::hand_to`]: the same with a handler registered by name when the
//!   runtime was built; with a durable queue, the event is stored and `200` answered
//!   once it is, and any instance runs it. The way for several instances.
//! - [`Webhook::commit`] after processing inline: retries are duplicates from then on.
//! - [`Webhook::release`], or just dropping the `Webhook` (an error returned with `?`,
//!   a panic): the claim is given back, so the sender's retry is processed. Nothing
//!   accepted is lost by forgetting to commit; at worst a redelivery runs again.
//!
//! # Example
//!
//! ```
//! use axum::{Router, extract::FromRef, routing::post};
//! use hookwise_axum::Webhook;
//! use hookwise_core::{Hoursmith, MemoryStore, Receiver, hoursmith::EventData};
//! use hookwise_runtime::Webhooks;
//!
//! #[derive(Clone, FromRef)]
//! struct AppState {
//!     hoursmith: Webhooks<Hoursmith>,
//! }
//!
//! async fn on_hoursmith(webhook: Webhook<Hoursmith>) -> axum::response::Response {
//!     webhook
//!         .process_in_background(|delivery| async move {
//!             match delivery.event().data() {
//!                 EventData::InvoicePaid { invoice, .. } => println!("paid: {:?}", invoice.id()),
//!                 other => println!("{} ignored", delivery.event().event_type()),
//!             }
//!             Ok::<_, std::convert::Infallible>(())
//!         })
//!         .await
//! }
//!
//! # fn main() -> Result<(), hookwise_core::ConfigError> {
//! let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
//! let state = AppState { hoursmith: Webhooks::new(receiver) };
//! let app: Router = Router::new()
//!     .route("/webhooks/hoursmith", post(on_hoursmith))
//!     .with_state(state);
//! # Ok(()) }
//! ```
//!
//! With a durable queue, register the handler by name and hand events to it:
//!
//! ```no_run
//! # use axum::{Router, routing::post};
//! # use hookwise_axum::Webhook;
//! # use hookwise_core::{Hoursmith, MemoryStore, Receiver};
//! # use hookwise_runtime::{DurableQueue, Webhooks};
//! async fn on_hoursmith(webhook: Webhook<Hoursmith>) -> axum::response::Response {
//!     webhook.hand_to("invoices").await
//! }
//!
//! # async fn demo(queue: impl DurableQueue<Hoursmith>) -> Result<(), Box<dyn std::error::Error>> {
//! let webhooks = Webhooks::builder(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?)
//!     .durable_queue(queue)
//!     .handler("invoices", |delivery| async move {
//!         println!("{}", delivery.event().event_type());
//!         Ok::<_, std::convert::Infallible>(())
//!     })
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/webhooks/hoursmith", post(on_hoursmith))
//!     .with_state(webhooks);
//! # Ok(()) }
//! ```
//!
//! # Dead letters
//!
//! [`dead_letter_router`] lists, shows, replays and deletes a runtime's dead letters
//! (in memory, or a durable queue's) over HTTP. It has no credentials and no route of
//! its own: nest it behind your authentication.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod extract;
mod rejection;

pub use self::{admin::dead_letter_router, extract::Webhook, rejection::WebhookRejection};
