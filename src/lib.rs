//! hookwise: receive signed webhooks correctly, fast, and without losing an event.
//!
//! This is the facade crate. It re-exports [`hookwise_core`] at its root
//! (verification, typed events, dedupe, the [`Receiver`] entry point) and the
//! adapters as modules behind features:
//!
//! | feature | module | what |
//! | --- | --- | --- |
//! | `tower` (default) | [`tower`] | `WebhookLayer`, for tower, axum and hyper stacks |
//! | `axum` (default) | [`axum`] | the `Webhook` extractor and its `WebhookState` |
//! | `redis` | `redis` | `RedisStore` and `RedisQueue`, for several instances |
//!
//! See the README for the map and [`hookwise_core`] for the core's documentation.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use hookwise_core::*;

/// The tower layer: answer fast, process in the background ([`hookwise_tower`]).
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use hookwise_tower as tower;

/// The axum extractor: `Webhook<Hoursmith>` as a handler argument ([`hookwise_axum`]).
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use hookwise_axum as axum;

/// Redis: a dedupe store and a durable queue shared by instances ([`hookwise_redis`]).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use hookwise_redis as redis;
