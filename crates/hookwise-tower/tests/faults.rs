//! Faults in the handler: panics, hangs past the handler timeout, random failures.
//! The receiver keeps answering, and every accepted event ends processed or
//! dead-lettered, counted; none vanishes. Ends with the soak test: 20,000 deliveries
//! with duplicates, forgeries and a flaky handler, accounted for exactly.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Extension, Router, extract::State, routing::post};
use hookwise_core::{
    Delivery as Verified, Hoursmith, MemoryStore, Receiver, RejectionKind, hoursmith,
};
use hookwise_runtime::{
    DEFAULT_HANDLER_TIMEOUT, DeadLetter, HandlerError, RetryPolicy, StatsSnapshot, Webhooks,
    WebhooksBuilder,
};
use hookwise_test_support::*;
use hookwise_tower::WebhookLayer;
use http::StatusCode;

type Event = Verified<hoursmith::Event>;

/// What the handler saw: successful runs by event id, every attempt, dead letters.
#[derive(Clone, Default)]
struct Ledger {
    processed: Arc<Mutex<HashMap<String, u32>>>,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
    dead: Arc<Mutex<Vec<(String, HandlerError, u32)>>>,
    dice: Dice,
}

impl Ledger {
    /// Counts one attempt at `id` and returns its number (from 1).
    fn attempt(&self, id: &str) -> u32 {
        let mut attempts = self.attempts.lock().expect("attempts");
        let n = attempts.entry(id.to_owned()).or_default();
        *n += 1;
        *n
    }

    fn succeeded(&self, id: &str) {
        *self
            .processed
            .lock()
            .expect("processed")
            .entry(id.to_owned())
            .or_default() += 1;
    }

    fn processed(&self) -> HashMap<String, u32> {
        self.processed.lock().expect("processed").clone()
    }

    fn dead(&self) -> Vec<(String, HandlerError, u32)> {
        self.dead.lock().expect("dead letters").clone()
    }

    fn dead_letter_sink(&self) -> impl Fn(DeadLetter<hoursmith::Event>) + Send + Sync + 'static {
        let dead = self.dead.clone();
        move |letter| {
            let id = letter.delivery.event().id().to_owned();
            dead.lock()
                .expect("dead letters")
                .push((id, letter.error, letter.attempts));
        }
    }

    /// A pseudo-random number in `0..100`, different on every call.
    fn percent(&self) -> u64 {
        self.dice.percent()
    }
}

/// A runtime over `store` whose dead letters go to `ledger`; the test adds the
/// processing settings.
fn builder(store: &Arc<MemoryStore>, ledger: &Ledger) -> WebhooksBuilder<Hoursmith> {
    let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    Webhooks::builder(Receiver::new(provider, store.clone()).expect("config"))
        .on_dead_letter(ledger.dead_letter_sink())
}

fn app<H, T>(webhooks: &Webhooks<Hoursmith>, ledger: Ledger, handler: H) -> Router
where
    H: axum::handler::Handler<T, Ledger>,
    T: 'static,
{
    Router::new()
        .route("/hook", post(handler))
        .with_state(ledger)
        .layer(WebhookLayer::new(webhooks).expect("in memory"))
}

/// Every accepted event is finished, and each exactly one way.
fn assert_accounted(stats: StatsSnapshot, ledger: &Ledger, ids: &HashSet<String>) {
    let processed = ledger.processed();
    let dead = ledger.dead();
    assert_eq!(stats.in_flight, 0, "{stats:?}");
    assert_eq!(stats.processed, processed.len() as u64, "{stats:?}");
    assert_eq!(stats.dead_lettered, dead.len() as u64, "{stats:?}");
    assert_eq!(
        stats.processed + stats.dead_lettered,
        ids.len() as u64,
        "processed + dead-lettered is every unique valid event: {stats:?}"
    );
    assert!(
        processed.values().all(|&runs| runs == 1),
        "an event succeeded twice"
    );
    let dead_ids: HashSet<_> = dead.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(dead_ids.len(), dead.len(), "an event dead-lettered twice");
    let processed_ids: HashSet<_> = processed.into_keys().collect();
    assert!(processed_ids.is_disjoint(&dead_ids), "processed and dead");
    let ended: HashSet<_> = processed_ids.union(&dead_ids).cloned().collect();
    assert_eq!(&ended, ids, "every event ended one way or the other");
}

