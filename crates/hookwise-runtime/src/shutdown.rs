//! Graceful shutdown: stop taking deliveries, finish what was accepted.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering, fence},
    },
    time::Duration,
};

use tokio_util::task::{TaskTracker, task_tracker::TrackedFuture};

/// Work a drain waits for, not started yet ([`ShutdownHandle::admit_unless_closed`]):
/// a run is admitted before its claim is confirmed and started after.
/// Dropped unstarted (its caller was cancelled), it is spawned: it runs either way.
pub(crate) struct Unstarted<F: Future<Output = ()> + Send + Unpin + 'static>(
    Option<TrackedFuture<F>>,
);

impl<F: Future<Output = ()> + Send + Unpin + 'static> Unstarted<F> {
    /// Spawns the work as a task of its own. Not polled here first: on the
    /// request's task a run's poll sits on top of the server's whole stack, and in a
    /// debug build a handler through the layer with `sqlx` came within about 100 KiB
    /// of a worker's 2 MiB (BENCHMARKS.md, section 13).
    pub(crate) fn start(mut self) {
        if let Some(work) = self.0.take() {
            tokio::spawn(work);
        }
    }
}

impl<F: Future<Output = ()> + Send + Unpin + 'static> Drop for Unstarted<F> {
    fn drop(&mut self) {
        if let Some(work) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(work)),
                // No runtime to run it on (it is shutting down): dropped, and with it
                // whatever it holds, a claim released by its own `Drop`.
                Err(_) => drop(work),
            }
        }
    }
}

/// Stops a receiver from taking deliveries and waits for accepted events to finish.
///
/// Every adapter of one [`Webhooks`](crate::Webhooks) runtime shares the handle
/// ([`Webhooks::shutdown_handle`](crate::Webhooks::shutdown_handle)). After
/// [`close`](Self::close), new deliveries are answered `503` with `Retry-After`
/// (`shutting_down`), so their senders retry later, against the next process.
///
/// It composes with `axum::serve(..).with_graceful_shutdown(..)`: close the handle
/// when the signal arrives, let the server finish the open requests, then
/// [`drain`](Self::drain) the background work (durable readers included):
///
/// ```no_run
/// # use std::time::Duration;
/// # use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// # use hookwise_runtime::Webhooks;
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let webhooks = Webhooks::new(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?);
/// let shutdown = webhooks.shutdown_handle();
/// let closing = shutdown.clone();
/// let stop_signal = async move {
///     let _ = tokio::signal::ctrl_c().await;
///     closing.close(); // from now on: 503 + Retry-After
/// };
/// // axum::serve(listener, app).with_graceful_shutdown(stop_signal).await?;
/// # stop_signal.await;
/// let report = shutdown.drain(Duration::from_secs(30)).await;
/// assert_eq!(report.unfinished, 0, "events still running at the deadline");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    closing: AtomicBool,
    tracker: TaskTracker,
}

/// What a drain left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Accepted events still running (or waiting to retry) at the deadline.
    pub unfinished: usize,
}

impl ShutdownHandle {
    /// Stops taking deliveries: from now on they are answered `503` + `Retry-After`.
    pub fn close(&self) {
        self.state.closing.store(true, Ordering::SeqCst);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.closing.load(Ordering::SeqCst)
    }

    /// Waits, up to `deadline`, for every accepted event to finish; reports how many
    /// did not. Call it after [`close`](Self::close) (or use
    /// [`shutdown`](Self::shutdown)), or new events may keep arriving.
    pub async fn drain(&self, deadline: Duration) -> ShutdownReport {
        // Pairs with the fence in `spawn_unless_closed`: a spawn that did not see
        // `closing` has made its task count visible to the wait below.
        fence(Ordering::SeqCst);
        self.state.tracker.close();
        let _ = tokio::time::timeout(deadline, self.state.tracker.wait()).await;
        let unfinished = self.state.tracker.len();
        if unfinished > 0 {
            tracing::error!(
                unfinished,
                ?deadline,
                "webhook events still running at the shutdown deadline"
            );
        }
        ShutdownReport { unfinished }
    }

    /// [`close`](Self::close), then [`drain`](Self::drain).
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.close();
        self.drain(deadline).await
    }

    /// How many tasks a drain would wait for now: events queued, running or waiting
    /// to retry, claims being ended, and a durable queue's readers (one per named
    /// handler while the handle is open). For monitoring and tests: a count that
    /// grows with connections, not with work, is a leak.
    pub fn tasks(&self) -> usize {
        self.state.tracker.len()
    }

    /// Runs `work` as a tracked task: drains wait for it. Durable queue workers use it
    /// for the deliveries they run.
    pub fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.state.tracker.spawn(work);
    }

    /// Admits `work` as tracked unless [`close`](Self::close) was called, in which
    /// case it is dropped unstarted and `None` returned. Atomic with respect to a
    /// drain: a drain either waits for the work, or the work is refused; never work
    /// that runs after a drain reported nothing unfinished.
    ///
    /// The work is not started yet: [`Unstarted::start`] runs it, and dropping it
    /// unstarted spawns it, so that admitted work runs either way.
    pub(crate) fn admit_unless_closed<F>(&self, work: F) -> Option<Unstarted<F>>
    where
        F: Future<Output = ()> + Send + Unpin + 'static,
    {
        // Counted before the check: a drain that starts after this exists waits
        // for it.
        let tracked = self.state.tracker.track_future(work);
        fence(Ordering::SeqCst);
        if self.is_closed() {
            return None;
        }
        Some(Unstarted(Some(tracked)))
    }

    /// Tracks `work` run inline by a request (ack-after-handler mode).
    pub(crate) fn track<F: Future>(&self, work: F) -> impl Future<Output = F::Output> {
        self.state.tracker.track_future(work)
    }
}
