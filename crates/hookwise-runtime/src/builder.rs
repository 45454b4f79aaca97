//! [`WebhooksBuilder`]: every setting of the runtime, validated once by `build`.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use hookwise_core::{AnyStore, ConfigError, Delivery, Provider, Receiver};

use crate::{
    AckMode, DeadLetterHandler, DurableQueue, Handler, Ordering, RetryPolicy, Webhooks,
    handler::BoxError, processor::ProcessingConfig, webhooks::Settings,
};

/// The default time allowed to receive a whole body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest handler name: it becomes part of store keys.
const MAX_NAME_LEN: usize = 64;

/// Builds a [`Webhooks`] runtime: settings are plain setters, and
/// [`build`](Self::build) checks them all at once.
///
/// ```
/// use std::time::Duration;
/// use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// use hookwise_runtime::{RetryPolicy, Webhooks};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
/// let webhooks = Webhooks::builder(receiver)
///     .concurrency(8)
///     .handler_timeout(Duration::from_secs(10))
///     .retry(RetryPolicy::default().max_attempts(3))
///     .handler("invoices", |delivery| async move {
///         println!("{}", delivery.event().event_type());
///         Ok::<_, std::convert::Infallible>(())
///     })
///     .build()?;
/// assert!(webhooks.handler("invoices").is_some());
/// # Ok(()) }
/// ```
#[must_use]
pub struct WebhooksBuilder<P: Provider> {
    receiver: Receiver<P, AnyStore>,
    mode: AckMode,
    processing: ProcessingConfig,
    body_timeout: Duration,
    dead_letter: Option<Arc<dyn DeadLetterHandler<P::Event>>>,
    durable: Option<Arc<dyn DurableQueue<P>>>,
    handlers: Vec<Handler<P::Event>>,
    ordering: Option<Ordering<P::Event>>,
    metrics: bool,
}

impl<P: Provider> WebhooksBuilder<P> {
    pub(crate) fn new(receiver: Receiver<P, AnyStore>) -> Self {
        Self {
            receiver,
            mode: AckMode::default(),
            processing: ProcessingConfig::default(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            dead_letter: None,
            durable: None,
            handlers: Vec::new(),
            ordering: None,
            metrics: cfg!(feature = "metrics"),
        }
    }

    /// Sends this runtime's counters to the `metrics` facade too (on by default
    /// with the `metrics` feature; the table of names is in [`Stats`](crate::Stats)).
    /// Off, only [`Stats`](crate::Stats) counts.
    ///
    /// The metrics are registered with the recorder installed when
    /// [`build`](Self::build) runs (once, so that each event is an atomic add, not
    /// a lookup): install yours first.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Answers before ([`AckMode::Fast`], the default) or after
    /// ([`AckMode::AfterHandler`]) the handler runs.
    pub fn mode(mut self, mode: AckMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many events run at once ([`DEFAULT_CONCURRENCY`](crate::DEFAULT_CONCURRENCY),
    /// 32; at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.processing.concurrency = concurrency;
        self
    }

    /// How many events may wait for a running slot
    /// ([`DEFAULT_QUEUE_CAPACITY`](crate::DEFAULT_QUEUE_CAPACITY), 1024). Beyond it,
    /// deliveries are answered `503` + `Retry-After` and their claims released.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.processing.queue_capacity = capacity;
        self
    }

    /// How failed runs are retried (default 5 attempts, backoff from 1 s).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.processing.retry = retry;
        self
    }

