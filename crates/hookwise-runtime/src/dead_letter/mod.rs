//! Dead letters: events whose every attempt failed, where they go, and how an
//! operator lists, replays and deletes them ([`DeadLetterStore`]).

mod admin;
mod memory;

use std::{
    collections::VecDeque,
    fmt,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use hookwise_core::Delivery;

use crate::{HandlerError, HandlerJob};

pub use self::admin::{
    DeadLetterError, DeadLetterFilter, DeadLetterFuture, DeadLetterPage, DeadLetterRecord,
    DeadLetterStore, ReplayReport,
};
pub(crate) use self::memory::MemoryDeadLetters;

/// How many dead letters [`DeadLetters`] keeps by default.
pub const DEFAULT_KEPT_DEAD_LETTERS: usize = 1000;

/// An event whose every attempt failed, handed to the dead-letter callback.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeadLetter<E> {
    /// The delivery, with its typed event and raw body, for storing or replaying.
    pub delivery: Delivery<E>,
    /// The last attempt's failure.
    pub error: HandlerError,
    /// How many attempts were made.
    pub attempts: u32,
}

// By hand: the derive would require `E: Clone`, which the delivery does not.
impl<E> Clone for DeadLetter<E> {
    fn clone(&self) -> Self {
        Self {
            delivery: self.delivery.clone(),
            error: self.error.clone(),
            attempts: self.attempts,
        }
    }
}

/// Receives dead letters. Implemented for every `Fn(DeadLetter<E>)`.
pub trait DeadLetterHandler<E>: Send + Sync + 'static {
    /// Takes an event that failed every attempt.
    fn dead_letter(&self, letter: DeadLetter<E>);
}

impl<E, F> DeadLetterHandler<E> for F
where
    F: Fn(DeadLetter<E>) + Send + Sync + 'static,
{
    fn dead_letter(&self, letter: DeadLetter<E>) {
        self(letter);
    }
}

/// A dead-letter handler that only logs (an `error` line with the key, never the
/// body): the delivery is gone afterwards. Opt in with
/// [`on_dead_letter`](crate::WebhooksBuilder::on_dead_letter) only where losing failed
/// events is acceptable.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogDeadLetter;

impl<E> DeadLetterHandler<E> for LogDeadLetter {
    fn dead_letter(&self, letter: DeadLetter<E>) {
        log(&letter);
    }
}

fn log<E>(letter: &DeadLetter<E>) {
    tracing::error!(
        provider = letter.delivery.provider(),
        key = %letter.delivery.dedupe_key(),
        attempts = letter.attempts,
        error = %letter.error,
        "webhook event dead-lettered"
    );
}

/// The dead letters kept in memory when no callback is set, newest last.
///
/// An event is dead-lettered after the last attempt of the retry policy failed. Its
/// claim is committed (a redelivery must not run it again behind the operator's
/// back), so the delivery must be kept somewhere it can be replayed from:
///
/// - by default, in memory: this list keeps the last
///   [`DEFAULT_KEPT_DEAD_LETTERS`] with the handler that failed them, lists them and
///   replays one through the same handler, retries and timeout
///   ([`replay`](Self::replay)). The bound is kept by dropping the oldest, with an
///   `error` log line and a count ([`dropped`](Self::dropped)): only then is an event
///   lost, and the log says which;
/// - with a durable queue, in the queue's dead-letter store (the Redis dead-letter
///   stream), which survives the process; nothing is kept in memory then;
/// - with [`on_dead_letter`](crate::WebhooksBuilder::on_dead_letter), in your callback,
///   which receives the whole delivery (typed event and raw body) to store as you
///   like. A panic in it is caught and logged.
///
/// Not committing (leaving the event to the sender's retries) was the other choice;
/// it is not the default because in ack-fast mode the sender already has its `200` and
/// does not retry, so the event would be gone.
///
/// Get it from [`Webhooks::dead_letters`](crate::Webhooks::dead_letters);
/// clones share the list.
///
/// ```
/// # use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// # use hookwise_runtime::Webhooks;
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let webhooks = Webhooks::new(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?);
/// // Kept in memory unless a callback was set with `on_dead_letter`.
/// let dead = webhooks.dead_letters().ok_or("a callback receives them")?;
/// // ... later, after fixing what made them fail:
/// for (id, letter) in dead.list() {
///     println!("{id}: {} failed {} times: {}", letter.delivery.dedupe_key(), letter.attempts, letter.error);
///     dead.replay(id)?;
/// }
/// # Ok(()) }
/// ```
pub struct DeadLetters<E> {
    shared: Arc<Shared<E>>,
}

struct Shared<E> {
    /// Ordered by id, oldest first.
    kept: Mutex<VecDeque<Entry<E>>>,
    capacity: usize,
    next_id: AtomicU64,
    dropped: AtomicU64,
    /// Runs a taken dead letter again; set by the processor that owns the list.
    replayer: Mutex<Option<Replayer<E>>>,
}

