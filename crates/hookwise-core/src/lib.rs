//! The framework-agnostic core of hookwise: verify, parse and dedupe webhook deliveries.
//!
//! A delivery goes through the contract in one call, [`Receiver::receive`]:
//!
//! 1. size limit ([`Receiver::check_content_length`] before reading, then the limit
//!    on the buffered body),
//! 2. signature over the raw bytes, in constant time, under any of the configured
//!    [`Secrets`] ([`Provider::verify`]),
//! 3. parse into the provider's typed event ([`Provider::parse`]),
//! 4. dedupe claim ([`DedupeStore::claim`]),
//!
//! and ends as an [`Outcome`] (answered `200`) or a [`Rejection`] (its status and
//! stable error code). The adapters, `hookwise-tower` and `hookwise-axum`, do only
//! the HTTP around this call.
//!
//! # The map
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`receiver`] | [`Receiver`], the entry point; [`Outcome`], [`Delivery`] |
//! | [`provider`] | the [`Provider`] trait: a sender's scheme, envelope, dedupe key |
//! | [`hoursmith`], [`mojave`], [`stripe`], [`github`], [`standard_webhooks`] | the built-in providers and their typed events |
//! | [`timestamped`] | the `t=...,v1=...` signature scheme Hoursmith and Stripe share |
//! | [`secret`] | [`Secrets`]: rotation, HMAC-SHA256, the constant-time compare |
//! | [`dedupe`] | the [`DedupeStore`] trait and the in-memory [`MemoryStore`] |
//! | [`error`] | [`Rejection`] (status + code) and [`ConfigError`] |
//! | [`diagnosis`] | [`Diagnosis`]: why a signature did not match, for logs and the CLI |
//! | [`snapshot`] | [`Snapshot`]: a resource inside an event's data, as raw JSON |
//! | [`ordering`] | [`OrderKey`](ordering::OrderKey): the resource an event is about and its time, for per-resource ordering |
//! | [`sign`] | signing deliveries like the providers do, for tests and tools |
//! | [`clock`] | [`Clock`]: where "now" comes from, and [`ManualClock`] for tests |
//! | [`tenant`] | [`Tenants`](tenant::Tenants): each delivery verified with its tenant's secrets, looked up and cached |
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::HeaderMap;
//! use hookwise_core::{Hoursmith, MemoryStore, Outcome, Receiver, hoursmith::EventData};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
//!
//! # let body = Bytes::from_static(br#"{"id":"e1","type":"invoice.paid","created":1,
//! #   "orgId":"o1","livemode":true,"data":{"invoice":{"id":"inv_1"},"payment":{"id":"p1"}}}"#);
//! # let mut headers = HeaderMap::new();
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! # hookwise_core::sign::hoursmith(b"whsec_...", now, &body).insert_into(&mut headers);
//! // `headers` and `body` come from your HTTP server.
//! match receiver.receive(&headers, body).await {
//!     Ok(Outcome::Accepted { delivery, claim }) => {
//!         if let EventData::InvoicePaid { invoice, .. } = delivery.event().data() {
//!             println!("invoice {:?} paid", invoice.id());
//!         }
//!         receiver.commit(&claim).await?;
//!         // answer 200
//!     }
//!     Ok(_duplicate_or_skipped) => { /* answer 200 */ }
//!     Err(rejection) => {
//!         // answer rejection.status() with rejection.body()
//!         # panic!("{rejection}");
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
pub mod dedupe;
pub mod diagnosis;
pub mod error;
pub mod github;
mod hex;
pub mod hoursmith;
pub mod mojave;
pub mod ordering;
pub mod provider;
pub mod receiver;
pub mod secret;
pub mod sign;
pub mod snapshot;
pub mod standard_webhooks;
pub mod stripe;
pub mod tenant;
pub mod timestamped;

pub use self::{
    clock::{Clock, ManualClock, SystemClock},
    dedupe::{
        AnyStore, Claim, ClaimOutcome, DedupeKey, DedupeStats, DedupeStore, Duplicate, MemoryStore,
        StoreError,
    },
    diagnosis::Diagnosis,
    error::{ConfigError, Rejection, RejectionKind},
    github::GitHub,
    hoursmith::Hoursmith,
    mojave::Mojave,
    provider::{Provider, Verified},
    receiver::{DEFAULT_BODY_LIMIT, Delivery, Outcome, OutcomeKind, Receiver},
    secret::Secrets,
    snapshot::Snapshot,
    standard_webhooks::StandardWebhooks,
    stripe::Stripe,
};
