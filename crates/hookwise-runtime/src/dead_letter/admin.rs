//! [`DeadLetterStore`]: one interface over every backend that keeps dead letters
//! (the in-memory list, a durable queue's dead letters), for an admin router.

use std::{future::Future, pin::Pin};

use bytes::Bytes;
use hookwise_core::{AnyStore, Provider, Receiver, StoreError, Verified};
use http::request::Parts;

/// The most dead letters one page holds, and one call replays.
const MAX_PER_CALL: usize = 500;

/// How many dead letters a backend is asked for at once while a filter is applied.
const SCAN_BATCH: usize = 100;

/// The most dead letters one call reads, matching or not: past it, a filtered page
/// ends early with a cursor to go on from, so no request scans a whole backlog.
const MAX_SCAN: usize = 2_000;

/// A future a [`DeadLetterStore`] returns.
pub type DeadLetterFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, DeadLetterError>> + Send + 'a>>;

/// Why a [`DeadLetterStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// The id or cursor is not one this store gives out; the text says what one
    /// looks like.
    #[error("malformed dead-letter id or cursor: expected {0}")]
    BadId(&'static str),
    /// A replay found the handler's backlog (or the in-memory processor) full: the
    /// dead letter is kept; try again later.
    #[error("no room to replay the dead letter: {0}")]
    Full(#[source] StoreError),
    /// The backend failed (unreachable, timed out, shutting down).
    #[error("the dead-letter store is unavailable: {0}")]
    Unavailable(#[source] StoreError),
}

impl From<StoreError> for DeadLetterError {
    /// [`Full`](Self::Full) for an error at a bound ([`StoreError::is_full`]),
    /// else [`Unavailable`](Self::Unavailable).
    fn from(error: StoreError) -> Self {
        match error.is_full() {
            true => Self::Full(error),
            false => Self::Unavailable(error),
        }
    }
}

/// What a [`DeadLetterStore`] says of one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterRecord {
    /// Its id in the store: opaque, for [`show`](DeadLetterStore::show),
    /// [`replay`](DeadLetterStore::replay) and [`delete`](DeadLetterStore::delete),
    /// and as a page's cursor.
    pub id: String,
    /// The provider's name (`hoursmith`).
    pub provider: String,
    /// The name of the handler that failed it, when the store knows it (a durable
    /// queue's dead letters; the in-memory list does not).
    pub handler: Option<String>,
    /// The event's dedupe key.
    pub key: String,
    /// The event's type (`invoice.paid`); `None` when the stored body no longer
    /// parses.
    pub event_type: Option<String>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
    /// When it was dead-lettered, in seconds since the Unix epoch.
    pub dead_at: u64,
    /// The raw body, as the sender signed it: only from
    /// [`show`](DeadLetterStore::show) when asked for.
    pub body: Option<Bytes>,
}

impl DeadLetterRecord {
    /// A record with these identities; set the other fields after.
    pub fn new(id: impl Into<String>, provider: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            provider: provider.into(),
            handler: None,
            key: key.into(),
            event_type: None,
            attempts: 0,
            error: String::new(),
            dead_at: 0,
            body: None,
        }
    }

    /// Names the event's type from its stored delivery, restored by `receiver` as
    /// the queue's workers restore it; left `None` when it no longer parses. For
    /// the stores of durable queues, which keep the delivery, not its type.
    pub fn name_stored_event<P: Provider>(
        &mut self,
        receiver: &Receiver<P, AnyStore>,
        head: &Parts,
        body: Bytes,
        received_at: std::time::Duration,
        verified: Verified,
    ) {
        let restored =
            receiver.restore(head.uri.path(), &head.headers, body, received_at, verified);
        self.event_type = restored
            .ok()
            .map(|delivery| receiver.provider().event_type(delivery.event()).to_owned());
    }
}

/// Which dead letters a listing or a replay takes: all of them by default; each
/// field set narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterFilter {
    /// Only those of this handler (the in-memory list knows no handler, so none
    /// of its dead letters matches).
    pub handler: Option<String>,
    /// Only those of this event type.
    pub event_type: Option<String>,
    /// Only those whose last error contains this text.
    pub error: Option<String>,
}

