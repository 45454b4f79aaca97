//! A provider's dead-letter stream as a [`DeadLetterStore`], for an admin router.

use std::sync::Arc;

use hookwise_core::{AnyStore, Provider, Receiver};
use hookwise_runtime::{DeadLetterError, DeadLetterFuture, DeadLetterRecord, DeadLetterStore};
use redis::{
    AsyncCommands,
    streams::{StreamId, StreamRangeReply},
};

use crate::{RedisQueue, StoredDeadLetter, entry::StoredEntry};

/// The dead-letter stream `<ns>:dead:{<provider>}` of one runtime's provider. Ids
/// are the stream's entry ids (`<ms>-<seq>`), newest last; a page is an
/// `XREVRANGE` from before its cursor, a replay [`RedisQueue::replay`] (one script,
/// bounded by the handler's backlog), a delete an `XDEL`.
pub(crate) struct RedisDeadLetters<P: Provider> {
    queue: RedisQueue,
    stream: String,
    /// Restores a stored delivery, to name its event's type.
    receiver: Arc<Receiver<P, AnyStore>>,
}

impl<P: Provider> RedisDeadLetters<P> {
    pub(crate) fn new(queue: RedisQueue, receiver: Arc<Receiver<P, AnyStore>>) -> Self {
        Self {
            stream: queue.dead_stream(receiver.provider().name()),
            queue,
            receiver,
        }
    }

    fn provider(&self) -> &'static str {
        self.receiver.provider().name()
    }

    fn record(&self, entry: &StreamId, body: bool) -> DeadLetterRecord {
        let stored = StoredDeadLetter::from_entry(entry);
        let mut record = DeadLetterRecord::new(stored.id, self.provider(), stored.key);
        record.handler = Some(stored.handler);
        record.attempts = stored.attempts;
        record.error = stored.error;
        // The entry's id is the time it was appended, in milliseconds.
        record.dead_at = entry
            .id
            .split_once('-')
            .and_then(|(ms, _)| ms.parse::<u64>().ok())
            .map_or(0, |ms| ms / 1000);
        if let Some(entry) = StoredEntry::decode(entry) {
            record.body = body.then(|| entry.body.clone());
            record.name_stored_event(
                &self.receiver,
                &entry.head,
                entry.body,
                entry.received_at,
                entry.verified,
            );
        }
        record
    }
}

/// `id` when it is a stream entry id, `<ms>-<seq>`.
fn checked(id: &str) -> Result<&str, DeadLetterError> {
    let digits = |part: &str| {
        !part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit())
    };
    match id.split_once('-') {
        Some((ms, seq)) if digits(ms) && digits(seq) => Ok(id),
        _ => Err(DeadLetterError::BadId("a stream entry id, <ms>-<seq>")),
    }
}

impl<P: Provider> DeadLetterStore for RedisDeadLetters<P> {
    fn page<'a>(
        &'a self,
        before: Option<&'a str>,
        count: usize,
    ) -> DeadLetterFuture<'a, Vec<DeadLetterRecord>> {
        Box::pin(async move {
            let end = match before {
                Some(before) => format!("({}", checked(before)?),
                None => "+".to_owned(),
            };
            let mut connection = self.queue.connection.handle();
            let reply: StreamRangeReply = self
                .queue
                .connection
                .bounded(
                    "XREVRANGE",
                    connection.xrevrange_count(&self.stream, end, "-", count),
                )
                .await?;
            Ok(reply
                .ids
                .iter()
                .map(|entry| self.record(entry, false))
                .collect())
        })
    }

    fn show<'a>(
        &'a self,
        id: &'a str,
        body: bool,
    ) -> DeadLetterFuture<'a, Option<DeadLetterRecord>> {
        Box::pin(async move {
            let id = checked(id)?;
            let mut connection = self.queue.connection.handle();
            let reply: StreamRangeReply = self
                .queue
                .connection
                .bounded("XRANGE", connection.xrange_count(&self.stream, id, id, 1))
                .await?;
            Ok(reply.ids.first().map(|entry| self.record(entry, body)))
        })
    }

    fn replay<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool> {
        Box::pin(async move { Ok(self.queue.replay(self.provider(), checked(id)?).await?) })
    }

    fn delete<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool> {
        Box::pin(async move {
            let id = checked(id)?;
            let mut connection = self.queue.connection.handle();
            let deleted: u64 = self
                .queue
                .connection
                .bounded("XDEL", connection.xdel(&self.stream, &[id]))
                .await?;
            Ok(deleted > 0)
        })
    }
}
