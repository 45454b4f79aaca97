//! Processing accepted events: bounded, retried, dead-lettered, drained.
//!
//! Ack-fast mode answers the sender, then hands the event to a
//! [`Processor`]: a bounded number of events run at once, a bounded number wait, and
//! when both are full the delivery is refused with `503` and its claim released, so the
//! sender's retry is processed later. Nothing accepted is dropped.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use hookwise_core::{AnyStore, Claim, Delivery, Provider, Receiver, Rejection, RejectionKind};
use http::request::Parts;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::{
    DEFAULT_KEPT_DEAD_LETTERS, DeadLetter, DeadLetterHandler, DeadLetters, DurableQueue, Enqueue,
    HandlerError, HandlerJob, HandlerRun, HeldClaim, IfNew, LogDeadLetter, Ordering, RetryPolicy,
    ShutdownHandle, Stats, Stored, Unclaimed,
    attempt::attempt,
    dead_letter::{Kept, Refused, call_handler},
    ordering::{Place, Sequencer, Turn},
    shutdown::Unstarted,
};

/// How many events run at once by default.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// How many events may wait for a running slot by default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// How long one run of a handler may take by default.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of background processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessingConfig {
    /// Events running at once (default 32).
    pub(crate) concurrency: usize,
    /// Events waiting for a free slot beyond those running (default 1024).
    pub(crate) queue_capacity: usize,
    /// Retries of failed runs (default: 5 attempts from 1 s).
    pub(crate) retry: RetryPolicy,
    /// The longest one run may take before it is cancelled and counted as failed
    /// (default 30 s).
    pub(crate) handler_timeout: Duration,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            retry: RetryPolicy::default(),
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
        }
    }
}

/// Where dead letters go: kept in memory (the default) or handed to a callback.
pub(crate) enum DeadLetterSink<E> {
    /// Kept in a bounded, replayable list.
    Keep(DeadLetters<E>),
    /// Handed to the user's callback.
    Call(Arc<dyn DeadLetterHandler<E>>),
}

impl<E> Clone for DeadLetterSink<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Keep(kept) => Self::Keep(kept.clone()),
            Self::Call(handler) => Self::Call(handler.clone()),
        }
    }
}

/// Runs accepted events in the background: bounded, retried, dead-lettered, and
/// tracked by the [`ShutdownHandle`]. Cheap to clone; clones share the bounds.
///
/// It owns the claims of the events it takes ([`HeldClaim`]): see the
/// [`claim` module's table](crate::HeldClaim) for who ends a claim when.
pub struct Processor<P: Provider> {
    shared: Arc<Shared<P>>,
}

struct Shared<P: Provider> {
    receiver: Arc<Receiver<P, AnyStore>>,
    /// Permits for running plus waiting events: when none is left, refuse.
    admission: Arc<Semaphore>,
    /// Permits for running events.
    running: Semaphore,
    config: ProcessingConfig,
    dead_letter: DeadLetterSink<P::Event>,
    /// The lines of ordered events, with [`Ordering`] on.
    sequencer: Option<Sequencer<P::Event>>,
    stats: Stats,
    shutdown: ShutdownHandle,
}

impl<P: Provider> Clone for Processor<P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<P: Provider> fmt::Debug for Processor<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processor")
            .field("config", &self.shared.config)
            .field("free_slots", &self.shared.admission.available_permits())
            .finish_non_exhaustive()
    }
}

impl<P: Provider> Processor<P> {
    /// A processor committing and releasing claims in `receiver`'s store. Dead
    /// letters go to `dead_letter`, or, when `None`, are kept in a bounded,
    /// replayable list ([`dead_letters`](Self::dead_letters)). With `ordering`, the
    /// events of one resource run one after another.
    pub(crate) fn new(
        receiver: Arc<Receiver<P, AnyStore>>,
        config: ProcessingConfig,
        dead_letter: Option<Arc<dyn DeadLetterHandler<P::Event>>>,
        ordering: Option<Ordering<P::Event>>,
        stats: Stats,
        shutdown: ShutdownHandle,
    ) -> Self {
        let concurrency = config.concurrency.max(1);
        let dead_letter = match dead_letter {
            Some(handler) => DeadLetterSink::Call(handler),
            None => DeadLetterSink::Keep(DeadLetters::new(DEFAULT_KEPT_DEAD_LETTERS)),
        };
        let processor = Self {
            shared: Arc::new(Shared {
                receiver,
                admission: Arc::new(Semaphore::new(
                    concurrency.saturating_add(config.queue_capacity),
                )),
                running: Semaphore::new(concurrency),
                config,
                dead_letter,
                sequencer: ordering.map(Sequencer::new),
                stats,
                shutdown,
            }),
        };
        if let DeadLetterSink::Keep(kept) = &processor.shared.dead_letter {
            // Weak: the list lives in the processor, which must not keep itself alive.
            let weak = Arc::downgrade(&processor.shared);
            kept.set_replayer(Arc::new(move |kept: Kept<P::Event>| {
                let Some(shared) = weak.upgrade() else {
                    return Err(Box::new((
                        kept,
                        Rejection::new(RejectionKind::ShuttingDown),
                    )));
                };
                Processor { shared }.replay(kept)
            }));
        }
        processor
    }

