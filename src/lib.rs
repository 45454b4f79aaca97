//! hookwise: receive signed webhooks correctly, fast, and without losing an event.
//!
//! This is the facade crate. It re-exports [`hookwise_core`] at its root
//! (verification, typed events, dedupe, the [`Receiver`] entry point), the receiving
//! runtime's main types ([`Webhooks`], built once at start-up), and the adapters as
//! modules behind features:
//!
//! | feature | module | what |
//! | --- | --- | --- |
//! | (core) | the root | [`Receiver`], providers, typed events, [`DedupeStore`], [`MemoryStore`] |
//! | `runtime` (with any adapter) | [`runtime`] | [`Webhooks`]: background processing, retries, dead letters, durable queues, per-resource [`Ordering`], shutdown, stats |
//! | `tower` (default) | [`tower`] | `WebhookLayer` (wraps a handler service) and `WebhookEndpoint` (a named handler) |
//! | `axum` (default) | [`axum`] | the `Webhook` extractor, taking `Webhooks` from the router state; `dead_letter_router`, to list, replay and delete dead letters behind your auth |
//! | `redis` | `redis` | `RedisStore` and `RedisQueue`, for several instances |
//! | `postgres` | `postgres` | `PgStore`, `Inbox` and `PgQueue`: dedupe, exactly-once effects and a durable queue on Postgres |
//! | `metrics` | (none) | the runtime's counters through the `metrics` facade, under Prometheus names (listed on `runtime::Stats`) |
//!
//! The runtime is the one object that does work; the adapters only wrap it:
//!
//! ```
//! use axum::{Router, routing::post};
//! use hookwise::{Hoursmith, MemoryStore, Receiver, Webhooks, axum::Webhook};
//!
//! async fn on_hoursmith(webhook: Webhook<Hoursmith>) -> axum::response::Response {
//!     webhook.hand_to("invoices").await
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let webhooks = Webhooks::builder(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?)
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
//! See the README for the whole map and [`hookwise_core`] for the core's documentation.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use hookwise_core::*;

/// The receiving runtime: built once, shared by every adapter ([`hookwise_runtime`]).
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub use hookwise_runtime as runtime;

#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub use hookwise_runtime::{AckMode, Ordering, RetryPolicy, Webhooks, WebhooksBuilder};

/// The tower layer and endpoint: wrap the runtime for tower, axum and hyper stacks
/// ([`hookwise_tower`]).
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use hookwise_tower as tower;

/// The axum extractor: `Webhook<Hoursmith>` as a handler argument ([`hookwise_axum`]).
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use hookwise_axum as axum;

/// Postgres: a dedupe store shared by instances ([`hookwise_postgres`]).
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use hookwise_postgres as postgres;

/// Redis: a dedupe store and a durable queue shared by instances ([`hookwise_redis`]).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use hookwise_redis as redis;
