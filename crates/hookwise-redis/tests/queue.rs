//! The durable queue against a real `redis-server`: what was acknowledged is
//! processed, even when a worker dies or Redis restarts.

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
    ConfigError, Delivery as Verified, Hoursmith, MemoryStore, Receiver, hoursmith,
};
use hookwise_redis::{RedisQueue, StoredDeadLetter};
use hookwise_runtime::{DeadLetter, RetryPolicy, ShutdownHandle, Webhooks, WebhooksBuilder};
use hookwise_test_support::*;
use hookwise_tower::WebhookEndpoint;

#[derive(Clone, Default)]
struct App {
    recorder: Recorder,
    /// While set, the handler fails.
    failing: Arc<AtomicBool>,
    /// While set, the handler hangs.
    hanging: Arc<AtomicBool>,
}

/// What a failing handler's run fails with.
const FAILURE: &str = "the handler fails";

/// The dead letter's error for a run that failed with [`FAILURE`].
const FAILED: &str = "handler failed: the handler fails";

/// The name of the handler every instance registers: its stream is [`STREAM`].
const HANDLER: &str = "hook";

async fn handle(app: App, delivery: Verified<hoursmith::Event>) -> Result<(), &'static str> {
    if app.hanging.load(Ordering::SeqCst) {
        app.recorder
            .record(&format!("started {}", delivery.event().id()));
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if app.failing.load(Ordering::SeqCst) {
        return Err(FAILURE);
    }
    app.recorder.record(delivery.event().id());
    Ok(())
}

fn queue(redis: &RedisServer, consumer: &str) -> RedisQueue {
    RedisQueue::new(&redis.url())
        .expect("valid URL")
        .consumer(consumer)
        .claim_idle(Duration::from_millis(500))
        .and_then(|q| q.poll_interval(Duration::from_millis(20)))
        .and_then(|q| q.timeout(Duration::from_millis(500)))
        .expect("valid settings")
}

