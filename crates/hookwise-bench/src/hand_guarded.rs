//! The load benchmark's third baseline (`--baseline hand-guarded`): the hand-rolled
//! receiver ([`hand_rolled`](crate::hand_rolled)) with the guarantees
//! `WebhookLayer` gives on top of the contract written by hand, as a user would
//! write them with the same crates, at the layer's defaults:
//!
//! - the event ids in a `DashMap` with a retention (96 h) and a bound (1 M ids;
//!   full, the expired ones are swept, and if that frees nothing, `503`). A claim
//!   is provisional until its event's run is admitted (a redelivery racing it is
//!   answered `409` `in_progress`; one older than 5 minutes is taken over), then the
//!   event is accounted for and a redelivery is a duplicate, as the layer confirms
//!   a claim once its run owns the event;
//! - the background work bounded: 32 runs at once and 1,024 waiting, past which a
//!   delivery is answered `503` `queue_full` and its claim released, so the
//!   sender's retry is processed;
//! - each run up to 5 attempts, 1 s apart and doubling, each cut at 30 s with its
//!   panic caught; the last failure kept in a bounded dead-letter list; then the id
//!   marked done for the retention;
//! - the runs tracked, so that a shutdown waits for them ([`HandGuarded::drain`]);
//!   after it, a delivery is answered `503` `shutting_down` and its claim released;
//! - one `tracing` span a delivery, with the event id.
//!
//! What it leaves out of the layer: several `v1` (secret rotation), the body's
//! size limit and read timeout, typed events per type with snapshots, replaying
//! dead letters, stats and metrics.
//! Against it, B/A prices the layer's way of giving the same guarantees rather
//! than the guarantees themselves.

use std::{
    collections::VecDeque,
    fmt,
    hint::black_box,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::post,
};
use dashmap::{DashMap, mapref::entry::Entry};
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::hand_rolled::{Envelope, answer, refuse, verified_event};

/// How long a processed event's id is remembered.
const RETENTION: Duration = Duration::from_secs(96 * 60 * 60);
/// How long a claim holds without its run being admitted before it is taken over.
const LEASE: Duration = Duration::from_secs(5 * 60);
/// The most attempts of a run, and the wait before the second.
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest one attempt may take.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);
/// The dead letters kept (the oldest go first).
const DEAD_LETTERS: usize = 1_000;

/// The receiver's bounds; [`Limits::default`] is the layer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Event ids remembered at once.
    pub ids: usize,
    /// Runs at once.
    pub running: usize,
    /// Runs waiting for a turn beyond those running.
    pub waiting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ids: 1_000_000,
            running: 32,
            waiting: 1_024,
        }
    }
}

/// The receiver's state, shared by its requests and its runs.
#[derive(Clone)]
pub struct HandGuarded {
    inner: Arc<Inner>,
}

struct Inner {
    key: Hmac<Sha256>,
    limits: Limits,
    seen: DashMap<String, Seen>,
    /// A permit for each run, running or waiting.
    admitted: Arc<Semaphore>,
    running: Semaphore,
    runs: TaskTracker,
    /// Event ids and last errors of the runs that failed every attempt.
    dead: Mutex<VecDeque<(String, String)>>,
}

/// What an event id stands for.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// Claimed by a delivery whose run is not admitted yet.
    Claimed { at: Instant },
    /// Its run is admitted: it ends as `Done`, whatever happens in it.
    Accepted,
    /// Its run ended (processed or dead-lettered).
    Done { at: Instant },
}

impl Seen {
    /// Whether it still holds its id at `now`: a claim for its lease, an accepted
    /// event until its run ends, a processed one for the retention.
    fn holds(self, now: Instant) -> bool {
        match self {
            Self::Claimed { at } => now - at < LEASE,
            Self::Accepted => true,
            Self::Done { at } => now - at < RETENTION,
        }
    }
}

impl fmt::Debug for HandGuarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the key.
        f.debug_struct("HandGuarded")
            .field("limits", &self.inner.limits)
            .field("seen", &self.inner.seen.len())
            .field("runs", &self.inner.runs.len())
            .finish_non_exhaustive()
    }
}

