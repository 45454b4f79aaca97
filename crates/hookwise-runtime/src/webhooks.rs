//! [`Webhooks`]: the receiving runtime, built once and shared by every adapter.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use hookwise_core::{
    AnyStore, DedupeStore, Delivery, Outcome, OutcomeKind, Provider, Receiver, Rejection,
    RejectionKind,
};
use http::request::Parts;
use http_body::Body;

use crate::{
    DeadLetterHandler, DeadLetterStore, DeadLetters, DurableQueue, Handler, HandlerError,
    HeldClaim, IfNew, Ordering, ShutdownHandle, ShutdownReport, Stats, WebhooksBuilder, Workers,
    dead_letter::MemoryDeadLetters, handler::BoxError, intake::Intake, processor::ProcessingConfig,
    processor::Processor,
};

/// The receiving runtime: one provider's receiver (verification, dedupe), the
/// bounded background processor with its retries, handler timeout and dead letters,
/// the handlers registered by name, the durable queue if any, the [`Stats`] and the
/// [`ShutdownHandle`].
///
/// Build it once at start-up ([`Webhooks::new`] for the defaults,
/// [`Webhooks::builder`] for the rest), then hand clones to the adapters: the tower
/// layer and endpoint (`hookwise-tower`) and the axum extractor (`hookwise-axum`)
/// only wrap it, so applying a layer to many routes, or axum making a service per
/// connection, starts nothing. Clones are cheap and share everything.
///
/// Its type names the provider only: the dedupe store is erased
/// ([`AnyStore`]), so `Webhooks<Hoursmith>` is the same type whether claims live in
/// memory or in Redis, and so are the handlers' arguments.
///
/// ```
/// use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// use hookwise_runtime::Webhooks;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let webhooks = Webhooks::new(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?);
/// let stats = webhooks.stats();
/// assert_eq!(stats.snapshot().accepted, 0);
/// # Ok(()) }
/// ```
pub struct Webhooks<P: Provider> {
    inner: Arc<Inner<P>>,
}

struct Inner<P: Provider> {
    intake: Intake<P>,
    processor: Processor<P>,
    mode: AckMode,
    handlers: Vec<Handler<P::Event>>,
    durable: Option<Arc<dyn DurableQueue<P>>>,
}

/// When the sender is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AckMode {
    /// Answer `200` as soon as the event is verified, claimed and taken on; run the
    /// handler in the background, bounded and retried. The default: senders get
    /// their answer in milliseconds whatever the handler does.
    #[default]
    Fast,
    /// Answer after the handler: `200` and commit on success; `500` and release on
    /// failure, so the sender's own retry is processed.
    AfterHandler,
}

/// Valid settings, from the builder.
pub(crate) struct Settings<P: Provider> {
    pub(crate) receiver: Receiver<P, AnyStore>,
    pub(crate) mode: AckMode,
    pub(crate) processing: ProcessingConfig,
    pub(crate) body_timeout: Duration,
    pub(crate) dead_letter: Option<Arc<dyn DeadLetterHandler<P::Event>>>,
    pub(crate) durable: Option<Arc<dyn DurableQueue<P>>>,
    pub(crate) handlers: Vec<Handler<P::Event>>,
    pub(crate) ordering: Option<Ordering<P::Event>>,
    pub(crate) metrics: bool,
}

/// What [`Webhooks::receive`] made of a delivery that passed the contract.
#[derive(Debug)]
// Not boxed: it is moved once per delivery, and a box would be an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Received<P: Provider> {
    /// A new event, claimed: hand it on with [`Webhooks::process`] or
    /// [`Webhooks::hand_to`], which end the claim; dropped, the claim is released.
    New {
        /// The verified, parsed delivery.
        delivery: Delivery<P::Event>,
        /// Its dedupe claim, held until the event is done or given back.
        claim: HeldClaim<P>,
    },
    /// A duplicate or a skipped test event: answer it
    /// ([`OutcomeKind::response`]), and do nothing else.
    Acknowledged(OutcomeKind),
}

impl<P: Provider> Webhooks<P> {
    /// A runtime with the defaults: ack-fast, 32 events running and 1024 waiting, 5
    /// attempts from 1 s, a 30 s handler timeout, dead letters kept in memory, no
    /// named handler, no durable queue.
    pub fn new<S: DedupeStore>(receiver: Receiver<P, S>) -> Self {
        Self::builder(receiver).assemble()
    }