/// One receiver instance with a durable queue; must run inside a tokio runtime.
async fn instance(redis: &RedisServer, consumer: &str, app: App) -> (SocketAddr, ShutdownHandle) {
    let builder = Webhooks::builder(hoursmith_receiver())
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(10)),
        )
        .durable_queue(queue(redis, consumer));
    serve_hook(builder, app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_event_is_processed_from_the_stream() {
    let Some(redis) = RedisServer::start("an_acknowledged_event_is_processed_from_the_stream")
    else {
        return;
    };
    let app = App::default();
    let (addr, shutdown) = instance(&redis, "a", app.clone()).await;
    let client = client();
    let delivery = hoursmith("evt_durable");
    assert_eq!(
        send(&client, addr, "/hook", &delivery).await.body,
        r#"{"status":"accepted"}"#
    );
    assert_eq!(
        send(&client, addr, "/hook", &delivery).await.body,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert_eq!(
        shutdown.shutdown(Duration::from_secs(5)).await.unfinished,
        0
    );
    assert_eq!(app.recorder.ids(), ["evt_durable"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_is_dead_lettered_listed_and_replayed() {
    let Some(redis) = RedisServer::start("a_failing_event_is_dead_lettered") else {
        return;
    };
    let app = App::default();
    app.failing.store(true, Ordering::SeqCst);
    let (addr, _shutdown) = instance(&redis, "a", app.clone()).await;
    assert_eq!(
        send(&client(), addr, "/hook", &hoursmith("evt_bad"))
            .await
            .status,
        200
    );

    let queue = queue(&redis, "admin");
    let mut letters = Vec::new();
    for _ in 0..200 {
        letters = queue.dead_letters("hoursmith", 10).await.expect("list");
        if !letters.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(letters.len(), 1, "dead-lettered after its attempts");
    assert_eq!(letters[0].key, "hoursmith:evt_bad");
    assert_eq!(letters[0].attempts, 2);
    assert_eq!(letters[0].error, FAILED);

    app.failing.store(false, Ordering::SeqCst);
    assert!(
        queue
            .replay("hoursmith", &letters[0].id)
            .await
            .expect("replay")
    );
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert_eq!(app.recorder.ids(), ["evt_bad"]);
    assert!(
        queue
            .dead_letters("hoursmith", 10)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_event_is_processed_by_another_after_the_idle_time() {
    let Some(redis) = RedisServer::start("a_killed_worker_s_event_is_processed_by_another") else {
        return;
    };
    // Instance A runs in a runtime of its own, so it can be killed mid-handler.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let a = App::default();
    a.hanging.store(true, Ordering::SeqCst);
    let url = redis.url();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let a_app = a.clone();
    doomed.spawn(async move {
        let redis = RedisServerRef(url);
        let addr = instance_at(&redis.0, "a", a_app).await;
        let _ = addr_tx.send(addr);
    });
    let addr = addr_rx.await.expect("instance A started");
    assert_eq!(
        send(&client(), addr, "/hook", &hoursmith("evt_orphan"))
            .await
            .status,
        200
    );
    assert_eq!(
        a.recorder.wait_for(1, Duration::from_secs(10)).await,
        1,
        "A's handler started"
    );
    doomed.shutdown_background(); // A dies in the middle of the handler

    let b = App::default();
    let (_addr, shutdown) = instance(&redis, "b", b.clone()).await;
    assert_eq!(b.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert_eq!(b.recorder.ids(), ["evt_orphan"]);
    shutdown.shutdown(Duration::from_secs(5)).await;
}

struct RedisServerRef(String);

/// [`instance`] for a Redis known by URL only.
async fn instance_at(url: &str, consumer: &str, app: App) -> SocketAddr {
    let queue = RedisQueue::new(url)
        .expect("valid URL")
        .consumer(consumer)
        .claim_idle(Duration::from_millis(500))
        .and_then(|q| q.poll_interval(Duration::from_millis(20)))
        .expect("valid settings");
    let builder = Webhooks::builder(hoursmith_receiver()).durable_queue(queue);
    serve_hook(builder, app).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_event_is_lost_across_a_redis_restart() {
    let Some(mut redis) =
        RedisServer::start_persistent("no_acknowledged_event_is_lost_across_a_redis_restart")
    else {
        return;
    };
    let app = App::default();
    let (addr, shutdown) = instance(&redis, "a", app.clone()).await;
    let client = client();
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        if i == 20 {
            redis.restart();
        }
        let id = format!("evt_{i:02}");
        // A sender retries until it gets a 2xx.
        for _ in 0..100 {
            let answer = send(&client, addr, "/hook", &hoursmith(&id)).await;
            if answer.status == 200 {
                acknowledged.push(id.clone());
                break;
            }
            assert_eq!(answer.status, 503, "{answer:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(acknowledged.len(), 40);
    app.recorder.wait_for(40, Duration::from_secs(30)).await;
    let mut processed = app.recorder.ids();
    processed.sort();
    processed.dedup(); // at least once: an entry whose XACK was lost may run twice
    assert_eq!(processed, acknowledged);
    shutdown.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_503_and_the_claim_is_released() {
    let Some(mut redis) = RedisServer::start("redis_down_means_503_and_the_claim_is_released")
    else {
        return;
    };
    let app = App::default();
    let (addr, _shutdown) = instance(&redis, "a", app.clone()).await;
    let client = client();
    redis.stop();
    let answer = send(&client, addr, "/hook", &hoursmith("evt_retry")).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (503, r#"{"error":"store_unavailable"}"#)
    );
    redis.restart();
    let mut answer = send(&client, addr, "/hook", &hoursmith("evt_retry")).await;
    for _ in 0..50 {
        if answer.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = send(&client, addr, "/hook", &hoursmith("evt_retry")).await;
    }
    assert_eq!(
        answer.body, r#"{"status":"accepted"}"#,
        "the claim was released, not kept"
    );
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
}

/// The stream of Hoursmith deliveries for the handler named [`HANDLER`].
const STREAM: &str = "hookwise:queue:{hoursmith}:hook";

/// A plain connection, to drive and inspect the streams as another process would.
async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Entries of `stream` read by some consumer and not yet acknowledged.
async fn pending(redis: &RedisServer, stream: &str) -> usize {
    let reply: redis::streams::StreamPendingReply =
        redis::AsyncCommands::xpending(&mut raw(redis).await, stream, "hookwise")
            .await
            .expect("XPENDING");
    reply.count()
}

/// Waits up to `limit` for `provider`'s dead letters to number `n`.
async fn dead_letters(queue: &RedisQueue, n: usize, limit: Duration) -> Vec<StoredDeadLetter> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        // A slow Redis (a loaded machine) is asked again.
        let letters = queue
            .dead_letters("hoursmith", 10)
            .await
            .unwrap_or_default();
        if letters.len() >= n || tokio::time::Instant::now() >= deadline {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `count` every 20 ms until it is zero or `limit` passes; whether it reached
/// zero.
async fn reaches_zero<F: std::future::Future<Output = usize>>(
    limit: Duration,
    mut count: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while count().await > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Waits up to `limit` for `stream` to have no pending entry; whether it has none.
async fn drained(redis: &RedisServer, stream: &str, limit: Duration) -> bool {
    reaches_zero(limit, || pending(redis, stream)).await
}

/// Registers `app`'s handler as [`HANDLER`] (whose stream is [`STREAM`]), builds
/// the runtime (which starts its queue's readers), and serves it on `POST /hook`.
/// Must run inside a tokio runtime.
async fn serve_hook(builder: WebhooksBuilder<Hoursmith>, app: App) -> (SocketAddr, ShutdownHandle) {
    serve_handler(builder, move |delivery| handle(app.clone(), delivery)).await
}

/// [`serve_hook`] with any handler.
async fn serve_handler<H, F>(
    builder: WebhooksBuilder<Hoursmith>,
    handler: H,
) -> (SocketAddr, ShutdownHandle)
where
    H: Fn(Verified<hoursmith::Event>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Result<(), &'static str>> + Send + 'static,
{
    let webhooks = builder
        .handler(HANDLER, handler)
        .build()
        .expect("valid settings");
    let endpoint = WebhookEndpoint::new(&webhooks, HANDLER).expect("a registered handler");
    let router = Router::new().route("/hook", post_service(endpoint));
    (serve(router).await, webhooks.shutdown_handle())
}

fn hoursmith_receiver() -> Receiver<Hoursmith, MemoryStore> {
    Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_dead_letter_callback_still_dead_letters_and_acks_the_entry() {
    let Some(redis) = RedisServer::start("a_panicking_dead_letter_callback") else {
        return;
    };
    let app = App::default();
    app.failing.store(true, Ordering::SeqCst);
    let builder = Webhooks::builder(hoursmith_receiver())
        .retry(RetryPolicy::default().max_attempts(1))
        .on_dead_letter(|_letter: DeadLetter<hoursmith::Event>| {
            panic!("the dead-letter callback fails")
        })
        // No takeovers in this story, even on a loaded machine.
        .durable_queue(
            queue(&redis, "a")
                .claim_idle(Duration::from_secs(5))
                .expect("valid idle time"),
        );
    let (addr, _shutdown) = serve_hook(builder, app).await;
    assert_eq!(
        send(&client(), addr, "/hook", &hoursmith("evt_doomed"))
            .await
            .status,
        200
    );

    let admin = queue(&redis, "admin");
    let letters = dead_letters(&admin, 1, Duration::from_secs(10)).await;
    assert_eq!(letters.len(), 1, "dead-lettered despite the panic");
    assert_eq!(letters[0].key, "hoursmith:evt_doomed");
    assert_eq!(letters[0].handler, HANDLER);
    assert_eq!(
        (letters[0].error.as_str(), letters[0].attempts),
        (FAILED, 1),
        "dead-lettered by the run that failed, not after its worker was given up on"
    );
    assert!(
        drained(&redis, STREAM, Duration::from_secs(5)).await,
        "the entry was acknowledged, not left pending with a heartbeat forever"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        admin
            .dead_letters("hoursmith", 10)
            .await
            .expect("list")
            .len(),
        1
    );
}

/// The fields of an entry of Hoursmith event `id` in the form one field per part,
/// which `enqueue` wrote before it packed a delivery into one field, and readers
/// still read: entries another process writes by hand here.
fn entry(id: &str) -> Vec<(&'static str, Vec<u8>)> {
    let body = hoursmith(id).body;
    let received_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .to_string();
    vec![
        ("key", format!("hoursmith:{id}").into_bytes()),
        ("method", b"POST".to_vec()),
        ("uri", b"/hook".to_vec()),
        ("headers", b"content-type: application/json\r\n".to_vec()),
        ("body", body.to_vec()),
        ("secret", b"0".to_vec()),
        ("signed_at", Vec::new()),
        ("received_ms", received_ms.into_bytes()),
    ]
}

/// [`entry`] with one field's value replaced.
fn entry_with(id: &str, field: &str, value: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut fields = entry(id);
    for (name, stored) in &mut fields {
        if *name == field {
            *stored = value.to_vec();
        }
    }
    fields
}

/// Appends an entry of `fields` to [`STREAM`], as another process could.
async fn append_fields(
    connection: &mut redis::aio::MultiplexedConnection,
    fields: &[(&'static str, Vec<u8>)],
) -> String {
    redis::AsyncCommands::xadd(connection, STREAM, "*", fields)
        .await
        .expect("XADD")
}

/// Appends a delivery of Hoursmith event `id` to [`STREAM`], one field per part.
async fn append(connection: &mut redis::aio::MultiplexedConnection, id: &str) -> String {
    append_fields(connection, &entry(id)).await
}

/// Delivers entry `id` once more to consumer `ghost`, which then dies with it.
async fn deliver_again(connection: &mut redis::aio::MultiplexedConnection, id: &str) {
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(STREAM)
        .arg("hookwise")
        .arg("ghost")
        .arg(0)
        .arg(id)
        .query_async(connection)
        .await
        .expect("XCLAIM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_keeps_killing_its_worker_is_dead_lettered_without_running() {
    let Some(redis) = RedisServer::start("an_entry_that_keeps_killing_its_worker") else {
        return;
    };
    let max_deliveries = 3;
    let mut connection = raw(&redis).await;
    let _: () =
        redis::AsyncCommands::xgroup_create_mkstream(&mut connection, STREAM, "hookwise", "0")
            .await
            .expect("XGROUP CREATE");
    let deadly = append(&mut connection, "evt_deadly").await;
    let unlucky = append(&mut connection, "evt_unlucky").await;
    // Both are read by a worker that dies with them...
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("hookwise")
        .arg("ghost")
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query_async(&mut connection)
        .await
        .expect("XREADGROUP");
    // ... and taken over by more that die: `evt_deadly` has now been delivered
    // `max_deliveries` times, `evt_unlucky` once less.
    for _ in 1..max_deliveries {
        deliver_again(&mut connection, &deadly).await;
    }
    for _ in 2..max_deliveries {
        deliver_again(&mut connection, &unlucky).await;
    }

    let app = App::default();
    let survivor = queue(&redis, "survivor")
        .claim_idle(Duration::from_millis(100))
        .and_then(|q| q.max_deliveries(max_deliveries))
        .expect("valid settings");
    let builder = Webhooks::builder(hoursmith_receiver()).durable_queue(survivor);
    let (_addr, shutdown) = serve_hook(builder, app.clone()).await;

    let admin = queue(&redis, "admin");
    let letters = dead_letters(&admin, 1, Duration::from_secs(10)).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key, "hoursmith:evt_deadly");
    assert_eq!(
        letters[0].error,
        "delivered 3 times without finishing (its worker died each time)"
    );
    assert_eq!(letters[0].handler, HANDLER);
    // Its last allowed delivery still runs.
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert!(drained(&redis, STREAM, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.recorder.ids(),
        ["evt_unlucky"],
        "the entry that killed its workers was not run again"
    );
    shutdown.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_entry_behind_many_running_ones_is_taken_over() {
    let Some(redis) = RedisServer::start("an_abandoned_entry_behind_many_running_ones") else {
        return;
    };
    let mut connection = raw(&redis).await;
    let _: () =
        redis::AsyncCommands::xgroup_create_mkstream(&mut connection, STREAM, "hookwise", "0")
            .await
            .expect("XGROUP CREATE");
    // 40 entries another instance is running (read just now, so not idle)...
    for i in 0..40 {
        append(&mut connection, &format!("evt_running_{i:02}")).await;
    }
    // ... and behind them one whose worker died an hour ago.
    let abandoned = append(&mut connection, "evt_abandoned").await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("hookwise")
        .arg("other-instance")
        .arg("COUNT")
        .arg(100)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query_async(&mut connection)
        .await
        .expect("XREADGROUP");
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(STREAM)
        .arg("hookwise")
        .arg("dead-instance")
        .arg(0)
        .arg(&abandoned)
        .arg("IDLE")
        .arg(3_600_000)
        .arg("JUSTID")
        .query_async(&mut connection)
        .await
        .expect("XCLAIM");

    // One worker: each XAUTOCLAIM asks for one entry, and Redis looks at ten
    // pending entries per call: it takes a cursor to get past the running ones.
    let app = App::default();
    let survivor = queue(&redis, "survivor")
        .claim_idle(Duration::from_secs(60))
        .expect("valid settings");
    let builder = Webhooks::builder(hoursmith_receiver())
        .concurrency(1)
        .durable_queue(survivor);
    let (_addr, shutdown) = serve_hook(builder, app.clone()).await;
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(5)).await, 1);
    assert_eq!(app.recorder.ids(), ["evt_abandoned"]);
    shutdown.shutdown(Duration::from_secs(5)).await;
}

/// The number of entries in `stream`: the backlog, unread and running.
async fn xlen(redis: &RedisServer, stream: &str) -> usize {
    redis::AsyncCommands::xlen(&mut raw(redis).await, stream)
        .await
        .expect("XLEN")
}

/// Waits up to `limit` for `stream` to hold no entry; whether it holds none.
async fn emptied(redis: &RedisServer, stream: &str, limit: Duration) -> bool {
    reaches_zero(limit, || xlen(redis, stream)).await
}

async fn gated(app: Gated, delivery: Verified<hoursmith::Event>) -> Result<(), &'static str> {
    app.run(delivery.event().id()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backlog_is_answered_503_and_the_event_is_taken_once_it_drains() {
    let Some(redis) = RedisServer::start("a_full_backlog_is_answered_503") else {
        return;
    };
    let app = Gated::with_permits(0);
    let bounded = queue(&redis, "a").max_backlog(3).expect("valid bound");
    let builder = Webhooks::builder(hoursmith_receiver()).durable_queue(bounded);
    let gate = app.clone();
    let (addr, shutdown) =
        serve_handler(builder, move |delivery| gated(gate.clone(), delivery)).await;
    let client = client();

    // Three events fill the backlog: their handlers wait at the gate.
    for i in 0..3 {
        let answer = send(&client, addr, "/hook", &hoursmith(&format!("evt_{i}"))).await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
        assert!(xlen(&redis, STREAM).await <= 3);
    }
    let refused = send(&client, addr, "/hook", &hoursmith("evt_overflow")).await;
    assert_eq!(
        (refused.status.as_u16(), refused.body.as_str()),
        (503, r#"{"error":"queue_full"}"#),
        "the fourth event is refused, not stored beyond the bound"
    );
    assert_eq!(refused.headers[http::header::RETRY_AFTER], "60");
    assert_eq!(xlen(&redis, STREAM).await, 3, "the backlog never exceeds 3");
    // The claim was released, not kept: the resend is refused the same way (a
    // held claim would answer 409 `in_progress`).
    let again = send(&client, addr, "/hook", &hoursmith("evt_overflow")).await;
    assert_eq!(
        (again.status.as_u16(), again.body.as_str()),
        (503, r#"{"error":"queue_full"}"#)
    );
    assert_eq!(xlen(&redis, STREAM).await, 3);
    assert!(app.recorder.ids().is_empty());

    // The handlers go on: the backlog drains, and the resend is taken.
    app.gate.add_permits(1_000);
    assert_eq!(app.recorder.wait_for(3, Duration::from_secs(10)).await, 3);
    assert!(emptied(&redis, STREAM, Duration::from_secs(5)).await);
    let resent = send(&client, addr, "/hook", &hoursmith("evt_overflow")).await;
    assert_eq!(resent.body, r#"{"status":"accepted"}"#, "{resent:?}");
    assert_eq!(app.recorder.wait_for(4, Duration::from_secs(10)).await, 4);
    assert!(drained(&redis, STREAM, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut processed = app.recorder.ids();
    processed.sort();
    assert_eq!(processed, ["evt_0", "evt_1", "evt_2", "evt_overflow"]);
    assert_eq!(
        shutdown.shutdown(Duration::from_secs(5)).await.unfinished,
        0
    );
}

/// Starts a runtime reading [`STREAM`] with `app`'s handler; waits until the entries
/// before `last`, and `last`, a good one, are done (acknowledged and deleted).
async fn read_through(
    redis: &RedisServer,
    app: &App,
    last: &str,
) -> (ShutdownHandle, Vec<StoredDeadLetter>) {
    let builder = Webhooks::builder(hoursmith_receiver())
        // No takeovers in this story, even on a loaded machine.
        .durable_queue(
            queue(redis, "a")
                .claim_idle(Duration::from_secs(5))
                .expect("valid idle time"),
        );
    let (_addr, shutdown) = serve_hook(builder, app.clone()).await;
    assert_eq!(
        app.recorder.wait_for(1, Duration::from_secs(10)).await,
        1,
        "the good entry behind the poison is run"
    );
    assert!(drained(redis, STREAM, Duration::from_secs(5)).await);
    assert!(emptied(redis, STREAM, Duration::from_secs(5)).await);
    // Nothing loops: no entry comes back, no dead letter is added.
    let admin = queue(redis, "admin");
    let letters = admin.dead_letters("hoursmith", 10).await.expect("list");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        admin.dead_letters("hoursmith", 10).await.expect("list"),
        letters
    );
    assert_eq!(
        app.recorder.ids(),
        [last],
        "the handler never ran the poison"
    );
    (shutdown, letters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_with_a_missing_or_garbled_field_is_dead_lettered_unrun() {
    let Some(redis) = RedisServer::start("an_entry_with_a_missing_or_garbled_field") else {
        return;
    };
    let mut connection = raw(&redis).await;
    let mut missing = entry("evt_missing");
    missing.retain(|(name, _)| *name != "received_ms");
    append_fields(&mut connection, &missing).await;
    let garbled = entry_with("evt_garbled", "headers", b"no colon, no CR\n");
    append_fields(&mut connection, &garbled).await;
    // The packed form, cut short after its version byte and part of the time.
    let cut = [
        ("key", b"hoursmith:evt_cut".to_vec()),
        ("delivery", vec![1, 0, 0, 1]),
    ];
    append_fields(&mut connection, &cut).await;
    append(&mut connection, "evt_fine").await;

    let app = App::default();
    let (shutdown, letters) = read_through(&redis, &app, "evt_fine").await;
    // Entries run concurrently: their dead letters come in either order.
    let mut summary: Vec<_> = letters
        .iter()
        .map(|l| {
            (
                l.key.as_str(),
                l.error.as_str(),
                l.handler.as_str(),
                l.attempts,
            )
        })
        .collect();
    summary.sort_unstable();
    assert_eq!(
        summary,
        [
            ("hoursmith:evt_cut", "unreadable queue entry", HANDLER, 0),
            (
                "hoursmith:evt_garbled",
                "unreadable queue entry",
                HANDLER,
                0
            ),
            (
                "hoursmith:evt_missing",
                "unreadable queue entry",
                HANDLER,
                0
            ),
        ]
    );
    shutdown.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_whose_body_is_not_the_provider_s_envelope_is_dead_lettered_unrun() {
    let Some(redis) = RedisServer::start("an_entry_whose_body_is_not_the_envelope") else {
        return;
    };
    let mut connection = raw(&redis).await;
    let alien = entry_with("evt_alien", "body", br#"{"hello":"world"}"#);
    append_fields(&mut connection, &alien).await;
    append(&mut connection, "evt_fine").await;

    let app = App::default();
    let (shutdown, letters) = read_through(&redis, &app, "evt_fine").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key, "hoursmith:evt_alien");
    assert_eq!(letters[0].handler, HANDLER);
    assert_eq!(letters[0].attempts, 0);
    assert!(
        letters[0].error.starts_with("invalid_payload"),
        "{:?}",
        letters[0].error
    );
    shutdown.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_a_full_backlog_is_refused_and_the_dead_letter_kept() {
    let Some(redis) = RedisServer::start("a_replay_into_a_full_backlog") else {
        return;
    };
    let mut connection = raw(&redis).await;
    // No reader: the one entry waiting fills a backlog of one.
    append(&mut connection, "evt_waiting").await;
    let mut letter = entry("evt_dead");
    letter.push(("error", FAILED.as_bytes().to_vec()));
    letter.push(("attempts", b"1".to_vec()));
    letter.push(("handler", HANDLER.as_bytes().to_vec()));
    let id: String =
        redis::AsyncCommands::xadd(&mut connection, "hookwise:dead:{hoursmith}", "*", &letter)
            .await
            .expect("XADD");

    let admin = queue(&redis, "admin").max_backlog(1).expect("valid bound");
    let error = admin
        .replay("hoursmith", &id)
        .await
        .expect_err("the backlog is full");
    assert!(error.to_string().contains("backlog is full"), "{error}");
    assert_eq!(xlen(&redis, STREAM).await, 1);
    let letters = admin.dead_letters("hoursmith", 10).await.expect("list");
    assert_eq!(letters.len(), 1, "the dead letter is kept");
    assert_eq!(letters[0].id, id);
}

#[tokio::test]
async fn invalid_queue_settings_are_refused() {
    let queue = RedisQueue::new("redis://127.0.0.1:1/").expect("valid URL");
    assert!(matches!(
        queue.clone().max_deliveries(0),
        Err(ConfigError::Zero(_))
    ));
    assert!(matches!(
        queue.clone().max_backlog(0),
        Err(ConfigError::Zero(_))
    ));
    assert!(matches!(
        queue.clone().claim_idle(Duration::from_millis(5)),
        Err(ConfigError::TooShort { minimum, .. }) if minimum == Duration::from_millis(10)
    ));
    assert!(matches!(
        queue.clone().claim_idle(Duration::ZERO),
        Err(ConfigError::Zero(_))
    ));
    assert!(queue.clone().poll_interval(Duration::ZERO).is_err());
    assert!(queue.timeout(Duration::ZERO).is_err());
}

/// A receiver on a `RedisStore` and a `RedisQueue` that reach Redis through `proxy`
/// (whose replies may be held back), each call bounded by 5 s, the queue polling
/// every 20 ms.
fn through(proxy: &DelayProxy) -> (Receiver<Hoursmith, hookwise_redis::RedisStore>, RedisQueue) {
    let slow = Duration::from_secs(5);
    let store = hookwise_redis::RedisStore::new(&proxy.url())
        .expect("valid URL")
        .timeout(slow)
        .expect("timeout");
    let queue = RedisQueue::new(&proxy.url())
        .expect("valid URL")
        .poll_interval(Duration::from_millis(20))
        .and_then(|q| q.timeout(slow))
        .expect("valid settings");
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    (receiver, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_after_redis_stored_its_delivery_runs_the_event_once() {
    let Some(redis) = RedisServer::start("a request cut after the store") else {
        return;
    };
    // Redis does the work at once; its replies reach the receiver late, so the sender
    // can hang up after the delivery is stored and before the receiver knows it.
    let proxy = DelayProxy::start(redis.port).await;
    let (receiver, queue) = through(&proxy);
    let app = App::default();
    let (addr, shutdown) = serve_hook(
        Webhooks::builder(receiver).durable_queue(queue),
        app.clone(),
    )
    .await;
    let client = client();
    let warm_up = send(&client, addr, "/hook", &hoursmith("evt_warm_up")).await;
    assert_eq!(warm_up.status, 200, "{}", warm_up.body);
    assert!(emptied(&redis, STREAM, Duration::from_secs(5)).await);

    proxy.delay_replies(Duration::from_millis(1500));
    let delivery = hoursmith("evt_cut");
    // Hung up while the receiver waits for the XADD's reply: the entry is stored.
    send_and_hang_up(addr, "/hook", &delivery, || {
        redis.cli(&["XLEN", STREAM]) == "1"
    })
    .await;
    proxy.delay_replies(Duration::ZERO);
    let retry =
        send_until_decided(&client, addr, "/hook", &delivery, Duration::from_secs(10)).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    // Every entry stored (one, or two had the retry been stored again) has run and
    // been deleted: entries leave the stream only when finished.
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    assert_eq!(
        app.recorder.runs_of("evt_cut"),
        1,
        "{:?}",
        app.recorder.ids()
    );
    shutdown.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_receivers_store_on_the_same_redis_the_store_and_the_commit_are_one_script() {
    let Some(redis) = RedisServer::start("store and commit in one script") else {
        return;
    };
    let store = hookwise_redis::RedisStore::new(&redis.url()).expect("valid URL");
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let app = App::default();
    let (addr, shutdown) = serve_hook(
        Webhooks::builder(receiver).durable_queue(queue(&redis, "one-script")),
        app.clone(),
    )
    .await;
    let client = client();
    for i in 0..5 {
        let answer = send(&client, addr, "/hook", &hoursmith(&format!("evt_{i}"))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(app.recorder.wait_for(5, Duration::from_secs(10)).await, 5);
    assert_eq!(
        redis.cli(&["GET", "hookwise:dedupe:{hoursmith}:evt_3"]),
        "done"
    );
    // A separate commit would be a PSETEX (the store's `commit`); the script's own
    // commit is a SET inside EVALSHA.
    let stats = redis.cli(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_evalsha"), "{stats}");
    assert!(
        !stats.contains("cmdstat_psetex"),
        "a separate commit ran: {stats}"
    );
    shutdown.shutdown(Duration::from_secs(5)).await;
}

/// How many times Redis ran `command` since its counters were reset, scripts'
/// calls included.
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_endpoint_on_the_stores_redis_each_delivery_is_one_script_and_no_claim() {
    let Some(redis) = RedisServer::start("one script per delivery") else {
        return;
    };
    let store = hookwise_redis::RedisStore::new(&redis.url()).expect("valid URL");
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let app = Gated::with_permits(0);
    let bounded = queue(&redis, "a").max_backlog(3).expect("valid bound");
    let gate = app.clone();
    let builder = Webhooks::builder(receiver).durable_queue(bounded);
    let (addr, shutdown) =
        serve_handler(builder, move |delivery| gated(gate.clone(), delivery)).await;
    let client = client();
    // The scripts are loaded by the first call; the handlers wait at the gate, so
    // no acknowledgement runs a script meanwhile.
    let first = send(&client, addr, "/hook", &hoursmith("evt_0")).await;
    assert_eq!(first.body, r#"{"status":"accepted"}"#, "{first:?}");
    redis.cli(&["CONFIG", "RESETSTAT"]);

    for i in 1..3 {
        let answer = send(&client, addr, "/hook", &hoursmith(&format!("evt_{i}"))).await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    assert_eq!(calls(&redis, "evalsha"), 2, "one script per new delivery");
    assert_eq!(
        calls(&redis, "set"),
        2,
        "the key is marked done, never claimed first"
    );
    assert_eq!(
        redis.cli(&["GET", "hookwise:dedupe:{hoursmith}:evt_2"]),
        "done"
    );
    assert_eq!(xlen(&redis, STREAM).await, 3);

    // Duplicates: one script each, nothing stored.
    let again = send(&client, addr, "/hook", &hoursmith("evt_1")).await;
    assert_eq!(again.body, r#"{"status":"duplicate"}"#, "{again:?}");
    // Held by a provisional claim of another path (the extractor's): 409, so the
    // sender comes back; confirmed: acknowledged.
    redis.cli(&["SET", "hookwise:dedupe:{hoursmith}:evt_p", "pending:00ab"]);
    let provisional = send(&client, addr, "/hook", &hoursmith("evt_p")).await;
    assert_eq!(
        (provisional.status.as_u16(), provisional.body.as_str()),
        (409, r#"{"error":"in_progress"}"#)
    );
    redis.cli(&["SET", "hookwise:dedupe:{hoursmith}:evt_c", "claim:00ab"]);
    let confirmed = send(&client, addr, "/hook", &hoursmith("evt_c")).await;
    assert_eq!(confirmed.body, r#"{"status":"duplicate"}"#, "{confirmed:?}");
    assert_eq!(calls(&redis, "evalsha"), 5);
    assert_eq!(xlen(&redis, STREAM).await, 3, "no duplicate was stored");

    // The backlog is full: refused, and the key left free for the retry.
    let refused = send(&client, addr, "/hook", &hoursmith("evt_overflow")).await;
    assert_eq!(
        (refused.status.as_u16(), refused.body.as_str()),
        (503, r#"{"error":"queue_full"}"#)
    );
    assert_eq!(
        redis.cli(&["EXISTS", "hookwise:dedupe:{hoursmith}:evt_overflow"]),
        "0"
    );
    assert_eq!(xlen(&redis, STREAM).await, 3);

    app.gate.add_permits(1_000);
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    let resent = send(&client, addr, "/hook", &hoursmith("evt_overflow")).await;
    assert_eq!(resent.body, r#"{"status":"accepted"}"#, "{resent:?}");
    assert_eq!(app.recorder.wait_for(4, Duration::from_secs(10)).await, 4);
    let mut processed = app.recorder.ids();
    processed.sort();
    assert_eq!(processed, ["evt_0", "evt_1", "evt_2", "evt_overflow"]);
    assert_eq!(
        shutdown.shutdown(Duration::from_secs(5)).await.unfinished,
        0
    );
}

/// One instance whose receiver's store and durable queue are `redis`, serving
/// `gate`'s handler on `POST /hook` with `concurrency` running slots; its readers
/// look at the stream every `poll` and take over entries idle for 60 s (the
/// default). Returns once the reader has made its first read of the stream.
async fn endpoint_instance(
    redis: &RedisServer,
    consumer: &str,
    gate: &Gated,
    poll: Duration,
    concurrency: usize,
) -> (SocketAddr, ShutdownHandle) {
    let queue = RedisQueue::new(&redis.url())
        .expect("valid URL")
        .consumer(consumer)
        .poll_interval(poll)
        .expect("valid settings");
    endpoint_instance_on(redis, queue, gate, concurrency).await
}

/// [`endpoint_instance`] with `queue`.
async fn endpoint_instance_on(
    redis: &RedisServer,
    queue: RedisQueue,
    gate: &Gated,
    concurrency: usize,
) -> (SocketAddr, ShutdownHandle) {
    let store = hookwise_redis::RedisStore::new(&redis.url()).expect("valid URL");
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let builder = Webhooks::builder(receiver)
        .durable_queue(queue)
        .concurrency(concurrency);
    let gate = gate.clone();
    let served = serve_handler(builder, move |delivery| gated(gate.clone(), delivery)).await;
    let read = eventually(Duration::from_secs(10), || calls(redis, "xreadgroup") > 0).await;
    assert!(read, "the reader never read the stream");
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_endpoint_a_delivery_runs_on_the_instance_that_stored_it_without_a_read() {
    let Some(redis) = RedisServer::start("a delivery runs where it was stored") else {
        return;
    };
    let app = Gated::with_permits(1_000);
    // The reader has read the empty stream and sleeps for a minute: whatever runs
    // sooner was run by the request path.
    let (addr, _asleep) = endpoint_instance(&redis, "a", &app, Duration::from_secs(60), 4).await;
    let client = client();
    for i in 0..3 {
        let answer = send(&client, addr, "/hook", &hoursmith(&format!("evt_{i}"))).await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    assert_eq!(app.recorder.wait_for(3, Duration::from_secs(10)).await, 3);
    // Each ran once, and was acknowledged and deleted like an entry read back.
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    assert!(drained(&redis, STREAM, Duration::from_secs(10)).await);
    let again = send(&client, addr, "/hook", &hoursmith("evt_1")).await;
    assert_eq!(again.body, r#"{"status":"duplicate"}"#, "{again:?}");
    let mut ran = app.recorder.ids();
    ran.sort();
    assert_eq!(ran, ["evt_0", "evt_1", "evt_2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_run_where_stored_is_pending_here_with_one_delivery_and_no_reader_reads_it() {
    let Some(redis) = RedisServer::start("run here: pending here, read by no reader") else {
        return;
    };
    let app = Gated::with_permits(0);
    let (addr, _asleep) = endpoint_instance(&redis, "a", &app, Duration::from_secs(60), 4).await;
    let answer = send(&client(), addr, "/hook", &hoursmith("evt_here")).await;
    assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    // Held at the gate here: pending in this instance's consumer, one delivery
    // counted (what `max_deliveries` counts), and the group's position past it.
    let detail = || redis.cli(&["XPENDING", STREAM, "hookwise", "-", "+", "10"]);
    let here = |consumer: &str| {
        let detail = detail();
        let fields: Vec<&str> = detail.lines().collect();
        fields.len() == 4 && fields[1] == consumer && fields[3] == "1"
    };
    assert!(
        eventually(Duration::from_secs(10), || here("a")).await,
        "{}",
        detail()
    );
    // Another instance's reader, scanning every 20 ms, reads nothing new.
    let (_b, _shutdown_b) =
        endpoint_instance(&redis, "b", &app, Duration::from_millis(20), 4).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(here("a"), "{}", detail());
    app.gate.add_permits(1_000);
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    assert_eq!(
        app.recorder.runs_of("evt_here"),
        1,
        "{:?}",
        app.recorder.ids()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_behind_an_entry_deleted_before_any_read_runs_here() {
    let Some(redis) = RedisServer::start("run here behind a deleted entry") else {
        return;
    };
    let app = Gated::with_permits(1_000);
    let (addr, _asleep) = endpoint_instance(&redis, "a", &app, Duration::from_secs(60), 4).await;
    // An entry appended and deleted before any reader read it (by hand, say): the
    // stream's last id is past the group's, with nothing there to read.
    let id = redis.cli(&["XADD", STREAM, "*", "key", "gone"]);
    assert_eq!(redis.cli(&["XDEL", STREAM, &id]), "1");
    let answer = send(&client(), addr, "/hook", &hoursmith("evt_next")).await;
    assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    assert_eq!(app.recorder.ids(), ["evt_next"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_entry_the_store_script_reads_instead_of_the_new_one_is_left_to_the_next_scan() {
    let Some(redis) = RedisServer::start("an older entry read by the store script") else {
        return;
    };
    let app = Gated::with_permits(0);
    // One running slot, and a reader asleep for a minute.
    let (addr, _asleep) = endpoint_instance(&redis, "a", &app, Duration::from_secs(60), 1).await;
    let client = client();
    // The first runs here and holds the slot at the gate; the second finds no slot
    // free and waits in the stream, unread.
    for id in ["evt_first", "evt_waiting"] {
        let answer = send(&client, addr, "/hook", &hoursmith(id)).await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    app.gate.add_permits(1);
    assert_eq!(app.recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert!(
        eventually(Duration::from_secs(10), || redis.cli(&["XLEN", STREAM])
            == "1")
        .await,
        "the first entry was acknowledged"
    );
    // The slot is free again: the script reads the stream's next undelivered entry,
    // the waiting one, not the new one.
    let answer = send(&client, addr, "/hook", &hoursmith("evt_last")).await;
    assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.recorder.ids(), ["evt_first"], "the slot was given up");

    // Another instance, whose reader scans at once: it takes the waiting entry over
    // without waiting for the idle time (no delivery counted), and reads the new one.
    app.gate.add_permits(1_000);
    let (_addr, _shutdown) =
        endpoint_instance(&redis, "b", &app, Duration::from_millis(20), 4).await;
    assert_eq!(app.recorder.wait_for(3, Duration::from_secs(10)).await, 3);
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    let mut ran = app.recorder.ids();
    ran.sort();
    assert_eq!(ran, ["evt_first", "evt_last", "evt_waiting"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_while_the_store_script_reads_its_entry_here_gives_the_entry_back() {
    let Some(redis) = RedisServer::start("a request cut during the run-here read") else {
        return;
    };
    // Redis does the work at once; its replies reach the instance late, so the sender
    // hangs up after the store script has read the new entry into this instance's
    // consumer and before the instance knows it.
    let proxy = DelayProxy::start(redis.port).await;
    // The default claim idle time (60 s): an entry left in this consumer would wait
    // that long for a takeover. Given back, the next scan takes it.
    let (receiver, queue) = through(&proxy);
    let queue = queue.consumer("a");
    let app = Gated::with_permits(1_000);
    let builder = Webhooks::builder(receiver).durable_queue(queue);
    let gate = app.clone();
    let (addr, shutdown) =
        serve_handler(builder, move |delivery| gated(gate.clone(), delivery)).await;
    let client = client();
    let warm_up = send(&client, addr, "/hook", &hoursmith("evt_warm_up")).await;
    assert_eq!(warm_up.body, r#"{"status":"accepted"}"#, "{warm_up:?}");
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);

    proxy.delay_replies(Duration::from_millis(1500));
    // Hung up once the entry is stored and pending in this consumer: read here.
    send_and_hang_up(addr, "/hook", &hoursmith("evt_cut"), || {
        redis.cli(&["XLEN", STREAM]) == "1"
            && redis
                .cli(&["XPENDING", STREAM, "hookwise"])
                .starts_with('1')
    })
    .await;
    proxy.delay_replies(Duration::ZERO);
    // Run once, well within the claim idle time, and acknowledged.
    assert!(
        app.recorder.wait_for(2, Duration::from_secs(10)).await >= 2,
        "the cut delivery did not run: {:?}",
        app.recorder.ids()
    );
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    assert_eq!(
        app.recorder.runs_of("evt_cut"),
        1,
        "{:?}",
        app.recorder.ids()
    );
    let again = send(&client, addr, "/hook", &hoursmith("evt_cut")).await;
    assert_eq!(again.body, r#"{"status":"duplicate"}"#, "{again:?}");
    shutdown.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_run_where_stored_off_a_delivery_stored_through_an_endpoint_waits_for_a_reader() {
    let Some(redis) = RedisServer::start("run where stored off") else {
        return;
    };
    let app = Gated::with_permits(1_000);
    let queue = RedisQueue::new(&redis.url())
        .expect("valid URL")
        .consumer("a")
        .poll_interval(Duration::from_secs(60))
        .expect("valid settings")
        .run_where_stored(false);
    let (addr, _asleep) = endpoint_instance_on(&redis, queue, &app, 4).await;
    let answer = send(&client(), addr, "/hook", &hoursmith("evt_stored")).await;
    assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    // Stored, and read by no one: run here, it would be pending in this consumer
    // from the store script on.
    assert_eq!(xlen(&redis, STREAM).await, 1);
    assert_eq!(pending(&redis, STREAM).await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.recorder.ids().is_empty(), "{:?}", app.recorder.ids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_running_longer_than_the_claim_idle_time_is_kept_fresh_and_runs_once() {
    let Some(redis) = RedisServer::start("a long run is kept fresh") else {
        return;
    };
    let app = Gated::with_permits(0);
    // Two instances reading one stream, each taking over what is idle for 300 ms.
    let mut addrs = Vec::new();
    for consumer in ["a", "b"] {
        let queue = queue(&redis, consumer)
            .claim_idle(Duration::from_millis(300))
            .expect("valid idle time");
        addrs.push(endpoint_instance_on(&redis, queue, &app, 4).await.0);
    }
    let client = client();
    for (i, addr) in addrs.iter().enumerate() {
        let answer = send(
            &client,
            *addr,
            "/hook",
            &hoursmith(&format!("evt_long_{i}")),
        )
        .await;
        assert_eq!(answer.body, r#"{"status":"accepted"}"#, "{answer:?}");
    }
    // The runs wait at the gate for five claim idle times: each is kept fresh by
    // its worker, so the other instance never takes it over.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(pending(&redis, STREAM).await, 2);
    app.gate.add_permits(1_000);
    assert!(emptied(&redis, STREAM, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ran = app.recorder.ids();
    ran.sort();
    assert_eq!(ran, ["evt_long_0", "evt_long_1"], "each ran once");
}