impl HandGuarded {
    /// A receiver for deliveries signed with `secret`, within `limits`.
    pub fn new(secret: &[u8], limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                key: <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key"),
                limits,
                seen: DashMap::new(),
                admitted: Arc::new(Semaphore::new(limits.running + limits.waiting)),
                running: Semaphore::new(limits.running),
                runs: TaskTracker::new(),
                dead: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// An axum router that takes deliveries at `path` with this receiver.
    pub fn router(&self, path: &str) -> Router {
        Router::new()
            .route(path, post(receive))
            .with_state(self.clone())
    }

    /// Takes no new run and waits for those accepted; how many had not ended.
    pub async fn drain(&self) -> usize {
        let unfinished = self.inner.runs.len();
        self.inner.runs.close();
        self.inner.runs.wait().await;
        unfinished
    }

    /// The dead letters kept: event id and last error.
    pub fn dead_letters(&self) -> Vec<(String, String)> {
        let dead = self
            .inner
            .dead
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        dead.iter().cloned().collect()
    }
}

/// The axum handler: verify, parse, claim, admit, spawn the run, answer.
pub async fn receive(
    State(receiver): State<HandGuarded>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let span = tracing::info_span!(
        "webhook",
        provider = "hoursmith",
        event_id = tracing::field::Empty
    );
    async move {
        let event = match verified_event(&receiver.inner.key, &headers, &body) {
            Ok(event) => event,
            Err((status, body)) => return refuse(status, body),
        };
        tracing::Span::current().record("event_id", event.id.as_str());
        let inner = &receiver.inner;
        if let Some(answered) = inner.claim(&event.id) {
            return answered;
        }
        let admitted = match inner.admitted.clone().try_acquire_owned() {
            Ok(admitted) if !inner.runs.is_closed() => admitted,
            refused => {
                // Released: the sender's retry is processed.
                inner.seen.remove(&event.id);
                let error = match refused {
                    Ok(_) => r#"{"error":"shutting_down"}"#,
                    Err(_) => r#"{"error":"queue_full"}"#,
                };
                return refuse(StatusCode::SERVICE_UNAVAILABLE, error);
            }
        };
        // The run owns the event now: a redelivery is a duplicate.
        if let Some(mut seen) = inner.seen.get_mut(event.id.as_str()) {
            *seen = Seen::Accepted;
        }
        let run = inner.clone();
        inner.runs.spawn(
            async move {
                run.run(event).await;
                drop(admitted);
            }
            .in_current_span(),
        );
        answer(r#"{"status":"accepted"}"#)
    }
    .instrument(span)
    .await
}

impl Inner {
    /// Claims `id`; the answer to send instead when it is a duplicate, in progress,
    /// or there is no room.
    fn claim(&self, id: &str) -> Option<Response> {
        let now = Instant::now();
        // Before taking an entry: `len` and `retain` lock every shard.
        if self.seen.len() >= self.limits.ids {
            self.seen.retain(|_, seen| seen.holds(now));
        }
        let full = self.seen.len() >= self.limits.ids;
        match self.seen.entry(id.to_owned()) {
            Entry::Occupied(mut held) => match *held.get() {
                seen if !seen.holds(now) => {
                    held.insert(Seen::Claimed { at: now });
                    None
                }
                Seen::Claimed { .. } => {
                    Some(refuse(StatusCode::CONFLICT, r#"{"error":"in_progress"}"#))
                }
                Seen::Accepted | Seen::Done { .. } => Some(answer(r#"{"status":"duplicate"}"#)),
            },
            Entry::Vacant(_) if full => Some(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"store_full"}"#,
            )),
            Entry::Vacant(free) => {
                free.insert(Seen::Claimed { at: now });
                None
            }
        }
    }

    /// One accepted event's run: a turn, the attempts, then its id marked done (and
    /// its dead letter kept if every attempt failed).
    async fn run(&self, event: Envelope) {
        // Never closed, so never an error.
        let _turn = self.running.acquire().await;
        let mut attempt = 1;
        let outcome = loop {
            let handled = AssertUnwindSafe(handle(&event)).catch_unwind();
            let error = match tokio::time::timeout(HANDLER_TIMEOUT, handled).await {
                Ok(Ok(Ok(()))) => break Ok(()),
                Ok(Ok(Err(error))) => error,
                Ok(Err(_panic)) => "the handler panicked".to_owned(),
                Err(_elapsed) => "the handler timed out".to_owned(),
            };
            if attempt == ATTEMPTS {
                break Err(error);
            }
            tracing::warn!(%error, attempt, "webhook handler failed; retrying");
            tokio::time::sleep(FIRST_BACKOFF * 2_u32.pow(attempt - 1)).await;
            attempt += 1;
        };
        let id = event.id;
        let done = Seen::Done { at: Instant::now() };
        match outcome {
            Ok(()) => {
                self.seen.insert(id, done);
            }
            Err(error) => {
                self.seen.insert(id.clone(), done);
                let mut dead = self.dead.lock().unwrap_or_else(PoisonError::into_inner);
                if dead.len() == DEAD_LETTERS {
                    dead.pop_front();
                }
                dead.push_back((id, error));
            }
        }
    }
}

/// The application's handler: reads the event and does nothing, as the layer's
/// route in the benchmark does nothing.
async fn handle(event: &Envelope) -> Result<(), String> {
    black_box((&event.kind, event.created, &event.org_id, event.livemode));
    black_box(&event.data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HOURSMITH_SECRET, KIB, event_id, hoursmith_body, hoursmith_headers, now_secs};

    fn receiver(limits: Limits) -> HandGuarded {
        HandGuarded::new(HOURSMITH_SECRET.as_bytes(), limits)
    }

    /// The status and body of the answer to event `n`'s delivery.
    async fn deliver(receiver: &HandGuarded, n: u64) -> (StatusCode, String) {
        let now = now_secs();
        let body = hoursmith_body(&event_id(9, n), now, KIB);
        let response = receive(State(receiver.clone()), hoursmith_headers(&body, now), body).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), KIB)
            .await
            .expect("a short answer");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    // On a current-thread runtime an accepted event's run starts only when the test
    // awaits something that yields: the redelivery below comes before the run.
    #[tokio::test(flavor = "current_thread")]
    async fn a_redelivery_before_the_run_is_a_duplicate_and_the_event_runs_once() {
        let receiver = receiver(Limits::default());
        assert_eq!(
            deliver(&receiver, 1).await,
            (StatusCode::OK, r#"{"status":"accepted"}"#.to_owned())
        );
        assert_eq!(
            deliver(&receiver, 1).await,
            (StatusCode::OK, r#"{"status":"duplicate"}"#.to_owned())
        );
        assert_eq!(receiver.drain().await, 1, "one run, not yet ended");
        assert_eq!(
            deliver(&receiver, 1).await,
            (StatusCode::OK, r#"{"status":"duplicate"}"#.to_owned())
        );
        assert!(receiver.dead_letters().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn past_its_bound_a_delivery_is_refused_and_its_claim_released() {
        let receiver = receiver(Limits {
            ids: 10,
            running: 1,
            waiting: 0,
        });
        assert_eq!(deliver(&receiver, 1).await.0, StatusCode::OK);
        assert_eq!(
            deliver(&receiver, 2).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"queue_full"}"#.to_owned()
            )
        );
        // Its run ended, the first's permit is back: the retry is processed.
        tokio::task::yield_now().await;
        assert_eq!(
            deliver(&receiver, 2).await,
            (StatusCode::OK, r#"{"status":"accepted"}"#.to_owned())
        );
        // Shut down: nothing new is taken, and its claim is released.
        receiver.drain().await;
        assert_eq!(
            deliver(&receiver, 3).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"shutting_down"}"#.to_owned()
            )
        );
        assert_eq!(deliver(&receiver, 2).await.1, r#"{"status":"duplicate"}"#);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_every_id_still_held_a_new_event_is_refused() {
        let receiver = receiver(Limits {
            ids: 2,
            ..Limits::default()
        });
        for n in 1..=2 {
            assert_eq!(deliver(&receiver, n).await.0, StatusCode::OK);
        }
        receiver.drain().await;
        assert_eq!(
            deliver(&receiver, 3).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"store_full"}"#.to_owned()
            )
        );
        assert_eq!(deliver(&receiver, 1).await.1, r#"{"status":"duplicate"}"#);
    }
}
