//! Every row of the receiver contract, for both providers, through the layer over a
//! real loopback socket.

use std::time::Duration;

use axum::{Extension, Router, extract::State, routing::post};
use bytes::Bytes;
use hookwise_core::{
    Delivery as Verified, Hoursmith, MemoryStore, Mojave, Provider, Receiver, RejectionKind,
    hoursmith, mojave,
};
use hookwise_runtime::{Webhooks, WebhooksBuilder};
use hookwise_test_support::*;
use hookwise_tower::WebhookLayer;
use http::{HeaderMap, StatusCode};

const LIMIT: usize = 4096;

async fn on_hoursmith(
    State(recorder): State<Recorder>,
    Extension(delivery): Extension<Verified<hoursmith::Event>>,
) -> StatusCode {
    recorder.record(delivery.event().id());
    StatusCode::OK
}

async fn on_mojave(
    State(recorder): State<Recorder>,
    Extension(delivery): Extension<Verified<mojave::Event>>,
) -> StatusCode {
    recorder.record(delivery.dedupe_key().id());
    StatusCode::OK
}

fn app<P: Provider>(
    webhooks: &Webhooks<P>,
    handler: axum::routing::MethodRouter<Recorder>,
    recorder: Recorder,
) -> Router {
    Router::new()
        .route("/hook", handler)
        .with_state(recorder)
        .layer(WebhookLayer::new(webhooks).expect("in memory"))
}

fn hoursmith_builder() -> WebhooksBuilder<Hoursmith> {
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config")
    .body_limit(LIMIT)
    .expect("limit");
    Webhooks::builder(receiver)
}

fn hoursmith_webhooks() -> Webhooks<Hoursmith> {
    hoursmith_builder().build().expect("valid settings")
}

