//! What the runtime does with a new event, through its public API only: the way
//! every adapter uses it.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use hookwise_core::{
    Delivery, Duplicate, Hoursmith, MemoryStore, OutcomeKind, Receiver, RejectionKind, StoreError,
    hoursmith,
};
use hookwise_runtime::{
    DurableQueue, Enqueue, IfNew, QueueFuture, Received, RetryPolicy, RunHere, RunResult, Stored,
    Unclaimed, Webhooks, Workers,
};
use hookwise_test_support::{hoursmith as signed, *};
use http::request::Parts;
use http_body_util::Full;

fn receiver(store: Arc<MemoryStore>) -> Receiver<Hoursmith, Arc<MemoryStore>> {
    let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    Receiver::new(provider, store).expect("receiver")
}

/// A delivery as an adapter holds it: the request head and its body.
fn request(id: &str) -> (Parts, Full<Bytes>) {
    let delivery = signed(id);
    let mut request = http::Request::post("/hook")
        .body(Full::new(delivery.body))
        .expect("request");
    *request.headers_mut() = delivery.headers;
    request.into_parts()
}

/// Receives `id` and returns its new event, or panics.
async fn new_event(
    webhooks: &Webhooks<Hoursmith>,
    id: &str,
) -> (
    Parts,
    Delivery<hoursmith::Event>,
    hookwise_runtime::HeldClaim<Hoursmith>,
) {
    let (head, body) = request(id);
    match webhooks.receive(&head, body).await {
        Ok(Received::New { delivery, claim }) => (head, delivery, claim),
        Ok(Received::Acknowledged(kind)) => panic!("{id}: acknowledged as {kind:?}"),
        Err(rejection) => panic!("{id}: {rejection}"),
    }
}

#[tokio::test]
async fn a_named_handler_runs_the_events_handed_to_it_and_a_duplicate_is_acknowledged() {
    let recorder = Recorder::default();
    let seen = recorder.clone();
    let webhooks = Webhooks::builder(receiver(Arc::default()))
        .handler("tasks", move |delivery: Delivery<hoursmith::Event>| {
            let seen = seen.clone();
            async move {
                seen.record(delivery.dedupe_key().id());
                Ok::<_, Infallible>(())
            }
        })
        .build()
        .expect("valid");
    let (head, delivery, claim) = new_event(&webhooks, "evt_1").await;
    webhooks
        .hand_to("tasks", &head, delivery, claim)
        .await
        .expect("taken on");
    assert!(eventually(Duration::from_secs(5), || recorder.ids() == ["evt_1"]).await);

    let (head, body) = request("evt_1");
    let again = webhooks.receive(&head, body).await.expect("verified");
    assert!(matches!(
        again,
        Received::Acknowledged(OutcomeKind::Duplicate)
    ));
    let report = webhooks.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unfinished, 0);
    assert_eq!(webhooks.stats().snapshot().processed, 1);
}

#[tokio::test]
async fn an_unknown_handler_name_is_refused_and_the_event_stays_receivable() {
    let store = Arc::new(MemoryStore::new());
    let webhooks = Webhooks::builder(receiver(store.clone()))
        .handler("tasks", |_: Delivery<hoursmith::Event>| async {
            Ok::<_, Infallible>(())
        })
        .build()
        .expect("valid");
    let (head, delivery, claim) = new_event(&webhooks, "evt_typo").await;
    let refused = webhooks
        .hand_to("taks", &head, delivery, claim)
        .await
        .expect_err("no such handler");
    assert_eq!(refused.kind(), RejectionKind::HandlerFailed);
    assert_eq!(store.stats().keys, 0, "the claim was released");
    // The sender's retry is a new event again, not a duplicate.
    let _ = new_event(&webhooks, "evt_typo").await;
}

