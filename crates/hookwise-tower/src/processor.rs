//! Processing accepted events: bounded, retried, dead-lettered, drained.
//!
//! The layer's ack-fast mode answers the sender, then hands the event to a
//! [`Processor`]: a bounded number of events run at once, a bounded number wait, and
//! when both are full the delivery is refused with `503` and its claim released, so the
//! sender's retry is processed later. Nothing accepted is dropped.

use std::{
    fmt,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hookwise_core::{Claim, DedupeStore, Delivery, Provider, Receiver, Rejection, RejectionKind};
use http::{StatusCode, request::Parts};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::{DurableQueue, RetryPolicy, ShutdownHandle, Stats, body::BoxError};

/// Why one run of the handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The handler returned an error.
    #[error("handler failed: {0}")]
    Failed(String),
    /// The handler answered with a status other than 2xx.
    #[error("handler answered {0}")]
    Status(StatusCode),
    /// The handler panicked.
    #[error("handler panicked: {0}")]
    Panicked(String),
    /// The handler ran past the handler timeout and was cancelled.
    #[error("handler timed out after {0:?}")]
    TimedOut(Duration),
}

impl HandlerError {
    /// A failure from any error type.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        Self::Failed(error.into().to_string())
    }
}

/// An event whose every attempt failed, handed to the dead-letter callback.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetter<E> {
    /// The delivery, with its typed event and raw body, for storing or replaying.
    pub delivery: Delivery<E>,
    /// The last attempt's failure.
    pub error: HandlerError,
    /// How many attempts were made.
    pub attempts: u32,
}

/// Receives dead letters. Implemented for every `Fn(DeadLetter<E>)`.
pub trait DeadLetterHandler<E>: Send + Sync + 'static {
    /// Takes an event that failed every attempt.
    fn dead_letter(&self, letter: DeadLetter<E>);
}

impl<E, F> DeadLetterHandler<E> for F
where
    F: Fn(DeadLetter<E>) + Send + Sync + 'static,
{
    fn dead_letter(&self, letter: DeadLetter<E>) {
        self(letter);
    }
}

/// The default dead-letter handler: an `error` log line without the body.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogDeadLetter;

impl<E> DeadLetterHandler<E> for LogDeadLetter {
    fn dead_letter(&self, letter: DeadLetter<E>) {
        tracing::error!(
            provider = letter.delivery.provider(),
            key = %letter.delivery.dedupe_key(),
            attempts = letter.attempts,
            error = %letter.error,
            "webhook event dead-lettered"
        );
    }
}

/// Settings of background processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct ProcessingConfig {
    /// Events running at once (default 32).
    pub concurrency: usize,
    /// Events waiting for a free slot beyond those running (default 1024).
    pub queue_capacity: usize,
    /// Retries of failed runs (default: 5 attempts from 1 s).
    pub retry: RetryPolicy,
    /// The longest one run may take before it is cancelled and counted as failed
    /// (default 30 s).
    pub handler_timeout: Duration,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            queue_capacity: 1024,
            retry: RetryPolicy::default(),
            handler_timeout: Duration::from_secs(30),
        }
    }
}

/// Runs accepted events in the background: bounded, retried, dead-lettered, and
/// tracked by the [`ShutdownHandle`]. Cheap to clone; clones share the bounds.
pub struct Processor<P: Provider, S> {
    shared: Arc<Shared<P, S>>,
}

struct Shared<P: Provider, S> {
    receiver: Arc<Receiver<P, S>>,
    /// Permits for running plus waiting events: when none is left, refuse.
    admission: Arc<Semaphore>,
    /// Permits for running events.
    running: Semaphore,
    config: ProcessingConfig,
    dead_letter: Arc<dyn DeadLetterHandler<P::Event>>,
    stats: Stats,
    shutdown: ShutdownHandle,
}

impl<P: Provider, S> Clone for Processor<P, S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<P: Provider, S> fmt::Debug for Processor<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processor")
            .field("config", &self.shared.config)
            .field("free_slots", &self.shared.admission.available_permits())
            .finish_non_exhaustive()
    }
}

