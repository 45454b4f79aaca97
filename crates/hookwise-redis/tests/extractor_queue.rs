//! The axum extractor with a durable queue: a runtime built with
//! `durable_queue(..).handler(name, ..)` and `Webhook::hand_to(name)`, against a real
//! `redis-server`.

use std::time::Duration;

use axum::{Router, response::Response, routing::post};
use hookwise_axum::Webhook;
use hookwise_core::{Hoursmith, MemoryStore, Receiver};
use hookwise_redis::RedisQueue;
use hookwise_runtime::Webhooks;
use hookwise_test_support::*;

async fn on_hoursmith(webhook: Webhook<Hoursmith>) -> Response {
    webhook.hand_to("invoices").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_events_are_run_by_the_registered_handler() {
    let Some(mut redis) = RedisServer::start("enqueued_events_are_run_by_the_registered_handler")
    else {
        return;
    };
    let recorder = Recorder::default();
    let queue = RedisQueue::new(&redis.url())
        .expect("valid URL")
        .poll_interval(Duration::from_millis(20))
        .and_then(|q| q.timeout(Duration::from_millis(500)))
        .expect("valid settings");
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    let handled = recorder.clone();
    let webhooks = Webhooks::builder(receiver)
        .durable_queue(queue)
        .handler("invoices", move |delivery| {
            let handled = handled.clone();
            async move {
                handled.record(delivery.event().id());
                Ok::<_, std::convert::Infallible>(())
            }
        })
        .build()
        .expect("valid settings");
    let addr = serve(
        Router::new()
            .route("/hook", post(on_hoursmith))
            .with_state(webhooks),
    )
    .await;
    let client = client();
    let delivery = hoursmith("evt_enqueued");
    assert_eq!(
        send(&client, addr, "/hook", &delivery).await.body,
        r#"{"status":"accepted"}"#
    );
    assert_eq!(
        send(&client, addr, "/hook", &delivery).await.body,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(recorder.wait_for(1, Duration::from_secs(10)).await, 1);
    assert_eq!(recorder.ids(), ["evt_enqueued"]);

    redis.stop();
    let answer = send(&client, addr, "/hook", &hoursmith("evt_down")).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (503, r#"{"error":"store_unavailable"}"#)
    );
}