    /// A builder for every other setting; see [`WebhooksBuilder`].
    pub fn builder<S: DedupeStore>(receiver: Receiver<P, S>) -> WebhooksBuilder<P> {
        WebhooksBuilder::new(receiver.erase_store())
    }

    /// Builds the runtime from valid settings and starts the durable readers, one
    /// set per named handler.
    pub(crate) fn start(settings: Settings<P>) -> Self {
        let receiver = Arc::new(settings.receiver);
        let stats = Stats::new(receiver.provider().name(), settings.metrics);
        let shutdown = ShutdownHandle::default();
        let processor = Processor::new(
            receiver.clone(),
            settings.processing,
            settings.dead_letter,
            settings.ordering,
            stats.clone(),
            shutdown.clone(),
        );
        let intake = Intake::new(receiver, settings.body_timeout, stats, shutdown);
        if let Some(queue) = &settings.durable {
            for handler in &settings.handlers {
                queue.start(Workers {
                    processor: processor.clone(),
                    handler: handler.clone(),
                });
            }
        }
        Self {
            inner: Arc::new(Inner {
                intake,
                processor,
                mode: settings.mode,
                handlers: settings.handlers,
                durable: settings.durable,
            }),
        }
    }

    /// The `webhook` span for one delivery, with `provider` set and `event_id`,
    /// `event_type` and `outcome` recorded by [`receive`](Self::receive) and
    /// [`reject`](Self::reject). No secret, signature or body is ever recorded.
    pub fn span(&self) -> tracing::Span {
        self.inner.intake.span()
    }

