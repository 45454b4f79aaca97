//! The runtime's metrics for what the `receiver` example cannot show: a failing
//! handler's retries and dead letter, the runs' results and a stale event skipped,
//! through a Prometheus recorder installed before the runtime is built.

use std::{convert::Infallible, time::Duration};

use axum::{Router, routing::post_service};
use hookwise::{
    Delivery, Hoursmith, MemoryStore, Ordering, Receiver, RetryPolicy, Webhooks, hoursmith,
    tower::WebhookEndpoint,
};
use hookwise_test_support::*;

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_counts_its_runs_retries_and_dead_letter() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    let webhooks = Webhooks::builder(receiver)
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(1)),
        )
        .ordering(Ordering::by_resource().skip_stale(true))
        .handler("fails", |delivery: Delivery<hoursmith::Event>| async move {
            if delivery.event().id() == "evt_bad" {
                return Err("the handler fails");
            }
            Ok::<(), &str>(())
        })
        .build()
        .expect("valid");
    let endpoint = WebhookEndpoint::new(&webhooks, "fails").expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    let client = client();
    for id in ["evt_good", "evt_bad"] {
        assert_eq!(
            send(&client, addr, "/hook", &hoursmith(id)).await.status,
            200
        );
    }
    // An invoice's newer event, then (once applied) an older one: skipped as stale.
    let stats = webhooks.stats();
    let settled = eventually(Duration::from_secs(5), || {
        let now = stats.snapshot();
        (now.processed, now.dead_lettered) == (1, 1)
    })
    .await;
    assert!(settled, "the first two ran: {:?}", stats.snapshot());
    for (id, created) in [("evt_newer", now() + 20), ("evt_older", now() + 10)] {
        let body = bytes::Bytes::from(format!(
            r#"{{"id":"{id}","type":"invoice.sent","created":{created},"orgId":"o",
                "livemode":true,"data":{{"invoice":{{"id":"in_1"}}}}}}"#
        ));
        let before = stats.snapshot();
        let answer = send(&client, addr, "/hook", &hoursmith_signed(body, now())).await;
        assert_eq!(answer.status, 200);
        let done = eventually(Duration::from_secs(5), || {
            let now = stats.snapshot();
            now.processed + now.stale > before.processed + before.stale
        })
        .await;
        assert!(done, "{id} was run or skipped");
    }
    let report = webhooks.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.unfinished, 0);

    let text = recorder.render();
    let expected = [
        (
            r#"hookwise_handler_runs_total{provider="hoursmith",result="ok"}"#,
            2.0,
        ),
        (
            r#"hookwise_handler_runs_total{provider="hoursmith",result="failed"}"#,
            3.0,
        ),
        (
            r#"hookwise_handler_retries_total{provider="hoursmith"}"#,
            2.0,
        ),
        (r#"hookwise_dead_letters_total{provider="hoursmith"}"#, 1.0),
        (
            r#"hookwise_handler_duration_seconds_count{provider="hoursmith"}"#,
            5.0,
        ),
        (
            r#"hookwise_deliveries_total{provider="hoursmith",outcome="accepted"}"#,
            4.0,
        ),
        (r#"hookwise_stale_events_total{provider="hoursmith"}"#, 1.0),
        (r#"hookwise_events_in_flight{provider="hoursmith"}"#, 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    // Turned off, a runtime sends nothing: its provider's series do not appear.
    let quiet = Webhooks::builder(
        Receiver::new(
            hookwise::Mojave::new(MOJAVE_SECRET).expect("secret"),
            MemoryStore::new(),
        )
        .expect("config"),
    )
    .metrics(false)
    .handler("quiet", |_: Delivery<hookwise::mojave::Event>| async {
        Ok::<(), Infallible>(())
    })
    .build()
    .expect("valid");
    assert!(!recorder.render().contains(r#"provider="mojave""#));
    quiet.shutdown(Duration::from_secs(1)).await;

    // The in-memory queue's depth: one event runs (held at a gate), two wait.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let queued = Webhooks::builder(
        Receiver::new(
            Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
            MemoryStore::new(),
        )
        .expect("config"),
    )
    .concurrency(1)
    .handler("gated", move |_: Delivery<hoursmith::Event>| {
        let gate = held.clone();
        async move {
            let _pass = gate.acquire().await.map_err(|_| "closed")?;
            Ok::<(), &str>(())
        }
    })
    .build()
    .expect("valid");
    let endpoint = WebhookEndpoint::new(&queued, "gated").expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    for id in ["evt_q1", "evt_q2", "evt_q3"] {
        assert_eq!(
            send(&client, addr, "/hook", &hoursmith(id)).await.status,
            200
        );
    }
    let waiting = r#"hookwise_events_waiting{provider="hoursmith"}"#;
    assert!(
        eventually(Duration::from_secs(5), || queued.stats().snapshot().waiting
            == 2)
        .await,
        "two wait for the one running slot: {:?}",
        queued.stats().snapshot()
    );
    assert_eq!(sample(&recorder.render(), waiting), Some(2.0));
    gate.add_permits(3);
    assert_eq!(queued.shutdown(Duration::from_secs(5)).await.unfinished, 0);
    assert_eq!(queued.stats().snapshot().waiting, 0);
    assert_eq!(sample(&recorder.render(), waiting), Some(0.0));
}
