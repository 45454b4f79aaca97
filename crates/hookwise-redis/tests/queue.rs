//! The durable queue against a real `redis-server`: what was acknowledged is
//! processed, even when a worker dies or Redis restarts.

mod common;
#[path = "../../hookwise-tower/tests/common/mod.rs"]
mod http_common;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Extension, Router, extract::State, http::StatusCode, routing::post};
use common::RedisServer;
use hookwise_core::{Delivery as Verified, Hoursmith, MemoryStore, Receiver, hoursmith};
use hookwise_redis::RedisQueue;
use hookwise_tower::{RetryPolicy, ShutdownHandle, WebhookLayer};
use http_common::*;

#[derive(Clone, Default)]
struct App {
    recorder: Recorder,
    /// While set, the handler fails.
    failing: Arc<AtomicBool>,
    /// While set, the handler hangs.
    hanging: Arc<AtomicBool>,
}

async fn handle(
    State(app): State<App>,
    Extension(delivery): Extension<Verified<hoursmith::Event>>,
) -> StatusCode {
    if app.hanging.load(Ordering::SeqCst) {
        app.recorder
            .record(&format!("started {}", delivery.event().id()));
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if app.failing.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    app.recorder.record(delivery.event().id());
    StatusCode::OK
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
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    let layer = WebhookLayer::new(receiver)
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(10)),
        )
        .durable_queue(queue(redis, consumer));
    let shutdown = layer.shutdown_handle();
    let router = Router::new()
        .route("/hook", post(handle).layer(layer))
        .with_state(app);
    (serve(router).await, shutdown)
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
    assert_eq!(
        letters[0].error,
        "handler answered 500 Internal Server Error"
    );

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
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    let layer = WebhookLayer::new(receiver).durable_queue(queue);
    serve(
        Router::new()
            .route("/hook", post(handle).layer(layer))
            .with_state(app),
    )
    .await
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
