//! The `Webhook` extractor over real loopback sockets: alone, with the background
//! helper, and behind the layer.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{FromRef, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use hookwise_axum::Webhook;
use hookwise_core::{Hoursmith, MemoryStore, Mojave, Receiver, hoursmith::EventData};
use hookwise_runtime::{RetryPolicy, Webhooks, WebhooksBuilder};
use hookwise_test_support::*;
use hookwise_tower::WebhookLayer;

#[derive(Clone, FromRef)]
struct AppState {
    hoursmith: Webhooks<Hoursmith>,
    mojave: Webhooks<Mojave>,
    recorder: Recorder,
}

fn hoursmith_receiver(store: Arc<MemoryStore>) -> Receiver<Hoursmith, Arc<MemoryStore>> {
    Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config")
}

/// The app's state: `hoursmith` is shared with whatever else uses it (a layer).
fn state(hoursmith: &Webhooks<Hoursmith>, recorder: &Recorder) -> AppState {
    let mojave = Receiver::new(
        Mojave::new(MOJAVE_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    AppState {
        hoursmith: hoursmith.clone(),
        mojave: Webhooks::new(mojave),
        recorder: recorder.clone(),
    }
}

fn fast_retries(store: Arc<MemoryStore>) -> WebhooksBuilder<Hoursmith> {
    Webhooks::builder(hoursmith_receiver(store)).retry(
        RetryPolicy::default()
            .max_attempts(3)
            .initial_backoff(Duration::from_millis(10)),
    )
}

/// Processes inline and commits.
async fn inline(State(recorder): State<Recorder>, webhook: Webhook<Hoursmith>) -> Response {
    let label = match webhook.data() {
        EventData::TaskCreated { task } => format!("task {}", task.id().unwrap_or("?")),
        _ => "other".to_owned(),
    };
    recorder.record(webhook.id());
    match webhook.commit().await {
        Ok(()) => (StatusCode::OK, label).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Fails inline without committing: the claim is released on drop.
async fn fails(State(recorder): State<Recorder>, webhook: Webhook<Hoursmith>) -> StatusCode {
    let runs = recorder.record(webhook.id());
    if runs == 1 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    match webhook.commit().await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn background(State(recorder): State<Recorder>, webhook: Webhook<Hoursmith>) -> Response {
    webhook
        .process_in_background(move |delivery| {
            let recorder = recorder.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                match recorder.record(delivery.event().id()) {
                    1 => Err("first run fails"),
                    _ => Ok(()),
                }
            }
        })
        .await
}

async fn mojave_inline(State(recorder): State<Recorder>, webhook: Webhook<Mojave>) -> StatusCode {
    recorder.record(webhook.event_type());
    match webhook.commit().await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn app(state: AppState) -> Router {
    Router::new()
        .route("/inline", post(inline))
        .route("/fails", post(fails))
        .route("/background", post(background))
        .route("/mojave", post(mojave_inline))
        .with_state(state)
}

#[tokio::test]
async fn new_event_reaches_the_handler_and_the_retry_does_not() {
    let store = Arc::new(MemoryStore::new());
    let recorder = Recorder::default();
    let webhooks = fast_retries(store.clone()).build().expect("valid");
    let addr = serve(app(state(&webhooks, &recorder))).await;
    let client = client();
    let delivery = hoursmith("evt_1");

    let first = send(&client, addr, "/inline", &delivery).await;
    assert_eq!(
        (first.status.as_u16(), first.body.as_str()),
        (200, "task t_1")
    );
    let retry = send(&client, addr, "/inline", &delivery).await;
    assert_eq!(
        (retry.status.as_u16(), retry.body.as_str()),
        (200, r#"{"status":"duplicate"}"#)
    );
    assert_eq!(recorder.ids(), ["evt_1"]);
    assert_eq!(webhooks.stats().snapshot().duplicates, 1);
}

#[tokio::test]
async fn rejections_are_the_contract_responses() {
    let recorder = Recorder::default();
    let webhooks = fast_retries(Arc::new(MemoryStore::new()))
        .build()
        .expect("valid");
    let addr = serve(app(state(&webhooks, &recorder))).await;
    let client = client();
    let mut forged = hoursmith("evt_forged");
    forged.body = bytes::Bytes::from(String::from_utf8_lossy(&forged.body).replace("t_1", "t_2"));
    let answer = send(&client, addr, "/inline", &forged).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (401, r#"{"error":"signature_mismatch"}"#)
    );

    let unsigned = Delivery {
        headers: Default::default(),
        body: forged.body.clone(),
    };
    assert_eq!(send(&client, addr, "/inline", &unsigned).await.status, 401);
    assert_eq!(recorder.runs(), 0);
    assert_eq!(webhooks.stats().snapshot().rejected_total(), 2);
}

#[tokio::test]
async fn an_uncommitted_claim_is_released_so_the_retry_is_processed() {
    let recorder = Recorder::default();
    let webhooks = fast_retries(Arc::new(MemoryStore::new()))
        .build()
        .expect("valid");
    let addr = serve(app(state(&webhooks, &recorder))).await;
    let client = client();
    let delivery = hoursmith("evt_retry");
    assert_eq!(send(&client, addr, "/fails", &delivery).await.status, 500);
    // The release runs in a task spawned on drop.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(send(&client, addr, "/fails", &delivery).await.status, 200);
    assert_eq!(
        send(&client, addr, "/fails", &delivery).await.body,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(recorder.runs(), 2);
}

#[tokio::test]
async fn background_processing_answers_at_once_retries_and_drains() {
    let recorder = Recorder::default();
    let webhooks = fast_retries(Arc::new(MemoryStore::new()))
        .build()
        .expect("valid");
    let shutdown = webhooks.shutdown_handle();
    let stats = webhooks.stats();
    let addr = serve(app(state(&webhooks, &recorder))).await;
    let answer = send(&client(), addr, "/background", &hoursmith("evt_bg")).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, r#"{"status":"accepted"}"#)
    );
    assert_eq!(recorder.runs(), 0, "answered before the job ran");

    let report = shutdown.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.unfinished, 0);
    assert_eq!(recorder.runs(), 2, "failed once, retried once");
    let stats = stats.snapshot();
    assert_eq!((stats.processed, stats.retried, stats.in_flight), (1, 1, 0));
}

#[tokio::test]
async fn background_processing_refuses_with_503_when_full_and_releases() {
    let recorder = Recorder::default();
    let webhooks = fast_retries(Arc::new(MemoryStore::new()))
        .concurrency(1)
        .queue_capacity(0)
        .build()
        .expect("valid");
    let addr = serve(app(state(&webhooks, &recorder))).await;
    let client = client();
    assert_eq!(
        send(&client, addr, "/background", &hoursmith("evt_a"))
            .await
            .status,
        200
    );
    let busy = send(&client, addr, "/background", &hoursmith("evt_b")).await;
    assert_eq!(
        (busy.status.as_u16(), busy.body.as_str()),
        (503, r#"{"error":"queue_full"}"#)
    );
    assert_eq!(busy.headers["retry-after"], "60");
    // Once the first event is done, the retry of the refused one is accepted.
    recorder.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let retry = send(&client, addr, "/background", &hoursmith("evt_b")).await;
    assert_eq!(retry.body, r#"{"status":"accepted"}"#);
}

#[tokio::test]
async fn mojave_events_work_the_same_way() {
    let recorder = Recorder::default();
    let webhooks = fast_retries(Arc::new(MemoryStore::new()))
        .build()
        .expect("valid");
    let addr = serve(app(state(&webhooks, &recorder))).await;
    let client = client();
    let delivery = mojave(7);
    assert_eq!(send(&client, addr, "/mojave", &delivery).await.status, 200);
    assert_eq!(
        send(&client, addr, "/mojave", &delivery).await.body,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(recorder.ids(), ["invoice.paid"]);
}

#[tokio::test]
async fn behind_the_layer_the_event_is_verified_and_claimed_once() {
    let store = Arc::new(MemoryStore::new());
    let recorder = Recorder::default();
    let webhooks = fast_retries(store.clone()).build().expect("valid");
    let stats = webhooks.stats();
    // The layer and the extractor share one runtime.
    let layer = WebhookLayer::new(&webhooks).expect("in memory");
    let router = Router::new()
        .route("/inline", post(inline))
        .with_state(state(&webhooks, &recorder))
        .layer(layer);
    let addr = serve(router).await;
    let client = client();
    let delivery = hoursmith("evt_layered");
    assert_eq!(
        send(&client, addr, "/inline", &delivery).await.body,
        r#"{"status":"accepted"}"#
    );
    assert_eq!(
        send(&client, addr, "/inline", &delivery).await.body,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(recorder.wait_for(1, Duration::from_secs(5)).await, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(recorder.ids(), ["evt_layered"]);
    // One claim and one duplicate: the extractor did not receive the delivery again.
    let store_stats = store.stats();
    assert_eq!((store_stats.claims, store_stats.duplicates), (1, 1));
    assert_eq!(stats.snapshot().processed, 1);
}

#[tokio::test]
async fn the_routes_default_body_limit_is_honoured() {
    let store = Arc::new(MemoryStore::new());
    let recorder = Recorder::default();
    let webhooks = fast_retries(store.clone()).build().expect("valid");
    let delivery = hoursmith("evt_over_the_route_limit");
    // A limit below the delivery's size on one route, none on the other.
    let router = Router::new()
        .route(
            "/limited",
            post(inline).layer(axum::extract::DefaultBodyLimit::max(
                delivery.body.len() - 1,
            )),
        )
        .route("/inline", post(inline))
        .with_state(state(&webhooks, &recorder));
    let addr = serve(router).await;
    let client = client();

    let refused = send(&client, addr, "/limited", &delivery).await;
    assert_eq!(
        (refused.status.as_u16(), refused.body.as_str()),
        (413, r#"{"error":"payload_too_large"}"#)
    );
    assert_eq!(store.stats().claims, 0, "refused before the claim");
    // The receiver's own limit (1 MiB) is the bound elsewhere.
    let taken = send(&client, addr, "/inline", &delivery).await;
    assert_eq!(taken.status, 200);
    assert_eq!(recorder.ids(), ["evt_over_the_route_limit"]);
}
