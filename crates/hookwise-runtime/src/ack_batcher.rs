//! [`AckBatcher`]: a durable queue's acknowledgements of processed entries, in
//! batches, so that under load one round trip ends many entries instead of one each.

use std::{fmt, future::Future, time::Duration};

use tokio::sync::mpsc;

use crate::{
    ShutdownHandle,
    batch_writer::{Batching, write_batches},
};

/// The most ids one batch takes by default, and how many may wait for their
/// acknowledgement before a run waits to hand its own over.
pub const DEFAULT_ACK_BATCH: usize = 128;

/// Where a durable queue's workers hand the id of an entry they processed. One task
/// acknowledges the ids in batches (a [`BatchWriter`](crate::BatchWriter)'s, one at
/// a time): each batch is every id that arrived while the one before it was being
/// acknowledged, so a quiet queue acknowledges each entry at once and a busy one
/// many in one round trip, with no timer; a [`lingering`](Self::lingering) batcher
/// also waits a little for more.
///
/// An id handed over but never acknowledged (the acknowledgement failed, or the
/// process died first) leaves its entry with the queue, which runs it again after
/// its visibility or idle time: at least once, as when a run's own acknowledgement
/// fails. The task is tracked by the runtime's [`ShutdownHandle`]: it ends once
/// every clone of the batcher is dropped, after acknowledging what it was handed,
/// and a drain waits for it.
///
/// ```
/// use hookwise_runtime::{AckBatcher, DEFAULT_ACK_BATCH, ShutdownHandle};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let shutdown = ShutdownHandle::default();
/// let acks = AckBatcher::start(&shutdown, DEFAULT_ACK_BATCH, |ids: Vec<i64>| async move {
///     // One statement for the batch: DELETE FROM queue WHERE id = ANY($1)
///     println!("acknowledged {ids:?}");
/// });
/// acks.done(1).await;
/// acks.done(2).await;
/// drop(acks);
/// assert_eq!(shutdown.drain(std::time::Duration::from_secs(1)).await.unfinished, 0);
/// # }
/// ```
pub struct AckBatcher<T> {
    ids: mpsc::Sender<T>,
}

impl<T> Clone for AckBatcher<T> {
    fn clone(&self) -> Self {
        Self {
            ids: self.ids.clone(),
        }
    }
}

