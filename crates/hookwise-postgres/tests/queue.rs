//! The durable queue on a real Postgres: an acknowledged event is processed from the
//! queue, a failing one is dead-lettered, listed and replayed, a row left by a dead
//! worker is taken over, one that keeps killing its worker is dead-lettered unrun,
//! and with the receiver's `PgStore` the row and the done-mark are one statement.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::post_service};
use hookwise_core::{
    AnyStore, Claim, ClaimOutcome, DedupeStore, Delivery, Duplicate, Hoursmith, MemoryStore,
    Outcome, Receiver, hoursmith,
};
use hookwise_postgres::{PgQueue, PgStore, StoredDeadLetter, sqlx};
use hookwise_runtime::{DurableQueue, Enqueue, IfNew, RetryPolicy, Stored, Unclaimed, Webhooks};
use hookwise_test_support::*;
use hookwise_tower::WebhookEndpoint;

const HANDLER: &str = "hook";

/// A migrated store whose claims expire after 3 s: a claim made just before
/// Postgres went down, whose release failed with it, answers 409 for that long.
async fn store(server: &PgServer) -> PgStore {
    let store = PgStore::new(&server.url())
        .expect("valid URL")
        .lease(Duration::from_secs(3))
        .expect("a valid lease");
    store.migrate().await.expect("migrated");
    store
}

fn queue(server: &PgServer) -> PgQueue {
    PgQueue::new(&server.url())
        .expect("valid URL")
        .poll_interval(Duration::from_millis(20))
        .and_then(|q| q.visibility(Duration::from_millis(600)))
        .expect("valid settings")
}

/// A durable instance on `server` whose handler records successes and fails while
/// `failing` is set; served on `POST /hook`.
async fn instance(
    server: &PgServer,
    recorder: &Recorder,
    failing: &Arc<AtomicBool>,
) -> (SocketAddr, Webhooks<Hoursmith>) {
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        store(server).await,
    )
    .expect("config");
    let (recorder, failing) = (recorder.clone(), failing.clone());
    let webhooks = Webhooks::builder(receiver)
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(5)),
        )
        .durable_queue(queue(server))
        .handler(HANDLER, move |delivery: Delivery<hoursmith::Event>| {
            let (recorder, failing) = (recorder.clone(), failing.clone());
            async move {
                if failing.load(Ordering::SeqCst) {
                    return Err("the handler fails");
                }
                recorder.record(delivery.event().id());
                Ok(())
            }
        })
        .build()
        .expect("valid settings");
    let endpoint = WebhookEndpoint::new(&webhooks, HANDLER).expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    (addr, webhooks)
}

/// The rows of `hookwise.<table>`.
fn rows(server: &PgServer, table: &str) -> i64 {
    server
        .psql(&format!("SELECT count(*) FROM hookwise.{table}"))
        .parse()
        .expect("a count")
}

