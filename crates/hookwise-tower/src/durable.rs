//! Durable queues: ack-fast mode that survives the process.
//!
//! By default an accepted event waits in this process's memory until its handler has
//! run; if the process dies after the `200`, the event is gone. With a
//! [`DurableQueue`] (`WebhookLayer::durable_queue`), the layer stores the accepted
//! delivery in the queue before it answers, and the queue's workers, in this process
//! or another, run the handler for it with the same retries, timeout and dead
//! letters. `hookwise-redis` provides one on Redis Streams.

use std::{future::Future, pin::Pin, sync::Arc};

use hookwise_core::{DedupeStore, Delivery, Provider, StoreError};
use http::request::Parts;

use crate::{HandlerError, Processor};

/// One run of a handler.
pub type HandlerRun = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

/// The handler for one stored request head: called once per attempt.
pub type HandlerJob<E> = Box<dyn FnMut(Delivery<E>) -> HandlerRun + Send>;

/// Makes the handler job for a stored request head (method, URI, headers): the
/// layer's inner service, called as it would have been for the original request.
pub type HandlerFactory<E> = Arc<dyn Fn(Parts) -> HandlerJob<E> + Send + Sync>;

/// What a durable queue's workers need to run stored deliveries.
pub struct Workers<P: Provider, S: DedupeStore> {
    /// Rebuilds deliveries (`Receiver::restore`) and runs them with the layer's
    /// retries, timeout, dead letters and stats; its shutdown handle tracks the work.
    pub processor: Processor<P, S>,
    /// The handler of the route the deliveries came in on.
    pub handler: HandlerFactory<P::Event>,
}

/// A durable queue, shared.
pub type SharedQueue<P, S> = Arc<dyn DurableQueue<P, S>>;

/// A future a durable queue returns.
pub type QueueFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where ack-fast mode keeps accepted events until a handler has run them, so that
/// no `200` is lost when the process dies.
///
/// `route` names the handler a delivery must be run by: a layer names the services it
/// makes `layer-0`, `layer-1`, ... in the order it makes them (one per route it
/// wraps), so instances built by the same code agree on the names; the axum
/// extractor's durable state takes a name of your choice.
pub trait DurableQueue<P: Provider, S: DedupeStore>: Send + Sync + 'static {
    /// Stores an accepted delivery and the head of its request. `Ok` only once it is
    /// stored: the layer answers `200` after this, and `503` on an error.
    fn enqueue<'a>(
        &'a self,
        route: &'a str,
        head: &'a Parts,
        delivery: &'a Delivery<P::Event>,
    ) -> QueueFuture<'a, ()>;

    /// Starts the workers that run the deliveries stored for `route`, until the
    /// processor's shutdown handle closes.
    fn start(&self, route: &str, workers: Workers<P, S>);
}

impl<P: Provider, S: DedupeStore> std::fmt::Debug for Workers<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}