    /// Takes one delivery through the contract: refuses any method but `POST`
    /// (`405`) before reading anything, refuses while shutting down, checks
    /// `Content-Length`, buffers the body within the limit and the body timeout,
    /// then verifies, parses and claims it. Counts the outcome in [`Stats`].
    ///
    /// On `Err`, answer with [`reject`](Self::reject).
    pub async fn receive<B>(&self, head: &Parts, body: B) -> Result<Received<P>, Rejection>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        Ok(match self.inner.intake.receive(head, body).await? {
            Outcome::Accepted { delivery, claim } => Received::New {
                delivery,
                claim: self.inner.processor.hold(claim),
            },
            acknowledged => Received::Acknowledged(acknowledged.kind()),
        })
    }

    /// Counts a rejection, records it on the current span, and returns the
    /// contract's response for it.
    pub fn reject(&self, rejection: &Rejection) -> http::Response<String> {
        self.inner.intake.reject(rejection)
    }

    /// Runs a new event with `job`, a handler given with this one delivery (a
    /// layer's inner service, a closure in an axum handler), as the mode says: in
    /// ack-fast mode it is taken by the background processor (`Ok`: answer `200`;
    /// `503` when full or shutting down); in ack-after-handler mode it runs now
    /// (`Ok` once it succeeded, `500` when it failed). Either way the claim is
    /// ended by the runtime.
    ///
    /// A durable runtime refuses it (`500`, logged, the claim released): a handler
    /// given per request cannot be run from the queue by another instance; use
    /// [`hand_to`](Self::hand_to) with a named handler.
    ///
    /// The future owns what it needs (a clone of the runtime), so it can be returned
    /// from a closure as it is. It holds the delivery, the claim and the job once:
    /// not an `async fn`, which would hold them twice (as passed, and as its own
    /// variables).
    pub fn process<J, F, E>(
        &self,
        delivery: Delivery<P::Event>,
        claim: HeldClaim<P>,
        job: J,
    ) -> impl Future<Output = Result<(), Rejection>> + Send + use<P, J, F, E>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let this = self.clone();
        async move {
            if this.inner.durable.is_some() {
                tracing::error!(
                    "a durable runtime runs only handlers registered by name: this delivery's \
                     handler was given per request, so it is refused (use hand_to)"
                );
                claim.release().await.unwrap_or_default();
                return Err(Rejection::new(RejectionKind::HandlerFailed)
                    .with_detail("a durable runtime runs only named handlers"));
            }
            let mut job = job;
            // Not boxed: the run stays inline in the processor's state for the event.
            let job = move |delivery| {
                let run = job(delivery);
                async move { run.await.map_err(HandlerError::failed) }
            };
            let processor = &this.inner.processor;
            match this.inner.mode {
                AckMode::Fast => processor.submit("", delivery, claim, job).await,
                AckMode::AfterHandler => {
                    Box::pin(processor.run_now("", delivery, claim, job)).await
                }
            }
        }
    }

    /// Hands a new event to the handler registered as `name`: with a durable queue,
    /// stores it there (`Ok` once stored: answer `200`; `503` when the queue cannot
    /// store); otherwise as [`process`](Self::process) does with that handler. An
    /// unknown name is refused (`500`, logged, the claim released).
    pub async fn hand_to(
        &self,
        name: &str,
        head: &Parts,
        delivery: Delivery<P::Event>,
        claim: HeldClaim<P>,
    ) -> Result<(), Rejection> {
        let Some(handler) = self.handler(name) else {
            tracing::error!(name, "no webhook handler is registered under this name");
            claim.release().await.unwrap_or_default();
            return Err(Rejection::new(RejectionKind::HandlerFailed)
                .with_detail(format!("no handler named {name:?}")));
        };
        let processor = &self.inner.processor;
        match (&self.inner.durable, self.inner.mode) {
            (Some(queue), _) => {
                Box::pin(processor.enqueue(queue.as_ref(), name, head, &delivery, claim)).await
            }
            (None, AckMode::Fast) => processor.submit(name, delivery, claim, handler.job()).await,
            (None, AckMode::AfterHandler) => {
                Box::pin(processor.run_now(name, delivery, claim, handler.job())).await
            }
        }
    }

    /// Receives one delivery and hands a new event to the handler registered as
    /// `name`: [`receive`](Self::receive), then [`hand_to`](Self::hand_to), in one
    /// call; `Ok` is the kind of `200` to answer, and on `Err`, answer with
    /// [`reject`](Self::reject).
    ///
    /// With a durable queue that shares the dedupe store's server (`RedisQueue` with
    /// a `RedisStore` on the same URL, `PgQueue` with a `PgStore` in the same
    /// database), it takes one round trip to that server instead of two: the queue
    /// looks the event's key up, stores the delivery and marks the key processed in
    /// one atomic step ([`DurableQueue::enqueue_if_new`]), so no claim is ever held
    /// (nor left behind by a dropped request). The answers are the same as those of the two
    /// steps, but for one count: a delivery the queue cannot store is counted as
    /// rejected only, where the two steps count it accepted as well, then finished.
    ///
    /// ```
    /// use hookwise_core::{Hoursmith, MemoryStore, OutcomeKind, Receiver};
    /// use hookwise_runtime::Webhooks;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let receiver = Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?;
    /// let webhooks = Webhooks::builder(receiver)
    ///     .handler("clients", |_delivery| async { Ok::<_, std::convert::Infallible>(()) })
    ///     .build()?;
    /// # let body = r#"{"id":"evt_1","type":"client.created","created":1717603200,
    /// #     "orgId":"o","livemode":true,"data":{"client":{"id":"c_1"}}}"#;
    /// # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    /// # let signature = hookwise_core::sign::hoursmith(b"whsec_...", now, body.as_bytes());
    /// # let request = || http::Request::post("/webhooks/hoursmith")
    /// #     .header(signature.name(), signature.value())
    /// #     .body(http_body_util::Full::new(bytes::Bytes::from(body)));
    /// let (head, body) = request()?.into_parts();
    /// let kind = webhooks.deliver_to("clients", &head, body).await?;
    /// assert_eq!(kind, OutcomeKind::Accepted);
    ///
    /// // The sender delivers it again: acknowledged, not run twice.
    /// let (head, body) = request()?.into_parts();
    /// assert_eq!(webhooks.deliver_to("clients", &head, body).await?, OutcomeKind::Duplicate);
    /// # Ok(()) }
    /// ```
    pub async fn deliver_to<B>(
        &self,
        name: &str,
        head: &Parts,
        body: B,
    ) -> Result<OutcomeKind, Rejection>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let intake = &self.inner.intake;
        let delivery = intake.verify(head, body).await?;
        if let Some(queue) = &self.inner.durable
            && let Some(handler) = self.handler(name)
            && intake.receiver().should_process(&delivery)
        {
            let processor = &self.inner.processor;
            let stored =
                Box::pin(processor.enqueue_if_new(queue.as_ref(), name, head, &delivery)).await;
            match stored {
                Some(Ok(stored @ (IfNew::Stored | IfNew::StoredToRunHere(_)))) => {
                    // Accepted and, being stored, out of this process's hands ...
                    intake.accepted(&delivery);
                    intake.stats().finished();
                    // ... unless given to this instance's workers: run as read back.
                    if let IfNew::StoredToRunHere(run) = stored {
                        let workers = Workers {
                            processor: processor.clone(),
                            handler: handler.clone(),
                        };
                        processor.shutdown_handle().spawn(async move {
                            let result = workers.run(delivery).await;
                            run.finish(result).await;
                        });
                    }
                    return Ok(OutcomeKind::Accepted);
                }
                Some(Ok(IfNew::Duplicate(state))) => {
                    let key = delivery.dedupe_key().clone();
                    let outcome = intake.receiver().duplicate(key, state)?;
                    intake.record(&outcome);
                    return Ok(outcome.kind());
                }
                Some(Err(rejection)) => return Err(rejection),
                // This queue cannot: claim, then store.
                None => {}
            }
        }
        match intake.claim(delivery).await? {
            Outcome::Accepted { delivery, claim } => {
                let claim = self.inner.processor.hold(claim);
                self.hand_to(name, head, delivery, claim).await?;
                Ok(OutcomeKind::Accepted)
            }
            acknowledged => Ok(acknowledged.kind()),
        }
    }

    /// The handler registered as `name`.
    pub fn handler(&self, name: &str) -> Option<&Handler<P::Event>> {
        self.inner.handlers.iter().find(|h| h.name() == name)
    }

    /// When the sender is answered.
    pub fn mode(&self) -> AckMode {
        self.inner.mode
    }

    /// Whether accepted events are kept in a durable queue.
    pub fn is_durable(&self) -> bool {
        self.inner.durable.is_some()
    }

    /// The dead letters kept in memory, to list and replay; `None` when a callback
    /// receives them ([`WebhooksBuilder::on_dead_letter`]). With a durable queue,
    /// the queue keeps dead letters, and this list stays empty.
    pub fn dead_letters(&self) -> Option<&DeadLetters<P::Event>> {
        self.inner.processor.dead_letters()
    }

    /// The dead letters to administer (list, show, replay, delete), wherever they
    /// are kept: the durable queue's ([`DurableQueue::dead_letter_store`]), or the
    /// in-memory list's ([`dead_letters`](Self::dead_letters)); `None` when a
    /// callback receives them, or the durable queue gives no access to its own.
    /// Serve it with an admin router (`hookwise_axum::dead_letter_router`) behind
    /// your own authentication.
    pub fn dead_letter_store(&self) -> Option<Arc<dyn DeadLetterStore>> {
        let receiver = self.inner.processor.receiver();
        match &self.inner.durable {
            Some(queue) => queue.dead_letter_store(receiver),
            None => self.dead_letters().map(|kept| {
                Arc::new(MemoryDeadLetters::new(kept.clone(), receiver.clone()))
                    as Arc<dyn DeadLetterStore>
            }),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.inner.intake.stats().clone()
    }

    /// The handle that stops taking deliveries and drains accepted events (and the
    /// durable readers).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.inner.processor.shutdown_handle().clone()
    }

    /// Stops taking deliveries, then waits up to `deadline` for accepted events:
    /// [`ShutdownHandle::shutdown`].
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.inner
            .processor
            .shutdown_handle()
            .shutdown(deadline)
            .await
    }

    /// The core receiver: provider, dedupe store, body limit.
    pub fn receiver(&self) -> &Receiver<P, AnyStore> {
        self.inner.processor.receiver()
    }
}

impl<P: Provider> Clone for Webhooks<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Provider> fmt::Debug for Webhooks<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("provider", &self.inner.intake.receiver().provider().name())
            .field("mode", &self.inner.mode)
            .field("processor", &self.inner.processor)
            .field("handlers", &self.inner.handlers)
            .field("durable", &self.inner.durable.is_some())
            .finish()
    }
}
