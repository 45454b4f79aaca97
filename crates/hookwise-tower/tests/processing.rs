//! Ack-fast and ack-after-handler processing: speed, exactly-once, retries, dead
//! letters, the bounded queue, and graceful shutdown.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Extension, Router, extract::State, routing::post};
use hookwise_core::{Delivery as Verified, Hoursmith, MemoryStore, Receiver, hoursmith};
use hookwise_runtime::{AckMode, DeadLetter, HandlerError, RetryPolicy, Webhooks, WebhooksBuilder};
use hookwise_test_support::*;
use hookwise_tower::WebhookLayer;
use http::StatusCode;
use tokio::sync::Semaphore;

type Event = Verified<hoursmith::Event>;

fn builder() -> WebhooksBuilder<Hoursmith> {
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    Webhooks::builder(receiver).retry(
        RetryPolicy::default()
            .max_attempts(3)
            .initial_backoff(Duration::from_millis(10)),
    )
}

fn webhooks() -> Webhooks<Hoursmith> {
    builder().build().expect("valid settings")
}

fn layer(webhooks: &Webhooks<Hoursmith>) -> WebhookLayer<Hoursmith> {
    WebhookLayer::new(webhooks).expect("in memory")
}

type Letters = Arc<Mutex<Vec<DeadLetter<hoursmith::Event>>>>;

/// Collects dead letters.
fn dead_letters() -> (
    Letters,
    impl Fn(DeadLetter<hoursmith::Event>) + Send + Sync + 'static,
) {
    let letters = Letters::default();
    let sink = letters.clone();
    (letters, move |letter| {
        if let Ok(mut letters) = sink.lock() {
            letters.push(letter);
        }
    })
}

fn router<H, T>(webhooks: &Webhooks<Hoursmith>, handler: H, recorder: Recorder) -> Router
where
    H: axum::handler::Handler<T, Recorder>,
    T: 'static,
{
    Router::new()
        .route("/hook", post(handler))
        .with_state(recorder)
        .layer(layer(webhooks))
}

async fn record(
    State(recorder): State<Recorder>,
    Extension(delivery): Extension<Event>,
) -> StatusCode {
    recorder.record(delivery.event().id());
    StatusCode::OK
}

#[tokio::test]
async fn a_slow_handler_does_not_delay_the_answer() {
    async fn slow(State(recorder): State<Recorder>, Extension(d): Extension<Event>) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        recorder.record(d.event().id());
    }
    let addr = serve(router(&webhooks(), slow, Recorder::default())).await;
    let started = Instant::now();
    let answer = send(&client(), addr, "/hook", &hoursmith("evt_slow")).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200);
    // Generous bound: the handler alone takes 5 s.
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_deliveries_of_one_event_run_the_handler_once() {
    let recorder = Recorder::default();
    let webhooks = webhooks();
    let stats = webhooks.stats();
    let addr = serve(router(&webhooks, record, recorder.clone())).await;
    let client = client();
    let delivery = hoursmith("evt_once");
    let answers = futures_join_all((0..50).map(|_| {
        let (client, delivery) = (client.clone(), delivery.clone());
        async move { send(&client, addr, "/hook", &delivery).await.status }
    }))
    .await;
    // A redelivery that meets the claim before it is confirmed (spawned) is asked
    // to come back (409 in_progress); every other one is 200.
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 409),
        "{answers:?}"
    );
    let asked_back = answers.iter().filter(|s| **s == 409).count();
    recorder.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(recorder.runs(), 1);
    let snapshot = stats.snapshot();
    assert_eq!(
        (snapshot.accepted, snapshot.duplicates),
        (1, 49 - asked_back as u64)
    );
    for _ in 0..asked_back {
        let again = send(&client, addr, "/hook", &delivery).await;
        assert_eq!(again.body, r#"{"status":"duplicate"}"#);
    }
    assert_eq!(recorder.runs(), 1);
}

/// Runs futures concurrently on the runtime and collects their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}

