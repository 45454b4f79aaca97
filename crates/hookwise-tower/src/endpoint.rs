//! [`WebhookEndpoint`]: a service that hands deliveries to a named handler.

use std::{
    convert::Infallible,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use hookwise_core::{ConfigError, Provider};
use hookwise_runtime::{BoxError, Webhooks};
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::{ResponseBody, ResponseFuture};

/// A [`Service`] that receives deliveries through a [`Webhooks`] runtime and hands
/// each new event to the handler registered under one name
/// ([`WebhooksBuilder::handler`](hookwise_runtime::WebhooksBuilder::handler)).
///
/// It is how a durable runtime is served, since a stored delivery must name a
/// handler every instance has; it works the same in memory. In axum, mount it with
/// `post_service`:
///
/// ```
/// use axum::{Router, routing::post_service};
/// use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// use hookwise_runtime::Webhooks;
/// use hookwise_tower::WebhookEndpoint;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
/// let webhooks = Webhooks::builder(receiver)
///     .handler("invoices", |delivery| async move {
///         println!("{}", delivery.event().event_type());
///         Ok::<_, std::convert::Infallible>(())
///     })
///     .build()?;
/// let app: Router = Router::new()
///     .route("/webhooks/hoursmith", post_service(WebhookEndpoint::new(&webhooks, "invoices")?));
/// # Ok(()) }
/// ```
pub struct WebhookEndpoint<P: Provider> {
    webhooks: Webhooks<P>,
    handler: Arc<str>,
}

impl<P: Provider> WebhookEndpoint<P> {
    /// An endpoint handing new events to the handler registered as `handler`;
    /// refused ([`ConfigError::InvalidName`]) when no handler has that name.
    pub fn new(webhooks: &Webhooks<P>, handler: &str) -> Result<Self, ConfigError> {
        if webhooks.handler(handler).is_none() {
            return Err(ConfigError::InvalidName {
                what: "handler name",
                name: handler.to_owned(),
                reason: "no handler is registered under this name",
            });
        }
        Ok(Self {
            webhooks: webhooks.clone(),
            handler: handler.into(),
        })
    }
}

impl<P: Provider> Clone for WebhookEndpoint<P> {
    fn clone(&self) -> Self {
        Self {
            webhooks: self.webhooks.clone(),
            handler: self.handler.clone(),
        }
    }
}

impl<P: Provider> fmt::Debug for WebhookEndpoint<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("webhooks", &self.webhooks)
            .field("handler", &self.handler)
            .finish()
    }
}

impl<P, ReqBody> Service<Request<ReqBody>> for WebhookEndpoint<P>
where
    P: Provider,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        ResponseFuture::deliver_to(self.webhooks.clone(), self.handler.clone(), parts, body)
    }
}
