//! Acknowledgements of the entries run to success, batched: one task per stream
//! acknowledges, in one script, every entry that finished while its last script was
//! on its way. Under load, one round trip ends many entries instead of one each.

use hookwise_core::StoreError;
use hookwise_runtime::ShutdownHandle;
use tokio::sync::mpsc;

use crate::{RedisQueue, queue::GROUP};

/// Acknowledges and deletes the entries `ARGV[2..]` of the stream `KEYS[1]` for the
/// group `ARGV[1]`: how many it acknowledged. An entry acknowledged already (a
/// worker thought dead finished it too) is left alone, as the dead-letter script
/// leaves it. Atomic, so a Redis restart never keeps an acknowledged entry in the
/// stream.
pub(crate) const ACK_DONE: &str = r"
local done = 0
for i = 2, #ARGV do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    done = done + 1
  end
end
return done
";

/// The most entries one script acknowledges, and how many finished entries may wait
/// for their acknowledgement before a run waits to hand its own over.
pub(crate) const MAX_BATCH: usize = 128;

/// Where a run hands the id of an entry it processed. A task of its own
/// acknowledges the ids in batches; it ends once every `Acks` of its stream is
/// dropped, after acknowledging what it was handed, and a drain waits for it.
///
/// An id handed over but not acknowledged (Redis down, or the process killed
/// first) leaves its entry pending: it is taken over and run again after the claim
/// idle time, at least once, as when a run's own acknowledgement fails.
#[derive(Debug, Clone)]
pub(crate) struct Acks {
    ids: mpsc::Sender<String>,
}

impl Acks {
    /// Starts the task that acknowledges `stream`'s entries, tracked by `shutdown`.
    pub(crate) fn start(queue: RedisQueue, stream: String, shutdown: &ShutdownHandle) -> Self {
        let (ids, pending) = mpsc::channel(MAX_BATCH);
        shutdown.spawn(acknowledge(queue, stream, pending));
        Self { ids }
    }

    /// Hands `id` over to be acknowledged; waits while [`MAX_BATCH`] ids wait.
    pub(crate) async fn done(&self, id: String) {
        // The receiving task ends only once every sender is gone: this one is not.
        let _ = self.ids.send(id).await;
    }
}

/// Acknowledges `stream`'s entries as their ids arrive: each script takes every id
/// that arrived while the one before it ran.
async fn acknowledge(queue: RedisQueue, stream: String, mut pending: mpsc::Receiver<String>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut connection = queue.connection.handle();
        let mut invocation = queue.ack_done.key(&stream);
        invocation.arg(GROUP).arg(&batch);
        let acknowledged: Result<usize, StoreError> = queue
            .connection
            .bounded("acknowledge", invocation.invoke_async(&mut connection))
            .await;
        match acknowledged {
            Ok(done) if done < batch.len() => tracing::debug!(
                finished_elsewhere = batch.len() - done,
                "entries finished by another worker already"
            ),
            Ok(_) => {}
            // Left pending: taken over and run again after the idle time.
            Err(error) => tracing::warn!(
                %error,
                %stream,
                entries = batch.len(),
                "cannot acknowledge processed entries; they stay pending and run again"
            ),
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hookwise_test_support::RedisServer;
    use redis::AsyncCommands;

    use super::*;

    const STREAM: &str = "acks-test";

    /// A stat of `INFO commandstats`, e.g. `("evalsha", "calls")`; 0 when absent.
    async fn command_stat(
        connection: &mut redis::aio::MultiplexedConnection,
        command: &str,
        stat: &str,
    ) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(connection)
            .await
            .expect("INFO");
        let prefix = format!("cmdstat_{command}:");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|stats| {
                stats.split(',').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    (name == stat).then(|| value.parse().ok()).flatten()
                })
            })
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn entries_processed_together_are_acknowledged_in_one_script() {
        let Some(redis) = RedisServer::start("entries_processed_together_are_acknowledged") else {
            return;
        };
        let client = redis::Client::open(redis.url()).expect("valid URL");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connects");
        let _: () = connection
            .xgroup_create_mkstream(STREAM, GROUP, "0")
            .await
            .expect("XGROUP CREATE");
        let mut ids = Vec::new();
        for n in 0..50 {
            let id: String = connection
                .xadd(STREAM, "*", &[("n", n)])
                .await
                .expect("XADD");
            ids.push(id);
        }
        // All 50 pending for one consumer, as a reader's XREADGROUP leaves them.
        let _: redis::Value = connection
            .xread_options(
                &[STREAM],
                &[">"],
                &redis::streams::StreamReadOptions::default()
                    .group(GROUP, "worker")
                    .count(50),
            )
            .await
            .expect("XREADGROUP");
        // One of them finished by another worker already: acknowledged, kept.
        let _: usize = connection
            .xack(STREAM, GROUP, &[&ids[7]])
            .await
            .expect("XACK");
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(ACK_DONE)
            .query_async(&mut connection)
            .await
            .expect("SCRIPT LOAD");
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut connection)
            .await
            .expect("CONFIG RESETSTAT");

        let queue = RedisQueue::new(&redis.url()).expect("valid URL");
        let shutdown = ShutdownHandle::default();
        let acks = Acks::start(queue, STREAM.to_owned(), &shutdown);
        // On this one thread the acknowledging task runs only once this test waits:
        // every id is handed over before the first script.
        for id in &ids {
            acks.done(id.clone()).await;
        }
        drop(acks);
        let report = shutdown.drain(Duration::from_secs(5)).await;
        assert_eq!(
            report.unfinished, 0,
            "the task ends once every Acks is gone"
        );

        assert_eq!(
            command_stat(&mut connection, "evalsha", "calls").await,
            1,
            "one script for the 50 entries"
        );
        assert_eq!(command_stat(&mut connection, "xack", "calls").await, 50);
        let pending: redis::streams::StreamPendingReply =
            connection.xpending(STREAM, GROUP).await.expect("XPENDING");
        assert_eq!(pending.count(), 0, "every entry acknowledged");
        let left: usize = connection.xlen(STREAM).await.expect("XLEN");
        assert_eq!(left, 1, "the entry acknowledged elsewhere is left alone");
    }
}