#[tokio::test]
async fn a_handler_failing_twice_then_succeeding_runs_three_times() {
    async fn flaky(State(recorder): State<Recorder>, Extension(d): Extension<Event>) -> StatusCode {
        match recorder.record(d.event().id()) {
            1 | 2 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        }
    }
    let recorder = Recorder::default();
    let (letters, sink) = dead_letters();
    let webhooks = builder()
        .on_dead_letter(sink)
        .build()
        .expect("valid settings");
    let stats = webhooks.stats();
    let addr = serve(router(&webhooks, flaky, recorder.clone())).await;
    assert_eq!(
        send(&client(), addr, "/hook", &hoursmith("evt_flaky"))
            .await
            .status,
        200
    );
    assert_eq!(recorder.wait_for(3, Duration::from_secs(5)).await, 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(recorder.runs(), 3);
    let stats = stats.snapshot();
    assert_eq!(
        (
            stats.processed,
            stats.retried,
            stats.dead_lettered,
            stats.in_flight
        ),
        (1, 2, 0, 0)
    );
    assert!(letters.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn failing_and_panicking_handlers_end_in_the_dead_letter_callback() {
    async fn failing(
        State(recorder): State<Recorder>,
        Extension(d): Extension<Event>,
    ) -> StatusCode {
        recorder.record(d.event().id());
        if d.event().id() == "evt_panic" {
            panic!("handler bug");
        }
        if d.event().id() == "evt_fail" {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        StatusCode::OK
    }
    let recorder = Recorder::default();
    let (letters, sink) = dead_letters();
    let webhooks = builder()
        .on_dead_letter(sink)
        .build()
        .expect("valid settings");
    let stats = webhooks.stats();
    let addr = serve(router(&webhooks, failing, recorder.clone())).await;
    let client = client();
    for id in ["evt_fail", "evt_panic"] {
        assert_eq!(
            send(&client, addr, "/hook", &hoursmith(id)).await.status,
            200
        );
    }
    // 3 attempts each.
    assert_eq!(recorder.wait_for(6, Duration::from_secs(5)).await, 6);
    let deadline = Instant::now() + Duration::from_secs(5);
    while letters.lock().expect("lock").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut letters: Vec<_> = letters
        .lock()
        .expect("lock")
        .iter()
        .map(|l| {
            (
                l.delivery.event().id().to_owned(),
                l.attempts,
                l.error.clone(),
            )
        })
        .collect();
    letters.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        letters,
        [
            (
                "evt_fail".to_owned(),
                3,
                HandlerError::Status(StatusCode::SERVICE_UNAVAILABLE)
            ),
            (
                "evt_panic".to_owned(),
                3,
                HandlerError::Panicked("handler bug".to_owned())
            ),
        ]
    );

    // The server keeps serving, and the dead-lettered event is not run again.
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_ok"))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_fail"))
            .await
            .body,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(recorder.wait_for(7, Duration::from_secs(5)).await, 7);
    let stats = stats.snapshot();
    assert_eq!(
        (stats.dead_lettered, stats.processed, stats.retried),
        (2, 1, 4)
    );
}

#[tokio::test]
async fn a_handler_past_its_timeout_is_cancelled_and_dead_lettered() {
    async fn hangs(State(recorder): State<Recorder>, Extension(d): Extension<Event>) {
        recorder.record(d.event().id());
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let recorder = Recorder::default();
    let (letters, sink) = dead_letters();
    let webhooks = builder()
        .retry(RetryPolicy::never())
        .handler_timeout(Duration::from_millis(100))
        .on_dead_letter(sink)
        .build()
        .expect("non-zero");
    let shutdown = webhooks.shutdown_handle();
    let addr = serve(router(&webhooks, hangs, recorder.clone())).await;
    assert_eq!(
        send(&client(), addr, "/hook", &hoursmith("evt_hang"))
            .await
            .status,
        200
    );
    let report = shutdown.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unfinished, 0);
    let letters = letters.lock().expect("lock");
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].error,
        HandlerError::TimedOut(Duration::from_millis(100))
    );
}