async fn dead_letters(queue: &PgQueue, n: usize) -> Vec<StoredDeadLetter> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let letters = queue.dead_letters("hoursmith", 10).await.expect("listed");
        if letters.len() >= n || tokio::time::Instant::now() > deadline {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_event_is_processed_from_the_queue_and_its_row_deleted() {
    let Some(server) = PgServer::start("pg queue processes") else {
        return;
    };
    let (recorder, failing) = (Recorder::default(), Arc::new(AtomicBool::new(false)));
    let (addr, webhooks) = instance(&server, &recorder, &failing).await;
    let client = client();
    for i in 0..20 {
        let delivery = hoursmith(&format!("evt_{i}"));
        assert_eq!(send(&client, addr, "/hook", &delivery).await.status, 200);
        let again = send(&client, addr, "/hook", &delivery).await;
        assert_eq!(again.body, r#"{"status":"duplicate"}"#);
    }
    assert_eq!(recorder.wait_for(20, Duration::from_secs(10)).await, 20);
    webhooks.shutdown(Duration::from_secs(5)).await;
    assert_eq!(rows(&server, "queue"), 0);
    let mut ids = recorder.ids();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_is_dead_lettered_listed_and_replayed_once() {
    let Some(server) = PgServer::start("pg queue dead letters") else {
        return;
    };
    let (recorder, failing) = (Recorder::default(), Arc::new(AtomicBool::new(true)));
    let (addr, webhooks) = instance(&server, &recorder, &failing).await;
    let delivery = hoursmith("evt_dead");
    assert_eq!(send(&client(), addr, "/hook", &delivery).await.status, 200);
    let queue = queue(&server);
    let letters = dead_letters(&queue, 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key, "hoursmith:evt_dead");
    assert_eq!(letters[0].error, "handler failed: the handler fails");
    assert_eq!(
        (letters[0].handler.as_str(), letters[0].attempts),
        (HANDLER, 2)
    );
    assert_eq!(rows(&server, "queue"), 0);

    failing.store(false, Ordering::SeqCst);
    assert!(
        queue
            .replay("hoursmith", letters[0].id)
            .await
            .expect("replayed")
    );
    assert!(
        !queue
            .replay("hoursmith", letters[0].id)
            .await
            .expect("answered"),
        "once"
    );
    assert_eq!(recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert_eq!(recorder.ids(), ["evt_dead"]);
    assert!(dead_letters(&queue, 0).await.is_empty());
    webhooks.shutdown(Duration::from_secs(5)).await;
}

/// The signed delivery `id`, received and claimed through `receiver`: its request
/// head, the delivery and its claim.
async fn accepted<S: DedupeStore>(
    receiver: &Receiver<Hoursmith, S>,
    id: &str,
) -> (http::request::Parts, Delivery<hoursmith::Event>, Claim) {
    let (head, body) = signed_request(id);
    match receiver.receive(&head.headers, body).await {
        Ok(Outcome::Accepted { delivery, claim }) => (head, delivery, claim),
        other => panic!("{id} was not accepted: {other:?}"),
    }
}

/// The signed delivery `id` as a request to `/hook`: its head and body.
fn signed_request(id: &str) -> (http::request::Parts, bytes::Bytes) {
    let signed = hoursmith(id);
    let mut request = http::Request::post("/hook").body(()).expect("request");
    *request.headers_mut() = signed.headers;
    let (head, ()) = request.into_parts();
    (head, signed.body)
}

/// Stores `id` as an accepted delivery would be, without running it.
async fn stored(queue: &PgQueue, id: &str) {
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    let (head, delivery, claim) = accepted(&receiver, id).await;
    let other = AnyStore::new(MemoryStore::new());
    let entry = Enqueue::new(HANDLER, &head, &delivery, &claim, &other);
    let answer = DurableQueue::<Hoursmith>::enqueue(queue, entry).await;
    assert_eq!(
        answer.expect("stored"),
        Stored::Uncommitted,
        "another store: not committed here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_left_by_a_dead_worker_is_taken_over_and_one_that_kills_its_workers_is_dead_lettered_unrun()
 {
    let Some(server) = PgServer::start("pg queue takeover") else {
        return;
    };
    let setup = store(&server).await;
    let queue = queue(&server);
    stored(&queue, "evt_abandoned").await;
    stored(&queue, "evt_poison").await;
    // A worker that died took the first once, and the second five times.
    sqlx::query("UPDATE hookwise.queue SET deliveries = CASE WHEN key LIKE '%poison' THEN 5 ELSE 1 END, visible_at = clock_timestamp() + interval '300 milliseconds'")
        .execute(setup.pool())
        .await
        .expect("updated");
    let (recorder, failing) = (Recorder::default(), Arc::new(AtomicBool::new(false)));
    let (_addr, webhooks) = instance(&server, &recorder, &failing).await;
    assert_eq!(recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert_eq!(recorder.ids(), ["evt_abandoned"]);
    let letters = dead_letters(&queue, 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key, "hoursmith:evt_poison");
    assert_eq!(
        letters[0].error,
        "delivered 5 times without finishing (its worker died each time)"
    );
    assert_eq!(rows(&server, "queue"), 0);
    webhooks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_receivers_pg_store_the_row_and_the_done_mark_are_one_statement() {
    let Some(server) = PgServer::start("pg queue store and commit") else {
        return;
    };
    let store = store(&server).await;
    let queue = queue(&server);
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        store.clone(),
    )
    .expect("config")
    .erase_store();
    let (head, delivery, claim) = accepted(&receiver, "evt_one_statement").await;
    let entry = Enqueue::new(HANDLER, &head, &delivery, &claim, receiver.store());
    let answer = DurableQueue::<Hoursmith>::enqueue(&queue, entry).await;
    assert_eq!(answer.expect("stored"), Stored::Committed);
    assert_eq!(
        store.claim(delivery.dedupe_key()).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
    assert_eq!(rows(&server, "queue"), 1);

    // A claim that no longer holds its key stores nothing.
    let (head, delivery, claim) = accepted(&receiver, "evt_lost_claim").await;
    receiver.release(&claim).await.expect("released");
    let entry = Enqueue::new(HANDLER, &head, &delivery, &claim, receiver.store());
    let refused = DurableQueue::<Hoursmith>::enqueue(&queue, entry).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(rows(&server, "queue"), 1, "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_is_503_and_nothing_is_acknowledged_that_was_not_stored() {
    let Some(server) = PgServer::start("pg queue down") else {
        return;
    };
    let (recorder, failing) = (Recorder::default(), Arc::new(AtomicBool::new(false)));
    let (addr, webhooks) = instance(&server, &recorder, &failing).await;
    let client = client();
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_up"))
            .await
            .status,
        200
    );
    // Run and its row deleted before the stop: a run whose delete the stop cut off
    // would run again after the restart (at least once), which is not this test's.
    let finished = eventually(Duration::from_secs(10), || {
        recorder.runs() == 1 && rows(&server, "queue") == 0
    })
    .await;
    assert!(finished, "evt_up ran and its row is gone");
    server.stop();
    let down = send(&client, addr, "/hook", &hoursmith("evt_down")).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.headers.contains_key("retry-after"));
    server.start_server();
    let retry = send_until_decided(
        &client,
        addr,
        "/hook",
        &hoursmith("evt_down"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(recorder.wait_for(2, Duration::from_secs(10)).await, 2);
    webhooks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_flood_loses_nothing_acknowledged() {
    const N: usize = 1_000;
    let Some(server) = PgServer::start("pg restarted mid flood") else {
        return;
    };
    let (recorder, failing) = (Recorder::default(), Arc::new(AtomicBool::new(false)));
    let (addr, webhooks) = instance(&server, &recorder, &failing).await;
    // The sender retries 503 (Postgres down) and 409 (a claim made just before it
    // went down, provisional until its lease runs out) until it gets its 200.
    let flood = tokio::spawn(blast(addr, "/hook", N, 8, true, |i| {
        hoursmith(&format!("evt_{i}"))
    }));
    assert!(
        eventually(Duration::from_secs(20), || recorder.runs() >= N / 3).await,
        "the flood is under way"
    );
    assert!(
        !flood.is_finished(),
        "deliveries are in flight when Postgres stops"
    );
    server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.start_server();
    let sent = flood.await.expect("the flood");
    assert_eq!(sent.count(200), N, "every delivery ends with a 200");
    // The statements running at the stop fail (503); deliveries that wait for a
    // batch meanwhile wait for the pool to connect again, within the timeout (2 s),
    // so a short restart can be felt by a few deliveries only.
    // Every event acknowledged is run; one whose run ended just before the stop and
    // whose row was not yet deleted runs again (at least once).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let unique = || {
        let mut ids = recorder.ids();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    while unique() < N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {N} run",
            unique()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || server
            .psql("SELECT count(*) FROM hookwise.queue")
            == "0")
        .await,
        "the queue drains"
    );
    // Only runs in flight around the stop (32 run at once) or finishing then.
    let twice = recorder.runs() - N;
    assert!(twice <= 64, "{twice} events ran twice around the restart");
    eprintln!(
        "postgres restart: {N} deliveries, {} retried after 503, {} after 409, {twice} ran twice",
        sent.retried_503, sent.retried_409
    );
    webhooks.shutdown(Duration::from_secs(5)).await;
}

/// The bound holds round after round while the rows' ids move up, and for two
/// handlers whose rows interleave: the lowest id a queue keeps to skip reading it
/// again only ever makes it read it again, never admit a row past the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_bound_holds_round_after_round_as_the_ids_move_up() {
    let Some(server) = PgServer::start("pg queue backlog rounds") else {
        return;
    };
    let store = store(&server).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let recorder = Recorder::default();
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        store.clone(),
    )
    .expect("config");
    let mut builder =
        Webhooks::builder(receiver).durable_queue(queue(&server).max_backlog(3).expect("bound"));
    for name in ["first", "second"] {
        let (waiting, recording) = (gate.clone(), recorder.clone());
        builder = builder.handler(name, move |delivery: Delivery<hoursmith::Event>| {
            let (gate, recorder) = (waiting.clone(), recording.clone());
            async move {
                // Each run takes a pass for good: a round opens the gate for its own.
                gate.acquire()
                    .await
                    .map_err(|_| "the gate closed")?
                    .forget();
                recorder.record(delivery.event().id());
                Ok::<(), &str>(())
            }
        });
    }
    let webhooks = builder.build().expect("valid settings");
    let mut app = Router::new();
    for name in ["first", "second"] {
        let endpoint = WebhookEndpoint::new(&webhooks, name).expect("registered");
        app = app.route(&format!("/{name}"), post_service(endpoint));
    }
    let addr = serve(app).await;
    let client = client();

    for round in 0..4 {
        // The handlers' deliveries alternate, so their row ids interleave.
        for i in 0..3 {
            for name in ["first", "second"] {
                let id = format!("evt_{name}_{round}_{i}");
                let answer = send(&client, addr, &format!("/{name}"), &hoursmith(&id)).await;
                assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{id}: {answer:?}");
            }
        }
        for name in ["first", "second"] {
            let id = format!("evt_{name}_{round}_over");
            let refused = send(&client, addr, &format!("/{name}"), &hoursmith(&id)).await;
            assert_eq!(
                refused.status.as_u16(),
                503,
                "round {round}, {name}: {refused:?}"
            );
        }
        assert_eq!(
            rows(&server, "queue"),
            6,
            "round {round}: 3 rows per handler"
        );
        gate.add_permits(6);
        let done = 6 * (round + 1);
        assert_eq!(recorder.wait_for(done, Duration::from_secs(10)).await, done);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while rows(&server, "queue") > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the queue drains");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    webhooks.shutdown(Duration::from_secs(5)).await;
}

/// Each handler's backlog is bounded: past `max_backlog` a delivery is refused `503`
/// `queue_full` with its claim released and nothing stored or marked done; once the
/// workers catch up it is taken. The same bound holds without the receiver's
/// `PgStore` (no done-mark in the statement) and for a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_is_bounded_and_a_delivery_past_it_is_refused_with_nothing_stored() {
    let Some(server) = PgServer::start("pg queue backlog") else {
        return;
    };
    let store = store(&server).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let recorder = Recorder::default();
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        store.clone(),
    )
    .expect("config");
    let bounded = queue(&server).max_backlog(3).expect("valid bound");
    let (waiting, recording) = (gate.clone(), recorder.clone());
    let webhooks = Webhooks::builder(receiver)
        .durable_queue(bounded)
        .handler(HANDLER, move |delivery: Delivery<hoursmith::Event>| {
            let (gate, recorder) = (waiting.clone(), recording.clone());
            async move {
                let _pass = gate.acquire().await.map_err(|_| "the gate closed")?;
                recorder.record(delivery.event().id());
                Ok::<(), &str>(())
            }
        })
        .build()
        .expect("valid settings");
    let endpoint = WebhookEndpoint::new(&webhooks, HANDLER).expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    let client = client();

    // Three events fill the backlog: their handlers wait at the gate.
    for i in 0..3 {
        let answer = send(&client, addr, "/hook", &hoursmith(&format!("evt_{i}"))).await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    for _ in 0..2 {
        let refused = send(&client, addr, "/hook", &hoursmith("evt_overflow")).await;
        assert_eq!(
            (refused.status.as_u16(), refused.body.as_str()),
            (503, r#"{"error":"queue_full"}"#),
            "refused, not stored beyond the bound; the resend too (a held claim would be 409)"
        );
        assert_eq!(refused.headers[http::header::RETRY_AFTER], "60");
    }
    assert_eq!(rows(&server, "queue"), 3, "the backlog never exceeds 3");
    assert_eq!(
        server.psql("SELECT count(*) FROM hookwise.dedupe WHERE key = 'hoursmith:evt_overflow'"),
        "0",
        "not marked done, its claim released"
    );

    // Without the receiver's PgStore the same bound holds.
    let plain = queue(&server).max_backlog(3).expect("valid bound");
    let other = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    let (head, delivery, claim) = accepted(&other, "evt_plain").await;
    let memory = AnyStore::new(MemoryStore::new());
    let entry = Enqueue::new(HANDLER, &head, &delivery, &claim, &memory);
    let refused = DurableQueue::<Hoursmith>::enqueue(&plain, entry).await;
    let error = refused.expect_err("the backlog is full");
    assert!(error.is_full(), "{error}");
    assert_eq!(rows(&server, "queue"), 3);

    // The workers go on: the backlog drains, and the resend is taken.
    gate.add_permits(1_000);
    assert_eq!(recorder.wait_for(3, Duration::from_secs(10)).await, 3);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rows(&server, "queue") > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the queue drains");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resent = send(&client, addr, "/hook", &hoursmith("evt_overflow")).await;
    assert_eq!(resent.body, r#"{"status":"accepted"}"#, "{resent:?}");
    assert_eq!(recorder.wait_for(4, Duration::from_secs(10)).await, 4);
    let mut processed = recorder.ids();
    processed.sort();
    assert_eq!(processed, ["evt_0", "evt_1", "evt_2", "evt_overflow"]);
    webhooks.shutdown(Duration::from_secs(5)).await;

    // A replay into a full backlog is refused, and the dead letter stays.
    for i in 0..2 {
        stored(&plain, &format!("evt_fill_{i}")).await;
    }
    let one = queue(&server).max_backlog(1).expect("valid bound");
    server.psql(&format!(
        "INSERT INTO hookwise.dead (provider, handler, key, method, uri, headers, body, secret, \
         received_ms, error, attempts) VALUES ('hoursmith', '{HANDLER}', 'hoursmith:evt_dead', \
         'POST', '/hook', '', '', 0, 0, 'failed', 1)"
    ));
    let letters = one.dead_letters("hoursmith", 10).await.expect("listed");
    assert_eq!(letters.len(), 1);
    let error = one
        .replay("hoursmith", letters[0].id)
        .await
        .expect_err("the backlog is full");
    assert!(error.is_full(), "{error}");
    assert_eq!(rows(&server, "dead"), 1, "the dead letter stays");
}

/// The state and token of `id`'s dedupe row.
fn dedupe_row(server: &PgServer, id: &str) -> String {
    server.psql(&format!(
        "SELECT state || ' ' || token FROM hookwise.dedupe WHERE key = 'hoursmith:{id}'"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_receivers_pg_store_a_new_delivery_is_stored_and_marked_in_one_statement_with_no_claim()
 {
    let Some(server) = PgServer::start("pg queue store if new") else {
        return;
    };
    let store = store(&server).await;
    let queue = queue(&server);
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        store.clone(),
    )
    .expect("config")
    .erase_store();
    let verified = async |id: &str| {
        let (head, body) = signed_request(id);
        let delivery = receiver
            .verify_at("/hook", &head.headers, body)
            .await
            .expect("verified");
        (head, delivery)
    };
    let if_new = async |head: &http::request::Parts, delivery: &Delivery<hoursmith::Event>| {
        let entry = Unclaimed::new(HANDLER, head, delivery, receiver.store());
        DurableQueue::<Hoursmith>::enqueue_if_new(&queue, entry)
            .expect("the receiver's store is in the queue's database")
            .await
    };

    let (head, delivery) = verified("evt_new").await;
    let answer = if_new(&head, &delivery).await.expect("stored");
    assert!(matches!(answer, IfNew::Stored), "{answer:?}");
    assert_eq!(
        dedupe_row(&server, "evt_new"),
        "done 0",
        "marked, never claimed"
    );
    assert_eq!(rows(&server, "queue"), 1);
    // A redelivery: a duplicate, nothing stored.
    let answer = if_new(&head, &delivery).await.expect("answered");
    assert!(
        matches!(answer, IfNew::Duplicate(Duplicate::Processed)),
        "{answer:?}"
    );
    assert_eq!(rows(&server, "queue"), 1);

    // Held by another path's claim: provisional, then confirmed.
    let (head, delivery) = verified("evt_held").await;
    let ClaimOutcome::Claimed(claim) = store.claim(delivery.dedupe_key()).await.expect("claim")
    else {
        panic!("the key was free");
    };
    let answer = if_new(&head, &delivery).await.expect("answered");
    assert!(
        matches!(answer, IfNew::Duplicate(Duplicate::Provisional)),
        "{answer:?}"
    );
    assert!(store.confirm(&claim).await.expect("confirmed"));
    let answer = if_new(&head, &delivery).await.expect("answered");
    assert!(
        matches!(answer, IfNew::Duplicate(Duplicate::InFlight)),
        "{answer:?}"
    );
    assert_eq!(rows(&server, "queue"), 1);

    // A mark whose retention ran out frees the key.
    server.psql(
        "UPDATE hookwise.dedupe SET expires_at = clock_timestamp() - interval '1 second' \
         WHERE key = 'hoursmith:evt_new'",
    );
    let (head, delivery) = verified("evt_new").await;
    let answer = if_new(&head, &delivery).await.expect("stored");
    assert!(matches!(answer, IfNew::Stored), "{answer:?}");
    assert_eq!(rows(&server, "queue"), 2);

    // Another store: the runtime claims first, then enqueues.
    let memory = AnyStore::new(MemoryStore::new());
    let entry = Unclaimed::new(HANDLER, &head, &delivery, &memory);
    assert!(DurableQueue::<Hoursmith>::enqueue_if_new(&queue, entry).is_none());

    // Through an endpoint: the same, over HTTP.
    let (recorder, failing) = (Recorder::default(), Arc::new(AtomicBool::new(false)));
    let (addr, webhooks) = instance(&server, &recorder, &failing).await;
    let answer = send(&client(), addr, "/hook", &hoursmith("evt_http")).await;
    assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    assert_eq!(dedupe_row(&server, "evt_http"), "done 0");
    assert!(recorder.wait_for(3, Duration::from_secs(10)).await >= 3);
    webhooks.shutdown(Duration::from_secs(5)).await;
}
