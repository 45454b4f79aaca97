//! Deliveries stored through endpoints, written in batches: one script stores (and
//! marks done, and may claim for a run here) every delivery of a handler that
//! arrived while the script before it ran. A script's cost in Redis is mostly the
//! call's (the `EVALSHA`, the check for an older entry, the claim of the entries to
//! run here), not the delivery's, so under load the deliveries share it; a lone
//! delivery is written at once, in a batch of one.
//!
//! Each handler's stream has a [`BatchWriter`]: it takes what waits whenever one of
//! its two scripts is free ([`BATCHING`]), and answers each delivery on its own
//! channel. A delivery whose request was dropped meanwhile is still written, with
//! the others (it was sent); its answer finds no one, and an entry claimed for a run
//! here is given back by its [`Handover`].

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use hookwise_core::StoreError;
use hookwise_runtime::{BatchWriter, Batching};
use tokio::sync::oneshot;

use crate::{
    RedisQueue,
    entry::EntryFields,
    local::{FreeSlot, Handover},
    queue::GROUP,
    script_call::ScriptCall,
};

/// A stream's batches: at most 16 deliveries a script, two scripts on their way at
/// once (one fills while the other runs: with one, a script's round trip left
/// Redis idle and the batches waiting, and the endpoint did 0.38 of the in-memory
/// layer's deliveries where the code before did 0.42; BENCHMARKS.md section 24), no
/// timer (a 1 ms wait cost more than its fuller batches saved).
const BATCHING: Batching = Batching {
    max: 16,
    in_flight: 2,
    wait: Duration::ZERO,
};

/// Stores deliveries in a durable queue's stream and marks their events processed,
/// each in one atomic step with its own outcome, if the event's key is free:
/// `KEYS[1]` is the stream, `KEYS[1 + i]` the `i`-th delivery's event key. `ARGV`:
/// the backlog's bound, the group, the consumer of this instance (empty: none of
/// the deliveries has a running slot here), the claim idle time in ms, the names of
/// an entry's two fields, then four per delivery: the retention in ms, `1` if it
/// has a running slot here (else empty), and its entry's two fields' values.
///
/// Answers one string per delivery: `stored`, `full`, `taken:<value>` with what
/// holds the key, or `here:<id>`: stored and claimed for this instance's consumer,
/// which runs it (pending there with one delivery counted and the group's position
/// moved past it, the state an `XREADGROUP` of it leaves, made by the `XCLAIM …
/// FORCE JUSTID LASTID` Redis itself sends a replica for one; unlike that read, it
/// does not bring the entry back into Lua, which hashes every byte of every string
/// it makes). Until the group's next read, `XINFO GROUPS` shows its `entries-read`
/// as unknown.
///
/// Whether an older entry waits undelivered is asked once, before the appends, by
/// an `XREADGROUP` of one entry, which reads nothing when none does. One read
/// instead is made idle for the claim idle time, with no delivery counted, so the
/// next scan of any reader takes it over, and the batch's entries are left for the
/// readers (`stored`). So are the entries after the first one stored without a slot
/// here: claiming a later entry would move the group's position past it.
pub(crate) const STORE_IF_NEW: &str = r"
local stream, bound, group, consumer = KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3]
local here = consumer ~= ''
if here then
    local read = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', '1', 'STREAMS', stream, '>')
    if type(read) == 'table' and read.err then
        here = false
    elseif type(read) == 'table' and read[1] and read[1][2][1] then
        here = false
        redis.call('XCLAIM', stream, group, consumer, '0', read[1][2][1][1], 'IDLE', ARGV[4], 'RETRYCOUNT', '0', 'JUSTID')
    end
