//! Exactly-once effects: a handler's writes and its event's mark commit together in
//! an `Inbox`, so two instances, duplicates and failing first attempts leave exactly
//! one effect per event.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, routing::post_service};
use hookwise_core::{
    ClaimOutcome, DedupeKey, DedupeStore, Delivery, Duplicate, Hoursmith, Receiver, hoursmith,
};
use hookwise_postgres::{PgStore, sqlx};
use hookwise_runtime::{RetryPolicy, Webhooks};
use hookwise_test_support::*;
use hookwise_tower::WebhookEndpoint;

const UNIQUE: usize = 4_000;
const DUPLICATES: usize = 1_000; // 20 % of 5,000

async fn store(server: &PgServer) -> PgStore {
    let store = PgStore::new(&server.url()).expect("valid URL");
    store.migrate().await.expect("migrated");
    store
}

async fn effects_table(store: &PgStore) {
    // No unique constraint: a second effect of an event would show.
    sqlx::query("CREATE TABLE IF NOT EXISTS effects (event_id text NOT NULL)")
        .execute(store.pool())
        .await
        .expect("table");
}

/// First attempts, by event id, across instances.
type Attempts = Arc<Mutex<HashMap<String, u32>>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Counts a run of event `id`: which one it is, 1 for the first.
fn count_run(runs: &Attempts, id: &str) -> u32 {
    let mut runs = runs.lock().expect("runs");
    let n = runs.entry(id.to_owned()).or_default();
    *n += 1;
    *n
}

/// Opens the event's inbox and writes its one effect row in it, uncommitted;
/// `None` when an inbox of the event committed already.
async fn write_effect(
    store: &PgStore,
    delivery: &Delivery<hoursmith::Event>,
) -> Result<Option<hookwise_postgres::Inbox>, BoxError> {
    let Some(mut inbox) = store.begin(delivery.dedupe_key()).await? else {
        return Ok(None);
    };
    sqlx::query("INSERT INTO effects (event_id) VALUES ($1)")
        .bind(delivery.event().id())
        .execute(inbox.conn())
        .await?;
    Ok(Some(inbox))
}

