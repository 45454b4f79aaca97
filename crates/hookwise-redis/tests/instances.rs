//! Receivers sharing one Redis over real sockets: they dedupe as one, and refuse
//! (never acknowledge) what they cannot store.

use std::time::Duration;

use axum::{Extension, Router, extract::State, routing::post};
use hookwise_core::{Delivery as Verified, Hoursmith, Receiver, hoursmith};
use hookwise_redis::RedisStore;
use hookwise_runtime::Webhooks;
use hookwise_test_support::*;
use hookwise_tower::WebhookLayer;

async fn record(
    State(recorder): State<Recorder>,
    Extension(delivery): Extension<Verified<hoursmith::Event>>,
) {
    recorder.record(delivery.event().id());
}

/// One receiver instance: its own runtime and layer, its own connection, the shared
/// Redis.
async fn instance(redis: &RedisServer, recorder: &Recorder) -> std::net::SocketAddr {
    let store = RedisStore::new(&redis.url())
        .expect("valid URL")
        .timeout(Duration::from_millis(500))
        .expect("non-zero");
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let webhooks = Webhooks::new(receiver);
    let app = Router::new()
        .route("/hook", post(record))
        .with_state(recorder.clone())
        .layer(WebhookLayer::new(&webhooks).expect("in memory"));
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_run_the_handler_once() {
    let Some(redis) = RedisServer::start("two_instances_sharing_redis_run_the_handler_once") else {
        return;
    };
    let recorder = Recorder::default();
    let addrs = [
        instance(&redis, &recorder).await,
        instance(&redis, &recorder).await,
    ];
    let client = client();
    let delivery = hoursmith("evt_shared");
    // Each sender retries a `409` (the winning claim was not confirmed yet) or a
    // `503` (Redis slower than the timeout, on a loaded machine), as a provider
    // does, until it gets a `200`.
    let sends: Vec<_> = (0..50)
        .map(|i| {
            let (client, delivery, addr) = (client.clone(), delivery.clone(), addrs[i % 2]);
            tokio::spawn(async move {
                let mut retries = 0;
                loop {
                    let answer = send(&client, addr, "/hook", &delivery).await;
                    if ![409, 503].contains(&answer.status.as_u16()) || retries == 100 {
                        return (answer, retries);
                    }
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();
    let mut accepted = 0;
    for send in sends {
        let (answer, retries) = send.await.expect("task");
        assert_eq!(answer.status, 200, "after {retries} retries: {answer:?}");
        accepted += usize::from(answer.body == r#"{"status":"accepted"}"#);
    }
    assert_eq!(
        accepted, 1,
        "one instance accepted, the rest were duplicates"
    );
    recorder.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.ids(), ["evt_shared"]);
}

#[tokio::test]
async fn redis_down_means_503_not_200() {
    let Some(mut redis) = RedisServer::start("redis_down_means_503_not_200") else {
        return;
    };
    let recorder = Recorder::default();
    let addr = instance(&redis, &recorder).await;
    let client = client();
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_up"))
            .await
            .status,
        200
    );

    redis.stop();
    let answer = send(&client, addr, "/hook", &hoursmith("evt_down")).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (503, r#"{"error":"store_unavailable"}"#)
    );
    assert_eq!(answer.headers["retry-after"], "60");

    // Once Redis is back, the sender's retry is accepted and processed.
    redis.restart();
    let mut answer = send(&client, addr, "/hook", &hoursmith("evt_down")).await;
    for _ in 0..50 {
        if answer.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = send(&client, addr, "/hook", &hoursmith("evt_down")).await;
    }
    assert_eq!(answer.body, r#"{"status":"accepted"}"#);
    recorder.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(recorder.ids(), ["evt_up", "evt_down"]);
}
