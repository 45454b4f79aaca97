//! [`BatchWriter`]: items handed to one task that writes them in batches, so that a
//! backend whose cost is mostly per call, not per item, shares each call among the
//! items that arrived while the calls before it ran.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use tokio::sync::{Semaphore, mpsc, oneshot};

/// The items that may wait for a [`BatchWriter`]'s batches; a sender past them
/// waits for room.
pub const BATCH_WRITER_WAITING: usize = 1_024;

/// How a [`BatchWriter`] forms its batches and how many it writes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// The most items one batch holds (0 counts as 1).
    pub max: usize,
    /// The batches written at once (0 counts as 1; at most `u32::MAX`): with one, a
    /// batch is what arrived while the one before it was written; with two, the next
    /// fills and starts while the first is on its way, which keeps a database with
    /// more than one core busy.
    pub in_flight: usize,
    /// How long a batch of fewer than `max` items waits for more, from its first
    /// item. Zero: no timer, only one turn of the scheduler, for the senders already
    /// woken to join (a lone item is written at once). Every item on a quiet writer
    /// waits it out too: latency traded for fuller batches under load.
    pub wait: Duration,
}

/// Where items wait to be written in batches by one task, `write` called with each
/// batch (never empty, in the order the items were sent). The task ends once every
/// clone of the writer is dropped, after writing what it was sent; a sender learns
/// what became of its item through its own channel (e.g. a `oneshot` in the item),
/// which `write` answers.
///
/// ```
/// use std::time::Duration;
/// use hookwise_runtime::{BatchWriter, Batching};
/// use tokio::sync::oneshot;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let batching = Batching { max: 16, in_flight: 2, wait: Duration::ZERO };
/// let writer = BatchWriter::start(batching, |batch: Vec<(u32, oneshot::Sender<bool>)>| async move {
///     // One statement or script for the whole batch, then each item's answer.
///     for (_, answer) in batch {
///         let _ = answer.send(true);
///     }
/// });
/// assert_eq!(writer.ask(|answer| (7, answer)).await, Some(true));
/// # }
/// ```
pub struct BatchWriter<T> {
    waiting: mpsc::Sender<T>,
}

impl<T> Clone for BatchWriter<T> {
    fn clone(&self) -> Self {
        Self {
            waiting: self.waiting.clone(),
        }
    }
}

impl<T> fmt::Debug for BatchWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchWriter")
            .field(
                "waiting",
                &(self.waiting.max_capacity() - self.waiting.capacity()),
            )
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> BatchWriter<T> {
    /// Starts the writer's task on the current tokio runtime, with room for
    /// [`BATCH_WRITER_WAITING`] items. Must be called within a tokio runtime.
    pub fn start<F, Fut>(batching: Batching, write: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (waiting, arrived) = mpsc::channel(BATCH_WRITER_WAITING);
        tokio::spawn(write_batches(arrived, batching, write));
        Self { waiting }
    }

    /// Sends `item` to be written; waits while the writer's room is full. Gives
    /// the item back when the writer's task is gone (its `write` panicked).
    pub async fn send(&self, item: T) -> Result<(), T> {
        self.waiting.send(item).await.map_err(|error| error.0)
    }

    /// Sends the item `make` makes with a new answer channel, and waits for its
    /// answer: `None` when the writer's task is gone or dropped the item unanswered.
    /// Dropped meanwhile, the item is still written if it was sent; its answer
    /// finds no one.
    pub async fn ask<R>(&self, make: impl FnOnce(oneshot::Sender<R>) -> T) -> Option<R> {
        let (answer, answered) = oneshot::channel();
        self.send(make(answer)).await.ok()?;
        answered.await.ok()
    }

    /// Whether the writer's task is gone.
    pub fn is_closed(&self) -> bool {
        self.waiting.is_closed()
    }
}

/// What a writer's task does: batches of what arrives, formed as `batching` says,
/// each written by `write`, at most `batching.in_flight` at once (a single one on
/// this task; more each on a task of its own). Returns once every sender is gone
/// and what they sent is written.
pub(crate) async fn write_batches<T, F, Fut>(
    mut arrived: mpsc::Receiver<T>,
    batching: Batching,
    mut write: F,
) where
    T: Send + 'static,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let max = batching.max.max(1);
    // Within what a semaphore holds and `acquire_many` takes back at the end.
    let in_flight = batching.in_flight.clamp(1, u32::MAX as usize);
    let writing = Arc::new(Semaphore::new(in_flight));
    loop {
        // A free place first: what arrives meanwhile joins this batch.
        let Ok(place) = writing.clone().acquire_owned().await else {
            return; // never closed
        };
        let mut batch = Vec::with_capacity(max);
        if arrived.recv_many(&mut batch, max).await == 0 {
            break; // every sender is gone
        }
        fill(&mut arrived, &mut batch, max, batching.wait).await;
        let written = write(batch);
        if in_flight == 1 {
            written.await;
            drop(place);
        } else {
            tokio::spawn(async move {
                written.await;
                drop(place);
            });
        }
    }
    // The batches still on their way end before the task does.
    let all = u32::try_from(in_flight).unwrap_or(u32::MAX);
    drop(writing.acquire_many(all).await);
}

