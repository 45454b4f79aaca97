//! Per-resource ordering over real sockets: one invoice's events run one after
//! another in the order they were accepted, other invoices' in parallel; a failing
//! event holds its invoice's line through its retries; with `skip_stale`, a late,
//! older event is acknowledged and never run, in memory and behind a durable queue.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use axum::{Router, routing::post_service};
use bytes::Bytes;
use hookwise::{
    AckMode, Hoursmith, MemoryStore, Ordering, Receiver, RetryPolicy, Webhooks, WebhooksBuilder,
    hoursmith, tower::WebhookEndpoint,
};
use hookwise_redis::{RedisQueue, RedisStore};
use hookwise_test_support::*;

/// An `invoice.sent` of `invoice`, made by Hoursmith at `created`, signed now.
fn invoice_event(id: &str, invoice: &str, created: u64) -> hookwise_test_support::Delivery {
    let body = Bytes::from(format!(
        r#"{{"id":"{id}","type":"invoice.sent","created":{created},"orgId":"o",
            "livemode":true,"data":{{"invoice":{{"id":"{invoice}"}}}}}}"#
    ));
    hoursmith_signed(body, now())
}

/// What the handlers saw: each run's event id in the order runs ended, and how many
/// ran at once, per invoice and in all.
#[derive(Clone, Default)]
struct Runs {
    ended: Arc<Mutex<Vec<String>>>,
    running: Arc<Mutex<HashMap<String, usize>>>,
    overlapped_in_an_invoice: Arc<AtomicUsize>,
    at_once: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl Runs {
    fn start(&self, invoice: &str) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let count = running.entry(invoice.to_owned()).or_default();
        *count += 1;
        if *count > 1 {
            self.overlapped_in_an_invoice.fetch_add(1, SeqCst);
        }
        let now = self.at_once.fetch_add(1, SeqCst) + 1;
        self.most_at_once.fetch_max(now, SeqCst);
    }

    fn end(&self, invoice: &str, id: &str) {
        *self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(invoice.to_owned())
            .or_default() -= 1;
        self.at_once.fetch_sub(1, SeqCst);
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id.to_owned());
    }

    fn ended(&self) -> Vec<String> {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The ids that ended, of `invoice`'s events only, in the order they ended.
    fn of(&self, invoice: &str) -> Vec<String> {
        self.ended()
            .into_iter()
            .filter(|id| id.contains(invoice))
            .collect()
    }
}

/// A Hoursmith receiver with the test secret, on `store`.
fn receiver<S: hookwise::DedupeStore>(store: S) -> Receiver<Hoursmith, S> {
    Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config")
}

fn invoice_of(delivery: &hookwise::Delivery<hoursmith::Event>) -> String {
    match delivery.event().data() {
        hoursmith::EventData::InvoiceSent { invoice } => invoice.id().unwrap_or("").to_owned(),
        _ => String::new(),
    }
}

/// A runtime whose handler `invoices` sleeps long on each invoice's first event
/// (`_0`) and briefly on the others, so that unordered runs end out of order.
fn runtime(ordering: Option<Ordering<hoursmith::Event>>, runs: &Runs) -> Webhooks<Hoursmith> {
    let runs = runs.clone();
    let mut builder = Webhooks::builder(receiver(MemoryStore::new()))
        .concurrency(8)
        .handler(
            "invoices",
            move |delivery: hookwise::Delivery<hoursmith::Event>| {
                let runs = runs.clone();
                async move {
                    let invoice = invoice_of(&delivery);
                    let id = delivery.event().id().to_owned();
                    runs.start(&invoice);
                    let pause = if id.ends_with("_0") { 300 } else { 10 };
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    runs.end(&invoice, &id);
                    Ok::<_, std::convert::Infallible>(())
                }
            },
        );
    if let Some(ordering) = ordering {
        builder = builder.ordering(ordering);
    }
    builder.build().expect("valid")
}

