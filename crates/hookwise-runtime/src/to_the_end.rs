//! [`ToTheEnd`]: a call a durable queue drives to its end even when the request that
//! made it is dropped.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

/// A call polled on its caller's task that, dropped before its end (the request was
/// cut), goes on in the background to its end, where its output is dropped: what the
/// output holds (a stored delivery taken for a run here, in
/// [`DurableQueue::enqueue_if_new`](crate::DurableQueue::enqueue_if_new)) is then
/// given back by its own `Drop`, not left to a timeout. Polling it on the caller's
/// task, rather than spawning every call, saves a spawn and a wake-up per call.
///
/// ```
/// use hookwise_runtime::ToTheEnd;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tell, told) = tokio::sync::oneshot::channel();
/// let call = ToTheEnd::new(
///     async move { tell.send("ran to its end").ok() },
///     tokio::runtime::Handle::current(),
/// );
/// drop(call); // the caller stops waiting
/// assert_eq!(told.await, Ok("ran to its end"));
/// # }
/// ```
pub struct ToTheEnd<F: Future + Send + 'static> {
    /// `None` once it has answered.
    call: Option<Pin<Box<F>>>,
    /// Where the rest of a dropped call runs when the drop happens outside a
    /// runtime.
    runtime: tokio::runtime::Handle,
}

impl<F: Future + Send + 'static> ToTheEnd<F> {
    /// `call`, to be driven to its end: on the current tokio runtime when dropped
    /// within one, else on `runtime` (dropped unrun if that runtime has shut down).
    pub fn new(call: F, runtime: tokio::runtime::Handle) -> Self {
        Self {
            call: Some(Box::pin(call)),
            runtime,
        }
    }
}

impl<F: Future + Send + 'static> Future for ToTheEnd<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Polled again after its answer: nothing more will come.
        let Some(call) = self.call.as_mut() else {
            return Poll::Pending;
        };
        let output = ready!(call.as_mut().poll(cx));
        self.call = None;
        Poll::Ready(output)
    }
}

impl<F: Future + Send + 'static> Drop for ToTheEnd<F> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let runtime =
                tokio::runtime::Handle::try_current().unwrap_or_else(|_| self.runtime.clone());
            drop(runtime.spawn(async move {
                drop(call.await);
            }));
        }
    }
}

impl<F: Future + Send + 'static> std::fmt::Debug for ToTheEnd<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToTheEnd")
            .field("answered", &self.call.is_none())
            .finish_non_exhaustive()
    }
}