fn mojave_webhooks() -> Webhooks<Mojave> {
    let receiver = Receiver::new(
        Mojave::new(MOJAVE_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config")
    .body_limit(LIMIT)
    .expect("limit");
    Webhooks::new(receiver)
}

struct Row {
    name: &'static str,
    delivery: Delivery,
    status: u16,
    body: String,
}

fn row(name: &'static str, delivery: Delivery, status: u16, code: &str) -> Row {
    let body = match status {
        200 => format!(r#"{{"status":"{code}"}}"#),
        _ => format!(r#"{{"error":"{code}"}}"#),
    };
    Row {
        name,
        delivery,
        status,
        body,
    }
}

fn unsigned(delivery: &Delivery) -> Delivery {
    Delivery {
        headers: HeaderMap::new(),
        body: delivery.body.clone(),
    }
}

fn with_header(delivery: &Delivery, name: &'static str, value: &str) -> Delivery {
    let mut headers = HeaderMap::new();
    headers.insert(name, value.parse().expect("header value"));
    Delivery {
        headers,
        body: delivery.body.clone(),
    }
}

async fn check(rows: Vec<Row>, router: Router) {
    let addr = serve(router).await;
    let client = client();
    for row in rows {
        let answer = send(&client, addr, "/hook", &row.delivery).await;
        assert_eq!(
            answer.status.as_u16(),
            row.status,
            "{}: {answer:?}",
            row.name
        );
        assert_eq!(answer.body, row.body, "{}", row.name);
        assert_eq!(
            answer.headers["content-type"], "application/json",
            "{}",
            row.name
        );
        assert_eq!(
            answer.headers.contains_key("retry-after"),
            row.status == 503,
            "{}",
            row.name
        );
    }
}

#[tokio::test]
async fn hoursmith_contract() {
    let recorder = Recorder::default();
    let webhooks = hoursmith_webhooks();
    let stats = webhooks.stats();
    let new = hoursmith("evt_new");
    let big = hoursmith_body(
        "evt_big",
        "task.created",
        &format!(r#"{{"task":{{"pad":"{}"}}}}"#, "x".repeat(LIMIT)),
    );
    let rows = vec![
        row("new event", new.clone(), 200, "accepted"),
        row("sender's retry", new.clone(), 200, "duplicate"),
        row(
            "not json",
            hoursmith_signed(Bytes::from_static(b"{nope"), now()),
            400,
            "invalid_payload",
        ),
        row(
            "known type without its data key",
            hoursmith_signed(
                hoursmith_body("evt_x", "invoice.paid", r#"{"invoice":{}}"#),
                now(),
            ),
            400,
            "invalid_payload",
        ),
        row("no signature", unsigned(&new), 401, "signature_missing"),
        row(
            "malformed signature",
            with_header(&new, "hoursmith-signature", "t=now,v1=zz"),
            401,
            "signature_malformed",
        ),
        row(
            "wrong secret",
            {
                let mut headers = HeaderMap::new();
                hookwise_core::sign::hoursmith(b"whsec_guess", now(), &new.body)
                    .insert_into(&mut headers);
                Delivery {
                    headers,
                    body: new.body.clone(),
                }
            },
            401,
            "signature_mismatch",
        ),
        row(
            "signed 301 s ago",
            hoursmith_signed(new.body.clone(), now() - 301),
            401,
            "timestamp_too_old",
        ),
        row(
            "signed 10 min ahead",
            hoursmith_signed(new.body.clone(), now() + 600),
            401,
            "timestamp_too_new",
        ),
        row(
            "over the limit",
            hoursmith_signed(big, now()),
            413,
            "payload_too_large",
        ),
    ];
    check(rows, app(&webhooks, post(on_hoursmith), recorder.clone())).await;

    assert_eq!(recorder.wait_for(1, Duration::from_secs(5)).await, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        recorder.ids(),
        ["evt_new"],
        "only the new event is processed"
    );
    let stats = stats.snapshot();
    assert_eq!(
        (stats.accepted, stats.duplicates, stats.processed),
        (1, 1, 1)
    );
    assert_eq!(stats.rejected(RejectionKind::InvalidPayload), 2);
    assert_eq!(stats.rejected(RejectionKind::PayloadTooLarge), 1);
    assert_eq!(stats.rejected_total(), 8);
}

#[tokio::test]
async fn mojave_contract() {
    let recorder = Recorder::default();
    let webhooks = mojave_webhooks();
    let new = mojave(1);
    let payload = |timestamp: u64| {
        Bytes::from(format!(
            r#"{{"type":"invoice.paid","timestamp":{timestamp},"data":{{"id":"i"}}}}"#
        ))
    };
    let big = Bytes::from(format!(
        r#"{{"type":"invoice.paid","timestamp":{},"data":{{"pad":"{}"}}}}"#,
        now(),
        "x".repeat(LIMIT)
    ));
    let rows = vec![
        row("new event", new.clone(), 200, "accepted"),
        row("sender's retry", new.clone(), 200, "duplicate"),
        row(
            "not the envelope",
            mojave_signed(Bytes::from_static(br#"{"type":"x"}"#)),
            400,
            "invalid_payload",
        ),
        row("no signature", unsigned(&new), 401, "signature_missing"),
        row(
            "malformed signature",
            with_header(&new, "x-mojave-signature", "sha256=xyz"),
            401,
            "signature_malformed",
        ),
        row(
            "wrong secret",
            {
                let mut headers = HeaderMap::new();
                hookwise_core::sign::mojave(b"guess", &new.body).insert_into(&mut headers);
                Delivery {
                    headers,
                    body: new.body.clone(),
                }
            },
            401,
            "signature_mismatch",
        ),
        row(
            "payload 24 h + 1 s old",
            mojave_signed(payload(now() - 86_401)),
            401,
            "timestamp_too_old",
        ),
        row(
            "payload 10 min ahead",
            mojave_signed(payload(now() + 600)),
            401,
            "timestamp_too_new",
        ),
        row(
            "over the limit",
            mojave_signed(big),
            413,
            "payload_too_large",
        ),
    ];
    check(rows, app(&webhooks, post(on_mojave), recorder.clone())).await;
    assert_eq!(recorder.wait_for(1, Duration::from_secs(5)).await, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(recorder.runs(), 1, "only the new event is processed");
}

#[tokio::test]
async fn chunked_body_crossing_the_limit_is_413() {
    let recorder = Recorder::default();
    let addr = serve(app(
        &hoursmith_webhooks(),
        post(on_hoursmith),
        recorder.clone(),
    ))
    .await;
    let chunk = format!("{:x}\r\n{}\r\n", 1024, "x".repeat(1024));
    let head = b"POST /hook HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut parts: Vec<&[u8]> = vec![head];
    // Eight chunks of 1 KiB: the limit (4 KiB) is crossed on the fifth.
    for _ in 0..8 {
        parts.push(chunk.as_bytes());
    }
    parts.push(b"0\r\n\r\n");
    assert_eq!(
        raw_status(addr, &parts, Duration::from_millis(5)).await,
        413
    );
    assert_eq!(recorder.runs(), 0);
}

#[tokio::test]
async fn content_length_over_the_limit_is_413_before_the_body_is_sent() {
    let addr = serve(app(
        &hoursmith_webhooks(),
        post(on_hoursmith),
        Recorder::default(),
    ))
    .await;
    // Only the head is sent: the answer cannot wait for a body.
    let head = b"POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000000000\r\n\r\n";
    assert_eq!(raw_status(addr, &[head], Duration::ZERO).await, 413);
}

#[tokio::test]
async fn a_stalled_body_is_408_after_the_body_timeout() {
    let webhooks = hoursmith_builder()
        .body_timeout(Duration::from_millis(200))
        .build()
        .expect("non-zero");
    let addr = serve(app(&webhooks, post(on_hoursmith), Recorder::default())).await;
    let head = b"POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{\"id\":";
    assert_eq!(raw_status(addr, &[head], Duration::ZERO).await, 408);
}

#[tokio::test]
async fn closed_receiver_answers_503_with_retry_after() {
    let recorder = Recorder::default();
    let webhooks = hoursmith_webhooks();
    let shutdown = webhooks.shutdown_handle();
    let addr = serve(app(&webhooks, post(on_hoursmith), recorder.clone())).await;
    shutdown.close();
    let answer = send(&client(), addr, "/hook", &hoursmith("evt_late")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body, r#"{"error":"shutting_down"}"#);
    assert_eq!(answer.headers["retry-after"], "60");
    assert_eq!(recorder.runs(), 0);
}

#[tokio::test]
async fn dropped_test_events_are_acknowledged_and_not_processed() {
    let recorder = Recorder::default();
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET)
            .expect("secret")
            .drop_test_events(true),
        MemoryStore::new(),
    )
    .expect("config");
    let addr = serve(app(
        &Webhooks::new(receiver),
        post(on_hoursmith),
        recorder.clone(),
    ))
    .await;
    let body = hoursmith_body(
        "evt_t",
        "task.created",
        r#"{"test":true,"task":{"id":"t"}}"#,
    );
    let test_event = hoursmith_signed(
        Bytes::from(
            String::from_utf8_lossy(&body).replace(r#""livemode":true"#, r#""livemode":false"#),
        ),
        now(),
    );
    let answer = send(&client(), addr, "/hook", &test_event).await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (200, r#"{"status":"skipped"}"#)
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(recorder.runs(), 0);
}

// The exact ±300 s / ±301 s boundaries are tested against a manual clock in
// hookwise-core; over a real socket the wall clock may tick between signing and
// checking, so these rows keep a margin.