    /// How long one run may take before it is cancelled and counted as a failure
    /// ([`DEFAULT_HANDLER_TIMEOUT`](crate::DEFAULT_HANDLER_TIMEOUT), 30 s).
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.processing.handler_timeout = timeout;
        self
    }

    /// How long a client may take to send the whole body before it is answered
    /// `408` and its connection freed (default 10 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Receives events whose every attempt failed, instead of keeping them in
    /// memory ([`Webhooks::dead_letters`]); see [`DeadLetters`](crate::DeadLetters)
    /// for where they go by default.
    pub fn on_dead_letter(mut self, handler: impl DeadLetterHandler<P::Event>) -> Self {
        self.dead_letter = Some(Arc::new(handler));
        self
    }

    /// Keeps accepted events in `queue` instead of this process's memory: the
    /// runtime answers `200` only once the queue has stored the delivery, and the
    /// queue's workers, here or in another instance, run the named handler for it.
    /// Only named handlers ([`handler`](Self::handler)) can be run from a queue, so
    /// a durable runtime needs at least one, and refuses handlers given per request
    /// (a layer's inner service, a closure): they would only live in memory.
    pub fn durable_queue(mut self, queue: impl DurableQueue<P>) -> Self {
        self.durable = Some(Arc::new(queue));
        self
    }

    /// Runs the events of one resource one after another, in the order they were
    /// accepted, and those of different resources in parallel; optionally skips
    /// an event older than the last one applied for its resource. Off by default;
    /// see [`Ordering`] for what holds where.
    pub fn ordering(mut self, ordering: Ordering<P::Event>) -> Self {
        self.ordering = Some(ordering);
        self
    }

    /// Registers `handler` under `name`, a stable name of your choice (ASCII
    /// letters, digits, `-`, `_`, `.`; at most 64): endpoints hand events to it by
    /// name, and a durable queue keys its stream by it, so stored deliveries are
    /// run by the same handler in every instance and after every deploy.
    pub fn handler<H, F, E>(mut self, name: &str, handler: H) -> Self
    where
        H: Fn(Delivery<P::Event>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.handlers.push(Handler::new(name, handler));
        self
    }

    /// Checks every setting, then builds the runtime and, with a durable queue,
    /// starts its readers: once per handler, here and never again. With a durable
    /// queue it must be called inside a tokio runtime.
    pub fn build(self) -> Result<Webhooks<P>, ConfigError> {
        self.check()?;
        if self.durable.is_some() && tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::Conflict(
                "a durable queue starts its readers when the runtime is built: build it \
                 inside a tokio runtime",
            ));
        }
        Ok(self.assemble())
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.processing.concurrency == 0 {
            return Err(ConfigError::Zero("processing concurrency"));
        }
        if self.processing.handler_timeout.is_zero() {
            return Err(ConfigError::Zero("handler timeout"));
        }
        if self.body_timeout.is_zero() {
            return Err(ConfigError::Zero("body timeout"));
        }
        if self.durable.is_some() {
            if self.mode == AckMode::AfterHandler {
                return Err(ConfigError::Conflict(
                    "a durable queue is for ack-fast mode: ack-after-handler mode runs the \
                     handler while the sender waits and would never use the queue",
                ));
            }
            if self.handlers.is_empty() {
                return Err(ConfigError::Conflict(
                    "a durable queue runs handlers registered by name: register at least one \
                     with `handler(name, f)`",
                ));
            }
        }
        for (i, handler) in self.handlers.iter().enumerate() {
            check_name(handler.name())?;
            if self.handlers[..i]
                .iter()
                .any(|h| h.name() == handler.name())
            {
                return Err(name_error(handler.name(), "registered twice"));
            }
        }
        Ok(())
    }

    /// The runtime from settings that are known to be valid.
    pub(crate) fn assemble(self) -> Webhooks<P> {
        Webhooks::start(Settings {
            receiver: self.receiver,
            mode: self.mode,
            processing: self.processing,
            body_timeout: self.body_timeout,
            dead_letter: self.dead_letter,
            durable: self.durable,
            handlers: self.handlers,
            ordering: self.ordering,
            metrics: self.metrics,
        })
    }
}

fn check_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(name_error(name, "empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(name_error(name, "longer than 64 characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !name.chars().all(allowed) {
        return Err(name_error(
            name,
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

fn name_error(name: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidName {
        what: "handler name",
        name: name.to_owned(),
        reason,
    }
}

impl<P: Provider + fmt::Debug> fmt::Debug for WebhooksBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhooksBuilder")
            .field("receiver", &self.receiver)
            .field("mode", &self.mode)
            .field("processing", &self.processing)
            .field("body_timeout", &self.body_timeout)
            .field("durable", &self.durable.is_some())
            .field("handlers", &self.handlers)
            .field("ordering", &self.ordering)
            .finish_non_exhaustive()
    }
}
