//! A delivery stored through an endpoint runs on the instance that stored it, on a
//! real Postgres: its row is stored as taken by that instance, no reader takes it,
//! and it is deleted after; with no slot free, or with the option off, it waits for
//! the readers; a request cut while its statement runs gives the row back at once.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::post_service};
use hookwise_core::{Delivery, Hoursmith, Receiver, hoursmith};
use hookwise_postgres::{PgQueue, PgStore, sqlx};
use hookwise_runtime::Webhooks;
use hookwise_test_support::*;
use hookwise_tower::WebhookEndpoint;

const HANDLER: &str = "hook";

async fn gated(app: Gated, delivery: Delivery<hoursmith::Event>) -> Result<(), &'static str> {
    app.run(delivery.event().id()).await
}

/// A queue at `url` whose readers look at the table every `poll`, with the default
/// visibility timeout (60 s): a row left taken by this instance would wait that long.
fn queue_at(url: &str, poll: Duration) -> PgQueue {
    PgQueue::new(url)
        .expect("valid URL")
        .poll_interval(poll)
        .expect("valid settings")
}

/// One instance whose receiver's store (migrated, at `url`) and durable `queue` share
/// the database, serving `app`'s handler on `POST /hook` through an endpoint, with
/// `concurrency` running slots. Returns once the readers have had time for their
/// first look at the empty table.
async fn endpoint_instance(
    url: &str,
    queue: PgQueue,
    app: &Gated,
    concurrency: usize,
) -> (SocketAddr, Webhooks<Hoursmith>) {
    let store = PgStore::new(url).expect("valid URL");
    store.migrate().await.expect("migrated");
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let app = app.clone();
    let webhooks = Webhooks::builder(receiver)
        .durable_queue(queue)
        .concurrency(concurrency)
        .handler(HANDLER, move |delivery| gated(app.clone(), delivery))
        .build()
        .expect("valid settings");
    let endpoint = WebhookEndpoint::new(&webhooks, HANDLER).expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    (addr, webhooks)
}

/// The queue's rows taken `deliveries` times.
fn taken(server: &PgServer, deliveries: i32) -> i64 {
    server
        .psql(&format!(
            "SELECT count(*) FROM hookwise.queue WHERE deliveries = {deliveries}"
        ))
        .parse()
        .expect("a count")
}

