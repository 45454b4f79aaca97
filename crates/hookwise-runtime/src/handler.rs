//! Handlers: what runs an accepted event, and how a run fails.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use hookwise_core::Delivery;
use http::StatusCode;

/// A boxed error, as handlers, bodies and services report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One run of a handler.
pub type HandlerRun = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

/// A handler kept with its dead letter, to replay it: called once per attempt.
pub type HandlerJob<E> = Box<dyn FnMut(Delivery<E>) -> HandlerRun + Send>;

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
    /// A failure from any error type; a `HandlerError` boxed on its way is kept as
    /// it was.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        match error.into().downcast::<HandlerError>() {
            Ok(error) => *error,
            Err(error) => Self::Failed(error.to_string()),
        }
    }
}

/// A handler registered by name with
/// [`WebhooksBuilder::handler`](crate::WebhooksBuilder::handler): the function that
/// runs every event handed to that name, in this process or, with a durable queue,
/// in whichever instance reads it back. Cheap to clone.
pub struct Handler<E> {
    name: Arc<str>,
    run: Arc<dyn Fn(Delivery<E>) -> HandlerRun + Send + Sync>,
}

impl<E: Send + Sync + 'static> Handler<E> {
    pub(crate) fn new<H, F, Err>(name: &str, handler: H) -> Self
    where
        H: Fn(Delivery<E>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), Err>> + Send + 'static,
        Err: Into<BoxError>,
    {
        Self {
            name: name.into(),
            run: Arc::new(move |delivery| {
                let run = handler(delivery);
                Box::pin(async move { run.await.map_err(HandlerError::failed) })
            }),
        }
    }

    /// The name it was registered under: a durable queue's stream and consumer
    /// group are keyed by it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One run of the handler for `delivery`.
    pub fn run(&self, delivery: Delivery<E>) -> HandlerRun {
        (self.run)(delivery)
    }

    /// The handler as a job for the processor: one run per call.
    pub(crate) fn job(&self) -> impl FnMut(Delivery<E>) -> HandlerRun + Send + 'static {
        let run = self.run.clone();
        move |delivery| run(delivery)
    }
}

impl<E> Clone for Handler<E> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            run: self.run.clone(),
        }
    }
}

impl<E> std::fmt::Debug for Handler<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