end
local length = redis.call('XLEN', stream)
local answers, claimed = {}, {}
for i = 1, #KEYS - 1 do
    local at = 4 * i + 2
    local held = redis.call('GET', KEYS[i + 1])
    if held then
        answers[i] = 'taken:' .. held
    elseif length >= bound then
        answers[i] = 'full'
    else
        local id = redis.call('XADD', stream, '*', ARGV[5], ARGV[at + 3], ARGV[6], ARGV[at + 4])
        length = length + 1
        redis.call('SET', KEYS[i + 1], 'done', 'PX', ARGV[at + 1])
        if here and ARGV[at + 2] == '1' then
            claimed[#claimed + 1] = id
            answers[i] = 'here:' .. id
        else
            here = false
            answers[i] = 'stored'
        end
    end
end
if #claimed > 0 then
    local last = claimed[#claimed]
    for _, option in ipairs({'RETRYCOUNT', '1', 'FORCE', 'JUSTID', 'LASTID', last}) do
        claimed[#claimed + 1] = option
    end
    redis.call('XCLAIM', stream, group, consumer, '0', unpack(claimed))
end
return answers
";

/// A delivery waiting for its batch.
pub(crate) struct Pending {
    /// The Redis key of its event, and the store's retention in ms.
    pub(crate) event_key: String,
    pub(crate) retention_ms: u64,
    pub(crate) fields: EntryFields,
    /// A running slot here, when the delivery is to run where it is stored.
    pub(crate) free: Option<FreeSlot>,
    pub(crate) answer: oneshot::Sender<Result<Written, StoreError>>,
}

/// What the script did with one delivery: its answer (`stored`, `full`,
/// `taken:<value>`), or the entry claimed for a run here.
pub(crate) enum Written {
    Answered(String),
    Here(Handover),
}

/// The writers of this queue, one per stream, started on first use.
#[derive(Default)]
pub(crate) struct Writers(Mutex<Vec<(Arc<str>, BatchWriter<Pending>)>>);

impl Writers {
    /// Where `stream`'s deliveries wait for `queue`'s writer; started if it is not
    /// running.
    pub(crate) fn of(&self, queue: &RedisQueue, stream: &str) -> BatchWriter<Pending> {
        let mut writers = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, waiting)) = writers
            .iter()
            .find(|(s, waiting)| &**s == stream && !waiting.is_closed())
        {
            return waiting.clone();
        }
        writers.retain(|(s, _)| &**s != stream);
        // The writer's queue has writers of its own (none), not these, which hold
        // the writer's sender: it ends once the queue and its clones are gone.
        let mut own = queue.clone();
        own.writers = Arc::default();
        let stream: Arc<str> = stream.into();
        let name = stream.clone();
        let waiting = BatchWriter::start(BATCHING, move |batch| {
            let (queue, stream) = (own.clone(), name.clone());
            async move { queue.write_batch(&stream, batch).await }
        });
        writers.push((stream, waiting.clone()));
        waiting
    }
}

impl RedisQueue {
    /// Stores `batch` (never empty) in `stream` with one script and answers each
    /// delivery.
    async fn write_batch(&self, stream: &str, batch: Vec<Pending>) {
        let any_here = batch.iter().any(|pending| pending.free.is_some());
        let mut keys = Vec::with_capacity(batch.len() + 1);
        keys.push(stream);
        keys.extend(batch.iter().map(|pending| pending.event_key.as_str()));
        // Each delivery's bytes, and room for its short arguments.
        let room = batch
            .iter()
            .map(|p| 40 + p.fields.iter().map(|(_, v)| v.len()).sum::<usize>())
            .sum();
        let mut call = ScriptCall::with_room(&self.scripts.store_if_new, &keys, room);
        call.arg(self.max_backlog)
            .arg(GROUP)
            .arg(if any_here { &*self.consumer } else { "" })
            .arg(crate::connection::millis(self.claim_idle))
            .arg(batch[0].fields[0].0)
            .arg(batch[0].fields[1].0);
        for pending in &batch {
            call.arg(pending.retention_ms)
                .arg(if pending.free.is_some() { "1" } else { "" })
                .arg(&pending.fields[0].1[..])
                .arg(&pending.fields[1].1[..]);
        }
        let answers: Result<Vec<String>, _> = self.connection.run_script("XADD", &call).await;
        let answers = match answers {
            Ok(answers) if answers.len() == batch.len() => answers,
            Ok(answers) => {
                let error = StoreError::new(format!(
                    "the store script answered {} times for {} deliveries",
                    answers.len(),
                    batch.len()
                ));
                return fail(batch, &error);
            }
            Err(error) => return fail(batch, &error),
        };
        for (answer, pending) in answers.into_iter().zip(batch) {
            let Pending {
                fields,
                free,
                answer: to,
                ..
            } = pending;
            let written = match (answer.strip_prefix("here:"), free) {
                (Some(id), Some(free)) => Written::Here(Handover::new(id.to_owned(), fields, free)),
                _ => Written::Answered(answer),
            };
            // No one waits any more (the request was dropped): an entry claimed for
            // a run here is given back as the answer is dropped.
            drop(to.send(Ok(written)));
        }
    }
}

/// Answers every delivery of a batch whose script failed with `error` (`503` for the
/// sender, who retries): nothing of it was stored, or, when the answer timed out
/// after the script ran, the entries are the readers', those claimed to run here
/// after the claim idle time, and the retries are duplicates.
fn fail(batch: Vec<Pending>, error: &StoreError) {
    for pending in batch {
        drop(pending.answer.send(Err(StoreError::new(error.to_string()))));
    }
}

#[cfg(test)]
mod tests {
    use hookwise_test_support::RedisServer;
    use redis::Script;

    use super::*;
    use crate::connection::Connection;

    const STREAM: &str = "hw:queue:{hoursmith}:hook";

    /// One delivery of a batch: its event key, whether it has a slot here.
    type Delivery = (&'static str, bool);

    /// Runs the store script on `deliveries` with room for `bound` entries; its
    /// answers.
    async fn store(connection: &Connection, bound: u64, deliveries: &[Delivery]) -> Vec<String> {
        let script = Script::new(STORE_IF_NEW);
        let mut keys = vec![STREAM];
        keys.extend(deliveries.iter().map(|(key, _)| *key));
        let mut call = ScriptCall::new(&script, &keys);
        call.arg(bound)
            .arg(GROUP)
            .arg("me")
            .arg(60_000)
            .arg("key")
            .arg("delivery");
        for (key, here) in deliveries {
            call.arg(60_000).arg(if *here { "1" } else { "" });
            call.arg(*key).arg(format!("the delivery of {key}"));
        }
        connection.run_script("store", &call).await.expect("runs")
    }

    /// The ids in `answers` that start with `prefix`.
    fn ids<'a>(answers: &'a [String], prefix: &str) -> Vec<&'a str> {
        answers
            .iter()
            .filter_map(|answer| answer.strip_prefix(prefix))
            .collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_stores_each_delivery_on_its_own_and_runs_here_only_what_precedes_an_entry_left_to_the_readers()
     {
        let Some(redis) = RedisServer::start("batch store script") else {
            return;
        };
        let connection = Connection::open(&redis.url(), "test").expect("connection");
        redis.cli(&["XGROUP", "CREATE", STREAM, GROUP, "$", "MKSTREAM"]);
        let answers = store(
            &connection,
            100,
            &[
                ("hw:dedupe:{hoursmith}:a", true),
                // A redelivery racing its first, in the same batch.
                ("hw:dedupe:{hoursmith}:a", true),
                ("hw:dedupe:{hoursmith}:b", true),
                // No slot here: left to the readers, and so is what follows it.
                ("hw:dedupe:{hoursmith}:c", false),
                ("hw:dedupe:{hoursmith}:d", true),
            ],
        )
        .await;
        let here = ids(&answers, "here:");
        assert_eq!(here.len(), 2, "{answers:?}");
        assert_eq!(answers[1], "taken:done");
        assert_eq!(answers[3..], ["stored", "stored"]);
        // Run here: pending in this consumer, one delivery counted each.
        let pending = redis.cli(&["XPENDING", STREAM, GROUP, "-", "+", "10"]);
        for id in &here {
            assert!(pending.contains(&format!("{id}\nme\n")), "{pending}");
        }
        assert_eq!(pending.lines().count(), 8, "{pending}");
        // Another reader reads the two left to the readers, and only them.
        let read = redis.cli(&[
            "XREADGROUP",
            "GROUP",
            GROUP,
            "other",
            "COUNT",
            "10",
            "STREAMS",
            STREAM,
            ">",
        ]);
        assert!(
            read.contains("the delivery of hw:dedupe:{hoursmith}:c"),
            "{read}"
        );
        assert!(
            read.contains("the delivery of hw:dedupe:{hoursmith}:d"),
            "{read}"
        );
        assert!(!read.contains(":a\n") && !read.contains(":b\n"), "{read}");
        // Past the bound, nothing more is stored, nor marked done.
        let full = store(&connection, 4, &[("hw:dedupe:{hoursmith}:e", true)]).await;
        assert_eq!(full, ["full"]);
        assert_eq!(redis.cli(&["EXISTS", "hw:dedupe:{hoursmith}:e"]), "0");
        assert_eq!(redis.cli(&["GET", "hw:dedupe:{hoursmith}:b"]), "done");
    }
}
