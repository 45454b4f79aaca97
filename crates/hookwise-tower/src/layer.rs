//! [`WebhookLayer`]: the receiver's configuration, applied to a service.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hookwise_core::{ConfigError, DedupeStore, Provider, Receiver};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    AckMode, DeadLetterHandler, DeadLetters, DurableQueue, HandlerBody, Intake, ProcessingConfig,
    Processor, RetryPolicy, SharedQueue, ShutdownHandle, Stats, WebhookService, Workers,
    body::BoxError, service::Shared, service::handler_factory,
};

/// The default time allowed to receive a whole body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

const ACK_AFTER_HANDLER_WITH_QUEUE: ConfigError = ConfigError::Conflict(
    "a durable queue is for ack-fast mode: ack-after-handler mode runs the handler while \
     the sender waits and would never use the queue",
);

/// A [`Layer`] that receives webhook deliveries in front of a handler.
///
/// See the [crate docs](crate) for the behaviour and an example. Configure it fully
/// before cloning it or applying it: every service it makes shares one processing
/// queue, one set of [`Stats`] and one [`ShutdownHandle`].
#[must_use]
pub struct WebhookLayer<P: Provider, S: DedupeStore> {
    receiver: Arc<Receiver<P, S>>,
    mode: AckMode,
    processing: ProcessingConfig,
    body_timeout: Duration,
    /// The user's dead-letter callback; `None` keeps dead letters in memory.
    dead_letter: Option<Arc<dyn DeadLetterHandler<P::Event>>>,
    stats: Stats,
    shutdown: ShutdownHandle,
    processor: Processor<P, S>,
    durable: Option<SharedQueue<P, S>>,
    /// Numbers the services this layer makes, for the durable queue's routes.
    routes: Arc<AtomicUsize>,
}

impl<P: Provider, S: DedupeStore> WebhookLayer<P, S> {
    /// A layer receiving through `receiver` (provider, dedupe store, body limit), in
    /// ack-fast mode with the default [`ProcessingConfig`].
    pub fn new(receiver: Receiver<P, S>) -> Self {
        let receiver = Arc::new(receiver);
        let processing = ProcessingConfig::default();
        let dead_letter = None;
        let (stats, shutdown) = (Stats::default(), ShutdownHandle::default());
        let processor = Processor::new(
            receiver.clone(),
            processing,
            dead_letter.clone(),
            stats.clone(),
            shutdown.clone(),
        );
        Self {
            receiver,
            mode: AckMode::default(),
            processing,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            dead_letter,
            stats,
            shutdown,
            processor,
            durable: None,
            routes: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Keeps accepted events in `queue` instead of this process's memory (ack-fast
    /// mode): the layer answers `200` only once the queue has stored the delivery,
    /// and the queue's workers, here or in another instance, run the handler for it
    /// with the same retries, timeout and dead letters. A queue that cannot store is
    /// answered `503` + `Retry-After`, with the claim released.
    ///
    /// Each service the layer makes gets its own route name, `layer-<n>` in the order
    /// they are made, and starts its readers. **axum calls `Layer::layer` once per
    /// connection** for a router served by `axum::serve`, so every connection adds a
    /// reader and a stream, and after a restart a stream waits for as many
    /// connections: use `hookwise_axum::WebhookState::durable`, which starts its
    /// readers once under a name you choose, until this layer does the same.
    ///
    /// A durable queue is for ack-fast mode: with [`AckMode::AfterHandler`] it is
    /// refused ([`ConfigError::Conflict`]), since that mode runs the handler while
    /// the sender waits and would never use the queue.
    pub fn durable_queue(mut self, queue: impl DurableQueue<P, S>) -> Result<Self, ConfigError> {
        if self.mode == AckMode::AfterHandler {
            return Err(ACK_AFTER_HANDLER_WITH_QUEUE);
        }
        self.durable = Some(Arc::new(queue));
        Ok(self)
    }

    /// Answers before ([`AckMode::Fast`], the default) or after
    /// ([`AckMode::AfterHandler`]) the handler runs. Ack-after-handler mode with a
    /// [`durable_queue`](Self::durable_queue) is refused ([`ConfigError::Conflict`]).
    pub fn mode(mut self, mode: AckMode) -> Result<Self, ConfigError> {
        if mode == AckMode::AfterHandler && self.durable.is_some() {
            return Err(ACK_AFTER_HANDLER_WITH_QUEUE);
        }
        self.mode = mode;
        Ok(self)
    }

    /// Sets all background processing settings at once.
    pub fn processing(mut self, config: ProcessingConfig) -> Result<Self, ConfigError> {
        if config.concurrency == 0 {
            return Err(ConfigError::Zero("processing concurrency"));
        }
        if config.handler_timeout.is_zero() {
            return Err(ConfigError::Zero("handler timeout"));
        }
        self.processing = config;
        Ok(self.rebuild_processor())
    }

    /// Sets how many events run at once (default 32).
    pub fn concurrency(self, concurrency: usize) -> Result<Self, ConfigError> {
        let config = ProcessingConfig {
            concurrency,
            ..self.processing
        };
        self.processing(config)
    }

    /// Sets how many events may wait for a running slot (default 1024). Beyond it,
    /// deliveries are answered `503` + `Retry-After` and their claims released.
    pub fn queue_capacity(self, capacity: usize) -> Result<Self, ConfigError> {
        let config = ProcessingConfig {
            queue_capacity: capacity,
            ..self.processing
        };
        self.processing(config)
    }

    /// Sets how failed runs are retried (default 5 attempts, backoff from 1 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.processing.retry = retry;
        self.rebuild_processor()
    }

    /// Sets how long one run may take before it is cancelled and counted as a
    /// failure (default 30 s).
    pub fn handler_timeout(self, timeout: Duration) -> Result<Self, ConfigError> {
        let config = ProcessingConfig {
            handler_timeout: timeout,
            ..self.processing
        };
        self.processing(config)
    }

    /// Sets how long a client may take to send the whole body before it is answered
    /// `408` and its connection freed (default 10 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Zero("body timeout"));
        }
        self.body_timeout = timeout;
        Ok(self)
    }

    /// Receives events whose every attempt failed, instead of keeping them in
    /// memory ([`dead_letters`](Self::dead_letters)); see the
    /// [dead letters' docs](crate::DeadLetters) for where they go by default.
    pub fn on_dead_letter(mut self, handler: impl DeadLetterHandler<P::Event>) -> Self {
        self.dead_letter = Some(Arc::new(handler));
        self.rebuild_processor()
    }

    /// The dead letters kept in memory, to list and replay; `None` when
    /// [`on_dead_letter`](Self::on_dead_letter) set a callback. With a durable queue,
    /// dead letters are kept by the queue instead, and this list stays empty.
    pub fn dead_letters(&self) -> Option<DeadLetters<P::Event>> {
        self.processor.dead_letters().cloned()
    }

    /// The handle that stops the receiver and drains accepted events.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// The receiver's counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// The core receiver: provider, dedupe store, body limit.
    pub fn receiver(&self) -> &Arc<Receiver<P, S>> {
        &self.receiver
    }

    /// The HTTP side of receiving, as this layer's services do it: the axum
    /// extractor uses it to answer exactly alike.
    pub fn intake(&self) -> Intake<P, S> {
        Intake::new(
            self.receiver.clone(),
            self.body_timeout,
            self.stats.clone(),
            self.shutdown.clone(),
        )
    }

    /// The background processor, shared by every service of this layer; the axum
    /// extractor's background helper submits to it too.
    pub fn processor(&self) -> &Processor<P, S> {
        &self.processor
    }

    fn rebuild_processor(mut self) -> Self {
        self.processor = Processor::new(
            self.receiver.clone(),
            self.processing,
            self.dead_letter.clone(),
            self.stats.clone(),
            self.shutdown.clone(),
        );
        self
    }
}

