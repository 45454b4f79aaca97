//! Durable queues: ack-fast mode that survives the process.
//!
//! By default an accepted event waits in this process's memory until its handler has
//! run; if the process dies after the `200`, the event is gone. With a
//! [`DurableQueue`] ([`WebhooksBuilder::durable_queue`](crate::WebhooksBuilder::durable_queue)),
//! the runtime stores the accepted delivery in the queue before it answers, and the
//! queue's workers, in this process or another, run the handler registered under
//! the delivery's handler name, with the same retries, timeout and dead letters.
//! `hookwise-redis` provides one on Redis Streams.

use std::{future::Future, pin::Pin, sync::Arc};

use hookwise_core::{AnyStore, Claim, Delivery, Duplicate, Provider, Receiver, StoreError};
use http::request::Parts;

use crate::{DeadLetterStore, Handler, Processor};

/// What a durable queue's workers need to run the deliveries stored for one handler.
pub struct Workers<P: Provider> {
    /// Rebuilds deliveries (`Receiver::restore`) and runs them with the runtime's
    /// retries, timeout, dead letters and stats; its shutdown handle tracks the work.
    pub processor: Processor<P>,
    /// The handler, with the name its deliveries are stored under.
    pub handler: Handler<P::Event>,
}

/// A future a durable queue returns.
pub type QueueFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One accepted delivery for a durable queue to store.
#[derive(Debug)]
#[non_exhaustive]
pub struct Enqueue<'a, E> {
    /// The name of the handler that must run it.
    pub handler: &'a str,
    /// The head of its request (method, URI, headers).
    pub head: &'a Parts,
    /// The verified, parsed delivery.
    pub delivery: &'a Delivery<E>,
    /// Its dedupe claim, held in `store`.
    pub claim: &'a Claim,
    /// The receiver's dedupe store: a queue on the same server may commit `claim` in
    /// the same step as it stores the delivery ([`Stored::Committed`]).
    pub store: &'a AnyStore,
    /// With [`ordering`](crate::WebhooksBuilder::ordering) on, the name of the
    /// event's line (its handler, tenant and resource): a queue that can keeps the
    /// line's events one at a time, in the order stored, across instances.
    pub line: Option<&'a str>,
}

impl<'a, E> Enqueue<'a, E> {
    /// What the runtime hands [`DurableQueue::enqueue`]; public for queues' tests.
    pub fn new(
        handler: &'a str,
        head: &'a Parts,
        delivery: &'a Delivery<E>,
        claim: &'a Claim,
        store: &'a AnyStore,
    ) -> Self {
        Self {
            handler,
            head,
            delivery,
            claim,
            store,
            line: None,
        }
    }

    /// The same entry, in the line `line` ([`line`](Self::line)).
    #[must_use]
    pub fn ordered(mut self, line: &'a str) -> Self {
        self.line = Some(line);
        self
    }
}

/// A verified delivery whose event is not claimed yet, for a queue that claims,
/// stores and commits it in one atomic step ([`DurableQueue::enqueue_if_new`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Unclaimed<'a, E> {
    /// The name of the handler that must run it.
    pub handler: &'a str,
    /// The head of its request (method, URI, headers).
    pub head: &'a Parts,
    /// The verified, parsed delivery; its dedupe key is unclaimed.
    pub delivery: &'a Delivery<E>,
    /// The receiver's dedupe store, where the event's key is looked up and marked
    /// processed.
    pub store: &'a AnyStore,
    /// With [`ordering`](crate::WebhooksBuilder::ordering) on, the name of the
    /// event's line, as in [`Enqueue::line`].
    pub line: Option<&'a str>,
}

impl<'a, E> Unclaimed<'a, E> {
    /// What the runtime hands [`DurableQueue::enqueue_if_new`]; public for queues'
    /// tests.
    pub fn new(
        handler: &'a str,
        head: &'a Parts,
        delivery: &'a Delivery<E>,
        store: &'a AnyStore,
    ) -> Self {
        Self {
            handler,
            head,
            delivery,
            store,
            line: None,
        }
    }

    /// The same entry, in the line `line` ([`line`](Self::line)).
    #[must_use]
    pub fn ordered(mut self, line: &'a str) -> Self {
        self.line = Some(line);
        self
    }
}

/// What [`DurableQueue::enqueue_if_new`] did.
#[derive(Debug)]
pub enum IfNew {
    /// The event's key was free: the delivery is stored and the key marked
    /// processed, in one atomic step.
    Stored,
    /// As [`Stored`](Self::Stored), and in the same step the queue gave the stored
    /// delivery to this instance's workers: the runtime runs it now, from the
    /// delivery it holds (nothing is read back or parsed again), and hands the
    /// result to the [`RunHere`].
    StoredToRunHere(RunHere),
    /// The key was taken, in this state: nothing stored, nothing changed.
    Duplicate(Duplicate),
}