/// One instance: its own store (pool), the in-memory processor, and a handler that
/// writes one effect per event in an inbox, failing the first attempt of every
/// third event after writing (so its transaction rolls back).
async fn instance(
    server: &PgServer,
    attempts: Attempts,
) -> (std::net::SocketAddr, Webhooks<Hoursmith>) {
    let store = store(server).await;
    let inbox_store = store.clone();
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let webhooks = Webhooks::builder(receiver)
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5)),
        )
        .handler("effects", move |delivery: Delivery<hoursmith::Event>| {
            let (store, attempts) = (inbox_store.clone(), attempts.clone());
            async move {
                let id = delivery.event().id().to_owned();
                let attempt = count_run(&attempts, &id);
                let Some(inbox) = write_effect(&store, &delivery).await? else {
                    return Ok(());
                };
                let number: usize = id.trim_start_matches("soak-").parse().unwrap_or(0);
                if attempt == 1 && number.is_multiple_of(3) {
                    // Dropped uncommitted: the effect rolls back with the mark.
                    return Err::<(), BoxError>("the first attempt fails after its write".into());
                }
                inbox.commit().await?;
                Ok(())
            }
        })
        .build()
        .expect("valid settings");
    let endpoint = WebhookEndpoint::new(&webhooks, "effects").expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    (addr, webhooks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_duplicates_and_failed_attempts_leave_exactly_one_effect_per_event() {
    let Some(server) = PgServer::start("exactly-once effects") else {
        return;
    };
    let setup = store(&server).await;
    effects_table(&setup).await;
    let attempts = Attempts::default();
    let (a, webhooks_a) = instance(&server, attempts.clone()).await;
    let (b, webhooks_b) = instance(&server, attempts.clone()).await;

    // 5,000 deliveries (no forgeries), half to each instance: a duplicate can land on
    // the other one.
    let schedule = Arc::new(soak_schedule(UNIQUE, DUPLICATES, 0));
    let half = schedule.len() / 2;
    let (to_a, to_b) = (schedule.clone(), schedule.clone());
    let (sent_a, sent_b) = tokio::join!(
        blast(a, "/hook", half, 8, true, move |i| to_a[2 * i].delivery()),
        blast(b, "/hook", schedule.len() - half, 8, true, move |i| to_b
            [2 * i + 1]
            .delivery()),
    );
    assert_eq!(
        sent_a.count(200) + sent_b.count(200),
        schedule.len(),
        "every delivery 200"
    );

    let (report_a, report_b) = tokio::join!(
        webhooks_a.shutdown(Duration::from_secs(30)),
        webhooks_b.shutdown(Duration::from_secs(30))
    );
    assert_eq!((report_a.unfinished, report_b.unfinished), (0, 0));

    let row =
        sqlx::query_as::<_, (i64, i64)>("SELECT count(*), count(DISTINCT event_id) FROM effects")
            .fetch_one(setup.pool())
            .await
            .expect("counted");
    assert_eq!(
        row,
        (UNIQUE as i64, UNIQUE as i64),
        "exactly one effect per event"
    );
    let (stats_a, stats_b) = (webhooks_a.stats().snapshot(), webhooks_b.stats().snapshot());
    assert_eq!(
        stats_a.processed + stats_b.processed,
        UNIQUE as u64,
        "processed = unique"
    );
    assert_eq!(stats_a.dead_lettered + stats_b.dead_lettered, 0);
    let failed_first = attempts
        .lock()
        .expect("attempts")
        .iter()
        .filter(|(id, n)| {
            **n > 1 && id.trim_start_matches("soak-").parse::<usize>().unwrap_or(1) % 3 == 0
        })
        .count();
    assert_eq!(
        failed_first,
        UNIQUE.div_ceil(3),
        "every third event ran twice"
    );
    let done =
        sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM hookwise.dedupe WHERE state = 'done'")
            .fetch_one(setup.pool())
            .await
            .expect("counted");
    assert_eq!(done.0, UNIQUE as i64);
    eprintln!(
        "inbox: {} deliveries to 2 instances, {UNIQUE} events, {} effects; 409s retried {}, 503s retried {}",
        schedule.len(),
        row.0,
        sent_a.retried_409 + sent_b.retried_409,
        sent_a.retried_503 + sent_b.retried_503
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_marks_done_only_with_its_commit_and_is_refused_once_done() {
    let Some(server) = PgServer::start("inbox basics") else {
        return;
    };
    let store = store(&server).await;
    effects_table(&store).await;
    let key = DedupeKey::new("hoursmith", "evt_inbox");
    let ClaimOutcome::Claimed(claim) = store.claim(&key).await.expect("claim") else {
        panic!("claimed");
    };
    assert!(store.confirm(&claim).await.expect("confirm"));

    // Rolled back: neither the effect nor the mark.
    let mut inbox = store.begin(&key).await.expect("begin").expect("not done");
    sqlx::query("INSERT INTO effects (event_id) VALUES ('evt_inbox')")
        .execute(inbox.conn())
        .await
        .expect("insert");
    drop(inbox);
    assert_eq!(
        store.claim(&key).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::InFlight)
    );

    // Committed: both.
    let mut inbox = store.begin(&key).await.expect("begin").expect("not done");
    sqlx::query("INSERT INTO effects (event_id) VALUES ('evt_inbox')")
        .execute(inbox.conn())
        .await
        .expect("insert");
    inbox.commit().await.expect("commit");
    assert_eq!(
        store.claim(&key).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
    let effects = sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM effects")
        .fetch_one(store.pool())
        .await
        .expect("counted");
    assert_eq!(effects.0, 1);

    // Done: a second run of the event gets no inbox.
    assert!(store.begin(&key).await.expect("begin").is_none());
}

/// The inbox through the other two adapters: the axum extractor's
/// `process_in_background`, and a handler behind the tower layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_works_through_the_extractor_and_the_layer() {
    use axum::{Extension, extract::State, http::StatusCode, routing::post};
    use hookwise_axum::Webhook;
    use hookwise_tower::WebhookLayer;

    let Some(server) = PgServer::start("inbox through the adapters") else {
        return;
    };
    let store = store(&server).await;
    effects_table(&store).await;

    async fn effect(store: PgStore, delivery: Delivery<hoursmith::Event>) -> Result<(), BoxError> {
        match write_effect(&store, &delivery).await? {
            Some(inbox) => Ok(inbox.commit().await?),
            None => Ok(()),
        }
    }

    let receiver = || {
        Receiver::new(
            Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
            store.clone(),
        )
        .expect("config")
    };
    // The extractor.
    let extracted = Webhooks::new(receiver());
    let on_extracted = {
        let store = store.clone();
        move |webhook: Webhook<Hoursmith>| {
            let store = store.clone();
            async move {
                webhook
                    .process_in_background(move |delivery| effect(store.clone(), delivery))
                    .await
            }
        }
    };
    // The layer.
    let layered = Webhooks::new(receiver());
    async fn on_layered(
        State(store): State<PgStore>,
        Extension(delivery): Extension<Delivery<hoursmith::Event>>,
    ) -> StatusCode {
        match effect(store, delivery).await {
            Ok(()) => StatusCode::OK,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    let app = Router::new()
        .route("/extracted", post(on_extracted))
        .with_state(extracted.clone())
        .merge(
            Router::new()
                .route(
                    "/layered",
                    post(on_layered).route_layer(WebhookLayer::new(&layered).expect("in memory")),
                )
                .with_state(store.clone()),
        );
    let addr = serve(app).await;
    let client = client();
    for (path, id) in [("/extracted", "evt_x"), ("/layered", "evt_l")] {
        let delivery = hookwise_test_support::hoursmith(id);
        for _ in 0..3 {
            let answer = send(&client, addr, path, &delivery).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        }
    }
    extracted.shutdown(Duration::from_secs(5)).await;
    layered.shutdown(Duration::from_secs(5)).await;
    let rows = sqlx::query_as::<_, (String,)>("SELECT event_id FROM effects ORDER BY event_id")
        .fetch_all(store.pool())
        .await
        .expect("rows");
    let ids: Vec<_> = rows.into_iter().map(|(id,)| id).collect();
    assert_eq!(ids, ["evt_l", "evt_x"]);
}

/// The inbox behind the durable queue: the queue's `200` has marked the event's
/// dedupe row done already, and the inbox still runs the effect, once. A run whose
/// effect committed but whose queue row was not finished (here: the handler fails
/// after its commit, as a crash there would leave it) runs again and makes no
/// second effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_makes_one_effect_per_event_behind_the_durable_queue() {
    use hookwise_postgres::PgQueue;

    let Some(server) = PgServer::start("inbox behind the queue") else {
        return;
    };
    let store = store(&server).await;
    effects_table(&store).await;
    let runs = Attempts::default();
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        store.clone(),
    )
    .expect("config");
    let queue = PgQueue::new(&server.url())
        .expect("valid URL")
        .poll_interval(Duration::from_millis(20))
        .expect("valid settings");
    let (inbox_store, counted) = (store.clone(), runs.clone());
    let webhooks = Webhooks::builder(receiver)
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5)),
        )
        .durable_queue(queue)
        .handler("effects", move |delivery: Delivery<hoursmith::Event>| {
            let (store, runs) = (inbox_store.clone(), counted.clone());
            async move {
                let id = delivery.event().id().to_owned();
                let run = count_run(&runs, &id);
                let Some(inbox) = write_effect(&store, &delivery).await? else {
                    return Ok(());
                };
                inbox.commit().await?;
                if run == 1 && id.ends_with("_after_commit") {
                    return Err::<(), BoxError>("fails after its effect committed".into());
                }
                Ok(())
            }
        })
        .build()
        .expect("valid settings");
    let endpoint = WebhookEndpoint::new(&webhooks, "effects").expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    let client = client();
    let ids = ["evt_q1", "evt_q2", "evt_q3_after_commit"];
    for id in ids {
        let delivery = hookwise_test_support::hoursmith(id);
        for _ in 0..2 {
            let answer = send(&client, addr, "/hook", &delivery).await;
            assert_eq!(answer.status, 200, "{id}: {}", answer.body);
        }
    }
    // The queue runs them after the 200s: wait until its rows are finished.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM hookwise.queue")
            .fetch_one(store.pool())
            .await
            .expect("counted");
        if left.0 == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} rows left",
            left.0
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = webhooks.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.unfinished, 0);

    let rows = sqlx::query_as::<_, (String,)>("SELECT event_id FROM effects ORDER BY event_id")
        .fetch_all(store.pool())
        .await
        .expect("rows");
    let effects: Vec<_> = rows.into_iter().map(|(id,)| id).collect();
    assert_eq!(effects, ids, "one effect per event");
    assert_eq!(
        runs.lock().expect("runs").get("evt_q3_after_commit"),
        Some(&2),
        "the event whose run failed after its commit ran again"
    );
}