impl<P: Provider, S: DedupeStore> Clone for WebhookLayer<P, S> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
            mode: self.mode,
            processing: self.processing,
            body_timeout: self.body_timeout,
            dead_letter: self.dead_letter.clone(),
            stats: self.stats.clone(),
            shutdown: self.shutdown.clone(),
            processor: self.processor.clone(),
            durable: self.durable.clone(),
            routes: self.routes.clone(),
        }
    }
}

impl<P: Provider + fmt::Debug, S: DedupeStore + fmt::Debug> fmt::Debug for WebhookLayer<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookLayer")
            .field("receiver", &self.receiver)
            .field("mode", &self.mode)
            .field("processing", &self.processing)
            .field("body_timeout", &self.body_timeout)
            .field("durable", &self.durable.is_some())
            .finish_non_exhaustive()
    }
}

impl<P, S, Inner, ResBody> Layer<Inner> for WebhookLayer<P, S>
where
    P: Provider,
    S: DedupeStore,
    Inner:
        Service<Request<HandlerBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    Inner::Future: Send + 'static,
    Inner::Error: Into<BoxError>,
{
    type Service = WebhookService<Inner, P, S>;

    fn layer(&self, inner: Inner) -> Self::Service {
        let durable = self.durable.as_ref().map(|queue| {
            let route: Arc<str> =
                format!("layer-{}", self.routes.fetch_add(1, Ordering::Relaxed)).into();
            queue.start(
                &route,
                Workers {
                    processor: self.processor.clone(),
                    handler: handler_factory(inner.clone()),
                },
            );
            (queue.clone(), route)
        });
        WebhookService::new(
            inner,
            Arc::new(Shared {
                intake: self.intake(),
                processor: self.processor.clone(),
                mode: self.mode,
                durable,
            }),
        )
    }
}