/// What a run's end is: `Ok` once the handler succeeded, else the error and the
/// attempts to store with the dead letter (0: the delivery was never run).
pub type RunResult = Result<(), (String, u32)>;

/// The end of a run that a durable queue gave to the instance that stored it
/// ([`IfNew::StoredToRunHere`]): the runtime runs the delivery with the handler's
/// retries, timeout and dead-letter callback, then calls [`finish`](Self::finish)
/// with the result, which acknowledges the stored delivery or dead-letters it.
///
/// Dropped unfinished (the run panicked, or was cut by the process's end), it leaves
/// the stored delivery to the queue's recovery, as a worker that died would: another
/// worker takes it over and runs it. At least once.
///
/// ```
/// use hookwise_runtime::RunHere;
///
/// let (tell, told) = tokio::sync::oneshot::channel();
/// let run = RunHere::new(move |result| async move {
///     let _ = tell.send(result.is_ok());
/// });
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// run.finish(Ok(())).await;
/// assert!(told.await?);
/// # Ok::<(), tokio::sync::oneshot::error::RecvError>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RunHere {
    finish: Box<dyn FnOnce(RunResult) -> Finishing + Send>,
}

/// What [`RunHere`]'s end does once called.
type Finishing = Pin<Box<dyn Future<Output = ()> + Send>>;

impl RunHere {
    /// A run's end that calls `finish` with the run's result.
    pub fn new<F, Fut>(finish: F) -> Self
    where
        F: FnOnce(RunResult) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            finish: Box::new(move |result| Box::pin(finish(result))),
        }
    }

    /// Ends the run with `result`.
    pub async fn finish(self, result: RunResult) {
        (self.finish)(result).await;
    }
}

impl std::fmt::Debug for RunHere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHere").finish_non_exhaustive()
    }
}

/// What a durable queue did with an accepted delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored; the runtime commits the claim next. Should the process die in
    /// between, the claim expires with its lease and the sender's retry stores the
    /// event a second time: at least once.
    Uncommitted,
    /// Stored and the claim committed in one atomic step: there is no moment when
    /// the delivery is stored and its event not marked done, or the other way round.
    Committed,
}

/// Where ack-fast mode keeps accepted events until a handler has run them, so that
/// no `200` is lost when the process dies.
///
/// Deliveries are stored under the name of the handler that must run them (see
/// [`WebhooksBuilder::handler`](crate::WebhooksBuilder::handler)): every instance
/// built by the same code registers the same names, so whichever instance reads a
/// delivery back runs it with the same handler, and adding a handler never moves
/// stored deliveries to another one.
pub trait DurableQueue<P: Provider>: Send + Sync + 'static {
    /// Stores an accepted delivery for the handler named `entry.handler`. `Ok` only
    /// once it is stored: the runtime answers `200` after this, and `503` on an
    /// error (`queue_full` when [`StoreError::is_full`]). A queue that can commit the
    /// claim in the same atomic step (it shares the store's server) does, and says
    /// so with [`Stored::Committed`].
    fn enqueue<'a>(&'a self, entry: Enqueue<'a, P::Event>) -> QueueFuture<'a, Stored>;

    /// Looks the event's key up in the receiver's store and, if it is free, stores
    /// the delivery for `entry.handler` and marks the key processed, all in one
    /// atomic step: [`IfNew::Stored`], and the runtime answers `200`; or
    /// [`IfNew::StoredToRunHere`] when the queue gave the stored delivery to this
    /// instance's workers in the same step, and the runtime runs it from the
    /// delivery it holds, then hands the result back to the queue. A key found
    /// taken is answered as a duplicate ([`IfNew::Duplicate`]: `200`, or `409` while
    /// the claim holding it is provisional), and nothing is stored. On an error
    /// nothing is stored and nothing marked: `503` (`queue_full` when
    /// [`StoreError::is_full`]).
    ///
    /// One round trip where [`enqueue`](Self::enqueue) needs two (the claim, then the
    /// store with the commit), and no claim to give back: a call whose reply is lost
    /// or that is dropped either did everything or nothing, and the sender's retry
    /// finds the key marked or free. The runtime uses it when it receives a delivery
    /// for a handler named up front ([`Webhooks::deliver_to`](crate::Webhooks::deliver_to),
    /// `hookwise-tower`'s `WebhookEndpoint`).
    ///
    /// `None`, the default, when this queue cannot do it for `entry.store` (it does
    /// not share the store's server): the runtime then claims the event in the
    /// store and calls [`enqueue`](Self::enqueue).
    fn enqueue_if_new<'a>(
        &'a self,
        entry: Unclaimed<'a, P::Event>,
    ) -> Option<QueueFuture<'a, IfNew>> {
        let _ = entry;
        None
    }

    /// Starts the workers that run the deliveries stored for `workers.handler`,
    /// until the processor's shutdown handle closes. Called once per handler, when
    /// the runtime is built.
    fn start(&self, workers: Workers<P>);

    /// The dead letters this queue keeps, for an admin to list, show, replay and
    /// delete ([`Webhooks::dead_letter_store`](crate::Webhooks::dead_letter_store)).
    /// `receiver` restores a stored delivery, to name its event's type. `None`, the
    /// default, when the queue gives no such access.
    fn dead_letter_store(
        &self,
        receiver: &Arc<Receiver<P, AnyStore>>,
    ) -> Option<Arc<dyn DeadLetterStore>> {
        let _ = receiver;
        None
    }
}