/// Whether the queue table became empty within `limit`.
async fn emptied(server: &PgServer, limit: Duration) -> bool {
    eventually(limit, || taken(server, 0) + taken(server, 1) == 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_endpoint_a_delivery_runs_on_the_instance_that_stored_it_without_a_take() {
    let Some(server) = PgServer::start("pg run where stored") else {
        return;
    };
    let app = Gated::with_permits(1_000);
    // The readers have found the table empty and sleep for a minute: whatever runs
    // sooner was run by the request path.
    let queue = queue_at(&server.url(), Duration::from_secs(60));
    let (addr, webhooks) = endpoint_instance(&server.url(), queue, &app, 4).await;
    let client = client();
    for i in 0..3 {
        let answer = send(&client, addr, "/hook", &hoursmith(&format!("evt_{i}"))).await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    assert_eq!(app.recorder.wait_for(3, Duration::from_secs(10)).await, 3);
    // Each ran once and its row was deleted, as one a reader took.
    assert!(emptied(&server, Duration::from_secs(10)).await);
    let again = send(&client, addr, "/hook", &hoursmith("evt_1")).await;
    assert_eq!(again.body, r#"{"status":"duplicate"}"#, "{again:?}");
    let mut ran = app.recorder.ids();
    ran.sort();
    assert_eq!(ran, ["evt_0", "evt_1", "evt_2"]);
    webhooks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_slot_free_here_a_delivery_is_stored_for_the_readers_and_runs_once() {
    let Some(server) = PgServer::start("pg run where stored, no slot") else {
        return;
    };
    let app = Gated::with_permits(0);
    // One running slot; the readers look every 20 ms.
    let queue = queue_at(&server.url(), Duration::from_millis(20));
    let (addr, webhooks) = endpoint_instance(&server.url(), queue, &app, 1).await;
    let client = client();
    // The first runs here and holds the slot at the gate; the second finds no slot
    // free: stored for the readers, never taken while the slot is held.
    for id in ["evt_first", "evt_waiting"] {
        let answer = send(&client, addr, "/hook", &hoursmith(id)).await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    assert_eq!((taken(&server, 1), taken(&server, 0)), (1, 1));
    app.gate.add_permits(1_000);
    assert_eq!(app.recorder.wait_for(2, Duration::from_secs(10)).await, 2);
    assert!(emptied(&server, Duration::from_secs(10)).await);
    assert_eq!(app.recorder.ids(), ["evt_first", "evt_waiting"]);
    webhooks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_run_where_stored_off_a_delivery_stored_through_an_endpoint_waits_for_a_reader() {
    let Some(server) = PgServer::start("pg run where stored off") else {
        return;
    };
    let app = Gated::with_permits(1_000);
    let queue = queue_at(&server.url(), Duration::from_secs(60)).run_where_stored(false);
    let (addr, webhooks) = endpoint_instance(&server.url(), queue, &app, 4).await;
    let answer = send(&client(), addr, "/hook", &hoursmith("evt_stored")).await;
    assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    // Stored, never taken, and run by no one while the readers sleep.
    assert_eq!((taken(&server, 0), taken(&server, 1)), (1, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.recorder.ids().is_empty(), "{:?}", app.recorder.ids());
    webhooks.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_while_its_row_is_stored_as_taken_here_gives_the_row_back() {
    let Some(server) = PgServer::start("pg run where stored, cut") else {
        return;
    };
    let app = Gated::with_permits(1_000);
    // The default visibility timeout (60 s): a row left taken would wait that long
    // for a takeover. Given back, the readers' next look (every 20 ms) takes it.
    let queue = queue_at(&server.url(), Duration::from_millis(20));
    let (addr, webhooks) = endpoint_instance(&server.url(), queue, &app, 4).await;
    let client = client();
    let warm_up = send(&client, addr, "/hook", &hoursmith("evt_warm_up")).await;
    assert_eq!(warm_up.body, r#"{"status":"accepted"}"#, "{warm_up:?}");
    assert!(emptied(&server, Duration::from_secs(10)).await);

    // Another transaction inserts the event's key and holds it: the delivery's
    // statement waits on it inside Postgres, and the sender hangs up meanwhile.
    let other = sqlx::PgPool::connect(&server.url())
        .await
        .expect("connected");
    let mut holder = other.begin().await.expect("begun");
    sqlx::query(
        "INSERT INTO hookwise.dedupe (key, state, token, expires_at) \
         VALUES ('hoursmith:evt_cut', 'pending', 1, clock_timestamp() + interval '1 hour')",
    )
    .execute(&mut *holder)
    .await
    .expect("inserted");
    send_and_hang_up(addr, "/hook", &hoursmith("evt_cut"), || {
        server.psql(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE 'WITH input AS%'",
        ) == "1"
    })
    .await;
    // Rolled back: the statement, its request gone, stores the row as taken here.
    holder.rollback().await.expect("rolled back");
    // Run once, well within the visibility timeout, and deleted.
    assert!(
        app.recorder.wait_for(2, Duration::from_secs(10)).await >= 2,
        "the cut delivery did not run: {:?}",
        app.recorder.ids()
    );
    assert!(emptied(&server, Duration::from_secs(10)).await);
    assert_eq!(
        app.recorder.runs_of("evt_cut"),
        1,
        "{:?}",
        app.recorder.ids()
    );
    let again = send(&client, addr, "/hook", &hoursmith("evt_cut")).await;
    assert_eq!(again.body, r#"{"status":"duplicate"}"#, "{again:?}");
    webhooks.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_arriving_together_are_stored_once_and_answered_as_duplicates() {
    const EVENTS: usize = 40;
    const COPIES: usize = 4;
    let Some(server) = PgServer::start("pg batches of redeliveries") else {
        return;
    };
    let app = Gated::with_permits(100_000);
    let queue = queue_at(&server.url(), Duration::from_millis(20));
    let (addr, webhooks) = endpoint_instance(&server.url(), queue, &app, 4).await;
    // Each event's copies are sent one after the other over 16 connections: they
    // arrive together and wait for the same batch. Not retried: a batch that
    // failed on them would show as a 503. A copy in the statement running beside
    // the one that stores its event may find the key taken and not yet visible:
    // `409`, and the sender comes back.
    let sent = blast(addr, "/hook", EVENTS * COPIES, 16, false, |i| {
        hoursmith(&format!("evt_{}", i / COPIES))
    })
    .await;
    assert_eq!(
        sent.count(200) + sent.count(409),
        EVENTS * COPIES,
        "{:?}",
        sent.statuses
    );
    assert!(sent.count(200) >= EVENTS, "{:?}", sent.statuses);
    assert_eq!(
        app.recorder.wait_for(EVENTS, Duration::from_secs(10)).await,
        EVENTS
    );
    assert!(emptied(&server, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.recorder.runs(), EVENTS, "each event ran once");
    webhooks.shutdown(Duration::from_secs(5)).await;
}

/// How many statements stored the queue's rows: the rows one statement inserts
/// share its transaction id.
fn statements_that_stored(server: &PgServer) -> i64 {
    server
        .psql("SELECT count(DISTINCT xmin::text) FROM hookwise.queue")
        .parse()
        .expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_batch_wait_deliveries_arriving_within_it_share_one_statement() {
    let Some(server) = PgServer::start("pg batch wait") else {
        return;
    };
    // The gate holds every run: the rows stay, taken by this instance.
    let app = Gated::with_permits(0);
    let queue =
        queue_at(&server.url(), Duration::from_secs(60)).batch_wait(Duration::from_millis(400));
    let (addr, webhooks) = endpoint_instance(&server.url(), queue, &app, 4).await;
    let client = client();
    // The second is sent 20 ms after the first: without the wait, the first has a
    // statement of its own by then.
    let first = tokio::spawn({
        let client = client.clone();
        async move { send(&client, addr, "/hook", &hoursmith("evt_first")).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = send(&client, addr, "/hook", &hoursmith("evt_second")).await;
    let first = first.await.expect("sent");
    for answer in [&first, &second] {
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    assert_eq!(taken(&server, 1), 2, "both stored, to run here");
    assert_eq!(statements_that_stored(&server), 1);
    app.gate.add_permits(1_000);
    assert_eq!(app.recorder.wait_for(2, Duration::from_secs(10)).await, 2);
    webhooks.shutdown(Duration::from_secs(5)).await;
}
