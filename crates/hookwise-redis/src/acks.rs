//! Acknowledgements of the entries run to success, batched ([`AckBatcher`]): one
//! task per stream acknowledges, in one script, every entry that finished while its
//! last script was on its way. Under load, one round trip ends many entries instead
//! of one each.

use std::sync::Arc;

use hookwise_core::StoreError;
use hookwise_runtime::{AckBatcher, DEFAULT_ACK_BATCH, ShutdownHandle};

use crate::{RedisQueue, queue::GROUP, script_call::ScriptCall};

/// Acknowledges and deletes the entries `ARGV[2..]` of the stream `KEYS[1]` for the
/// group `ARGV[1]`, in one `XACK` and one `XDEL`: how many it acknowledged. An entry
/// acknowledged already (a worker thought dead finished it too) was deleted in the
/// same step as its acknowledgement, by this script or the dead-letter one, so
/// deleting it again does nothing. Atomic, so a Redis restart never keeps an
/// acknowledged entry in the stream.
pub(crate) const ACK_DONE: &str = r"
local done = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
return done
";

/// Starts the task that acknowledges `stream`'s processed entries in batches of at
/// most [`DEFAULT_ACK_BATCH`], one [`ACK_DONE`] script each. An entry whose script
/// fails (Redis down) stays pending: taken over and run again after the idle time.
pub(crate) fn start(queue: RedisQueue, stream: Arc<str>, shutdown: &ShutdownHandle) -> Acks {
    AckBatcher::start(shutdown, DEFAULT_ACK_BATCH, move |ids: Vec<String>| {
        let (queue, stream) = (queue.clone(), stream.clone());
        async move {
            let mut call = ScriptCall::new(&queue.scripts.ack_done, &[&*stream]);
            call.arg(GROUP).arg(&ids);
            let acknowledged: Result<usize, StoreError> =
                queue.connection.run_script("acknowledge", &call).await;
            match acknowledged {
                Ok(done) if done < ids.len() => tracing::debug!(
                    finished_elsewhere = ids.len() - done,
                    "entries finished by another worker already"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    %error,
                    %stream,
                    entries = ids.len(),
                    "cannot acknowledge processed entries; they stay pending and run again"
                ),
            }
        }
    })
}

/// Where a run hands the id of the entry it processed.
pub(crate) type Acks = AckBatcher<String>;

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
        // One of them finished by another worker already: acknowledged and deleted.
        let _: usize = connection
            .xack(STREAM, GROUP, &[&ids[7]])
            .await
            .expect("XACK");
        let _: usize = connection.xdel(STREAM, &[&ids[7]]).await.expect("XDEL");
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
        let acks = start(queue, STREAM.into(), &shutdown);
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
        assert_eq!(
            (
                command_stat(&mut connection, "xack", "calls").await,
                command_stat(&mut connection, "xdel", "calls").await
            ),
            (1, 1),
            "one XACK and one XDEL for them all"
        );
        let pending: redis::streams::StreamPendingReply =
            connection.xpending(STREAM, GROUP).await.expect("XPENDING");
        assert_eq!(pending.count(), 0, "every entry acknowledged");
        let left: usize = connection.xlen(STREAM).await.expect("XLEN");
        assert_eq!(left, 0, "every entry deleted");
    }
}
