//! One attempt of a handler: its panic caught, its run cut at the timeout.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use crate::HandlerError;

/// One run of the handler: a panic is caught and a run past the timeout is cancelled
/// (dropped), without a task of its own, so a run costs no extra spawn and wake-up.
/// The run is pinned in this future's own state, not boxed.
pub(crate) async fn attempt<F>(run: F, timeout: Duration) -> Result<(), HandlerError>
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

pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "non-string panic payload".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}