impl<P: Provider> Workers<P> {
    /// Runs a delivery read back from the queue: restores it as its receiver parsed
    /// it ([`Receiver::restore`](hookwise_core::Receiver::restore), `head` being the
    /// stored request's), then runs the handler with the runtime's retries,
    /// timeout and dead-letter callback (a panic in the callback is caught there).
    ///
    /// `Err` carries the error and the attempts to store with the dead letter: every
    /// attempt failed, or the delivery no longer parses (0 attempts, never run).
    pub async fn run_stored(
        &self,
        head: &Parts,
        body: bytes::Bytes,
        received_at: std::time::Duration,
        verified: hookwise_core::Verified,
    ) -> RunResult {
        let delivery = match self.processor.receiver().restore(
            head.uri.path(),
            &head.headers,
            body,
            received_at,
            verified,
        ) {
            Ok(delivery) => delivery,
            Err(rejection) => {
                tracing::error!(%rejection, "a queued delivery no longer parses; dead-lettered");
                return Err((rejection.to_string(), 0));
            }
        };
        self.run(delivery).await
    }

    /// Runs a stored delivery, as parsed: the handler with the runtime's retries,
    /// timeout and dead-letter callback. `Err` as for [`run_stored`](Self::run_stored).
    pub async fn run(&self, delivery: Delivery<P::Event>) -> RunResult {
        let processor = &self.processor;
        // With ordering, one event of a resource at a time in this instance.
        let place = processor.place(self.handler.name(), &delivery);
        let Some(turn) = processor.turn(place).await else {
            // Stale: done, acknowledged, never run.
            return Ok(());
        };
        let result = processor
            .process(delivery, |delivery| self.handler.run(delivery))
            .await;
        turn.done(&result);
        match result {
            Ok(()) => Ok(()),
            Err(letter) => {
                let failure = (letter.error.to_string(), letter.attempts);
                processor.dead_letter(letter);
                Err(failure)
            }
        }
    }
}

impl<P: Provider> std::fmt::Debug for Workers<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("processor", &self.processor)
            .field("handler", &self.handler)
            .finish()
    }
}

/// A request head as durable queues store it: the method, the URI, and the headers
/// as `name: value\r\n` lines (header values never hold CR or LF), so that a
/// delivery read back is restored with the head it came with.
///
/// ```
/// use hookwise_runtime::StoredHead;
///
/// let request = http::Request::post("/webhooks/hoursmith?x=1")
///     .header("hoursmith-signature", "t=1,v1=ab")
///     .body(())?;
/// let (head, ()) = request.into_parts();
/// let stored = StoredHead::of(&head);
/// let back = stored.to_parts().expect("what it stored, it reads");
/// assert_eq!(back.uri, "/webhooks/hoursmith?x=1");
/// assert_eq!(back.headers["hoursmith-signature"], "t=1,v1=ab");
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHead {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The URI, as it was requested.
    pub uri: String,
    /// The headers, `name: value\r\n` each.
    pub headers: Vec<u8>,
}

impl StoredHead {
    /// The stored form of `head`.
    pub fn of(head: &Parts) -> Self {
        // Sized first: grown header by header, it was reallocated about five times.
        let room = head
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        let mut headers = Vec::with_capacity(room);
        for (name, value) in &head.headers {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.extend_from_slice(b": ");
            headers.extend_from_slice(value.as_bytes());
            headers.extend_from_slice(b"\r\n");
        }
        Self {
            method: head.method.as_str().to_owned(),
            uri: head.uri.to_string(),
            headers,
        }
    }

    /// The head back; `None` when a part no longer reads (a garbled store).
    pub fn to_parts(&self) -> Option<Parts> {
        let mut request = http::Request::new(());
        *request.method_mut() = http::Method::from_bytes(self.method.as_bytes()).ok()?;
        *request.uri_mut() = self.uri.parse().ok()?;
        let headers = request.headers_mut();
        for line in self
            .headers
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let line = line.strip_suffix(b"\r")?;
            let colon = line.iter().position(|b| *b == b':')?;
            let name = http::HeaderName::from_bytes(&line[..colon]).ok()?;
            let value =
                http::HeaderValue::from_bytes(line[colon + 1..].strip_prefix(b" ")?).ok()?;
            headers.append(name, value);
        }
        Some(request.into_parts().0)
    }
}