impl DeadLetterFilter {
    /// Whether `record` is one this filter takes.
    pub fn matches(&self, record: &DeadLetterRecord) -> bool {
        let equal = |wanted: &Option<String>, got: &Option<String>| {
            wanted.is_none() || wanted.as_deref() == got.as_deref()
        };
        equal(&self.handler, &record.handler)
            && equal(&self.event_type, &record.event_type)
            && self
                .error
                .as_deref()
                .is_none_or(|part| record.error.contains(part))
    }

    fn is_everything(&self) -> bool {
        *self == Self::default()
    }
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterPage {
    /// The dead letters, without their bodies.
    pub letters: Vec<DeadLetterRecord>,
    /// Where the next page starts; `None` at the end. A filtered page may hold
    /// fewer letters than asked for and still have a next one (each call reads a
    /// bounded number of dead letters).
    pub next: Option<String>,
}

/// What [`replay_matching`](DeadLetterStore::replay_matching) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// How many dead letters were handed back to their handler.
    pub replayed: usize,
    /// Whether matching dead letters may remain: the call stopped at its bound, at
    /// a full backlog or at an error after some were replayed. Call again.
    pub more: bool,
}

/// Lists, shows, replays and deletes the dead letters of one runtime, whatever
/// keeps them: get it from
/// [`Webhooks::dead_letter_store`](crate::Webhooks::dead_letter_store), and serve
/// it with an admin router (`hookwise_axum::dead_letter_router`).
///
/// Ids are opaque strings, ordered by the store from oldest to newest. A replay
/// hands the dead letter back to the handler that failed it, through the same
/// retries and timeout (in memory: the runtime's processor; with a durable queue:
/// the handler's queue, bounded by its backlog), and takes it out of the store in
/// the same step, so replaying one id twice, even at once, runs its event once: the
/// second replay finds nothing (`false`). Its dedupe claim
/// stays committed: a sender's redelivery of the event is still a duplicate.
///
/// Implement [`page`](Self::page), [`show`](Self::show), [`replay`](Self::replay)
/// and [`delete`](Self::delete); [`list`](Self::list) and
/// [`replay_matching`](Self::replay_matching) are built on them, and bounded.
///
/// ```
/// # use hookwise_core::{Hoursmith, MemoryStore, Receiver};
/// # use hookwise_runtime::{DeadLetterFilter, Webhooks};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let webhooks = Webhooks::new(Receiver::new(Hoursmith::new("whsec_...")?, MemoryStore::new())?);
/// let store = webhooks.dead_letter_store().ok_or("a callback takes the dead letters")?;
/// let mut filter = DeadLetterFilter::default();
/// filter.event_type = Some("invoice.paid".into());
/// let page = store.list(&filter, 50, None).await?;
/// for letter in &page.letters {
///     println!("{}: {} failed {} times: {}", letter.id, letter.key, letter.attempts, letter.error);
/// }
/// // ... once what made them fail is fixed:
/// let report = store.replay_matching(&filter, 100).await?;
/// assert_eq!((report.replayed, report.more), (0, false));
/// # Ok(()) }
/// ```
pub trait DeadLetterStore: Send + Sync + 'static {
    /// At most `count` dead letters older than the one with id `before` (from the
    /// newest when `None`), newest first, without their bodies.
    fn page<'a>(
        &'a self,
        before: Option<&'a str>,
        count: usize,
    ) -> DeadLetterFuture<'a, Vec<DeadLetterRecord>>;

    /// Dead letter `id`, with its raw body when `body` is set; `None` when there
    /// is none (never was, or replayed or deleted since).
    fn show<'a>(
        &'a self,
        id: &'a str,
        body: bool,
    ) -> DeadLetterFuture<'a, Option<DeadLetterRecord>>;

    /// Hands dead letter `id` back to its handler and takes it out of the store,
    /// in one step; `false` when there is no such dead letter (replayed or
    /// deleted already). [`Full`](DeadLetterError::Full) leaves it in place.
    fn replay<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool>;

    /// Removes dead letter `id` for good: its event is not run again. `false` when
    /// there is no such dead letter.
    fn delete<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool>;

    /// A page of at most `limit` (1 to 500) dead letters that `filter` takes,
    /// newest first, starting after `cursor` (a previous page's
    /// [`next`](DeadLetterPage::next)). Reads at most 2,000 dead letters.
    fn list<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> DeadLetterFuture<'a, DeadLetterPage> {
        Box::pin(async move {
            let limit = limit.clamp(1, MAX_PER_CALL);
            let mut letters = Vec::new();
            let mut scan = Scan::from(cursor);
            while let Some(batch) = scan
                .next(self, filter, limit.saturating_sub(letters.len()))
                .await?
            {
                for letter in batch {
                    scan.cursor = Some(letter.id.clone());
                    if filter.matches(&letter) {
                        letters.push(letter);
                        if letters.len() == limit {
                            return Ok(DeadLetterPage {
                                letters,
                                next: scan.cursor,
                            });
                        }
                    }
                }
            }
            let next = scan.cursor.filter(|_| !scan.exhausted);
            Ok(DeadLetterPage { letters, next })
        })
    }

    /// Replays at most `max` (1 to 500) dead letters that `filter` takes, newest
    /// first, one by one as [`replay`](Self::replay) does. Stops at a full backlog
    /// (an error when none was replayed yet) and after reading 2,000 dead letters;
    /// the report says whether matching ones may remain.
    fn replay_matching<'a>(
        &'a self,
        filter: &'a DeadLetterFilter,
        max: usize,
    ) -> DeadLetterFuture<'a, ReplayReport> {
        Box::pin(async move {
            let max = max.clamp(1, MAX_PER_CALL);
            let mut replayed = 0;
            let mut scan = Scan::from(None);
            while let Some(batch) = scan.next(self, filter, SCAN_BATCH).await? {
                for letter in batch.iter().filter(|letter| filter.matches(letter)) {
                    scan.cursor = Some(letter.id.clone());
                    if replayed == max {
                        return Ok(ReplayReport {
                            replayed,
                            more: true,
                        });
                    }
                    match self.replay(&letter.id).await {
                        Ok(true) => replayed += 1,
                        // Replayed or deleted meanwhile.
                        Ok(false) => {}
                        Err(error) if replayed == 0 => return Err(error),
                        Err(_) => {
                            return Ok(ReplayReport {
                                replayed,
                                more: true,
                            });
                        }
                    }
                }
                scan.cursor = batch.last().map(|letter| letter.id.clone());
            }
            Ok(ReplayReport {
                replayed,
                more: !scan.exhausted,
            })
        })
    }
}

/// A bounded walk through a store's pages, newest first.
struct Scan {
    /// The id of the last dead letter taken.
    cursor: Option<String>,
    read: usize,
    exhausted: bool,
}

impl Scan {
    fn from(cursor: Option<&str>) -> Self {
        Self {
            cursor: cursor.map(str::to_owned),
            read: 0,
            exhausted: false,
        }
    }

    /// The next batch (`wanted` letters when `filter` takes every one, else a
    /// scan batch), or `None` once the store or the scan's bound is reached.
    async fn next<S: DeadLetterStore + ?Sized>(
        &mut self,
        store: &S,
        filter: &DeadLetterFilter,
        wanted: usize,
    ) -> Result<Option<Vec<DeadLetterRecord>>, DeadLetterError> {
        if self.exhausted || self.read >= MAX_SCAN || wanted == 0 {
            return Ok(None);
        }
        let count = match filter.is_everything() {
            true => wanted.min(MAX_PER_CALL),
            false => SCAN_BATCH,
        };
        let batch = store.page(self.cursor.as_deref(), count).await?;
        self.read += batch.len();
        self.exhausted = batch.len() < count;
        Ok((!batch.is_empty()).then_some(batch))
    }
}