/// A kept dead letter and when it was dead-lettered (Unix seconds).
struct Entry<E> {
    kept: Kept<E>,
    dead_at: u64,
}

/// A kept dead letter with the handler that failed it, for replaying.
pub(crate) struct Kept<E> {
    pub(crate) id: u64,
    pub(crate) letter: DeadLetter<E>,
    pub(crate) job: HandlerJob<E>,
}

/// A dead letter a processor refused to replay, handed back with the reason.
pub(crate) type Refused<E> = Box<(Kept<E>, hookwise_core::Rejection)>;

/// Submits a taken dead letter to a processor again; hands it back when refused.
pub(crate) type Replayer<E> = Arc<dyn Fn(Kept<E>) -> Result<(), Refused<E>> + Send + Sync>;

impl<E> DeadLetters<E> {
    /// An empty list that keeps at most `capacity` dead letters.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                kept: Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                next_id: AtomicU64::new(1),
                dropped: AtomicU64::new(0),
                replayer: Mutex::new(None),
            }),
        }
    }

    pub(crate) fn set_replayer(&self, replayer: Replayer<E>) {
        *self
            .shared
            .replayer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(replayer);
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry<E>>> {
        self.shared
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a dead letter, dropping (and logging) the oldest beyond the bound.
    pub(crate) fn keep(&self, letter: DeadLetter<E>, job: HandlerJob<E>) {
        log(&letter);
        let id = self.shared.next_id.fetch_add(1, Relaxed);
        let dead_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        self.put_back(Entry {
            kept: Kept { id, letter, job },
            dead_at,
        });
    }

    /// Puts an entry in its place by id (a new one last, a refused replay where
    /// it was), dropping (and logging) the oldest beyond the bound.
    fn put_back(&self, entry: Entry<E>) {
        let mut kept = self.kept();
        let at = kept.partition_point(|other| other.kept.id < entry.kept.id);
        kept.insert(at, entry);
        while kept.len() > self.shared.capacity {
            if let Some(oldest) = kept.pop_front() {
                self.shared.dropped.fetch_add(1, Relaxed);
                tracing::error!(
                    key = %oldest.kept.letter.delivery.dedupe_key(),
                    capacity = self.shared.capacity,
                    "dead-letter list full: the oldest dead letter is dropped and its event lost"
                );
            }
        }
    }

    /// The kept dead letters with their ids, oldest first.
    pub fn list(&self) -> Vec<(u64, DeadLetter<E>)> {
        self.kept()
            .iter()
            .map(|entry| (entry.kept.id, entry.kept.letter.clone()))
            .collect()
    }

    /// At most `count` kept dead letters older than `before` (all when `None`),
    /// newest first, with their ids and when they were dead-lettered.
    pub(crate) fn newest_before(
        &self,
        before: Option<u64>,
        count: usize,
    ) -> Vec<(u64, DeadLetter<E>, u64)> {
        let kept = self.kept();
        let end = before.map_or(kept.len(), |before| {
            kept.partition_point(|entry| entry.kept.id < before)
        });
        kept.range(..end)
            .rev()
            .take(count)
            .map(|entry| (entry.kept.id, entry.kept.letter.clone(), entry.dead_at))
            .collect()
    }

    /// Dead letter `id` with when it was dead-lettered, if it is kept.
    pub(crate) fn get(&self, id: u64) -> Option<(DeadLetter<E>, u64)> {
        let kept = self.kept();
        let at = kept.binary_search_by_key(&id, |entry| entry.kept.id).ok()?;
        kept.get(at)
            .map(|entry| (entry.kept.letter.clone(), entry.dead_at))
    }

    /// Removes dead letter `id` for good, unreplayed: its event is not run again.
    /// `false` when there is no such dead letter (replayed or deleted already).
    pub fn delete(&self, id: u64) -> bool {
        let mut kept = self.kept();
        match kept.binary_search_by_key(&id, |entry| entry.kept.id) {
            Ok(at) => kept.remove(at).is_some(),
            Err(_) => false,
        }
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.kept().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many were dropped, oldest first, to keep the bound: those events are lost.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    /// Takes dead letter `id` out of the list and runs it again in the background,
    /// through the handler that failed it, with the processor's retries and timeout;
    /// if it fails again, it comes back to the list under a new id. `Ok(false)` when
    /// there is no such dead letter (already replayed). `Err` (the processor is full
    /// or shutting down) leaves it in the list.
    pub fn replay(&self, id: u64) -> Result<bool, hookwise_core::Rejection> {
        let taken = {
            let mut kept = self.kept();
            let Ok(at) = kept.binary_search_by_key(&id, |entry| entry.kept.id) else {
                return Ok(false);
            };
            kept.remove(at)
        };
        let Some(Entry { kept, dead_at }) = taken else {
            return Ok(false);
        };
        let replayer = self
            .shared
            .replayer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(replayer) = replayer else {
            self.put_back(Entry { kept, dead_at });
            return Err(hookwise_core::Rejection::new(
                hookwise_core::RejectionKind::ShuttingDown,
            ));
        };
        match replayer(kept) {
            Ok(()) => Ok(true),
            Err(refused) => {
                let (kept, rejection) = *refused;
                self.put_back(Entry { kept, dead_at });
                Err(rejection)
            }
        }
    }
}

/// Calls a user's dead-letter handler, catching a panic in it: the event is already
/// committed, and a panic must not take the worker (or a durable entry) with it.
pub(crate) fn call_handler<E: 'static>(handler: &dyn DeadLetterHandler<E>, letter: DeadLetter<E>) {
    let key = letter.delivery.dedupe_key().clone();
    if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(|| handler.dead_letter(letter)))
    {
        tracing::error!(
            %key,
            panic = %crate::attempt::panic_message(payload),
            "the dead-letter callback panicked"
        );
    }
}