/// Adds to `batch` what arrives within `wait` (with no wait, what is there after one
/// turn of the scheduler), up to `max` items.
async fn fill<T>(arrived: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize, wait: Duration) {
    if wait.is_zero() {
        // One turn for the senders already woken to join: about 6 rows a Postgres
        // statement instead of 4 under load (BENCHMARKS section 20).
        tokio::task::yield_now().await;
        while batch.len() < max {
            match arrived.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => return,
            }
        }
        return;
    }
    let until = tokio::time::Instant::now() + wait;
    while batch.len() < max {
        let more = arrived.recv_many(batch, max - batch.len());
        // Over at the end of the wait, or when every sender is gone.
        if !matches!(tokio::time::timeout_at(until, more).await, Ok(n) if n > 0) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// The batches a writer wrote, in order.
    type Batches = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A writer whose batches are recorded, each answered after `gate` lets it
    /// through (one permit a batch).
    fn recording(
        batching: Batching,
        gate: Arc<Semaphore>,
    ) -> (BatchWriter<(u32, oneshot::Sender<()>)>, Batches) {
        let batches = Batches::default();
        let seen = batches.clone();
        let writer = BatchWriter::start(batching, move |batch: Vec<(u32, oneshot::Sender<()>)>| {
            seen.lock()
                .expect("not poisoned")
                .push(batch.iter().map(|(id, _)| *id).collect());
            let gate = gate.clone();
            async move {
                gate.acquire().await.expect("open").forget();
                for (_, answer) in batch {
                    let _ = answer.send(());
                }
            }
        });
        (writer, batches)
    }

    /// Sends `id`; its answer.
    async fn send(
        writer: &BatchWriter<(u32, oneshot::Sender<()>)>,
        id: u32,
    ) -> oneshot::Receiver<()> {
        let (answer, answered) = oneshot::channel();
        writer.send((id, answer)).await.expect("the writer runs");
        answered
    }

    /// Lets the writer's tasks run until they wait again.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_arrives_while_the_batches_in_flight_are_written_is_the_next_batch() {
        let gate = Arc::new(Semaphore::new(0));
        let batching = Batching {
            max: 4,
            in_flight: 2,
            wait: Duration::ZERO,
        };
        let (writer, batches) = recording(batching, gate.clone());
        let first = send(&writer, 0).await;
        settle().await;
        let second = send(&writer, 1).await;
        settle().await;
        // Two batches of one are on their way (the gate holds them); six more wait.
        let mut rest = Vec::new();
        for id in 2..8 {
            rest.push(send(&writer, id).await);
        }
        settle().await;
        assert_eq!(*batches.lock().expect("not poisoned"), [vec![0], vec![1]]);
        gate.add_permits(1);
        first.await.expect("answered");
        settle().await;
        // A place is free: the next batch takes what waits, up to four.
        assert_eq!(
            *batches.lock().expect("not poisoned"),
            [vec![0], vec![1], vec![2, 3, 4, 5]]
        );
        gate.add_permits(100);
        second.await.expect("answered");
        for answered in rest {
            answered.await.expect("answered");
        }
        assert_eq!(
            batches.lock().expect("not poisoned").concat(),
            (0..8).collect::<Vec<_>>(),
            "each once, in order"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_a_wait_items_sent_one_by_one_within_it_share_a_batch() {
        let gate = Arc::new(Semaphore::new(100));
        let batching = Batching {
            max: 4,
            in_flight: 1,
            wait: Duration::from_secs(60),
        };
        let (writer, batches) = recording(batching, gate);
        let mut answers = Vec::new();
        for id in 0..6 {
            answers.push(send(&writer, id).await);
            // The task wakes for each: without the wait, each were a batch.
            settle().await;
        }
        // Four fill a batch without waiting the wait out; the last two wait.
        assert_eq!(*batches.lock().expect("not poisoned"), [vec![0, 1, 2, 3]]);
        drop(writer);
        // With every sender gone, what waits is written at once.
        for answered in answers {
            tokio::time::timeout(Duration::from_secs(5), answered)
                .await
                .expect("not after the wait")
                .expect("answered");
        }
        assert_eq!(
            *batches.lock().expect("not poisoned"),
            [vec![0, 1, 2, 3], vec![4, 5]]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_item_is_written_when_the_wait_ends() {
        let gate = Arc::new(Semaphore::new(100));
        let batching = Batching {
            max: 16,
            in_flight: 2,
            wait: Duration::from_millis(10),
        };
        let (writer, batches) = recording(batching, gate);
        let answered = send(&writer, 7).await;
        tokio::time::timeout(Duration::from_secs(5), answered)
            .await
            .expect("written after the wait")
            .expect("answered");
        assert_eq!(*batches.lock().expect("not poisoned"), [vec![7]]);
    }
}