#[test]
fn the_handler_timeout_defaults_to_30_seconds() {
    assert_eq!(DEFAULT_HANDLER_TIMEOUT, Duration::from_secs(30));
    // And a runtime built with the defaults uses it (its `Debug` shows its settings).
    let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    let webhooks = Webhooks::new(Receiver::new(provider, MemoryStore::new()).expect("config"));
    let shown = format!("{webhooks:?}");
    let expected = format!("handler_timeout: {:?}", Duration::from_secs(30));
    assert!(shown.contains(&expected), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_hanging_and_failing_handlers_end_processed_or_dead_lettered() {
    const N: usize = 300;
    const TIMEOUT: Duration = Duration::from_millis(100);

    /// Event `f<i>` behaves by `i % 10`: 0 panics and 1 hangs on every attempt, 2
    /// panics and 3 hangs on the first attempt only, 4 and 5 fail half the time at
    /// random, the rest succeed.
    async fn faulty(State(ledger): State<Ledger>, Extension(d): Extension<Event>) -> StatusCode {
        let id = d.event().id();
        let attempt = ledger.attempt(id);
        let class = id[1..].parse::<usize>().expect("f<i>") % 10;
        match class {
            0 => panic!("handler bug on {id}"),
            2 if attempt == 1 => panic!("first-attempt bug on {id}"),
            1 => std::future::pending().await,
            3 if attempt == 1 => std::future::pending().await,
            4 | 5 if ledger.percent() < 50 => return StatusCode::INTERNAL_SERVER_ERROR,
            _ => {}
        }
        ledger.succeeded(id);
        StatusCode::OK
    }

    let ledger = Ledger::default();
    let webhooks = builder(&Arc::new(MemoryStore::new()), &ledger)
        .concurrency(16)
        .handler_timeout(TIMEOUT)
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5)),
        )
        .build()
        .expect("valid settings");
    let (stats, shutdown) = (webhooks.stats(), webhooks.shutdown_handle());
    let addr = serve(app(&webhooks, ledger.clone(), faulty)).await;

    let started = Instant::now();
    let answers = blast(addr, "/hook", N, 8, true, |i| hoursmith(&format!("f{i}"))).await;
    let answered = started.elapsed();
    // While the faulty runs go on, the receiver still answers at once.
    let probe = Instant::now();
    let extra = send(&client(), addr, "/hook", &hoursmith("f7777")).await;
    assert_eq!(extra.status, 200);
    let probe = probe.elapsed();
    assert!(probe < Duration::from_secs(2), "{probe:?}");

    let report = shutdown.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.unfinished, 0);
    assert_eq!(answers.count(200), N, "every delivery answered 200");

    let ids: HashSet<_> = (0..N)
        .map(|i| format!("f{i}"))
        .chain(["f7777".into()])
        .collect();
    let snapshot = stats.snapshot();
    assert_eq!(
        snapshot.accepted,
        ids.len() as u64 + answers.retried_503 as u64
    );
    assert_accounted(snapshot, &ledger, &ids);
    // Each fault ends the way it should.
    for (id, error, attempts) in ledger.dead() {
        let class = id[1..].parse::<usize>().expect("f<i>") % 10;
        assert_eq!(attempts, 3, "{id}");
        match class {
            0 => assert!(matches!(error, HandlerError::Panicked(ref m) if m.contains(&id))),
            1 => assert_eq!(error, HandlerError::TimedOut(TIMEOUT)),
            4 | 5 => assert_eq!(
                error,
                HandlerError::Status(StatusCode::INTERNAL_SERVER_ERROR)
            ),
            _ => panic!("{id} should have been processed, got {error}"),
        }
    }
    let dead = ledger.dead().len();
    eprintln!(
        "faults: {} events answered in {answered:.1?} (a probe in {probe:?}); \
         {} processed, {dead} dead-lettered, {} retries",
        ids.len(),
        snapshot.processed,
        snapshot.retried
    );
    // Classes 0 and 1 always die; 4 and 5 die when all three coins fail (1 in 8).
    assert!(
        (2 * N / 10..=4 * N / 10).contains(&dead),
        "{dead} dead letters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_20000_deliveries_with_duplicates_forgeries_and_a_flaky_handler() {
    const TOTAL: usize = 20_000;
    const DUPLICATES: usize = TOTAL / 5; // 20 %
    const FORGED: usize = TOTAL / 20; // 5 %
    const UNIQUE: usize = TOTAL - DUPLICATES - FORGED;

    /// Fails 10 % of attempts, at random.
    async fn flaky(State(ledger): State<Ledger>, Extension(d): Extension<Event>) -> StatusCode {
        if ledger.percent() < 10 {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        ledger.succeeded(d.event().id());
        StatusCode::OK
    }

    // The schedule: slot -> what to send, shuffled (a duplicate may come first).
    let schedule = Arc::new(soak_schedule(UNIQUE, DUPLICATES, FORGED));

    let ledger = Ledger::default();
    // A small queue, so that some deliveries are refused with 503 (claim released)
    // and come back, as a sender's retries would.
    let store = Arc::new(MemoryStore::new());
    let webhooks = builder(&store, &ledger)
        .concurrency(4)
        .queue_capacity(4)
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(1)),
        )
        .build()
        .expect("valid settings");
    let (stats, shutdown) = (webhooks.stats(), webhooks.shutdown_handle());
    let addr = serve(app(&webhooks, ledger.clone(), flaky)).await;

    // For the report only; /proc is Linux's.
    let rss = || {
        cfg!(target_os = "linux")
            .then(rss_bytes)
            .unwrap_or_default()
    };
    let rss_before = rss();
    let started = Instant::now();
    let answers = blast(addr, "/hook", TOTAL, 16, true, {
        let schedule = schedule.clone();
        move |slot| schedule[slot].delivery()
    })
    .await;
    let answered = started.elapsed();
    let report = shutdown.shutdown(Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    assert_eq!(report.unfinished, 0);

    for (slot, status) in answers.statuses.iter().enumerate() {
        let expected = match schedule[slot] {
            Slot::Valid(_) => 200,
            Slot::Forged(_) => 401,
        };
        assert_eq!(*status, expected, "slot {slot}: {:?}", schedule[slot]);
    }
    let s = stats.snapshot();
    let retried = answers.retried_503 as u64;
    let ids: HashSet<_> = (0..UNIQUE).map(|k| format!("soak-{k}")).collect();
    assert_accounted(s, &ledger, &ids);
    assert_eq!(s.processed + s.dead_lettered, UNIQUE as u64, "exactly");
    assert_eq!(
        s.accepted,
        UNIQUE as u64 + retried,
        "a 503 releases its claim"
    );
    assert_eq!(s.duplicates, DUPLICATES as u64);
    assert_eq!(s.rejected(RejectionKind::SignatureMismatch), FORGED as u64);
    assert_eq!(s.rejected(RejectionKind::QueueFull), retried);
    assert_eq!(s.rejected_total(), FORGED as u64 + retried);
    let store = store.stats();
    assert_eq!(store.keys, UNIQUE);
    assert_eq!(store.claims, UNIQUE as u64 + retried);
    eprintln!(
        "soak: {TOTAL} deliveries answered in {answered:.1?}, drained in {elapsed:.1?}; \
         {} processed + {} dead-lettered = {UNIQUE} unique valid; {} duplicates, {} forged, \
         {} handler retries, {retried} deliveries refused 503 (queue full) and sent again; RSS {:.1} -> {:.1} MiB",
        s.processed,
        s.dead_lettered,
        s.duplicates,
        s.rejected(RejectionKind::SignatureMismatch),
        s.retried,
        rss_before as f64 / MIB as f64,
        rss() as f64 / MIB as f64,
    );
}