    /// Holds `claim` for this processor's receiver: the one owner that ends it.
    pub(crate) fn hold(&self, claim: Claim) -> HeldClaim<P> {
        let shared = &self.shared;
        HeldClaim::new(
            claim,
            shared.receiver.clone(),
            shared.stats.clone(),
            shared.shutdown.clone(),
        )
    }

    /// Takes an accepted event for background processing, or refuses it.
    ///
    /// `job`, the handler `lane` (its name, or `""` for one given per request), is
    /// called once per attempt with the delivery. The event's run is admitted now,
    /// when this is called; the future returned confirms its claim (redeliveries
    /// are answered `200`) and spawns the run: `Ok`, answer the sender `200`.
    /// Refused (`503`: shutting down, or queue full), the future releases the claim
    /// and the sender should retry.
    ///
    /// Not an `async fn`: the delivery, the claim and the job go into the admitted
    /// run here, so the future keeps only what is left to do. An `async fn` would
    /// hold them in its state twice (as passed, and as its own variables), and
    /// every request's future holds this one.
    pub(crate) fn submit<J, F>(
        &self,
        lane: &str,
        delivery: Delivery<P::Event>,
        claim: HeldClaim<P>,
        job: J,
    ) -> impl Future<Output = Result<(), Rejection>> + Send + use<P, J, F>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let admitted = match self.admit() {
            Ok(permit) => {
                // Confirmed only once the event is owned by its admitted run (which
                // runs even if the future is dropped before): a redelivery answered 200
                // before that could be followed by a refusal of this one. Confirmed
                // before the run starts, so that a redelivery meanwhile is a duplicate,
                // not a `409`.
                let confirmation = claim.claim().cloned();
                // Taken now, in the order events are accepted: the order of their runs.
                let place = self.place(lane, &delivery);
                let run = self.admit_run(delivery, Some(claim), place, job, permit);
                Ok((run, confirmation))
            }
            Err(refused) => Err((refused, claim)),
        };
        let processor = self.clone();
        async move {
            match admitted {
                Ok((Some(run), confirmation)) => {
                    if let Some(claim) = confirmation {
                        processor.confirm(&claim).await;
                    }
                    run.start();
                    Ok(())
                }
                Ok((None, _)) => Err(Rejection::new(RejectionKind::ShuttingDown)),
                Err((refused, claim)) => {
                    // A failed release is logged; the claim stays provisional.
                    claim.release().await.unwrap_or_default();
                    Err(Rejection::new(refused))
                }
            }
        }
    }

    /// A place for one more event, running or waiting, or why there is none.
    fn admit(&self) -> Result<OwnedSemaphorePermit, RejectionKind> {
        let shared = &self.shared;
        if shared.shutdown.is_closed() {
            return Err(RejectionKind::ShuttingDown);
        }
        shared
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_full| RejectionKind::QueueFull)
    }

    /// An admitted event's run, tracked for the drain, to [`start`](Unstarted::start)
    /// (spawn). `None` when the
    /// shutdown handle closed since [`admit`](Self::admit): the run is dropped
    /// unstarted, and with it its claim, which `HeldClaim`'s `Drop` releases (a
    /// tracked task, so the drain waits for it). The check and the tracking are one
    /// step for a drain.
    fn admit_run<J, F>(
        &self,
        delivery: Delivery<P::Event>,
        claim: Option<HeldClaim<P>>,
        place: Option<Place>,
        job: J,
        permit: OwnedSemaphorePermit,
    ) -> Option<Unstarted<impl Future<Output = ()> + Send + Unpin + use<P, J, F>>>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        // Boxed here, once: the run's state machine (a few KiB: the delivery, the
        // job, the attempt with its timer) is then not copied again on its way
        // through the tracker and the spawn into the task.
        let work = Box::pin(
            self.clone()
                .run_with_retries(delivery, claim, place, job, permit)
                .instrument(tracing::Span::current()),
        );
        self.shared.shutdown.admit_unless_closed(work)
    }

    /// Confirms a claim whose event this processor owns now. Through a clone of the
    /// claim: the run may already have ended it, which the store reports and
    /// which is fine.
    async fn confirm(&self, claim: &Claim) {
        if let Err(error) = self.shared.receiver.confirm(claim).await {
            tracing::warn!(%error, key = %claim.key(), "could not confirm a webhook claim; redeliveries are answered 409 until it ends");
        }
    }

    /// Runs an accepted event once while the sender waits (ack-after-handler mode):
    /// commit on success; on failure release the claim so the sender's retry is
    /// processed, and answer `500`. The claim stays provisional (redeliveries are
    /// answered `409`) and is renewed while the handler runs; if this future is
    /// dropped (the sender hung up), the claim is released.
    pub(crate) async fn run_now<J, F>(
        &self,
        lane: &str,
        delivery: Delivery<P::Event>,
        claim: HeldClaim<P>,
        mut job: J,
    ) -> Result<(), Rejection>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let shared = &self.shared;
        let place = self.place(lane, &delivery);
        let run = async {
            let turn = self.turn(place).await?;
            let result = self.timed_attempt(job(delivery)).await;
            turn.done(&result);
            Some(result)
        };
        let result = shared
            .shutdown
            .track(renewing(&claim, std::pin::pin!(run)))
            .await;
        match result {
            // Run, or stale (`None`: acknowledged as done, never run, not processed).
            Some(Ok(())) | None => {
                if result.is_some() {
                    shared.stats.processed();
                }
                // A failed commit is logged; the handler's work is done either way.
                claim.commit().await.unwrap_or_default();
                Ok(())
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "webhook handler failed; the sender will retry");
                claim.release().await.unwrap_or_default();
                Err(Rejection::new(RejectionKind::HandlerFailed).with_detail(error.to_string()))
            }
        }
    }

    /// One event's background run: waits for a running slot, attempts under the
    /// retry policy, then commits (processed or dead-lettered, the event is
    /// accounted for: a redelivery must not run it again). The claim is renewed
    /// all along, queued or running. A replayed dead letter has no claim.
    ///
    /// Not an `async fn`, which would hold its arguments twice in the run's state.
    #[allow(clippy::manual_async_fn)]
    fn run_with_retries<J, F>(
        self,
        delivery: Delivery<P::Event>,
        claim: Option<HeldClaim<P>>,
        place: Option<Place>,
        mut job: J,
        admitted: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + use<P, J, F>
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        async move {
            let result = {
                let mut work = std::pin::pin!(async {
                    let waiting = self.shared.stats.waiting();
                    // Its turn first, then a running slot: an event waiting behind another
                    // of its resource must not hold a slot others could run in.
                    let Some(turn) = self.turn(place).await else {
                        // Stale: acknowledged as done.
                        return Ok(());
                    };
                    // Never closed, so never an error.
                    let _running = self.shared.running.acquire().await.ok();
                    drop(waiting);
                    let result = self.attempts(&delivery, &mut job).await;
                    turn.done(&result);
                    result
                });
                match &claim {
                    Some(claim) => renewing(claim, work).await,
                    None => work.as_mut().await,
                }
            };
            match claim {
                // A failed commit is logged; the event was run either way.
                Some(claim) => claim.commit().await.unwrap_or_default(),
                None => self.shared.stats.finished(),
            }
            if let Err((error, attempts)) = result {
                let letter = DeadLetter {
                    delivery,
                    error,
                    attempts,
                };
                match &self.shared.dead_letter {
                    DeadLetterSink::Keep(kept) => kept.keep(letter, boxed_job(job)),
                    DeadLetterSink::Call(handler) => call_handler(handler.as_ref(), letter),
                }
            }
            drop(admitted);
        }
    }

    /// Runs a kept dead letter again, without a claim (its event is committed).
    fn replay(&self, kept: Kept<P::Event>) -> Result<(), Refused<P::Event>> {
        let permit = match self.admit() {
            Ok(permit) => permit,
            Err(refused) => return Err(Box::new((kept, Rejection::new(refused)))),
        };
        let Kept { id, letter, job } = kept;
        // The job is lent to the run through a slot, so that a run dropped unstarted
        // (shutdown closed since `admit`) leaves it behind to be kept again.
        let slot = Arc::new(Mutex::new(Some(job)));
        let lent = slot.clone();
        let run = move |delivery| match lent.lock().unwrap_or_else(PoisonError::into_inner).as_mut()
        {
            Some(job) => job(delivery),
            None => Box::pin(async { Err(HandlerError::Failed("replayed job gone".into())) }),
        };
        self.shared.stats.accepted();
        // An operator's explicit request: outside the resource's line.
        if let Some(run) = self.admit_run(letter.delivery.clone(), None, None, run, permit) {
            run.start();
            return Ok(());
        }
        self.shared.stats.finished();
        let unstarted = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        match unstarted {
            Some(job) => Err(Box::new((
                Kept { id, letter, job },
                Rejection::new(RejectionKind::ShuttingDown),
            ))),
            // Unreachable: an unstarted run never took the job.
            None => Ok(()),
        }
    }

    /// Runs `job` on `delivery` under the retry policy and the handler timeout:
    /// attempts until one succeeds, with exponential backoff between them, counting
    /// processed, retried and dead-lettered events. After the last failed attempt,
    /// returns the dead letter for the caller to record and hand to
    /// [`dead_letter`](Self::dead_letter).
    ///
    /// A durable queue's workers run it for the deliveries they read back.
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
            match self.timed_attempt(job(delivery.clone())).await {
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

    /// `delivery`'s place in its resource's line for the handler `lane`, taken now;
    /// `None` without ordering or a key.
    pub(crate) fn place(&self, lane: &str, delivery: &Delivery<P::Event>) -> Option<Place> {
        let sequencer = self.shared.sequencer.as_ref()?;
        sequencer.place(self.shared.receiver.provider(), lane, delivery)
    }

    /// Waits for the event's turn in its resource's line ([`Turn::done`] ends it);
    /// `None` when the event is stale (a newer event of its resource was applied):
    /// skipped, counted, never run. Without a place (no ordering, or no key), a turn
    /// that orders nothing.
    pub(crate) async fn turn(&self, place: Option<Place>) -> Option<Turn<'_, P::Event>> {
        let (Some(sequencer), Some(place)) = (&self.shared.sequencer, place) else {
            return Some(Turn::unordered());
        };
        let turn = sequencer.turn(place).await;
        if turn.is_none() {
            self.shared.stats.stale();
            tracing::info!("a newer event of this resource was applied: skipped as stale");
        }
        turn
    }

    /// One attempt of the handler ([`attempt`]), its duration and result counted.
    async fn timed_attempt<F>(&self, run: F) -> Result<(), HandlerError>
    where
        F: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let result = attempt(run, self.shared.config.handler_timeout).await;
        self.shared.stats.handler_run(started.elapsed(), &result);
        result
    }

    /// Hands the dead letter of a durably stored event to the dead-letter callback,
    /// if one is set (a panic in it is caught). The durable queue keeps the event
    /// itself, so nothing is kept in memory.
    pub fn dead_letter(&self, letter: DeadLetter<P::Event>) {
        match &self.shared.dead_letter {
            DeadLetterSink::Call(handler) => call_handler(handler.as_ref(), letter),
            // The queue keeps the event: only its log line here.
            DeadLetterSink::Keep(_) => LogDeadLetter.dead_letter(letter),
        }
    }

    /// The dead letters kept in memory: empty when a callback receives them
    /// instead, or a durable queue keeps them.
    pub(crate) fn dead_letters(&self) -> Option<&DeadLetters<P::Event>> {
        match &self.shared.dead_letter {
            DeadLetterSink::Keep(kept) => Some(kept),
            DeadLetterSink::Call(_) => None,
        }
    }

    /// Takes an accepted event into a durable queue instead of this process: commits
    /// the claim once the queue has stored it (the queue's workers now own the event;
    /// a queue on the store's server commits it in the same step),
    /// or releases it and refuses with `503` when the queue cannot store it
    /// (`queue_full` when it is at its bound, else `store_unavailable`). If this
    /// future is dropped while the queue stores, the claim is released.
    pub(crate) async fn enqueue(
        &self,
        queue: &dyn DurableQueue<P>,
        handler: &str,
        head: &Parts,
        delivery: &Delivery<P::Event>,
        claim: HeldClaim<P>,
    ) -> Result<(), Rejection> {
        if self.shared.shutdown.is_closed() {
            claim.release().await.unwrap_or_default();
            return Err(Rejection::new(RejectionKind::ShuttingDown));
        }
        let Some(held) = claim.claim() else {
            return Err(Rejection::new(RejectionKind::HandlerFailed)
                .with_detail("the claim had ended before the event was stored"));
        };
        let store = self.shared.receiver.store();
        let line = self.line(handler, delivery);
        let mut entry = Enqueue::new(handler, head, delivery, held, store);
        if let Some(line) = &line {
            entry = entry.ordered(line);
        }
        // Failures to end the claim are logged by the claim.
        match queue.enqueue(entry).await {
            Ok(Stored::Committed) => {
                claim.committed_by_queue();
                Ok(())
            }
            Ok(Stored::Uncommitted) => {
                claim.commit().await.unwrap_or_default();
                Ok(())
            }
            Err(error) => {
                claim.release().await.unwrap_or_default();
                Err(queue_refused(&error))
            }
        }
    }

    /// Takes a verified, unclaimed event into a durable queue that claims, stores
    /// and commits it in one atomic step ([`DurableQueue::enqueue_if_new`]); `None`
    /// when the queue cannot, and the event is still unclaimed. Refused with `503`
    /// while shutting down, or when the queue cannot store it.
    pub(crate) async fn enqueue_if_new(
        &self,
        queue: &dyn DurableQueue<P>,
        handler: &str,
        head: &Parts,
        delivery: &Delivery<P::Event>,
    ) -> Option<Result<IfNew, Rejection>> {
        if self.shared.shutdown.is_closed() {
            return Some(Err(Rejection::new(RejectionKind::ShuttingDown)));
        }
        let line = self.line(handler, delivery);
        let mut entry = Unclaimed::new(handler, head, delivery, self.shared.receiver.store());
        if let Some(line) = &line {
            entry = entry.ordered(line);
        }
        let stored = queue.enqueue_if_new(entry)?.await;
        Some(stored.map_err(|error| queue_refused(&error)))
    }

    /// With ordering on, the name of `delivery`'s line for the handler `lane`.
    fn line(&self, lane: &str, delivery: &Delivery<P::Event>) -> Option<Arc<str>> {
        let sequencer = self.shared.sequencer.as_ref()?;
        let (line, _) = sequencer.line(self.shared.receiver.provider(), lane, delivery)?;
        Some(line)
    }

    /// The core receiver, whose store holds the claims.
    pub fn receiver(&self) -> &Arc<Receiver<P, AnyStore>> {
        &self.shared.receiver
    }

    /// How many events run at once: a durable queue's workers read no more.
    pub fn concurrency(&self) -> usize {
        self.shared.config.concurrency
    }

    /// The handle that drains this processor's work: a durable queue's readers run
    /// as its tasks, and stop when it closes.
    pub fn shutdown_handle(&self) -> &ShutdownHandle {
        &self.shared.shutdown
    }
}