#[tokio::test]
async fn a_full_queue_answers_503_and_releases_the_claim() {
    let gate = Arc::new(Semaphore::new(0));
    let blocker = gate.clone();
    let recorder = Recorder::default();
    let sink = recorder.clone();
    let handler = move |Extension(d): Extension<Event>| {
        let (gate, recorder) = (blocker.clone(), sink.clone());
        async move {
            let _permit = gate.acquire().await;
            recorder.record(d.event().id());
        }
    };
    let webhooks = builder()
        .concurrency(1)
        .queue_capacity(1)
        .build()
        .expect("valid");
    let app = Router::new()
        .route("/hook", post(handler))
        .layer(layer(&webhooks));
    let addr = serve(app).await;
    let client = client();

    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_running"))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_waiting"))
            .await
            .status,
        200
    );
    let refused = hoursmith("evt_refused");
    let answer = send(&client, addr, "/hook", &refused).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body, r#"{"error":"queue_full"}"#);
    assert_eq!(answer.headers["retry-after"], "60");

    gate.add_permits(3);
    assert_eq!(recorder.wait_for(2, Duration::from_secs(5)).await, 2);
    // The claim was released: the sender's retry is processed, not a duplicate.
    let retry = send(&client, addr, "/hook", &refused).await;
    assert_eq!(retry.body, r#"{"status":"accepted"}"#);
    assert_eq!(recorder.wait_for(3, Duration::from_secs(5)).await, 3);
    let mut ids = recorder.ids();
    ids.sort();
    assert_eq!(ids, ["evt_refused", "evt_running", "evt_waiting"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_every_accepted_event() {
    async fn slow(State(recorder): State<Recorder>, Extension(d): Extension<Event>) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        recorder.record(d.event().id());
    }
    let recorder = Recorder::default();
    let webhooks = webhooks();
    let shutdown = webhooks.shutdown_handle();
    let stats = webhooks.stats();
    let addr = serve(router(&webhooks, slow, recorder.clone())).await;
    let client = client();
    let answers = futures_join_all((0..200).map(|i| {
        let client = client.clone();
        async move {
            send(&client, addr, "/hook", &hoursmith(&format!("evt_{i}")))
                .await
                .status
        }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == 200));
    assert!(
        recorder.runs() < 200,
        "the test needs events still running at shutdown"
    );

    let report = shutdown.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.unfinished, 0);
    assert_eq!(
        recorder.runs(),
        200,
        "every accepted event finished before the handle returned"
    );
    assert_eq!(stats.snapshot().in_flight, 0);
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_after"))
            .await
            .status,
        503
    );
}

#[tokio::test]
async fn shutdown_reports_events_still_running_at_the_deadline() {
    async fn stuck(Extension(_): Extension<Event>) {
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    let webhooks = webhooks();
    let shutdown = webhooks.shutdown_handle();
    let app = Router::new()
        .route("/hook", post(stuck))
        .layer(layer(&webhooks));
    let addr = serve(app).await;
    assert_eq!(
        send(&client(), addr, "/hook", &hoursmith("evt_stuck"))
            .await
            .status,
        200
    );
    let report = shutdown.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.unfinished, 1);
}

#[tokio::test]
async fn composes_with_axum_graceful_shutdown() {
    async fn slow(State(recorder): State<Recorder>, Extension(d): Extension<Event>) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        recorder.record(d.event().id());
    }
    let recorder = Recorder::default();
    let webhooks = webhooks();
    let shutdown = webhooks.shutdown_handle();
    let app = router(&webhooks, slow, recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let closing = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                closing.close();
            })
            .await
    });
    assert_eq!(
        send(&client(), addr, "/hook", &hoursmith("evt_graceful"))
            .await
            .status,
        200
    );
    let _ = stop.send(());
    server.await.expect("task").expect("serve");
    let report = shutdown.drain(Duration::from_secs(5)).await;
    assert_eq!(report.unfinished, 0);
    assert_eq!(recorder.ids(), ["evt_graceful"]);
}

#[tokio::test]
async fn ack_after_handler_answers_500_on_failure_and_the_retry_is_processed() {
    async fn fails_once(
        State(recorder): State<Recorder>,
        Extension(d): Extension<Event>,
    ) -> StatusCode {
        match recorder.record(d.event().id()) {
            1 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        }
    }
    let recorder = Recorder::default();
    let webhooks = builder()
        .mode(AckMode::AfterHandler)
        .build()
        .expect("no durable queue");
    let addr = serve(router(&webhooks, fails_once, recorder.clone())).await;
    let client = client();
    let delivery = hoursmith("evt_after");

    let first = send(&client, addr, "/hook", &delivery).await;
    assert_eq!(
        (first.status.as_u16(), first.body.as_str()),
        (500, r#"{"error":"handler_failed"}"#)
    );
    assert_eq!(recorder.runs(), 1, "the answer waited for the handler");

    let retry = send(&client, addr, "/hook", &delivery).await;
    assert_eq!(
        (retry.status.as_u16(), retry.body.as_str()),
        (200, r#"{"status":"accepted"}"#)
    );
    assert_eq!(recorder.runs(), 2);

    let again = send(&client, addr, "/hook", &delivery).await;
    assert_eq!(again.body, r#"{"status":"duplicate"}"#);
    assert_eq!(recorder.runs(), 2);
}

#[tokio::test]
async fn ack_after_handler_turns_a_panic_into_500() {
    async fn panics(Extension(_): Extension<Event>) -> StatusCode {
        panic!("handler bug");
    }
    let webhooks = builder()
        .mode(AckMode::AfterHandler)
        .build()
        .expect("no durable queue");
    let app = Router::new()
        .route("/hook", post(panics))
        .layer(layer(&webhooks));
    let addr = serve(app).await;
    let client = client();
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_p"))
            .await
            .status,
        500
    );
    // The connection and the server survive.
    assert_eq!(
        send(&client, addr, "/hook", &hoursmith("evt_p"))
            .await
            .status,
        500
    );
}