impl<E> Clone for DeadLetters<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E> fmt::Debug for DeadLetters<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetters")
            .field("kept", &self.len())
            .field("capacity", &self.shared.capacity)
            .field("dropped", &self.dropped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use hookwise_core::{Hoursmith, MemoryStore, Outcome, Receiver, sign};

    use super::*;

    fn letter(id: &str) -> DeadLetter<hookwise_core::hoursmith::Event> {
        let receiver = Receiver::new(
            Hoursmith::new("whsec_t").expect("secret"),
            MemoryStore::new(),
        )
        .expect("config");
        let body = bytes::Bytes::from(format!(
            r#"{{"id":"{id}","type":"client.created","created":1,"orgId":"o","livemode":true,"data":{{"client":{{"id":"c"}}}}}}"#
        ));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        sign::hoursmith(b"whsec_t", now, &body).insert_into(&mut headers);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let Ok(Outcome::Accepted { delivery, .. }) =
            runtime.block_on(receiver.receive(&headers, body))
        else {
            panic!("accepted")
        };
        DeadLetter {
            delivery,
            error: HandlerError::Failed("down".into()),
            attempts: 3,
        }
    }

    fn job<E>() -> HandlerJob<E> {
        Box::new(|_| Box::pin(async { Ok(()) }) as crate::HandlerRun)
    }

    #[test]
    fn the_list_is_bounded_dropping_and_counting_the_oldest() {
        let dead = DeadLetters::new(2);
        for id in ["first", "second", "third"] {
            dead.keep(letter(id), job());
        }
        let kept: Vec<_> = dead
            .list()
            .into_iter()
            .map(|(_, letter)| letter.delivery.dedupe_key().id().to_owned())
            .collect();
        assert_eq!(kept, ["second", "third"]);
        assert_eq!((dead.len(), dead.dropped()), (2, 1));
    }

    #[test]
    fn pages_run_newest_first_from_a_cursor_and_a_deleted_letter_is_gone() {
        let dead = DeadLetters::new(8);
        for id in ["a", "b", "c"] {
            dead.keep(letter(id), job());
        }
        let ids = |page: Vec<(u64, DeadLetter<_>, u64)>| {
            page.into_iter().map(|(id, _, _)| id).collect::<Vec<_>>()
        };
        assert_eq!(ids(dead.newest_before(None, 2)), [3, 2]);
        assert_eq!(ids(dead.newest_before(Some(2), 5)), [1]);
        assert_eq!(ids(dead.newest_before(Some(1), 5)), Vec::<u64>::new());
        assert!(dead.delete(2));
        assert!(!dead.delete(2), "deleted already");
        assert!(dead.get(2).is_none());
        assert_eq!(ids(dead.newest_before(None, 5)), [3, 1]);
        let (kept, dead_at) = dead.get(3).expect("kept");
        assert_eq!(kept.delivery.dedupe_key().id(), "c");
        assert!(dead_at > 1_600_000_000, "a Unix time: {dead_at}");
    }

    #[test]
    fn a_refused_replay_puts_the_letter_back_in_its_place() {
        let dead = DeadLetters::new(8);
        for id in ["a", "b", "c"] {
            dead.keep(letter(id), job());
        }
        assert!(dead.replay(2).is_err(), "no processor");
        let ids: Vec<_> = dead.list().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn a_replay_without_a_processor_leaves_the_letter_in_the_list() {
        let dead = DeadLetters::new(4);
        dead.keep(letter("orphan"), job());
        let (id, _) = dead.list().remove(0);
        assert!(dead.replay(id).is_err());
        assert_eq!(dead.list()[0].0, id, "kept, under the same id");
        assert_eq!(dead.replay(id + 100), Ok(false));
    }
}