/// The answer when a durable queue could not store an event: `503`, `queue_full`
/// when it is at its bound, else `store_unavailable`.
fn queue_refused(error: &hookwise_core::StoreError) -> Rejection {
    let kind = if error.is_full() {
        RejectionKind::QueueFull
    } else {
        RejectionKind::StoreUnavailable
    };
    Rejection::new(kind).with_detail(format!("durable queue: {error}"))
}

/// Drives `work` while renewing `claim`'s lease every third of the store's lease, so
/// an event that waits in the queue or runs through many retries keeps its key.
///
/// `work` comes pinned by the caller: pinned here, it would be held twice in this
/// future's state (as passed, and pinned).
async fn renewing<P, F>(claim: &HeldClaim<P>, mut work: Pin<&mut F>) -> F::Output
where
    P: Provider,
    F: Future,
{
    let every = claim.lease_period() / 3;
    loop {
        match tokio::time::timeout(every, work.as_mut()).await {
            Ok(output) => return output,
            Err(_heartbeat) => claim.renew().await,
        }
    }
}

/// A handler job boxed for keeping with its dead letter.
fn boxed_job<E, J, F>(mut job: J) -> HandlerJob<E>
where
    J: FnMut(Delivery<E>) -> F + Send + 'static,
    F: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Box::new(move |delivery| Box::pin(job(delivery)) as HandlerRun)
}