/// A queue that stores in memory what it is given, and starts nothing.
#[derive(Clone, Default)]
struct VecQueue {
    stored: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl DurableQueue<Hoursmith> for VecQueue {
    fn enqueue<'a>(&'a self, entry: Enqueue<'a, hoursmith::Event>) -> QueueFuture<'a, Stored> {
        let stored = (
            entry.handler.to_owned(),
            entry.delivery.dedupe_key().id().to_owned(),
        );
        if let Ok(mut all) = self.stored.lock() {
            all.push(stored);
        }
        Box::pin(async { Ok(Stored::Uncommitted) })
    }

    fn start(&self, _workers: Workers<Hoursmith>) {}
}

#[tokio::test]
async fn a_durable_runtime_stores_under_the_handlers_name_and_refuses_a_per_request_job() {
    let store = Arc::new(MemoryStore::new());
    let queue = VecQueue::default();
    let webhooks = Webhooks::builder(receiver(store.clone()))
        .durable_queue(queue.clone())
        .handler("clients", |_: Delivery<hoursmith::Event>| async {
            Ok::<_, Infallible>(())
        })
        .handler("tasks", |_: Delivery<hoursmith::Event>| async {
            Ok::<_, Infallible>(())
        })
        .build()
        .expect("valid");

    let (head, delivery, claim) = new_event(&webhooks, "evt_stored").await;
    webhooks
        .hand_to("tasks", &head, delivery, claim)
        .await
        .expect("stored");
    let stored = queue.stored.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(stored, [("tasks".to_owned(), "evt_stored".to_owned())]);

    // A job given with the request would live in this process only: refused, and
    // the claim released, so the sender's retry can be handed to a named handler.
    let (_, delivery, claim) = new_event(&webhooks, "evt_job").await;
    let refused = webhooks
        .process(delivery, claim, |_| async { Ok::<_, Infallible>(()) })
        .await
        .expect_err("a per-request job in a durable runtime");
    assert_eq!(refused.kind(), RejectionKind::HandlerFailed);
    let _ = new_event(&webhooks, "evt_job").await;
    assert_eq!(queue.stored.lock().map(|s| s.len()).ok(), Some(1));
}

/// A queue that claims, stores and commits in one step, answering by the event id:
/// `evt_held_*` is held by a provisional claim, `evt_seen_*` was processed,
/// `evt_full_*` finds the backlog full; any other is stored, and `evt_here_*` given
/// back to run here, its end recorded in `finished`. `enqueue` is never expected,
/// and it has no workers.
#[derive(Clone, Default)]
struct OneStepQueue {
    stored: Arc<std::sync::Mutex<Vec<String>>>,
    finished: Arc<std::sync::Mutex<Vec<(String, RunResult)>>>,
}

impl DurableQueue<Hoursmith> for OneStepQueue {
    fn enqueue<'a>(&'a self, entry: Enqueue<'a, hoursmith::Event>) -> QueueFuture<'a, Stored> {
        panic!(
            "{} was claimed and enqueued in two steps",
            entry.delivery.dedupe_key()
        );
    }

    fn enqueue_if_new<'a>(
        &'a self,
        entry: Unclaimed<'a, hoursmith::Event>,
    ) -> Option<QueueFuture<'a, IfNew>> {
        let id = entry.delivery.dedupe_key().id().to_owned();
        let answer = if id.starts_with("evt_held") {
            Ok(IfNew::Duplicate(Duplicate::Provisional))
        } else if id.starts_with("evt_seen") {
            Ok(IfNew::Duplicate(Duplicate::Processed))
        } else if id.starts_with("evt_full") {
            Err(StoreError::full("the backlog is full"))
        } else {
            if let Ok(mut all) = self.stored.lock() {
                all.push(format!("{}:{id}", entry.handler));
            }
            if id.starts_with("evt_here") {
                let finished = self.finished.clone();
                Ok(IfNew::StoredToRunHere(RunHere::new(
                    move |result| async move {
                        if let Ok(mut all) = finished.lock() {
                            all.push((id, result));
                        }
                    },
                )))
            } else {
                Ok(IfNew::Stored)
            }
        };
        Some(Box::pin(async move { answer }))
    }

    fn start(&self, _workers: Workers<Hoursmith>) {}
}