impl<T> fmt::Debug for AckBatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckBatcher")
            .field("waiting", &(self.ids.max_capacity() - self.ids.capacity()))
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> AckBatcher<T> {
    /// Starts the task that calls `acknowledge` with each batch (never empty, at
    /// most `max` ids; `max` 0 counts as 1). `acknowledge` logs its own failures:
    /// what it could not acknowledge stays with the queue.
    pub fn start<F, Fut>(shutdown: &ShutdownHandle, max: usize, acknowledge: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::lingering(shutdown, max, Duration::ZERO, acknowledge)
    }

    /// [`start`](Self::start), except that a batch of fewer than `max` ids waits up
    /// to `linger` for more before it is acknowledged (not past the drain: once
    /// every batcher is gone, what waits is acknowledged at once). For a queue whose
    /// acknowledgement costs mostly per call, not per id, and whose entries may
    /// wait a little longer to be acknowledged.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hookwise_runtime::{AckBatcher, DEFAULT_ACK_BATCH, ShutdownHandle};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let shutdown = ShutdownHandle::default();
    /// let linger = Duration::from_millis(10);
    /// let acks = AckBatcher::lingering(&shutdown, DEFAULT_ACK_BATCH, linger, |ids: Vec<i64>| async move {
    ///     println!("acknowledged {ids:?}"); // 1 and 2 together
    /// });
    /// acks.done(1).await;
    /// acks.done(2).await;
    /// # drop(acks);
    /// # assert_eq!(shutdown.drain(Duration::from_secs(1)).await.unfinished, 0);
    /// # }
    /// ```
    pub fn lingering<F, Fut>(
        shutdown: &ShutdownHandle,
        max: usize,
        linger: Duration,
        acknowledge: F,
    ) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let max = max.max(1);
        let (ids, pending) = mpsc::channel(max);
        let batching = Batching {
            max,
            in_flight: 1,
            wait: linger,
        };
        shutdown.spawn(write_batches(pending, batching, acknowledge));
        Self { ids }
    }

    /// Hands `id` over to be acknowledged; waits while `max` ids wait.
    pub async fn done(&self, id: T) {
        // The receiving task ends only once every sender is gone, and this one is
        // not: the send fails only if that task panicked, when nothing can be done.
        let _ = self.ids.send(id).await;
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;

    /// The batches a batcher handed over, in order.
    type Batches = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A batcher whose batches are recorded.
    fn recording(shutdown: &ShutdownHandle, max: usize) -> (AckBatcher<u32>, Batches) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let acks = AckBatcher::start(shutdown, max, move |ids| {
            seen.lock().expect("not poisoned").push(ids);
            async {}
        });
        (acks, batches)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ids_handed_over_together_are_one_batch_and_all_are_acknowledged_before_the_drain_ends()
    {
        let shutdown = ShutdownHandle::default();
        let (acks, batches) = recording(&shutdown, 4);
        // On this one thread the task runs only once the test waits: four ids fill
        // the channel, the fifth waits for the first batch to be taken.
        for id in 0..10 {
            acks.done(id).await;
        }
        drop(acks);
        let report = shutdown.drain(Duration::from_secs(5)).await;
        assert_eq!(
            report.unfinished, 0,
            "the task ends once every batcher is gone"
        );
        let batches = batches.lock().expect("not poisoned").clone();
        assert_eq!(
            batches.concat(),
            (0..10).collect::<Vec<_>>(),
            "each id once, in order"
        );
        assert_eq!(
            batches[0],
            vec![0, 1, 2, 3],
            "the ids waiting form one batch"
        );
        assert!(
            batches
                .iter()
                .all(|batch| !batch.is_empty() && batch.len() <= 4)
        );
    }

    /// A batcher with a `linger` whose batches are recorded.
    fn recording_lingering(
        shutdown: &ShutdownHandle,
        max: usize,
        linger: Duration,
    ) -> (AckBatcher<u32>, Batches) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let acks = AckBatcher::lingering(shutdown, max, linger, move |ids| {
            seen.lock().expect("not poisoned").push(ids);
            async {}
        });
        (acks, batches)
    }

    /// Lets the batcher's task run until it waits again.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ids_handed_over_one_by_one_within_the_linger_share_a_batch() {
        let shutdown = ShutdownHandle::default();
        let (acks, batches) = recording_lingering(&shutdown, 4, Duration::from_secs(60));
        for id in 0..6 {
            acks.done(id).await;
            // The task wakes for each id: without the linger, each were a batch.
            settle().await;
        }
        // Four fill a batch without waiting out the linger; the last two wait.
        assert_eq!(
            *batches.lock().expect("not poisoned"),
            vec![vec![0, 1, 2, 3]]
        );
        drop(acks);
        let report = shutdown.drain(Duration::from_secs(5)).await;
        assert_eq!(
            report.unfinished, 0,
            "the drain does not wait out the linger"
        );
        assert_eq!(
            *batches.lock().expect("not poisoned"),
            vec![vec![0, 1, 2, 3], vec![4, 5]]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lingering_batch_is_acknowledged_once_the_linger_ends() {
        let shutdown = ShutdownHandle::default();
        let (acks, batches) = recording_lingering(&shutdown, 128, Duration::from_millis(10));
        acks.done(7).await;
        tokio::time::timeout(Duration::from_secs(5), async {
            while batches.lock().expect("not poisoned").is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("acknowledged after the linger");
        assert_eq!(*batches.lock().expect("not poisoned"), vec![vec![7]]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_waits_for_no_timer() {
        let shutdown = ShutdownHandle::default();
        let (acks, batches) = recording(&shutdown, 128);
        acks.done(7).await;
        tokio::time::timeout(Duration::from_secs(5), async {
            while batches.lock().expect("not poisoned").is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("a lone id is acknowledged at once");
        assert_eq!(*batches.lock().expect("not poisoned"), vec![vec![7]]);
    }
}
