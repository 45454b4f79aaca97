//! Tower adapters for the hookwise runtime: a [`Layer`](tower_layer::Layer) that
//! receives signed webhooks in front of a handler service, and a
//! [`Service`](tower_service::Service) that hands them to a named handler.
//!
//! Both only wrap a [`Webhooks`](hookwise_runtime::Webhooks) runtime built once at
//! start-up (its processor, retries, dead letters, durable queue, stats and
//! shutdown); making services from them starts nothing.
//!
//! For each delivery, [`WebhookService`] and [`WebhookEndpoint`]:
//!
//! 1. refuse any method but `POST` (`405`, `Allow: POST`) before reading anything;
//!    then refuse a `Content-Length` over the limit (`413`) before reading, then
//!    buffer the body, refusing it (`413`) as soon as it crosses the limit, and
//!    (`408`) when it does not arrive within the body timeout;
//! 2. verify, parse and claim it ([`Webhooks::receive`](hookwise_runtime::Webhooks::receive)),
//!    answering rejections with the contract's status and `{"error":"<code>"}`;
//! 3. answer `200` to a new event once it is taken on, to a duplicate, or to a
//!    skipped test event, and `409` `in_progress` to a redelivery whose first
//!    delivery is not yet taken on.
//!
//! | adapter | the handler | durable queue |
//! | --- | --- | --- |
//! | [`WebhookLayer`] → [`WebhookService`] | the wrapped service, called with the original head, the verified body and the [`Delivery`](hookwise_core::Delivery) in its extensions | refused: the wrapped service lives in this process only |
//! | [`WebhookEndpoint`] | the handler registered under a name with [`WebhooksBuilder::handler`](hookwise_runtime::WebhooksBuilder::handler) | yes: stored under the name, run by any instance |
//!
//! Apply the layer with `route_layer` on the webhook route, so that it wraps that
//! route only; `Router::layer` wraps the router's fallback too, so a signed delivery
//! to an unknown path would be accepted and run the fallback as its handler.
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Router, body::Body, routing::post};
//! use hookwise_core::{Delivery, Hoursmith, MemoryStore, Receiver, hoursmith, sign};
//! use hookwise_runtime::Webhooks;
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
//! // Built once, at start-up.
//! let webhooks = Webhooks::new(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?);
//! let app = Router::new()
//!     .route("/webhooks/hoursmith", post(on_event))
//!     .route_layer(WebhookLayer::new(&webhooks)?);
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
//! webhooks.shutdown(std::time::Duration::from_secs(5)).await; // the handler has run
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod endpoint;
mod future;
mod layer;
mod service;

pub use self::{
    endpoint::WebhookEndpoint,
    future::ResponseFuture,
    layer::WebhookLayer,
    service::{HandlerBody, ResponseBody, WebhookService},
};