#[tokio::test]
async fn delivered_to_a_named_handler_a_queue_that_can_claims_stores_and_commits_in_one_step() {
    let store = Arc::new(MemoryStore::new());
    let queue = OneStepQueue::default();
    let webhooks = Webhooks::builder(receiver(store.clone()))
        .durable_queue(queue.clone())
        .handler("tasks", |_: Delivery<hoursmith::Event>| async {
            Ok::<_, Infallible>(())
        })
        .build()
        .expect("valid");
    let deliver = async |id: &str| {
        let (head, body) = request(id);
        webhooks.deliver_to("tasks", &head, body).await
    };

    assert_eq!(
        deliver("evt_new").await.expect("stored"),
        OutcomeKind::Accepted
    );
    assert_eq!(
        deliver("evt_seen").await.expect("acknowledged"),
        OutcomeKind::Duplicate
    );
    let held = deliver("evt_held").await.expect_err("in progress");
    assert_eq!(held.kind(), RejectionKind::InProgress);
    let full = deliver("evt_full").await.expect_err("refused");
    assert_eq!(full.kind(), RejectionKind::QueueFull);
    let other = deliver("evt_other").await;
    assert!(other.is_ok(), "{other:?}");
    let stored = queue.stored.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(stored, ["tasks:evt_new", "tasks:evt_other"]);
    assert_eq!(store.stats().claims, 0, "nothing was claimed in the store");

    let stats = webhooks.stats().snapshot();
    assert_eq!((stats.accepted, stats.duplicates), (2, 1));
    assert_eq!(
        stats.in_flight, 0,
        "stored events are out of this process's hands"
    );
    // A handler name nobody registered: refused before anything is stored.
    let (head, body) = request("evt_typo");
    let refused = webhooks
        .deliver_to("taks", &head, body)
        .await
        .expect_err("no such handler");
    assert_eq!(refused.kind(), RejectionKind::HandlerFailed);
    assert_eq!(queue.stored.lock().map(|s| s.len()).unwrap_or(0), 2);
    assert_eq!(store.stats().keys, 0, "the fallback's claim was released");
}

#[tokio::test]
async fn a_delivery_the_queue_gives_back_runs_here_and_its_end_goes_back_to_the_queue() {
    let queue = OneStepQueue::default();
    let recorder = Recorder::default();
    let seen = recorder.clone();
    let webhooks = Webhooks::builder(receiver(Arc::default()))
        .durable_queue(queue.clone())
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(1)),
        )
        .handler("tasks", move |delivery: Delivery<hoursmith::Event>| {
            let seen = seen.clone();
            async move {
                let id = delivery.event().id();
                seen.record(id);
                if id.ends_with("fails") {
                    return Err("it fails");
                }
                Ok(())
            }
        })
        .build()
        .expect("valid");
    for id in ["evt_here_runs", "evt_here_fails"] {
        let (head, body) = request(id);
        let kind = webhooks.deliver_to("tasks", &head, body).await;
        assert_eq!(kind, Ok(OutcomeKind::Accepted), "{id}");
    }
    // The queue starts no worker: what ran, ran from the request that stored it.
    let ended = || queue.finished.lock().map_or(0, |all| all.len()) == 2;
    assert!(eventually(Duration::from_secs(10), ended).await);
    let mut finished = queue
        .finished
        .lock()
        .map(|all| all.clone())
        .unwrap_or_default();
    finished.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        finished,
        [
            (
                "evt_here_fails".to_owned(),
                Err(("handler failed: it fails".to_owned(), 2))
            ),
            ("evt_here_runs".to_owned(), Ok(())),
        ]
    );
    let mut ran = recorder.ids();
    ran.sort();
    assert_eq!(ran, ["evt_here_fails", "evt_here_fails", "evt_here_runs"]);
    let stats = webhooks.stats().snapshot();
    assert_eq!(
        (stats.accepted, stats.processed, stats.dead_lettered),
        (2, 1, 1)
    );
    assert_eq!(
        webhooks.shutdown(Duration::from_secs(5)).await.unfinished,
        0
    );
}
