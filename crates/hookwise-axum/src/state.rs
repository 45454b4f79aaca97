//! [`WebhookState`]: what the extractor needs from the router state.

use std::{fmt, future::Future, sync::Arc};

use hookwise_core::{DedupeStore, Delivery, MemoryStore, Provider, Receiver};
use hookwise_tower::{
    DurableQueue, HandlerFactory, HandlerJob, Intake, Processor, SharedQueue, ShutdownHandle,
    Stats, WebhookLayer, Workers,
};

use crate::extract::handler_job;

/// One provider's receiving setup for the [`Webhook`](crate::Webhook) extractor:
/// the [`Intake`] (limits, verification, dedupe) and the background
/// [`Processor`]. Put one per provider in your router state and derive `FromRef`.
///
/// Built from a configured [`WebhookLayer`] (`WebhookState::from(&layer)`), it shares
/// that layer's processing queue, [`Stats`] and [`ShutdownHandle`]; that is also how
/// the extractor works behind the layer.
pub struct WebhookState<P: Provider, S: DedupeStore = MemoryStore> {
    intake: Intake<P, S>,
    processor: Processor<P, S>,
    shutdown: ShutdownHandle,
}

impl<P: Provider, S: DedupeStore> WebhookState<P, S> {
    /// A state with the layer's defaults (ack-fast processing, 32 running, 1024
    /// waiting, 5 attempts). For other settings, configure a [`WebhookLayer`] and use
    /// `WebhookState::from(&layer)`.
    pub fn new(receiver: Receiver<P, S>) -> Self {
        Self::from(&WebhookLayer::new(receiver))
    }

    /// The intake the extractor receives through.
    pub fn intake(&self) -> &Intake<P, S> {
        &self.intake
    }

    /// The processor [`Webhook::process_in_background`](crate::Webhook::process_in_background)
    /// submits to.
    pub fn processor(&self) -> &Processor<P, S> {
        &self.processor
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.intake.stats().clone()
    }

    /// The handle that stops taking deliveries and drains background work.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// A state for [`DurableWebhook`](crate::DurableWebhook): keeps the events
    /// handed over with [`DurableWebhook::enqueue`](crate::DurableWebhook::enqueue)
    /// in `queue`, and starts its workers, which run `handler` for them with this
    /// state's retries, timeout and dead letters, here and in every instance that
    /// registers the same `route` name.
    ///
    /// The handler is registered up front, not passed per request, because after a
    /// crash another instance must be able to run it.
    ///
    /// ```no_run
    /// # use hookwise_core::{Hoursmith, MemoryStore, Receiver};
    /// # use hookwise_axum::WebhookState;
    /// # async fn demo(queue: impl hookwise_tower::DurableQueue<Hoursmith, MemoryStore>) -> Result<(), Box<dyn std::error::Error>> {
    /// let state = WebhookState::new(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?)
    ///     .durable(queue, "invoices", |delivery| async move {
    ///         println!("{}", delivery.event().event_type());
    ///         Ok::<_, std::convert::Infallible>(())
    ///     });
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn durable<Q, H, F, E>(self, queue: Q, route: &str, handler: H) -> DurableWebhookState<P, S>
    where
        Q: DurableQueue<P, S>,
        H: Fn(Delivery<P::Event>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let handler = Arc::new(handler);
        let factory: HandlerFactory<P::Event> = Arc::new(move |_head| {
            let handler = handler.clone();
            Box::new(handler_job(move |delivery| handler(delivery))) as HandlerJob<P::Event>
        });
        queue.start(
            route,
            Workers {
                processor: self.processor.clone(),
                handler: factory,
            },
        );
        DurableWebhookState {
            state: self,
            queue: Arc::new(queue),
            route: route.into(),
        }
    }
}

/// A [`WebhookState`] with a durable queue and the route name its handler runs
/// under, made by [`WebhookState::durable`]: what the
/// [`DurableWebhook`](crate::DurableWebhook) extractor reads from the router state.
pub struct DurableWebhookState<P: Provider, S: DedupeStore = MemoryStore> {
    state: WebhookState<P, S>,
    queue: SharedQueue<P, S>,
    route: Arc<str>,
}

impl<P: Provider, S: DedupeStore> DurableWebhookState<P, S> {
    /// The state without its queue: intake, processor, stats, shutdown.
    pub fn state(&self) -> &WebhookState<P, S> {
        &self.state
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// The handle that stops taking deliveries and drains background work, the
    /// queue's workers included.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.state.shutdown_handle()
    }

    pub(crate) fn into_parts(self) -> (WebhookState<P, S>, SharedQueue<P, S>, Arc<str>) {
        (self.state, self.queue, self.route)
    }
}

impl<P: Provider, S: DedupeStore> Clone for DurableWebhookState<P, S> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            queue: self.queue.clone(),
            route: self.route.clone(),
        }
    }
}

impl<P: Provider, S: DedupeStore> fmt::Debug for DurableWebhookState<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableWebhookState")
            .field("state", &self.state)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl<P: Provider, S: DedupeStore> From<&WebhookLayer<P, S>> for WebhookState<P, S> {
    fn from(layer: &WebhookLayer<P, S>) -> Self {
        Self {
            intake: layer.intake(),
            processor: layer.processor().clone(),
            shutdown: layer.shutdown_handle(),
        }
    }
}

impl<P: Provider, S: DedupeStore> Clone for WebhookState<P, S> {
    fn clone(&self) -> Self {
        Self {
            intake: self.intake.clone(),
            processor: self.processor.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<P: Provider, S: DedupeStore> fmt::Debug for WebhookState<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookState")
            .field("intake", &self.intake)
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}
