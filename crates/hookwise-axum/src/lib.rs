//! An axum extractor that receives signed webhooks: `Webhook<Hoursmith>` as a handler
//! argument is a verified, deduped, typed event.
//!
//! The extractor reads its [`WebhookState`] from the router state (`FromRef`), then
//! takes the request through the same [`Intake`](hookwise_tower::Intake) as
//! [`WebhookLayer`](hookwise_tower::WebhookLayer): body limit and timeout, signature
//! over the raw bytes, parse, dedupe claim. Its rejection is the contract's response:
//! a `401`, `400`, `413`, ... for a bad delivery, and a `200` for a duplicate or a
//! skipped test event, so the handler only ever sees new events.
//!
//! The handler owns the dedupe claim it was given, and ends it one of three ways:
//!
//! - [`Webhook::process_in_background`]: answer `200` now and run the work in the
//!   layer's bounded, retrying, draining [`Processor`](hookwise_tower::Processor),
//!   which commits on success and dead-letters after the last attempt. The
//!   recommended way.
//! - [`Webhook::commit`] after processing inline: retries are duplicates from then on.
//! - [`Webhook::release`], or just dropping the `Webhook` (an error returned with `?`,
//!   a panic): the claim is given back, so the sender's retry is processed. Nothing
//!   accepted is lost by forgetting to commit; at worst a redelivery runs again.
//!
//! # Example
//!
//! ```
//! use axum::{Router, extract::FromRef, routing::post};
//! use hookwise_axum::{Webhook, WebhookState};
//! use hookwise_core::{Hoursmith, MemoryStore, Receiver, hoursmith::EventData};
//!
//! #[derive(Clone, FromRef)]
//! struct AppState {
//!     hoursmith: WebhookState<Hoursmith>,
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
//! let state = AppState { hoursmith: WebhookState::new(receiver) };
//! let app: Router = Router::new()
//!     .route("/webhooks/hoursmith", post(on_hoursmith))
//!     .with_state(state);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod extract;
mod rejection;
mod state;

pub use self::{
    extract::{DurableWebhook, Webhook},
    rejection::WebhookRejection,
    state::{DurableWebhookState, WebhookState},
};