/// Sends three events for each of four invoices, one after another, each answered
/// before the next is sent, and waits for the twelve runs.
async fn send_three_per_invoice(webhooks: &Webhooks<Hoursmith>, runs: &Runs) {
    let endpoint = WebhookEndpoint::new(webhooks, "invoices").expect("registered");
    let addr = serve(Router::new().route("/hooks", post_service(endpoint))).await;
    let client = client();
    let base = now();
    for seq in 0..3 {
        for invoice in ["in_a", "in_b", "in_c", "in_d"] {
            let id = format!("evt_{invoice}_{seq}");
            let answer = send(
                &client,
                addr,
                "/hooks",
                &invoice_event(&id, invoice, base + seq),
            )
            .await;
            assert_eq!(answer.status, 200, "{id}: {answer:?}");
        }
    }
    let ended = eventually(Duration::from_secs(20), || runs.ended().len() == 12).await;
    assert!(ended, "every event ran: {:?}", runs.ended());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invoices_events_run_one_after_another_in_the_order_accepted() {
    let runs = Runs::default();
    let webhooks = runtime(Some(Ordering::by_resource()), &runs);
    send_three_per_invoice(&webhooks, &runs).await;
    for invoice in ["in_a", "in_b", "in_c", "in_d"] {
        assert_eq!(
            runs.of(invoice),
            [0, 1, 2].map(|seq| format!("evt_{invoice}_{seq}")),
            "{invoice}'s events ran in the order they were accepted"
        );
    }
    assert_eq!(runs.overlapped_in_an_invoice.load(SeqCst), 0);
    assert!(
        runs.most_at_once.load(SeqCst) >= 2,
        "different invoices ran in parallel"
    );
    webhooks.shutdown(Duration::from_secs(5)).await;
}

/// The control: the same deliveries without ordering end out of order, so the test
/// above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ordering_the_same_events_end_out_of_order() {
    let runs = Runs::default();
    let webhooks = runtime(None, &runs);
    send_three_per_invoice(&webhooks, &runs).await;
    let in_order = ["in_a", "in_b", "in_c", "in_d"]
        .iter()
        .filter(|invoice| runs.of(invoice) == [0, 1, 2].map(|seq| format!("evt_{invoice}_{seq}")))
        .count();
    assert!(
        in_order < 4,
        "the slow first events end last: {:?}",
        runs.ended()
    );
    assert!(runs.overlapped_in_an_invoice.load(SeqCst) > 0);
    webhooks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_holds_its_line_through_its_retries() {
    let seen = Recorder::default();
    let failed_once = Arc::new(AtomicUsize::new(0));
    let webhooks = Webhooks::builder(receiver(MemoryStore::new()))
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(200)),
        )
        .ordering(Ordering::by_resource())
        .handler("invoices", {
            let seen = seen.clone();
            let failed_once = failed_once.clone();
            move |delivery: hookwise::Delivery<hoursmith::Event>| {
                let id = delivery.event().id().to_owned();
                let fail = id == "evt_1" && failed_once.fetch_add(1, SeqCst) == 0;
                seen.record(&format!("{id} {}", if fail { "failed" } else { "ok" }));
                std::future::ready(match fail {
                    true => Err("the invoice service is down"),
                    false => Ok(()),
                })
            }
        })
        .build()
        .expect("valid");
    let endpoint = WebhookEndpoint::new(&webhooks, "invoices").expect("registered");
    let addr = serve(Router::new().route("/hooks", post_service(endpoint))).await;
    let client = client();
    let base = now();
    for (n, id) in ["evt_1", "evt_2"].iter().enumerate() {
        let answer = send(
            &client,
            addr,
            "/hooks",
            &invoice_event(id, "in_1", base + n as u64),
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(seen.wait_for(3, Duration::from_secs(10)).await, 3);
    assert_eq!(
        seen.ids(),
        ["evt_1 failed", "evt_1 ok", "evt_2 ok"],
        "the second waited for the first's retry"
    );
    webhooks.shutdown(Duration::from_secs(5)).await;
}

/// Sends `id` of `in_1` made at `created` and checks the 200.
async fn deliver(addr: std::net::SocketAddr, id: &str, created: u64) {
    let answer = send(
        &client(),
        addr,
        "/hooks",
        &invoice_event(id, "in_1", created),
    )
    .await;
    assert_eq!(answer.status, 200, "{id}: {answer:?}");
}

/// Builds `builder` with stale events skipped and a recording handler, then applies
/// a newer event, sends an older one (skipped), a redelivery of it (a duplicate), one
/// made at the same time as the newer (run) and a newest one (run).
async fn skips_the_late_older_event(builder: WebhooksBuilder<Hoursmith>) {
    let seen = Recorder::default();
    let webhooks = builder
        .ordering(Ordering::by_resource().skip_stale(true))
        .handler("invoices", recording(&seen))
        .build()
        .expect("valid");
    let endpoint = WebhookEndpoint::new(&webhooks, "invoices").expect("registered");
    let addr = serve(Router::new().route("/hooks", post_service(endpoint))).await;
    let base = now();
    deliver(addr, "evt_paid", base + 20).await;
    assert_eq!(seen.wait_for(1, Duration::from_secs(10)).await, 1);
    deliver(addr, "evt_sent_late", base + 10).await;
    let stats = webhooks.stats();
    let skipped = eventually(Duration::from_secs(10), || stats.snapshot().stale == 1).await;
    assert!(
        skipped,
        "the older event was skipped: {:?}",
        stats.snapshot()
    );
    deliver(addr, "evt_sent_late", base + 10).await;
    deliver(addr, "evt_same_time", base + 20).await;
    // One at a time: behind Redis, events read together start in no set order, and
    // the newest run first would make the one of the same time stale.
    assert_eq!(seen.wait_for(2, Duration::from_secs(10)).await, 2);
    deliver(addr, "evt_newest", base + 30).await;
    assert_eq!(seen.wait_for(3, Duration::from_secs(10)).await, 3);
    let snapshot = stats.snapshot();
    assert_eq!(
        (snapshot.stale, snapshot.duplicates, snapshot.processed),
        (1, 1, 3),
        "a skipped event is not counted as processed: {snapshot:?}"
    );
    assert_eq!(seen.ids(), ["evt_paid", "evt_same_time", "evt_newest"]);
    webhooks.shutdown(Duration::from_secs(5)).await;
}

fn recording(
    seen: &Recorder,
) -> impl Fn(
    hookwise::Delivery<hoursmith::Event>,
) -> std::future::Ready<Result<(), std::convert::Infallible>>
+ Send
+ Sync
+ 'static {
    let seen = seen.clone();
    move |delivery| {
        seen.record(delivery.event().id());
        std::future::ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_older_event_is_acknowledged_and_skipped_with_skip_stale() {
    skips_the_late_older_event(Webhooks::builder(receiver(MemoryStore::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_handler_a_late_older_event_is_answered_and_skipped_too() {
    let builder = Webhooks::builder(receiver(MemoryStore::new())).mode(AckMode::AfterHandler);
    skips_the_late_older_event(builder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_durable_queue_a_late_older_event_is_skipped_too() {
    let Some(redis) = RedisServer::start("ordering behind a durable queue") else {
        return;
    };
    let url = redis.url();
    let builder = Webhooks::builder(receiver(RedisStore::new(&url).expect("store")))
        .durable_queue(RedisQueue::new(&url).expect("queue"));
    skips_the_late_older_event(builder).await;
}
