//! [`WebhookLayer`]: wraps a handler service in the receiving runtime.

use std::fmt;

use hookwise_core::{ConfigError, Provider};
use hookwise_runtime::Webhooks;
use tower_layer::Layer;

use crate::WebhookService;

/// A [`Layer`] that receives webhook deliveries in front of a handler service, through
/// a [`Webhooks`] runtime built beforehand.
///
/// It only wraps: [`Layer::layer`] starts nothing and allocates little, so applying
/// it to many routes, or axum calling it once per connection, is harmless; every
/// service shares the one runtime (its processor, [`Stats`](hookwise_runtime::Stats),
/// dead letters and shutdown). See the [crate docs](crate) for an example.
#[must_use]
pub struct WebhookLayer<P: Provider> {
    webhooks: Webhooks<P>,
}

impl<P: Provider> WebhookLayer<P> {
    /// A layer handing new events to the wrapped service, through `webhooks`.
    ///
    /// Refused ([`ConfigError::Conflict`]) when `webhooks` has a durable queue: the
    /// wrapped service is a handler of this process only, which no other instance
    /// could run from the queue. Serve a durable runtime's named handlers with
    /// [`WebhookEndpoint`](crate::WebhookEndpoint).
    pub fn new(webhooks: &Webhooks<P>) -> Result<Self, ConfigError> {
        if webhooks.is_durable() {
            return Err(ConfigError::Conflict(
                "a layer's inner service runs in this process only, but this runtime keeps \
                 accepted events in a durable queue: serve its named handlers with \
                 WebhookEndpoint::new(&webhooks, name)",
            ));
        }
        Ok(Self {
            webhooks: webhooks.clone(),
        })
    }

    /// The runtime the layer's services receive through.
    pub fn webhooks(&self) -> &Webhooks<P> {
        &self.webhooks
    }
}

impl<P: Provider> Clone for WebhookLayer<P> {
    fn clone(&self) -> Self {
        Self {
            webhooks: self.webhooks.clone(),
        }
    }
}

impl<P: Provider> fmt::Debug for WebhookLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLayer")
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

impl<P: Provider, Inner> Layer<Inner> for WebhookLayer<P> {
    type Service = WebhookService<Inner, P>;

    fn layer(&self, inner: Inner) -> Self::Service {
        WebhookService::new(inner, self.webhooks.clone())
    }
}