impl<P: Provider, S: DedupeStore> Processor<P, S> {
    /// A processor committing and releasing claims in `receiver`'s store.
    pub fn new(
        receiver: Arc<Receiver<P, S>>,
        config: ProcessingConfig,
        dead_letter: Arc<dyn DeadLetterHandler<P::Event>>,
        stats: Stats,
        shutdown: ShutdownHandle,
    ) -> Self {
        let concurrency = config.concurrency.max(1);
        Self {
            shared: Arc::new(Shared {
                receiver,
                admission: Arc::new(Semaphore::new(
                    concurrency.saturating_add(config.queue_capacity),
                )),
                running: Semaphore::new(concurrency),
                config,
                dead_letter,
                stats,
                shutdown,
            }),
        }
    }

    /// Takes an accepted event for background processing, or refuses it.
    ///
    /// `job` is called once per attempt with the delivery. Refused (`503`: shutting
    /// down, or queue full) means the claim was released and the sender should retry.
    pub async fn submit<J, F>(
        &self,
        delivery: Delivery<P::Event>,
        claim: Claim,
        job: J,
    ) -> Result<(), Rejection>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        match self.try_submit(delivery, claim, job) {
            Ok(()) => Ok(()),
            Err((claim, refused)) => Err(self.refuse(claim, refused).await),
        }
    }

    /// The synchronous part of [`submit`](Self::submit): admits and spawns the
    /// event, or hands its claim back with the reason for refusing it, for
    /// [`refuse`](Self::refuse). The accepted path never waits, so the request's
    /// future holds no state for it.
    pub(crate) fn try_submit<J, F>(
        &self,
        delivery: Delivery<P::Event>,
        claim: Claim,
        job: J,
    ) -> Result<(), (Claim, RejectionKind)>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let shared = &self.shared;
        if shared.shutdown.is_closed() {
            return Err((claim, RejectionKind::ShuttingDown));
        }
        let Ok(permit) = shared.admission.clone().try_acquire_owned() else {
            return Err((claim, RejectionKind::QueueFull));
        };
        // Boxed here, once: the run's state machine (a few KiB: the delivery, the
        // job, the attempt with its timer) is then not copied again on its way
        // through the tracker and the spawn into the task.
        let work = Box::pin(self.clone().run_with_retries(delivery, claim, job, permit));
        shared
            .shutdown
            .spawn(work.instrument(tracing::Span::current()));
        Ok(())
    }

    /// Refuses an event [`try_submit`](Self::try_submit) did not take: releases its
    /// claim so the sender's retry is processed, and counts it finished.
    pub(crate) async fn refuse(&self, claim: Claim, refused: RejectionKind) -> Rejection {
        self.release(&claim).await;
        self.shared.stats.finished();
        Rejection::new(refused)
    }

    /// Runs an accepted event once while the sender waits (ack-after-handler mode):
    /// commit on success; on failure release the claim so the sender's retry is
    /// processed, and answer `500`.
    pub async fn run_now<J, F>(
        &self,
        delivery: Delivery<P::Event>,
        claim: Claim,
        mut job: J,
    ) -> Result<(), Rejection>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let shared = &self.shared;
        let result = shared
            .shutdown
            .track(attempt(job(delivery), shared.config.handler_timeout))
            .await;
        shared.stats.finished();
        match result {
            Ok(()) => {
                shared.stats.processed();
                self.commit(&claim).await;
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "webhook handler failed; the sender will retry");
                self.release(&claim).await;
                Err(Rejection::new(RejectionKind::HandlerFailed).with_detail(error.to_string()))
            }
        }
    }

    async fn run_with_retries<J, F>(
        self,
        delivery: Delivery<P::Event>,
        claim: Claim,
        job: J,
        admitted: OwnedSemaphorePermit,
    ) where
        J: FnMut(Delivery<P::Event>) -> F,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let Ok(_running) = self.shared.running.acquire().await else {
            return; // never closed
        };
        let result = self.process(delivery, job).await;
        self.shared.stats.finished();
        // Processed or dead-lettered, the event is accounted for: a redelivery must
        // not run it again.
        self.commit(&claim).await;
        if let Err(letter) = result {
            self.dead_letter(letter);
        }
        drop(admitted);
    }

    /// Runs `job` on `delivery` under the retry policy and the handler timeout:
    /// attempts until one succeeds, with exponential backoff between them, counting
    /// processed, retried and dead-lettered events. After the last failed attempt,
    /// returns the dead letter for the caller to record and hand to
    /// [`dead_letter`](Self::dead_letter).
    ///
    /// [`submit`](Self::submit) runs it in the background; a durable queue's workers
    /// run it for the deliveries they read back.
    pub async fn process<J, F>(
        &self,
        delivery: Delivery<P::Event>,
        mut job: J,
    ) -> Result<(), DeadLetter<P::Event>>
    where
        J: FnMut(Delivery<P::Event>) -> F,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        match self.attempts(&delivery, &mut job).await {
            Ok(()) => Ok(()),
            Err((error, attempts)) => Err(DeadLetter {
                delivery,
                error,
                attempts,
            }),
        }
    }

    /// [`process`](Self::process) by reference: the last failure and the number of
    /// attempts when every attempt failed.
    async fn attempts<J, F>(
        &self,
        delivery: &Delivery<P::Event>,
        job: &mut J,
    ) -> Result<(), (HandlerError, u32)>
    where
        J: FnMut(Delivery<P::Event>) -> F,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let shared = &self.shared;
        let policy = shared.config.retry;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt(job(delivery.clone()), shared.config.handler_timeout).await {
                Ok(()) => {
                    shared.stats.processed();
                    return Ok(());
                }
                Err(error) if attempts < policy.attempts() => {
                    let wait = policy.backoff(attempts);
                    tracing::warn!(%error, attempts, ?wait, "webhook handler failed; retrying");
                    shared.stats.retried();
                    tokio::time::sleep(wait).await;
                }
                Err(error) => {
                    shared.stats.dead_lettered();
                    return Err((error, attempts));
                }
            }
        }
    }

    /// Hands an event whose every attempt failed to the dead-letter handler.
    pub fn dead_letter(&self, letter: DeadLetter<P::Event>) {
        self.shared.dead_letter.dead_letter(letter);
    }

    /// Takes an accepted event into a durable queue instead of this process: commits
    /// the claim once the queue has stored it (the queue's workers now own the event),
    /// or releases it and refuses with `503` when the queue cannot store it.
    pub async fn enqueue(
        &self,
        queue: &dyn DurableQueue<P, S>,
        route: &str,
        head: &Parts,
        delivery: &Delivery<P::Event>,
        claim: Claim,
    ) -> Result<(), Rejection> {
        let shared = &self.shared;
        if shared.shutdown.is_closed() {
            self.release(&claim).await;
            shared.stats.finished();
            return Err(Rejection::new(RejectionKind::ShuttingDown));
        }
        let stored = queue.enqueue(route, head, delivery).await;
        shared.stats.finished();
        match stored {
            Ok(()) => {
                self.commit(&claim).await;
                Ok(())
            }
            Err(error) => {
                self.release(&claim).await;
                Err(Rejection::new(RejectionKind::StoreUnavailable)
                    .with_detail(format!("durable queue: {error}")))
            }
        }
    }

    /// The core receiver, whose store holds the claims.
    pub fn receiver(&self) -> &Arc<Receiver<P, S>> {
        &self.shared.receiver
    }

    /// The processing settings.
    pub fn config(&self) -> &ProcessingConfig {
        &self.shared.config
    }

    /// The handle that drains this processor's work.
    pub fn shutdown_handle(&self) -> &ShutdownHandle {
        &self.shared.shutdown
    }

    async fn commit(&self, claim: &Claim) {
        if let Err(error) = self.shared.receiver.commit(claim).await {
            tracing::error!(%error, key = %claim.key(), "could not record a processed webhook event");
        }
    }

    async fn release(&self, claim: &Claim) {
        if let Err(error) = self.shared.receiver.release(claim).await {
            tracing::error!(%error, key = %claim.key(), "could not release a webhook claim; it expires with its lease");
        }
    }
}

/// One run of the handler: a panic is caught and a run past the timeout is cancelled
/// (dropped), without a task of its own, so a run costs no extra spawn and wake-up.
/// The run is pinned in this future's own state, not boxed.
async fn attempt<F>(run: F, timeout: Duration) -> Result<(), HandlerError>
where
    F: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let run = std::pin::pin!(run);
    match tokio::time::timeout(timeout, CatchPanic(run)).await {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => Err(HandlerError::Panicked(panic_message(payload))),
        Err(_elapsed) => Err(HandlerError::TimedOut(timeout)),
    }
}

/// Polls a future, turning a panic in it into an `Err` with the panic's payload,
/// as a task's `JoinError` would.
struct CatchPanic<'a, F>(Pin<&'a mut F>);

impl<F: Future> Future for CatchPanic<'_, F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        // The future is dropped right after a panic (with the `attempt` holding it)
        // and never polled again, so no broken invariant inside it can be observed.
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "non-string panic payload".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}
